"""Command line: argument parsing only. Each command calls one function of another module.

Exit status (every command):

====  =============================================================================
0     success: every input was processed
1     finished, but some inputs failed (each named on stderr and in the errors file)
2     usage error (bad option or argument)
3     nothing could be done (data or model not found or invalid, every input failed)
70    internal error (a bug in hamfeat; the traceback is printed)
141   standard output was closed by its reader (as ``| head`` does), like SIGPIPE
130   interrupted (Ctrl-C)
====  =============================================================================
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from hamfeat._version import __version__
from hamfeat.errors import HamfeatError, UsageError

if TYPE_CHECKING:
    from hamfeat.datasets import DatasetSpec

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_FATAL, EXIT_BUG = 0, 1, 2, 3, 70

log = logging.getLogger("hamfeat")

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


def _cmd_features(args: argparse.Namespace) -> int:
    from hamfeat._cli_datasets import feature_config
    from hamfeat.datasets import get_dataset
    from hamfeat.extract import extract_dataset

    spec = get_dataset(args.dataset)
    config = feature_config(spec, args)  # the data set's preset, then the options
    backend = _backend(args)
    if backend is None:
        return EXIT_USAGE
    table_format = _output_format("features", args.output, TABLE_SUFFIXES)
    if table_format is None:
        return EXIT_USAGE
    result = extract_dataset(
        args.data,
        args.output,
        config,
        table_format=table_format,
        use_masks=args.masks != "auto",  # default (None): given
        masks_dir=None if args.masks in (None, "given", "auto") else args.masks,
        jobs=args.jobs,
        cache_dir=False if args.no_cache else True,
        dataset=spec,
        **backend,
    )
    n_err = sum(p.severity == "error" for p in result.problems)
    for p in result.problems:
        if p.severity == "error" or args.verbose:
            print(f"hamfeat features: {p}", file=sys.stderr)
    if result.masks is not None:
        print(f"hamfeat features: {result.masks.line()}", file=sys.stderr)
    n_warn = len(result.problems) - n_err
    print(
        f"hamfeat features: {len(result.table)} images -> {args.output} "
        f"({result.n_computed} computed, {result.n_cached} from cache, "
        f"{result.table.shape[1]} columns); {n_err} error(s), {n_warn} warning(s)"
        + ("" if args.verbose or not n_warn else "; -v lists warnings"),
        file=sys.stderr,
    )
    if result.table.empty:
        return EXIT_FATAL
    return EXIT_PARTIAL if n_err else EXIT_OK


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


def _labels(spec: DatasetSpec) -> dict:
    """The label arguments of :func:`hamfeat.training.train` and ``run_cv`` for a multi-class
    data set (none for the default one: its tables are what they always were)."""
    from hamfeat.datasets import DEFAULT_DATASET

    return {} if spec.name == DEFAULT_DATASET else {"dataset": spec}


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


def _cmd_score(args: argparse.Namespace) -> int:
    from hamfeat.score import default_model_path, score_folder

    backend = _backend(args)
    if backend is None:
        return EXIT_USAGE
    out_format = "csv"
    if args.output:  # a bad suffix, a folder, a missing or read-only folder: before scoring
        from hamfeat._io import check_output

        out_format = _output_format("score", args.output, SCORE_SUFFIXES)
        if out_format is None:
            return EXIT_USAGE
        if out_format != "csv" and args.format == "isic2018":
            print(
                f"hamfeat score: error: --format isic2018 is a CSV file; give -o a .csv name "
                f"(not {args.output})",
                file=sys.stderr,
            )
            return EXIT_USAGE
        check_output(args.output)
    if args.html:  # the page's path too: a folder, a missing or read-only folder, before work
        from hamfeat._io import check_output

        check_output(args.html)
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
    if args.output:
        from hamfeat.extract import write_csv_atomic, write_table_atomic

        if out_format == "parquet":
            write_table_atomic(table, args.output)
        else:
            write_csv_atomic(table, args.output, float_format=SCORE_FLOAT_FORMAT)
    else:
        table.to_csv(sys.stdout, index=False, float_format=SCORE_FLOAT_FORMAT)
    n = len(result.images())
    n_warn = sum(p.severity != "error" for p in result.problems)
    left_out = n - result.n_failed - len(table) if args.format == "isic2018" else 0
    warn_note = ("" if args.verbose else ", -v lists them") if n_warn else ""
    print(
        f"hamfeat score: {n - result.n_failed} of {n} images scored"
        + (f" -> {args.output}" if args.output else "")
        + (f"; {left_out} repeated image_id(s) left out of the isic2018 file" if left_out else "")
        + (
            f"; {result.n_flagged} flagged as unlike the training images (flags column)"
            if result.n_flagged
            else ""
        )
        + (f"; {n_warn} warning(s){warn_note}" if n_warn else ""),
        file=sys.stderr,
    )
    if args.html and result.n_failed < n:
        from hamfeat.score_html import write_score_html

        page = write_score_html(result, args.html, per_feature=args.html_explain == "features")
        print(f"hamfeat score: page -> {page}", file=sys.stderr)
    if result.n_failed == n:
        return EXIT_FATAL
    return EXIT_PARTIAL if result.n_failed else EXIT_OK


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
        counts.append(f"{n_warn} warning(s)" + ("" if args.verbose else ", -v lists them"))
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
    say(f"report -> {report_dir}")
    if ev.image is None or n_ok == 0:
        return EXIT_FATAL
    return EXIT_PARTIAL if ev.failed else EXIT_OK


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


def _cmd_explain(args: argparse.Namespace) -> int:
    from hamfeat.explain import explain_file
    from hamfeat.models import load_model
    from hamfeat.render import explanation_text
    from hamfeat.score import default_model_path

    if args.top < 1:
        print("hamfeat explain: error: --top must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    path = args.model or default_model_path()
    model = load_model(path)
    item = explain_file(model, args.image, args.mask, top=args.top)
    for w in item.row["warnings"]:
        print(f"hamfeat explain: {w}", file=sys.stderr)
    sys.stdout.write(explanation_text(item, model_name=f"{path}"))
    return EXIT_OK


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


def build_parser() -> argparse.ArgumentParser:
    """Build the ``hamfeat`` argument parser.

    Returns
    -------
    argparse.ArgumentParser
        The parser; ``args.func(args)`` runs the chosen command and returns the exit status.
    """
    parser = argparse.ArgumentParser(
        prog="hamfeat",
        description="Hand-crafted features and classical models for dermoscopy (HAM10000).",
        epilog="Exit status: 0 ok, 1 some inputs failed, 2 usage, 3 nothing done, 70 bug.",
    )
    parser.add_argument("--version", action="version", version=f"hamfeat {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    # -v is accepted after the command too (`hamfeat features -v ...`): each sub-parser has it,
    # with no default of its own, so it only ever turns verbosity on
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add_parser(name: str, **kw) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], **kw)

    from hamfeat import _cli_datasets as ds
    from hamfeat.datasets import DEFAULT_DATASET, dataset_names

    names = dataset_names()  # the registry's: imports no data set module
    dataset_opt = ("--dataset",)
    dataset_kw = {"choices": names, "default": DEFAULT_DATASET, "help": _lazy(ds.dataset_help)}
    data_help = _lazy(ds.data_help)

    p = add_parser("data", help="check a data set folder and list its problems")
    p.add_argument("--data", metavar="DIR", help=data_help)
    p.add_argument(
        "--strict",
        action="store_true",
        help=_lazy(ds.strict_help),
    )
    p.add_argument(*dataset_opt, **dataset_kw)
    p.set_defaults(func=_cmd_data)

    p = add_parser("features", help="extract the feature table of a data set")
    p.add_argument("--data", metavar="DIR", help=data_help)
    p.add_argument(
        "-o",
        "--output",
        metavar="TABLE.parquet",
        required=True,
        help="the feature table: .parquet, or .csv (for other tools; train and cv read "
        "parquet); '-' for standard output",
    )
    p.add_argument("--jobs", type=_jobs, default=0, metavar="N", help=JOBS_HELP)
    p.add_argument(
        "--no-cache", action="store_true",
        help="recompute everything, cache nothing (default: use and fill the cache, "
        "$HAMFEAT_CACHE_DIR or ~/.cache/hamfeat)",
    )
    p.add_argument(
        "--families", type=_families, metavar="A,B",
        help=_family_help(lambda: ds.families_default_help("feature families to compute")),
    )
    p.add_argument(
        "--masks",
        metavar="given|auto|DIR",
        help="given (default): the data set's own masks where present; auto: segment every "
        "image; DIR: a folder of <image_id>_segmentation.png masks (an image without one is "
        "segmented); stderr says how many images got a mask; dermoscopy only",
    )
    p.add_argument(
        "--color-constancy",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="Shades-of-Gray colour constancy (p=6) before the features; off by default "
        "because lesion-grouped CV showed it hurts (dermoscopy only)",
    )
    p.add_argument(
        "--hair-removal", action="store_true", help="remove hair before features (dermoscopy only)"
    )
    p.add_argument(
        "--long-side", type=_long_side, metavar="PX",
        help=_lazy(lambda: ds.per_dataset(
            "canonical long side in pixels, at least 32 (default: ",
            lambda s: s.features.long_side) + ")"),
    )
    p.add_argument(
        "--segmenter",
        metavar="FILE.skops",
        help="learned segmenter (hamfeat train-segmenter) for the automatic masks (default: "
        "the classical one); its training images get out-of-fold masks (dermoscopy only)",
    )
    p.add_argument(*dataset_opt, **dataset_kw)
    _add_backend_args(p)
    p.set_defaults(func=_cmd_features)

    p = add_parser(
        "train-segmenter",
        help="learn the automatic segmentation from a data set's masks (lesion-grouped folds "
        "for out-of-fold masks, plus one model on all images)",
    )
    p.add_argument("--data", metavar="DIR", help=data_help)
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

    p = add_parser("train", help="train a model on a feature table")
    p.add_argument(
        "--features", metavar="TABLE.parquet", required=True,
        help="the feature table (hamfeat features -o, parquet)",
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
    p.add_argument(*dataset_opt, **dataset_kw)
    p.set_defaults(func=_cmd_train)

    p = add_parser("cv", help="lesion-grouped cross-validation reports")
    p.add_argument(
        "--features", metavar="TABLE.parquet", required=True,
        help="the feature table (hamfeat features -o, parquet)",
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
    p.add_argument(*dataset_opt, **dataset_kw)
    p.set_defaults(func=_cmd_cv)

    p = add_parser("score", help="score a folder of JPEG/PNG images with a trained model")
    p.add_argument(
        "folder", metavar="DIR",
        help="folder of JPEG/PNG images (or one image file) to score",
    )
    p.add_argument("--model", metavar="PATH", help=MODEL_PATH_HELP)
    p.add_argument("--masks", metavar="DIR", help=MASKS_DIR_HELP)
    p.add_argument("--recursive", action="store_true", help=RECURSIVE_HELP)
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
    p.add_argument(
        "--segmenter",
        metavar="FILE.skops",
        help="the model's learned segmenter (default: the one beside the model)",
    )
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

    p = add_parser(
        "evaluate",
        help="score labelled images with a saved model and measure it against a ground truth "
        "(external validation)",
        description="Score images exactly as `hamfeat score` does, compare them with a "
        "ground-truth CSV and write a report (Markdown, JSON, PNG, per-image scores). Exit "
        "status: 0 ok; 1 some images could not be scored (each named); 2 usage; 3 nothing "
        "could be evaluated (bad truth file, model, no image, no image with a truth row, an "
        "output that cannot be written).",
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
    p.add_argument("--model", metavar="PATH", help=MODEL_PATH_HELP)
    p.add_argument("--masks", metavar="DIR", help=MASKS_DIR_HELP)
    p.add_argument("--recursive", action="store_true", help=RECURSIVE_HELP)
    p.add_argument("--jobs", type=_jobs, default=0, metavar="N", help=JOBS_HELP)
    p.add_argument(
        "--lesion-map",
        metavar="CSV",
        help="image_id,lesion_id (HAM10000_metadata.csv will do): also evaluate per lesion, "
        "probabilities averaged over a lesion's images",
    )
    p.add_argument(
        "--segmenter",
        metavar="FILE.skops",
        help="the model's learned segmenter (default: the one beside the model)",
    )
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

    p = add_parser("explain", help="why the model predicted what it did for one image")
    p.add_argument("image", metavar="IMAGE", help="the JPEG/PNG image to explain")
    p.add_argument("--model", metavar="PATH", help=MODEL_PATH_HELP)
    p.add_argument("--mask", metavar="PNG", help="its lesion mask (default: automatic)")
    p.add_argument(
        "--top", type=int, default=5, metavar="N",
        help="features listed each way, at least 1 (default: 5)",
    )
    p.set_defaults(func=_cmd_explain)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``hamfeat`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status (see the module docstring).
    """
    args = build_parser().parse_args(argv)
    args.argv = None if argv is None else "hamfeat " + " ".join(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="hamfeat: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    from hamfeat._cli_datasets import refuse_inapplicable

    if refuse_inapplicable(args):
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"hamfeat {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except HamfeatError as exc:
        print(f"hamfeat {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_FATAL
    except KeyboardInterrupt:
        print(f"hamfeat {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `hamfeat score DIR | head`: the reader stopped reading
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception:  # a bug: say so, with the traceback, and never look like success
        import traceback

        traceback.print_exc()
        print(f"hamfeat {args.command}: internal error (a bug: please report it)", file=sys.stderr)
        return EXIT_BUG


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
