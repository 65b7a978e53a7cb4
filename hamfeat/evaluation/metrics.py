"""Metrics of out-of-fold predictions: the multiclass metrics at the operating points of the
decision rule ``argmax p / prior**alpha`` (per image and per lesion, summarised over seeds), the
trade-off curve, the majority baseline; and the multi-label AUCs with patient-bootstrap
intervals (ChestX-ray14).

Operating points are reported three ways: fixed ``alpha`` chosen a priori, ``alpha``
cross-fitted (chosen for each test fold on the other folds' out-of-fold predictions), and the
best point of the out-of-fold curve (optimistic: chosen on the test folds).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from hamfeat.datasets.ham10000 import CLASSES
from hamfeat.evaluation.oof import OOF
from hamfeat.evaluation.results import (
    POINTS,
    SCALARS,
    Curve,
    LevelResult,
    LevelSummary,
    Majority,
    MultilabelModelResult,
    OOFResult,
    PointMetrics,
    PointSummary,
    SeedResult,
    Summary,
)
from hamfeat.models import DEFAULT_ALPHA

__all__ = [
    "ACC_FLOOR",
    "ALPHAS",
    "alpha_curve",
    "auc",
    "bootstrap_auc",
    "classification_metrics",
    "evaluate_oof",
    "lesion_level",
    "majority_baseline",
    "multilabel_metrics",
    "pick_alpha",
    "summarise",
]

#: Grid of the decision rule's exponent for the trade-off curve.
ALPHAS: np.ndarray = np.round(np.linspace(0.0, 1.0, 21), 2)
#: Accuracy floor of the joint operating point (the cross-fitted exponent is the best balanced
#: accuracy with at least this accuracy; the issue's target is balanced accuracy >= 0.70 with
#: accuracy >= 0.80 at one point).
ACC_FLOOR = 0.80


def classification_metrics(
    y: np.ndarray,
    proba: np.ndarray,
    prior: np.ndarray,
    alpha: float | np.ndarray,
    classes: Sequence[str] = CLASSES,
) -> dict[str, Any]:
    """Every metric of one set of predictions.

    Parameters
    ----------
    y : numpy.ndarray of int
        True class index (into :data:`~hamfeat.datasets.ham10000.CLASSES`).
    proba : numpy.ndarray of shape (n, n_classes)
    prior : numpy.ndarray of shape (n, n_classes) or (n_classes,)
    alpha : float or numpy.ndarray of shape (n,)
        Exponent of the decision rule (per row if an array).
    classes : sequence of str
        The names of ``proba``'s columns (default: HAM10000's classes).

    Returns
    -------
    dict
        ``accuracy``, ``balanced_accuracy``, ``macro_f1``, ``macro_auc``, ``per_class``
        (precision, recall, f1, support per class) and ``confusion`` (rows: true class).
    """
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    labels = list(range(len(classes)))
    alpha_arr = np.broadcast_to(np.asarray(alpha, dtype=float), (len(y),))
    prior = np.broadcast_to(prior, proba.shape)
    pred = np.argmax(proba / np.clip(prior, 1e-12, None) ** alpha_arr[:, None], axis=1)
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0.0)
    present = np.unique(y)
    try:
        p_norm = proba / proba.sum(axis=1, keepdims=True)
        auc = (
            float(roc_auc_score(y, p_norm, multi_class="ovr", average="macro", labels=labels))
            if len(present) == len(labels)
            else float("nan")
        )
    except ValueError:
        auc = float("nan")
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
        "macro_f1": float(f1_score(y, pred, labels=labels, average="macro", zero_division=0.0)),
        "macro_auc": auc,
        "per_class": {
            c: {
                "precision": float(p[i]),
                "recall": float(r[i]),
                "f1": float(f[i]),
                "support": int(s[i]),
            }
            for i, c in enumerate(classes)
        },
        "confusion": confusion_matrix(y, pred, labels=labels).tolist(),
    }


def alpha_curve(
    y: np.ndarray, proba: np.ndarray, prior: np.ndarray, alphas: Iterable[float] = ALPHAS
) -> dict[str, list[float]]:
    """Accuracy and balanced accuracy of the decision rule ``argmax p / prior**alpha`` for
    each alpha (no refit): the trade-off curve of ``hamfeat cv`` and ``evaluate --html``.

    Parameters
    ----------
    y : numpy.ndarray of int
        True class index (into the columns of ``proba``).
    proba : numpy.ndarray of shape (n, n_classes)
    prior : numpy.ndarray of shape (n, n_classes) or (n_classes,)
    alphas : iterable of float

    Returns
    -------
    dict
        ``alpha``, ``accuracy``, ``balanced_accuracy`` (mean recall over the classes present
        in ``y``): lists, one value per alpha.
    """
    k = proba.shape[1]
    logp = np.log(np.clip(proba, 1e-300, None))
    logprior = np.log(np.clip(np.broadcast_to(prior, proba.shape), 1e-12, None))
    acc, bal = [], []
    counts = np.bincount(y, minlength=k)
    present = counts > 0
    for a in alphas:
        pred = np.argmax(logp - a * logprior, axis=1)
        ok = pred == y
        acc.append(float(ok.mean()))
        rec = np.bincount(y[ok], minlength=k)[present] / counts[present]
        bal.append(float(rec.mean()))
    return {"alpha": [float(a) for a in alphas], "accuracy": acc, "balanced_accuracy": bal}


#: The former private name (benchmarks import it).
_curve = alpha_curve



def pick_alpha(curve: Mapping[str, list], acc_floor: float = ACC_FLOOR) -> float:
    """The joint operating point of a curve: the best balanced accuracy among the alphas whose
    accuracy is at least ``acc_floor``; if none reaches it, the best accuracy + balanced
    accuracy.

    Parameters
    ----------
    curve : mapping
        :func:`alpha_curve`'s output.
    acc_floor : float

    Returns
    -------
    float
    """
    a = np.asarray(curve["alpha"])
    acc = np.asarray(curve["accuracy"])
    bal = np.asarray(curve["balanced_accuracy"])
    ok = acc >= acc_floor
    if ok.any():
        i = int(np.flatnonzero(ok)[np.argmax(bal[ok])])
    else:
        i = int(np.argmax(acc + bal))
    return float(a[i])


def lesion_level(
    y: np.ndarray, proba: np.ndarray, prior: np.ndarray, groups: Sequence[Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Average the probabilities (and priors) over each lesion's images.

    Parameters
    ----------
    y : numpy.ndarray of int
    proba : numpy.ndarray of shape (n, n_classes)
    prior : numpy.ndarray of shape (n, n_classes) or (n_classes,)
    groups : sequence
        Lesion id per image.

    Returns
    -------
    y_lesion, proba_lesion, prior_lesion : numpy.ndarray
        One row per lesion (sorted by id).
    codes : numpy.ndarray of int
        The lesion row of each image.
    """
    codes, uniq = pd.factorize(pd.Series(groups), sort=True)
    n = len(uniq)
    k = proba.shape[1]
    cnt = np.bincount(codes, minlength=n).astype(float)
    pl = np.zeros((n, k))
    prl = np.zeros((n, k))
    np.add.at(pl, codes, proba)
    np.add.at(prl, codes, np.broadcast_to(prior, proba.shape))
    yl = np.zeros(n, dtype=int)
    yl[codes] = y
    return yl, pl / cnt[:, None], prl / cnt[:, None], codes



def _level(
    yy: np.ndarray, pp: np.ndarray, pr: np.ndarray, ff: np.ndarray, fixed_alpha: float,
    classes: Sequence[str] = CLASSES,
) -> LevelResult:
    """The four operating points and the curve of one seed at one level."""
    curve = alpha_curve(yy, pp, pr)
    # cross-fitted alpha: for each test fold, chosen on the other folds' OOF predictions
    alpha_rows = np.zeros(len(yy))
    chosen = {}
    for f in np.unique(ff):
        other = ff != f
        a = pick_alpha(alpha_curve(yy[other], pp[other], pr[other]))
        alpha_rows[ff == f] = a
        chosen[int(f)] = a
    best_alpha = pick_alpha(curve)

    def point(rule, **extra) -> PointMetrics:
        return PointMetrics(**classification_metrics(yy, pp, pr, rule, classes), **extra)

    return LevelResult(
        argmax=point(0.0),
        fixed=point(fixed_alpha, alpha=fixed_alpha),
        crossfit=point(alpha_rows, alpha_per_fold=chosen),
        best_on_curve=point(best_alpha, alpha=best_alpha),
        curve=Curve(**curve),
    )


def evaluate_oof(
    oof: OOF,
    y: np.ndarray,
    groups: np.ndarray | None,
    *,
    fixed_alpha: float = DEFAULT_ALPHA,
    classes: Sequence[str] = CLASSES,
) -> OOFResult:
    """Metrics of out-of-fold predictions at every operating point, per image and per lesion,
    per seed, and their summary over seeds.

    Parameters
    ----------
    oof : OOF
    y : numpy.ndarray of int
        True class index per image.
    groups : numpy.ndarray, optional
        Lesion id per image; None: no lesion level.
    fixed_alpha : float
        The exponent of the ``fixed`` point.
    classes : sequence of str
        The names of the probability columns (default: HAM10000's classes).

    Returns
    -------
    OOFResult
    """
    per_seed = []
    for si, seed in enumerate(oof.seeds):
        proba, prior, fold = oof.proba[si], oof.prior[si], oof.fold[si]
        res = SeedResult(seed, _level(y, proba, prior, fold, fixed_alpha, classes))
        if groups is not None:
            yl, pl, prl, codes = lesion_level(y, proba, prior, groups)
            fl = np.zeros(len(yl), dtype=int)
            fl[codes] = fold
            res.lesion = _level(yl, pl, prl, fl, fixed_alpha, classes)
        per_seed.append(res)
    return OOFResult(per_seed, summarise(per_seed), oof.fit_seconds)


def _point_summary(points: list[PointMetrics], point: str) -> PointSummary:
    mean, std = {}, {}
    for m in SCALARS:
        vals = np.array([getattr(p, m) for p in points])
        mean[m] = float(vals.mean())
        std[m] = float(vals.std()) if len(vals) > 1 else 0.0
    alpha = alphas = None
    if point in ("fixed", "best_on_curve"):
        alpha = float(np.mean([p.alpha for p in points]))
    if point == "crossfit":
        alphas = sorted({a for p in points for a in p.alpha_per_fold.values()})
    classes = list(points[0].per_class)  # the points' classes, in order
    recall = {c: float(np.mean([p.per_class[c]["recall"] for p in points])) for c in classes}
    precision = {
        c: float(np.mean([p.per_class[c]["precision"] for p in points])) for c in classes
    }
    return PointSummary(mean, std, recall, precision, alpha, alphas)


def summarise(per_seed: Sequence[SeedResult]) -> Summary:
    """Mean and standard deviation over seeds of the scalar metrics.

    Parameters
    ----------
    per_seed : sequence of SeedResult

    Returns
    -------
    Summary
    """
    levels = {}
    for level in ("image", "lesion"):
        if getattr(per_seed[0], level) is None:
            continue
        levels[level] = LevelSummary(
            *(_point_summary([getattr(r, level).point(p) for r in per_seed], p) for p in POINTS)
        )
    return Summary(**levels)


def majority_baseline(
    y: np.ndarray, groups: np.ndarray | None, classes: Sequence[str] = CLASSES
) -> Majority:
    """The majority-class baseline (always predict the most frequent class).

    Parameters
    ----------
    y : numpy.ndarray of int
    groups : numpy.ndarray, optional
        Lesion id per image (adds the lesion level).
    classes : sequence of str
        The class names (default: HAM10000's).

    Returns
    -------
    Majority
    """
    k = len(classes)
    maj = int(np.bincount(y, minlength=k).argmax())
    onehot = np.zeros((len(y), k))
    onehot[:, maj] = 1.0
    res = Majority(
        classes[maj],
        PointMetrics(**classification_metrics(y, onehot, np.full(k, 1 / k), 0.0, classes)),
    )
    if groups is not None:
        yl, pl, prl, _ = lesion_level(y, onehot, np.full(k, 1 / k), groups)
        res.lesion = PointMetrics(**classification_metrics(yl, pl, prl, 0.0, classes))
    return res


# --------------------------------------------------------------------------------------------
# multi-label
# --------------------------------------------------------------------------------------------


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC of a binary label, NaN when only one class is present.

    Parameters
    ----------
    y : numpy.ndarray of 0/1
    p : numpy.ndarray
        Scores.

    Returns
    -------
    float
    """
    from sklearn.metrics import roc_auc_score

    if len(y) == 0 or y.min() == y.max():
        return float("nan")
    return float(roc_auc_score(y, p))


def bootstrap_auc(
    Y: np.ndarray, P: np.ndarray, groups: np.ndarray, n_boot: int, seed: int
) -> np.ndarray:
    """Per-label AUCs over ``n_boot`` resamples of patients (with replacement).

    Parameters
    ----------
    Y, P : numpy.ndarray of shape (n_images, n_labels)
        0/1 labels and scores.
    groups : numpy.ndarray
        Patient per image.
    n_boot, seed : int

    Returns
    -------
    numpy.ndarray of shape (n_boot, n_labels)
    """
    rng = np.random.default_rng(seed)
    uniq, inv = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inv == g) for g in range(len(uniq))]
    out = np.full((n_boot, Y.shape[1]), np.nan)
    for b in range(n_boot):
        pick = rng.integers(0, len(uniq), size=len(uniq))
        idx = np.concatenate([members[g] for g in pick])
        for j in range(Y.shape[1]):
            out[b, j] = auc(Y[idx, j], P[idx, j])
    return out


def multilabel_metrics(
    labels: list[str],
    Y: np.ndarray,
    P: np.ndarray,
    groups: np.ndarray,
    n_boot: int,
    seed: int,
    *,
    abnormal: str = "abnormal",
) -> MultilabelModelResult:
    """Per-label AUCs, their mean over the findings, and 95% patient-bootstrap intervals.

    Parameters
    ----------
    labels : list of str
        The columns of ``Y`` and ``P``; ``abnormal`` is not a finding.
    Y, P : numpy.ndarray of shape (n_images, n_labels)
    groups : numpy.ndarray
        Patient per image.
    n_boot : int
        Bootstrap resamples (0: no intervals).
    seed : int
    abnormal : str
        The any-finding label.

    Returns
    -------
    MultilabelModelResult
        Without ``fit_seconds``.
    """
    aucs = {lab: auc(Y[:, j], P[:, j]) for j, lab in enumerate(labels)}
    findings = [lab for lab in labels if lab != abnormal]
    boot = bootstrap_auc(Y, P, groups, n_boot, seed) if n_boot else None
    ci = {}
    mean_ci = None
    if boot is not None:
        for j, lab in enumerate(labels):
            ci[lab] = [float(np.nanpercentile(boot[:, j], 2.5)),
                       float(np.nanpercentile(boot[:, j], 97.5))]
        if findings:
            fidx = [labels.index(f) for f in findings]
            means = np.nanmean(boot[:, fidx], axis=1)
            mean_ci = [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]
    return MultilabelModelResult(
        auc=aucs,
        auc_ci95=ci,
        mean_auc_findings=float(np.nanmean([aucs[f] for f in findings])) if findings else None,
        mean_auc_findings_ci95=mean_ci,
        abnormal_auc=aucs.get(abnormal),
        abnormal_auc_ci95=ci.get(abnormal),
    )
