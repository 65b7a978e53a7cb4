"""Is this image like the training images? A novelty detector and per-image flags.

A model answers for every image it is given, lesion or not: an all-black frame, a chest X-ray
or a 20000x20 strip all get confident probabilities. :class:`NoveltyDetector` measures how far
an image's features lie from the training feature table, with a threshold set on the training
data itself (cross-fitted, lesion-grouped), so that about ``flag_rate`` of new in-distribution
images exceed it. It is fitted by ``hamfeat train`` and saved inside the model file.

:func:`image_flags` adds the facts hamfeat already knows about each image: the segmentation
fell back, many features are NaN, the input's aspect ratio is extreme, the lesion is tiny or
the whole image. ``hamfeat score`` writes them, ``;``-separated, in its ``flags`` column:

=====================  =====================================================================
``novel``              the detector's score exceeds its threshold
``seg_fallback``       automatic segmentation found no lesion and used a fallback mask
``nan_features``       more than :data:`MAX_NAN_FRACTION` of the model's features are NaN
``aspect_ratio``       the input's long side is more than :data:`MAX_ASPECT` times its short one
``tiny_lesion``        the lesion covers less than :data:`MIN_LESION_FRACTION` of the image
``whole_image_lesion`` the lesion covers at least :data:`MAX_LESION_FRACTION` of the image
=====================  =====================================================================

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame(rng.normal(size=(400, 6)), columns=[f"shape_hu{i}" for i in range(6)])
    >>> det = NoveltyDetector(columns=list(X.columns), n_components=3).fit(X)
    >>> bool(det.is_novel(X.iloc[:1] + 50.0)[0])
    True

The choice of the scoring method (``method="mahalanobis"``) was made on a development split;
``benchmarks/bench_novelty.py`` and its report ``benchmarks/reports/novelty.md`` say how.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

__all__ = [
    "FLAGS",
    "MAX_ASPECT",
    "MAX_LESION_FRACTION",
    "MAX_NAN_FRACTION",
    "METHODS",
    "MIN_LESION_FRACTION",
    "NoveltyDetector",
    "fit_detector",
    "image_flags",
    "image_size",
    "mask_mode",
]

#: Scoring methods of :class:`NoveltyDetector`.
METHODS: tuple[str, ...] = ("mahalanobis", "knn", "iforest")
#: Flag names, in the order :func:`image_flags` writes them.
FLAGS: tuple[str, ...] = (
    "novel",
    "seg_fallback",
    "nan_features",
    "aspect_ratio",
    "tiny_lesion",
    "whole_image_lesion",
)
#: ``nan_features`` above this share of NaN features (the real HAM10000 tables reach 0.025:
#: one family of 11 features undefined on 15 of 10015 images).
MAX_NAN_FRACTION = 0.05
#: ``aspect_ratio`` above this long side / short side of the input (dermoscopy images are 4:3
#: or 3:2, X-rays square).
MAX_ASPECT = 3.0
#: ``tiny_lesion`` below this lesion area / image area (the smallest of 10015 HAM10000 lesions:
#: 0.0078 with automatic masks, 0.0040 with the data set's masks).
MIN_LESION_FRACTION = 0.003
#: ``whole_image_lesion`` at or above this share (the segmentation's whole-image fallback
#: keeps 0.9845 of a 300x225 image).
MAX_LESION_FRACTION = 0.98
#: Fewest groups (lesions, patients) :func:`fit_detector` fits a detector on.
MIN_GROUPS = 3
#: The feature with the lesion's area share (``shape`` family).
AREA_FEATURE = "shape_area_frac"


class NoveltyDetector(BaseEstimator):
    """Distance of feature rows from a training feature table, with a self-set threshold.

    The features are robust-scaled (median and inter-quartile range learned in ``fit``),
    squashed (``sign(z) * log1p(|z|)``, so one heavy-tailed feature cannot dominate), NaN set to
    the median, and projected on their first principal components. The score is, by
    ``method``:

    * ``"mahalanobis"``: the squared Mahalanobis distance in the principal-component space
      (``sum(pc_j**2 / var_j)``) plus the squared residual off that space divided by its
      training mean per dimension (a PCA's T² and Q statistics together), over the number of
      dimensions;
    * ``"knn"``: the mean distance to the ``n_neighbors`` nearest training rows in the
      whitened principal-component space;
    * ``"iforest"``: minus scikit-learn's :class:`~sklearn.ensemble.IsolationForest`
      ``score_samples`` on the principal components.

    The threshold is the ``1 - flag_rate`` quantile of **cross-fitted** training scores: each
    of ``n_splits`` group folds (lesions) is scored by a detector fitted on the others, so the
    threshold is that of images the detector has not seen, as new images are. The detector
    finally kept is fitted on every row.

    Parameters
    ----------
    columns : sequence of str, optional
        Feature columns to use (default: every declared feature name of the table given to
        ``fit``, see :func:`hamfeat.models.feature_columns`, with ``graypix`` left out).
    method : {"mahalanobis", "knn", "iforest"}
    n_components : int or float
        Principal components kept: a count, or a share of the variance (``0 < x < 1``).
    n_neighbors : int
        Neighbours of the ``"knn"`` method.
    n_estimators : int
        Trees of the ``"iforest"`` method.
    flag_rate : float
        Intended share of in-distribution images flagged (the threshold's quantile).
    n_splits : int
        Folds of the cross-fitted threshold.
    random_state : int
        Seed of the folds (and of the ``"iforest"`` method).

    Attributes
    ----------
    columns_ : list of str
    center_, scale_ : numpy.ndarray
        Median and robust spread of each column.
    mean_, components_, explained_variance_ : numpy.ndarray
        The principal-component space (of the squashed, scaled features).
    residual_scale_ : float
        Mean squared residual per dimension off that space, on the training rows.
    neighbors_ : sklearn.neighbors.NearestNeighbors or None
    forest_ : sklearn.ensemble.IsolationForest or None
    threshold_ : float
        Scores above it are novel.
    oof_scores_ : numpy.ndarray
        The cross-fitted training scores the threshold was set on.
    n_features_in_ : int
    """

    def __init__(
        self,
        columns: Sequence[str] | None = None,
        method: str = "mahalanobis",
        n_components: int | float = 0.95,
        n_neighbors: int = 5,
        n_estimators: int = 200,
        flag_rate: float = 0.005,
        n_splits: int = 5,
        random_state: int = 0,
    ) -> None:
        self.columns = columns
        self.method = method
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.n_estimators = n_estimators
        self.flag_rate = flag_rate
        self.n_splits = n_splits
        self.random_state = random_state

    # ---------------------------------------------------------------------------------------
    def fit(self, X: pd.DataFrame, y=None, groups: Sequence | None = None) -> NoveltyDetector:
        """Learn the training distribution and set the threshold on cross-fitted scores.

        Parameters
        ----------
        X : pandas.DataFrame
            The training feature table (extra columns are ignored).
        y : ignored
        groups : sequence, optional
            Group of each row (``lesion_id``, ``patient_id``): rows of one group are never
            split between fitting and scoring. Default: each row its own group.

        Returns
        -------
        NoveltyDetector
            ``self``.
        """
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; known: {', '.join(METHODS)}")
        if not 0.0 < float(self.flag_rate) < 1.0:
            raise ValueError(f"flag_rate must be in (0, 1), got {self.flag_rate!r}")
        self.columns_ = self._pick_columns(X)
        A = self._matrix(X)
        self.n_features_in_ = len(self.columns_)
        from sklearn.model_selection import GroupKFold

        g = np.arange(len(A)) if groups is None else np.asarray(groups)
        n_groups = len(pd.unique(g))
        if int(self.n_splits) < 2 or n_groups < int(self.n_splits):
            raise ValueError(
                f"the cross-fitted threshold needs n_splits >= 2 and at least n_splits groups "
                f"(n_splits={self.n_splits}, {n_groups} groups)"
            )
        oof = np.full(len(A), np.nan)
        folds = GroupKFold(n_splits=int(self.n_splits))
        for train, test in folds.split(A, groups=g):
            state = self._fit_state(A[train])
            oof[test] = self._score(state, A[test])
        self.oof_scores_ = oof
        self.threshold_ = float(np.quantile(oof, 1.0 - float(self.flag_rate)))
        for k, v in self._fit_state(A).items():
            setattr(self, k, v)
        return self

    def score_samples(self, X: pd.DataFrame) -> np.ndarray:
        """Novelty score of each row (higher: farther from the training table).

        Parameters
        ----------
        X : pandas.DataFrame
            Must hold :attr:`columns_`.

        Returns
        -------
        numpy.ndarray of float, shape (n_rows,)
        """
        check_is_fitted(self, "threshold_")
        if len(X) == 0:
            return np.empty(0, dtype=np.float64)
        state = {k: getattr(self, k) for k in _STATE}
        return self._score(state, self._matrix(X))

    def is_novel(self, X: pd.DataFrame) -> np.ndarray:
        """``score_samples(X) > threshold_``, per row.

        Returns
        -------
        numpy.ndarray of bool
        """
        return self.score_samples(X) > self.threshold_

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """The one output of :meth:`score_samples`: ``["novelty_score"]``."""
        return np.asarray(["novelty_score"], dtype=object)

    # ---------------------------------------------------------------------------------------
    def _pick_columns(self, X: pd.DataFrame) -> list[str]:
        if not isinstance(X, pd.DataFrame):
            raise TypeError("NoveltyDetector needs a DataFrame with named feature columns")
        if self.columns is not None:
            cols = [str(c) for c in self.columns]
            missing = [c for c in cols if c not in X.columns]
            if missing:
                raise ValueError(f"{len(missing)} column(s) missing, e.g. {missing[:3]}")
            return cols
        from hamfeat.models import FAMILY_NAMES, GRAY_FAMILY_NAMES, feature_columns

        fams = [f for f in FAMILY_NAMES + GRAY_FAMILY_NAMES if f != "graypix"]
        cols = feature_columns(X.columns, fams)
        if not cols:
            raise ValueError("no feature column in the table")
        return cols

    def _matrix(self, X: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.columns_ if c not in X.columns]
        if missing:
            raise ValueError(f"{len(missing)} feature column(s) missing, e.g. {missing[:3]}")
        return X[self.columns_].to_numpy(dtype=np.float64, na_value=np.nan)

    def _fit_state(self, A: np.ndarray) -> dict:
        with np.errstate(all="ignore"):
            center = np.nanmedian(A, axis=0)
            q1, q3 = np.nanpercentile(A, [25, 75], axis=0)
            scale = (q3 - q1) / 1.349
            std = np.nanstd(A, axis=0)
        center = np.where(np.isfinite(center), center, 0.0)
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, std)
        # a constant training column: any departure from it counts, on the scale of 1e-6 of
        # the value (or absolutely)
        tiny = 1e-6 * np.maximum(np.abs(center), 1.0)
        scale = np.where(np.isfinite(scale) & (scale > tiny), scale, tiny)
        state = {"center_": center, "scale_": scale}
        Z = _squash(A, center, scale)
        mean = Z.mean(axis=0)
        Zc = Z - mean
        _, s, vt = np.linalg.svd(Zc, full_matrices=False)
        var = s**2 / max(len(Z) - 1, 1)
        k = self._n_keep(var)
        comps, var = vt[:k], np.maximum(var[:k], 1e-12)
        resid = Zc - (Zc @ comps.T) @ comps
        dims = max(Z.shape[1] - k, 1)
        state.update(
            mean_=mean,
            components_=comps,
            explained_variance_=var,
            residual_scale_=float(max((resid**2).sum(axis=1).mean() / dims, 1e-12)),
            neighbors_=None,
            forest_=None,
        )
        P = (Zc @ comps.T) / np.sqrt(var)
        if self.method == "knn":
            from sklearn.neighbors import NearestNeighbors

            k_nn = max(1, min(int(self.n_neighbors), len(P)))
            state["neighbors_"] = NearestNeighbors(n_neighbors=k_nn).fit(P)
        elif self.method == "iforest":
            from sklearn.ensemble import IsolationForest

            state["forest_"] = IsolationForest(
                n_estimators=int(self.n_estimators), random_state=int(self.random_state)
            ).fit(P)
        return state

    def _n_keep(self, var: np.ndarray) -> int:
        n = self.n_components
        if isinstance(n, float) and 0.0 < n < 1.0:
            share = np.cumsum(var) / max(var.sum(), 1e-12)
            return int(min(np.searchsorted(share, n) + 1, len(var)))
        return int(max(1, min(int(n), len(var))))

    def _score(self, state: dict, A: np.ndarray) -> np.ndarray:
        Z = _squash(A, state["center_"], state["scale_"]) - state["mean_"]
        comps, var = state["components_"], state["explained_variance_"]
        pcs = Z @ comps.T
        P = pcs / np.sqrt(var)
        if self.method == "knn":
            dist, _ = state["neighbors_"].kneighbors(P)
            return dist.mean(axis=1)
        if self.method == "iforest":
            return -state["forest_"].score_samples(P)
        resid = ((Z - pcs @ comps) ** 2).sum(axis=1)
        dims = max(Z.shape[1] - comps.shape[0], 1)
        t2 = (P**2).sum(axis=1)
        return (t2 + resid / state["residual_scale_"]) / (comps.shape[0] + dims)


_STATE = (
    "center_",
    "scale_",
    "mean_",
    "components_",
    "explained_variance_",
    "residual_scale_",
    "neighbors_",
    "forest_",
)


def _squash(A: np.ndarray, center: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Robust z-scores, log-squashed; NaN (and inf) at the median (0)."""
    with np.errstate(all="ignore"):
        Z = (A - center) / scale
    Z = np.where(np.isnan(Z), 0.0, Z)
    Z = np.clip(Z, -1e12, 1e12)
    return np.sign(Z) * np.log1p(np.abs(Z))


# --------------------------------------------------------------------------------------------
# the per-image flags
# --------------------------------------------------------------------------------------------


def image_size(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """``(width, height)`` of an image file from its header (no pixel decoded), else None."""
    from hamfeat.errors import ImageError
    from hamfeat.imageio import probe_header

    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
            try:
                return tuple(probe_header(head, path, ImageError)[2])
            except ImageError:  # a JPEG with large metadata before its frame header
                return tuple(probe_header(head + fh.read(), path, ImageError)[2])
    except (OSError, ImageError):
        return None


def image_flags(
    features: pd.DataFrame,
    *,
    detector: NoveltyDetector | None = None,
    feature_names: Sequence[str] = (),
    sizes: Sequence[tuple[int, int] | None] | None = None,
) -> list[str]:
    """The ``flags`` of each feature row: :data:`FLAGS` that apply, ``;``-joined (or ``""``).

    Parameters
    ----------
    features : pandas.DataFrame
        Rows of :func:`hamfeat.extract.extract_table` (features, ``mask_method``).
    detector : NoveltyDetector, optional
        The model's detector (``novel``); without one that flag is never set.
    feature_names : sequence of str
        The model's feature columns (``nan_features`` counts NaN among them).
    sizes : sequence of (width, height) or None, optional
        The input image sizes, row by row (``aspect_ratio``).

    Returns
    -------
    list of str
    """
    n = len(features)
    hit = {f: np.zeros(n, dtype=bool) for f in FLAGS}
    if n == 0:
        return []
    if detector is not None:
        hit["novel"] = np.asarray(detector.is_novel(features), dtype=bool)
    if "mask_method" in features.columns:
        method = features["mask_method"].astype("string").fillna("")
        hit["seg_fallback"] = method.str.startswith("fallback").to_numpy(dtype=bool)
    names = [c for c in feature_names if c in features.columns]
    if names:
        nan_share = features[names].isna().to_numpy().mean(axis=1)
        hit["nan_features"] = nan_share > MAX_NAN_FRACTION
    if sizes is not None:
        for i, wh in enumerate(sizes):
            if wh is not None and min(wh) > 0 and max(wh) / min(wh) > MAX_ASPECT:
                hit["aspect_ratio"][i] = True
    lesion = (
        features["mask_source"].astype("string").isin(["auto", "given"]).to_numpy(dtype=bool)
        if "mask_source" in features.columns
        else np.ones(n, dtype=bool)
    )
    if AREA_FEATURE in features.columns:
        area = features[AREA_FEATURE].to_numpy(dtype=np.float64, na_value=np.nan)
        hit["tiny_lesion"] = lesion & (area < MIN_LESION_FRACTION)
        hit["whole_image_lesion"] = lesion & (area >= MAX_LESION_FRACTION)
    return [";".join(f for f in FLAGS if hit[f][i]) for i in range(n)]



def mask_mode(table: pd.DataFrame) -> dict:
    """How a feature table's masks were made: ``{"mode": ..., "counts": {...}}``.

    ``mode`` is ``"given"`` (the data set's own masks), ``"auto"`` (automatic segmentation) or
    ``"whole"`` (no mask: every pixel), whichever most rows have (``mask_source`` column);
    ``"unknown"`` for a table without that column.

    Parameters
    ----------
    table : pandas.DataFrame

    Returns
    -------
    dict
    """
    if "mask_source" not in table.columns or not len(table):
        return {"mode": "unknown", "counts": {}}
    counts = table["mask_source"].astype("string").fillna("unknown").value_counts()
    return {"mode": str(counts.index[0]), "counts": {str(k): int(v) for k, v in counts.items()}}


def fit_detector(
    table: pd.DataFrame, groups: Sequence | None = None, **params
) -> NoveltyDetector | None:
    """The detector ``hamfeat train`` keeps in the model file, fitted on a training table.

    With fewer than 5 groups the threshold is cross-fitted on as many folds as there are
    groups; with fewer than :data:`MIN_GROUPS`, no detector is fitted (a warning says so).

    Parameters
    ----------
    table : pandas.DataFrame
    groups : sequence, optional
        ``lesion_id`` (or ``patient_id``) of each row, for the cross-fitted threshold.
    **params
        :class:`NoveltyDetector` parameters.

    Returns
    -------
    NoveltyDetector or None
    """
    import logging

    g = np.arange(len(table)) if groups is None else np.asarray(groups)
    n_groups = len(pd.unique(g))
    if n_groups < MIN_GROUPS:
        logging.getLogger("hamfeat").warning(
            "only %d lesion(s)/patient(s): no novelty detector fitted (needs %d); "
            "score will not flag novel images",
            n_groups,
            MIN_GROUPS,
        )
        return None
    params.setdefault("n_splits", min(5, n_groups))
    return NoveltyDetector(**params).fit(table, groups=g)
