"""End-to-end speed of ``hamfeat score`` on 1000 real 600x450 JPEGs, start-up included.

Runs the real command line in a subprocess on a folder of links to real HAM10000 images:
once with an empty Numba cache (the first run on a fresh install: every kernel compiles) and
then warm (kernels loaded from the cache), each timed from process start to exit.

    python benchmarks/bench_score.py [--data DIR] [--model out/model.skops] [--n 1000] [--jobs 2]

Writes benchmarks/reports/score_speed.md and .json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import DEFAULT_DATA, REPORTS, ROOT, machine, write_json

TARGET_S = 15.0


def timed(cmd: list[str], env: dict) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    return time.perf_counter() - t0, proc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--model", type=Path, default=ROOT / "out" / "model.skops")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--warm-runs", type=int, default=2)
    args = ap.parse_args()
    files = sorted((args.data / "images").glob("*.jpg"))
    files = files[:: max(1, len(files) // args.n)][: args.n]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        for f in files:
            (folder / f.name).symlink_to(f.resolve())
        out = Path(tmp) / "scores.csv"
        cmd = [
            sys.executable,
            "-m",
            "hamfeat",
            "score",
            str(folder),
            "--model",
            str(args.model),
            "-o",
            str(out),
            "--jobs",
            str(args.jobs),
        ]
        env = {**os.environ, "NUMBA_CACHE_DIR": str(Path(tmp) / "numba")}
        cold, proc = timed(cmd, env)
        if proc.returncode != 0:
            sys.exit(f"hamfeat score failed ({proc.returncode}):\n{proc.stderr}")
        warm = []
        for _ in range(args.warm_runs):
            t, proc = timed(cmd, env)
            warm.append(t)
        n_rows = sum(1 for _ in out.open()) - 1
        t_help, _ = timed([sys.executable, "-m", "hamfeat", "--version"], env)
    best = min(warm)
    result = {
        "machine": machine(),
        "n_images": len(files),
        "rows_written": n_rows,
        "jobs": args.jobs,
        "model": str(args.model),
        "cold_s": cold,
        "warm_s": warm,
        "warm_best_s": best,
        "python_startup_s": t_help,
        "images_per_s_warm": len(files) / best,
        "target_s": TARGET_S,
        "target_met": best <= TARGET_S,
    }
    write_json(REPORTS / "score_speed.json", result)
    lines = [
        "# `hamfeat score` speed, end to end",
        "",
        f"Measured by `{result['machine']['command']}` on {result['machine']['date']}, commit "
        f"{result['machine']['commit']}, {result['machine']['cpus']} CPUs, `--jobs {args.jobs}`: "
        f"{len(files)} real 600x450 HAM10000 JPEGs, wall time from process start to exit "
        "(start-up, model loading, decoding, segmentation, features, prediction, CSV).",
        "",
        "| run | seconds | images / s |",
        "| --- | ---: | ---: |",
        f"| cold: empty Numba cache (first run after install) | {cold:.1f} "
        f"| {len(files) / cold:.0f} |",
    ]
    lines += [f"| warm run {i + 1} | {t:.1f} | {len(files) / t:.0f} |" for i, t in enumerate(warm)]
    lines += [
        f"| `python -m hamfeat --version` (interpreter start-up alone) | {t_help:.2f} | |",
        "",
        f"**Target ≤ {TARGET_S:.0f} s warm: {best:.1f} s → "
        f"{'met' if best <= TARGET_S else 'NOT met'}.**",
    ]
    (REPORTS / "score_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
