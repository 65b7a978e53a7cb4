"""The built-in models: their builders and their registry entries.

A builder takes a :class:`~hamfeat.models.registry.BuildContext` and returns the bare
classifier; :func:`member` puts scaling and resampling around it. The entries at the end of
this module are the whole list of built-in models: adding one is one more
:func:`~hamfeat.models.registry.register_model` call.

Per-model defaults were chosen on a small fixed grid (scaler, C, class weights, HGB feature
subsampling) compared on ONE lesion-grouped split (seed 12345, fold 0) of the real table,
never on the CV's test folds as such; see the CV report.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sklearn.pipeline import Pipeline

from hamfeat.features import GRAY_FAMILY_NAMES
from hamfeat.features.gray import GrayPixFamily
from hamfeat.models.registry import (
    MULTICLASS,
    MULTILABEL,
    BuildContext,
    ModelSpec,
    get_model_spec,
    register_model,
)
from hamfeat.models.selection import SEED_FEATURE_PATTERN, FeatureSelector

__all__ = [
    "CXR_ENSEMBLE",
    "ENSEMBLE_MEMBERS",
    "MLP_SEEDS",
    "MULTILABEL_FAMILIES",
    "PATCHKM_C",
    "PATCHKM_ENCODER",
    "PIXEL_FAMILY",
    "member",
]

#: Members of the default ensemble (soft voting: mean of their probabilities). Chosen on the
#: automatic-mask table on development seeds 1 and 2 (benchmarks/reports/shipped_dev.md):
#: hgb + mlp had the best cross-fitted balanced accuracy at accuracy >= 0.80 (0.802 / 0.681);
#: adding svm and lr lowered it (0.803 / 0.674) and cost 51 s of fitting and 36 MB of model.
ENSEMBLE_MEMBERS: tuple[str, ...] = ("hgb", "mlp")
#: Networks (random initialisations) averaged by the ``mlp`` model.
MLP_SEEDS = 5
#: Members of the ``ensemble`` for X-rays (mean of their probabilities).
CXR_ENSEMBLE: tuple[str, ...] = ("rf", "lr")
#: The pixel family (:class:`~hamfeat.features.gray.GrayPixFamily`), read by learned models only.
PIXEL_FAMILY: str = GrayPixFamily.name
#: The families the hand-made X-ray models read by default: every grayscale family but the
#: pixels (the same as :data:`hamfeat.datasets.cxr14.CXR_MODEL_FAMILIES`).
MULTILABEL_FAMILIES: tuple[str, ...] = tuple(f for f in GRAY_FAMILY_NAMES if f != PIXEL_FAMILY)
#: The learned patch model ``patchkm``: :class:`~hamfeat.encoders.PatchKMeansEncoder` on the
#: ``graypix`` family, standard-scaled, then one L2 logistic regression per label (balanced
#: class weights). The encoder (the k-means dictionary) is fitted once per training set and
#: shared by every label. Its settings (100 centroids, 6x6 patches, 4x4 pooling, C=1e-4) were
#: chosen on the X-ray development seeds with scratch scripts before this model was written.
PATCHKM_ENCODER: dict[str, Any] = {"n_clusters": 100, "patch_size": 6, "pool": 4}
PATCHKM_C = 1e-4


# -------------------------------------------------------------------------- scaling, resampling


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


def member(
    name: str,
    *,
    random_state: int,
    class_weight: Any = "default",
    resample: Any = "default",
    scaler: Any = "default",
    n_jobs: int | None = None,
    params: dict[str, Any] | None = None,
):
    """Scaling + optional resampling + classifier of one model, as one estimator.

    Parameters
    ----------
    name : str
        A registered model with a builder (not ``composite``).
    random_state : int
    class_weight, resample, scaler : object
        ``"default"``: the spec's value.
    n_jobs : int, optional
    params : dict, optional
        Updates the spec's :attr:`~hamfeat.models.registry.ModelSpec.params`.

    Returns
    -------
    estimator
        The classifier alone, or a (imbalanced-learn when resampling) pipeline around it.

    Raises
    ------
    ValueError
        Class weights for a model that cannot have them, an unknown scaler or resampling.
    """
    spec = get_model_spec(name)
    cw = spec.class_weight if class_weight == "default" else class_weight
    rs = spec.resample if resample == "default" else resample
    sc = spec.scaler if scaler == "default" else scaler
    if not spec.class_weights and cw is not None:
        raise ValueError(f"{name}: no class weights; use resample= or alpha= instead")
    ctx = BuildContext(random_state, cw, n_jobs, {**spec.params, **(params or {})})
    clf = spec.builder(ctx)
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


# -------------------------------------------------------------------------------- builders


def _knn(ctx: BuildContext):
    from sklearn.neighbors import KNeighborsClassifier

    kw = dict(ctx.params)
    kw.setdefault("n_jobs", ctx.n_jobs)
    return KNeighborsClassifier(**kw)


def _svm(ctx: BuildContext):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    kw = {"class_weight": ctx.class_weight, **ctx.params}
    cal_cv = kw.pop("calibration_cv")
    svc = SVC(kernel="rbf", random_state=ctx.random_state, **kw)
    return CalibratedClassifierCV(svc, method="sigmoid", cv=cal_cv, ensemble=False)


def _rf(ctx: BuildContext):
    from sklearn.ensemble import RandomForestClassifier

    kw = {"class_weight": ctx.class_weight, "n_jobs": ctx.n_jobs, **ctx.params}
    return RandomForestClassifier(random_state=ctx.random_state, **kw)


def _hgb(ctx: BuildContext):
    from sklearn.ensemble import HistGradientBoostingClassifier

    kw = {"class_weight": ctx.class_weight, **ctx.params}
    return HistGradientBoostingClassifier(random_state=ctx.random_state, **kw)


def _lr(ctx: BuildContext):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(**{"class_weight": ctx.class_weight, **ctx.params})


def _mlp(ctx: BuildContext):
    from sklearn.ensemble import VotingClassifier
    from sklearn.neural_network import MLPClassifier

    kw = dict(ctx.params)
    n_seeds = int(kw.pop("n_seeds"))
    if n_seeds == 1:
        return MLPClassifier(random_state=ctx.random_state, **kw)
    # one network's probabilities depend a lot on its initialisation: average several
    nets = [
        (f"seed{i}", MLPClassifier(random_state=ctx.random_state + i, **kw))
        for i in range(n_seeds)
    ]
    return VotingClassifier(nets, voting="soft", n_jobs=ctx.n_jobs)


def _ensemble(ctx: BuildContext):
    """Soft voting of ``members``; ``ctx.class_weight`` is the caller's (or ``"default"``)."""
    from sklearn.ensemble import VotingClassifier

    params = dict(ctx.params)
    members = tuple(params.pop("members"))
    weights = params.pop("weights")
    if params:
        raise ValueError(f"ensemble: unexpected parameters {sorted(params)}")
    bad = [m for m in members if not _may_be_member(m)]
    if bad or not members:
        raise ValueError(f"ensemble: bad members {bad or members!r}")
    estimators = [
        (
            m,
            member(
                m,
                random_state=ctx.random_state,
                class_weight=ctx.class_weight if get_model_spec(m).class_weights else None,
                resample=ctx.resample,
                scaler=ctx.scaler,
                n_jobs=ctx.n_jobs,
            ),
        )
        for m in members
    ]
    # members fitted in parallel processes when n_jobs is set (the same model either way)
    return VotingClassifier(estimators, voting="soft", weights=weights, n_jobs=ctx.n_jobs)


def _may_be_member(name: str) -> bool:
    try:
        spec = get_model_spec(name, MULTICLASS)
    except ValueError:
        return False
    return spec.ensemble_member and not spec.composite


def _multilabel_ensemble(spec: ModelSpec, one: Callable[[str], Any], random_state: int):
    """One-vs-rest of the soft vote of whole :data:`CXR_ENSEMBLE` member pipelines (so each
    keeps its X-ray parameters)."""
    from sklearn.ensemble import VotingClassifier
    from sklearn.multiclass import OneVsRestClassifier

    return OneVsRestClassifier(
        VotingClassifier([(m, one(m)) for m in CXR_ENSEMBLE], voting="soft")
    )


def _patchkm(spec: ModelSpec, one: Callable[[str], Any], random_state: int):
    """Select ``graypix``, impute, encode, scale, one logistic regression per label."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import StandardScaler

    from hamfeat.encoders import PatchKMeansEncoder

    lr = LogisticRegression(C=PATCHKM_C, class_weight="balanced", max_iter=3000)
    return Pipeline(
        [
            ("select", FeatureSelector(families=spec.families)),
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("encode", PatchKMeansEncoder(random_state=int(random_state), **PATCHKM_ENCODER)),
            ("scale", StandardScaler()),
            ("clf", OneVsRestClassifier(lr)),
        ]
    )


# ---------------------------------------------------------------------- the built-in models
# Registration order is the order of task_params() (the X-ray report's "model_params": rf,
# svm, lr); each task's own order is its rank in ``tasks``.

_BOTH_DEFAULT = (MULTICLASS, MULTILABEL)

register_model(ModelSpec(
    "knn", "distance-weighted 15-NN on all selected features, standard-scaled",
    _knn, {"n_neighbors": 15, "weights": "distance"}, scaler="standard", class_weights=False,
    tasks={MULTICLASS: 0, MULTILABEL: 2}, default_for=_BOTH_DEFAULT, uses_threads=True,
))
register_model(ModelSpec(
    "rf", "random forest (300 trees, balanced class weights per bootstrap sample)",
    _rf, {"n_estimators": 300, "max_features": "sqrt", "min_samples_leaf": 2},
    class_weight="balanced_subsample", tasks={MULTICLASS: 2, MULTILABEL: 1},
    default_for=_BOTH_DEFAULT, uses_threads=True,
    # X-rays: 150 trees with leaves of at least 5 images, half the fitting time for 13 labels
    # x 5 folds; a smoother forest for ~800 training images
    task_params={MULTILABEL: {"n_estimators": 150, "min_samples_leaf": 5}},
))
register_model(ModelSpec(
    "svm", "RBF SVC with sigmoid-calibrated probabilities (3-fold, on the training data)",
    _svm, {"C": 10.0, "gamma": "scale", "cache_size": 500, "calibration_cv": 3},
    class_weight="balanced", scaler="quantile", tasks={MULTICLASS: 1},
    default_for=(MULTICLASS,),
    task_params={MULTILABEL: {"C": 1.0}},  # X-rays: a softer margin for 800 images
))
register_model(ModelSpec(
    "hgb", "histogram gradient boosting (150 iterations, 30% of the features per split)",
    _hgb,
    {"max_iter": 150, "learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 20,
     "l2_regularization": 1.0, "max_features": 0.3, "early_stopping": False},
    tasks={MULTICLASS: 3}, default_for=(MULTICLASS,),
))
register_model(ModelSpec(
    "lr", "multinomial logistic regression (C=0.03, balanced class weights)",
    _lr, {"C": 0.03, "max_iter": 2000}, class_weight="balanced", scaler="quantile",
    tasks={MULTICLASS: 4, MULTILABEL: 0}, default_for=_BOTH_DEFAULT,
    # X-rays: stronger regularisation for ~400 features (chosen on the development seeds)
    task_params={MULTILABEL: {"C": 0.003}},
))
register_model(ModelSpec(
    "mlp", f"mean of {MLP_SEEDS} one-hidden-layer perceptrons (256 ReLU units, early stopping)",
    _mlp,
    {"hidden_layer_sizes": (256,), "alpha": 1e-2, "early_stopping": True, "max_iter": 300,
     "n_seeds": MLP_SEEDS},
    scaler="quantile", class_weights=False, tasks={MULTICLASS: 5}, default_for=(MULTICLASS,),
))
register_model(ModelSpec(
    "ensemble", "soft voting (mean probability) of its members",
    _ensemble, {"members": ENSEMBLE_MEMBERS, "weights": None},
    tasks={MULTICLASS: 6, MULTILABEL: 3}, default_for=_BOTH_DEFAULT, ensemble_member=False,
    composite=True, multilabel_builder=_multilabel_ensemble,
))
register_model(ModelSpec(
    "knn_seed", "the published baseline: 5-NN on simple colour features",
    _knn, {"n_neighbors": 5, "weights": "uniform"}, scaler="standard", class_weights=False,
    families=("color",), pattern=SEED_FEATURE_PATTERN, tasks={MULTICLASS: 7},
    ensemble_member=False,
))
register_model(ModelSpec(
    "patchkm", "learned patch features (k-means on image patches) + one LR per label",
    families=(PIXEL_FAMILY,), fixed_families=True, tasks={MULTILABEL: 4},
    default_for=(MULTILABEL,), ensemble_member=False, multilabel_builder=_patchkm,
))
