"""Model pipelines on the feature table, the prior-corrected decision rule, and safe persistence.

Every model is a :class:`sklearn.pipeline.Pipeline` that takes the feature table itself (a
:class:`pandas.DataFrame` with one row per image) and selects its own columns by feature family,
so the same pipeline can be fitted on a table with extra columns and cross-validation never
leaks: selection, imputation, scaling, resampling and the classifier are all refitted on each
training fold. The last step is always a :class:`PriorCorrectedClassifier`, whose ``predict``
takes the arg-max of ``p / prior**alpha`` (``alpha=0``: plain arg-max, ``alpha=1``: full prior
correction), with the priors learned from the training labels.

Models are saved with :mod:`skops.io` (never pickle) together with the hamfeat version, the
feature-definition version, the feature names and configuration, the classes and a hash of the
training table; :func:`load_model` refuses any file that holds a type outside an explicit
allow-list, is not a skops file, or does not match the features it is meant for.

    >>> import numpy as np
    >>> rule = apply_decision_rule(np.array([[0.6, 0.4]]), np.array([0.9, 0.1]), alpha=1.0)
    >>> rule.tolist()
    [1]
"""

from __future__ import annotations

import importlib
import json
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from hamfeat._version import __version__
from hamfeat.errors import ModelError, OutputError
from hamfeat.features import DEFAULT_FAMILIES
from hamfeat.features import GRAY_FAMILY_NAMES as _GRAY

__all__ = [
    "DEFAULT_ALPHA",
    "FAMILY_NAMES",
    "MLP_SEEDS",
    "MODEL_NAMES",
    "SEED_FEATURE_PATTERN",
    "FeatureSelector",
    "LoadedModel",
    "PriorCorrectedClassifier",
    "apply_decision_rule",
    "drop_training_state",
    "family_of",
    "feature_columns",
    "fit_reporting",
    "load_model",
    "make_model",
    "note_undeclared",
    "save_model",
    "undeclared_feature_like",
]

#: Feature families, by the first token of their column names: the registry's dermoscopy
#: families in registry order (:data:`hamfeat.features.DEFAULT_FAMILIES`).
FAMILY_NAMES: tuple[str, ...] = tuple(DEFAULT_FAMILIES)
#: Grayscale families of radiographs (:mod:`hamfeat.features.gray`): usable when named, never
#: part of the ``families=None`` default above.
GRAY_FAMILY_NAMES: tuple[str, ...] = tuple(_GRAY)
#: Model names understood by :func:`make_model`.
MODEL_NAMES: tuple[str, ...] = ("knn", "svm", "rf", "hgb", "lr", "mlp", "ensemble", "knn_seed")
#: Simple colour features of the published KNN baseline: RGB/HSV means, spreads, HSV histograms.
SEED_FEATURE_PATTERN = r"^color_(rgb|hsv)_[a-z]+_(mean|std|hist\d+)$"
#: Metadata columns usable by the ``metadata=True`` variant (always reported apart).
METADATA_NUMERIC: tuple[str, ...] = ("age",)
METADATA_CATEGORICAL: tuple[str, ...] = ("sex", "localization")
#: Default exponent of the decision rule ``argmax p / prior**alpha`` for :func:`make_model`.
DEFAULT_ALPHA = 0.5
#: Members of the default ensemble (soft voting: mean of their probabilities). Chosen on the
#: automatic-mask table on development seeds 1 and 2 (benchmarks/reports/shipped_dev.md):
#: hgb + mlp had the best cross-fitted balanced accuracy at accuracy >= 0.80 (0.802 / 0.681);
#: adding svm and lr lowered it (0.803 / 0.674) and cost 51 s of fitting and 36 MB of model.
ENSEMBLE_MEMBERS: tuple[str, ...] = ("hgb", "mlp")
#: Networks (random initialisations) averaged by the ``mlp`` model.
MLP_SEEDS = 5

MODEL_FORMAT = "hamfeat-model"
MODEL_FORMAT_VERSION = 1


def family_of(column: str) -> str:
    """Return the feature family of a column name: its first ``_``-separated token.

    Parameters
    ----------
    column : str

    Returns
    -------
    str

    Examples
    --------
    >>> family_of("glcm_d1_contrast_mean")
    'glcm'
    """
    return str(column).split("_", 1)[0]


def feature_columns(
    columns: Iterable[str],
    families: Iterable[str] | None = None,
    *,
    exclude: Iterable[str] = (),
    pattern: str | None = None,
) -> list[str]:
    """Pick the feature columns of some families, in table order.

    A column is a feature only if its name is one the family declares
    (:meth:`hamfeat.features.Family.names`), never because it starts with the family's name:
    ``skin_type`` or ``color_site_code`` in a table are metadata, not features (see
    :func:`undeclared_feature_like`).

    Parameters
    ----------
    columns : iterable of str
        The table's columns (non-feature columns such as ``dx`` are never picked).
    families : iterable of str, optional
        Family names (see :data:`FAMILY_NAMES`); ``None`` means all.
    exclude : iterable of str
        Families to leave out.
    pattern : str, optional
        A regular expression the column name must also match (``re.match``).

    Returns
    -------
    list of str

    Raises
    ------
    ValueError
        For an unknown family name.
    """
    fams = _check_families(families)
    excl = set(_check_families(exclude)) if exclude else set()
    declared = _declared_names(tuple(f for f in fams if f not in excl))
    rx = re.compile(pattern) if pattern else None
    return [c for c in map(str, columns) if c in declared and (rx is None or rx.match(c))]


def _declared_names(families: tuple[str, ...]) -> frozenset[str]:
    """Every feature name the given families declare (cached per family)."""
    out: set[str] = set()
    for f in families:
        if f not in _DECLARED:
            from hamfeat.features import FAMILIES

            _DECLARED[f] = frozenset(FAMILIES[f].names())
        out |= _DECLARED[f]
    return frozenset(out)


_DECLARED: dict[str, frozenset[str]] = {}


def undeclared_feature_like(columns: Iterable[str]) -> list[str]:
    """Columns that start like a family's features but are not declared feature names.

    Such columns (``skin_type``, ``color_site_code``, ...) are never used as features; callers
    mention them in a one-line note, because a user may have expected them to be.

    Parameters
    ----------
    columns : iterable of str

    Returns
    -------
    list of str
        In table order.
    """
    known = FAMILY_NAMES + GRAY_FAMILY_NAMES
    declared = _declared_names(known)
    return [c for c in map(str, columns) if family_of(c) in known and c not in declared]


def note_undeclared(columns: Iterable[str], where: str | PathLike[str] = "table") -> list[str]:
    """Log one warning line naming the :func:`undeclared_feature_like` columns, if any.

    Returns
    -------
    list of str
        Those columns.
    """
    import logging

    odd = undeclared_feature_like(columns)
    if odd:
        logging.getLogger("hamfeat").warning(
            "%s: %d column(s) look like features but are not declared feature names, "
            "ignored: %s%s",
            where,
            len(odd),
            ", ".join(odd[:5]),
            " ..." if len(odd) > 5 else "",
        )
    return odd


def _check_families(families: Iterable[str] | None) -> tuple[str, ...]:
    if families is None:
        return FAMILY_NAMES
    if isinstance(families, str):
        families = families.split(",")
    fams = tuple(str(f).strip() for f in families if str(f).strip())
    known = FAMILY_NAMES + GRAY_FAMILY_NAMES
    unknown = [f for f in fams if f not in known]
    if unknown:
        raise ValueError(
            f"unknown feature famil{'y' if len(unknown) == 1 else 'ies'} {unknown}; "
            f"known: {', '.join(known)}"
        )
    return fams


# --------------------------------------------------------------------------------------------
# estimators
# --------------------------------------------------------------------------------------------


class FeatureSelector(TransformerMixin, BaseEstimator):
    """Select the feature columns of a table by family (and optionally add metadata).

    Parameters
    ----------
    families : tuple of str, optional
        Families to keep; ``None`` keeps every family of :data:`FAMILY_NAMES`.
    exclude : tuple of str
        Families to leave out.
    pattern : str, optional
        Keep only the columns whose name matches this regular expression.
    metadata : bool
        Append ``age`` (NaN when unknown) and one-hot ``sex`` and ``localization`` (categories
        learned in ``fit``).

    Attributes
    ----------
    columns_ : list of str
        The selected feature columns, in table order.
    categories_ : dict
        Metadata categories per column (empty unless ``metadata``).
    n_features_in_ : int
    feature_names_in_ : numpy.ndarray
        The columns of the table seen in ``fit`` (only for a DataFrame input).

    Notes
    -----
    A plain array input (no column names) keeps every column when no family, pattern or
    exclusion is given, and is refused otherwise.
    """

    def __init__(self, families=None, exclude=(), pattern=None, metadata=False):
        self.families = families
        self.exclude = exclude
        self.pattern = pattern
        self.metadata = metadata

    def fit(self, X, y=None):
        """Learn which columns to use.

        Parameters
        ----------
        X : pandas.DataFrame or array-like of shape (n_samples, n_columns)
        y : ignored

        Returns
        -------
        self
        """
        if isinstance(X, pd.DataFrame):
            cols = [str(c) for c in X.columns]
            self.feature_names_in_ = np.asarray(cols, dtype=object)
            self.columns_ = feature_columns(
                cols, self.families, exclude=self.exclude or (), pattern=self.pattern
            )
            if not self.columns_:
                raise ValueError(
                    "no feature column selected (families="
                    f"{self.families!r}, exclude={self.exclude!r}, pattern={self.pattern!r}) "
                    f"among {len(cols)} columns"
                )
            self.categories_ = {}
            if self.metadata:
                for c in METADATA_NUMERIC + METADATA_CATEGORICAL:
                    if c not in X.columns:
                        raise ValueError(f"metadata=True but the table has no {c!r} column")
                for c in METADATA_CATEGORICAL:
                    vals = X[c].astype("string").fillna("unknown")
                    self.categories_[c] = sorted(set(vals.tolist()))
            self.n_features_in_ = len(cols)
        else:
            if self.families is not None or self.exclude or self.pattern or self.metadata:
                raise ValueError(
                    "FeatureSelector with families, exclude, pattern or metadata needs a "
                    "DataFrame with named columns"
                )
            arr = _as_2d_float(X)
            self.columns_ = list(range(arr.shape[1]))
            self.categories_ = {}
            self.n_features_in_ = arr.shape[1]
        return self

    def transform(self, X):
        """Return the selected columns as a float array.

        Parameters
        ----------
        X : pandas.DataFrame or array-like

        Returns
        -------
        numpy.ndarray of shape (n_samples, n_selected)
        """
        check_is_fitted(self, "columns_")
        if hasattr(self, "feature_names_in_"):
            if not isinstance(X, pd.DataFrame):
                raise ValueError("this FeatureSelector was fitted on a DataFrame; give it one")
            missing = [c for c in self.columns_ if c not in X.columns]
            if missing:
                raise ValueError(
                    f"{len(missing)} feature column(s) missing from the table, e.g. "
                    f"{', '.join(missing[:5])}"
                )
            out = X[self.columns_].to_numpy(dtype=np.float64, na_value=np.nan)
            if self.metadata:
                parts = [out, X[list(METADATA_NUMERIC)].to_numpy(np.float64, na_value=np.nan)]
                for c, cats in self.categories_.items():
                    vals = X[c].astype("string").fillna("unknown").to_numpy(dtype=object)
                    parts.append((vals[:, None] == np.asarray(cats, dtype=object)).astype(float))
                out = np.hstack(parts)
            return out
        arr = _as_2d_float(X)
        if arr.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {arr.shape[1]} features, but FeatureSelector is expecting "
                f"{self.n_features_in_} features as input"
            )
        return arr

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns.

        Returns
        -------
        numpy.ndarray of str
        """
        check_is_fitted(self, "columns_")
        names = [str(c) if isinstance(c, str) else f"x{c}" for c in self.columns_]
        if self.metadata:
            names += list(METADATA_NUMERIC)
            names += [f"{c}={v}" for c, cats in self.categories_.items() for v in cats]
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


def _as_2d_float(X) -> np.ndarray:
    import inspect

    from sklearn.utils.validation import check_array

    kw = (
        "ensure_all_finite"
        if "ensure_all_finite" in inspect.signature(check_array).parameters
        else "force_all_finite"  # scikit-learn < 1.6
    )
    return check_array(X, dtype=np.float64, **{kw: "allow-nan"})


def apply_decision_rule(proba: np.ndarray, prior: np.ndarray, alpha: float) -> np.ndarray:
    """Column index of ``argmax(proba / prior**alpha)`` per row.

    Parameters
    ----------
    proba : numpy.ndarray of shape (n_samples, n_classes)
        Class probabilities.
    prior : numpy.ndarray of shape (n_classes,) or (n_samples, n_classes)
        Class priors (training-label frequencies), per row if 2-D.
    alpha : float
        0 is the plain arg-max, 0.5 divides by the square root of the priors, 1 is the full
        prior correction.

    Returns
    -------
    numpy.ndarray of int
    """
    proba = np.asarray(proba, dtype=np.float64)
    prior = np.clip(np.asarray(prior, dtype=np.float64), 1e-12, None)
    return np.argmax(proba / prior**alpha, axis=1)


class PriorCorrectedClassifier(ClassifierMixin, BaseEstimator):
    """A classifier whose decision divides the probabilities by the class priors to a power.

    ``predict`` returns ``classes_[argmax(p / class_prior_**alpha)]``; ``predict_proba`` returns
    the wrapped estimator's probabilities unchanged (so AUC and calibration are untouched).

    Parameters
    ----------
    estimator : classifier with ``predict_proba``, optional
        Defaults to a :class:`~sklearn.linear_model.LogisticRegression`.
    alpha : float, default 0.0
        Exponent of the prior correction, ``>= 0``.

    Attributes
    ----------
    estimator_ : classifier
        The fitted clone of ``estimator``.
    classes_ : numpy.ndarray
    class_prior_ : numpy.ndarray
        Frequencies of ``classes_`` in the labels given to ``fit`` (before any resampling done
        inside ``estimator``).
    n_features_in_ : int
    """

    def __init__(self, estimator=None, alpha=0.0):
        self.estimator = estimator
        self.alpha = alpha

    def fit(self, X, y, **fit_params):
        """Fit the wrapped estimator and learn the class priors from ``y``.

        Parameters
        ----------
        X : array-like or DataFrame
        y : array-like of shape (n_samples,)
        **fit_params
            Passed to the wrapped estimator's ``fit``.

        Returns
        -------
        self
        """
        return self._fit_with(X, y, lambda est, X, y: est.fit(X, y, **fit_params))

    def _fit_with(self, X, y, fit):
        """:meth:`fit`, the wrapped estimator's clone fitted by ``fit(est, X, y)``."""
        alpha = float(self.alpha)
        if not np.isfinite(alpha) or alpha < 0:
            raise ValueError(f"alpha must be a finite number >= 0, got {self.alpha!r}")
        est = self._default_estimator()
        y_arr = np.asarray(y)
        if y_arr.ndim != 1:
            from sklearn.utils.validation import column_or_1d

            y_arr = column_or_1d(y_arr, warn=True)
        from sklearn.utils.multiclass import check_classification_targets

        check_classification_targets(y_arr)
        self.estimator_ = fit(est, X, y_arr)
        self.classes_ = np.asarray(self.estimator_.classes_)
        counts = np.array([np.sum(y_arr == c) for c in self.classes_], dtype=np.float64)
        self.class_prior_ = counts / counts.sum()
        if hasattr(self.estimator_, "n_features_in_"):
            self.n_features_in_ = self.estimator_.n_features_in_
        if hasattr(self.estimator_, "feature_names_in_"):
            self.feature_names_in_ = self.estimator_.feature_names_in_
        return self

    def _default_estimator(self):
        if self.estimator is None:
            from sklearn.linear_model import LogisticRegression

            return LogisticRegression(max_iter=1000)
        return clone(self.estimator)

    def predict_proba(self, X):
        """Class probabilities of the wrapped estimator (columns in ``classes_`` order).

        Returns
        -------
        numpy.ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(X)

    def predict(self, X):
        """Predicted class: arg-max of ``predict_proba(X) / class_prior_**alpha``.

        Returns
        -------
        numpy.ndarray of shape (n_samples,)
        """
        proba = self.predict_proba(X)
        return self.classes_[apply_decision_rule(proba, self.class_prior_, float(self.alpha))]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        try:
            inner = self._default_estimator().__sklearn_tags__()
            tags.input_tags.allow_nan = inner.input_tags.allow_nan
            tags.input_tags.sparse = inner.input_tags.sparse
        except AttributeError:  # pragma: no cover - third-party estimators without tags
            pass
        return tags


# --------------------------------------------------------------------------------------------
# model factory
# --------------------------------------------------------------------------------------------

#: Per-model defaults: a small fixed grid (scaler, C, class weights, HGB feature subsampling)
#: compared on ONE lesion-grouped split (seed 12345, fold 0) of the real table, never on the
#: CV's test folds as such; see the CV report.
_DEFAULTS: dict[str, dict[str, Any]] = {
    "knn": {"class_weight": None, "resample": None, "scaler": "standard"},
    "knn_seed": {"class_weight": None, "resample": None, "scaler": "standard"},
    "svm": {"class_weight": "balanced", "resample": None, "scaler": "quantile"},
    "rf": {"class_weight": "balanced_subsample", "resample": None, "scaler": None},
    "hgb": {"class_weight": None, "resample": None, "scaler": None},
    "lr": {"class_weight": "balanced", "resample": None, "scaler": "quantile"},
    "mlp": {"class_weight": None, "resample": None, "scaler": "quantile"},
}
#: Models that cannot weight classes (``class_weight`` must be None; use ``resample``/``alpha``).
_NO_CLASS_WEIGHT: tuple[str, ...] = ("knn", "knn_seed", "mlp")


def _scaler(kind: str | None):
    if kind is None:
        return None
    if kind == "standard":
        from sklearn.preprocessing import StandardScaler

        return StandardScaler()
    if kind == "quantile":
        from sklearn.preprocessing import QuantileTransformer

        return QuantileTransformer(n_quantiles=200, output_distribution="normal")
    raise ValueError(f"unknown scaler {kind!r}; use 'standard', 'quantile' or None")


def _sampler(kind: str | None, random_state: int):
    if kind is None:
        return None
    if kind == "over":
        from imblearn.over_sampling import RandomOverSampler

        return RandomOverSampler(random_state=random_state)
    if kind == "smote":
        from imblearn.over_sampling import SMOTE

        return SMOTE(k_neighbors=3, random_state=random_state)
    if kind == "under":
        from imblearn.under_sampling import RandomUnderSampler

        return RandomUnderSampler(random_state=random_state)
    raise ValueError(f"unknown resampling {kind!r}; use 'over', 'smote', 'under' or None")


def _core(
    name: str,
    *,
    random_state: int,
    class_weight: Any,
    n_jobs: int | None,
    params: dict[str, Any],
):
    """The bare classifier of a model (after selection, imputation and scaling)."""
    if name in ("knn", "knn_seed"):
        from sklearn.neighbors import KNeighborsClassifier

        kw = {"n_neighbors": 5, "weights": "uniform"} if name == "knn_seed" else {}
        if name == "knn":
            kw = {"n_neighbors": 15, "weights": "distance"}
        kw.update(params)
        kw.setdefault("n_jobs", n_jobs)
        return KNeighborsClassifier(**kw)
    if name == "svm":
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.svm import SVC

        cal_cv = params.pop("calibration_cv", 3)
        kw = {"C": 10.0, "gamma": "scale", "class_weight": class_weight, "cache_size": 500}
        kw.update(params)
        svc = SVC(kernel="rbf", random_state=random_state, **kw)
        return CalibratedClassifierCV(svc, method="sigmoid", cv=cal_cv, ensemble=False)
    if name == "rf":
        from sklearn.ensemble import RandomForestClassifier

        kw = {
            "n_estimators": 300,
            "max_features": "sqrt",
            "min_samples_leaf": 2,
            "class_weight": class_weight,
            "n_jobs": n_jobs,
        }
        kw.update(params)
        return RandomForestClassifier(random_state=random_state, **kw)
    if name == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier

        kw = {
            "max_iter": 150,
            "learning_rate": 0.1,
            "max_leaf_nodes": 31,
            "min_samples_leaf": 20,
            "l2_regularization": 1.0,
            "max_features": 0.3,
            "early_stopping": False,
            "class_weight": class_weight,
        }
        kw.update(params)
        return HistGradientBoostingClassifier(random_state=random_state, **kw)
    if name == "lr":
        from sklearn.linear_model import LogisticRegression

        kw = {"C": 0.03, "max_iter": 2000, "class_weight": class_weight}
        kw.update(params)
        return LogisticRegression(**kw)
    if name == "mlp":
        from sklearn.ensemble import VotingClassifier
        from sklearn.neural_network import MLPClassifier

        n_seeds = int(params.pop("n_seeds", MLP_SEEDS))
        kw = {
            "hidden_layer_sizes": (256,),
            "alpha": 1e-2,
            "early_stopping": True,
            "max_iter": 300,
        }
        kw.update(params)
        if n_seeds == 1:
            return MLPClassifier(random_state=random_state, **kw)
        # one network's probabilities depend a lot on its initialisation: average several
        nets = [
            (f"seed{i}", MLPClassifier(random_state=random_state + i, **kw))
            for i in range(n_seeds)
        ]
        return VotingClassifier(nets, voting="soft", n_jobs=n_jobs)
    raise ValueError(f"unknown model {name!r}; known: {', '.join(MODEL_NAMES)}")


def _member(
    name: str,
    *,
    random_state: int,
    class_weight: Any = "default",
    resample: Any = "default",
    scaler: Any = "default",
    n_jobs: int | None = None,
    params: dict[str, Any] | None = None,
):
    """Scaling + optional resampling + classifier, as one estimator (no selection/imputation)."""
    d = _DEFAULTS[name]
    cw = d["class_weight"] if class_weight == "default" else class_weight
    rs = d["resample"] if resample == "default" else resample
    sc = d["scaler"] if scaler == "default" else scaler
    if name in _NO_CLASS_WEIGHT and cw is not None:
        raise ValueError(f"{name}: no class weights; use resample= or alpha= instead")
    clf = _core(
        name, random_state=random_state, class_weight=cw, n_jobs=n_jobs, params=dict(params or {})
    )
    sampler = _sampler(rs, random_state)
    steps: list[tuple[str, Any]] = []
    scale = _scaler(sc)
    if scale is not None:
        steps.append(("scale", scale))
    if sampler is not None:
        steps.append(("resample", sampler))
    steps.append(("clf", clf))
    if len(steps) == 1:
        return clf
    if sampler is not None:
        from imblearn.pipeline import Pipeline as ImbPipeline

        return ImbPipeline(steps)
    return Pipeline(steps)


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


def make_model(
    name: str,
    *,
    random_state: int = 0,
    families: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    alpha: float = DEFAULT_ALPHA,
    class_weight: Any = "default",
    resample: str | Any | None = "default",
    scaler: str | Any | None = "default",
    metadata: bool = False,
    n_features: int | None = None,
    n_jobs: int | None = None,
    **params: Any,
) -> Pipeline:
    """Build an unfitted model pipeline that takes the feature table as input.

    Parameters
    ----------
    name : {"knn", "svm", "rf", "hgb", "lr", "mlp", "ensemble", "knn_seed"}
        ``knn``: distance-weighted 15-NN on all selected features, standard-scaled;
        ``svm``: RBF SVC with sigmoid-calibrated probabilities (3-fold, on the training data);
        ``rf``: random forest; ``hgb``: histogram gradient boosting; ``ensemble``: soft voting
        (mean probability) of ``members`` (default :data:`ENSEMBLE_MEMBERS`); ``knn_seed``: the
        published baseline, 5-NN on the simple colour features of
        :data:`SEED_FEATURE_PATTERN`; ``lr``: multinomial logistic regression; ``mlp``: a
        one-hidden-layer perceptron (256 ReLU units, L2 0.01, early stopping on a 10 %
        validation split of the training data), quantile-scaled, no class weights; the mean
        probability of ``n_seeds`` (default :data:`MLP_SEEDS`) networks with seeds
        ``random_state``, ``random_state + 1``, ...
    random_state : int
        Seed of every random component.
    families : sequence of str, optional
        Feature families to use (default: all).
    exclude : sequence of str
        Feature families to leave out (ablations).
    alpha : float
        Exponent of the decision rule ``argmax p / prior**alpha`` (see
        :class:`PriorCorrectedClassifier`).
    class_weight : "default", None, "balanced", "balanced_subsample" or dict
        Class weights of the estimator (``"default"``: the model's default, balanced for
        ``svm``/``rf``/``lr``, none for ``hgb`` (chosen on the grid) and for KNN and ``mlp``,
        which cannot have them). For ``ensemble``, applied to every member that can have them.
    resample : "default", None, "over", "smote" or "under"
        imbalanced-learn resampling of the training data (inside the pipeline, so only
        training folds are ever resampled).
    scaler : "default", None, "standard" or "quantile"
        Scaling before the estimator.
    metadata : bool
        Also use ``age``, ``sex`` and ``localization`` (report such models apart).
    n_features : int, optional
        Keep the ``n_features`` best columns by ANOVA F-score (fitted on the training data).
    n_jobs : int, optional
        Threads/processes of estimators that take them (``rf``, KNN), and processes fitting
        the members of ``ensemble`` and the networks of ``mlp`` in parallel (the fitted model
        is the same for any value).
    **params
        Passed to the estimator; for ``ensemble``: ``members`` (tuple of model names) and
        ``weights``.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Steps ``select`` (:class:`FeatureSelector`), ``impute`` (median), ``drop_constant``,
        optionally ``kbest``, then ``clf`` (:class:`PriorCorrectedClassifier` around the
        scaled, resampled estimator).

    Raises
    ------
    ValueError
        For an unknown model name, family or option.

    Examples
    --------
    >>> model = make_model("rf", families=["color", "shape"], n_estimators=10)
    >>> [step for step, _ in model.steps]
    ['select', 'impute', 'drop_constant', 'clf']
    """
    from sklearn.feature_selection import SelectKBest, VarianceThreshold, f_classif
    from sklearn.impute import SimpleImputer

    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODEL_NAMES)}")
    pattern = SEED_FEATURE_PATTERN if name == "knn_seed" else None
    if name == "knn_seed" and families is None:
        families = ("color",)
    _check_families(families)
    _check_families(exclude)

    if name == "ensemble":
        members = tuple(params.pop("members", ENSEMBLE_MEMBERS))
        weights = params.pop("weights", None)
        if params:
            raise ValueError(f"ensemble: unexpected parameters {sorted(params)}")
        bad = [m for m in members if m in ("ensemble", "knn_seed") or m not in _DEFAULTS]
        if bad or not members:
            raise ValueError(f"ensemble: bad members {bad or members!r}")
        from sklearn.ensemble import VotingClassifier

        estimators = [
            (
                m,
                _member(
                    m,
                    random_state=random_state,
                    class_weight=(None if m in _NO_CLASS_WEIGHT else class_weight),
                    resample=resample,
                    scaler=scaler,
                    n_jobs=n_jobs,
                ),
            )
            for m in members
        ]
        # members fitted in parallel processes when n_jobs is set (the same model either way)
        core = VotingClassifier(estimators, voting="soft", weights=weights, n_jobs=n_jobs)
    else:
        core = _member(
            name,
            random_state=random_state,
            class_weight=class_weight,
            resample=resample,
            scaler=scaler,
            n_jobs=n_jobs,
            params=params,
        )
    steps: list[tuple[str, Any]] = [
        (
            "select",
            FeatureSelector(
                families=None if families is None else tuple(families),
                exclude=tuple(exclude),
                pattern=pattern,
                metadata=metadata,
            ),
        ),
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
        ("drop_constant", VarianceThreshold(0.0)),
    ]
    if n_features:
        steps.append(("kbest", SelectKBest(f_classif, k=int(n_features))))
    steps.append(("clf", PriorCorrectedClassifier(core, alpha=alpha)))
    return Pipeline(steps)


def model_feature_names(model) -> list[str]:
    """The table columns a fitted model reads (from its ``select`` step).

    Parameters
    ----------
    model : fitted Pipeline from :func:`make_model`

    Returns
    -------
    list of str
    """
    sel = model.named_steps["select"] if hasattr(model, "named_steps") else None
    if sel is None:
        raise ValueError("not a hamfeat model pipeline (no 'select' step)")
    check_is_fitted(sel, "columns_")
    names = [str(c) for c in sel.columns_]
    if sel.metadata:
        names += list(METADATA_NUMERIC) + list(METADATA_CATEGORICAL)
    return names


# --------------------------------------------------------------------------------------------
# persistence
# --------------------------------------------------------------------------------------------

#: Type names (as skops reports them) that are trusted beyond skops's own defaults.
_TRUSTED_EXACT: frozenset[str] = frozenset(
    {
        "builtins.dict",
        "builtins.list",
        "builtins.tuple",
        "builtins.slice",
        "builtins.NoneType",
        "builtins.type",
        "numpy.dtype",
        "numpy.ndarray",
        "numpy.random.RandomState",
        "numpy.random.mtrand.RandomState",
        "numpy.random._mt19937.MT19937",
        "numpy.random._generator.Generator",
        "numpy.random._pcg64.PCG64",
        "collections.OrderedDict",
        "collections.defaultdict",
        "functools.partial",
    }
    | {f"numpy.{t}" for t in ("float64", "float32", "int64", "int32", "bool_", "str_", "object_")}
    | {f"numpy.dtypes.{t}DType" for t in ("Float64", "Float32", "Int64", "Int32", "Bool")}
    | {"numpy.dtypes.ObjectDType", "numpy.dtypes.StrDType"}
)
#: Modules whose classes (never functions) are trusted.
_TRUSTED_CLASS_MODULES: tuple[str, ...] = (
    "sklearn.",
    "imblearn.",
    "hamfeat.models",
    "hamfeat.encoders",
    "hamfeat.novelty",
)
#: Functions referenced by trusted estimators' defaults.
_TRUSTED_FUNCTIONS: frozenset[str] = frozenset(
    {
        "sklearn.feature_selection._univariate_selection.f_classif",
        "sklearn.metrics._scorer._passthrough_scorer",
    }
)


def _is_trusted_type(name: str) -> bool:
    if name in _TRUSTED_EXACT or name in _TRUSTED_FUNCTIONS:
        return True
    if not any(
        name.startswith(m) if m.endswith(".") else name.startswith(m + ".")
        for m in _TRUSTED_CLASS_MODULES
    ):
        return False
    module, _, attr = name.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError):
        return False
    return isinstance(obj, type)


@dataclass
class LoadedModel:
    """A model read back by :func:`load_model`.

    Attributes
    ----------
    estimator : sklearn estimator
        The fitted pipeline; it takes the feature table (a DataFrame) as input.
    feature_names : list of str
        The table columns the model reads.
    config : dict
        The feature configuration of the training table (``table.attrs["hamfeat"]["config"]``).
    classes : list of str
        Class order of ``predict_proba``'s columns.
    hamfeat_version : str
        hamfeat's version that saved the file.
    features_version : int
        The feature-definition version of the training table.
    training_table_hash : str
    extra : dict
        Anything else stored by :func:`save_model` (e.g. CV scores, alpha).
    path : str
    novelty : hamfeat.novelty.NoveltyDetector or None
        The novelty detector fitted on the training table (None in files written before it).
    """

    estimator: Any
    feature_names: list[str]
    config: dict
    classes: list[str]
    hamfeat_version: str
    features_version: int
    training_table_hash: str
    extra: dict = field(default_factory=dict)
    path: str = ""
    novelty: Any = None
    #: Training-set statistics for explanations (:func:`hamfeat.explain.training_stats`);
    #: ``None`` for a model saved without them (any model saved before they existed).
    training_stats: dict | None = None

    def predict_proba(self, table: pd.DataFrame) -> pd.DataFrame:
        """Class probabilities for each row of a feature table.

        Parameters
        ----------
        table : pandas.DataFrame
            Must hold every column of :attr:`feature_names`.

        Returns
        -------
        pandas.DataFrame
            One column per class (:attr:`classes` order), same index as ``table``.
        """
        missing = [c for c in self.feature_names if c not in table.columns]
        if missing:
            raise ModelError(
                self.path,
                f"the table lacks {len(missing)} of the model's feature columns, "
                f"e.g. {', '.join(missing[:3])}",
            )
        proba = self.estimator.predict_proba(table)
        return pd.DataFrame(proba, index=table.index, columns=list(self.classes))

    def predict(self, table: pd.DataFrame) -> np.ndarray:
        """Predicted class per row (the model's decision rule, see
        :class:`PriorCorrectedClassifier`).

        Returns
        -------
        numpy.ndarray of str
        """
        return np.asarray(self.estimator.predict(table))


def _jsonable(obj: Any) -> Any:
    """Normalise a JSON-like value (tuples -> lists, numpy scalars -> Python)."""
    return json.loads(json.dumps(obj, sort_keys=True, default=_json_default))


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    if isinstance(o, PathLike):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


#: Attributes of a fitted MLPClassifier that only training reads: the optimiser's moment
#: estimates and the early-stopping copy of the weights (``coefs_`` already holds the best).
_MLP_TRAINING_STATE = ("_optimizer", "_best_coefs", "_best_intercepts")


def drop_training_state(estimator: Any) -> Any:
    """Remove what only further training would read from a fitted model, in place.

    Today: the Adam moments and the early-stopping weight copy of every
    :class:`~sklearn.neural_network.MLPClassifier` inside ``estimator`` (pipelines, voting
    ensembles and wrappers are searched). They are about three copies of the network's weights;
    predictions do not change (``predict_proba`` reads ``coefs_`` and ``intercepts_`` only), but
    ``partial_fit`` and ``warm_start`` can no longer continue from the saved state.
    :func:`save_model` calls it.

    Parameters
    ----------
    estimator : object
        A fitted estimator.

    Returns
    -------
    object
        ``estimator`` itself.
    """
    from sklearn.neural_network import MLPClassifier

    seen: set[int] = set()

    def walk(obj: Any) -> None:
        if id(obj) in seen or obj is None:
            return
        seen.add(id(obj))
        if isinstance(obj, MLPClassifier):
            for name in _MLP_TRAINING_STATE:
                obj.__dict__.pop(name, None)
            return
        if isinstance(obj, (list, tuple)):
            for item in obj:
                walk(item)
            return
        if isinstance(obj, BaseEstimator):
            for value in vars(obj).values():
                if isinstance(value, (BaseEstimator, list, tuple)):
                    walk(value)

    walk(estimator)
    return estimator


def save_model(
    model: Any,
    path: str | PathLike[str],
    *,
    feature_names: Sequence[str],
    feature_config: Mapping[str, Any],
    classes: Sequence[str],
    training_table_hash: str,
    extra: Mapping[str, Any] | None = None,
    novelty: Any = None,
    training_stats: Mapping[str, Any] | None = None,
) -> Path:
    """Save a fitted model with :mod:`skops.io`, with what is needed to check it on load.

    Parameters
    ----------
    model : fitted estimator
    path : path-like
        Destination (conventionally ``*.skops``), written by :func:`hamfeat._io.write_output`
        (atomic for a regular file; its folder must exist).
    feature_names : sequence of str
        The table columns the model reads.
    feature_config : mapping
        The training table's feature configuration (must hold ``features_version``, else the
        current :data:`hamfeat.features.FEATURES_VERSION` is recorded).
    classes : sequence of str
        Class order of the model's probabilities.
    training_table_hash : str
        A hash of the training table (see :func:`hamfeat.tables.table_hash`).
    extra : mapping, optional
        JSON-like extras (CV scores, alpha, ...).
    novelty : hamfeat.novelty.NoveltyDetector, optional
        A fitted novelty detector, saved beside the model (``hamfeat score``'s ``novel`` flag).
    training_stats : mapping, optional
        Per-class quantiles and medians of the training features, for explanations
        (:func:`hamfeat.explain.training_stats`: lists, strings and NumPy arrays only). Left
        out of the file when ``None``, so files without it are as before.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    ModelError
        When the model cannot be written (e.g. it holds an object skops cannot save).
    """
    import skops.io as sio

    path = Path(path)
    drop_training_state(model)
    config = _jsonable(dict(feature_config))
    features_version = config.get("features_version")
    if features_version is None:
        features_version = _current_features_version()
    payload = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "hamfeat_version": __version__,
        "features_version": int(features_version),
        "feature_names": [str(c) for c in feature_names],
        "feature_config": config,
        "classes": [str(c) for c in classes],
        "training_table_hash": str(training_table_hash),
        "extra": _jsonable(dict(extra or {})),
        "estimator": model,
    }
    if training_stats is not None:
        payload["training_stats"] = dict(training_stats)
    if novelty is not None:
        payload["novelty"] = novelty
    from hamfeat._io import write_output

    try:  # the shared writer: atomic for a regular file, written through to a device or FIFO
        write_output(
            path, lambda fh: sio.dump(payload, fh, compression=zipfile.ZIP_DEFLATED), binary=True
        )
    except OutputError:
        raise
    except Exception as exc:
        raise ModelError(path, f"cannot save the model: {type(exc).__name__}: {exc}") from exc
    return path


def _current_features_version() -> int:
    from hamfeat.features import FEATURES_VERSION

    return int(FEATURES_VERSION)


def load_model(
    path: str | PathLike[str],
    *,
    expected_feature_names: Iterable[str] | None = None,
    expected_config: Mapping[str, Any] | None = None,
) -> LoadedModel:
    """Load a model saved by :func:`save_model`, refusing anything unexpected.

    The file's types are listed with :func:`skops.io.get_untrusted_types` and checked against
    an explicit allow-list (skops's defaults, classes of scikit-learn, imbalanced-learn and
    :mod:`hamfeat.models`, a few numpy and builtin types); nothing is constructed before that.

    Parameters
    ----------
    path : path-like
    expected_feature_names : iterable of str, optional
        The feature columns available (e.g. of the table to predict on); every feature the
        model reads must be among them.
    expected_config : mapping, optional
        The feature configuration the model must have been trained with (compared as JSON).

    Returns
    -------
    LoadedModel

    Raises
    ------
    ModelError
        ``"<path>: <reason>"`` for a missing or non-skops file, a file holding an untrusted
        type, a file that is not a hamfeat model, another ``FEATURES_VERSION``, feature names or
        a configuration that do not match.
    """
    import skops.io as sio

    path = Path(path)
    if not path.is_file():
        raise ModelError(path, "model file not found")
    if not zipfile.is_zipfile(path):
        raise ModelError(path, "not a skops model file (not a zip archive)")
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:
        raise ModelError(
            path, f"not a readable skops model file ({type(exc).__name__}: {exc})"
        ) from exc
    refused = sorted(t for t in untrusted if not _is_trusted_type(t))
    if refused:
        raise ModelError(
            path,
            f"refusing to load: untrusted type(s) in the file: {', '.join(refused[:5])}"
            + (f" and {len(refused) - 5} more" if len(refused) > 5 else ""),
        )
    try:
        payload = sio.load(path, trusted=list(untrusted))
    except Exception as exc:
        raise ModelError(path, f"cannot load the model ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise ModelError(path, "not a hamfeat model file (no hamfeat header)")
    if payload.get("format_version") != MODEL_FORMAT_VERSION:
        raise ModelError(
            path,
            f"model file format {payload.get('format_version')!r} is not supported "
            f"(this hamfeat reads {MODEL_FORMAT_VERSION})",
        )
    required = ("estimator", "feature_names", "feature_config", "classes", "features_version")
    lacking = [k for k in required if k not in payload]
    if lacking:
        raise ModelError(path, f"model file lacks {', '.join(lacking)}")
    current = _current_features_version()
    if int(payload["features_version"]) != current:
        raise ModelError(
            path,
            f"model was trained on features version {payload['features_version']}, this "
            f"hamfeat computes version {current}: retrain the model",
        )
    names = [str(c) for c in payload["feature_names"]]
    if expected_feature_names is not None:
        available = {str(c) for c in expected_feature_names}
        missing = [c for c in names if c not in available]
        if missing:
            raise ModelError(
                path,
                f"feature names do not match: {len(missing)} of the model's {len(names)} "
                f"features are missing, e.g. {', '.join(missing[:3])}",
            )
    config = payload["feature_config"]
    if expected_config is not None:
        want = _jsonable(dict(expected_config))
        if want != config:
            diff = sorted(
                k for k in set(want) | set(config) if want.get(k, "<absent>") != config.get(k)
            )
            raise ModelError(
                path,
                "feature configuration does not match the model's "
                f"(differs in: {', '.join(diff[:5])})",
            )
    return LoadedModel(
        estimator=payload["estimator"],
        feature_names=names,
        config=config,
        classes=[str(c) for c in payload["classes"]],
        hamfeat_version=str(payload.get("hamfeat_version", "")),
        features_version=int(payload["features_version"]),
        training_table_hash=str(payload.get("training_table_hash", "")),
        extra=dict(payload.get("extra") or {}),
        training_stats=payload.get("training_stats"),
        path=str(path),
        novelty=payload.get("novelty"),
    )
