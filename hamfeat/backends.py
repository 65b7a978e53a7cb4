"""Where batch work runs: a small registry of backends behind one interface.

A backend is given the worker function and the items and yields the worker's results, one
per item, each exactly once, in any order; it never sees what the work is. The caller keeps
everything else (for feature extraction: the cache, the progress and every write, see
:func:`hamfeat.extract.extract_table`), so every backend gives the same results bit for bit.

Built in: ``joblib`` (processes on this machine) and ``dask`` (a ``dask.distributed``
cluster, :mod:`hamfeat._dask`, optional). Adding a backend is one :func:`register_backend`
call; ``hamfeat features/score/evaluate --backend`` offers every registered name.

    >>> backend_names()
    ('joblib', 'dask')
    >>> list(get_backend("joblib").run(abs, [-1, 2], jobs=1))
    [1, 2]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from hamfeat import _dask

__all__ = [
    "DEFAULT_BACKEND",
    "Backend",
    "backend_names",
    "get_backend",
    "register_backend",
    "scheduler_backend",
]

#: The backend used when none is named.
DEFAULT_BACKEND = "joblib"


def _always() -> bool:
    return True


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Backend:
    """One way of running a worker function on many items.

    Attributes
    ----------
    name : str
    description : str
        One line for ``--backend``'s help.
    run : callable
        ``run(work, items, *, jobs, scheduler=None, announce=True)``: an iterator of
        ``work(item)`` for every item, each exactly once, in any order. ``work`` and the items
        must be picklable (module-level functions, :func:`functools.partial` of them).
        ``jobs`` is the number of worker processes (>= 1).
    available : callable
        Whether the backend's optional dependencies can be imported.
    require : callable
        Raise a :class:`~hamfeat.errors.HamfeatError` naming the install command when they
        cannot.
    needs : str, optional
        What it needs, for messages (``"Dask"``).
    install_hint : str, optional
        The install command (``pip install 'hamfeat[dask]'``).
    takes_scheduler : bool
        Whether it computes on a remote scheduler given by address (``--scheduler``).
    """

    name: str
    description: str
    run: Callable[..., Iterator[Any]]
    available: Callable[[], bool] = _always
    require: Callable[[], None] = _nothing
    needs: str | None = None
    install_hint: str | None = None
    takes_scheduler: bool = False


_BACKENDS: dict[str, Backend] = {}


def register_backend(backend: Backend, *, replace: bool = False) -> Backend:
    """Add a backend to the registry.

    Parameters
    ----------
    backend : Backend
    replace : bool
        Allow replacing a registered backend of the same name.

    Returns
    -------
    Backend
        ``backend``.

    Raises
    ------
    ValueError
        The name is taken (and not ``replace``).
    """
    if backend.name in _BACKENDS and not replace:
        raise ValueError(f"backend {backend.name!r} is already registered")
    _BACKENDS[backend.name] = backend
    return backend


def backend_names() -> tuple[str, ...]:
    """Names of the registered backends, in registration order.

    Returns
    -------
    tuple of str
    """
    return tuple(_BACKENDS)


def get_backend(name: str) -> Backend:
    """The backend of that name.

    Parameters
    ----------
    name : str

    Returns
    -------
    Backend

    Raises
    ------
    ValueError
        ``backend must be 'joblib' or 'dask', not 'x'`` for an unknown name.
    """
    if name not in _BACKENDS:
        names = [repr(n) for n in _BACKENDS]
        choices = ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]
        raise ValueError(f"backend must be {choices}, not {name!r}")
    return _BACKENDS[name]


def scheduler_backend() -> Backend:
    """The backend a scheduler address implies (the first that takes one: ``dask``).

    Returns
    -------
    Backend
    """
    return next(b for b in _BACKENDS.values() if b.takes_scheduler)


def _run_local(
    work: Callable[[Any], Any],
    items: Iterable[Any],
    *,
    jobs: int,
    scheduler: str | None = None,
    announce: bool = True,
) -> Iterator[Any]:
    """``joblib``: in this process for one job or one item, else ``jobs`` joblib processes."""
    items = list(items)
    if jobs == 1 or len(items) <= 1:
        for item in items:
            yield work(item)
        return
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=jobs, return_as="generator_unordered", batch_size=1)
    yield from parallel(delayed(work)(item) for item in items)


def _run_dask(
    work: Callable[[Any], Any],
    items: Iterable[Any],
    *,
    jobs: int,
    scheduler: str | None = None,
    announce: bool = True,
) -> Iterator[Any]:
    """``dask``: :func:`hamfeat._dask.run_chunks` (at ``scheduler``, else ``jobs`` local
    workers)."""
    yield from _dask.run_chunks(
        work, list(items), scheduler=scheduler, n_workers=jobs, announce=announce
    )


register_backend(Backend("joblib", "processes on this machine (default)", _run_local))
register_backend(Backend(
    "dask",
    "a Dask cluster (--scheduler, else a local one of --jobs workers; needs hamfeat[dask])",
    _run_dask,
    available=_dask.available,
    require=_dask.require,
    needs="Dask",
    install_hint=_dask.INSTALL_HINT,
    takes_scheduler=True,
))
