"""A lesion segmenter learned from reference masks (classical ML: a per-pixel boosted-tree
classifier on a multi-scale filter bank, with an auto-context second stage).

:class:`LearnedSegmenter` works on a coarse *grid* (:attr:`~LearnedSegmenter.grid_long_side`
pixels on the longer side, 50 by default: reference masks are smooth, and a mask brought down
to 50x38 and back loses about 0.006 Dice). For every grid pixel it computes
(:func:`pixel_features`):

* colour (CIE L*a*b*, RGB) at several Gaussian scales, each relative to the image's own skin
  (minus the median of the outer ring of the image outside the lesion prior, over its spread),
  and in absolute terms;
* gradient magnitude, difference of Gaussians and local standard deviation (texture);
* position (distance from the centre) and the dermatoscope frame;
* the classical segmenter of :mod:`hamfeat.segment` as a prior (stacking): its mask, the
  signed distance to its border, and its per-image quality and lesion fraction.

Stage 1 is a :class:`~sklearn.ensemble.HistGradientBoostingClassifier` fitted on a balanced
sample of lesion and skin pixels of every training image. Stage 2 (auto-context) is a second
HGB on the same features plus a filter bank on stage 1's probability map; its training maps
come from stage-1 models that did not see the image (inner cross-fitting, grouped by lesion
when groups are given). The final probability map is thresholded, the connected component
with the largest probability mass is kept and its holes are filled, and the mask is brought
to the input's size by bilinear interpolation of the (component-restricted) probability map.

Prediction does not call scikit-learn: the fitted trees are padded into complete binary trees
(:func:`complete_trees`) and evaluated by the Numba kernel
:func:`hamfeat._kernels.trees.complete_trees_raw`, which gives scikit-learn's raw scores bit
for bit at a fraction of the cost. Every step is deterministic: a fitted segmenter gives the
same mask for the same image, bit for bit.

Persist with :func:`save_segmenter` / :func:`load_segmenter` (skops, with an allow-list of the
types in the file).

Measured (``benchmarks/reports/segmentation_learned.md``, lesion-grouped 5-fold CV on the
10013 usable HAM10000 masks, settings chosen on a seed-1 development split): mean Dice 0.906,
median 0.947, 10th percentile 0.792, against 0.878 / 0.934 / 0.714 for
:func:`~hamfeat.segment.segment_lesion` in the same run; the pink, flat classes remain the
weakest (10th percentile akiec 0.58, bcc 0.57, vasc 0.58). It costs about 11x the classical
segmenter per image (``segmentation_learned_speed.md``); ``auto_context=False`` costs about 7x
for 0.004 less mean Dice.

Typical use: fit on canonical (300x225) images and their masks, predict on the canonical image;
``predict_mask(canonical, out_shape=original_shape)`` gives a mask at the original size.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.utils.validation import check_is_fitted

from hamfeat._kernels.trees import complete_trees_raw
from hamfeat.errors import ModelError
from hamfeat.segment import _frame, segment_lesion

__all__ = [
    "LearnedSegmenter",
    "complete_trees",
    "load_segmenter",
    "pixel_feature_names",
    "pixel_features",
    "save_segmenter",
]

#: Gaussian scales (grid pixels) of the colour filter bank.
SIGMAS = (1.0, 2.0, 4.0, 8.0)
#: Relative channels: CIE L*, a*, b* and R, G, B, each relative to the skin ring.
CHANNELS = ("lab_l", "lab_a", "lab_b", "rgb_r", "rgb_g", "rgb_b")
#: Smallest input side accepted.
MIN_SIDE = 16


def _grid_shape(h: int, w: int, long_side: int) -> tuple[int, int]:
    s = long_side / max(h, w)
    return max(8, round(h * s)), max(8, round(w * s))


def _gauss(x: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def _signed_distance(mask: np.ndarray, scale: float) -> np.ndarray:
    """Distance to the border of a uint8 0/1 mask, positive inside, over ``scale``."""
    m = np.ascontiguousarray(mask, np.uint8)
    if not m.any():
        return np.full(m.shape, -1.0, np.float32)
    if m.all():
        return np.full(m.shape, 1.0, np.float32)
    inside = cv2.distanceTransform(m, cv2.DIST_L2, 3)
    outside = cv2.distanceTransform(1 - m, cv2.DIST_L2, 3)
    return ((inside - outside) / np.float32(scale)).astype(np.float32)


def pixel_feature_names() -> list[str]:
    """Names of the stage-1 per-pixel features, in column order of :func:`pixel_features`."""
    names: list[str] = []
    for c in CHANNELS:
        names.append(f"{c}_rel_s0")
        if c.startswith("lab"):
            names += [f"{c}_rel_s{s:g}" for s in SIGMAS]
        else:
            names.append(f"{c}_rel_s{SIGMAS[0]:g}")
    names += ["lab_l_abs_s1", "lab_a_abs_s1", "lab_b_abs_s1"]
    names += ["lab_l_grad_s1", "lab_l_grad_s2", "lab_a_grad_s1", "lab_a_grad_s2"]
    names += ["lab_l_dog_s1_s4", "lab_a_dog_s1_s4", "lab_b_dog_s1_s4"]
    names += ["lab_l_localstd", "lab_a_localstd"]
    names += ["lab_dist_skin_s1", "lab_dist_lesion_s1", "lab_likeness_s1", "lab_likeness_s3"]
    names += ["pos_dx", "pos_dy", "pos_r2", "frame", "frame_dist"]
    names += ["otsu_mask", "otsu_sdist"]
    names += ["img_otsu_quality", "img_otsu_fraction", "img_frame_fraction",
              "img_contrast_l", "img_contrast_a", "img_contrast_b", "img_skin_l", "img_skin_a"]
    return names


def _context_feature_names() -> list[str]:
    return ["ctx_p_s0", "ctx_p_s1", "ctx_p_s2", "ctx_p_s4", "ctx_p_s8", "ctx_p_grad_s1",
            "ctx_sdist", "ctx_centroid_r", "ctx_img_mean_p", "ctx_img_frac_05"]


def _check_image(image: Any, name: str = "image") -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise TypeError(f"{name} must be uint8 RGB, got dtype {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name} must be (H, W, 3) RGB, got shape {image.shape}")
    if min(image.shape[:2]) < MIN_SIDE:
        raise ValueError(f"{name} must be at least {MIN_SIDE}x{MIN_SIDE}, got {image.shape[:2]}")
    return np.ascontiguousarray(image)


def _check_mask(mask: Any, shape: tuple[int, int], name: str = "mask") -> np.ndarray:
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(mask).__name__}")
    if mask.dtype != np.bool_:
        raise TypeError(f"{name} must be bool, got dtype {mask.dtype}")
    if mask.shape != shape:
        raise ValueError(f"{name} shape {mask.shape} does not match its image {shape}")
    return mask


class _Prepared:
    """Per-image grid data shared by the two stages."""

    __slots__ = ("features", "grid", "otsu_mask", "shape", "valid")

    def __init__(self, features, grid, otsu_mask, valid, shape):
        self.features = features  # float32 (h*w, d)
        self.grid = grid  # (h, w)
        self.otsu_mask = otsu_mask  # bool (H, W), the classical segmenter's mask
        self.valid = valid  # bool (h, w), not frame
        self.shape = shape  # (H, W)


def _prepare(image: np.ndarray, long_side: int) -> _Prepared:
    H, W = image.shape[:2]
    h, w = _grid_shape(H, W, long_side)
    mid = cv2.resize(image, (2 * w, 2 * h), interpolation=cv2.INTER_AREA)
    small = cv2.resize(mid, (w, h), interpolation=cv2.INTER_AREA)

    seg = segment_lesion(image)
    scale = float(max(h, w))
    otsu = cv2.resize(seg.mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    frame = cv2.resize(_frame(mid, 50, 3).astype(np.float32), (w, h),
                       interpolation=cv2.INTER_AREA)
    valid = frame < 0.5

    f32 = small.astype(np.float32) * np.float32(1.0 / 255.0)
    lab = cv2.cvtColor(f32, cv2.COLOR_RGB2LAB)
    chans = [lab[:, :, 0], lab[:, :, 1], lab[:, :, 2],
             f32[:, :, 0] * 100, f32[:, :, 1] * 100, f32[:, :, 2] * 100]

    # skin reference: the outer ring, outside the prior mask and the frame; lesion
    # reference: inside the prior mask (or the centre)
    dx, dy, r2, ring = _geometry(h, w)
    skin = ring & valid & (otsu < 0.5)
    if skin.sum() < 20:
        skin = valid & (otsu < 0.5)
    if skin.sum() < 20:
        skin = valid if valid.sum() >= 20 else np.ones((h, w), bool)
    inner = valid & (otsu >= 0.5)
    if inner.sum() < 4:
        inner = valid & (r2 < 0.25)
    if inner.sum() < 4:
        inner = np.ones((h, w), bool)

    stack = np.stack(chans, axis=-1)
    q25, med, q75 = np.percentile(stack[skin], [25, 50, 75], axis=0).astype(np.float32)
    spread = np.maximum(q75 - q25, np.float32(1.0))
    lesion_med = np.median(stack[inner][:, :3], axis=0).astype(np.float32)
    cols: list[np.ndarray] = []
    rel = []
    for i, c in enumerate(chans):
        z = (c - med[i]) / spread[i]
        rel.append(z)
        cols.append(z)
        for s in SIGMAS if i < 3 else SIGMAS[:1]:
            cols.append(_gauss(z, s))
    lab1 = [_gauss(c, 1.0) for c in chans[:3]]
    cols += lab1
    for c, g1 in zip(chans[:2], lab1[:2], strict=True):
        for g in (g1, _gauss(c, 2.0)):
            gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT)
            gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT)
            cols.append(cv2.magnitude(gx, gy))
    # relative channels at sigma 1 and 4 are columns 1 + 5k and 3 + 5k
    for k in range(3):
        cols.append(cols[5 * k + 1] - cols[5 * k + 3])
    lab_mid = cv2.cvtColor(mid.astype(np.float32) * np.float32(1.0 / 255.0), cv2.COLOR_RGB2LAB)
    for k in (0, 1):
        x = lab_mid[:, :, k]
        m1 = cv2.blur(x, (5, 5), borderType=cv2.BORDER_REFLECT)
        m2 = cv2.blur(x * x, (5, 5), borderType=cv2.BORDER_REFLECT)
        sd = np.sqrt(np.maximum(m2 - m1 * m1, 0.0))
        cols.append(cv2.resize(sd, (w, h), interpolation=cv2.INTER_AREA))
    # colour distance to the skin and to the lesion reference, and the likeness to the lesion
    d_skin = np.sqrt(sum((g - med[k]) ** 2 for k, g in enumerate(lab1)))
    d_les = np.sqrt(sum((g - lesion_med[k]) ** 2 for k, g in enumerate(lab1)))
    like = (d_skin - d_les) / (d_skin + d_les + np.float32(1.0))
    cols += [d_skin, d_les, like, _gauss(like, 3.0)]
    cols += [dx, dy, r2, frame]
    fr = (frame >= 0.5).astype(np.uint8)
    cols.append(_signed_distance(fr, scale) if fr.any() else np.full((h, w), 1.0, np.float32))
    cols += [otsu, _signed_distance((otsu >= 0.5).astype(np.uint8), scale)]
    consts = [seg.quality, float(otsu.mean()), seg.frame_fraction,
              float(lesion_med[0] - med[0]), float(lesion_med[1] - med[1]),
              float(lesion_med[2] - med[2]), float(med[0]), float(med[1])]
    cols += [np.full((h, w), v, np.float32) for v in consts]
    feats = np.empty((h * w, len(cols)), np.float32)
    for j, c in enumerate(cols):
        feats[:, j] = c.ravel()
    return _Prepared(feats, (h, w), seg.mask, valid, (H, W))


@lru_cache(maxsize=16)
def _geometry(h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Position maps ``dx, dy`` (-1..1), ``r2 = dx**2 + dy**2`` and the outer-ring mask of a
    grid (cached, read-only)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dx = (xx + 0.5) / w * 2 - 1
    dy = (yy + 0.5) / h * 2 - 1
    r2 = dx * dx + dy * dy
    band = max(2, round(0.15 * min(h, w)))
    ring = np.zeros((h, w), bool)
    ring[:band] = ring[-band:] = True
    ring[:, :band] = ring[:, -band:] = True
    for a in (dx, dy, r2, ring):
        a.setflags(write=False)
    return dx, dy, r2, ring


def pixel_features(image: np.ndarray, grid_long_side: int = 50) -> np.ndarray:
    """Stage-1 per-pixel features of an image on its grid.

    Parameters
    ----------
    image : numpy.ndarray
        ``uint8`` ``(H, W, 3)`` RGB, at least 16x16.
    grid_long_side : int
        Longer side of the grid.

    Returns
    -------
    numpy.ndarray
        ``float32`` ``(h, w, d)``, ``d = len(pixel_feature_names())``.
    """
    prep = _prepare(_check_image(image), grid_long_side)
    return prep.features.reshape(*prep.grid, -1)


def _largest_mass_component(p: np.ndarray, t: float) -> np.ndarray | None:
    """uint8 mask of the component of ``p >= t`` with the largest probability mass, holes
    filled; None when no pixel reaches ``t``."""
    bw = (p >= t).astype(np.uint8)
    if not bw.any():
        return None
    n, lab = cv2.connectedComponents(bw, connectivity=8)
    if n > 2:
        mass = np.bincount(lab.ravel(), weights=p.ravel().astype(np.float64), minlength=n)
        mass[0] = -1.0
        bw = (lab == int(np.argmax(mass))).astype(np.uint8)
    # fill holes: background not connected to the border
    h, w = bw.shape
    pad = np.zeros((h + 2, w + 2), np.uint8)
    pad[1:-1, 1:-1] = bw
    ff = pad.copy()
    cv2.floodFill(ff, None, (0, 0), 1)
    holes = ff[1:-1, 1:-1] == 0
    bw[holes] = 1
    return bw


def _context_features(p: np.ndarray, t: float, scale: float) -> np.ndarray:
    """Stage-2 filter bank on a stage-1 probability map ``p`` (float32 (h, w))."""
    h, w = p.shape
    comp = _largest_mass_component(p, t)
    if comp is not None:
        sd = _signed_distance(comp, scale)
        mo = cv2.moments(comp, binaryImage=True)
        cx, cy = mo["m10"] / mo["m00"], mo["m01"] / mo["m00"]
        rad = max(np.sqrt(mo["m00"] / np.pi), 1.0)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        cr = np.sqrt((xx - np.float32(cx)) ** 2 + (yy - np.float32(cy)) ** 2) / np.float32(rad)
    else:
        sd = np.full(p.shape, -1.0, np.float32)
        cr = np.full(p.shape, 10.0, np.float32)
    g1 = _gauss(p, 1.0)
    gx = cv2.Sobel(g1, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT)
    gy = cv2.Sobel(g1, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT)
    cols = [p, g1, _gauss(p, 2.0), _gauss(p, 4.0), _gauss(p, 8.0), cv2.magnitude(gx, gy), sd, cr,
            np.full(p.shape, float(p.mean()), np.float32),
            np.full(p.shape, float((p >= 0.5).mean()), np.float32)]
    out = np.empty((h * w, len(cols)), np.float32)
    for j, c in enumerate(cols):
        out[:, j] = c.ravel()
    return out


def complete_trees(model: HistGradientBoostingClassifier) -> tuple[np.ndarray, ...]:
    """Pad the trees of a fitted binary HGB into complete binary trees (heap order).

    Parameters
    ----------
    model : HistGradientBoostingClassifier
        Fitted on two classes, without categorical features.

    Returns
    -------
    tuple
        ``(feature int32 (T, 2**D - 1), threshold float64 (T, 2**D - 1),
        leaf float64 (T, 2**D), baseline float64 (1,))`` for
        :func:`hamfeat._kernels.trees.complete_trees_raw`; ``D`` is the deepest leaf's depth.

    Raises
    ------
    ValueError
        For a multi-class model.
    """
    check_is_fitted(model)
    if len(model.classes_) != 2:
        raise ValueError("complete_trees supports binary classifiers only")
    preds = [p[0] for p in model._predictors]
    depth = max([1] + [int(p.nodes["depth"].max()) for p in preds])
    n_inner = 2**depth - 1
    feature = np.zeros((len(preds), n_inner), np.int32)
    threshold = np.full((len(preds), n_inner), np.inf)
    leaf = np.zeros((len(preds), n_inner + 1))
    for t, p in enumerate(preds):
        nd = p.nodes
        stack = [(0, 0, 0)]
        while stack:
            k, s, level = stack.pop()
            if level == depth:
                leaf[t, k - n_inner] = nd["value"][s]
            elif nd["is_leaf"][s]:
                stack += [(2 * k + 1, s, level + 1), (2 * k + 2, s, level + 1)]
            else:
                feature[t, k] = nd["feature_idx"][s]
                threshold[t, k] = nd["num_threshold"][s]
                stack += [(2 * k + 1, int(nd["left"][s]), level + 1),
                          (2 * k + 2, int(nd["right"][s]), level + 1)]
    baseline = np.asarray(model._baseline_prediction, np.float64).ravel()[:1].copy()
    return feature, threshold, leaf, baseline


def _proba(trees: tuple[np.ndarray, ...], X: np.ndarray) -> np.ndarray:
    raw = complete_trees_raw(X, trees[0], trees[1], trees[2], float(trees[3][0]))
    return (1.0 / (1.0 + np.exp(-raw))).astype(np.float32)


class LearnedSegmenter(BaseEstimator):
    """Lesion segmenter learned from reference masks (per-pixel boosted trees, auto-context).

    Parameters
    ----------
    grid_long_side : int
        Longer side (pixels) of the grid the pixels are classified on.
    pixels_per_image : int
        Training pixels sampled from each image, half lesion and half skin when both exist.
    max_iter, max_depth, max_leaf_nodes, learning_rate, l2_regularization
        Parameters of both stages' :class:`~sklearn.ensemble.HistGradientBoostingClassifier`
        (no early stopping). ``max_depth`` bounds the prediction cost. A cheaper setting (60
        trees at learning rate 0.15, threshold 0.75) was as good in Dice on development splits
        (``benchmarks/reports/segmentation_learned_dev_r2*``) but cost 0.007 of the
        classifier's balanced accuracy on the development seeds (``gap_dev_seg60.md``), so the
        defaults stay 100 trees at 0.1, threshold 0.8.
    auto_context : bool
        Fit the second (auto-context) stage.
    inner_folds : int
        Folds of the inner cross-fitting that produces stage 2's training maps.
    threshold : float
        Probability threshold of the final map.
    context_threshold : float
        Threshold of stage 1's map whose main component the auto-context features describe
        (signed distance to its border, distance from its centroid).
    random_state : int
        Seed of the pixel sampling, the inner folds and the HGBs.

    Attributes
    ----------
    stage1_ : HistGradientBoostingClassifier
    stage2_ : HistGradientBoostingClassifier or None
    trees1_, trees2_ : tuple of numpy.ndarray
        The stages' trees as complete binary trees (see :func:`complete_trees`); ``trees2_``
        is ``()`` without auto-context.
    feature_names_in_ : numpy.ndarray of str
        Stage-1 pixel feature names (:func:`pixel_feature_names`).
    n_features_in_ : int
    n_training_images_ : int

    Examples
    --------
    >>> import numpy as np, cv2
    >>> rng = np.random.default_rng(0)
    >>> def disc(i):
    ...     img = np.clip(rng.normal((200, 160, 140), 8, (120, 160, 3)), 0, 255).astype(np.uint8)
    ...     m = np.zeros((120, 160), np.uint8)
    ...     _ = cv2.circle(m, (80 + i, 60), 30 + i, 1, -1)
    ...     img[m > 0] = (110, 70, 50)
    ...     return img, m > 0
    >>> data = [disc(i) for i in range(6)]
    >>> seg = LearnedSegmenter(max_iter=20, pixels_per_image=200).fit(
    ...     [d[0] for d in data], [d[1] for d in data])
    >>> img, ref = disc(3)
    >>> m = seg.predict_mask(img)
    >>> bool(2 * (m & ref).sum() / (m.sum() + ref.sum()) > 0.9)
    True
    """

    def __init__(
        self,
        grid_long_side: int = 50,
        pixels_per_image: int = 100,
        max_iter: int = 100,
        max_depth: int = 6,
        max_leaf_nodes: int = 31,
        learning_rate: float = 0.1,
        l2_regularization: float = 0.0,
        auto_context: bool = True,
        inner_folds: int = 2,
        threshold: float = 0.8,
        context_threshold: float = 0.7,
        random_state: int = 0,
    ) -> None:
        self.grid_long_side = grid_long_side
        self.pixels_per_image = pixels_per_image
        self.max_iter = max_iter
        self.max_depth = max_depth
        self.max_leaf_nodes = max_leaf_nodes
        self.learning_rate = learning_rate
        self.l2_regularization = l2_regularization
        self.auto_context = auto_context
        self.inner_folds = inner_folds
        self.threshold = threshold
        self.context_threshold = context_threshold
        self.random_state = random_state

    # ---------------------------------------------------------------- fitting
    def _hgb(self, seed: int) -> HistGradientBoostingClassifier:
        return HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            max_depth=self.max_depth,
            max_leaf_nodes=self.max_leaf_nodes,
            learning_rate=self.learning_rate,
            l2_regularization=self.l2_regularization,
            early_stopping=False,
            random_state=seed,
        )

    def _sample(self, prep: _Prepared, mask: np.ndarray, rng: np.random.Generator):
        h, w = prep.grid
        frac = cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
        y = (frac >= 0.5).ravel()
        cand = prep.valid.ravel() | y
        pos = np.flatnonzero(cand & y)
        neg = np.flatnonzero(cand & ~y)
        k = self.pixels_per_image
        if len(pos) and len(neg):
            kp = min(len(pos), k // 2)
            kn = min(len(neg), k - kp)
        else:
            kp, kn = min(len(pos), k), min(len(neg), k)
        idx = np.concatenate([rng.choice(pos, kp, replace=False) if kp else pos[:0],
                              rng.choice(neg, kn, replace=False) if kn else neg[:0]])
        return idx, y

    def fit(
        self,
        images: Sequence[np.ndarray],
        masks: Sequence[np.ndarray],
        groups: Sequence[Any] | None = None,
        image_weight: Sequence[float] | None = None,
    ) -> LearnedSegmenter:
        """Fit the segmenter on images and their reference masks.

        Parameters
        ----------
        images : sequence of numpy.ndarray
            ``uint8`` ``(H, W, 3)`` RGB images (any size of at least 16x16; the canonical
            300x225 is what the library uses).
        masks : sequence of numpy.ndarray
            ``bool`` ``(H, W)`` reference masks, one per image.
        groups : sequence, optional
            A group label per image (e.g. the lesion id): the inner cross-fitting of the
            auto-context stage never fits and predicts within one group.
        image_weight : sequence of float, optional
            A non-negative weight per image, given to each of its sampled pixels (e.g. larger
            for the images of rare diagnoses); default 1.

        Returns
        -------
        LearnedSegmenter
            ``self``.

        Raises
        ------
        TypeError, ValueError
            Wrong dtype or shape of an image or mask (the message gives its index), different
            numbers of images and masks, fewer than 2 images, or no lesion or no skin pixel in
            the whole sample.
        """
        if len(images) != len(masks):
            raise ValueError(f"{len(images)} images but {len(masks)} masks")
        if len(images) < 2:
            raise ValueError("fit needs at least 2 images")
        if groups is not None and len(groups) != len(images):
            raise ValueError(f"{len(images)} images but {len(groups)} groups")
        if image_weight is not None:
            wt = np.asarray(image_weight, dtype=np.float64)
            if wt.shape != (len(images),) or not np.all(np.isfinite(wt)) or (wt < 0).any():
                raise ValueError("image_weight must be one finite, non-negative value per image")
        preps = []
        for i, (img, m) in enumerate(zip(images, masks, strict=True)):
            img = _check_image(img, f"images[{i}]")
            _check_mask(m, img.shape[:2], f"masks[{i}]")
            preps.append(_prepare(img, self.grid_long_side))
        return self._fit_prepared(preps, masks, groups, image_weight)

    def _fit_prepared(
        self,
        preps: list[_Prepared],
        masks: Sequence[np.ndarray],
        groups: Sequence[Any] | None,
        image_weight: Sequence[float] | None = None,
        n_threads: int = 1,
    ) -> LearnedSegmenter:
        """:meth:`fit` on images already through :func:`_prepare` (a benchmark reuses them).

        Unit image weights are no weights: the boosted trees are then fitted without
        ``sample_weight`` (scikit-learn's weighted bin thresholds cost about 25 s per fit on
        fewer than 200 000 rows, and unit weights mean the same). ``n_threads`` threads compute
        the inner folds' probability maps (the same maps, bit for bit, in any number).
        """
        labels, samples = [], []
        rng = np.random.default_rng(self.random_state)
        for prep, m in zip(preps, masks, strict=True):
            idx, y = self._sample(prep, np.asarray(m, dtype=bool), rng)
            labels.append(y)
            samples.append(idx)
        y_all = np.concatenate([lab[s] for lab, s in zip(labels, samples, strict=True)])
        if y_all.all() or not y_all.any():
            raise ValueError("the training sample needs both lesion and skin pixels")
        X1 = np.concatenate([p.features[s] for p, s in zip(preps, samples, strict=True)])
        wimg = (np.ones(len(preps)) if image_weight is None
                else np.asarray(image_weight, dtype=np.float64))
        weighted = bool((wimg != 1.0).any())

        def weights(idx) -> np.ndarray | None:
            if not weighted:
                return None
            return np.concatenate([np.full(len(samples[i]), wimg[i]) for i in idx])

        w_all = weights(range(len(preps)))
        self.stage1_ = self._hgb(self.random_state).fit(X1, y_all, sample_weight=w_all)
        self.trees1_ = complete_trees(self.stage1_)
        self.stage2_ = None
        self.trees2_ = ()
        if self.auto_context:
            n = len(preps)
            folds = self._inner_folds(n, groups)
            maps: list[np.ndarray | None] = [None] * n
            for k, test in enumerate(folds):
                train = np.setdiff1d(np.arange(n), test)
                Xk = np.concatenate([preps[i].features[samples[i]] for i in train])
                yk = np.concatenate([labels[i][samples[i]] for i in train])
                if yk.all() or not yk.any():
                    model_trees = self.trees1_
                else:
                    model_trees = complete_trees(self._hgb(self.random_state + 1 + k).fit(
                        Xk, yk, sample_weight=weights(train)))
                with ThreadPoolExecutor(max(1, int(n_threads))) as pool:
                    got = pool.map(lambda i, t=model_trees: _proba(t, preps[i].features), test)
                    for i, m in zip(test, got, strict=True):
                        maps[i] = m
            X2 = np.concatenate([
                np.hstack([preps[i].features, self._ctx(preps[i], maps[i])])[samples[i]]
                for i in range(n)
            ])
            self.stage2_ = self._hgb(self.random_state + 100).fit(X2, y_all, sample_weight=w_all)
            self.trees2_ = complete_trees(self.stage2_)
        self.feature_names_in_ = np.asarray(pixel_feature_names(), dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.n_training_images_ = len(preps)
        return self

    def _inner_folds(self, n: int, groups: Sequence[Any] | None) -> list[np.ndarray]:
        k = max(2, min(int(self.inner_folds), n))
        rng = np.random.default_rng(self.random_state + 7)
        if groups is None:
            perm = rng.permutation(n)
            return [np.sort(perm[j::k]) for j in range(k)]
        _, g = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
        gperm = rng.permutation(g.max() + 1)
        fold_of_group = np.empty_like(gperm)
        fold_of_group[gperm] = np.arange(len(gperm)) % k
        f = fold_of_group[g]
        return [np.flatnonzero(f == j) for j in range(k) if (f == j).any()]

    def _ctx(self, prep: _Prepared, p_flat: np.ndarray) -> np.ndarray:
        p = p_flat.reshape(prep.grid)
        return _context_features(p, self.context_threshold, float(max(prep.grid)))

    # ---------------------------------------------------------------- prediction
    def _grid_proba(self, prep: _Prepared, stages: int | None = None) -> np.ndarray:
        p = _proba(self.trees1_, prep.features)
        if self.trees2_ and stages != 1:
            X2 = np.ascontiguousarray(np.hstack([prep.features, self._ctx(prep, p)]))
            p = _proba(self.trees2_, X2)
        p = p.reshape(prep.grid)
        p[~prep.valid] = 0.0
        return p

    def predict_proba_map(self, image: np.ndarray) -> np.ndarray:
        """Lesion probability of every grid pixel.

        Parameters
        ----------
        image : numpy.ndarray
            ``uint8`` ``(H, W, 3)`` RGB, at least 16x16.

        Returns
        -------
        numpy.ndarray
            ``float32`` ``(h, w)``, the grid (longer side :attr:`grid_long_side`); 0 on the
            dermatoscope frame.
        """
        check_is_fitted(self, "trees1_")
        return self._grid_proba(_prepare(_check_image(image), self.grid_long_side))

    def predict_mask(
        self, image: np.ndarray, out_shape: tuple[int, int] | None = None
    ) -> np.ndarray:
        """Lesion mask of an image.

        Parameters
        ----------
        image : numpy.ndarray
            ``uint8`` ``(H, W, 3)`` RGB, at least 16x16 (the canonical 300x225 is what the
            segmenter is trained on).
        out_shape : tuple of int, optional
            ``(H', W')`` of the returned mask (e.g. the original image's size when ``image``
            is its canonical copy); default ``(H, W)``. The probability map is interpolated
            straight to that size.

        Returns
        -------
        numpy.ndarray
            ``bool`` ``out_shape``, never empty and never full. When no grid pixel reaches the
            threshold, the classical segmenter's mask (:func:`hamfeat.segment.segment_lesion`)
            is returned (resized by area voting).

        Raises
        ------
        TypeError, ValueError
            Not a ``uint8`` ``(H, W, 3)`` array, smaller than 16x16, or a bad ``out_shape``.
        """
        check_is_fitted(self, "trees1_")
        prep = _prepare(_check_image(image), self.grid_long_side)
        return self._finish(self._grid_proba(prep), prep, out_shape=out_shape)

    def _finish(
        self,
        p: np.ndarray,
        prep: _Prepared,
        threshold: float | None = None,
        out_shape: tuple[int, int] | None = None,
    ) -> np.ndarray:
        t = float(self.threshold if threshold is None else threshold)
        if out_shape is None:
            H, W = prep.shape
        else:
            if (len(out_shape) != 2 or min(out_shape) < 1
                    or not all(isinstance(v, (int, np.integer)) for v in out_shape)):
                raise ValueError(f"out_shape must be (H, W) positive ints, got {out_shape!r}")
            H, W = int(out_shape[0]), int(out_shape[1])
        comp = _largest_mass_component(p, t)
        mask = None
        if comp is not None:
            # keep the probabilities near the component only; inside it at least 1
            near = cv2.dilate(comp, np.ones((3, 3), np.uint8)) > 0
            q = np.where(near, p, 0.0).astype(np.float32)
            q[comp > 0] = 1.0
            up = cv2.resize(q, (W, H), interpolation=cv2.INTER_LINEAR)
            mask = up >= t
        if mask is None or not mask.any():
            mask = prep.otsu_mask
            if mask.shape != (H, W):
                mask = cv2.resize(mask.astype(np.uint8) * np.uint8(255), (W, H),
                                  interpolation=cv2.INTER_LINEAR) >= 128
            mask = mask.copy()
            if not mask.any():
                mask[H // 2, W // 2] = True
        if mask.all():
            mask[0, :] = mask[-1, :] = False
            mask[:, 0] = mask[:, -1] = False
        return mask

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the per-pixel features: stage 1's, then the auto-context ones.

        Returns
        -------
        numpy.ndarray of str
        """
        check_is_fitted(self, "trees1_")
        names = list(self.feature_names_in_)
        if self.trees2_:
            names += _context_feature_names()
        return np.asarray(names, dtype=object)


# ------------------------------------------------------------------------------ persistence
_SEGMENTER_FORMAT = "hamfeat-learned-segmenter"
_SEGMENTER_FORMAT_VERSION = 1


def save_segmenter(segmenter: BaseEstimator, path: str | os.PathLike[str],
                   extra: dict | None = None) -> Path:
    """Save a fitted segmenter with :mod:`skops.io`.

    Parameters
    ----------
    segmenter : LearnedSegmenter or hamfeat.segmenter.CrossFittedSegmenter
        Fitted.
    path : path-like
        Destination (conventionally ``*.skops``); parent folders are created; written
        atomically.
    extra : dict, optional
        JSON-like extras stored beside it (e.g. training data description, CV Dice).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ModelError
        When the file cannot be written.
    """
    import skops.io as sio

    from hamfeat import __version__

    check_is_fitted(segmenter)
    path = Path(path)
    payload = {
        "format": _SEGMENTER_FORMAT,
        "format_version": _SEGMENTER_FORMAT_VERSION,
        "hamfeat_version": __version__,
        "extra": json.loads(json.dumps(dict(extra or {}), default=str)),
        "segmenter": segmenter,
    }
    from hamfeat._io import write_output
    from hamfeat.errors import OutputError

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_output(
            path, lambda fh: sio.dump(payload, fh, compression=zipfile.ZIP_DEFLATED), binary=True
        )
    except OutputError as exc:
        raise ModelError(path, f"cannot save the segmenter: {exc}") from exc
    return path


#: Types (as skops names them) that a segmenter file may hold beyond skops's own defaults.
_TRUSTED_EXACT = frozenset(
    {"builtins.dict", "builtins.list", "builtins.tuple", "builtins.NoneType", "builtins.type",
     "numpy.ndarray", "numpy.dtype", "numpy.random.RandomState",
     "numpy.random.mtrand.RandomState", "numpy.random._mt19937.MT19937",
     f"{__name__}.LearnedSegmenter", "hamfeat.segmenter.CrossFittedSegmenter"}
    | {f"numpy.{t}" for t in ("float64", "float32", "int64", "int32", "uint8", "bool_")}
    | {f"numpy.dtypes.{t}DType" for t in ("Float64", "Float32", "Int64", "Int32", "UInt8",
                                          "Bool", "Object")}
)


def _trusted(name: str) -> bool:
    """Allow-list of :func:`load_segmenter`: the exact names above and scikit-learn classes
    (never functions)."""
    if name in _TRUSTED_EXACT:
        return True
    if not name.startswith("sklearn."):
        return False
    import importlib

    module, _, attr = name.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError):
        return False
    return isinstance(obj, type)


def load_segmenter(path: str | os.PathLike[str]) -> BaseEstimator:
    """Load a segmenter saved by :func:`save_segmenter`, refusing untrusted types.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    LearnedSegmenter

    Raises
    ------
    ModelError
        ``"<path>: <reason>"``: missing or non-skops file, an untrusted type in the file, or a
        file that is not a hamfeat segmenter.
    """
    import skops.io as sio

    path = Path(path)
    if not path.is_file():
        raise ModelError(path, "segmenter file not found")
    if not zipfile.is_zipfile(path):
        raise ModelError(path, "not a skops segmenter file (not a zip archive)")
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:
        raise ModelError(path, f"not a readable skops file ({type(exc).__name__}: {exc})") from exc
    refused = sorted(t for t in untrusted if not _trusted(t))
    if refused:
        raise ModelError(path, f"refusing to load: untrusted type(s) in the file: "
                         f"{', '.join(refused[:5])}")
    try:
        payload = sio.load(path, trusted=list(untrusted))
    except Exception as exc:
        raise ModelError(path, f"cannot load the segmenter ({type(exc).__name__}: {exc})") from exc
    if (not isinstance(payload, dict) or payload.get("format") != _SEGMENTER_FORMAT
            or not isinstance(payload.get("segmenter"), BaseEstimator)):
        raise ModelError(path, "not a hamfeat segmenter file")
    if payload.get("format_version") != _SEGMENTER_FORMAT_VERSION:
        raise ModelError(path, f"segmenter file format {payload.get('format_version')!r} is "
                         f"not supported (this hamfeat reads {_SEGMENTER_FORMAT_VERSION})")
    return payload["segmenter"]
