"""``cv_report.md`` and ``cv_report.json`` of ``hamfeat cv --dataset cxr14``, rendered from the
typed result :class:`~hamfeat.evaluation.results.MultilabelReport` (no computation here)."""

from __future__ import annotations

import json

from hamfeat.evaluation.results import MultilabelReport
from hamfeat.render.common import fmt, to_json

__all__ = ["multilabel_json", "multilabel_markdown"]

#: Names shown in the text (those of :mod:`hamfeat.models_multilabel` and :mod:`hamfeat.cxr14`;
#: plain strings here, so that rendering imports no model code).
PATCHKM = "patchkm"
PIXEL_FAMILY = "graypix"


def _f(x: float | None, nd: int = 3) -> str:
    return fmt(x, nd, missing="n/a")


def multilabel_json(r: MultilabelReport) -> str:
    """The X-ray report as ``cv_report.json`` text.

    Parameters
    ----------
    r : MultilabelReport

    Returns
    -------
    str
    """
    return to_json(r.to_dict(), indent=2)


def _ci(c) -> str:
    return "" if not c else f" ({_f(c[0])}-{_f(c[1])})"


def multilabel_markdown(r: MultilabelReport) -> str:
    """The X-ray report as ``cv_report.md`` text (long: one list of the report's sections, in
    order, kept as it was written so the text stays identical).

    Parameters
    ----------
    r : MultilabelReport

    Returns
    -------
    str
    """
    res = r.results
    models = r.models
    best = r.best_model
    t = r.target
    cfg = r.fields.get("feature_config") or {}
    lines = [
        f"# {r.title}",
        "",
        f"Made by `{r.command or 'hamfeat cv --dataset cxr14'}` "
        f"(hamfeat {r.hamfeat_version}, {r.created_utc} UTC, {r.seconds} s).",
        "",
        f"Data: `{r.features}`: {r.n_images} images of {r.n_patients} patients "
        f"(table hash `{r.table_hash[:12]}`). Features: {r.n_features} columns of the "
        f"families {', '.join(r.families)}, computed on the whole image (no lung mask), "
        f"no colour constancy, canonical long side {cfg.get('long_side', '?')} px."
        + (
            f" `{PATCHKM}` reads instead the {PIXEL_FAMILY} columns (the z-scored image on a "
            "64x64 grid) and learns its features from them inside each training fold "
            "(k-means on image patches, Coates et al. 2011)."
            if PATCHKM in models
            else ""
        ),
        "",
        f"CV: {r.cv['n_splits']}-fold, grouped by `patient_id` (StratifiedGroupKFold "
        f"stratified on `abnormal`, seed {r.cv['seed']}); patients on both sides of a split: "
        f"{r.cv['patient_leaks']}. AUCs on the pooled out-of-fold probabilities; 95% "
        f"intervals from {r.cv['n_boot']} bootstrap resamples of patients.",
        "",
        "## Target",
        "",
        f"Abnormal (any finding) vs No Finding AUC >= {t['threshold']:.2f}: "
        f"**{'met' if t['met'] else 'NOT met'}**, best model `{t['model']}` "
        f"{_f(t['value'])}{_ci(res[best].abnormal_auc_ci95)}.",
        "",
        "## Summary",
        "",
        "| model | abnormal AUC (95% CI) | mean AUC over modelled findings (95% CI) | fit s |",
        "| --- | --- | --- | --- |",
    ]
    for m in models:
        x = res[m]
        lines.append(
            f"| {m}{' (best)' if m == best else ''} | {_f(x.abnormal_auc)}"
            f"{_ci(x.abnormal_auc_ci95)} | {_f(x.mean_auc_findings)}"
            f"{_ci(x.mean_auc_findings_ci95)} | {x.fit_seconds} |"
        )
    used = set(models) | (set(r.ensemble_members) if "ensemble" in models else set())
    params = {m: p for m, p in r.model_params.items() if m in used}
    lines += [
        "",
        (
            f"`ensemble` = mean of the probabilities of {', '.join(r.ensemble_members)}. "
            if "ensemble" in models
            else ""
        )
        + f"Parameters changed from the dermoscopy defaults: {json.dumps(params)}.",
        "",
        "## Per-label AUC",
        "",
        "| label | images | patients | " + " | ".join(models) + " |",
        "| --- | --- | --- | " + " | ".join("---" for _ in models) + " |",
    ]
    for lab in r.labels:
        c = r.label_counts[lab]
        lines.append(
            f"| {lab} | {c['images']} | {c['patients']} | "
            + " | ".join(_f(res[m].auc[lab]) for m in models)
            + " |"
        )
    skipped = r.skipped_labels
    lines += [
        "",
        (
            f"Not modelled (fewer than {r.min_images} images): "
            + ", ".join(f"{k} ({v})" for k, v in skipped.items())
            + ". They still count as findings in `abnormal`."
            if skipped
            else f"Every finding present has at least {r.min_images} images."
        ),
        "",
        *_ablation_lines(r),
        *_development_lines(r),
        *_metadata_lines(r),
        "## Comparison with deep learning on the full data set",
        "",
        "| result | mean AUC over the 14 findings | data |",
        "| --- | --- | --- |",
    ]
    for a in r.anchors:
        lines.append(f"| {a['name']} | {a['mean_auc']:.3f} | {a['data']} |")
    lines.append(
        f"| hamfeat `{best}`, this report | {_f(res[best].mean_auc_findings)} "
        f"(over {len(r.labels) - 1} findings) | {r.n_images} images, "
        f"{cfg.get('long_side', '?')} px, patient-grouped CV |"
    )
    lines += [
        "",
        "The numbers are not directly comparable, and the comparison favours the deep models: "
        "they were trained on tens of thousands of images at 224 px or more and tested on a "
        "held-out patient split of the full data set, whereas this is 5-fold CV on "
        f"{r.n_images} images at {cfg.get('long_side', '?')} px (each training fold has "
        "about 4/5 of them, and 20-30 positives for the rarer findings), over "
        f"{len(r.labels) - 1} findings instead of 14. No deep-learning result on this "
        "sample is known to us, so the gap to the anchors mixes the method, the amount of "
        "data and the resolution.",
        "",
    ]
    return "\n".join(lines)


def _ablation_lines(r: MultilabelReport) -> list[str]:
    a = r.fields.get("ablations")
    if not a:
        return []
    full = r.results[a["model"]].abnormal_auc if a["model"] in r.results else None
    out = [
        "## Feature families (abnormal label, `rf`, same splits)",
        "",
        f"All families: {_f(full)}" if full is not None else "",
        "",
        "| variant | abnormal AUC |",
        "| --- | --- |",
    ]
    out += [f"| {k} | {_f(v)} |" for k, v in a["abnormal_auc"].items()]
    return [*out, ""]


def _development_lines(r: MultilabelReport) -> list[str]:
    dev = r.fields.get("development")
    if not dev:
        return []
    seeds = ", ".join(str(s) for s in r.dev_seeds)
    seed = r.cv["seed"]
    pk = next((v for v in dev if v["name"] == PATCHKM), None)
    dev = [v for v in dev if v["name"] != PATCHKM]
    best_dev = max(v["mean_dev"]["ensemble"] for v in dev)
    committed_best = any(
        v["families"] == r.families and v["name"].startswith("committed families (")
        and v["mean_dev"]["ensemble"] >= best_dev
        for v in dev
    )
    out = [
        "## How the configuration was chosen (abnormal label)",
        "",
        f"Feature families and model parameters were compared on the development CV seeds "
        f"{seeds} (the same patient-grouped 5-fold CV with other shuffles), never on the "
        f"reported seed {seed}: with {r.n_images} images, choosing on the reported splits "
        "would make the reported number optimistic. The committed configuration (models on "
        f"{', '.join(r.families)}; lr C={r.model_params.get('lr', {}).get('C', 0.03)}) "
        + (
            "has the best development `ensemble` AUC of the variants below."
            if committed_best
            else "does NOT have the best development `ensemble` AUC of the variants below in "
            "this run (it did in the development runs; the differences are within seed-to-seed "
            "noise)."
        )
        + f" The seed-{seed} column was not used for the choice.",
        "",
        f"| variant | lr dev | rf dev | ensemble dev (mean of seeds {seeds}) | "
        f"ensemble, seed {seed} |",
        "| --- | --- | --- | --- | --- |",
    ]
    for v in dev:
        d, s0 = v["mean_dev"], v["report_seed"]
        out.append(
            f"| {v['name']} | {_f(d['lr'])} | {_f(d['rf'])} | {_f(d['ensemble'])} | "
            f"{_f(s0['ensemble'])} |"
        )
    out += [
        "",
        "Also tried on the development seeds with ad-hoc scripts before the families were "
        "written (not re-run by this command, so no numbers are claimed here): 16x16 "
        "thumbnails, HOG with 8-pixel cells, multi-scale Laplacian-of-Gaussian and gradient "
        "energy on a 4x4 grid, statistics of the darkest (lung-field) pixels, RBF SVMs and "
        "logistic regression with C=0.3. None was clearly better; the Laplacian-of-Gaussian / "
        "gradient-energy grid was about level (within seed-to-seed noise) and was not made a "
        "family. `grayhog` was first left out, because an ad-hoc HOG (per-cell L2-Hys "
        "normalisation) had lowered the development AUC; the first run of this command showed "
        "the committed L1-normalised `grayhog` raising the development `ensemble` AUC (0.620 "
        "to 0.632), so it was added and the report re-run. The seed-0 numbers of both variants "
        "were visible by then; the choice follows the development column.",
        "",
    ]
    if pk:
        per = pk["per_seed"]
        out += [
            "### The learned patch model (`patchkm`)",
            "",
            "| seed | patchkm | rank mean of patchkm, lr, rf |",
            "| --- | --- | --- |",
            *(
                f"| {s}{' (reported)' if int(s) == seed else ''} | {_f(v[PATCHKM])} | "
                f"{_f(v['rank_mean'])} |"
                for s, v in per.items()
            ),
            f"| mean of seeds {seeds} | {_f(pk['mean_dev'][PATCHKM])} | "
            f"{_f(pk['mean_dev']['rank_mean'])} |",
            "",
            "Its settings (100 centroids, 6x6 patches, 4x4 pooling, logistic regression "
            "C=1e-4) were chosen on the development seeds with scratch scripts before the model "
            "was written; those runs also evaluated the chosen setting on seed 0, so that "
            "number was visible, though not used for the choice. Tried there and not kept "
            "(development means of the abnormal AUC, from those scripts, not re-run by this "
            "command): 2x2, 3x3 or 6x6 pooling and 200 centroids with 3x3 pooling "
            "(0.655-0.660 against 0.663), C=3e-4 or 1e-3 (0.650-0.661), histogram "
            "equalisation or CLAHE before the patches (0.652, 0.659), a second dictionary on "
            "the image at half size (0.661), and adding the hand-made lr and rf scores (the "
            "rank mean above).",
            "",
        ]
    return out


def _metadata_lines(r: MultilabelReport) -> list[str]:
    m = r.fields.get("metadata")
    if not m:
        return []
    out = [
        "## Metadata (extra row, not image features)",
        "",
        "Not part of any number above. NIH's View Position is a strong confound: AP (bedside) "
        "films are taken of sicker patients and look different (magnified heart, scapulae over "
        "the lungs), so an image model can score \"abnormal\" partly by recognising AP views.",
        "",
        "| abnormal-vs-normal score | AUC |",
        "| --- | --- |",
    ]
    if "view_ap" in m:
        out.append(f"| view is AP (the raw indicator) | {_f(m['view_ap'])} |")
    out.append(
        f"| logistic regression on {', '.join(m['columns'])} (out of fold, same splits) | "
        f"{_f(m['lr_metadata'])} |"
    )
    for v, x in (m.get("image_within_view") or {}).items():
        out.append(
            f"| image-only `{r.best_model}`, {v} images only ({x['images']} images, "
            f"{x['abnormal']} abnormal) | {_f(x['auc'])} |"
        )
    return [*out, ""]

