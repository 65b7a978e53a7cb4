"""The model registry: one :class:`ModelSpec` per model name.

:func:`hamfeat.models.make_model` (one table, one label per image) and
:func:`hamfeat.models.make_multilabel_model` (one-vs-rest over several labels) build every
model from its spec, so adding a model is one :func:`register_model` call (the built-in ones
are in :mod:`hamfeat.models.builders`). Which feature families a model reads, which tasks offer
it, whether it may be an ensemble member and whether it can weight classes are fields of the
spec, not special cases in the callers.

    >>> from hamfeat.models import get_model_spec, model_names
    >>> get_model_spec("rf").class_weight
    'balanced_subsample'
    >>> model_names(task="multilabel")
    ('lr', 'rf', 'knn', 'ensemble', 'patchkm')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MULTICLASS",
    "MULTILABEL",
    "BuildContext",
    "ModelSpec",
    "get_model_spec",
    "model_names",
    "register_model",
    "task_params",
]

#: One label per image among several classes (HAM10000; :func:`~hamfeat.models.make_model`).
MULTICLASS = "multiclass"
#: Several 0/1 labels per image (ChestX-ray14; :func:`~hamfeat.models.make_multilabel_model`).
MULTILABEL = "multilabel"


@dataclass(frozen=True)
class BuildContext:
    """What a model's builder is given (everything :func:`~hamfeat.models.make_model` resolved).

    Attributes
    ----------
    random_state : int
    class_weight : object
        The class weights to use (the spec's default already substituted).
    n_jobs : int or None
    params : dict
        The spec's :attr:`ModelSpec.params` updated with the caller's parameters; a builder
        may pop its own options from it.
    resample, scaler : object
        The caller's values (``"default"`` when not given), for builders that build members.
    """

    random_state: int
    class_weight: Any
    n_jobs: int | None
    params: dict[str, Any]
    resample: Any = "default"
    scaler: Any = "default"


@dataclass(frozen=True)
class ModelSpec:
    """A model: how to build it and what it needs.

    Attributes
    ----------
    name : str
    description : str
        One line, for help texts.
    builder : callable
        ``builder(ctx: BuildContext)`` returns the bare classifier (before scaling and
        resampling); for a ``composite`` spec the whole core of the pipeline.
    params : mapping
        Default parameters, updated with the caller's and passed as ``ctx.params``.
    class_weight, scaler, resample : object
        Defaults of :func:`~hamfeat.models.make_model`'s options of the same names.
    class_weights : bool
        Whether the model can weight classes (False: ``class_weight`` must be None, and an
        ensemble gives it none).
    families : tuple of str, optional
        Feature families read when the caller names none (``None``: every dermoscopy family).
    pattern : str, optional
        Regular expression every feature column must also match.
    fixed_families : bool
        The model reads :attr:`families` whatever the caller asks for (a learned-feature
        model on pixels); callers check the table has those columns.
    tasks : mapping of str to int
        The tasks that offer the model (:data:`MULTICLASS`, :data:`MULTILABEL`) and its place
        in each task's list (:func:`model_names` sorts by it).
    default_for : tuple of str
        Tasks whose default list of models to evaluate includes it.
    ensemble_member : bool
        Whether it may be a member of the ``ensemble`` model.
    composite : bool
        The builder builds scaling, resampling and members itself (``ensemble``).
    uses_threads : bool
        ``n_jobs`` are threads of the estimator itself (one-vs-rest models pass ``n_jobs`` to
        these only).
    task_params : mapping
        Parameters per task that replace the defaults there (e.g. for X-rays).
    multilabel_builder : callable, optional
        ``multilabel_builder(spec, random_state=..., families=..., n_jobs=..., params=...)``
        builds the whole multi-label model; ``None``: one-vs-rest around
        :func:`~hamfeat.models.make_model`.
    """

    name: str
    description: str
    builder: Callable[[BuildContext], Any] | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    class_weight: Any = None
    scaler: str | None = None
    resample: str | None = None
    class_weights: bool = True
    families: tuple[str, ...] | None = None
    pattern: str | None = None
    fixed_families: bool = False
    tasks: Mapping[str, int] = field(default_factory=dict)
    default_for: tuple[str, ...] = ()
    ensemble_member: bool = True
    composite: bool = False
    uses_threads: bool = False
    task_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    multilabel_builder: Callable[..., Any] | None = None

    def reads(self, families: tuple[str, ...] | None) -> tuple[str, ...] | None:
        """The feature families the model reads when the caller asks for ``families``.

        Parameters
        ----------
        families : tuple of str, optional

        Returns
        -------
        tuple of str or None
            ``None``: every dermoscopy family.
        """
        if self.fixed_families or families is None:
            return self.families
        return tuple(families)


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec, *, replace: bool = False) -> ModelSpec:
    """Add a model to the registry.

    Parameters
    ----------
    spec : ModelSpec
    replace : bool
        Allow replacing a registered model of the same name.

    Returns
    -------
    ModelSpec
        ``spec``.

    Raises
    ------
    ValueError
        The name is taken (and not ``replace``), or the spec cannot be built for any task.
    """
    if spec.name in _REGISTRY and not replace:
        raise ValueError(f"model {spec.name!r} is already registered")
    if spec.builder is None and spec.multilabel_builder is None:
        raise ValueError(f"model {spec.name!r}: a builder or a multilabel_builder is needed")
    if MULTICLASS in spec.tasks and spec.builder is None:
        raise ValueError(f"model {spec.name!r}: task {MULTICLASS} needs a builder")
    _REGISTRY[spec.name] = spec
    return spec


def get_model_spec(name: str, task: str | None = None) -> ModelSpec:
    """The spec of a registered model.

    Parameters
    ----------
    name : str
    task : str, optional
        Also require that this task offers the model.

    Returns
    -------
    ModelSpec

    Raises
    ------
    ValueError
        ``unknown model 'x'; known: ...`` (the task's models, or every model).
    """
    spec = _REGISTRY.get(name)
    if spec is None or (task is not None and task not in spec.tasks):
        known = model_names(task=task)
        raise ValueError(f"unknown model {name!r}; known: {', '.join(known)}")
    return spec


def model_names(task: str | None = None, *, default: bool = False) -> tuple[str, ...]:
    """Names of the registered models.

    Parameters
    ----------
    task : str, optional
        Only the models this task offers, in the task's order; ``None``: every model, in
        registration order.
    default : bool
        Only those in the task's default list of models to evaluate (``hamfeat cv``).

    Returns
    -------
    tuple of str
    """
    specs = list(_REGISTRY.values())
    if task is None:
        return tuple(s.name for s in specs if not default or s.default_for)
    chosen = [s for s in specs if task in s.tasks and (not default or task in s.default_for)]
    order = {s.name: i for i, s in enumerate(specs)}
    return tuple(s.name for s in sorted(chosen, key=lambda s: (s.tasks[task], order[s.name])))


def task_params(task: str) -> dict[str, dict[str, Any]]:
    """The per-task parameters of every model that has some, in registration order.

    Parameters
    ----------
    task : str

    Returns
    -------
    dict
        Model name -> parameters (a fresh copy).
    """
    return {
        s.name: dict(s.task_params[task]) for s in _REGISTRY.values() if task in s.task_params
    }
