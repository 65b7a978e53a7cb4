"""The example CV page (``benchmarks/reports/html/report.html``) from a real subset.

Takes a seeded subset of the real automatic-mask table (``out/features_auto.parquet``, all
10015 images): 1200 images drawn in HAM10000's class proportions, topped up to 40 images of
each class, written to ``out/features_auto_html_example.parquet``; then runs::

    hamfeat cv --features out/features_auto_html_example.parquet --models lr,knn \\
        --report-dir benchmarks/reports/html --html --data DATA

(the page shows that command). With ablations (lr), for the family chart. A few minutes on
2 cores. Usage: ``python benchmarks/html_example.py [--data DIR] [--table PATH]``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hamfeat.datasets.ham10000 import CLASSES  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ham10000"
N_IMAGES, MIN_PER_CLASS, SEED = 1200, 40, 0


def subset(table: pd.DataFrame) -> pd.DataFrame:
    """The seeded subset: ``N_IMAGES`` in the table's proportions, at least ``MIN_PER_CLASS``
    of each class."""
    rng = np.random.default_rng(SEED)
    pick = set(rng.choice(len(table), N_IMAGES, replace=False).tolist())
    dx = table["dx"].astype(str).to_numpy()
    for c in CLASSES:
        rows = np.flatnonzero(dx == c)
        have = [i for i in rows if i in pick]
        if len(have) < MIN_PER_CLASS:
            rest = np.setdiff1d(rows, have)
            pick |= set(rng.choice(rest, MIN_PER_CLASS - len(have), replace=False).tolist())
    out = table.iloc[sorted(pick)].reset_index(drop=True)
    out.attrs = table.attrs
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--table", default=str(ROOT / "out" / "features_auto.parquet"))
    args = ap.parse_args(argv)
    from hamfeat.cli import main as hamfeat

    args.table = os.path.abspath(args.table)
    args.data = os.path.abspath(args.data)
    sub = subset(pd.read_parquet(args.table))
    path = Path("out") / "features_auto_html_example.parquet"
    (ROOT / path).parent.mkdir(exist_ok=True)
    sub.to_parquet(ROOT / path)
    print(f"{len(sub)} images: {sub['dx'].value_counts().to_dict()}", file=sys.stderr)
    os.chdir(ROOT)
    return hamfeat(
        [
            "cv", "--features", str(path), "--models", "lr,knn",
            "--report-dir", "benchmarks/reports/html", "--html",
            "--data", os.path.relpath(args.data, ROOT),
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
