"""What the commands share: exit codes, defaults, argparse types, lazy help texts, options.

Imports only the standard library and :mod:`hamfeat.errors` at module level; the registries
(feature families, backends, data sets) are imported inside the functions that need them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from hamfeat.errors import UsageError

if TYPE_CHECKING:
    from hamfeat.datasets import DatasetSpec

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_FATAL, EXIT_BUG = 0, 1, 2, 3, 70

#: ``hamfeat cv`` writes here without ``--report-dir``: under the current folder, never into
#: the repository's committed ``benchmarks/reports`` (``make cv`` passes that explicitly).
#: Each data set's spec declares its own (``report_dir``); these names are kept for callers.
DEFAULT_REPORT_DIR, DEFAULT_REPORT_DIR_CXR14 = "reports", "reports/cxr14"
#: ``hamfeat evaluate`` writes here without ``--report-dir`` (the same rule as ``cv``).
DEFAULT_REPORT_DIR_EVALUATE = "reports/evaluate"
#: Output suffixes (any case) and the format each selects: ``features -o`` and ``score -o``.
TABLE_SUFFIXES = {".parquet": "parquet", ".csv": "csv"}
SCORE_SUFFIXES = {".csv": "csv", ".parquet": "parquet"}
#: Probabilities in score tables: 6 significant digits.
SCORE_FLOAT_FORMAT = "%.6g"


def _int_at_least(minimum: int, meaning: str):
    """An argparse type: a whole number >= ``minimum`` (``meaning`` says what it is)."""

    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if n < minimum:
            raise argparse.ArgumentTypeError(f"must be {meaning}, got {n}")
        return n

    return parse


#: ``--jobs``: 0 (all cores) or a positive number of processes.
_jobs = _int_at_least(0, "0 (all cores) or more")
#: ``--long-side``: the canonical long side, at least 32 pixels.
_long_side = _int_at_least(32, "at least 32 (pixels)")

#: Help texts shared by several commands.
JOBS_HELP = "parallel processes (default: 0 = all cores)"
MODEL_PATH_HELP = "the model file (default: $HAMFEAT_MODEL, else out/model.skops)"
MASKS_DIR_HELP = (
    "folder of <image_id>_segmentation.png masks; an image without one is segmented "
    "automatically, and stderr says how many had one (default: every mask automatic)"
)
RECURSIVE_HELP = "include sub-folders (default: the folder's own files only)"
#: ``-v/--verbose``, before or after the command.
VERBOSE_HELP = (
    "more detail on stderr: every warning (per file) and info lines; also accepted after "
    "the command"
)
#: ``score --segmenter`` and ``evaluate --segmenter``.
SEGMENTER_HELP = "the model's learned segmenter (default: the one beside the model)"
#: ``train --features`` and ``cv --features``.
FEATURES_TABLE_HELP = "the feature table (hamfeat features -o, parquet)"


class _LazyHelp(str):
    """A help string computed when ``--help`` formats it (argparse applies ``%`` to it then).

    The model and family registries import scikit-learn and the Numba kernels; a command
    line that does not ask for help should not pay for that.
    """

    def __new__(cls, make):
        self = super().__new__(cls, "(see --help)")
        self._make = make
        return self

    def __mod__(self, params):
        return self._make().replace("%", "%%") % params


def _family_help(what: Callable[[], str], *, gray: bool = True) -> _LazyHelp:
    """``--families`` help: ``what()``, then the registry's names (``gray``: the grayscale
    ones too, for the data sets whose preset is grayscale)."""

    def make() -> str:
        from hamfeat import _cli_datasets as ds
        from hamfeat.features import DEFAULT_FAMILIES

        return f"{what()}, comma-separated: {', '.join(DEFAULT_FAMILIES)}" + (
            ds.gray_family_note() if gray else ""
        )

    return _LazyHelp(make)


def _lazy(make) -> _LazyHelp:
    """A help string built from the data set registry when ``--help`` formats it."""
    return _LazyHelp(make)


def _families(text: str) -> str:
    """``--families``: comma-separated names from the feature-family registry."""
    from hamfeat.features import FAMILIES

    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in FAMILIES]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown feature famil{'y' if len(bad) == 1 else 'ies'} "
            f"{', '.join(map(repr, bad)) or repr(text)}; choose from {', '.join(FAMILIES)}"
        )
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"a family is named twice in {text!r}")
    return ",".join(names)


def _seeds(text: str) -> str:
    """``--seeds``: comma-separated whole numbers >= 0."""
    parts = [p.strip() for p in text.split(",")]
    if not parts or not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(
            f"expected whole numbers >= 0 separated by commas (e.g. 1,2), got {text!r}"
        )
    return ",".join(parts)


def _check_names(option: str, given: str | None, valid: Sequence[str]) -> None:
    """Raise :class:`UsageError` unless every comma-separated name is one of ``valid``."""
    if given is None:
        return
    bad = [m for m in given.split(",") if m.strip() not in valid]
    if bad or not given.strip():
        raise UsageError(
            f"{option}: unknown {', '.join(map(repr, bad)) or repr(given)}; "
            f"choose from {', '.join(valid)}"
        )


def _output_format(command: str, path: str, suffixes: dict[str, str]) -> str | None:
    """The format an output's suffix selects; ``None`` after a one-line usage error.

    A path without a suffix that is standard output (``-``), a device or a FIFO (or a link
    whose target has a known suffix) takes that target's suffix, else the first format.
    """
    from hamfeat._io import check_output

    suffix = os.path.splitext(path)[1].lower()
    if suffix in suffixes:
        return suffixes[suffix]
    if not suffix:
        target = check_output(path)  # a folder, a missing folder ...: that error (exit 3) first
        final = os.path.splitext(target.target)[1].lower()
        if final in suffixes:
            return suffixes[final]
        if not target.is_regular:
            return next(iter(suffixes.values()))
    print(
        f"hamfeat {command}: error: {path}: unknown output suffix {suffix!r} (valid: "
        f"{', '.join(suffixes)})",
        file=sys.stderr,
    )
    return None


def _backend(args: argparse.Namespace) -> dict | None:
    """``backend``/``scheduler`` arguments; ``None`` after a one-line usage error on stderr."""
    from hamfeat.backends import DEFAULT_BACKEND, get_backend, scheduler_backend

    if args.scheduler and args.backend and not get_backend(args.backend).takes_scheduler:
        print(
            f"hamfeat {args.command}: error: --scheduler needs --backend "
            f"{scheduler_backend().name}",
            file=sys.stderr,
        )
        return None
    if not args.scheduler and args.backend in (None, DEFAULT_BACKEND):
        return {}
    backend = scheduler_backend() if args.scheduler else get_backend(args.backend)
    if not backend.available():
        flag = "--scheduler" if args.scheduler else f"--backend {backend.name}"
        print(
            f"hamfeat {args.command}: error: {flag} needs {backend.needs}, which is not "
            f"installed: {backend.install_hint}",
            file=sys.stderr,
        )
        return None
    return {"backend": backend.name, "scheduler": args.scheduler}


def _add_backend_args(p: argparse.ArgumentParser) -> None:
    """``--backend`` and ``--scheduler`` (``features``, ``score``, ``evaluate``)."""
    from hamfeat.backends import backend_names, get_backend

    p.add_argument(
        "--backend",
        choices=backend_names(),
        help="; ".join(f"{n}: {get_backend(n).description}" for n in backend_names()),
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="compute on the dask.distributed scheduler at ADDRESS (tcp://host:8786); "
        "workers must see the images at the same paths",
    )


def _labels(spec: DatasetSpec) -> dict:
    """The label arguments of :func:`hamfeat.training.train` and ``run_cv`` for a multi-class
    data set (none for the default one: its tables are what they always were)."""
    from hamfeat.datasets import DEFAULT_DATASET

    return {} if spec.name == DEFAULT_DATASET else {"dataset": spec}


def _add_command(subparsers, name: str, **kw) -> argparse.ArgumentParser:
    """A sub-parser of ``hamfeat``; ``-v`` is accepted after the command too (``hamfeat
    features -v ...``): each sub-parser has it, with no default of its own, so it only ever
    turns verbosity on."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP
    )
    return subparsers.add_parser(name, parents=[common], **kw)


def _add_dataset_arg(p: argparse.ArgumentParser) -> None:
    """``--dataset``: the registry's names (imports no data set module), the default one."""
    from hamfeat import _cli_datasets as ds
    from hamfeat.datasets import DEFAULT_DATASET, dataset_names

    p.add_argument(
        "--dataset", choices=dataset_names(), default=DEFAULT_DATASET,
        help=_lazy(ds.dataset_help),
    )


def _add_data_arg(p: argparse.ArgumentParser) -> None:
    """``--data``: the data set folder, each data set's folder search in its help."""
    from hamfeat import _cli_datasets as ds

    p.add_argument("--data", metavar="DIR", help=_lazy(ds.data_help))


def _add_model_args(p: argparse.ArgumentParser) -> None:
    """``--model``, ``--masks`` and ``--recursive`` of ``score`` and ``evaluate``."""
    p.add_argument("--model", metavar="PATH", help=MODEL_PATH_HELP)
    p.add_argument("--masks", metavar="DIR", help=MASKS_DIR_HELP)
    p.add_argument("--recursive", action="store_true", help=RECURSIVE_HELP)
