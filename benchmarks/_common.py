"""Helpers shared by the benchmark scripts (not part of the package)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "benchmarks" / "reports"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ham10000"


def machine() -> dict:
    """What the numbers were measured on."""
    import numba
    import numpy

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = "?"
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "numba": numba.__version__,
        "cpus": os.cpu_count(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }


def best_of(fn, repeat: int = 3) -> float:
    """Best wall time of ``repeat`` calls, seconds."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def steady_allocator() -> bool:
    """Keep large temporaries on the heap (glibc): timings of steady-state, not page faults.

    A fresh process gives every array above glibc's mmap threshold (128 KiB at first) new
    pages, so a function that allocates big temporaries (scikit-image's rgb2lab, ~3x)
    runs much slower than in a long-running process whose threshold has already grown.
    Fixing the thresholds makes both sides of a comparison run as in steady state.
    Returns False where it does not apply (not glibc).
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name or platform.system() != "Linux":
        return False
    try:
        libc = ctypes.CDLL(name)
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, 64 << 20) == 1
        ok &= libc.mallopt(m_trim_threshold, 128 << 20) == 1
        return bool(ok)
    except (OSError, AttributeError):
        return False


def write_md_json(report: Path | str, res: dict, md: str) -> None:
    """A study's Markdown report and its JSON beside it (``.json``), each written atomically."""
    from hamfeat._io import write_output

    report = Path(report)
    blob = json.dumps(res, indent=1) + "\n"
    write_output(report.with_suffix(".json"), lambda fh: fh.write(blob), binary=False)
    write_output(report, lambda fh: fh.write(md), binary=False)
