"""Building models from the registry: :func:`make_model` and :func:`make_multilabel_model`.

Every model is a :class:`sklearn.pipeline.Pipeline` that takes the feature table itself (a
:class:`pandas.DataFrame` with one row per image) and selects its own columns by feature family,
so the same pipeline can be fitted on a table with extra columns and cross-validation never
leaks: selection, imputation, scaling, resampling and the classifier are all refitted on each
training fold. The last step of a single-label model is always a
:class:`~hamfeat.models.PriorCorrectedClassifier`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sklearn.pipeline import Pipeline

from hamfeat.models.builders import MULTILABEL_FAMILIES, member
from hamfeat.models.decision import DEFAULT_ALPHA, PriorCorrectedClassifier
from hamfeat.models.registry import (
    MULTICLASS,
    MULTILABEL,
    BuildContext,
    get_model_spec,
    model_names,
    task_params,
)
from hamfeat.models.selection import FeatureSelector, _check_families, feature_columns

__all__ = ["make_model", "make_multilabel_model", "missing_families", "model_families"]


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
    name : str
        A model of ``model_names(task="multiclass")`` (its :class:`~hamfeat.models.ModelSpec`
        says how it is built). Built in: ``knn``: distance-weighted 15-NN on all selected
        features, standard-scaled; ``svm``: RBF SVC with sigmoid-calibrated probabilities
        (3-fold, on the training data); ``rf``: random forest; ``hgb``: histogram gradient
        boosting; ``ensemble``: soft voting (mean probability) of ``members`` (default
        :data:`~hamfeat.models.ENSEMBLE_MEMBERS`); ``knn_seed``: the published baseline, 5-NN
        on the simple colour features of :data:`~hamfeat.models.SEED_FEATURE_PATTERN`; ``lr``:
        multinomial logistic regression; ``mlp``: a one-hidden-layer perceptron (256 ReLU
        units, L2 0.01, early stopping on a 10 % validation split of the training data),
        quantile-scaled, no class weights; the mean probability of ``n_seeds`` (default
        :data:`~hamfeat.models.MLP_SEEDS`) networks with seeds ``random_state``,
        ``random_state + 1``, ...
    random_state : int
        Seed of every random component.
    families : sequence of str, optional
        Feature families to use (default: all).
    exclude : sequence of str
        Feature families to leave out (ablations).
    alpha : float
        Exponent of the decision rule ``argmax p / prior**alpha`` (see
        :class:`~hamfeat.models.PriorCorrectedClassifier`).
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
        Steps ``select`` (:class:`~hamfeat.models.FeatureSelector`), ``impute`` (median),
        ``drop_constant``, optionally ``kbest``, then ``clf``
        (:class:`~hamfeat.models.PriorCorrectedClassifier` around the scaled, resampled
        estimator).

    Raises
    ------
    ValueError
        For an unknown model name, family or option.

    Notes
    -----
    Longer than 80 lines for this documentation only: the body is the pipeline's five steps.

    Examples
    --------
    >>> model = make_model("rf", families=["color", "shape"], n_estimators=10)
    >>> [step for step, _ in model.steps]
    ['select', 'impute', 'drop_constant', 'clf']
    """
    from sklearn.feature_selection import SelectKBest, VarianceThreshold, f_classif
    from sklearn.impute import SimpleImputer

    spec = get_model_spec(name, MULTICLASS)
    families = spec.reads(None if families is None else tuple(families))
    _check_families(families)
    _check_families(exclude)
    if spec.composite:  # it resolves the options per member itself
        ctx = BuildContext(
            random_state, class_weight, n_jobs, {**spec.params, **params}, resample, scaler
        )
        core = spec.builder(ctx)
    else:
        core = member(
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
                families=families,
                exclude=tuple(exclude),
                pattern=spec.pattern,
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


def make_multilabel_model(
    name: str = "ensemble",
    *,
    random_state: int = 0,
    families: Sequence[str] | None = None,
    n_jobs: int | None = None,
    params: dict[str, dict[str, Any]] | None = None,
):
    """An unfitted one-vs-rest model: one :func:`make_model` pipeline per label.

    Parameters
    ----------
    name : str
        Any model of :func:`make_model` (with its :data:`~hamfeat.models.MULTILABEL`
        :attr:`~hamfeat.models.ModelSpec.task_params`), or one with a
        :attr:`~hamfeat.models.ModelSpec.multilabel_builder`: ``ensemble`` is soft voting of
        the :data:`~hamfeat.models.CXR_ENSEMBLE` pipelines, ``patchkm`` the learned patch
        model (one shared encoder, then one logistic regression per label; it reads
        ``graypix`` and ignores ``families``).
    random_state : int
    families : sequence of str, optional
        Feature families (default: :data:`~hamfeat.models.MULTILABEL_FAMILIES`).
    n_jobs : int, optional
        Threads of the estimators that take them (:attr:`~hamfeat.models.ModelSpec.uses_threads`).
    params : dict, optional
        Per-model parameters instead of ``task_params("multilabel")``.

    Returns
    -------
    sklearn.multiclass.OneVsRestClassifier or sklearn.pipeline.Pipeline
        Takes the feature table (a DataFrame) and a 0/1 label matrix.

    Raises
    ------
    ValueError
        For an unknown model name.
    """
    from sklearn.multiclass import OneVsRestClassifier

    fams = tuple(MULTILABEL_FAMILIES if families is None else families)
    table = task_params(MULTILABEL) if params is None else params
    try:
        spec = get_model_spec(name)
    except ValueError:
        spec = None
    if spec is None or (spec.multilabel_builder is None and MULTICLASS not in spec.tasks):
        known = (*model_names(MULTICLASS), *_multilabel_only())
        raise ValueError(f"unknown model {name!r}; known: {', '.join(known)}")

    def one(m: str):
        return make_model(
            m,
            random_state=random_state,
            families=fams,
            alpha=0.0,
            n_jobs=n_jobs if get_model_spec(m).uses_threads else None,
            **table.get(m, {}),
        )

    if spec.multilabel_builder is not None:
        return spec.multilabel_builder(spec, one, random_state)
    return OneVsRestClassifier(one(name))


def _multilabel_only() -> tuple[str, ...]:
    return tuple(m for m in model_names(MULTILABEL) if MULTICLASS not in get_model_spec(m).tasks)


def model_families(name: str, families: Sequence[str]) -> tuple[str, ...]:
    """The feature families model ``name`` reads when asked for ``families``.

    Parameters
    ----------
    name : str
        A registered model.
    families : sequence of str

    Returns
    -------
    tuple of str
        ``families``, unless the model reads fixed families (``patchkm``: ``graypix``).
    """
    return tuple(get_model_spec(name).reads(tuple(families)) or ())


def missing_families(name: str, columns: Iterable[str]) -> tuple[str, ...]:
    """The fixed families of model ``name`` that a table with ``columns`` lacks.

    Parameters
    ----------
    name : str
        A registered model.
    columns : iterable of str

    Returns
    -------
    tuple of str
        Empty for a model without fixed families, or when the table has them all.
    """
    spec = get_model_spec(name)
    if not spec.fixed_families:
        return ()
    columns = list(columns)
    return tuple(f for f in spec.families or () if not feature_columns(columns, (f,)))
