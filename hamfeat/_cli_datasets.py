"""The command line's data set parts, all read from the registry (:mod:`hamfeat.datasets`).

``--dataset`` choices and help, the help texts that name each data set's defaults, the check
that refuses an option another data set owns, and the feature configuration and model names a
spec implies. Nothing here names a data set: a registered spec is enough. Imported by
:mod:`hamfeat.cli` only; the help builders return plain strings, computed when ``--help``
formats them (``hamfeat.cli._LazyHelp``), so parsing a command line imports no data set module.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from hamfeat.datasets import DatasetSpec, get_dataset, registered_datasets

if TYPE_CHECKING:
    from hamfeat.pipeline import FeatureConfig

__all__ = [
    "data_help",
    "dataset_help",
    "feature_config",
    "model_names",
    "refuse_inapplicable",
]

#: How ``--families`` help words a preset's default families.
_FAMILY_WORDS = {"dermoscopy": "every dermoscopy family", "gray": "every grayscale one"}


def _others(specs: dict[str, DatasetSpec]) -> list[tuple[str, DatasetSpec]]:
    """Every spec but the first (the default), for the ``; cxr14: ...`` parts of help texts."""
    return list(specs.items())[1:]


def _folder(path: str) -> str:
    return path if path.startswith((".", "/", "~")) else f"./{path}"


def dataset_help() -> str:
    """``--dataset`` help: ``ham10000 (dermoscopy, default) or cxr14 (...)``."""
    parts = [
        f"{name} ({spec.description}{', default' if i == 0 else ''})"
        for i, (name, spec) in enumerate(registered_datasets().items())
    ]
    return ", ".join(parts[:-1]) + f" or {parts[-1]}" if len(parts) > 1 else parts[0]


def folder_search(spec: DatasetSpec | None = None) -> str:
    """``$HAMFEAT_DATA, then ./data/HAM10000, then ...``: a data set's (default: the default
    data set's) folder search."""
    spec = spec or next(iter(registered_datasets().values()))
    return ", then ".join([f"${spec.env}", *map(_folder, spec.candidates)])


def data_help() -> str:
    """``--data`` help: each data set's folder search."""
    specs = registered_datasets()
    first = next(iter(specs.values()))
    rest = "".join(f"; --dataset {n}: {folder_search(s)}" for n, s in _others(specs))
    return f"data set folder (default: {folder_search(first)}{rest})"


def strict_help() -> str:
    """``data --strict`` help (a data set's ``strict_help`` says when it refuses more)."""
    notes = "; ".join(f"{n}: {s.strict_help}" for n, s in registered_datasets().items()
                      if s.strict_help)
    return (
        "exit 3 (nothing done) when the folder has any error"
        + (f" ({notes})" if notes else "")
        + " instead of 1; every problem is still listed, not only the first "
        "(default: off: problem rows are left out and the rest is checked)"
    )


def families_default_help(what: str) -> str:
    """``features --families``: ``<what> (default: every dermoscopy family; cxr14: ...)``."""

    def word(spec: DatasetSpec) -> str:
        f = spec.features.families
        return _FAMILY_WORDS[f] if isinstance(f, str) else ",".join(f)

    specs = registered_datasets()
    rest = "".join(f"; {n}: {word(s)}" for n, s in _others(specs))
    return f"{what} (default: {word(next(iter(specs.values())))}{rest})"


def gray_family_note() -> str:
    """``; --dataset cxr14 (grayscale): ...`` for the data sets whose preset is grayscale."""
    from hamfeat.features import GRAY_FAMILY_NAMES

    return "".join(
        f"; --dataset {n} (grayscale): {', '.join(GRAY_FAMILY_NAMES)}"
        for n, s in registered_datasets().items()
        if s.features.families == "gray"
    )


def per_dataset(what: str, value, first_note: str = "") -> str:
    """``<what><first><first_note>; cxr14: <its>``: ``value(spec)`` for each data set."""
    specs = registered_datasets()
    rest = "".join(f"; {n}: {value(s)}" for n, s in _others(specs))
    return f"{what}{value(next(iter(specs.values())))}{first_note}{rest}"


def model_names(spec: DatasetSpec) -> tuple[str, ...]:
    """The model names ``train --model`` and ``cv --models`` accept for a data set."""
    if spec.models is not None:
        return tuple(spec.models)
    from hamfeat.models import model_names as registry_names

    return tuple(registry_names(spec.task))  # the model registry's list for the task


def model_help(what: str) -> str:
    """``train --model`` help: each data set's model names and default."""
    specs = registered_datasets()

    def names(spec: DatasetSpec) -> str:
        return f"{', '.join(model_names(spec))} (default: {spec.default_model})"

    first = next(iter(specs.values()))
    return f"{what}: {names(first)}" + "".join(
        f"; --dataset {n}: {names(s)}" for n, s in _others(specs)
    )


def cv_models_help() -> str:
    """``cv --models`` help: each data set's model names and default."""
    from hamfeat.evaluation.cv import MAIN_MODELS

    specs = registered_datasets()

    def default(spec: DatasetSpec) -> str:
        if spec.cv_models is None:
            return ",".join(MAIN_MODELS)
        return "all" if tuple(spec.cv_models) == model_names(spec) else ",".join(spec.cv_models)

    first = next(iter(specs.values()))
    return (
        f"models to evaluate, comma-separated: {', '.join(model_names(first))} (default: "
        f"{default(first)})"
        + "".join(f"; --dataset {n}: {', '.join(model_names(s))} (default: {default(s)})"
                  for n, s in _others(specs))
    )


def refuse_inapplicable(args: argparse.Namespace) -> bool:
    """Print a one-line usage error and return True if an option of another data set is given.

    Each spec declares the data-set-specific options it takes per command
    (:attr:`~hamfeat.datasets.DatasetSpec.options`); a flag that some registered data set
    declares for this command and ``--dataset``'s does not is a usage error (exit 2, one line:
    ``--masks only applies to dermoscopy (HAM10000), not --dataset cxr14``) rather than being
    silently ignored. Without ``--dataset`` (``score``'s default) nothing is checked.
    """
    name = getattr(args, "dataset", None)
    if name is None:
        return False
    spec = get_dataset(name)
    given: list[str] = []
    owners: list[str] = []
    for other in registered_datasets().values():
        for dest, flag in other.options.get(args.command, ()):
            if spec.takes(args.command, flag) or flag in given:
                continue
            if getattr(args, dest, None) in (None, False):
                continue
            given.append(flag)
            if other.title not in owners:
                owners.append(other.title)
    if not given:
        return False
    print(
        f"hamfeat {args.command}: error: {', '.join(given)} only appl"
        f"{'ies' if len(given) == 1 else 'y'} to {' or '.join(owners)}, not --dataset {name}",
        file=sys.stderr,
    )
    return True


def feature_config(spec: DatasetSpec, args: argparse.Namespace) -> FeatureConfig:
    """The ``features`` command's configuration: the spec's preset, then the options.

    Parameters
    ----------
    spec : DatasetSpec
    args : argparse.Namespace
        ``families``, ``long_side``, ``color_constancy``, ``hair_removal``, ``segmenter``
        (options a data set does not take are refused before, so they are at their defaults).

    Returns
    -------
    FeatureConfig
    """
    from hamfeat.pipeline import FeatureConfig

    preset = spec.features
    families = tuple(args.families.split(",")) if args.families else None
    if families is None and preset.families != "dermoscopy":  # dermoscopy: the pipeline's own
        if preset.families == "gray":
            from hamfeat.features import GRAY_FAMILY_NAMES

            families = GRAY_FAMILY_NAMES
        else:
            families = tuple(preset.families)
    if args.segmenter is not None:
        from hamfeat.segmenter import get_segmenter

        get_segmenter(args.segmenter)  # a bad file is one line now, not one per image
    return FeatureConfig(
        families=families,
        color_constancy=bool(args.color_constancy),
        hair_removal=bool(args.hair_removal),
        long_side=int(args.long_side or preset.long_side),
        region=preset.region,
        segmenter=args.segmenter,
    )
