"""Warnings of the libraries during fitting: the expected ones silenced, the others one line.

scikit-learn warns, on small or lopsided tables, about things hamfeat expects and handles:
a ``QuantileTransformer`` asked for more quantiles than there are rows (it then uses one per
row, which is what hamfeat wants), a stratified split with a class smaller than its number of
folds. Printed raw they are two lines each with a source path, once per fold and process.
:func:`fit_warnings` silences those where they arise (the filters reach scikit-learn's worker
processes too: its ``Parallel`` copies them) and turns any other warning into one line of
hamfeat's logger: ``hamfeat: WARNING: train: ConvergenceWarning: ...``.
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

log = logging.getLogger("hamfeat")

#: Warnings expected on small tables, by the start of their message (regular expressions,
#: matched at the start as :func:`warnings.filterwarnings` does).
EXPECTED: tuple[str, ...] = (
    # QuantileTransformer(n_quantiles=200) on fewer rows: it uses n_samples quantiles
    r"n_quantiles \(\d+\) is greater than the total number of samples",
    # StratifiedKFold / StratifiedGroupKFold inside a fit (calibration, stacking) on a
    # class with fewer images than folds; cv's own folds refuse such tables beforehand
    r"The least populated class in y has only \d+ members",
)


def _one_line(w: warnings.WarningMessage) -> str:
    text = str(w.message).strip().splitlines()
    return f"{w.category.__name__}: {text[0] if text else ''}"


def report(caught: Iterable[warnings.WarningMessage], where: str) -> list[str]:
    """Log each distinct caught warning once, as one line; return the lines logged."""
    lines: list[str] = []
    for w in caught:
        line = f"{where}: {_one_line(w)}"
        if line not in lines:
            lines.append(line)
            log.warning(line)
    return lines


@contextmanager
def capture(where: str | None = None) -> Iterator[list[warnings.WarningMessage]]:
    """Silence :data:`EXPECTED` and record every other warning raised inside.

    Parameters
    ----------
    where : str, optional
        When given, the recorded warnings are logged (:func:`report`) on leaving; without it
        the caller gets the list (e.g. to send it back from a worker process).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for pattern in EXPECTED:
            warnings.filterwarnings("ignore", message=pattern)
        yield caught
    if where is not None:
        report(caught, where)


def messages(caught: Iterable[warnings.WarningMessage]) -> list[str]:
    """The caught warnings as one-line strings (picklable, for worker processes)."""
    return [_one_line(w) for w in caught]


def log_lines(where: str, lines: Iterable[str]) -> None:
    """Log each distinct one-line warning (from :func:`messages`) once."""
    for line in dict.fromkeys(f"{where}: {m}" for m in lines):
        log.warning(line)


def quiet(where: str) -> Callable:
    """Decorator: run the function under :func:`capture` (``where`` names it in the log)."""

    def wrap(func: Callable) -> Callable:
        @functools.wraps(func)
        def run(*args, **kwargs):
            with capture(where):
                return func(*args, **kwargs)

        return run

    return wrap
