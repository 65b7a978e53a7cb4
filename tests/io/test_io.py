"""Output files and the cache (issue #18, I/O): what ``-o`` points at is never destroyed, the
cache never stops a run, the CLI never writes into the repository by default.

Every test drives the real CLI in a subprocess (``python -m hamfeat``), on a small generated
data set; a few unit tests of :mod:`hamfeat._io` run in-process.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pandas as pd
import pytest

from _paths import ROOT
from conftest import make_ham_folder
from hamfeat._io import check_output, write_output
from hamfeat.errors import OutputError

FAMILIES = "shape,color"
N_IMAGES = 42  # 6 per class (5-fold CV needs 5)
TIMEOUT = 120  # every subprocess: a regression that hangs fails instead


def run(*args: str, env: dict | None = None, cwd=None, timeout: float = TIMEOUT, **kw):
    """``python -m hamfeat ARGS`` (PYTHONPATH inherited), or a runner script with ``-c``."""
    cmd = [sys.executable, *args] if args[0] == "-c" else [sys.executable, "-m", "hamfeat", *args]
    return subprocess.run(
        cmd, capture_output=True, env=env, cwd=cwd, timeout=timeout, text=True, **kw
    )


def ok(p: subprocess.CompletedProcess, code: int = 0) -> subprocess.CompletedProcess:
    assert p.returncode == code and "Traceback" not in p.stderr, (p.returncode, p.stderr)
    return p


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> dict:
    """A generated HAM10000 folder, its features and a KNN model (shared by the module)."""
    root = tmp_path_factory.mktemp("io")
    data = make_ham_folder(root / "HAM10000", N_IMAGES)
    env = {**os.environ, "HAMFEAT_CACHE_DIR": str(root / "cache")}
    feats, model = root / "f.parquet", root / "m.skops"
    ok(run("features", "--data", str(data), "-o", str(feats), "--families", FAMILIES,
           "--masks", "auto", "--jobs", "1", env=env))
    ok(run("train", "--features", str(feats), "-o", str(model), "--model", "knn", env=env))
    images = root / "images"
    images.mkdir()
    for p in sorted((data / "HAM10000_images_part_1").glob("*.jpg"))[:3]:
        shutil.copy(p, images / p.name)
    return {"root": root, "data": data, "env": env, "feats": feats, "model": model,
            "images": images}


def features_args(small: dict, out, *extra: str) -> list[str]:
    return ["features", "--data", str(small["data"]), "-o", str(out), "--families", FAMILIES,
            "--masks", "auto", "--jobs", "1", *extra]


def score_args(small: dict, *extra: str) -> list[str]:
    return ["score", str(small["images"]), "--model", str(small["model"]), "--jobs", "1", *extra]


# ------------------------------------------------------------------ 1. outputs: no data loss
def test_output_symlink_keeps_the_link_and_the_targets_mode(small: dict, tmp_path: Path) -> None:
    """`-o link`: the link stays a link (even a chain of two, relative), its final target gets
    the content atomically, with the target's permission bits; features and score alike."""
    other = tmp_path / "real"
    other.mkdir()
    target = other / "t.csv"
    target.write_text("keep\n")
    os.chmod(target, 0o640)
    (tmp_path / "mid.csv").symlink_to("real/t.csv")
    link = tmp_path / "l.csv"
    link.symlink_to("mid.csv")
    ok(run(*score_args(small, "-o", str(link)), env=small["env"]))
    assert link.is_symlink() and (tmp_path / "mid.csv").is_symlink()
    assert os.readlink(link) == "mid.csv"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
    table = pd.read_csv(target)
    assert len(table) == 3 and table["error"].isna().all()
    assert sorted(p.name for p in other.iterdir()) == ["t.csv"]  # no temporary left

    ptarget = other / "t.parquet"
    ptarget.write_bytes(b"old")
    os.chmod(ptarget, 0o604)
    plink = tmp_path / "f.parquet"
    plink.symlink_to(ptarget)
    ok(run(*features_args(small, plink), env=small["env"]))
    assert plink.is_symlink() and os.readlink(plink) == str(ptarget)
    assert stat.S_IMODE(os.stat(ptarget).st_mode) == 0o604
    assert len(pd.read_parquet(ptarget)) == N_IMAGES
    # a dangling link: its target is created, the link kept
    dangling = tmp_path / "d.csv"
    dangling.symlink_to(other / "new.csv")
    ok(run(*score_args(small, "-o", str(dangling)), env=small["env"]))
    assert dangling.is_symlink() and len(pd.read_csv(other / "new.csv")) == 3


def test_output_device_fifo_and_stdout_written_through(small: dict, tmp_path: Path) -> None:
    """`-o` a character device, a FIFO, `-` or /dev/stdout: written through, never replaced."""
    dev = tmp_path / "null"
    try:
        os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a private /dev/null
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot make a device node here ({exc})")
    for out in (dev, "/dev/null"):
        ok(run(*features_args(small, out), env=small["env"]))
        assert stat.S_ISCHR(os.stat(out).st_mode), out
    assert not list(tmp_path.glob("*.errors.csv")) and not Path("/dev/null.errors.csv").exists()
    ok(run(*score_args(small, "-o", str(dev)), env=small["env"]))
    assert stat.S_ISCHR(os.stat(dev).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]

    fifo = tmp_path / "scores.csv"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    ok(run(*score_args(small, "-o", str(fifo)), env=small["env"]))
    reader.join(30)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert got and got[0].decode().count("\n") == 4  # header + 3 images

    p = subprocess.run([sys.executable, "-m", "hamfeat", *features_args(small, "-")],
                       capture_output=True, env=small["env"], timeout=TIMEOUT)
    assert p.returncode == 0 and p.stdout[:4] == b"PAR1", p.stderr
    p = ok(run(*score_args(small, "-o", "/dev/stdout"), env=small["env"]))
    assert p.stdout.count("\n") == 4 and p.stdout.startswith("path,image_id,")


def test_write_output_unit(tmp_path: Path) -> None:
    """The shared writer in-process: new file mode, folder and socket refused, link loops."""
    new = tmp_path / "n.txt"
    write_output(new, lambda fh: fh.write("x"), binary=False)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(new).st_mode) == 0o666 & ~umask and new.read_text() == "x"
    assert check_output(new).kind == "file" and check_output(tmp_path / "m").kind == "new"
    with pytest.raises(OutputError, match="is a folder"):
        write_output(tmp_path, lambda fh: fh.write("x"), binary=False)
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with pytest.raises(OutputError, match="symbolic links"):
        check_output(tmp_path / "a")
    sock_path = tmp_path / "s.csv"
    with _bind_socket(sock_path):
        with pytest.raises(OutputError, match="socket"):
            write_output(sock_path, lambda fh: fh.write("x"), binary=False)
    assert stat.S_ISSOCK(os.stat(sock_path).st_mode)


def test_every_writer_uses_the_shared_helper() -> None:
    """No second copy of the atomic write: mkstemp and os.replace live in hamfeat/_io.py only."""
    for path in sorted((ROOT / "hamfeat").rglob("*.py")):
        if path.name == "_io.py":
            continue
        src = path.read_text()
        for pattern in (r"\bmkstemp\(", r"os\.replace\(", r"\.replace\(tmp", r"\.write_text\(",
                        r"\.write_bytes\(", r"savefig\(p\b", r"os\.rename\("):
            assert not re.search(pattern, src), f"{path.name}: {pattern}"


# ---------------------------------------------------------- 1. cv never writes into the repo
def test_cv_default_report_dir_is_under_the_current_folder(small: dict, tmp_path: Path) -> None:
    """`hamfeat cv` without --report-dir writes ./reports (cxr14: ./reports/cxr14), never the
    committed benchmarks/reports; --help says so."""
    before = {p: p.stat().st_mtime_ns for p in (ROOT / "benchmarks" / "reports").rglob("*")}
    p = ok(run("cv", "--help"))
    assert "reports" in p.stdout and "current folder" in p.stdout
    ok(run("cv", "--features", str(small["feats"]), "--models", "lr", "--no-ablations",
           env=small["env"], cwd=tmp_path, timeout=600))
    assert (tmp_path / "reports" / "cv_report.md").is_file()
    assert (tmp_path / "reports" / "cv_report.json").is_file()
    after = {p: p.stat().st_mtime_ns for p in (ROOT / "benchmarks" / "reports").rglob("*")}
    assert before == after
    from hamfeat.cli import DEFAULT_REPORT_DIR_CXR14

    assert not Path(DEFAULT_REPORT_DIR_CXR14).is_absolute()
    assert DEFAULT_REPORT_DIR_CXR14.startswith("reports")


def test_makefile_passes_report_dir_to_every_cv() -> None:
    """Every `hamfeat cv` the Makefile runs names its --report-dir explicitly."""
    p = subprocess.run(["make", "-n", "-B", "cv", "cv-repeated", "cv-cxr14",
                        "OUT=/nonexistent/out"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        pytest.skip(f"make -n failed: {p.stderr.strip()}")
    cmds = [line for line in p.stdout.replace("\\\n", " ").splitlines() if "hamfeat cv" in line]
    assert len(cmds) >= 6, p.stdout
    for cmd in cmds:
        assert re.search(r"--report-dir benchmarks/reports(/\S+)?", cmd), cmd


# -------------------------------------------------------------------- 1. the cache never stops
#: Runs the CLI with the cache's writes failing as the OS does: ``enospc`` sends the bytes of
#: any temporary file under TARGET to /dev/full (the kernel answers ENOSPC), ``erofs`` refuses to
#: create it (EROFS), ``vanish`` removes TARGET after the first part is written.
RUNNER = textwrap.dedent(
    """
    import errno, os, shutil, sys, tempfile
    mode, target = sys.argv[1], os.path.abspath(sys.argv[2])
    real = tempfile.mkstemp
    def mkstemp(*a, **k):
        d = os.path.abspath(str(k.get("dir", "")))
        if d.startswith(target) and mode == "enospc":
            fd, tmp = real(*a, **k)
            os.close(fd)
            return os.open("/dev/full", os.O_WRONLY), tmp
        if d.startswith(target) and mode == "erofs":
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), d)
        return real(*a, **k)
    tempfile.mkstemp = mkstemp
    if mode == "vanish":
        from hamfeat import extract
        real_flush = extract._Cache.flush
        def flush(self):
            real_flush(self)
            shutil.rmtree(target, ignore_errors=True)
        extract._Cache.flush = flush
    from hamfeat.cli import main
    sys.exit(main(sys.argv[3:]))
    """
)


def _cache_run(small: dict, tmp_path: Path, cache, mode: str | None = None):
    env = {**small["env"], "HAMFEAT_CACHE_DIR": str(cache), "HAMFEAT_FLUSH_SECONDS": "0"}
    out = tmp_path / "t.parquet"
    args = features_args(small, out)
    if mode is None:
        p = run(*args, env=env)
    else:
        p = run("-c", RUNNER, mode, str(cache), *args, env=env)
    ok(p)
    assert len(pd.read_parquet(out)) == N_IMAGES  # the table is written
    warnings = [line for line in p.stderr.splitlines() if "cache" in line and "WARNING" in line]
    assert len(warnings) == 1, p.stderr  # one line, once
    assert str(cache) in warnings[0] and "without the cache" in warnings[0]
    assert f"{N_IMAGES} images -> {out}" in p.stderr
    return warnings[0]


@pytest.mark.parametrize("kind", ["file", "under_file"])
def test_cache_path_is_a_file(small: dict, tmp_path: Path, kind: str) -> None:
    """A cache path that is a regular file, or lies under one: warned once, table written."""
    f = tmp_path / "cachefile"
    f.write_text("not a folder")
    cache = f if kind == "file" else f / "sub"
    line = _cache_run(small, tmp_path, cache)
    assert "Not a directory" in line or "File exists" in line
    assert f.read_text() == "not a folder"  # never replaced


@pytest.mark.parametrize(("mode", "reason"), [("enospc", "No space left on device"),
                                              ("erofs", "Read-only file system"),
                                              ("vanish", "does not exist")])
def test_cache_write_fails_mid_run(small: dict, tmp_path: Path, mode: str, reason: str) -> None:
    """Full disk, read-only file system, cache folder removed during the run (several flushes
    each): one warning, exit 0, the whole table, no temporary file left in the cache."""
    if mode == "enospc" and not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    cache = tmp_path / "cache"
    line = _cache_run(small, tmp_path, cache, mode)
    assert reason in line
    assert not list(cache.rglob("*.tmp"))


def _mount_tmpfs(path: Path, options: str) -> None:
    path.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.strip()}")


@pytest.mark.parametrize("kind", ["full", "read-only"])
def test_cache_on_a_real_full_or_read_only_file_system(small: dict, tmp_path: Path, kind) -> None:
    """The issue's reproduction: a 64 KiB tmpfs filled up, or a read-only one (skips when
    mounting is not permitted)."""
    cache = tmp_path / "mnt"
    _mount_tmpfs(cache, "size=64k" if kind == "full" else "size=64k,ro")
    try:
        if kind == "full":  # leave almost nothing free
            with open(cache / "filler", "wb") as fh:
                try:
                    fh.write(b"\0" * (64 << 10))
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
        line = _cache_run(small, tmp_path, cache)
        assert ("No space left on device" if kind == "full" else "Read-only file system") in line
    finally:
        subprocess.run(["umount", str(cache)], check=False)


# ------------------------------------------------- 2. no hang: only regular files are images
def _bind_socket(path: Path):
    """A Unix socket bound at ``path`` (bound by its short relative name: AF_UNIX paths are
    limited to 108 bytes)."""
    import socket

    sock = socket.socket(socket.AF_UNIX)
    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        sock.bind(path.name)
    finally:
        os.chdir(cwd)
    return sock


def _specials(folder: Path) -> dict[str, str]:
    """Put a FIFO, a socket, a folder and a broken link named like images in ``folder``;
    return name -> the kind the CLI must report. The socket stays bound until the test ends."""
    os.mkfifo(folder / "y.jpg")
    (folder / "d.jpg").mkdir()
    (folder / "gone.png").symlink_to(folder / "nowhere.png")
    (folder / "fifo_link.jpg").symlink_to(folder / "y.jpg")
    _specials.sockets.append(_bind_socket(folder / "s.jpg"))
    return {"y.jpg": "fifo", "d.jpg": "directory", "gone.png": "broken symbolic link",
            "fifo_link.jpg": "fifo", "s.jpg": "socket"}


_specials.sockets = []


def test_score_fifo_socket_folder_among_images_do_not_hang(small: dict, tmp_path: Path) -> None:
    """`score` on a folder with a FIFO, a socket, a folder and a broken link named *.jpg: each
    one line on stderr with its name and kind, an error row; the images are scored (exit 1)."""
    d = tmp_path / "in"
    shutil.copytree(small["images"], d)
    kinds = _specials(d)
    p = ok(run(*score_args(small)[:1], str(d), *score_args(small)[2:], env=small["env"],
               timeout=60), code=1)
    table = pd.read_csv(__import__("io").StringIO(p.stdout))
    rows = table.set_index(table["path"].map(lambda s: Path(s).name))
    for name, kind in kinds.items():
        lines = [line for line in p.stderr.splitlines() if f"{name}:" in line]
        assert len(lines) == 1 and kind in lines[0], (name, p.stderr)
        assert kind in rows.at[name, "error"]
    good = [n for n in rows.index if n not in kinds]
    assert len(good) == 3 and rows.loc[good, "error"].isna().all()
    assert f"3 of {3 + len(kinds)} images scored" in p.stderr


def test_data_and_features_fifo_among_images_do_not_hang(small: dict, tmp_path: Path) -> None:
    """`data` and `features` on a HAM10000 folder where images (and a mask) are a FIFO, a socket,
    a folder, a broken link: one error line each with the kind, the rest computed (exit 1)."""
    data = tmp_path / "HAM10000"
    shutil.copytree(small["data"], data)
    part = data / "HAM10000_images_part_1"
    names = sorted(p.name for p in part.glob("*.jpg"))[:4]
    for n in names:
        (part / n).unlink()
    os.mkfifo(part / names[0])
    (part / names[1]).mkdir()
    (part / names[2]).symlink_to(part / "nowhere.jpg")
    sock = _bind_socket(part / names[3])
    kinds = dict(zip(names, ["fifo", "directory", "broken symbolic link", "socket"], strict=True))
    mask = data / "HAM10000_segmentations_lesion_tschandl" / "ISIC_0000041_segmentation.png"
    mask.unlink()
    os.mkfifo(mask)
    try:
        p = ok(run("data", "--data", str(data), env=small["env"], timeout=60), code=1)
        for name, kind in kinds.items():
            lines = [line for line in p.stderr.splitlines() if f"{name}:" in line]
            assert len(lines) == 1 and kind in lines[0], (name, p.stderr)
        assert f"{N_IMAGES - 4} images" in p.stdout
        assert f"{mask}: not a regular file (fifo)" in p.stderr  # the mask: a warning
        out = tmp_path / "f.parquet"
        p = ok(run(*features_args(small, out)[:2], str(data), *features_args(small, out)[3:],
                   env=small["env"], timeout=60), code=1)
        for name, kind in kinds.items():
            lines = [line for line in p.stderr.splitlines() if f"{name}:" in line]
            assert len(lines) == 1 and kind in lines[0], (name, p.stderr)
        assert len(pd.read_parquet(out)) == N_IMAGES - 4
    finally:
        sock.close()


def test_read_guard_never_opens_a_fifo_swapped_in(tmp_path: Path, monkeypatch) -> None:
    """A FIFO put in place of a file between the stat and the open is refused by fstat, at
    once (open is non-blocking), in the image reader and the hashing of the cache key."""
    from hamfeat import extract, imageio
    from hamfeat.errors import ImageError

    fifo = tmp_path / "x.jpg"
    os.mkfifo(fifo)
    monkeypatch.setattr(imageio, "special_kind", lambda path: None)  # the stat "saw" a file
    with pytest.raises(ImageError, match=r"not a regular file \(fifo\)"):
        imageio.read_bytes(fifo)
    with pytest.raises(ImageError, match=r"not a regular file \(fifo\)"):
        extract._hash_file(str(fifo))


def test_cxr14_discovery_skips_fifos(tmp_path: Path) -> None:
    """ChestX-ray14 discovery: a FIFO or socket named *.png is one error, never opened;
    `data --dataset cxr14` lists it and finishes."""
    import cv2
    import numpy as np

    root = tmp_path / "cxr"
    (root / "images").mkdir(parents=True)
    rows = ["image_id,finding_labels,patient_id"]
    for i in range(3):
        cv2.imwrite(str(root / "images" / f"0000000{i}_000.png"), np.full((8, 8), 60 * i, np.uint8))
        rows.append(f"0000000{i}_000.png,No Finding,{i}")
    os.mkfifo(root / "images" / "00000009_000.png")
    rows.append("00000009_000.png,Mass,9")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    p = ok(run("data", "--dataset", "cxr14", "--data", str(root), timeout=60), code=1)
    assert "00000009_000.png: not a regular file (fifo); skipped" in p.stderr
    assert "3 images" in p.stdout


def test_score_recursive_follows_linked_folders_without_looping(small: dict, tmp_path: Path):
    """`score --recursive`: a symbolic link to a folder is followed; a link to an ancestor (a
    loop) is listed as not entered, never looped; no image is scored twice."""
    top = tmp_path / "top"
    top.mkdir()
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(small["images"], elsewhere)
    (top / "linked").symlink_to(elsewhere)
    (elsewhere / "loop").symlink_to(top)  # top/linked/loop -> top
    (top / "self").symlink_to(".")
    p = ok(run("-v", "score", str(top), "--recursive", "--model", str(small["model"]),
               "--jobs", "1", env=small["env"], timeout=120))
    table = pd.read_csv(__import__("io").StringIO(p.stdout))
    assert len(table) == 3 and table["path"].str.contains("/linked/").all()
    assert "not entered again" in p.stderr


def test_score_accepts_one_file(small: dict) -> None:
    """`score FILE` scores that file (and a FIFO given as the file fails at once, exit 3)."""
    one = sorted(small["images"].iterdir())[0]
    p = ok(run("score", str(one), "--model", str(small["model"]), "--jobs", "1",
               env=small["env"]))
    table = pd.read_csv(__import__("io").StringIO(p.stdout))
    assert table["path"].tolist() == [str(one)] and table["error"].isna().all()
    fifo = small["root"] / "lone.jpg"
    if not fifo.exists():
        os.mkfifo(fifo)
    p = ok(run("score", str(fifo), "--model", str(small["model"]), "--jobs", "1",
               env=small["env"], timeout=60), code=3)
    assert f"{fifo}: not a regular file (fifo); skipped" in p.stderr


# ------------------------------------------- 3. output paths are checked before any work
def _bad_outputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Output paths that cannot be written -> the reason the CLI must give (one line)."""
    folder = tmp_path / "a_folder"
    folder.mkdir()
    afile = tmp_path / "a_file"
    afile.write_text("x")
    return {
        "folder": (folder, "is a folder"),
        "missing parent": (tmp_path / "missing" / "x.out", "does not exist"),
        "parent is a file": (afile / "x.out", "is not a folder"),
    }


@pytest.mark.parametrize("case", ["folder", "missing parent", "parent is a file"])
def test_bad_output_refused_before_the_work(small: dict, tmp_path: Path, case: str) -> None:
    """`train/score/features -o` a folder, into a missing folder or under a file: exit 3, one
    line naming the output, before anything else is read (the inputs given do not even exist,
    and the error is about the output, not them)."""
    out, reason = _bad_outputs(tmp_path)[case]
    suffix = {"train": ".skops", "score": ".csv", "features": ".parquet"}
    nowhere = tmp_path / "no_such_input"
    for command, args in (
        ("train", ["--features", str(nowhere / "f.parquet"), "--model", "knn"]),
        ("score", [str(nowhere), "--model", str(small["model"])]),
        ("features", ["--data", str(nowhere)]),
    ):
        o = out if case == "folder" else out.with_suffix(suffix[command])
        p = ok(run(command, *args, "-o", str(o), env=small["env"], timeout=60), code=3)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1, p.stderr
        assert lines[0].startswith(f"hamfeat {command}: error: {o}: ") and reason in lines[0]
    assert not out.exists() or out.is_dir()


def test_read_only_output_folder_refused_before_the_work(small: dict, tmp_path: Path) -> None:
    """`-o` into a read-only file system (a read-only tmpfs; skips when mounting is not
    permitted): exit 3 at once, for every command, and `cv --report-dir` too."""
    mnt = tmp_path / "ro"
    _mount_tmpfs(mnt, "size=64k,ro")
    try:
        nowhere = tmp_path / "no_such_input"
        for command, args in (
            ("train", ["--features", str(nowhere), "-o", str(mnt / "m.skops")]),
            ("score", [str(nowhere), "--model", str(small["model"]), "-o", str(mnt / "s.csv")]),
            ("features", ["--data", str(nowhere), "-o", str(mnt / "f.parquet")]),
            ("cv", ["--features", str(nowhere), "--report-dir", str(mnt / "r")]),
        ):
            p = ok(run(command, *args, env=small["env"], timeout=60), code=3)
            assert "Read-only file system" in p.stderr and str(mnt) in p.stderr, p.stderr
            assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


# ------------------------------------------------------- 4. the output suffix is followed
def test_output_suffix_selects_the_format(small: dict, tmp_path: Path) -> None:
    """`features -o x.csv` writes CSV, `-o X.PARQUET` parquet; `score -o x.parquet` writes
    parquet, `-o x.csv` CSV: the same rows and values either way."""
    ref = pd.read_parquet(small["feats"])
    csv = tmp_path / "f.csv"
    ok(run(*features_args(small, csv), env=small["env"]))
    assert csv.read_bytes()[:4] != b"PAR1"
    got = pd.read_csv(csv)
    assert list(got.columns) == list(ref.columns) and len(got) == len(ref)
    pd.testing.assert_frame_equal(got[ref.columns[-5:]], ref[ref.columns[-5:]], check_exact=False)
    upper = tmp_path / "F.PARQUET"
    ok(run(*features_args(small, upper), env=small["env"]))
    assert len(pd.read_parquet(upper)) == len(ref)

    pq, sc = tmp_path / "s.parquet", tmp_path / "s.csv"
    ok(run(*score_args(small, "-o", str(pq)), env=small["env"]))
    ok(run(*score_args(small, "-o", str(sc)), env=small["env"]))
    a, b = pd.read_parquet(pq), pd.read_csv(sc)
    assert list(a.columns) == list(b.columns) and len(a) == len(b) == 3
    assert (a["p_nv"] - b["p_nv"]).abs().max() < 1e-5


@pytest.mark.parametrize("command", ["features", "score"])
def test_unknown_output_suffix_is_a_usage_error(small: dict, tmp_path: Path, command) -> None:
    """An unknown suffix (or none, on a regular file) is exit 2 listing the valid ones, before
    any work (the inputs do not exist); `score --format isic2018 -o x.parquet` too."""
    nowhere = tmp_path / "no_such_input"
    base = (["features", "--data", str(nowhere)] if command == "features"
            else ["score", str(nowhere), "--model", str(small["model"])])
    valid = ".parquet, .csv" if command == "features" else ".csv, .parquet"
    for name in ("x.txt", "x.csv.gz", "x"):
        out = tmp_path / name
        p = ok(run(*base, "-o", str(out), env=small["env"], timeout=60), code=2)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and f"{out}: unknown output suffix" in lines[0], p.stderr
        assert f"(valid: {valid})" in lines[0]
        assert not out.exists()
    if command == "score":
        p = ok(run(*base, "--format", "isic2018", "-o", str(tmp_path / "x.parquet"),
                   env=small["env"], timeout=60), code=2)
        assert "isic2018" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_makefile_features_use_the_learned_segmenter(tmp_path: Path) -> None:
    """`make features` trains the learned segmenter first and builds the training table with
    it; `make train` trains on that table, and the segmenter lands beside the model."""
    out = tmp_path / "out"
    p = subprocess.run(["make", "-n", "-B", "features", "train", f"OUT={out}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        pytest.skip(f"make -n failed: {p.stderr.strip()}")
    lines = p.stdout.replace("\\\n", " ").splitlines()
    seg = [i for i, s in enumerate(lines) if "hamfeat train-segmenter" in s]
    feat = [i for i, s in enumerate(lines) if "hamfeat features" in s]
    train = [i for i, s in enumerate(lines) if "hamfeat train " in s]
    assert seg and feat and train, p.stdout
    assert seg[0] < feat[0] < train[0]
    assert f"-o {out}/segmenter.skops" in lines[seg[0]]
    assert re.search(rf"--masks auto\s+--segmenter {out}/segmenter.skops", lines[feat[0]])
    assert f"-o {out}/features_auto.parquet" in lines[feat[0]]
    assert f"--features {out}/features_auto.parquet -o {out}/model.skops" in lines[train[0]]
