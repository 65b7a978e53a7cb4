"""Stability of the explanations: quality-100 originals against their quality-75 twins.

For the HAM10000 originals in ``shared/data/ham10000-originals`` and their quality-75 copies in
``shared/data/ham10000/images`` (same ids), explains both with ``hamfeat explain``'s code
(automatic masks, as when scoring) and compares the top-5 features that moved each prediction
toward its class (:func:`hamfeat.explain.explain_file`): their overlap ``|A ∩ B| / 5`` (mean,
minimum, per class of the data set's label), with the top-3 feature families, and whether the
prediction and the reference class are the same.

    python benchmarks/bench_explain.py --model out/model.skops [--data DIR] [--top 5]

Use the model ``make train`` ships (``hamfeat train --model ensemble`` on
``out/features_auto.parquet``). Writes benchmarks/reports/explain_stability.md and .json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from _common import DEFAULT_DATA, REPORTS, ROOT, machine, write_json
from hamfeat.explain import explain_file
from hamfeat.models import load_model


def _overlap(a: list[str], b: list[str], k: int) -> float:
    return len(set(a[:k]) & set(b[:k])) / float(k)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--model", type=Path, default=ROOT / "out" / "model.skops")
    ap.add_argument("--top", type=int, default=5)
    ap.add_argument("--out", type=Path, default=REPORTS / "explain_stability")
    args = ap.parse_args()
    originals = sorted((args.data.parent / "ham10000-originals").glob("ISIC_*.jpg"))
    if not originals:
        raise SystemExit(f"no originals under {args.data.parent / 'ham10000-originals'}")
    meta = pd.read_csv(args.data / "HAM10000_metadata.csv").set_index("image_id")
    t0 = time.perf_counter()
    model = load_model(args.model)
    load_s = time.perf_counter() - t0
    k = int(args.top)
    rows, seconds = [], []
    for orig in originals:
        twin = args.data / "images" / orig.name
        t0 = time.perf_counter()
        a = explain_file(model, orig, top=k).explanation
        b = explain_file(model, twin, top=k).explanation
        seconds.append((time.perf_counter() - t0) / 2)
        fa, fb = [f.name for f in a.toward], [f.name for f in b.toward]
        rows.append(
            {
                "image_id": orig.stem,
                "dx": str(meta.loc[orig.stem, "dx"]) if orig.stem in meta.index else "?",
                "pred_q100": a.predicted,
                "pred_q75": b.predicted,
                "ref_q100": a.reference,
                "ref_q75": b.reference,
                "same_prediction": a.predicted == b.predicted,
                "same_reference": a.reference == b.reference,
                "top_q100": fa,
                "top_q75": fb,
                "overlap": _overlap(fa, fb, k),
                "top1_same": bool(fa and fb and fa[0] == fb[0]),
                "family_top3_overlap": _overlap(
                    [f.name for f in a.families], [f.name for f in b.families], 3
                ),
                "log_ratio_q100": a.log_ratio,
                "log_ratio_q75": b.log_ratio,
            }
        )
        print(f"{orig.stem}: overlap {rows[-1]['overlap']:.1f}", flush=True)
    df = pd.DataFrame(rows)
    comparable = df[df["same_prediction"] & df["same_reference"]]
    per_class = (
        df.groupby("dx")
        .agg(
            n=("overlap", "size"),
            mean=("overlap", "mean"),
            min=("overlap", "min"),
            family_top3=("family_top3_overlap", "mean"),
        )
        .reset_index()
    )
    summary = {
        "n_pairs": len(df),
        "top": k,
        "overlap_mean": float(df["overlap"].mean()),
        "overlap_median": float(df["overlap"].median()),
        "overlap_min": float(df["overlap"].min()),
        "overlap_mean_same_prediction_and_reference": (
            float(comparable["overlap"].mean()) if len(comparable) else None
        ),
        "n_same_prediction_and_reference": len(comparable),
        "top1_same": float(df["top1_same"].mean()),
        "family_top3_overlap_mean": float(df["family_top3_overlap"].mean()),
        "same_prediction": float(df["same_prediction"].mean()),
        "explain_seconds_per_image": float(np.median(seconds)),
        "model_load_seconds": load_s,
    }
    model_info = {
        "path": str(args.model),
        "model": model.extra.get("model"),
        "n_images": model.extra.get("n_images"),
        "features_path": model.extra.get("features_path"),
        "has_training_stats": model.training_stats is not None,
    }
    out = args.out
    write_json(
        out.with_suffix(".json"),
        {
            "machine": machine(),
            "model": model_info,
            "summary": summary,
            "per_class": per_class.to_dict("records"),
            "pairs": df.to_dict("records"),
        },
    )
    s = summary
    lines = [
        "# Stability of the explanations: quality-100 vs quality-75 JPEG twins",
        "",
        f"`{machine()['command']}` — commit {machine()['commit']}, {machine()['date']}.",
        "",
        f"Model: `{args.model.name}` ({model_info['model']}, trained on "
        f"{model_info['n_images']} images of `{Path(str(model_info['features_path'])).name}`). "
        f"{s['n_pairs']} image pairs: the originals of `ham10000-originals` (quality 100) "
        "and the same ids in `ham10000/images` (quality 75), automatic masks, as `hamfeat "
        "score` / `hamfeat explain` use them. Explanation: the features with the largest "
        "positive effect on log(p_pred / p_ref) when set to their training median "
        "(`hamfeat/explain.py`).",
        "",
        "| measure | value |",
        "| --- | ---: |",
        f"| top-{k} overlap, mean | {s['overlap_mean']:.3f} |",
        f"| top-{k} overlap, median | {s['overlap_median']:.3f} |",
        f"| top-{k} overlap, minimum | {s['overlap_min']:.3f} |",
        f"| top-{k} overlap, pairs with the same prediction and reference "
        f"({s['n_same_prediction_and_reference']}) | "
        + (
            "n/a"
            if s["overlap_mean_same_prediction_and_reference"] is None
            else f"{s['overlap_mean_same_prediction_and_reference']:.3f}"
        )
        + " |",
        f"| same top-1 feature | {s['top1_same']:.3f} |",
        f"| top-3 family overlap, mean | {s['family_top3_overlap_mean']:.3f} |",
        f"| same predicted class | {s['same_prediction']:.3f} |",
        f"| explain time per image (median, s) | {s['explain_seconds_per_image']:.2f} |",
        "",
        "Per class (the data set's label):",
        "",
        "| class | pairs | mean overlap | min overlap | top-3 family overlap |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in per_class.to_dict("records"):
        lines.append(
            f"| {r['dx']} | {r['n']} | {r['mean']:.3f} | {r['min']:.3f} | {r['family_top3']:.3f} |"
        )
    lines += [
        "",
        "The originals are 5 images per class, so each per-class row rests on 5 pairs. "
        "Times were measured on a shared 2-core machine with other jobs running: noisy.",
        "",
        "Pairs (top features, quality 100 / quality 75):",
        "",
        "| image | class | predicted | overlap | top q100 | top q75 |",
        "| --- | --- | --- | ---: | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['image_id']} | {r['dx']} | {r['pred_q100']}/{r['pred_q75']} | "
            f"{r['overlap']:.1f} | {', '.join(r['top_q100'])} | {', '.join(r['top_q75'])} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out.with_suffix('.md')} and .json")


if __name__ == "__main__":
    main()
