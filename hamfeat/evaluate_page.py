"""What the HTML page of an external evaluation shows, computed into plain data
(``hamfeat evaluate --html``).

Computation only, as :mod:`hamfeat.cv_page` is for the CV page: :func:`page_data` gathers what
the page shows into an :class:`EvaluatePageData`; :mod:`hamfeat.render.evaluate_page` draws
the figures and renders the template. Every metric is the :class:`~hamfeat.evaluate_external.
Evaluation`'s; computed here are only

* the per-class ROC and precision-recall curves (:func:`hamfeat.cv_page.class_curves`) of the
  evaluated images, on the ``q_`` probabilities (the decision rule's, on which the report's
  AUC at the decision rule is computed, so the curves' AUCs are the report's);
* the decision rule's trade-off (:func:`decision_tradeoff`): accuracy and balanced accuracy of
  ``argmax p / prior**alpha`` as alpha goes from 0 to 1, on the evaluated images' ``p_``
  probabilities, with the class priors stored in the model (no refit). The evaluation holds
  the model only when it was made by :func:`~hamfeat.evaluate_external.evaluate_scores` from a
  :class:`~hamfeat.score.ScoreResult` that carries it (``hamfeat evaluate`` always does); a
  model without priors (plain arg-max) has no trade-off either, and the page says so;
* the error gallery (:func:`evaluation_errors`): per true class, the evaluated images whose
  prediction (the model's decision rule, the report's confusion matrix) is wrong, with the
  largest probability ``p`` of the class predicted (:func:`hamfeat.cv_page.error_gallery`, the
  CV page's choice); each is shown with the mask its features used, made again the way
  ``hamfeat score`` made it (:func:`hamfeat.pipeline.prepare_file` with the scoring's feature
  configuration and the image's ``--masks`` file, if it had one).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hamfeat.cv_page import (
    GALLERY_PER_CLASS,
    ClassCurves,
    Gallery,
    GalleryItem,
    class_curves,
    error_gallery,
    error_item,
)
from hamfeat.datasets.ham10000 import CLASSES
from hamfeat.evaluate_external import Evaluation

__all__ = [
    "EvaluatePageData",
    "TradeOff",
    "decision_tradeoff",
    "error_frame",
    "error_items",
    "evaluation_errors",
    "model_prior",
    "page_data",
]


@dataclass
class TradeOff:
    """The decision rule's trade-off at one level (images or lesions).

    Attributes
    ----------
    level : {"image", "lesion"}
    n : int
        Evaluated rows.
    alpha : list of float
        The exponents of the curve (0 to 1 and the model's).
    accuracy, balanced_accuracy : list of float
        Of ``argmax p / prior**alpha`` at each exponent.
    model_alpha : float
        The model's exponent (its point: the report's decision-rule metrics).
    """

    level: str
    n: int
    alpha: list[float]
    accuracy: list[float]
    balanced_accuracy: list[float]
    model_alpha: float

    def at(self, alpha: float) -> tuple[float, float]:
        """``(accuracy, balanced accuracy)`` at one of the curve's exponents."""
        i = int(np.argmin(np.abs(np.asarray(self.alpha) - float(alpha))))
        return self.accuracy[i], self.balanced_accuracy[i]


@dataclass
class EvaluatePageData:
    """Everything the evaluation page shows (plain data; the renderer draws and formats).

    Attributes
    ----------
    ev : Evaluation
    curves : list of ClassCurves
        Per class present, on the evaluated images' ``q_`` probabilities.
    n_curves : int
        Images the curves are of.
    tradeoff : list of TradeOff
        Per image and, with lesion metrics, per lesion; empty when it cannot be drawn.
    tradeoff_missing : str
        Why there is no trade-off (``""`` when there is one).
    prior : dict of str to float or None
        The model's class priors of the decision rule.
    errors : Gallery or None
        None when no image could be evaluated.
    notes : list of str
        The page's own (the evaluation's are in ``ev.notes``).
    """

    ev: Evaluation = field(repr=False)
    curves: list[ClassCurves]
    n_curves: int
    tradeoff: list[TradeOff]
    tradeoff_missing: str
    prior: dict[str, float] | None
    errors: Gallery | None
    notes: list[str] = field(default_factory=list)


def _matrix(rows: pd.DataFrame, prefix: str) -> np.ndarray:
    cols = [f"{prefix}_{c}" for c in CLASSES]
    return rows.reindex(columns=cols).fillna(0.0).to_numpy(dtype=float)


def _labels(rows: pd.DataFrame) -> np.ndarray:
    return np.array([CLASSES.index(str(t)) for t in rows["truth"]], dtype=int)


def _lesion_rows(ev: Evaluation) -> pd.DataFrame:
    t = ev.scores
    if ev.lesion is None or "level" not in t.columns:
        return t.iloc[:0]
    return t[(t["level"] == "lesion") & t["truth"].notna()]


def model_prior(ev: Evaluation) -> tuple[np.ndarray | None, float | None, str]:
    """The evaluated model's decision rule, from the model the evaluation holds.

    Parameters
    ----------
    ev : Evaluation

    Returns
    -------
    prior : numpy.ndarray or None
        The class priors in :data:`CLASSES` order (1 for a class the model does not have).
    alpha : float or None
        The exponent.
    why : str
        Why there is none (``""`` when there is).
    """
    from hamfeat.score import decision_rule

    result = ev.result
    if result is None or result.model is None:
        return None, None, (
            "the evaluation does not hold the model (its class priors are needed to move the "
            "decision rule's exponent)"
        )
    prior, alpha = decision_rule(result.model)
    if prior is None:
        return None, None, (
            "the model's decision rule is plain arg-max: its file holds no class priors to "
            "move the exponent of argmax p / prior**alpha with"
        )
    by_class = {str(c): float(v) for c, v in zip(result.model.classes, prior, strict=True)}
    # a class the model does not have: probability 0 (as the report), no prior to apply
    return np.array([by_class.get(c, 1.0) for c in CLASSES]), alpha, ""


def decision_tradeoff(ev: Evaluation) -> tuple[list[TradeOff], str]:
    """Accuracy and balanced accuracy of ``argmax p / prior**alpha`` on the evaluated rows as
    alpha goes from 0 to 1 (:data:`hamfeat.evaluation.metrics.ALPHAS`, plus the model's), no refit.

    Parameters
    ----------
    ev : Evaluation

    Returns
    -------
    list of TradeOff
        Per image, then per lesion (with lesion metrics); empty when not available.
    str
        Why not (``""`` when available).
    """
    from hamfeat.evaluation.metrics import ALPHAS, alpha_curve

    if ev.image is None:
        return [], "no image could be evaluated"
    prior, alpha, why = model_prior(ev)
    if prior is None or alpha is None:
        return [], why
    alphas = sorted({float(a) for a in ALPHAS} | {float(alpha)})
    out = []
    for level, rows in (("image", ev.evaluated()), ("lesion", _lesion_rows(ev))):
        if not len(rows):
            continue
        c = alpha_curve(_labels(rows), _matrix(rows, "p"), prior, alphas)
        out.append(
            TradeOff(level, len(rows), c["alpha"], c["accuracy"], c["balanced_accuracy"], alpha)
        )
    return out, ""


def error_frame(ev: Evaluation) -> pd.DataFrame:
    """The evaluated images as :func:`hamfeat.cv_page.error_gallery` takes them.

    Parameters
    ----------
    ev : Evaluation

    Returns
    -------
    pandas.DataFrame
        One row per evaluated image, in :meth:`Evaluation.evaluated` order: ``image_id``,
        ``path``, ``dx`` (the truth), ``prediction`` (the model's decision rule), ``seed``
        (0), ``mask_source`` and ``p_<class>`` (0 for a class the model does not have).
    """
    ok = ev.evaluated()
    out = pd.DataFrame(
        {
            "image_id": ok["image_id"].astype(str).to_numpy(),
            "path": ok["path"].astype(str).to_numpy(),
            "dx": ok["truth"].astype(str).to_numpy(),
            "prediction": ok["prediction"].astype(str).to_numpy(),
            "seed": 0,
            "mask_source": (
                ok["mask_source"].astype(str).to_numpy() if "mask_source" in ok else ""
            ),
        }
    )
    p = _matrix(ok, "p")
    for j, c in enumerate(CLASSES):
        out[f"p_{c}"] = p[:, j]
    return out


def evaluation_errors(
    ev: Evaluation, *, per_class: int = GALLERY_PER_CLASS
) -> dict[str, list[int]]:
    """Per true class, the most confident wrong predictions among the evaluated images.

    Parameters
    ----------
    ev : Evaluation
    per_class : int

    Returns
    -------
    dict of class to list of int
        Row positions into :func:`error_frame` (and :meth:`Evaluation.evaluated`): rows whose
        prediction is not the truth, by the probability ``p`` of the predicted class
        (renormalised), largest first, ties by ``image_id``.
    """
    frame = error_frame(ev)
    if not len(frame):
        return {}
    return error_gallery(frame, per_class=per_class, seed=0)


def _mask_paths(ev: Evaluation) -> dict[str, str]:
    """Image path -> the ``--masks`` file its features used (images with one)."""
    feats = None if ev.result is None else ev.result.features
    if feats is None or "path" not in feats.columns or "mask_path" not in feats.columns:
        return {}
    return {
        str(p): str(m)
        for p, m in zip(feats["path"], feats["mask_path"], strict=True)
        if isinstance(m, str) and m
    }


def _with_image(it: GalleryItem, path: str, mask_path: str | None, config) -> GalleryItem:
    from hamfeat.errors import HamfeatError
    from hamfeat.pipeline import prepare_file

    try:
        view, _ = prepare_file(path, mask_path, config)
    except (HamfeatError, OSError):  # deleted or changed since it was scored
        it.note = "image not shown: it cannot be read again"
        return it
    it.rgb = view.rgb
    it.masks = [(view.mask, view.mask_source)]
    it.note = (
        "mask: the given one (--masks)" if view.mask_source == "given" else "mask: automatic"
    )
    return it


def error_items(
    ev: Evaluation, rows: dict[str, list[int]]
) -> tuple[dict[str, list[GalleryItem]], dict[str, str]]:
    """The gallery items of :func:`evaluation_errors`' rows, each with its image and mask.

    Parameters
    ----------
    ev : Evaluation
    rows : dict of class to list of int

    Returns
    -------
    items : dict of class to list of GalleryItem
        Every class with evaluated images, in :data:`CLASSES` order (empty: no error).
    counts : dict of class to str
        ``"k of n wrong"`` per class.
    """
    frame = error_frame(ev)
    config = None if ev.result is None else ev.result.config
    masks = _mask_paths(ev)
    items: dict[str, list[GalleryItem]] = {}
    counts: dict[str, str] = {}
    dx, pred = frame["dx"].to_numpy(), frame["prediction"].to_numpy()
    for c in CLASSES:
        n = int((dx == c).sum())
        if not n:
            continue
        counts[c] = f"{int(((dx == c) & (pred != c)).sum())} of {n} wrong"
        out = []
        for r in rows.get(c, []):
            row = frame.iloc[r]
            it = error_item(row, c)
            if config is None:
                it.note = "image not shown: the evaluation holds no feature configuration"
            else:
                path = str(row["path"])
                given = masks.get(path) if row["mask_source"] == "given" else None
                it = _with_image(it, path, given, config)
            out.append(it)
        items[c] = out
    return items, counts


def page_data(ev: Evaluation, *, per_class: int = GALLERY_PER_CLASS) -> EvaluatePageData:
    """Gather what the evaluation page shows.

    Parameters
    ----------
    ev : Evaluation
        From :func:`hamfeat.evaluate_external.evaluate_scores` (or ``evaluate_images``).
    per_class : int
        Images per class in the error gallery.

    Returns
    -------
    EvaluatePageData
    """
    notes: list[str] = []
    curves: list[ClassCurves] = []
    n = 0
    errors = None
    tradeoff, missing = decision_tradeoff(ev)
    prior_arr, _, _ = model_prior(ev)
    prior = None if prior_arr is None else dict(zip(CLASSES, map(float, prior_arr), strict=True))
    if ev.image is not None:
        ok = ev.evaluated()
        q = _matrix(ok, "q")
        good = np.isfinite(q).all(axis=1) & (q.sum(axis=1) > 0)
        curves = class_curves(_labels(ok)[good], q[good])
        n = int(good.sum())
        rows = evaluation_errors(ev, per_class=per_class)
        items, counts = error_items(ev, rows)
        errors = Gallery(
            "Errors: most confident wrong predictions per true class",
            "Per true class, the evaluated images the model got wrong (at its decision rule, "
            "the operating point of the confusion matrix) with the largest probability p of "
            "the class it predicted. Each is the scored image at the canonical size with the "
            "lesion mask its features used outlined in cyan (made again as hamfeat score "
            "made it). Bars: the model's probabilities p (red: predicted, green: true).",
            items,
            counts,
        )
        if ev.result is not None and ev.result.config is None:
            notes.append("the error gallery has no images: the scoring's feature configuration "
                         "is not in the evaluation")
    return EvaluatePageData(ev, curves, n, tradeoff, missing, prior, errors, notes)
