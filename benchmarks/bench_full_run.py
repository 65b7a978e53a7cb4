"""Wall time of ``hamfeat features`` on the whole HAM10000 set (10015 images), 2 workers.

Runs the real command in a subprocess three ways: with an empty feature cache and an empty
Numba cache (a first run on a fresh install), with an empty feature cache but compiled kernels
(the issue's target: ≤ 30 s), and again with the feature cache filled (nothing to compute).

    python benchmarks/bench_full_run.py [--data DIR] [--jobs 2]

Writes benchmarks/reports/features_full_run.md and .json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import DEFAULT_DATA, REPORTS, machine, write_json

TARGET_S = 30.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        out = tmp / "features.parquet"
        cmd = [
            sys.executable,
            "-m",
            "hamfeat",
            "features",
            "--data",
            str(args.data),
            "-o",
            str(out),
            "--jobs",
            str(args.jobs),
        ]
        plans = [
            ("cold: empty Numba and feature caches", tmp / "numba_cold", tmp / "cache_cold"),
            ("warm kernels, empty feature cache", tmp / "numba_cold", tmp / "cache_warm"),
            ("feature cache filled (rerun)", tmp / "numba_cold", tmp / "cache_warm"),
        ]
        for label, numba_dir, cache in plans:
            env = {**os.environ, "NUMBA_CACHE_DIR": str(numba_dir), "HAMFEAT_CACHE_DIR": str(cache)}
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            dt = time.perf_counter() - t0
            if proc.returncode not in (0, 1):
                sys.exit(f"hamfeat features failed:\n{proc.stderr}")
            runs[label] = {"seconds": dt, "summary": proc.stderr.strip().splitlines()[-1]}
    warm = runs["warm kernels, empty feature cache"]["seconds"]
    result = {
        "machine": machine(),
        "jobs": args.jobs,
        "runs": runs,
        "target_s": TARGET_S,
        "target_met": warm <= TARGET_S,
    }
    write_json(REPORTS / "features_full_run.json", result)
    lines = [
        "# `hamfeat features` on all 10015 HAM10000 images",
        "",
        f"Measured by `{result['machine']['command']}` on {result['machine']['date']}, commit "
        f"{result['machine']['commit']}, {result['machine']['cpus']} CPUs, `--jobs {args.jobs}`, "
        "given masks, default features; wall time of the whole command.",
        "",
        "| run | seconds | images / s |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| {k} | {v['seconds']:.1f} | {10015 / v['seconds']:.0f} |" for k, v in runs.items()]
    lines += [
        "",
        f"**Target ≤ {TARGET_S:.0f} s with compiled kernels: {warm:.1f} s → "
        f"{'met' if warm <= TARGET_S else 'NOT met'}.**",
        "",
        "Last line printed by each run: " + "; ".join(f"`{v['summary']}`" for v in runs.values()),
    ]
    (REPORTS / "features_full_run.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
