"""Wall time of the README's main job, ``make features && make train``, and where it goes.

Runs the real Makefile targets in a subprocess into a fresh output folder (``OUT=``) with an
empty feature cache (``HAMFEAT_CACHE_DIR`` in a temporary folder) and the venv installed and
its Numba kernels compiled (a warm-up ``hamfeat --version`` and the repository's own Numba
cache), so the time is what a user pays on the second day, not the install. Each command the
Makefile runs is timed on its own (``make -n`` lists them; they are run one by one in order).

    python benchmarks/bench_main_job.py [--data DIR] [--out DIR] [--jobs 0]

Writes benchmarks/reports/main_job.md and .json. Issue #21's target: <= 3 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import DEFAULT_DATA, REPORTS, ROOT, machine, write_json

TARGET_S = 180.0


def _commands(out: Path, data: Path, jobs: int) -> list[str]:
    p = subprocess.run(
        ["make", "-n", "-B", "features", "train", f"OUT={out}", f"DATA={data}", f"JOBS={jobs}"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    lines = p.stdout.replace("\\\n", " ").splitlines()
    return [ln.strip() for ln in lines if "-m hamfeat" in ln or ln.strip().startswith("mkdir")]


def _step_name(cmd: str) -> str:
    words = shlex.split(cmd)
    if words[0] == "mkdir":
        return "mkdir"
    i = words.index("hamfeat")
    return words[i + 1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--out", default=None,
                    help="output folder of the run (default: a temporary one, removed after)")
    ap.add_argument("--jobs", type=int, default=0)
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(a.out) if a.out else Path(tmp) / "out"
        if out.exists() and any(out.iterdir()):
            sys.exit(f"{out}: not empty; the main job must start from nothing")
        env = {**os.environ, "HAMFEAT_CACHE_DIR": str(Path(tmp) / "cache")}
        py = str(ROOT / ".venv" / "bin" / "python")
        subprocess.run([py, "-m", "hamfeat", "--version"], cwd=ROOT, env=env, check=True,
                       capture_output=True)
        steps = []
        t_all = time.perf_counter()
        for cmd in _commands(out, Path(a.data), a.jobs):
            t0 = time.perf_counter()
            p = subprocess.run(cmd, shell=True, cwd=ROOT, env=env, capture_output=True,
                               text=True)
            seconds = time.perf_counter() - t0
            last = (p.stderr.strip().splitlines() or [""])[-1]
            steps.append({"step": _step_name(cmd), "command": cmd, "seconds": seconds,
                          "returncode": p.returncode, "last_line": last})
            print(f"{steps[-1]['step']}: {seconds:.0f} s", file=sys.stderr, flush=True)
            if p.returncode != 0:
                sys.exit(f"{cmd}: exit {p.returncode}\n{p.stderr[-2000:]}")
        total = time.perf_counter() - t_all
        sizes = {f.name: f.stat().st_size for f in out.iterdir() if f.is_file()}
    res = {"machine": machine(), "jobs": a.jobs, "steps": steps, "total_s": total,
           "target_s": TARGET_S, "met": total <= TARGET_S, "sizes": sizes}
    m = res["machine"]
    md = [
        "# The README's main job: `make features && make train`",
        "",
        f"Measured by `{m['command']}` on {m['date']}, commit {m['commit']}, {m['cpus']} CPUs, "
        f"`JOBS={a.jobs}` (0: all cores): a fresh output folder, an empty feature cache, the venv",
        "installed and the Numba kernels compiled. Each command the Makefile runs, timed alone:",
        "",
        "| step | seconds | share | last line |",
        "| --- | ---: | ---: | --- |",
    ]
    for s in steps:
        md.append(f"| `{s['step']}` | {s['seconds']:.0f} | {s['seconds'] / total:.0%} | "
                  f"{s['last_line'].replace('|', '/')} |")
    md += [f"| **total** | **{total:.0f}** | | |", "",
           f"**Target (issue #21) <= {TARGET_S:.0f} s: {total:.0f} s -> "
           f"{'met' if res['met'] else 'NOT met'}.**", "",
           "Files written: "
           + ", ".join(f"`{k}` {v / 1e6:.1f} MB" for k, v in sorted(sizes.items())) + ".", ""]
    write_json(REPORTS / "main_job.json", res)
    (REPORTS / "main_job.md").write_text("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
