"""``hamfeat evaluate``: score labelled images with a saved model, measure them against a
ground truth (external validation)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from hamfeat.cli._common import (
    DEFAULT_REPORT_DIR_EVALUATE,
    EXIT_FATAL,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    JOBS_HELP,
    SCORE_FLOAT_FORMAT,
    SEGMENTER_HELP,
    _add_backend_args,
    _add_command,
    _add_model_args,
    _backend,
    _jobs,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from hamfeat.evaluate_external import Evaluation

_DESCRIPTION = (
    "Score images exactly as `hamfeat score` does, compare them with a ground-truth CSV and "
    "write a report (Markdown, JSON, PNG, per-image scores). Exit status: 0 ok; 1 some images "
    "could not be scored (each named); 2 usage; 3 nothing could be evaluated (bad truth file, "
    "model, no image, no image with a truth row, an output that cannot be written)."
)


def add_parser(subparsers) -> None:
    """Add ``evaluate`` to the ``hamfeat`` sub-parsers."""
    p = _add_command(
        subparsers,
        "evaluate",
        help="score labelled images with a saved model and measure it against a ground truth "
        "(external validation)",
        description=_DESCRIPTION,
    )
    p.add_argument(
        "images",
        metavar="IMAGES",
        nargs="*",
        help="folders of images and/or image files (or use --files-from)",
    )
    p.add_argument(
        "--truth",
        metavar="CSV",
        required=True,
        help="ground truth: ISIC 2018 image,MEL,NV,BCC,AKIEC,BKL,DF,VASC (one-hot, any column "
        "order) or a table with image_id,dx columns (e.g. HAM10000_metadata.csv); detected "
        "from the header",
    )
    p.add_argument(
        "--files-from",
        metavar="LIST",
        help="a text file of image paths, one per line (relative to the list's folder)",
    )
    _add_model_args(p)
    p.add_argument("--jobs", type=_jobs, default=0, metavar="N", help=JOBS_HELP)
    p.add_argument(
        "--lesion-map",
        metavar="CSV",
        help="image_id,lesion_id (HAM10000_metadata.csv will do): also evaluate per lesion, "
        "probabilities averaged over a lesion's images",
    )
    p.add_argument("--segmenter", metavar="FILE.skops", help=SEGMENTER_HELP)
    p.add_argument(
        "--report-dir",
        metavar="DIR",
        help=f"folder of the report (default: ./{DEFAULT_REPORT_DIR_EVALUATE} under the current "
        "folder); created if needed",
    )
    p.add_argument(
        "--no-plots", action="store_true", help="no PNG figures (they need hamfeat[plots])"
    )
    p.add_argument(
        "--html",
        action="store_true",
        help="also write report.html in the report folder: one self-contained page (summary, "
        "confusion matrices, per-class recall/precision, ROC and precision-recall curves, "
        "decision-rule trade-off, error gallery of the scored images with their masks)",
    )
    _add_backend_args(p)
    p.set_defaults(func=_cmd_evaluate)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from hamfeat.evaluate_external import (
        check_report_dir,
        evaluate_images,
        read_file_list,
        write_report,
    )
    from hamfeat.score import default_model_path

    say = lambda msg: print(f"hamfeat evaluate: {msg}", file=sys.stderr, flush=True)  # noqa: E731
    if not args.images and not args.files_from:
        print(
            "hamfeat evaluate: error: give the images: one or more folders or files, or "
            "--files-from LIST",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.jobs < 0:
        print(f"hamfeat evaluate: error: --jobs must be 0 (all cores) or more, got {args.jobs}",
              file=sys.stderr)
        return EXIT_USAGE
    backend = _backend(args)
    if backend is None:
        return EXIT_USAGE
    page_names: tuple[str, ...] = ()
    if args.html:
        from hamfeat.cv_html import PAGE_NAME

        page_names = (PAGE_NAME,)
    report_dir = check_report_dir(  # before work: the folder, its files and the page
        args.report_dir or DEFAULT_REPORT_DIR_EVALUATE, page_names
    )
    images = list(args.images)
    if args.files_from:
        images += read_file_list(args.files_from)
    model = args.model or default_model_path()
    say(f"model {model}")
    ev = evaluate_images(
        images[0] if len(images) == 1 else images,
        args.truth,
        model_path=model,
        masks_dir=args.masks,
        recursive=args.recursive,
        jobs=args.jobs,
        lesion_map=args.lesion_map,
        segmenter=args.segmenter,
        say=say,
        **backend,
    )
    ev.command = "hamfeat " + " ".join(sys.argv[1:]) if args.argv is None else args.argv
    for p in ev.problems:
        if p.severity == "error" or args.verbose:
            say(str(p))
    for note in ev.notes:
        say(f"warning: {note}")
    write_report(ev, report_dir, plots=not args.no_plots, float_format=SCORE_FLOAT_FORMAT)
    if args.html:
        from hamfeat.evaluate_html import write_evaluate_html

        say("writing the page")
        say(f"page -> {write_evaluate_html(ev, report_dir)}")
    n_ok = ev.n_files - len(ev.failed)
    _say_summary(ev, n_ok, args.verbose, say)
    say(f"report -> {report_dir}")
    if ev.image is None or n_ok == 0:
        return EXIT_FATAL
    return EXIT_PARTIAL if ev.failed else EXIT_OK


def _say_summary(ev: Evaluation, n_ok: int, verbose: bool, say: Callable[[str], None]) -> None:
    """The counts line (images scored, evaluated, unmatched ...), then one line per level."""
    counts = [
        f"{n_ok} of {ev.n_files} images scored",
        f"{ev.n_evaluated} evaluated",
        f"{len(ev.images_without_truth)} image(s) without a truth row",
        f"{len(ev.truth_without_image)} truth row(s) without an image",
    ]
    if ev.excluded:
        counts.append(f"{len(ev.excluded)} truth row(s) left out by weight")
    if ev.duplicates:
        counts.append(f"{len(ev.duplicates)} repeated image_id(s) not evaluated")
    n_warn = sum(p.severity != "error" for p in ev.problems)
    if n_warn:
        counts.append(f"{n_warn} warning(s)" + ("" if verbose else ", -v lists them"))
    say("; ".join(counts) + " (ids in the report)")
    if ev.image is not None:
        for lv in (ev.image, ev.lesion):
            if lv is None:
                continue
            d, a = lv.decision, lv.argmax
            say(
                f"per {lv.level} ({lv.n}): decision rule accuracy {d.accuracy:.3f}, balanced "
                f"accuracy {d.balanced_accuracy:.3f}, macro AUC {d.macro_auc:.3f}; argmax p "
                f"{a.accuracy:.3f} / {a.balanced_accuracy:.3f} / {a.macro_auc:.3f}"
            )
