"""The learned segmenter as the feature pipeline uses it: a cross-fitted bundle in one file.

:class:`CrossFittedSegmenter` holds ``n_folds`` :class:`~hamfeat.segment_learned.LearnedSegmenter`
models fitted on lesion-grouped folds of the training images, plus one fitted on all of them.
An image the bundle was trained on (recognised by :func:`image_key`, a hash of its canonical
pixels) is segmented by the fold model that never saw its lesion; any other image (every new
image a user scores) by the full model. So a feature table of the training images built with
the bundle has *out-of-fold* automatic masks, with the errors a new image's mask has, and the
cross-validation and the shipped model are both trained on them; nothing else has to know.

``hamfeat train-segmenter`` fits and saves one (:func:`train_segmenter`); ``hamfeat features
--masks auto --segmenter FILE`` and ``hamfeat score`` use it through
:class:`~hamfeat.pipeline.FeatureConfig` (its ``segmenter`` field is the file, its key the
file's hash). :func:`get_segmenter` loads a file once per process.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from hamfeat.errors import ModelError
from hamfeat.segment_learned import LearnedSegmenter, _check_image, _prepare

__all__ = [
    "METHOD_LEARNED",
    "METHOD_LEARNED_OOF",
    "CrossFittedSegmenter",
    "file_sha",
    "get_segmenter",
    "image_key",
    "train_segmenter",
]

log = logging.getLogger("hamfeat")

#: ``mask_method`` of a mask from the full model (an image the bundle was not trained on).
METHOD_LEARNED = "learned"
#: ``mask_method`` of a mask from the fold model that did not see the image's lesion.
METHOD_LEARNED_OOF = "learned_oof"


def image_key(image: np.ndarray) -> str:
    """A hash of an image's pixels and shape (how the bundle recognises its training images).

    Parameters
    ----------
    image : numpy.ndarray
        ``uint8`` ``(H, W, 3)``: the canonical image the segmenter sees.

    Returns
    -------
    str
        32 hexadecimal digits.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((4, 5, 3), np.uint8)
    >>> image_key(a) == image_key(a.copy()), image_key(a) == image_key(a[:, :4])
    (True, False)
    """
    a = np.ascontiguousarray(image)
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((a.shape, str(a.dtype))).encode())
    h.update(a.tobytes())
    return h.hexdigest()


class CrossFittedSegmenter(BaseEstimator):
    """Fold models for the training images' out-of-fold masks, and a full model for new ones.

    Parameters
    ----------
    n_folds : int
        Lesion-grouped folds (at least 2).
    random_state : int
        Seed of the fold assignment and of every :class:`LearnedSegmenter`.
    segmenter_params : dict, optional
        Parameters of each :class:`~hamfeat.segment_learned.LearnedSegmenter` (its defaults,
        chosen on a development split, when ``None``).

    Attributes
    ----------
    folds_ : list of LearnedSegmenter
        ``folds_[k]`` was fitted on every training image outside fold ``k``.
    full_ : LearnedSegmenter
        Fitted on all training images.
    fold_of_ : dict
        :func:`image_key` of each training image -> its fold.
    n_training_images_ : int
    """

    def __init__(
        self, n_folds: int = 5, random_state: int = 0, segmenter_params: dict | None = None
    ) -> None:
        self.n_folds = n_folds
        self.random_state = random_state
        self.segmenter_params = segmenter_params

    def _member(self) -> LearnedSegmenter:
        params = dict(self.segmenter_params or {})
        params.setdefault("random_state", self.random_state)
        return LearnedSegmenter(**params)

    def _folds(self, groups: Sequence[Any]) -> np.ndarray:
        """Fold of each image: whole groups (lesions) assigned at random, round robin."""
        _, g = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
        rng = np.random.default_rng(self.random_state)
        order = rng.permutation(g.max() + 1)
        fold_of_group = np.empty_like(order)
        fold_of_group[order] = np.arange(len(order)) % int(self.n_folds)
        return fold_of_group[g]

    def fit(
        self,
        images: Sequence[np.ndarray],
        masks: Sequence[np.ndarray],
        groups: Sequence[Any],
        *,
        progress: Callable[[str], None] | None = None,
        n_threads: int = 1,
    ) -> CrossFittedSegmenter:
        """Fit the fold models and the full model.

        Parameters
        ----------
        images : sequence of numpy.ndarray
            ``uint8`` ``(H, W, 3)`` canonical RGB images.
        masks : sequence of numpy.ndarray
            ``bool`` reference masks, one per image, at the image's size.
        groups : sequence
            The lesion id of each image: a fold model never sees a lesion of its fold.
        progress : callable, optional
            Called with one line per step.
        n_threads : int
            Threads for preparing the per-pixel features.

        Returns
        -------
        CrossFittedSegmenter
            ``self``.

        Raises
        ------
        ValueError
            Fewer groups than folds, or lengths that differ.
        """
        say = progress or (lambda _msg: None)
        n = len(images)
        if not (len(masks) == len(groups) == n):
            raise ValueError(f"{n} images, {len(masks)} masks and {len(groups)} groups")
        if int(self.n_folds) < 2:
            raise ValueError(f"n_folds must be at least 2, got {self.n_folds}")
        if len(set(map(str, groups))) < int(self.n_folds):
            raise ValueError(
                f"{len(set(map(str, groups)))} lesions, fewer than the {self.n_folds} folds"
            )
        member = self._member()
        t0 = time.perf_counter()
        checked = [_check_image(im, f"images[{i}]") for i, im in enumerate(images)]
        with ThreadPoolExecutor(max(1, int(n_threads))) as pool:
            preps = list(pool.map(lambda im: _prepare(im, member.grid_long_side), checked))
        keys = [image_key(im) for im in checked]
        say(f"per-pixel features of {n} images: {time.perf_counter() - t0:.0f} s")
        fold = self._folds(groups)
        groups = np.asarray(groups, dtype=object)
        # the boosted trees' OpenMP threads: no more than asked for (spinning threads on a
        # busy machine cost far more than they give)
        with threadpool_limits(max(1, int(n_threads))):
            self._fit_members(preps, masks, groups, fold, say, int(n_threads))
        self.fold_of_ = {key: int(f) for key, f in zip(keys, fold, strict=True)}
        self.n_training_images_ = n
        return self

    def _fit_members(self, preps, masks, groups, fold, say, n_threads: int = 1) -> None:
        n = len(preps)
        self.folds_ = []
        for k in range(int(self.n_folds)):
            t1 = time.perf_counter()
            train = np.flatnonzero(fold != k)
            seg = self._member()._fit_prepared(
                [preps[i] for i in train], [masks[i] for i in train], groups[train],
                n_threads=n_threads,
            )
            self.folds_.append(seg)
            say(f"fold {k + 1}/{self.n_folds}: {len(train)} images, "
                f"{time.perf_counter() - t1:.0f} s")
        t1 = time.perf_counter()
        self.full_ = self._member()._fit_prepared(preps, list(masks), groups,
                                                  n_threads=n_threads)
        say(f"full model: {n} images, {time.perf_counter() - t1:.0f} s")

    def segment(self, image: np.ndarray) -> tuple[np.ndarray, str]:
        """The lesion mask of a canonical image, and which model made it.

        Parameters
        ----------
        image : numpy.ndarray
            ``uint8`` ``(H, W, 3)`` canonical RGB.

        Returns
        -------
        mask : numpy.ndarray
            ``bool`` ``(H, W)``, never empty, never full.
        method : str
            :data:`METHOD_LEARNED_OOF` for a training image (its fold's model), else
            :data:`METHOD_LEARNED`.
        """
        check_is_fitted(self, "full_")
        k = self.fold_of_.get(image_key(image))
        if k is None:
            return self.full_.predict_mask(image), METHOD_LEARNED
        return self.folds_[k].predict_mask(image), METHOD_LEARNED_OOF


def file_sha(path: str | os.PathLike[str]) -> str:
    """The first 16 hexadecimal digits of a file's SHA-256 (a segmenter's identity).

    Raises
    ------
    ModelError
        When the file cannot be read.
    """
    return _file_sha(*_stat_key(path))


def _stat_key(path: str | os.PathLike[str]) -> tuple[str, int, int]:
    p = os.path.realpath(os.fspath(path))
    try:
        st = os.stat(p)
    except OSError as exc:
        raise ModelError(path, f"segmenter file not readable ({exc.strerror})") from None
    return p, st.st_mtime_ns, st.st_size


@lru_cache(maxsize=8)
def _file_sha(path: str, mtime_ns: int, size: int) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError as exc:
        raise ModelError(path, f"segmenter file not readable ({exc.strerror})") from None
    return h.hexdigest()[:16]


def get_segmenter(path: str | os.PathLike[str], sha: str | None = None) -> CrossFittedSegmenter:
    """Load a segmenter file once per process (and check its hash when ``sha`` is given).

    Raises
    ------
    ModelError
        Missing, unsafe or not a segmenter file, or one whose hash is not ``sha``.
    """
    real, mtime, size = _stat_key(path)
    got = _file_sha(real, mtime, size)
    if sha is not None and got != sha:
        raise ModelError(path, f"segmenter file has hash {got}, the features need {sha}")
    return _load(real, got)


@lru_cache(maxsize=2)
def _load(path: str, sha: str) -> CrossFittedSegmenter:
    from hamfeat.segment_learned import load_segmenter

    seg = load_segmenter(path)
    if not isinstance(seg, CrossFittedSegmenter):
        raise ModelError(path, "not a cross-fitted segmenter (write it with "
                         "`hamfeat train-segmenter`)")
    return seg


def train_segmenter(
    data: str | os.PathLike[str] | None,
    output: str | os.PathLike[str],
    *,
    n_folds: int = 5,
    random_state: int = 0,
    n_threads: int = 1,
    segmenter_params: dict | None = None,
    progress: Callable[[str], None] | None = None,
    limit: int | None = None,
) -> tuple[Path, list]:
    """Fit a :class:`CrossFittedSegmenter` on a data set's images and masks and save it.

    Parameters
    ----------
    data : path-like, optional
        A HAM10000 folder (see :func:`hamfeat.datasets.ham10000.find_data_dir`).
    output : path-like
        The segmenter file (``*.skops``).
    n_folds, random_state, segmenter_params
        See :class:`CrossFittedSegmenter`.
    n_threads : int
        Threads for reading the images and preparing their per-pixel features; the boosted
        trees use OpenMP's own threads.
    progress : callable, optional
        Called with one line per step.
    limit : int, optional
        Use only the first ``limit`` images with masks (for tests).

    Returns
    -------
    path : pathlib.Path
        The file written.
    problems : list of Problem
        Images or masks that could not be used (skipped, one line each).

    Raises
    ------
    DatasetError
        No usable image with a mask.
    """
    from hamfeat.datasets.ham10000 import load_dataset
    from hamfeat.errors import DatasetError, HamfeatError, Problem
    from hamfeat.imageio import (
        CANONICAL_LONG_SIDE,
        decode_image,
        mask_to_canonical,
        read_bytes,
        read_mask,
        to_canonical,
    )
    from hamfeat.segment_learned import save_segmenter

    say = progress or (lambda _msg: None)
    ds = load_dataset(data)
    problems = list(ds.problems)
    rows = ds.table[ds.table["mask_path"].notna()]
    if limit is not None:
        rows = rows.head(int(limit))

    def read(row) -> tuple[np.ndarray, np.ndarray] | Problem:
        try:
            rgb = decode_image(read_bytes(row.image_path), row.image_path)
            mask = read_mask(row.mask_path, rgb.shape[:2])
        except HamfeatError as exc:
            return Problem(str(row.image_path), f"{exc}; not used for the segmenter", "warning")
        canon = to_canonical(rgb, CANONICAL_LONG_SIDE)
        cmask = mask_to_canonical(mask, canon.shape[:2])
        if not cmask.any() or cmask.all():
            return Problem(str(row.mask_path), "mask empty or full; not used", "warning")
        return canon, cmask

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max(1, int(n_threads))) as pool:
        got = list(pool.map(read, rows.itertuples(index=False)))
    images, masks, groups = [], [], []
    for row, item in zip(rows.itertuples(index=False), got, strict=True):
        if isinstance(item, Problem):
            problems.append(item)
            continue
        images.append(item[0])
        masks.append(item[1])
        groups.append(row.lesion_id if isinstance(row.lesion_id, str) else row.image_id)
    if len(set(groups)) < max(2, int(n_folds)):
        raise DatasetError(
            f"{ds.root}: {len(images)} usable image(s) with masks of {len(set(groups))} "
            f"lesion(s); {n_folds} lesion-grouped folds need at least {max(2, int(n_folds))} "
            "lesions"
        )
    say(f"read {len(images)} images with masks: {time.perf_counter() - t0:.0f} s")
    seg = CrossFittedSegmenter(n_folds, random_state, segmenter_params).fit(
        images, masks, groups, progress=say, n_threads=n_threads
    )
    path = save_segmenter(
        seg,
        output,
        extra={"data": str(ds.root), "n_images": len(images), "n_folds": int(n_folds),
               "random_state": int(random_state)},
    )
    return path, problems
