"""``hamfeat data``: check a data set folder and list its problems."""

from __future__ import annotations

import argparse
import sys

from hamfeat.cli._common import (
    EXIT_OK,
    EXIT_PARTIAL,
    _add_command,
    _add_data_arg,
    _add_dataset_arg,
    _lazy,
)


def add_parser(subparsers) -> None:
    """Add ``data`` to the ``hamfeat`` sub-parsers."""
    from hamfeat import _cli_datasets as ds

    p = _add_command(subparsers, "data", help="check a data set folder and list its problems")
    _add_data_arg(p)
    p.add_argument(
        "--strict",
        action="store_true",
        help=_lazy(ds.strict_help),
    )
    _add_dataset_arg(p)
    p.set_defaults(func=_cmd_data)


def _cmd_data(args: argparse.Namespace) -> int:
    from hamfeat.datasets import get_dataset

    spec = get_dataset(args.dataset)
    ds = spec.load(args.data, strict=args.strict)
    for problem in ds.problems:
        print(problem, file=sys.stderr)
    for line in spec.summary(ds) if spec.summary else [f"{ds.root}: {len(ds)} images"]:
        print(line)
    print(f"  {len(ds.errors)} error(s), {len(ds.problems) - len(ds.errors)} warning(s)")
    return EXIT_PARTIAL if ds.errors else EXIT_OK
