"""Fitting with progress: a soft-voting ensemble says when each member is fitted.

:func:`fit_reporting` gives the same fitted model as ``model.fit(X, y)``; for a pipeline
ending in a soft-voting ensemble it fits the members in parallel and reports each as it ends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sklearn.base import clone
from sklearn.pipeline import Pipeline

from hamfeat.models.decision import PriorCorrectedClassifier

__all__ = ["fit_reporting"]


def _fit_member(name: str, estimator, X, y):
    """Fit one member of a voting ensemble (in a worker process): its name, the fitted member,
    its fit time and its warnings (the expected ones silenced, the others as one-line text for
    the parent to log)."""
    import time

    from hamfeat._warnings import capture, messages

    t0 = time.perf_counter()
    with capture() as caught:
        estimator.fit(X, y)
    return name, estimator, time.perf_counter() - t0, messages(caught)


def _fit_voting(vc, X, y, say: Callable[[str], None]):
    """``vc.fit(X, y)`` for a soft-voting ensemble, saying when each member is fitted.

    The same steps as :meth:`sklearn.ensemble.VotingClassifier.fit` (labels encoded, each
    member a clone fitted on them, in parallel over ``vc.n_jobs`` processes), so the fitted
    ensemble is the same; the members are collected as they finish instead of all at once.
    """
    from sklearn.preprocessing import LabelEncoder
    from sklearn.utils import Bunch
    from sklearn.utils.parallel import Parallel, delayed

    vc._validate_params()
    names, clfs = vc._validate_estimators()
    vc.le_ = LabelEncoder().fit(y)
    vc.classes_ = vc.le_.classes_
    yt = vc.le_.transform(y)
    from hamfeat._warnings import log_lines

    fitted: dict[str, Any] = {}
    jobs = Parallel(n_jobs=vc.n_jobs, return_as="generator_unordered")
    for name, est, seconds, warned in jobs(
        delayed(_fit_member)(name, clone(clf), X, yt)
        for name, clf in zip(names, clfs, strict=True)
    ):
        fitted[name] = est
        log_lines(f"train: {name}", warned)
        say(f"member {name} fitted ({len(fitted)} of {len(names)}, {seconds:.0f} s)")
    vc.estimators_ = [fitted[n] for n in names]
    vc.named_estimators_ = Bunch()
    for name, est in vc.estimators:
        current = est if est == "drop" else fitted[name]
        vc.named_estimators_[name] = current
        if hasattr(current, "feature_names_in_"):
            vc.feature_names_in_ = current.feature_names_in_
    return vc


def fit_reporting(model, X, y, say: Callable[[str], None] | None = None):
    """``model.fit(X, y)``, saying when fitting starts and when each ensemble member ends.

    Parameters
    ----------
    model : sklearn.pipeline.Pipeline
        A :func:`make_model` pipeline.
    X : pandas.DataFrame
    y : array-like
    say : callable, optional
        Called with one line per event; without it, plain ``model.fit``.

    Returns
    -------
    The fitted ``model``: the same fitted model as ``model.fit(X, y)`` gives.
    """
    from sklearn.ensemble import VotingClassifier

    clf = model.steps[-1][1] if isinstance(model, Pipeline) else None
    core = clf.estimator if isinstance(clf, PriorCorrectedClassifier) else None
    if say is None or not isinstance(core, VotingClassifier) or core.voting != "soft":
        return model.fit(X, y)
    # Pipeline.fit: each transformer fitted and applied in turn (no memory: not cloned)
    Xt = X
    for _, step in model.steps[:-1]:
        if step is not None and step != "passthrough":
            Xt = step.fit_transform(Xt, y)
    clf._fit_with(Xt, y, lambda est, X, y: _fit_voting(est, X, y, say))
    return model

