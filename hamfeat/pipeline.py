"""The one path every image takes, and the scikit-learn transformer over it.

::

    file ──► decode + guards ──► canonical size ──► [hair removal] ──► mask ──► [colour constancy]
             (imageio)            (imageio)          (preprocess)       given, or   (preprocess)
                                                                        segment.py, or
                                                                        the whole image
         ──► feature families (features/, kernels in _kernels/) ──► one named row

    [...]: optional, off by default.

Feature extraction (``hamfeat features``), training, cross-validation and scoring all call
:func:`extract_file` / :func:`compute_features`; they differ only in where the rows go.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from hamfeat.errors import HamfeatError, MaskError
from hamfeat.features import FEATURES_VERSION, Context, feature_names, get_families
from hamfeat.imageio import (
    CANONICAL_LONG_SIDE,
    decode_image,
    mask_to_canonical,
    read_bytes,
    read_mask,
    to_canonical,
)
from hamfeat.preprocess import remove_hair, shades_of_gray
from hamfeat.segment import segment_lesion
from hamfeat.segment_learned import MIN_SIDE as LEARNED_MIN_SIDE
from hamfeat.segmenter import file_sha, get_segmenter

__all__ = [
    "FeatureConfig",
    "FeatureExtractor",
    "ImageFeatures",
    "PreparedImage",
    "compute_features",
    "extract_file",
    "prepare_file",
    "prepare_image",
]

log = logging.getLogger("hamfeat")

#: Where features are computed: inside the lesion mask, or over the whole image (no mask).
REGIONS: tuple[str, ...] = ("lesion", "whole")


@dataclass(frozen=True)
class FeatureConfig:
    """Everything that determines the feature values of an image.

    Parameters
    ----------
    families : tuple of str, optional
        Feature families by name (``None``: all defaults, see :mod:`hamfeat.features`).
    color_constancy : bool
        Apply Shades-of-Gray (p=6) colour constancy before the features. Off by default:
        lesion-grouped cross-validation showed it lowers the ensemble's balanced accuracy
        (``benchmarks/reports/cv_report.md``, colour-constancy ablation).
    hair_removal : bool
        Remove dark hairs (black-hat + inpainting) before segmentation and features.
    long_side : int
        Canonical resolution: the longer image side in pixels.
    region : {"lesion", "whole"}
        ``"lesion"``: features inside the lesion mask (given, or segmented automatically);
        ``"whole"``: no mask, every pixel of the image (chest X-rays). Left out of
        :meth:`as_dict` (and so of :meth:`key`) when ``"lesion"``, so the keys of existing
        caches and models do not change.
    segmenter : str, optional
        A learned segmenter file (``hamfeat train-segmenter``, see :mod:`hamfeat.segmenter`)
        that makes the automatic masks; ``None``: the classical segmenter
        (:func:`hamfeat.segment.segment_lesion`). :meth:`as_dict` records the file's hash, not
        its path (and nothing when ``None``, so existing keys do not change).
    """

    families: tuple[str, ...] | None = None
    color_constancy: bool = False
    hair_removal: bool = False
    long_side: int = CANONICAL_LONG_SIDE
    region: str = "lesion"
    segmenter: str | None = None

    def __post_init__(self) -> None:
        fams = tuple(f.name for f in get_families(self.families))
        object.__setattr__(self, "families", fams)
        if int(self.long_side) < 32:
            raise ValueError(f"long_side must be at least 32, got {self.long_side}")
        if self.region not in REGIONS:
            raise ValueError(f"region must be one of {', '.join(REGIONS)}, got {self.region!r}")

    def feature_names(self) -> list[str]:
        """The feature names this configuration produces, in order."""
        return feature_names(self.families)

    def as_dict(self) -> dict:
        """A JSON-able description, with the feature-definition version."""
        d = asdict(self)
        d["families"] = list(self.families)
        if self.region == "lesion":
            del d["region"]
        if self.segmenter is None:
            del d["segmenter"]
        else:
            d["segmenter"] = file_sha(self.segmenter)
        d["features_version"] = FEATURES_VERSION
        return d

    def key(self) -> str:
        """A short stable hash of :meth:`as_dict` (part of every cache key)."""
        blob = json.dumps(self.as_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


@dataclass
class ImageFeatures:
    """The features of one image.

    Attributes
    ----------
    values : numpy.ndarray
        ``float64``, one value per name of :meth:`FeatureConfig.feature_names`; NaN where a
        feature could not be computed.
    mask_source : str
        ``"given"``, ``"auto"``, or ``"whole"`` (no mask: ``FeatureConfig(region="whole")``).
    mask_method : str
        ``"given"``, or the automatic segmentation's method / fallback name.
    warnings : list of str
        One line each (a rejected mask, a family that failed). Returned, not logged: the batch
        commands write them to their errors file, :class:`FeatureExtractor` logs them.
    """

    values: np.ndarray
    mask_source: str
    mask_method: str
    warnings: list[str] = field(default_factory=list)


@dataclass
class PreparedImage:
    """An image as the feature families see it, before colour constancy.

    Attributes
    ----------
    rgb : numpy.ndarray
        ``uint8`` ``(h, w, 3)`` at the canonical size (after hair removal, if configured).
    mask : numpy.ndarray
        ``bool`` ``(h, w)`` lesion mask used for the features.
    mask_source, mask_method : str
        As in :class:`ImageFeatures`.
    warnings : list of str
    """

    rgb: np.ndarray
    mask: np.ndarray
    mask_source: str
    mask_method: str
    warnings: list[str] = field(default_factory=list)


def prepare_image(
    rgb: np.ndarray,
    mask: np.ndarray | None,
    config: FeatureConfig,
    *,
    name: str = "<array>",
) -> PreparedImage:
    """Canonical size, optional hair removal and the lesion mask: the first steps of
    :func:`compute_features` (which calls it), also used to show what the features saw.

    Parameters
    ----------
    rgb : numpy.ndarray
        ``uint8`` ``(H, W, 3)`` RGB at any size.
    mask : numpy.ndarray, optional
        ``bool`` ``(H, W)`` lesion mask; ``None`` (or an unusable one) segments automatically.
    config : FeatureConfig
    name : str
        The image's name, used in warnings.

    Returns
    -------
    PreparedImage
    """
    warnings: list[str] = []
    if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3):
        raise TypeError(f"{name}: image must be a uint8 (H, W, 3) array")
    canon = to_canonical(rgb, config.long_side)
    if config.hair_removal:
        canon = remove_hair(canon)
    cmask = None
    if config.region == "whole":
        mask = None  # every pixel; no segmentation
    if mask is not None:
        if mask.shape != rgb.shape[:2]:
            raise MaskError(name, f"mask shape {mask.shape} differs from image {rgb.shape[:2]}")
        cmask = mask_to_canonical(np.asarray(mask, dtype=bool), canon.shape[:2])
        n = int(cmask.sum())
        if n == 0 or n == cmask.size:
            what = "empty" if n == 0 else "covers the whole image"
            warnings.append(f"{name}: mask {what} at canonical size; segmented automatically")
            cmask = None
    if config.region == "whole":
        cmask, source, method = np.ones(canon.shape[:2], dtype=bool), "whole", "whole"
    elif cmask is None and config.segmenter is not None and min(canon.shape[:2]) < LEARNED_MIN_SIDE:
        # too thin for the learned segmenter's grid (a strip): the classical segmenter, named
        # as a fallback so that score flags it (seg_fallback)
        seg = segment_lesion(canon)
        cmask, source, method = seg.mask, "auto", f"fallback_small_{seg.method}"
        warnings.append(
            f"{name}: {canon.shape[1]}x{canon.shape[0]} at canonical size, too small for the "
            f"learned segmenter (at least {LEARNED_MIN_SIDE}x{LEARNED_MIN_SIDE}); segmented "
            "classically"
        )
    elif cmask is None and config.segmenter is not None:
        cmask, method = get_segmenter(config.segmenter).segment(canon)
        source = "auto"
    elif cmask is None:
        seg = segment_lesion(canon)
        cmask, source, method = seg.mask, "auto", seg.method
    else:
        source, method = "given", "given"
    return PreparedImage(canon, cmask, source, method, warnings)


def compute_features(
    rgb: np.ndarray,
    mask: np.ndarray | None = None,
    config: FeatureConfig | None = None,
    *,
    name: str = "<array>",
) -> ImageFeatures:
    """Compute the features of one decoded image.

    Parameters
    ----------
    rgb : numpy.ndarray
        ``uint8`` ``(H, W, 3)`` RGB at any size.
    mask : numpy.ndarray, optional
        ``bool`` ``(H, W)`` lesion mask at the image's size; ``None`` segments automatically.
        Ignored when ``config.region == "whole"``.
    config : FeatureConfig, optional
        Defaults to ``FeatureConfig()``.
    name : str
        The image's name, used in warnings.

    Returns
    -------
    ImageFeatures
    """
    config = config or FeatureConfig()
    prep = prepare_image(rgb, mask, config, name=name)
    canon, cmask, warnings = prep.rgb, prep.mask, prep.warnings
    source, method = prep.mask_source, prep.mask_method
    if config.color_constancy:
        canon = shades_of_gray(canon, 6.0)
    ctx = Context(canon, cmask)
    parts = []
    for fam in get_families(config.families):
        n = len(fam.names())
        try:
            values = np.asarray(fam.compute(ctx), dtype=np.float64)
            if values.shape != (n,):
                raise ValueError(f"returned {values.shape} values, expected ({n},)")
        except Exception as exc:  # one failing family is NaN + warning, never a dead batch
            warnings.append(f"{name}: feature family {fam.name} failed ({exc}); set to NaN")
            values = np.full(n, np.nan)
        inf = np.isinf(values)
        if inf.any():  # undefined, as NaN is: no model or statistic can take an infinity
            bad = [fam.names()[i] for i in np.flatnonzero(inf)]
            warnings.append(
                f"{name}: infinite value of {', '.join(bad[:3])}"
                + (f" and {len(bad) - 3} more" if len(bad) > 3 else "") + "; set to NaN"
            )
            values = np.where(inf, np.nan, values)
        parts.append(values)
    return ImageFeatures(np.concatenate(parts), source, method, warnings)


def extract_file(
    image_path: str | os.PathLike[str],
    mask_path: str | os.PathLike[str] | None = None,
    config: FeatureConfig | None = None,
    *,
    image_bytes: bytes | None = None,
) -> ImageFeatures:
    """Read an image (and its mask, if any) and compute its features.

    A mask that cannot be used (unreadable, wrong size, empty, full) is replaced by automatic
    segmentation, with a warning naming the mask file.

    Parameters
    ----------
    image_path : path-like
        A JPEG or PNG file.
    mask_path : path-like, optional
        Its lesion mask.
    config : FeatureConfig, optional
        Defaults to ``FeatureConfig()``.
    image_bytes : bytes, optional
        The file's content, when the caller has already read it.

    Returns
    -------
    ImageFeatures

    Raises
    ------
    ImageError
        When the image itself cannot be used (one line naming the file).
    """
    rgb, mask, warnings = _read_image_and_mask(image_path, mask_path, image_bytes)
    result = compute_features(rgb, mask, config, name=str(image_path))
    result.warnings[:0] = warnings
    return result


def _read_image_and_mask(image_path, mask_path, image_bytes=None):
    """Decode an image and read its mask; an unusable mask is a warning, not an error."""
    data = image_bytes if image_bytes is not None else read_bytes(image_path)
    rgb = decode_image(data, image_path)
    mask = None
    warnings = []
    if mask_path is not None and not pd.isna(mask_path):
        try:
            mask = read_mask(mask_path, rgb.shape[:2])
        except MaskError as exc:
            warnings.append(f"{exc}; segmented automatically")
    return rgb, mask, warnings


def prepare_file(
    image_path: str | os.PathLike[str],
    mask_path: str | os.PathLike[str] | None = None,
    config: FeatureConfig | None = None,
) -> tuple[PreparedImage, tuple[int, int]]:
    """Read an image (and its mask) as :func:`extract_file` does, and prepare it
    (:func:`prepare_image`) without computing features: what the features of the file saw.

    Parameters
    ----------
    image_path : path-like
    mask_path : path-like, optional
    config : FeatureConfig, optional

    Returns
    -------
    PreparedImage
    tuple of int
        The decoded image's own ``(height, width)``.

    Raises
    ------
    ImageError
        When the image cannot be used.
    """
    rgb, mask, warnings = _read_image_and_mask(image_path, mask_path)
    prep = prepare_image(rgb, mask, config or FeatureConfig(), name=str(image_path))
    prep.warnings[:0] = warnings
    return prep, (int(rgb.shape[0]), int(rgb.shape[1]))


class FeatureExtractor(TransformerMixin, BaseEstimator):
    """scikit-learn transformer: images in, the named feature matrix out.

    Parameters
    ----------
    families : sequence of str, optional
        Feature families by name (``None``: all defaults).
    color_constancy : bool
        Shades-of-Gray colour constancy before the features (off by default, see
        :class:`FeatureConfig`).
    hair_removal : bool
        Black-hat hair removal before segmentation and features.
    long_side : int
        Canonical resolution (longer side, pixels).
    region : {"lesion", "whole"}
        Features inside the lesion mask, or over the whole image (see :class:`FeatureConfig`).
    segmenter : str, optional
        A learned segmenter file for the automatic masks (see :class:`FeatureConfig`).

    Notes
    -----
    ``X`` may be a DataFrame with an ``image_path`` column (and optionally ``mask_path``), a
    sequence of file paths, a sequence of ``uint8`` RGB arrays, or a sequence of
    ``(rgb, mask)`` pairs. An image that cannot be read gives a row of NaN and a logged
    warning naming it; the rest of the batch is computed.

    Examples
    --------
    >>> import numpy as np
    >>> rgb = np.full((45, 60, 3), 200, np.uint8); rgb[15:30, 20:40] = 60
    >>> ext = FeatureExtractor(families=["shape"]).fit([rgb])
    >>> X = ext.transform([rgb])
    >>> X.shape, ext.get_feature_names_out()[0]
    ((1, 21), 'shape_area_frac')
    """

    def __init__(
        self,
        families: tuple[str, ...] | list[str] | None = None,
        color_constancy: bool = False,
        hair_removal: bool = False,
        long_side: int = CANONICAL_LONG_SIDE,
        region: str = "lesion",
        segmenter: str | None = None,
    ) -> None:
        self.families = families
        self.color_constancy = color_constancy
        self.hair_removal = hair_removal
        self.long_side = long_side
        self.region = region
        self.segmenter = segmenter

    def _config(self) -> FeatureConfig:
        fams = None if self.families is None else tuple(self.families)
        return FeatureConfig(
            fams, self.color_constancy, self.hair_removal, self.long_side, self.region,
            self.segmenter,
        )

    def fit(self, X=None, y=None) -> FeatureExtractor:
        """Validate the parameters and fix the output names; learns nothing from ``X``.

        Returns
        -------
        FeatureExtractor
            ``self``.
        """
        self.config_ = self._config()
        self.feature_names_out_ = np.asarray(self.config_.feature_names(), dtype=object)
        return self

    def transform(self, X) -> np.ndarray:
        """Compute the feature matrix.

        Returns
        -------
        numpy.ndarray
            ``float64`` ``(n_images, n_features)``.
        """
        if not hasattr(self, "config_"):
            self.fit()
        items = _as_items(X)
        out = np.full((len(items), len(self.feature_names_out_)), np.nan)
        for i, (image, mask) in enumerate(items):
            try:
                if isinstance(image, np.ndarray):
                    res = compute_features(image, mask, self.config_, name=f"X[{i}]")
                else:
                    res = extract_file(image, mask, self.config_)
            except (HamfeatError, TypeError) as exc:
                log.warning("%s; row set to NaN", exc)
                continue
            for w in res.warnings:
                log.warning(w)
            out[i] = res.values
        return out

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """The feature names, e.g. ``glcm_d1_contrast_mean``."""
        if not hasattr(self, "feature_names_out_"):
            self.fit()
        return self.feature_names_out_.copy()


def _as_items(X) -> list[tuple[object, object]]:
    if isinstance(X, pd.DataFrame):
        if "image_path" not in X.columns:
            raise ValueError("a DataFrame X needs an 'image_path' column")
        masks = X["mask_path"] if "mask_path" in X.columns else [None] * len(X)
        return list(zip(X["image_path"], masks, strict=True))
    if isinstance(X, np.ndarray) and X.dtype == np.uint8 and X.ndim == 3:
        X = [X]
    items = []
    for x in X:
        if isinstance(x, tuple):
            items.append((x[0], x[1]))
        else:
            items.append((x, None))
    return items
