"""What the HTML page of a CV run shows, computed into plain data (``hamfeat cv --html``).

Computation only: :func:`oof_frame` turns the best model's out-of-fold predictions into the
per-image table written beside the report (``cv_oof.parquet``); :func:`page_data` gathers
everything the page shows into a :class:`CVPageData` (summary rows, confusion matrix, per-class
curves, the two galleries, the ablation bars); :mod:`hamfeat.render.cv_page` draws the figures
and renders the template. No metric is computed here that the report does not already have,
except the per-class ROC / precision-recall curves (from the same out-of-fold probabilities)
and the Dice of the automatic masks shown in the segmentation gallery.

Galleries
---------
*Segmentation*: per class, images whose automatic mask has a low Dice against the data set's
reference mask. Segmenting every image again would cost about as much as extracting its
features; instead candidates are chosen cheaply: every reference mask of the class is read at
a quarter of its resolution (a small PNG) and its area compared with the automatic mask's,
which the table has (``shape_area_frac``). Two masks of area fractions ``a`` and ``r`` have
``Dice <= 2 min(a, r) / (a + r)``, so the images whose areas disagree most are certainly poor
segmentations; the ``budget`` images of lowest bound are segmented again and the ``k`` of lowest
Dice shown (:func:`lowest_k`). It can miss a mask of the right area in the wrong place (the
bound says nothing of those); a class of at most ``budget`` images is searched exhaustively.
Without that column (or when the table's masks are not automatic) images are taken in table
order up to the budget.

*Errors*: per true class, the wrong out-of-fold predictions (at the cross-fitted decision rule,
the operating point of the report's confusion matrix) with the largest probability of the
predicted class.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hamfeat.datasets.ham10000 import CLASSES

__all__ = [
    "CVPageData",
    "ClassCurves",
    "Gallery",
    "GalleryItem",
    "ImageSource",
    "Selection",
    "area_dice_bound",
    "dice",
    "error_gallery",
    "error_item",
    "lowest_k",
    "oof_frame",
    "page_data",
    "segmentation_gallery",
]

#: Images per class in each gallery.
GALLERY_PER_CLASS = 3
#: Images segmented again per class for the segmentation gallery (the candidates of lowest
#: area bound).
DICE_BUDGET = 60


# --------------------------------------------------------------------------------------------
# out-of-fold table
# --------------------------------------------------------------------------------------------


def decision_alpha_rows(alpha_per_fold: Mapping[Any, float], fold: np.ndarray) -> np.ndarray:
    """Per-image exponent of the cross-fitted decision rule (the fold's alpha)."""
    a = {int(k): float(v) for k, v in alpha_per_fold.items()}
    return np.array([a[int(f)] for f in fold], dtype=float)


def oof_frame(
    oof, table: pd.DataFrame, per_seed: Sequence[Mapping[str, Any]],
    classes: Sequence[str] = CLASSES,
) -> pd.DataFrame:
    """The per-image out-of-fold predictions of one model, one row per image and seed.

    Parameters
    ----------
    oof : hamfeat.evaluation.oof.OOF
    table : pandas.DataFrame
        The CV's feature table (``image_id``, ``lesion_id``, ``dx``), in the OOF's row order.
    per_seed : sequence of dict
        The model's ``per_seed`` results of the report (for the cross-fitted alphas).
    classes : sequence of str
        The OOF's classes (default: HAM10000's).

    Returns
    -------
    pandas.DataFrame
        ``image_id``, ``lesion_id``, ``dx``, ``seed``, ``fold``, ``p_<class>`` (the model's
        probabilities), ``prior_<class>`` (class frequencies of the training fold), ``alpha``
        (the cross-fitted exponent of the fold) and ``prediction``
        (``argmax p / prior**alpha``: the report's cross-fitted operating point).
    """
    parts = []
    for si, seed in enumerate(oof.seeds):
        proba, prior, fold = oof.proba[si], oof.prior[si], oof.fold[si]
        alpha = decision_alpha_rows(per_seed[si]["image"]["crossfit"]["alpha_per_fold"], fold)
        pred = np.argmax(proba / np.clip(prior, 1e-12, None) ** alpha[:, None], axis=1)
        d = {
            "image_id": table["image_id"].astype(str).to_numpy(),
            "lesion_id": table["lesion_id"].astype(str).to_numpy(),
            "dx": table["dx"].astype(str).to_numpy(),
            "seed": np.full(len(table), int(seed)),
            "fold": fold.astype(int),
        }
        d.update({f"p_{c}": proba[:, j] for j, c in enumerate(classes)})
        d.update({f"prior_{c}": prior[:, j] for j, c in enumerate(classes)})
        d["alpha"] = alpha
        d["prediction"] = np.asarray(classes, dtype=object)[pred]
        parts.append(pd.DataFrame(d))
    out = pd.concat(parts, ignore_index=True)
    out.attrs["hamfeat"] = {"model": oof.name, "seeds": list(oof.seeds)}
    return out


# --------------------------------------------------------------------------------------------
# curves
# --------------------------------------------------------------------------------------------


@dataclass
class ClassCurves:
    """One class's one-vs-rest ROC and precision-recall curves (out-of-fold probabilities)."""

    cls: str
    n_pos: int
    fpr: np.ndarray = field(repr=False)
    tpr: np.ndarray = field(repr=False)
    auc: float
    recall: np.ndarray = field(repr=False)
    precision: np.ndarray = field(repr=False)
    average_precision: float


def class_curves(y: np.ndarray, proba: np.ndarray) -> list[ClassCurves]:
    """ROC and precision-recall curves per class present (probabilities renormalised, as the
    report's AUC)."""
    from sklearn.metrics import (
        average_precision_score,
        precision_recall_curve,
        roc_auc_score,
        roc_curve,
    )

    p = proba / proba.sum(axis=1, keepdims=True)
    out = []
    for j, c in enumerate(CLASSES):
        pos = y == j
        if not pos.any() or pos.all():
            continue
        fpr, tpr, _ = roc_curve(pos, p[:, j])
        prec, rec, _ = precision_recall_curve(pos, p[:, j])
        out.append(
            ClassCurves(
                c,
                int(pos.sum()),
                fpr,
                tpr,
                float(roc_auc_score(pos, p[:, j])),
                rec,
                prec,
                float(average_precision_score(pos, p[:, j])),
            )
        )
    return out


# --------------------------------------------------------------------------------------------
# galleries
# --------------------------------------------------------------------------------------------


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient of two boolean masks (1 when both are empty)."""
    s = int(a.sum()) + int(b.sum())
    return 2.0 * int(np.logical_and(a, b).sum()) / s if s else 1.0


def area_dice_bound(a: np.ndarray | float, r: np.ndarray | float) -> np.ndarray:
    """Upper bound of the Dice of two masks of area fractions ``a`` and ``r``:
    ``2 min(a, r) / (a + r)`` (1 when both are 0)."""
    a, r = np.asarray(a, dtype=float), np.asarray(r, dtype=float)
    s = a + r
    with np.errstate(invalid="ignore", divide="ignore"):
        b = np.where(s > 0, 2.0 * np.minimum(a, r) / np.where(s > 0, s, 1.0), 1.0)
    return np.where(np.isfinite(b), b, 1.0)


@dataclass
class Selection:
    """The result of :func:`lowest_k`.

    Attributes
    ----------
    items : list of (int, float)
        ``(candidate index, value)``, lowest value first.
    n_computed : int
        Exact values computed.
    n_candidates : int
    exact : bool
        Whether every candidate's value was computed (``items`` are then the ``k`` lowest of
        all candidates).
    """

    items: list[tuple[int, float]]
    n_computed: int
    n_candidates: int
    exact: bool


def lowest_k(
    bounds: Sequence[float],
    value: Callable[[int], float | None],
    k: int,
    *,
    budget: int | None = None,
) -> Selection:
    """The ``k`` lowest values among the ``budget`` candidates of lowest bound.

    The candidates whose upper bound is lowest are certainly low; their values are computed
    (at most ``budget``, in increasing order of bound, ties in candidate order) and the ``k``
    lowest returned. An upper bound cannot rule a candidate out, so the answer is the exact
    ``k`` lowest of all candidates only when every value was computed (``exact``).

    Parameters
    ----------
    bounds : sequence of float
        An upper bound of each candidate's value (all equal: candidate order).
    value : callable
        ``value(i)`` -> the value of candidate ``i``, or None when it cannot be computed (the
        candidate is then left out).
    k : int
    budget : int, optional
        Most values computed (default: all).

    Returns
    -------
    Selection
    """
    b = np.asarray(bounds, dtype=float)
    order = np.argsort(b, kind="stable")
    if budget is not None:
        order = order[: max(0, int(budget))]
    found: list[tuple[float, int]] = []
    for i in order:
        v = value(int(i))
        if v is not None:
            found.append((float(v), int(i)))
    best = sorted(found)[:k]
    return Selection([(i, v) for v, i in best], len(order), len(b), len(order) == len(b))


@dataclass
class GalleryItem:
    """One image of a gallery: what the page shows beside its thumbnail."""

    image_id: str
    dx: str
    rgb: np.ndarray | None = field(default=None, repr=False)
    masks: list[tuple[np.ndarray, str]] = field(default_factory=list, repr=False)
    dice: float | None = None
    prediction: str = ""
    fold: int | None = None
    proba: dict[str, float] = field(default_factory=dict)
    note: str = ""


@dataclass
class Gallery:
    """A gallery: per class, its items, and how they were chosen."""

    title: str
    how: str
    per_class: dict[str, list[GalleryItem]]
    counts: dict[str, str] = field(default_factory=dict)


class ImageSource:
    """Images and reference masks of a table's rows, at the canonical resolution.

    Parameters
    ----------
    table : pandas.DataFrame
        ``image_id`` per row (a ``path`` column, when present, names the image file).
    files : mapping
        ``image_id`` -> ``(image path or None, reference mask path or None)``.
    config : hamfeat.pipeline.FeatureConfig
        How the table's automatic masks were made (canonical size, hair removal).
    """

    def __init__(self, table: pd.DataFrame, files: Mapping[str, tuple], config):
        self.table = table
        self.files = dict(files)
        self.config = config
        self.ids = table["image_id"].astype(str).tolist()

    @classmethod
    def from_data_dir(cls, table: pd.DataFrame, data_dir: str | os.PathLike[str], config):
        """The files of a HAM10000 folder, found as ``hamfeat features`` finds them
        (:func:`hamfeat.datasets.ham10000.load_dataset`, any of its layouts; masks read as
        luminance)."""
        from hamfeat.datasets.ham10000 import load_dataset

        ds = load_dataset(data_dir, check_files=False).table
        files = {
            str(r.image_id): (
                Path(r.image_path),
                None if pd.isna(r.mask_path) else Path(r.mask_path),
            )
            for r in ds[["image_id", "image_path", "mask_path"]].itertuples(index=False)
        }
        return cls(table, files, config)

    def image_path(self, i: int) -> Path | None:
        if "path" in self.table.columns:
            p = self.table["path"].iloc[i]
            if isinstance(p, str) and p:
                return Path(p)
        return self.files.get(self.ids[i], (None, None))[0]

    def mask_path(self, i: int) -> Path | None:
        return self.files.get(self.ids[i], (None, None))[1]

    def canonical(self, i: int) -> np.ndarray | None:
        from hamfeat.imageio import read_image, to_canonical

        p = self.image_path(i)
        if p is None or not p.is_file():
            return None
        try:
            return to_canonical(read_image(p), self.config.long_side)
        except Exception:  # a damaged image: no preview
            return None

    def reference(self, i: int, long_side: int) -> np.ndarray | None:
        """The reference mask at the canonical resolution (None: absent, unreadable, empty
        or full)."""
        from hamfeat.imageio import canonical_shape, mask_to_canonical, read_mask

        p = self.mask_path(i)
        if p is None or not p.is_file():
            return None
        try:
            m = read_mask(p)
        except Exception:
            return None
        small = mask_to_canonical(m, canonical_shape(m.shape[0], m.shape[1], long_side))
        return small if small.any() and not small.all() else None

    def reference_area(self, i: int) -> float | None:
        """The reference mask's area fraction, read cheaply (a quarter of the resolution, as
        luminance; None: absent or unreadable). For ranking only: :meth:`reference` is exact."""
        import cv2

        p = self.mask_path(i)
        if p is None or not p.is_file():
            return None
        m = cv2.imread(str(p), cv2.IMREAD_REDUCED_GRAYSCALE_4)
        if m is None or m.size == 0:
            return None
        return float((m >= 128).mean())

    def automatic(self, rgb: np.ndarray) -> np.ndarray:
        from hamfeat.pipeline import prepare_image

        return prepare_image(rgb, None, self.config).mask


def segmentation_gallery(
    table: pd.DataFrame,
    source: ImageSource,
    *,
    per_class: int = GALLERY_PER_CLASS,
    budget: int = DICE_BUDGET,
) -> Gallery:
    """Per class, the images of lowest Dice between the automatic and the reference mask.

    Parameters
    ----------
    table : pandas.DataFrame
        ``image_id``, ``dx``; ``shape_area_frac`` and ``mask_source`` (``auto``) enable the
        area bound.
    source : ImageSource
    per_class, budget : int

    Returns
    -------
    Gallery
    """
    long_side = int(source.config.long_side)
    # the table's areas are the automatic masks' only when its masks are automatic
    use_bound = (
        "shape_area_frac" in table.columns
        and "mask_source" in table.columns
        and bool((table["mask_source"] == "auto").mean() > 0.5)
    )
    per: dict[str, list[GalleryItem]] = {}
    counts: dict[str, str] = {}
    n_ref_total = 0
    for c in CLASSES:
        rows = np.flatnonzero(table["dx"].astype(str).to_numpy() == c)
        if not len(rows):
            continue
        cand, bounds = [], []
        for i in rows:
            r = source.reference_area(int(i))
            if r is None:
                continue
            cand.append(int(i))
            if use_bound and table["mask_source"].iloc[i] == "auto":
                bounds.append(float(area_dice_bound(table["shape_area_frac"].iloc[i], r)))
            else:
                bounds.append(1.0)
        n_ref_total += len(cand)
        cache: dict[int, GalleryItem] = {}

        def value(j: int, cand=cand, cache=cache, c=c) -> float | None:
            i = cand[j]
            rgb = source.canonical(i)
            if rgb is None:
                return None
            ref = source.reference(i, long_side)
            if ref is None or ref.shape != rgb.shape[:2]:
                return None
            auto = source.automatic(rgb)
            d = dice(auto, ref)
            cache[j] = GalleryItem(
                str(table["image_id"].iloc[i]), c, rgb, [(auto, "auto"), (ref, "reference")], d
            )
            return d

        sel = lowest_k(bounds, value, per_class, budget=budget)
        per[c] = [cache[j] for j, _ in sel.items]
        counts[c] = f"{len(rows)} images, {len(cand)} with a reference mask; " + (
            f"all {sel.n_computed} segmented: the lowest of the class"
            if sel.exact
            else f"{sel.n_computed} candidates segmented"
        )
    if use_bound:
        how = (
            "Per class, images whose automatic mask (cyan) agrees poorly with the data set's "
            "reference mask (magenta), by Dice at the canonical resolution. Candidates were "
            "chosen cheaply: every reference mask of the class was read at a quarter of its "
            "resolution and its area r compared with the automatic mask's area a "
            "(shape_area_frac in the table); Dice ≤ 2 min(a, r) / (a + r), so the images whose "
            f"areas disagree most are certainly poor. The {budget} images of lowest bound were "
            "segmented again and the lowest Dice among them are shown. A mask of about the "
            "right area in the wrong place can have a lower Dice and be missed; a class with "
            f"at most {budget} images was searched exhaustively (it says so)."
        )
    else:
        how = (
            "Per class, images whose automatic mask (cyan) agrees poorly with the data set's "
            "reference mask (magenta), by Dice at the canonical resolution. This table has no "
            "automatic-mask areas (shape_area_frac with mask_source auto), so the candidates "
            f"are the first {budget} images of each class in table order, all segmented "
            "again; the lowest Dice among them are shown."
        )
    if n_ref_total == 0:
        how = "No reference mask was found for the table's images: no segmentation gallery."
    return Gallery("Segmentation: low Dice per class", how, per, counts)


def error_gallery(
    oof: pd.DataFrame,
    *,
    per_class: int = GALLERY_PER_CLASS,
    seed: int | None = None,
) -> dict[str, list[int]]:
    """Per true class, the most confident wrong out-of-fold predictions.

    Parameters
    ----------
    oof : pandas.DataFrame
        :func:`oof_frame` output (one seed is used).
    per_class : int
    seed : int, optional
        The seed's rows (default: the first).

    Returns
    -------
    dict of class to list of int
        Row positions into ``oof`` (of that seed), most confident first: rows whose
        ``prediction`` differs from ``dx``, ordered by the probability of the predicted class
        (descending; ties by ``image_id``).
    """
    seed = int(oof["seed"].iloc[0]) if seed is None else int(seed)
    pos = np.flatnonzero(oof["seed"].to_numpy() == seed)
    sub = oof.iloc[pos]
    pm = sub[[f"p_{c}" for c in CLASSES]].to_numpy()
    pred_idx = np.array([CLASSES.index(p) for p in sub["prediction"]])
    conf = pm[np.arange(len(sub)), pred_idx] / pm.sum(axis=1)
    out: dict[str, list[int]] = {}
    for c in CLASSES:
        wrong = np.flatnonzero((sub["dx"].to_numpy() == c) & (sub["prediction"].to_numpy() != c))
        if not len(wrong):
            continue
        keys = sorted(wrong, key=lambda j: (-conf[j], str(sub["image_id"].iloc[j])))
        out[c] = [int(pos[j]) for j in keys[:per_class]]
    return out


def error_item(row: Mapping[str, Any], dx: str) -> GalleryItem:
    """The gallery item of one wrong prediction, without its image.

    Parameters
    ----------
    row : mapping
        ``image_id``, ``prediction``, ``p_<class>`` for every class of :data:`CLASSES` and,
        when present and not missing, ``fold``.
    dx : str
        Its true class.

    Returns
    -------
    GalleryItem
        ``proba``: the ``p_`` probabilities renormalised to sum 1 (as :func:`error_gallery`
        ranks them).
    """
    p = np.array([row[f"p_{k}"] for k in CLASSES], dtype=float)
    p = p / p.sum()
    fold = row.get("fold") if hasattr(row, "get") else None
    return GalleryItem(
        str(row["image_id"]),
        dx,
        prediction=str(row["prediction"]),
        fold=None if fold is None or pd.isna(fold) else int(fold),
        proba={k: float(v) for k, v in zip(CLASSES, p, strict=True)},
    )


def _error_items(
    oof: pd.DataFrame, rows: Mapping[str, list[int]], table: pd.DataFrame, source
) -> dict[str, list[GalleryItem]]:
    index = {str(v): i for i, v in enumerate(table["image_id"].astype(str))}
    out: dict[str, list[GalleryItem]] = {}
    for c, rr in rows.items():
        items = []
        for r in rr:
            it = error_item(oof.iloc[r], c)
            ti = index.get(it.image_id)
            if source is not None and ti is not None:
                rgb = source.canonical(ti)
                if rgb is not None:
                    it.rgb = rgb
                    given = (
                        "mask_source" in table.columns and table["mask_source"].iloc[ti] == "given"
                    )
                    m = source.reference(ti, int(source.config.long_side)) if given else None
                    if m is not None and m.shape == rgb.shape[:2]:
                        it.masks = [(m, "reference")]
                        it.note = "mask: the reference mask the features used"
                    else:
                        it.masks = [(source.automatic(rgb), "auto")]
                        it.note = "mask: automatic"
            if it.rgb is None:
                it.note = "image not found"
            items.append(it)
        out[c] = items
    return out


# --------------------------------------------------------------------------------------------
# the page
# --------------------------------------------------------------------------------------------


@dataclass
class CVPageData:
    """Everything the CV page shows (plain data; the renderer draws and formats)."""

    report: dict = field(repr=False)
    best: str
    seed: int
    y: np.ndarray = field(repr=False)
    proba: np.ndarray = field(repr=False)
    confusion: list[list[int]]
    curves: list[ClassCurves]
    tradeoff_png: bytes | None = field(default=None, repr=False)
    segmentation: Gallery | None = None
    errors: Gallery | None = None
    families: dict[str, dict[str, float]] | None = None
    notes: list[str] = field(default_factory=list)
    oof_file: str = ""


def table_feature_config(
    table: pd.DataFrame, table_path: str | os.PathLike[str] | None = None
) -> tuple[Any, str | None]:
    """The feature configuration that re-makes a table's automatic masks, or why there is none.

    A table whose automatic masks came from a learned segmenter records its hash (and its file
    name); the file is looked for beside the table, as ``score`` looks for a model's segmenter
    beside the model, and must have that hash.

    Parameters
    ----------
    table : pandas.DataFrame
        A ``hamfeat features`` table (its ``attrs`` kept).
    table_path : path-like, optional
        Where the table was read from.

    Returns
    -------
    config : hamfeat.pipeline.FeatureConfig or None
        None when the table's segmenter cannot be found.
    problem : str or None
        Why ``config`` is None.
    """
    from hamfeat.pipeline import FeatureConfig
    from hamfeat.segmenter import file_sha
    from hamfeat.tables import table_config

    cfg = table_config(table)
    sha = cfg.get("segmenter")
    segmenter = None
    if sha:
        meta = table.attrs.get("hamfeat", {}) if isinstance(table.attrs, dict) else {}
        name = Path(str(meta.get("segmenter_file") or "segmenter.skops")).name
        where = Path(table_path).parent if table_path is not None else None
        path = where / name if where is not None else None
        if path is None or not path.is_file():
            return None, (f"the table's masks came from a learned segmenter (hash {sha}); "
                          f"{name} was not found beside the table")
        if file_sha(path) != str(sha):
            return None, (f"the table's masks came from a learned segmenter (hash {sha}); "
                          f"{path} has another hash")
        segmenter = str(path)
    return FeatureConfig(
        long_side=int(cfg.get("long_side", 300)),
        hair_removal=bool(cfg.get("hair_removal", False)),
        segmenter=segmenter,
    ), None


def page_data(
    report: dict,
    oof: pd.DataFrame,
    table: pd.DataFrame,
    *,
    report_dir: str | os.PathLike[str],
    data_dir: str | os.PathLike[str] | None = None,
    per_class: int = GALLERY_PER_CLASS,
    budget: int = DICE_BUDGET,
    oof_file: str = "cv_oof.parquet",
    table_path: str | os.PathLike[str] | None = None,
) -> CVPageData:
    """Gather what the CV page shows.

    Parameters
    ----------
    report : dict
        :func:`hamfeat.evaluation.cv.run_cv`'s report.
    oof : pandas.DataFrame
        :func:`oof_frame` of the best model.
    table : pandas.DataFrame
        The CV's feature table (same row order as ``oof`` per seed).
    report_dir : path-like
        Where the report's PNGs are (the trade-off curve is embedded from there).
    data_dir : path-like, optional
        The HAM10000 folder (``images/``, ``masks/``) for the galleries; None: no image
        galleries (the error gallery lists its images without thumbnails).
    per_class, budget : int
    oof_file : str
        The out-of-fold table's file name, as the page names it.
    table_path : path-like, optional
        Where the table was read from: a learned segmenter that made its masks is looked for
        beside it (:func:`table_feature_config`).

    Returns
    -------
    CVPageData
    """
    best = str(oof.attrs.get("hamfeat", {}).get("model") or report.get("best_model", ""))
    seed = int(oof["seed"].iloc[0])
    first = oof[oof["seed"] == seed]
    y = np.array([CLASSES.index(c) for c in first["dx"]])
    proba = first[[f"p_{c}" for c in CLASSES]].to_numpy(dtype=float)
    ps = report["models"][best]["per_seed"][0]["image"]["crossfit"]
    notes: list[str] = []
    tradeoff = None
    png = Path(report_dir) / "cv_alpha_tradeoff.png"
    if png.is_file():
        tradeoff = png.read_bytes()
    else:
        notes.append("no trade-off figure (plots were not written)")
    source = None
    seg = None
    config, problem = table_feature_config(table, table_path)
    if data_dir is not None and config is None:
        notes.append(f"no image galleries: {problem}")
    elif data_dir is not None:
        source = ImageSource.from_data_dir(table, data_dir, config)
        seg = segmentation_gallery(table, source, per_class=per_class, budget=budget)
    else:
        notes.append("no data folder: no image galleries (pass --data DIR)")
    err_rows = error_gallery(oof, per_class=per_class, seed=seed)
    errors = Gallery(
        "Errors: most confident wrong predictions per true class",
        "Per true class, the images the best model got wrong out of fold (at the cross-fitted "
        "decision rule, the operating point of the confusion matrix, first seed) with the "
        "largest probability of the class it predicted. Bars: the class probabilities (red: "
        "predicted, green: true).",
        _error_items(oof, err_rows, table, source),
    )
    fams = None
    ab = report.get("ablations")
    if ab and ab.get("families"):
        fams = {
            k: {
                "balanced_accuracy": float(v["image"]["crossfit"]["balanced_accuracy"]),
                "accuracy": float(v["image"]["crossfit"]["accuracy"]),
                "macro_auc": float(v["image"]["argmax"]["macro_auc"]),
            }
            for k, v in ab["families"].items()
        }
        for v in fams.values():
            for m in ("balanced_accuracy", "accuracy"):
                v[f"delta_{m}"] = v[m] - fams["all"][m]
    return CVPageData(
        report,
        best,
        seed,
        y,
        proba,
        [list(map(int, r)) for r in ps["confusion"]],
        class_curves(y, proba),
        tradeoff,
        seg,
        errors,
        fams,
        notes,
        oof_file,
    )
