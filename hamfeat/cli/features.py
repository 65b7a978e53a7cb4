"""``hamfeat features``: extract the feature table of a data set."""

from __future__ import annotations

import argparse
import sys

from hamfeat.cli._common import (
    EXIT_FATAL,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    JOBS_HELP,
    TABLE_SUFFIXES,
    _add_backend_args,
    _add_command,
    _add_data_arg,
    _add_dataset_arg,
    _backend,
    _families,
    _family_help,
    _jobs,
    _lazy,
    _long_side,
    _output_format,
)


def add_parser(subparsers) -> None:
    """Add ``features`` to the ``hamfeat`` sub-parsers."""
    from hamfeat import _cli_datasets as ds

    p = _add_command(subparsers, "features", help="extract the feature table of a data set")
    _add_data_arg(p)
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
    _add_dataset_arg(p)
    _add_backend_args(p)
    p.set_defaults(func=_cmd_features)


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
