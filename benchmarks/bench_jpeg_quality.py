"""Robustness to JPEG re-encoding: quality-100 originals against their quality-75 twins.

For the 35 HAM10000 originals in ``shared/data/ham10000-originals`` and their quality-75
copies in ``shared/data/ham10000/images``, computes every feature on both (automatic masks, as
when scoring, and the given Tschandl masks), and reports per feature family the change between
twins in units of that feature's spread over the whole data set (its standard deviation in the
feature table), the Dice between the twins' automatic masks, and the share of images whose
predicted class is the same for both (target ≥ 90%).

    python benchmarks/bench_jpeg_quality.py [--model M.skops] [--table T.parquet]

Writes benchmarks/reports/jpeg_quality.md and .json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from _common import DEFAULT_DATA, REPORTS, ROOT, machine, write_json
from hamfeat.features import get_families
from hamfeat.imageio import read_image, read_mask, to_canonical
from hamfeat.pipeline import FeatureConfig, compute_features
from hamfeat.segment import segment_lesion

TARGET = 0.90


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--model", type=Path, default=ROOT / "out" / "model.skops")
    ap.add_argument("--table", type=Path, default=ROOT / "out" / "features_auto.parquet")
    args = ap.parse_args()
    originals = sorted((args.data.parent / "ham10000-originals").glob("*.jpg"))
    config = FeatureConfig()
    names = config.feature_names()
    rows = []
    dice = []
    for orig in originals:
        twin = args.data / "images" / orig.name
        mask = read_mask(args.data / "masks" / f"{orig.stem}_segmentation.png")
        a_rgb, b_rgb = read_image(orig), read_image(twin)
        for masks in ("auto", "given"):
            m = None if masks == "auto" else mask
            a = compute_features(a_rgb, m, config).values
            b = compute_features(b_rgb, m, config).values
            rows.append({"image_id": orig.stem, "masks": masks, "q100": a, "q75": b})
        ma = segment_lesion(to_canonical(a_rgb)).mask
        mb = segment_lesion(to_canonical(b_rgb)).mask
        dice.append(2 * (ma & mb).sum() / (ma.sum() + mb.sum()))

    if args.table.is_file():
        table = pd.read_parquet(args.table)
        sigma = table[names].std().to_numpy()
        scale_src = f"standard deviation over {args.table.name} ({len(table)} images)"
    else:
        allv = np.vstack([r["q75"] for r in rows] + [r["q100"] for r in rows])
        sigma = np.nanstd(allv, axis=0)
        scale_src = "standard deviation over the 70 images of this benchmark"
    sigma = np.where(sigma > 0, sigma, np.nan)

    fam_of = np.array([n.split("_")[0] for n in names])
    result = {"machine": machine(), "n_pairs": len(originals), "scale": scale_src, "families": {}}
    for masks in ("auto", "given"):
        d = np.vstack([np.abs(r["q100"] - r["q75"]) / sigma for r in rows if r["masks"] == masks])
        per = {}
        for fam in [f.name for f in get_families()]:
            v = d[:, fam_of == fam]
            v = v[np.isfinite(v)]
            per[fam] = {
                "median": float(np.median(v)),
                "p90": float(np.quantile(v, 0.9)),
                "max": float(v.max()),
            }
        worst = np.nanmedian(d, axis=0)
        order = np.argsort(-np.nan_to_num(worst))[:8]
        result["families"][masks] = per
        result.setdefault("worst_features", {})[masks] = {names[i]: float(worst[i]) for i in order}
    result["auto_mask_dice"] = {"median": float(np.median(dice)), "min": float(np.min(dice))}

    if args.model.is_file():
        from hamfeat.models import load_model

        model = load_model(args.model)
        agree = {}
        for masks in ("auto", "given"):
            sel = [r for r in rows if r["masks"] == masks]
            xa = pd.DataFrame(np.vstack([r["q100"] for r in sel]), columns=names)
            xb = pd.DataFrame(np.vstack([r["q75"] for r in sel]), columns=names)
            pa, pb = model.predict(xa), model.predict(xb)
            agree[masks] = float(np.mean(pa == pb))
        result["prediction_agreement"] = agree
        result["model"] = str(args.model)
    write_json(REPORTS / "jpeg_quality.json", result)

    lines = [
        "# Robustness to JPEG quality (quality 100 vs quality 75 twins)",
        "",
        f"Measured by `{result['machine']['command']}` on {result['machine']['date']}, commit "
        f"{result['machine']['commit']}: {len(originals)} original HAM10000 JPEGs (quality 100) "
        "and their ISIC Archive copies (quality 75).",
        f"Change = |feature(q100) − feature(q75)| in units of the feature's {scale_src}.",
        "",
        "| family | auto masks: median | p90 | given masks: median | p90 |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for fam in result["families"]["auto"]:
        a, g = result["families"]["auto"][fam], result["families"]["given"][fam]
        lines.append(
            f"| {fam} | {a['median']:.3f} | {a['p90']:.3f} | {g['median']:.3f} | {g['p90']:.3f} |"
        )
    lines += [
        "",
        f"Automatic masks of the twins agree with median Dice "
        f"{result['auto_mask_dice']['median']:.3f} (worst {result['auto_mask_dice']['min']:.3f}).",
        "",
        "Least stable features (median change, auto masks): "
        + ", ".join(f"`{k}` {v:.2f}" for k, v in result["worst_features"]["auto"].items()),
    ]
    if "prediction_agreement" in result:
        pa = result["prediction_agreement"]
        met = "met" if pa["auto"] >= TARGET else "NOT met"
        lines += [
            "",
            f"Same predicted class for both twins ({args.model.name}): "
            f"**{pa['auto']:.1%} with automatic masks** ({met}; target ≥ {TARGET:.0%}), "
            f"{pa['given']:.1%} with the given masks.",
        ]
    else:
        lines += ["", f"No model at {args.model}: prediction agreement not measured."]
    (REPORTS / "jpeg_quality.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
