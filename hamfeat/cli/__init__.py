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

One module per command, each with ``add_parser(subparsers)`` (its options) and its handler
(``_cmd_*``, which imports the heavy modules it calls, so ``--help`` stays fast):
:mod:`~hamfeat.cli.data`, :mod:`~hamfeat.cli.features`, :mod:`~hamfeat.cli.train_segmenter`,
:mod:`~hamfeat.cli.train`, :mod:`~hamfeat.cli.cv`, :mod:`~hamfeat.cli.score`,
:mod:`~hamfeat.cli.evaluate`, :mod:`~hamfeat.cli.explain`; what they share (exit codes,
defaults, argparse types, lazy help texts, common options) is in :mod:`hamfeat.cli._common`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from hamfeat._version import __version__
from hamfeat.cli import cv, data, evaluate, explain, features, score, train, train_segmenter
from hamfeat.cli._common import (
    DEFAULT_REPORT_DIR,
    DEFAULT_REPORT_DIR_CXR14,
    DEFAULT_REPORT_DIR_EVALUATE,
    EXIT_BUG,
    EXIT_FATAL,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    JOBS_HELP,
    MASKS_DIR_HELP,
    MODEL_PATH_HELP,
    RECURSIVE_HELP,
    SCORE_FLOAT_FORMAT,
    SCORE_SUFFIXES,
    TABLE_SUFFIXES,
    VERBOSE_HELP,
    _LazyHelp,
)
from hamfeat.errors import HamfeatError, UsageError

__all__ = [
    "DEFAULT_REPORT_DIR",
    "DEFAULT_REPORT_DIR_CXR14",
    "DEFAULT_REPORT_DIR_EVALUATE",
    "EXIT_BUG",
    "EXIT_FATAL",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_USAGE",
    "JOBS_HELP",
    "MASKS_DIR_HELP",
    "MODEL_PATH_HELP",
    "RECURSIVE_HELP",
    "SCORE_FLOAT_FORMAT",
    "SCORE_SUFFIXES",
    "TABLE_SUFFIXES",
    "VERBOSE_HELP",
    "_LazyHelp",
    "build_parser",
    "main",
]

log = logging.getLogger("hamfeat")

#: The commands, in the order ``hamfeat --help`` lists them.
_COMMANDS = (data, features, train_segmenter, train, cv, score, evaluate, explain)


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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in _COMMANDS:
        command.add_parser(sub)
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
