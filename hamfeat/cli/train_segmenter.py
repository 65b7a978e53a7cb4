"""``hamfeat train-segmenter``: learn the automatic segmentation from a data set's masks."""

from __future__ import annotations

import argparse
import os
import sys

from hamfeat.cli._common import EXIT_OK, EXIT_USAGE, _add_command, _add_data_arg, _jobs


def add_parser(subparsers) -> None:
    """Add ``train-segmenter`` to the ``hamfeat`` sub-parsers."""
    p = _add_command(
        subparsers,
        "train-segmenter",
        help="learn the automatic segmentation from a data set's masks (lesion-grouped folds "
        "for out-of-fold masks, plus one model on all images)",
    )
    _add_data_arg(p)
    p.add_argument(
        "-o", "--output", metavar="SEGMENTER.skops", required=True,
        help="the segmenter bundle to write (skops)",
    )
    p.add_argument(
        "--folds", type=int, default=5, metavar="K",
        help="lesion-grouped folds for the out-of-fold masks, at least 2 (default: 5)",
    )
    p.add_argument(
        "--jobs", type=_jobs, default=0, metavar="N",
        help="threads (default: 0 = all cores)",
    )
    p.add_argument("--limit", type=int, metavar="N", help=argparse.SUPPRESS)  # tests
    p.add_argument("--max-iter", type=int, help=argparse.SUPPRESS)  # tests
    p.set_defaults(func=_cmd_train_segmenter)


def _cmd_train_segmenter(args: argparse.Namespace) -> int:
    from hamfeat._io import check_output
    from hamfeat.segmenter import train_segmenter

    if args.folds < 2:
        print(f"hamfeat train-segmenter: error: --folds must be at least 2, got {args.folds}",
              file=sys.stderr)
        return EXIT_USAGE
    check_output(args.output)  # before minutes of fitting
    jobs = args.jobs if args.jobs > 0 else (os.cpu_count() or 1)
    path, problems = train_segmenter(
        args.data,
        args.output,
        n_folds=args.folds,
        n_threads=jobs,
        limit=args.limit,
        segmenter_params=None if args.max_iter is None else {"max_iter": args.max_iter},
        progress=lambda msg: print(f"hamfeat train-segmenter: {msg}", file=sys.stderr),
    )
    for p in problems:
        if p.severity == "error" or args.verbose:
            print(f"hamfeat train-segmenter: {p}", file=sys.stderr)
    print(f"hamfeat train-segmenter: -> {path}; {len(problems)} problem(s)"
          + ("" if args.verbose or not problems else "; -v lists them"), file=sys.stderr)
    return EXIT_OK
