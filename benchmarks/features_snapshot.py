"""Feature values of real images, saved for a bit-for-bit comparison across code versions.

    python benchmarks/features_snapshot.py save OUT.npz [--n 60] [--data DIR]
    python benchmarks/features_snapshot.py compare A.npz B.npz

``save`` runs :func:`hamfeat.pipeline.compute_features` (default configuration) on every
(10015 // n)-th HAM10000 image, once with its given mask and once with the automatic one.
``compare`` counts values whose bits differ (NaN equal to NaN only if bit-identical) and
lists the features concerned with their largest relative difference. To compare two
versions, save with each on PYTHONPATH (e.g. a ``git worktree`` of the old revision).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from _common import DEFAULT_DATA


def save(out: Path, n: int, data: Path) -> None:
    from hamfeat.imageio import decode_image, read_mask
    from hamfeat.pipeline import FeatureConfig, compute_features

    cfg = FeatureConfig()
    files = sorted((data / "images").glob("*.jpg"))[:: max(1, 10015 // n)][:n]
    rows = {}
    for f in files:
        rgb = decode_image(f.read_bytes())
        mask = read_mask(data / "masks" / f"{f.stem}_segmentation.png")
        rows[f"{f.stem}_given"] = compute_features(rgb, mask, cfg).values
        rows[f"{f.stem}_auto"] = compute_features(rgb, None, cfg).values
    np.savez(out, names=np.array(cfg.feature_names()), **rows)
    print(f"{out}: {len(files)} images x 2 masks, {len(cfg.feature_names())} features")


def compare(a_path: Path, b_path: Path) -> int:
    a, b = np.load(a_path), np.load(b_path)
    if list(a["names"]) != list(b["names"]) or set(a.files) != set(b.files):
        print("different feature names or images")
        return 1
    names = a["names"]
    n_diff, worst = 0, {}
    for key in a.files:
        if key == "names":
            continue
        x, y = a[key], b[key]
        for i in np.flatnonzero(x.view(np.uint64) != y.view(np.uint64)):
            n_diff += 1
            rel = abs(x[i] - y[i]) / max(abs(x[i]), 1e-300)
            worst[names[i]] = max(worst.get(names[i], 0.0), rel)
    n_vals = (len(a.files) - 1) * len(names)
    print(f"{len(a.files) - 1} rows x {len(names)} features: {n_diff} of {n_vals} values differ")
    for name, rel in sorted(worst.items(), key=lambda t: -t[1]):
        print(f"  {name}: max relative difference {rel:.3g}")
    return 1 if n_diff else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("save")
    s.add_argument("out", type=Path)
    s.add_argument("--n", type=int, default=60)
    s.add_argument("--data", type=Path, default=DEFAULT_DATA)
    c = sub.add_parser("compare")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    args = ap.parse_args()
    if args.cmd == "save":
        save(args.out, args.n, args.data)
    else:
        sys.exit(compare(args.a, args.b))


if __name__ == "__main__":
    main()
