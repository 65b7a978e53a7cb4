"""The Dask backend (:mod:`hamfeat.backends`): the worker function on a cluster, item by item.

Workers only compute: each task is one item (for :func:`hamfeat.extract.extract_table`, a
chunk of images), run by the worker function the caller gives (the same as on the joblib
backend), and returns its result. The calling process (the Dask *client*) collects them and
owns the cache and every write, so the cache, the atomic writes and resuming after a kill
behave exactly as on one machine, and the features are the same bit for bit.

A worker that dies mid-run loses its tasks; the scheduler runs them again on the other
workers (or on the worker its nanny restarts). Each task has its own key, made of a token for
the run and the chunk's index, and a chunk's results are yielded once only, keyed by that
index: a re-run task is never counted twice.

Every worker must see the images at the same paths as the client (a shared file system) and
run the same hamfeat and libraries: each task checks that and refuses to compute otherwise.

Dask is optional (``pip install 'hamfeat[dask]'``) and imported only here, only when used.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from hamfeat.errors import HamfeatError

__all__ = ["INSTALL_HINT", "DaskError", "available", "fingerprint", "run_chunks"]

INSTALL_HINT = "pip install 'hamfeat[dask]'"
#: Seconds to wait for a remote scheduler to answer.
CONNECT_TIMEOUT = 30


class DaskError(HamfeatError):
    """Dask is missing, the scheduler cannot be reached, or a worker cannot run hamfeat."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))  # always one line


def available() -> bool:
    """Whether ``dask.distributed`` can be imported."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


def require() -> None:
    """Raise :class:`DaskError` with the install command when Dask is missing."""
    if not available():
        raise DaskError(f"the Dask backend needs dask.distributed: {INSTALL_HINT}")


@lru_cache(maxsize=1)
def fingerprint() -> tuple[str, ...]:
    """What must be equal on the client and every worker for bit-identical features.

    hamfeat's version, the feature version, a hash of hamfeat's source files, and the versions
    of the libraries that decode images and compute features.
    """
    import cv2
    import numba
    import numpy
    import PIL
    import simplejpeg

    import hamfeat
    from hamfeat.features import FEATURES_VERSION

    h = hashlib.sha256()
    root = Path(hamfeat.__file__).parent
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return (
        f"hamfeat {hamfeat.__version__}",
        f"features {FEATURES_VERSION}",
        f"source {h.hexdigest()[:12]}",
        f"numpy {numpy.__version__}",
        f"numba {numba.__version__}",
        f"opencv {cv2.__version__}",
        f"pillow {PIL.__version__}",
        f"simplejpeg {simplejpeg.__version__}",
    )


@lru_cache(maxsize=1)
def _tune_malloc() -> bool:
    """Undo the cost of Dask's ``MALLOC_TRIM_THRESHOLD_`` in this worker process (glibc only).

    Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which also turns off
    glibc's adaptive mmap threshold: every image-sized array is then mmap-ed and unmapped
    again, and page faults add about 40% CPU per image. Large blocks come from the heap again
    (below 16 MiB), and up to 64 MiB of freed memory is kept for reuse.
    """
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ or not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, 16 << 20) and mallopt(m_trim_threshold, 64 << 20))


def _task(chunk: Any, work: Callable[[Any], Any], expected: tuple[str, ...]) -> tuple[str, object]:
    """Worker side: ``("ok", work(chunk))``, or ``("mismatch", description)`` for another
    setup."""
    _tune_malloc()
    mine = fingerprint()
    if mine != expected:
        diff = [f"{m} (client: {e})" for m, e in zip(mine, expected, strict=False) if m != e]
        return "mismatch", f"{socket.gethostname()} pid {os.getpid()}: " + ", ".join(diff)
    return "ok", work(chunk)


def _announce(client, where: str) -> None:
    info = client.scheduler_info()
    link = None
    if "dashboard" in info.get("services", {}):  # dashboard_link is a template: check first
        try:
            link = client.dashboard_link
        except Exception:  # an odd configuration must not stop the run
            link = None
    n = len(info.get("workers", {}))
    print(
        f"hamfeat: Dask {where}, {n} worker(s); dashboard: {link or 'none'}",
        file=sys.stderr,
        flush=True,
    )


@contextmanager
def connect(scheduler: str | None = None, n_workers: int | None = None, *, announce: bool = True):
    """A ``distributed.Client``: to ``scheduler``, or to a new local cluster of processes.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``). ``None`` starts a
        ``LocalCluster`` of ``n_workers`` single-threaded worker processes on the loopback
        interface, closed on exit.
    n_workers : int, optional
        Local workers (default: one per core).
    announce : bool
        Print the scheduler, the number of workers and the dashboard link on stderr.

    Yields
    ------
    distributed.Client
    """
    require()
    from distributed import Client, LocalCluster

    if not logging.getLogger("hamfeat").isEnabledFor(logging.INFO):
        logging.getLogger("distributed").setLevel(logging.WARNING)  # its INFO chatter, unless -v
    cluster = None
    try:
        if scheduler:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT)
            where = f"scheduler {scheduler}"
        else:
            cluster = LocalCluster(
                n_workers=n_workers or os.cpu_count() or 1,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=":0",
            )
            client = Client(cluster)
            where = "local cluster"
    except (OSError, ValueError, TypeError, RuntimeError) as exc:
        if cluster is not None:
            cluster.close()
        if scheduler:
            raise DaskError(f"{scheduler}: cannot connect to the Dask scheduler ({exc})") from None
        raise DaskError(f"cannot start a local Dask cluster ({exc})") from None
    try:
        if announce:
            _announce(client, where)
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_chunks(
    work: Callable[[Any], Any],
    chunks: list,
    *,
    scheduler: str | None = None,
    n_workers: int | None = None,
    announce: bool = True,
) -> Iterator[Any]:
    """Run ``work`` on every chunk on a Dask cluster; yield each result once.

    Parameters
    ----------
    work : callable
        The worker function, ``work(chunk)``; picklable (e.g. a :func:`functools.partial` of a
        module-level function).
    chunks : list
        The items, one task each (for feature extraction: chunks of
        ``(index, image_path, mask_path)``).
    scheduler, n_workers, announce
        As in :func:`connect`.

    Yields
    ------
    object
        ``work(chunk)`` of one chunk, in completion order; every chunk exactly once.

    Raises
    ------
    DaskError
        Dask is missing, the scheduler cannot be reached, a worker runs another version of
        hamfeat or its libraries, or a task failed on the workers (e.g. it killed several
        workers in turn).
    """
    if not chunks:
        return
    with connect(scheduler, n_workers, announce=announce) as client:
        from distributed import as_completed

        token = uuid.uuid4().hex[:12]
        keys = [f"hamfeat-chunk-{token}-{i}" for i in range(len(chunks))]
        futures = client.map(_task, chunks, work=work, expected=fingerprint(), key=keys)
        index = {f.key: i for i, f in enumerate(futures)}
        pending = dict(enumerate(futures))
        del futures
        try:
            for fut in as_completed(list(pending.values())):
                i = index[fut.key]
                if i not in pending:  # already collected: never count a chunk twice
                    continue
                try:
                    status, payload = fut.result()
                except Exception as exc:
                    first = next(iter(str(exc).splitlines()), "")
                    hint = "; is hamfeat installed on every worker?"
                    raise DaskError(
                        f"Dask task {fut.key} failed on the workers: {type(exc).__name__}: {first}"
                        + (hint if isinstance(exc, ImportError) else "")
                    ) from None
                if status != "ok":
                    raise DaskError(
                        f"a Dask worker runs another setup: {payload}; install the same hamfeat "
                        "and libraries on every worker"
                    )
                del pending[i]  # frees the result on the cluster
                fut.release()
                yield payload
        finally:
            if pending:
                client.cancel(list(pending.values()))
