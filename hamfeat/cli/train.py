"""``hamfeat train``: train a model on a feature table."""

from __future__ import annotations

import argparse
import os
import sys

from hamfeat.cli._common import (
    EXIT_OK,
    FEATURES_TABLE_HELP,
    _add_command,
    _add_dataset_arg,
    _check_names,
    _families,
    _family_help,
    _jobs,
    _labels,
    _lazy,
)


def add_parser(subparsers) -> None:
    """Add ``train`` to the ``hamfeat`` sub-parsers."""
    from hamfeat import _cli_datasets as ds

    p = _add_command(subparsers, "train", help="train a model on a feature table")
    p.add_argument(
        "--features", metavar="TABLE.parquet", required=True,
        help=FEATURES_TABLE_HELP,
    )
    p.add_argument(
        "-o", "--output", metavar="MODEL.skops", required=True,
        help="the model file to write (skops, never pickle)",
    )
    p.add_argument(
        "--model", metavar="NAME",
        help=_lazy(lambda: ds.model_help("the model")),
    )
    p.add_argument(
        "--families", type=_families, metavar="A,B",
        help=_family_help(lambda: "feature families to use (default: every family of the "
                          "table; dermoscopy only)", gray=False),
    )
    p.add_argument(
        "--jobs", type=_jobs, default=0, metavar="N",
        help="processes fitting the ensemble's members in parallel (default: 0 = all cores; "
        "the model is the same for any value)",
    )
    _add_dataset_arg(p)
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    from hamfeat._cli_datasets import model_names
    from hamfeat.datasets import MULTILABEL, get_dataset

    spec = get_dataset(args.dataset)
    _check_names("--model", args.model, model_names(spec))
    args.model = args.model or spec.default_model
    progress = lambda msg: print(f"hamfeat train: {msg}", file=sys.stderr, flush=True)  # noqa: E731
    if spec.task == MULTILABEL:
        from hamfeat.training import train_multilabel

        path = train_multilabel(args.features, args.output, model=args.model, progress=progress)
        print(f"hamfeat train: model {args.model} written to {path}", file=sys.stderr)
        return EXIT_OK
    from hamfeat.training import train

    path = train(
        args.features,
        args.output,
        model=args.model,
        families=args.families.split(",") if args.families else None,
        n_jobs=args.jobs or os.cpu_count() or 1,
        progress=progress,
        **_labels(spec),
    )
    print(f"hamfeat train: model {args.model} written to {path}", file=sys.stderr)
    return EXIT_OK
