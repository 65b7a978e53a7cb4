"""``hamfeat cv``: lesion-grouped cross-validation reports."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from hamfeat.cli._common import (
    EXIT_OK,
    EXIT_USAGE,
    FEATURES_TABLE_HELP,
    _add_command,
    _add_dataset_arg,
    _check_names,
    _labels,
    _lazy,
    _seeds,
)

if TYPE_CHECKING:
    from hamfeat.datasets import DatasetSpec


def add_parser(subparsers) -> None:
    """Add ``cv`` to the ``hamfeat`` sub-parsers."""
    from hamfeat import _cli_datasets as ds

    p = _add_command(subparsers, "cv", help="lesion-grouped cross-validation reports")
    p.add_argument(
        "--features", metavar="TABLE.parquet", required=True,
        help=FEATURES_TABLE_HELP,
    )
    p.add_argument(
        "--report-dir",
        metavar="DIR",
        help=_lazy(lambda: ds.per_dataset(
            "folder of the reports (default: ",
            lambda s: f"./{s.report_dir}", first_note=" under the current folder")
            + "); `make cv` passes benchmarks/reports"),
    )
    p.add_argument(
        "--models", metavar="A,B",
        help=_lazy(ds.cv_models_help),
    )
    p.add_argument(
        "--seeds", type=_seeds, metavar="S,T",
        help=_lazy(lambda: "CV seeds, comma-separated: one lesion-grouped 5-fold repetition "
                   "each (default: 0" + "".join(f"; {n}: one value" for n, s in
                                             ds.registered_datasets().items()
                                             if s.task == "multilabel") + ")"),
    )
    p.add_argument(
        "--auto-features", metavar="TABLE.parquet",
        help="the same images with automatic masks, for the masks ablation (default: none; "
        "dermoscopy only)",
    )
    p.add_argument(
        "--cc-features",
        metavar="TABLE.parquet",
        help="the same images with the other colour-constancy setting, for its ablation "
        "(default: none; dermoscopy only)",
    )
    p.add_argument(
        "--no-ablations", action="store_true",
        help="skip the ablation study (default: run it)",
    )
    p.add_argument(
        "--html",
        action="store_true",
        help="also write report.html in the report folder: one self-contained page (tables, "
        "confusion matrix, ROC and precision-recall curves, trade-off, segmentation and error "
        "galleries, ablation chart)",
    )
    p.add_argument(
        "--data",
        metavar="DIR",
        help=_lazy(lambda: "HAM10000 folder (images/, masks/) whose images the --html "
                   f"galleries show (default: {ds.folder_search()})"),
    )
    _add_dataset_arg(p)
    p.set_defaults(func=_cmd_cv)


def _gallery_data(spec: DatasetSpec, data: str | None, say) -> str | None:
    """The folder of ``cv --html``'s galleries: ``--data``, else the data set's usual search
    (:func:`hamfeat.datasets.discovery.find_data_dir`); None, with a warning, when there is
    none (the page is written without image galleries). An explicit ``--data`` that is not a
    folder is an error."""
    from hamfeat.datasets.discovery import find_data_dir
    from hamfeat.errors import DatasetError

    if data is not None:
        return str(find_data_dir(spec, data))
    try:
        return str(find_data_dir(spec))
    except DatasetError as exc:
        say(f"warning: no image galleries on the page: {exc}")
        return None


def _cmd_cv(args: argparse.Namespace) -> int:
    command = "hamfeat " + " ".join(sys.argv[1:]) if args.argv is None else args.argv
    say = lambda msg: print(f"hamfeat cv: {msg}", file=sys.stderr, flush=True)  # noqa: E731
    from hamfeat._cli_datasets import model_names
    from hamfeat.datasets import MULTILABEL, get_dataset

    spec = get_dataset(args.dataset)
    names = model_names(spec)
    if spec.task == MULTILABEL:
        from hamfeat.evaluation.multilabel import run_cv_multilabel

        seeds = args.seeds.split(",") if args.seeds else ["0"]
        if len(seeds) > 1:  # the report's development section already repeats over seeds
            print(
                f"hamfeat cv: error: --dataset {spec.name} takes one --seeds value (got "
                f"{args.seeds}); its report compares the configurations on seeds 1-3 itself",
                file=sys.stderr,
            )
            return EXIT_USAGE
        _check_names("--models", args.models, names)
        args.report_dir = args.report_dir or spec.report_dir
        run_cv_multilabel(
            args.features,
            args.report_dir,
            models=tuple(args.models.split(",")) if args.models else (spec.cv_models or names),
            seed=int(seeds[0]),
            ablations=not args.no_ablations,
            command=command,
            progress=say,
        )
        print(f"hamfeat cv: reports written to {args.report_dir}", file=sys.stderr)
        return EXIT_OK
    from hamfeat.evaluation.cv import run_cv

    _check_names("--models", args.models, names)
    args.report_dir = args.report_dir or spec.report_dir
    kwargs = _labels(spec)
    if args.models:
        kwargs["models"] = tuple(args.models.split(","))
    elif spec.cv_models is not None:
        kwargs["models"] = tuple(spec.cv_models)
    if args.seeds:
        kwargs["seeds"] = tuple(int(s) for s in args.seeds.split(","))
    if args.html:
        kwargs["html"] = True
        kwargs["data_dir"] = _gallery_data(spec, args.data, say)
    run_cv(
        args.features,
        args.report_dir,
        command=command,
        ablations=not args.no_ablations,
        auto_features_path=args.auto_features,
        cc_features_path=args.cc_features,
        progress=say,
        **kwargs,
    )
    print(f"hamfeat cv: reports written to {args.report_dir}", file=sys.stderr)
    return EXIT_OK
