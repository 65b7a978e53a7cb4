"""``hamfeat score``: score a folder of JPEG/PNG images with a trained model."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from hamfeat.cli._common import (
    EXIT_FATAL,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    JOBS_HELP,
    SCORE_FLOAT_FORMAT,
    SCORE_SUFFIXES,
    SEGMENTER_HELP,
    _add_backend_args,
    _add_command,
    _add_model_args,
    _backend,
    _jobs,
    _output_format,
)

if TYPE_CHECKING:
    import pandas as pd

    from hamfeat.score import ScoreResult


def add_parser(subparsers) -> None:
    """Add ``score`` to the ``hamfeat`` sub-parsers."""
    from hamfeat.datasets import dataset_names

    names = dataset_names()  # the registry's: imports no data set module
    p = _add_command(
        subparsers, "score", help="score a folder of JPEG/PNG images with a trained model"
    )
    p.add_argument(
        "folder", metavar="DIR",
        help="folder of JPEG/PNG images (or one image file) to score",
    )
    _add_model_args(p)
    p.add_argument(
        "-o",
        "--output",
        metavar="scores.csv",
        help="the scores: .csv, or .parquet (full precision); default: standard output (CSV)",
    )
    p.add_argument("--jobs", type=_jobs, default=0, metavar="N", help=JOBS_HELP)
    p.add_argument(
        "--format", choices=("csv", "isic2018"), default="csv",
        help="csv (default): one row per image with every column; isic2018: the ISIC 2018 "
        "Task 3 submission image,MEL,NV,BCC,AKIEC,BKL,DF,VASC (a .csv -o)",
    )
    p.add_argument(
        "--lesion-map", metavar="CSV",
        help="image_id,lesion_id (HAM10000_metadata.csv will do): also one row per lesion, "
        "its images' probabilities averaged (default: none)",
    )
    p.add_argument("--segmenter", metavar="FILE.skops", help=SEGMENTER_HELP)
    p.add_argument(
        "--dataset",
        choices=names,
        help=f"check the model is for this data set: {' or '.join(names)} (default: whatever "
        "the model is for)",
    )
    p.add_argument(
        "--html",
        metavar="PAGE.html",
        help="also write one self-contained page: thumbnails with mask outlines, "
        "probabilities, explanations, ABCD summaries (HAM10000 models)",
    )
    p.add_argument(
        "--html-explain",
        choices=("features", "families"),
        default="features",
        help="explanations on the page per feature (default) or per feature family only "
        "(cheaper: the ensemble costs ~5 s per image per feature, see README)",
    )
    _add_backend_args(p)
    p.set_defaults(func=_cmd_score)


def _cmd_score(args: argparse.Namespace) -> int:
    from hamfeat.score import default_model_path, score_folder

    backend = _backend(args)
    if backend is None:
        return EXIT_USAGE
    out_format = _check_outputs(args)
    if out_format is None:
        return EXIT_USAGE
    model = args.model or default_model_path()
    print(f"hamfeat score: model {model}", file=sys.stderr)
    result = score_folder(
        args.folder,
        model_path=model,
        masks_dir=args.masks,
        recursive=args.recursive,
        jobs=args.jobs,
        lesion_map=args.lesion_map,
        dataset=args.dataset,
        segmenter=args.segmenter,
        **backend,
    )
    for p in result.problems:
        if p.severity == "error" or args.verbose:
            print(f"hamfeat score: {p}", file=sys.stderr)
    if result.masks is not None:
        print(f"hamfeat score: {result.masks.line()}", file=sys.stderr)
    for note in result.notes:
        print(f"hamfeat score: warning: {note}", file=sys.stderr)
    table = result.isic2018() if args.format == "isic2018" else result.csv_table()
    _write_scores(table, args.output, out_format)
    n = len(result.images())
    print(_summary(result, table, args, n), file=sys.stderr)
    if args.html and result.n_failed < n:
        from hamfeat.score_html import write_score_html

        page = write_score_html(result, args.html, per_feature=args.html_explain == "features")
        print(f"hamfeat score: page -> {page}", file=sys.stderr)
    if result.n_failed == n:
        return EXIT_FATAL
    return EXIT_PARTIAL if result.n_failed else EXIT_OK


def _check_outputs(args: argparse.Namespace) -> str | None:
    """The scores' format (``csv`` without ``-o``); ``None`` after a one-line usage error.

    A bad suffix, a folder, a missing or read-only folder (of ``-o`` and of ``--html``'s
    page) fail here, before scoring.
    """
    out_format = "csv"
    if args.output:
        from hamfeat._io import check_output

        out_format = _output_format("score", args.output, SCORE_SUFFIXES)
        if out_format is None:
            return None
        if out_format != "csv" and args.format == "isic2018":
            print(
                f"hamfeat score: error: --format isic2018 is a CSV file; give -o a .csv name "
                f"(not {args.output})",
                file=sys.stderr,
            )
            return None
        check_output(args.output)
    if args.html:  # the page's path too: a folder, a missing or read-only folder, before work
        from hamfeat._io import check_output

        check_output(args.html)
    return out_format


def _write_scores(table: pd.DataFrame, output: str | None, out_format: str) -> None:
    """The table to ``output`` in ``out_format``, else to standard output (CSV)."""
    if output:
        from hamfeat.extract import write_csv_atomic, write_table_atomic

        if out_format == "parquet":
            write_table_atomic(table, output)
        else:
            write_csv_atomic(table, output, float_format=SCORE_FLOAT_FORMAT)
    else:
        table.to_csv(sys.stdout, index=False, float_format=SCORE_FLOAT_FORMAT)


def _summary(result: ScoreResult, table: pd.DataFrame, args: argparse.Namespace, n: int) -> str:
    """The last stderr line: images scored of ``n``, left out, flagged, warnings."""
    n_warn = sum(p.severity != "error" for p in result.problems)
    left_out = n - result.n_failed - len(table) if args.format == "isic2018" else 0
    warn_note = ("" if args.verbose else ", -v lists them") if n_warn else ""
    return (
        f"hamfeat score: {n - result.n_failed} of {n} images scored"
        + (f" -> {args.output}" if args.output else "")
        + (f"; {left_out} repeated image_id(s) left out of the isic2018 file" if left_out else "")
        + (
            f"; {result.n_flagged} flagged as unlike the training images (flags column)"
            if result.n_flagged
            else ""
        )
        + (f"; {n_warn} warning(s){warn_note}" if n_warn else "")
    )
