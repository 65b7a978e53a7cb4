"""``hamfeat explain``: why the model predicted what it did for one image."""

from __future__ import annotations

import argparse
import sys

from hamfeat.cli._common import EXIT_OK, EXIT_USAGE, MODEL_PATH_HELP, _add_command


def add_parser(subparsers) -> None:
    """Add ``explain`` to the ``hamfeat`` sub-parsers."""
    p = _add_command(
        subparsers, "explain", help="why the model predicted what it did for one image"
    )
    p.add_argument("image", metavar="IMAGE", help="the JPEG/PNG image to explain")
    p.add_argument("--model", metavar="PATH", help=MODEL_PATH_HELP)
    p.add_argument("--mask", metavar="PNG", help="its lesion mask (default: automatic)")
    p.add_argument(
        "--top", type=int, default=5, metavar="N",
        help="features listed each way, at least 1 (default: 5)",
    )
    p.set_defaults(func=_cmd_explain)


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
