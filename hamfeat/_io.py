"""Output files: the one way hamfeat writes a file (tables, models, reports, cache parts).

:func:`write_output` is used by every writer of the package. What it does depends on what the
path names, after following symbolic links to their final target (the link itself is kept):

* a regular file, or nothing yet: the content goes to a temporary file in the target's folder,
  is flushed to disk and renamed over the target, so the target is always either the old file
  or the complete new one; an existing file keeps its permission bits (and, when allowed, its
  owner);
* anything else (``-`` for standard output, ``/dev/stdout``, ``/dev/null`` and other devices,
  a FIFO): the content is written *through* to it; it is never replaced, removed or renamed;
* a folder, a socket, a missing folder, a dangling chain of links: :class:`OutputError`.

:func:`check_output` runs the same resolution without writing, so that commands can refuse a
bad output path before any work. This module imports nothing else of hamfeat but its errors.
"""

from __future__ import annotations

import io
import os
import re
import stat
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from hamfeat.errors import OutputError

__all__ = ["STDOUT", "OutputTarget", "check_output", "check_output_dir", "write_output"]

#: The output path that means standard output.
STDOUT = "-"
_MAX_LINKS = 40
#: Paths that name one of this process's own open files (``/dev/stdout``, ``/dev/fd/3``, ...).
_OWN_FD = re.compile(r"^/(?:dev/(?:fd/(\d+)|(stdin|stdout|stderr))|proc/self/fd/(\d+))$")
_STD_FDS = {"stdin": 0, "stdout": 1, "stderr": 2}


@dataclass(frozen=True)
class OutputTarget:
    """Where an output path leads.

    Attributes
    ----------
    path : str
        The path as given.
    kind : {"file", "new", "stream", "fd"}
        ``file``: an existing regular file (replaced atomically); ``new``: nothing there yet
        (created atomically); ``stream``: a device or FIFO (written through); ``fd``: standard
        output or another open file of this process (written through).
    target : str
        The final path after every symbolic link (for ``fd``: the path as given).
    fd : int or None
        The file descriptor, for ``kind == "fd"``.
    """

    path: str
    kind: str
    target: str
    fd: int | None = None

    @property
    def is_regular(self) -> bool:
        """Whether the output is (or will be) a regular file, replaced atomically."""
        return self.kind in ("file", "new")


def _own_fd(path: str) -> int | None:
    if path == STDOUT:
        return 1
    if os.path.isabs(path):
        m = _OWN_FD.match(os.path.normpath(path))
        if m is None:
            pid = re.match(rf"^/proc/{os.getpid()}/fd/(\d+)$", os.path.normpath(path))
            return int(pid.group(1)) if pid else None
        num = m.group(1) or m.group(3)
        return int(num) if num is not None else _STD_FDS[m.group(2)]
    return None


def _fail(path: str, reason: str) -> OutputError:
    return OutputError(path, reason)


def _reason(exc: OSError) -> str:
    return f"cannot write ({exc.strerror or exc})"


def check_output(path: str | os.PathLike[str]) -> OutputTarget:
    """Resolve an output path and check that it can be written, without writing anything.

    Symbolic links are followed to their final target (a dangling link's target is created).
    Nothing is opened: a FIFO is not touched until :func:`write_output`.

    Parameters
    ----------
    path : path-like
        The output path; ``"-"`` is standard output.

    Returns
    -------
    OutputTarget

    Raises
    ------
    OutputError
        The path is a folder or a socket, its folder does not exist or cannot be written, or
        its links loop.
    """
    given = os.fspath(path)
    if not given:
        raise _fail(given, "empty output path")
    fd = _own_fd(given)
    if fd is not None:
        return OutputTarget(given, "fd", given, fd)
    current = os.path.abspath(given)
    for _ in range(_MAX_LINKS):
        fd = _own_fd(current)
        if fd is not None:
            return OutputTarget(given, "fd", current, fd)
        try:
            st = os.lstat(current)
        except (FileNotFoundError, NotADirectoryError):  # nothing there, or under a file
            return _check_new(given, current)
        except OSError as exc:
            raise _fail(given, _reason(exc)) from None
        if not stat.S_ISLNK(st.st_mode):
            break
        link = os.readlink(current)
        current = os.path.join(os.path.dirname(current), link)
    else:
        raise _fail(given, "cannot write (too many levels of symbolic links)")
    if stat.S_ISREG(st.st_mode):
        _check_folder(given, os.path.dirname(current))
        return OutputTarget(given, "file", current)
    if stat.S_ISDIR(st.st_mode):
        raise _fail(given, "is a folder; give a file name")
    if stat.S_ISSOCK(st.st_mode):
        raise _fail(given, "is a socket; cannot write a file to it")
    return OutputTarget(given, "stream", current)  # FIFO, character or block device


def _check_new(given: str, target: str) -> OutputTarget:
    _check_folder(given, os.path.dirname(target))
    return OutputTarget(given, "new", target)


def _check_folder(given: str, folder: str) -> None:
    folder = folder or "."
    if not os.path.isdir(folder):
        what = "is not a folder" if os.path.exists(folder) else "does not exist"
        raise _fail(given, f"cannot write: folder {folder} {what}")
    if not os.access(folder, os.W_OK | os.X_OK):  # also refuses a read-only file system
        err = "Read-only file system" if _read_only_fs(folder) else "Permission denied"
        raise _fail(given, f"cannot write ({err})")


def _read_only_fs(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` is on a file system mounted read-only."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def check_output_dir(path: str | os.PathLike[str], *, create: bool = True) -> Path:
    """Check (and create, with its parents) a folder that outputs will be written into.

    Parameters
    ----------
    path : path-like
        The folder.
    create : bool
        ``False``: only check, before any work, that it is (or can be created as) a writable
        folder; nothing is created, so an input error found next leaves no trace.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    OutputError
        It is a file, or cannot be created or written.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise _fail(str(folder), "is not a folder")
    if not create:
        probe = folder
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if not probe.is_dir():
            raise _fail(str(folder), f"cannot create folder ({probe} is not a folder)")
        if not os.access(probe, os.W_OK | os.X_OK):
            err = "Read-only file system" if _read_only_fs(str(probe)) else "Permission denied"
            raise _fail(str(folder), f"cannot write ({err})")
        return folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _fail(str(folder), f"cannot create folder ({exc.strerror or exc})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        err = "Read-only file system" if _read_only_fs(str(folder)) else "Permission denied"
        raise _fail(str(folder), f"cannot write ({err})")
    return folder


def write_output(
    path: str | os.PathLike[str], write: Callable[[IO[Any]], Any], *, binary: bool
) -> OutputTarget:
    """Write a file the safe way: atomically when it is a regular file, else through.

    Parameters
    ----------
    path : path-like
        Destination (see the module docstring); ``"-"`` is standard output.
    write : callable
        ``write(fh)`` writes the content to an open file object (binary or text).
    binary : bool
        Whether ``write`` expects a binary file object.

    Returns
    -------
    OutputTarget
        Where the content went.

    Raises
    ------
    OutputError
        The file cannot be written; a regular file is then left as it was and no temporary
        file is left behind.
    """
    target = check_output(path)
    if target.is_regular:
        _replace_atomically(target, write, binary)
    else:
        _write_through(target, write, binary)
    return target


def _replace_atomically(target: OutputTarget, write, binary: bool) -> None:
    final = Path(target.target)
    old = None
    if target.kind == "file":
        try:
            old = os.stat(final)
        except OSError:
            old = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    except OSError as exc:
        raise _fail(target.path, _reason(exc)) from None
    try:
        kw = {} if binary else {"newline": "", "encoding": "utf-8"}
        with os.fdopen(fd, "wb" if binary else "w", **kw) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        _permissions(tmp, old)
        os.replace(tmp, final)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _fail(target.path, _reason(exc)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _sync_folder(final.parent)


def _permissions(tmp: str, old: os.stat_result | None) -> None:
    """mkstemp creates 0600 files: give the new file the old one's mode (and owner, when
    allowed), or the mode a plain ``open()`` would give a new file."""
    if old is None:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        return
    if hasattr(os, "chown"):
        try:
            st = os.stat(tmp)
            if (st.st_uid, st.st_gid) != (old.st_uid, old.st_gid):
                os.chown(tmp, old.st_uid, old.st_gid)
        except OSError:
            pass  # not allowed (not root): the new file is the writer's, like any new file
    os.chmod(tmp, stat.S_IMODE(old.st_mode))


def _sync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_through(target: OutputTarget, write, binary: bool) -> None:
    """Render to memory, then write the bytes to the stream (pipes and devices cannot seek)."""
    buf = io.BytesIO() if binary else io.StringIO(newline="")
    write(buf)
    data = buf.getvalue()
    if target.kind == "fd" and target.fd in (1, 2):
        stream = sys.stdout if target.fd == 1 else sys.stderr
        stream.flush()
        if binary:
            stream.buffer.write(data)
        else:
            stream.write(data)
        stream.flush()
        return
    if not binary:
        data = data.encode("utf-8")
    try:
        if target.kind == "fd":
            fd = os.dup(target.fd)
        else:  # never O_CREAT: a device or FIFO that vanished is not turned into a file
            fd = os.open(target.target, os.O_WRONLY | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise _fail(target.path, _reason(exc)) from None
