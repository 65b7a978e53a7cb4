"""Out-of-fold predictions: each estimator fitted on each training fold, in worker processes,
and its test fold predicted; soft voting and cross-fitted stacking of the results; the same for
one-vs-rest multi-label estimators. One worker function serves both tasks."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from hamfeat.datasets.ham10000 import CLASSES
from hamfeat.evaluation.splits import Split
from hamfeat.models_multilabel import fit_ovr, positive_proba

__all__ = ["OOF", "average_oof", "class_proba", "fit_predict", "oof_multilabel", "oof_predictions",
           "stacking_oof"]


@dataclass
class OOF:
    """Out-of-fold predictions of one model over one or more CV repetitions.

    Attributes
    ----------
    name : str
    seeds : list of int
    proba : numpy.ndarray of shape (n_seeds, n_images, n_classes)
        Probabilities in :data:`~hamfeat.datasets.ham10000.CLASSES` order.
    prior : numpy.ndarray of shape (n_seeds, n_images, n_classes)
        Class frequencies of the training fold that predicted each image.
    fold : numpy.ndarray of shape (n_seeds, n_images)
    fit_seconds : float
        Total fit + predict time over all folds (sum over workers).
    """

    name: str
    seeds: list[int]
    proba: np.ndarray
    prior: np.ndarray
    fold: np.ndarray
    fit_seconds: float = 0.0
    info: dict = field(default_factory=dict)

def class_proba(est: Any, X: pd.DataFrame, classes: Sequence[str] = CLASSES) -> np.ndarray:
    """Probabilities of a fitted classifier in ``classes`` order (zeros for
    the classes its training fold lacked).

    Parameters
    ----------
    est : fitted classifier
    X : pandas.DataFrame
    classes : sequence of str
        The column order (default: HAM10000's classes).

    Returns
    -------
    numpy.ndarray of shape (n, n_classes)
    """
    proba = est.predict_proba(X)
    order = list(classes)
    full = np.zeros((len(X), len(order)))
    for j, c in enumerate(str(c) for c in est.classes_):
        full[:, order.index(c)] = proba[:, j]
    return full


def _fit_plain(est: Any, X: pd.DataFrame, y: np.ndarray) -> Any:
    return est.fit(X, y)


def _proba_multilabel(est: Any, X: pd.DataFrame, y: np.ndarray) -> np.ndarray:
    return positive_proba(est, X, y.shape[1])


def _proba_multiclass(
    est: Any, X: pd.DataFrame, y: np.ndarray, classes: Sequence[str] = CLASSES
) -> np.ndarray:
    return class_proba(est, X, classes)


def fit_predict(
    estimator: Any,
    table: pd.DataFrame,
    y: np.ndarray,
    split: Split,
    *,
    fit: Callable[[Any, pd.DataFrame, np.ndarray], Any] = _fit_plain,
    predict: Callable[[Any, pd.DataFrame, np.ndarray], np.ndarray] = _proba_multiclass,
    user_api: str | None = "blas",
) -> tuple[Split, np.ndarray, float, list]:
    """Fit a clone of ``estimator`` on a split's training rows and predict its test rows.

    Runs in a worker process: the expected warnings are silenced, the others sent back.

    Parameters
    ----------
    estimator : unfitted estimator
    table : pandas.DataFrame
    y : numpy.ndarray
        Labels (one per row) or a 0/1 label matrix.
    split : Split
    fit, predict : callable
        ``fit(est, X, y)``; ``predict(est, X, y_train)`` -> probabilities.
    user_api : str or None
        The thread pools limited to one thread (``threadpoolctl``; None: every pool).

    Returns
    -------
    split : Split
    proba : numpy.ndarray
    seconds : float
    warnings : list
        The warnings caught, to be logged by the caller.
    """
    from threadpoolctl import threadpool_limits

    from hamfeat._warnings import capture, messages

    t0 = time.perf_counter()
    est = clone(estimator)
    with threadpool_limits(limits=1, user_api=user_api), capture() as caught:
        fit(est, table.iloc[split.train], y[split.train])
        proba = predict(est, table.iloc[split.test], y[split.train])
    return split, proba, time.perf_counter() - t0, messages(caught)


def _run(estimators, table, y, splits, n_jobs: int, **kw) -> list[tuple[Any, tuple]]:
    """(name, fit_predict result) of every estimator on every split, ``n_jobs`` processes."""
    from joblib import Parallel, delayed

    from hamfeat._warnings import log_lines

    tasks = [(name, est, s) for name, est in estimators.items() for s in splits]
    results = Parallel(n_jobs=n_jobs, prefer="processes")(
        delayed(fit_predict)(est, table, y, s, **kw) for _, est, s in tasks
    )
    log_lines("cv", [w for *_, warned in results for w in warned])
    return [(name, r) for (name, _, _), r in zip(tasks, results, strict=True)]


def oof_predictions(
    estimators: Mapping[str, Any],
    table: pd.DataFrame,
    splits: Sequence[Split],
    *,
    n_jobs: int | None = None,
    require_complete: bool = True,
    classes: Sequence[str] = CLASSES,
) -> dict[str, OOF]:
    """Fit each estimator on each training fold and predict its test fold.

    Parameters
    ----------
    estimators : mapping of name to unfitted estimator
        Each takes the table (DataFrame) as input and has ``predict_proba``.
    table : pandas.DataFrame
        The feature table (labels in ``dx``).
    splits : sequence of Split
        Every image must be in exactly one test fold per seed.
    n_jobs : int, optional
        Folds fitted in parallel (joblib); default: all cores.
    require_complete : bool
        Refuse splits that leave some image out of every test fold.
    classes : sequence of str
        The probability columns' classes (default: HAM10000's).

    Returns
    -------
    dict of name to OOF
    """
    y = table["dx"].astype(str).to_numpy()
    n = len(table)
    seeds = sorted({s.seed for s in splits})
    n_jobs = n_jobs or os.cpu_count() or 1
    n_tasks = len(estimators) * len(splits)
    kw = {} if tuple(classes) == tuple(CLASSES) else {
        "predict": functools.partial(_proba_multiclass, classes=tuple(classes))}
    results = _run(estimators, table, y, splits, min(n_jobs, n_tasks), **kw)
    out: dict[str, OOF] = {}
    for name in estimators:
        out[name] = OOF(
            name,
            seeds,
            np.full((len(seeds), n, len(classes)), np.nan),
            np.full((len(seeds), n, len(classes)), np.nan),
            np.full((len(seeds), n), -1, dtype=int),
        )
    yi = np.array([list(classes).index(c) for c in y])
    for name, (split, proba, seconds, _) in results:
        o = out[name]
        si = seeds.index(split.seed)
        o.proba[si, split.test] = proba
        counts = np.bincount(yi[split.train], minlength=len(classes)).astype(float)
        o.prior[si, split.test] = counts / counts.sum()
        o.fold[si, split.test] = split.fold
        o.fit_seconds += seconds
    for o in out.values():
        if require_complete and (o.fold < 0).any():
            raise ValueError(f"{o.name}: some images are in no test fold")
    return out


def average_oof(name: str, members: Sequence[OOF], weights: Sequence[float] | None = None) -> OOF:
    """Soft voting of out-of-fold predictions (the mean of the members' probabilities).

    This equals the out-of-fold predictions of a refitted
    :class:`~sklearn.ensemble.VotingClassifier` of the same (deterministic) members on the same
    splits, without fitting anything again.

    Returns
    -------
    OOF
    """
    w = np.ones(len(members)) if weights is None else np.asarray(weights, dtype=float)
    proba = sum(wi * m.proba for wi, m in zip(w, members, strict=True)) / w.sum()
    first = members[0]
    return OOF(
        name,
        list(first.seeds),
        proba,
        first.prior.copy(),
        first.fold.copy(),
        sum(m.fit_seconds for m in members),
        {"members": [m.name for m in members], "derived": "mean of member OOF probabilities"},
    )


# --------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------


def stacking_oof(name: str, members: Sequence[OOF], y: np.ndarray, random_state: int) -> OOF:
    """Approximate stacking: a logistic regression on the members' OOF log-probabilities,
    cross-fitted on the same folds (for each fold, fitted on the other folds' OOF rows).

    Parameters
    ----------
    name : str
    members : sequence of OOF
    y : numpy.ndarray of int
        True class index per image.
    random_state : int

    Returns
    -------
    OOF
    """
    from sklearn.linear_model import LogisticRegression

    first = members[0]
    proba = np.zeros_like(first.proba)
    for si in range(len(first.seeds)):
        Z = np.hstack([np.log(np.clip(m.proba[si], 1e-6, None)) for m in members])
        fold = first.fold[si]
        for f in np.unique(fold):
            tr, te = fold != f, fold == f
            lr = LogisticRegression(C=1.0, max_iter=2000, random_state=random_state)
            lr.fit(Z[tr], y[tr])
            p = np.zeros((te.sum(), first.proba.shape[2]))
            p[:, lr.classes_] = lr.predict_proba(Z[te])
            proba[si, te] = p
    return OOF(
        name,
        list(first.seeds),
        proba,
        first.prior.copy(),
        first.fold.copy(),
        0.0,
        {"members": [m.name for m in members], "derived": "cross-fitted LR on member OOF"},
    )


def oof_multilabel(
    estimators: dict[str, Any],
    table: pd.DataFrame,
    Y: np.ndarray,
    splits: Sequence[Split],
    *,
    n_jobs: int = 2,
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Out-of-fold probabilities of each one-vs-rest estimator.

    Parameters
    ----------
    estimators : dict of name to unfitted estimator
    table : pandas.DataFrame
    Y : numpy.ndarray of shape (n_images, n_labels)
        0/1 labels.
    splits : sequence of Split
        One repetition (each image in exactly one test fold).
    n_jobs : int
        Folds fitted in parallel (processes).

    Returns
    -------
    proba : dict of name to numpy.ndarray of shape (n_images, n_labels)
    seconds : dict of name to float
        Fit + predict time summed over folds.
    """
    n_tasks = len(estimators) * len(splits)
    results = _run(estimators, table, Y, splits, max(1, min(int(n_jobs), n_tasks)),
                   fit=fit_ovr, predict=_proba_multilabel, user_api=None)
    proba = {name: np.full(Y.shape, np.nan) for name in estimators}
    seconds = dict.fromkeys(estimators, 0.0)
    for name, (split, p, sec, _) in results:
        proba[name][split.test] = p
        seconds[name] += sec
    for name, p in proba.items():
        if np.isnan(p).any():
            raise ValueError(f"{name}: some images are in no test fold")
    return proba, seconds
