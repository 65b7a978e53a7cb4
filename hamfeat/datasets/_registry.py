"""The data set spec type and the registry of specs.

Standard library only: the command line reads the registry (names, help texts, option checks)
before it imports any computation. The built-in data sets are registered when their module is
first imported; :func:`get_dataset` and :func:`dataset_names` import them on demand.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hamfeat.errors import DatasetError

__all__ = [
    "DEFAULT_DATASET",
    "MULTICLASS",
    "MULTILABEL",
    "DatasetSpec",
    "FeaturePreset",
    "dataset_names",
    "get_dataset",
    "register_dataset",
    "registered_datasets",
]

#: The two tasks a data set can declare.
MULTICLASS, MULTILABEL = "multiclass", "multilabel"
#: The ``--dataset`` default; its feature tables carry no ``dataset`` tag (as before the
#: registry), and a model without one is taken to be for it.
DEFAULT_DATASET = "ham10000"
#: Built-in data sets: name -> the module that registers it (imported on demand, in order).
_BUILTIN: dict[str, str] = {
    "ham10000": "hamfeat.datasets.ham10000",
    "cxr14": "hamfeat.datasets.cxr14",
}


@dataclass(frozen=True)
class FeaturePreset:
    """How ``hamfeat features`` computes a data set's table unless options say otherwise.

    Attributes
    ----------
    long_side : int
        Canonical long side in pixels (``--long-side`` default).
    region : {"lesion", "whole"}
        ``"lesion"``: inside the mask (given or automatic); ``"whole"``: the whole image.
    families : {"dermoscopy", "gray"} or tuple of str
        The families computed without ``--families``: ``"dermoscopy"`` (every dermoscopy family,
        :data:`hamfeat.features.DEFAULT_FAMILIES`), ``"gray"`` (every grayscale family,
        :data:`hamfeat.features.GRAY_FAMILY_NAMES`) or explicit names.
    uses_masks : bool
        Whether the data set has lesion masks (the masks summary of ``hamfeat features``).
    mask_dirs : tuple of str
        The data set's own mask folders, named when it has none.
    """

    long_side: int
    region: str = "lesion"
    families: str | tuple[str, ...] = "dermoscopy"
    uses_masks: bool = False
    mask_dirs: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatasetSpec:
    """One data set, declared: everything the command line, extraction, evaluation and scoring
    need to know about it.

    Attributes
    ----------
    name : str
        The ``--dataset`` value.
    description : str
        One line for ``--dataset`` help (``"dermoscopy"``).
    title : str
        How messages name it (``"dermoscopy (HAM10000)"``).
    label : str
        Its short name in "not found" messages (``"HAM10000"``).
    task : {"multiclass", "multilabel"}
        The CLI dispatches ``train``, ``cv`` and ``score`` on this, never on the name.
    load : callable
        ``load(data=None, *, strict=False)`` -> :class:`~hamfeat.datasets.discovery.Dataset`.
    env : str
        Environment variable naming the folder.
    candidates : tuple of str
        Folders tried after ``env``, in order (relative to the current folder).
    hint : str
        Where to put the data, for "not found" errors.
    label_column, group_column : str
        The table's label column (multi-label: labels joined by ``|``) and the column CV groups
        by (no group on both sides of a split).
    classes : tuple of str
        Multi-class: the classes in probability-column order; multi-label: the labels.
    features : FeaturePreset
        The feature preset.
    default_model : str
        ``hamfeat train`` default model name.
    models : tuple of str, optional
        The model names ``train --model`` and ``cv --models`` accept; ``None``: every model of
        :data:`hamfeat.models.MODEL_NAMES` (multi-class).
    cv_models : tuple of str, optional
        ``cv`` default models; ``None``: the evaluation's own default.
    report_dir : str
        ``hamfeat cv`` default report folder (under the current folder).
    options : mapping
        Command -> the ``(argparse dest, flag)`` pairs of data-set-specific options this data
        set takes. A flag that another registered data set declares for the command and this
        one does not is a usage error with ``--dataset`` this one.
    tag_tables : bool
        Record ``dataset`` in the feature table's metadata (False only for the default data
        set, whose tables never carried it).
    summary : callable, optional
        ``summary(dataset)`` -> the lines ``hamfeat data`` prints.
    strict_help : str
        What ``data --strict`` refuses, for its help (``"any problem, warnings too"``).
    """

    name: str
    description: str
    title: str
    label: str
    task: str
    load: Callable[..., Any]
    env: str
    candidates: tuple[str, ...]
    hint: str
    label_column: str
    group_column: str
    classes: tuple[str, ...]
    features: FeaturePreset
    default_model: str
    report_dir: str
    models: tuple[str, ...] | None = None
    cv_models: tuple[str, ...] | None = None
    options: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    tag_tables: bool = True
    summary: Callable[[Any], list[str]] | None = None
    strict_help: str = ""

    def __post_init__(self) -> None:
        if self.task not in (MULTICLASS, MULTILABEL):
            raise ValueError(f"{self.name}: task must be {MULTICLASS!r} or {MULTILABEL!r}")

    def takes(self, command: str, flag: str) -> bool:
        """Whether this data set takes the data-set-specific ``flag`` of ``command``."""
        return any(f == flag for _, f in self.options.get(command, ()))


_REGISTRY: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add a data set to the registry.

    Parameters
    ----------
    spec : DatasetSpec

    Returns
    -------
    DatasetSpec
        ``spec`` (so a module can write ``SPEC = register_dataset(DatasetSpec(...))``).

    Raises
    ------
    ValueError
        When another spec of that name is registered (registering the same object again, as
        a re-imported module does, is allowed).
    """
    old = _REGISTRY.get(spec.name)
    if old is not None and old is not spec:
        raise ValueError(f"data set {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def _import_builtins() -> None:
    for module in _BUILTIN.values():
        importlib.import_module(module)


def dataset_names() -> tuple[str, ...]:
    """The registered data set names: the built-ins first (the default first), then the others
    in registration order. Imports nothing."""
    return tuple(_BUILTIN) + tuple(n for n in _REGISTRY if n not in _BUILTIN)


def registered_datasets() -> dict[str, DatasetSpec]:
    """Every registered spec by name, in :func:`dataset_names` order (imports the built-ins)."""
    _import_builtins()
    return {n: _REGISTRY[n] for n in dataset_names()}


def get_dataset(name: str) -> DatasetSpec:
    """The spec of a registered data set.

    Parameters
    ----------
    name : str

    Returns
    -------
    DatasetSpec

    Raises
    ------
    DatasetError
        For an unknown name (the message lists the known ones).
    """
    if name in _BUILTIN and name not in _REGISTRY:
        importlib.import_module(_BUILTIN[name])
    try:
        return _REGISTRY[name]
    except KeyError:
        raise DatasetError(
            f"unknown data set {name!r}; choose from {', '.join(dataset_names())}"
        ) from None
