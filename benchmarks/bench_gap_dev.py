"""The automatic-mask gap (issue #17): which table and members close it, on development splits.

Every table here has automatic masks for every image (the condition of a new image, which
never has a mask): for example the classical segmenter's table (``make features``, classical)
and the learned segmenter's (``--segmenter``: out-of-fold masks for the training images). For
each ``table:member`` candidate the script computes lesion-grouped out-of-fold probabilities
on the **development** seeds (default 1 and 2; seed 0, the published folds, is refused) and
caches them in ``--cache`` (keyed by the table's hash, the member and the seeds), so that a
re-run only fits what is new. An ensemble ``a+b`` is the mean of its candidates' out-of-fold
probabilities (the same as refitting a soft-voting ensemble per fold, as
:func:`hamfeat.evaluate.average_oof` says).

Two decision rules, both cross-fitted (chosen per test fold on the other folds only):

* **alpha rule**: the shipped ``argmax p / prior**alpha``, alpha the best balanced accuracy
  with accuracy >= 0.80 on the other folds;
* **per-class rule**: the same alpha plus one offset per class on the log scale (nv fixed at
  0), fitted on the other folds by coordinate ascent over a grid, keeping accuracy >= 0.80.

Per lesion: probabilities averaged over a lesion's images, alpha rule cross-fitted.

``--train-extra name=base+path`` adds candidates that train on a ``--tables`` table *and* a
second table of the same images with other masks (for example the data set's own masks,
``make features-given``): a training fold takes both rows of each of its images, a test fold
only the base table's row, so the test condition stays the automatic mask of a new image.

Caveat, stated in the report: the learned segmenter's out-of-fold masks come from its own
lesion-grouped folds (seed 0 of ``train-segmenter``), not from these classifier folds; a
test image's mask never saw its lesion, but a training image's mask may come from a
segmenter that saw the test lesion's image and mask (never its diagnosis).

Run: ``make gap-dev`` (the command is in the Makefile and in the report's first line).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import itertools
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from _common import machine, write_md_json
from hamfeat.datasets.ham10000 import CLASSES
from hamfeat.errors import HamfeatError
from hamfeat.evaluation.metrics import ACC_FLOOR, ALPHAS
from hamfeat.evaluation.metrics import alpha_curve as _curve
from hamfeat.evaluation.metrics import evaluate_oof as _evaluate_oof
from hamfeat.evaluation.metrics import pick_alpha as _pick_alpha
from hamfeat.evaluation.oof import OOF, average_oof, oof_predictions
from hamfeat.evaluation.splits import Split, grouped_splits
from hamfeat.models import make_model, model_names
from hamfeat.tables import load_table, table_hash

#: Offsets of the per-class rule, on the log scale.
OFFSETS = np.round(np.arange(-1.5, 1.51, 0.1), 2)
NV = CLASSES.index("nv")


# --------------------------------------------------------------------------------------------
# out-of-fold predictions, cached
# --------------------------------------------------------------------------------------------


def _stacked(table: pd.DataFrame, extra: pd.DataFrame, splits) -> tuple[pd.DataFrame, list]:
    """The table with ``extra``'s rows below it (the same images, other masks): a training fold
    takes both copies of its images, a test fold only the first table's row."""
    n = len(table)
    both = pd.concat([table, extra[table.columns]], ignore_index=True)
    return both, [Split(s.seed, s.fold, np.concatenate([s.train, s.train + n]), s.test)
                  for s in splits]


#: make_model options a variant may not set, and why.
RESERVED = {
    "alpha": "is make_model's decision-rule exponent (cross-fitted here anyway), not the "
             "model's own parameter of that name (the MLP's L2 penalty cannot be set this way)",
    "random_state": "is the development seed's",
    "n_jobs": "is --jobs",
}


def _split_top(text: str, sep: str) -> list[str]:
    """``text`` split at ``sep`` outside brackets and quotes (``(64, 32)`` stays whole)."""
    parts, depth, quote, cur = [], 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return parts


def parse_variants(spec: str) -> dict[str, tuple[str, dict, str]]:
    """``name=base:key=value;key=value,...`` -> ``{name: (base, make_model kwargs, tag)}``.

    A value is a Python literal (``(512,)``, ``0.1``, ``'balanced'``, ``None``); a key is an
    option of :func:`~hamfeat.models.make_model` (``class_weight``, ``resample``, ...) or one
    of the model's parameters. ``tag`` (a hash of the text) keys the cache, so that changing
    a variant's settings never reuses its old predictions.

    >>> parse_variants("mlp512=mlp:hidden_layer_sizes=(512,);max_iter=500")["mlp512"][:2]
    ('mlp', {'hidden_layer_sizes': (512,), 'max_iter': 500})
    """
    out: dict[str, tuple[str, dict, str]] = {}
    for part in filter(None, _split_top(spec, ",")):
        name, sep, rest = part.partition("=")
        base, sep2, settings = rest.partition(":")
        if not sep or not sep2 or not name or not base:
            raise ValueError(f"--variant: expected name=base:key=value;..., got {part!r}")
        kwargs: dict = {}
        for kv in filter(None, _split_top(settings, ";")):
            k, sep3, v = kv.partition("=")
            if not sep3:
                raise ValueError(f"--variant {name}: expected key=value, got {kv!r}")
            try:
                val = ast.literal_eval(v)
            except (ValueError, SyntaxError):
                raise ValueError(f"--variant {name}: {k}={v!r} is not a Python literal") from None
            if k in RESERVED:
                raise ValueError(f"--variant {name}: {k!r} {RESERVED[k]}")
            kwargs[k] = val
        out[name] = (base, kwargs, hashlib.sha1(part.encode()).hexdigest()[:8])
    return out


def _cached_oof(name: str, member: str, table: pd.DataFrame, thash: str, splits, seeds,
                cache: Path, jobs: int, extra: pd.DataFrame | None = None,
                variants: dict | None = None) -> OOF:
    base, kwargs, tag = (variants or {}).get(member, (member, {}, ""))
    key = f"{member}-{tag}" if tag else member
    path = cache / f"{name}_{key}_s{'-'.join(map(str, seeds))}_{thash}.npz"
    if path.exists():
        z = np.load(path)
        return OOF(f"{name}:{member}", list(seeds), z["proba"], z["prior"], z["fold"],
                   float(z["fit_seconds"]))
    t0 = time.perf_counter()
    est = make_model(base, random_state=seeds[0], **kwargs)
    if extra is None:
        o = oof_predictions({member: est}, table, splits, n_jobs=jobs)[member]
    else:
        both, both_splits = _stacked(table, extra, splits)
        o = oof_predictions({member: est}, both, both_splits, n_jobs=jobs,
                            require_complete=False)[member]
        n = len(table)
        o = OOF(o.name, o.seeds, o.proba[:, :n], o.prior[:, :n], o.fold[:, :n], o.fit_seconds)
    o.name = f"{name}:{member}"
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, proba=o.proba, prior=o.prior, fold=o.fold, fit_seconds=o.fit_seconds)
    tmp.replace(path)
    print(f"{name} {member}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return o


# --------------------------------------------------------------------------------------------
# the per-class rule
# --------------------------------------------------------------------------------------------


def _acc_bal(y: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    ok = pred == y
    counts = np.bincount(y, minlength=len(CLASSES))
    present = counts > 0
    rec = np.bincount(y[ok], minlength=len(CLASSES))[present] / counts[present]
    return float(ok.mean()), float(rec.mean())


def _score(y: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    return _acc_bal(y, np.argmax(scores, axis=1))


def fit_offsets(y: np.ndarray, logp: np.ndarray, logprior: np.ndarray, alpha: float,
                passes: int = 2) -> np.ndarray:
    """Per-class log offsets (nv 0) maximising balanced accuracy at accuracy >= the floor.

    Coordinate ascent over :data:`OFFSETS`, starting at 0 (the alpha rule); a move is kept only
    if it raises balanced accuracy and keeps accuracy at or above the floor (or, when the start
    is below the floor, raises accuracy + balanced accuracy). For one class the arg-max of the
    other classes is computed once; a trial offset only decides between it and the class
    (ties go to the lower index, as ``argmax`` does).
    """
    base = logp - alpha * logprior
    off = np.zeros(len(CLASSES))
    acc, bal = _score(y, base)
    feasible = acc >= ACC_FLOOR
    best = bal if feasible else acc + bal
    for _ in range(passes):
        for k in range(len(CLASSES)):
            if k == NV:
                continue
            other = base + off
            other[:, k] = -np.inf
            om, oa = other.max(axis=1), other.argmax(axis=1)
            sk = base[:, k]
            for v in OFFSETS:
                t = sk + v
                pred = np.where((t > om) | ((t == om) & (k < oa)), k, oa)
                a, b = _acc_bal(y, pred)
                val = b if feasible else a + b
                if (not feasible or a >= ACC_FLOOR) and val > best + 1e-12:
                    best = val
                    off = off.copy()
                    off[k] = v
    return off


def per_class_rule(y: np.ndarray, proba: np.ndarray, prior: np.ndarray, fold: np.ndarray) -> dict:
    """The per-class rule, cross-fitted over the folds of one seed."""
    logp = np.log(np.clip(proba, 1e-300, None))
    logprior = np.log(np.clip(prior, 1e-12, None))
    scores = np.zeros_like(proba)
    offsets = {}
    for f in np.unique(fold):
        other, this = fold != f, fold == f
        alpha = _pick_alpha(_curve(y[other], proba[other], prior[other]))
        off = fit_offsets(y[other], logp[other], logprior[other], alpha)
        scores[this] = logp[this] - alpha * logprior[this] + off
        offsets[int(f)] = [float(x) for x in off]
    acc, bal = _score(y, scores)
    pred = np.argmax(scores, axis=1)
    recall = {c: float(np.mean(pred[y == i] == i)) for i, c in enumerate(CLASSES)}
    return {"accuracy": acc, "balanced_accuracy": bal, "recall": recall,
            "offsets_per_fold": offsets}


# --------------------------------------------------------------------------------------------
# one candidate's row
# --------------------------------------------------------------------------------------------


def evaluate(oof: OOF, y: np.ndarray, groups: np.ndarray) -> dict:
    ev = _evaluate_oof(oof, y, groups).to_dict()
    per_seed = []
    for si, seed in enumerate(oof.seeds):
        r = ev["per_seed"][si]
        img = r["image"]["crossfit"]
        per_seed.append({
            "seed": seed,
            "alpha": {"accuracy": img["accuracy"], "balanced_accuracy": img["balanced_accuracy"],
                      "macro_auc": img["macro_auc"],
                      "recall": {c: img["per_class"][c]["recall"] for c in CLASSES}},
            "per_class": per_class_rule(y, oof.proba[si], oof.prior[si], oof.fold[si]),
            "lesion": {k: r["lesion"]["crossfit"][k] for k in ("accuracy", "balanced_accuracy")},
        })

    def mean(f):
        return float(np.mean([f(p) for p in per_seed]))

    def std(f):
        return float(np.std([f(p) for p in per_seed]))

    return {
        "per_seed": per_seed,
        "alpha_acc": mean(lambda p: p["alpha"]["accuracy"]),
        "alpha_bal": mean(lambda p: p["alpha"]["balanced_accuracy"]),
        "alpha_bal_std": std(lambda p: p["alpha"]["balanced_accuracy"]),
        "pc_acc": mean(lambda p: p["per_class"]["accuracy"]),
        "pc_bal": mean(lambda p: p["per_class"]["balanced_accuracy"]),
        "pc_bal_std": std(lambda p: p["per_class"]["balanced_accuracy"]),
        "auc": mean(lambda p: p["alpha"]["macro_auc"]),
        "lesion_acc": mean(lambda p: p["lesion"]["accuracy"]),
        "lesion_bal": mean(lambda p: p["lesion"]["balanced_accuracy"]),
        "recall": {c: mean(lambda p, c=c: p["alpha"]["recall"][c]) for c in CLASSES},
        "fit_s": oof.fit_seconds,
    }


def ship_curve(oof: OOF, y: np.ndarray) -> dict:
    """The alpha rule's trade-off curve, mean over the seeds, and the exponent ``make train``
    should store: the best mean balanced accuracy with mean accuracy >= the floor."""
    curves = [_curve(y, oof.proba[i], oof.prior[i]) for i in range(len(oof.seeds))]
    acc = np.mean([c["accuracy"] for c in curves], axis=0)
    bal = np.mean([c["balanced_accuracy"] for c in curves], axis=0)
    ok = acc >= ACC_FLOOR
    i = int(np.flatnonzero(ok)[np.argmax(bal[ok])]) if ok.any() else int(np.argmax(acc + bal))
    return {"candidate": oof.name, "alpha": [float(a) for a in ALPHAS],
            "accuracy": acc.tolist(), "balanced_accuracy": bal.tolist(),
            "ship_alpha": float(ALPHAS[i])}


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------


def _markdown(res: dict) -> str:
    m = res["machine"]
    tables = ", ".join(
        f"`{k}` = `{t['path']}` ({t['n_columns']} columns, mask methods {t['mask_methods']})"
        for k, t in res["tables"].items()
    )
    out = [
        "# The automatic-mask gap: levers on development splits",
        "",
        f"Generated by `{m['command']}` (commit {m['commit']}, {m['date']}, {m['cpus']} cores).",
        "",
        "Automatic-mask tables only (the condition of a new image); lesion-grouped stratified",
        f"5-fold CV on the **development** seeds {res['seeds']}; the seed-0 folds of the",
        f"published reports were not used. Tables: {tables}.",
        "",
        "A candidate is `table:member`; `a+b` is the mean of their out-of-fold probabilities.",
        "**alpha rule**: the shipped `argmax p / prior**alpha`, alpha cross-fitted (chosen per",
        "test fold on the other folds, accuracy floor 0.80). **per-class rule**: the same alpha",
        "plus one offset per class on the log scale (nv fixed at 0), fitted by coordinate ascent",
        "on the other folds, so also cross-fitted. Mean over seeds, `±` the standard deviation.",
        "Lesion: probabilities averaged over a lesion's images, alpha rule cross-fitted.",
        "A learned-segmenter table's training-image masks are out-of-fold over the segmenter's",
        "own lesion-grouped folds, not these: a test image's mask never saw its lesion, but a",
        "training image's mask may come from a segmenter that saw the test lesion's pixels and",
        "mask (never its diagnosis).",
        "",
        *(
            [
                "Variants (a registered model with other settings, `--variant`): "
                + "; ".join(f"`{n}` = `{v['base']}` with `{v['options']}`"
                            for n, v in res.get("variants", {}).items())
                + ".",
                "",
            ]
            if res.get("variants")
            else []
        ),
        "| candidate | alpha rule acc. / bal. | per-class rule acc. / bal. | macro AUC | "
        "lesion acc. / bal. | fit s (all folds) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    order = sorted(res["rows"], key=lambda k: -res["rows"][k]["alpha_bal"])
    for k in order:
        r = res["rows"][k]
        out.append(
            f"| {k} | {r['alpha_acc']:.3f} / {r['alpha_bal']:.3f} ± {r['alpha_bal_std']:.3f} | "
            f"{r['pc_acc']:.3f} / {r['pc_bal']:.3f} ± {r['pc_bal_std']:.3f} | {r['auc']:.3f} | "
            f"{r['lesion_acc']:.3f} / {r['lesion_bal']:.3f} | {r['fit_s']:.0f} |"
        )
    out += ["", "Recall per class (alpha rule):", "",
            "| candidate | " + " | ".join(CLASSES) + " |",
            "| --- | " + " | ".join("---:" for _ in CLASSES) + " |"]
    for k in order:
        rec = res["rows"][k]["recall"]
        out.append(f"| {k} | " + " | ".join(f"{rec[c]:.2f}" for c in CLASSES) + " |")
    cv = res.get("ship")
    if cv:
        out += [
            "", f"Decision rule of `{cv['candidate']}` (the `--ship` candidate), mean over the "
            "seeds; the exponent to store in the model is the best balanced accuracy with "
            f"accuracy >= {ACC_FLOOR}: **alpha = {cv['ship_alpha']:.2f}**.", "",
            "| alpha | " + " | ".join(f"{a:.2f}" for a in cv["alpha"][::2]) + " |",
            "| --- | " + " | ".join("---:" for _ in cv["alpha"][::2]) + " |",
            "| accuracy | " + " | ".join(f"{x:.3f}" for x in cv["accuracy"][::2]) + " |",
            "| balanced acc. | "
            + " | ".join(f"{x:.3f}" for x in cv["balanced_accuracy"][::2]) + " |",
        ]
    out += ["", f"Wall time: {res['wall_s']:.0f} s (cached out-of-fold predictions are reused).",
            ""]
    return "\n".join(out)


def _parse_tables(spec: str, flag: str = "--tables") -> dict[str, str]:
    out = {}
    for part in spec.split(","):
        name, sep, path = part.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"{flag}: expected name=path, got {part!r}")
        out[name] = path
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tables", required=True, help="name=path,... automatic-mask tables")
    ap.add_argument("--members", default="hgb,mlp", help="members fitted on every table")
    ap.add_argument("--combos", default="",
                    help="extra ensembles of three or more candidates, e.g. a:hgb+b:mlp+b:hgb "
                    "(every single candidate and every pair is always reported)")
    ap.add_argument("--ship", default="",
                    help="the candidate to ship (e.g. learned:hgb+learned:mlp): its mean "
                    "trade-off curve and the exponent to store")
    ap.add_argument("--seeds", default="1,2", help="development seeds (never 0)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--cache", default="out/oof", help="folder of cached out-of-fold predictions")
    ap.add_argument("--train-extra", default="",
                    help="name=base+path,...: candidate tables that train on a --tables table "
                    "plus another table of the same images (e.g. the given masks) and are "
                    "tested on the base table's rows only")
    ap.add_argument("--extra-members", default="",
                    help="members fitted on the --train-extra tables (default: --members)")
    ap.add_argument("--variant", default="",
                    help="name=base:key=value;...,...: extra members, a registered model with "
                    "other settings (e.g. mlp512=mlp:hidden_layer_sizes=(512,)), usable in "
                    "--members and --extra-members")
    ap.add_argument("--report", required=True, help="Markdown report (JSON beside it)")
    a = ap.parse_args(argv)
    try:
        seeds = [int(s) for s in a.seeds.split(",")]
    except ValueError:
        ap.error(f"--seeds: integers separated by commas, got {a.seeds!r}")
    if 0 in seeds:
        ap.error("--seeds: seed 0 gives the published folds; choose on other seeds")
    t_all = time.perf_counter()
    try:
        paths = _parse_tables(a.tables)
        extras = _parse_tables(a.train_extra, "--train-extra") if a.train_extra else {}
        variants = parse_variants(a.variant)
    except ValueError as exc:
        ap.error(str(exc))
    known = set(model_names()) | set(variants)
    for flag, val in (("--members", a.members), ("--extra-members", a.extra_members)):
        bad = [m for m in filter(None, val.split(",")) if m not in known]
        if bad:
            ap.error(f"{flag}: unknown member(s) {bad}; choose from {sorted(known)}")
    bad = [b for b, _, _ in variants.values() if b not in model_names()]
    if bad:
        ap.error(f"--variant: unknown base model(s) {bad}; choose from {sorted(model_names())}")
    for spec in extras.values():
        base, sep, xpath = spec.partition("+")
        if not sep or base not in paths or not xpath:
            ap.error(f"--train-extra: expected name=base+path with base one of {list(paths)}")
    try:
        tables = {k: load_table(p) for k, p in paths.items()}
    except HamfeatError as exc:
        sys.exit(f"bench_gap_dev: {exc}")
    first = next(iter(tables.values()))
    ids = first["image_id"].astype(str)
    for k, t in tables.items():  # align every table on the first one's rows
        if set(t["image_id"].astype(str)) != set(ids):
            sys.exit(f"{paths[k]}: not the same images as {next(iter(paths.values()))}")
        tables[k] = t.set_index(t["image_id"].astype(str)).loc[ids].reset_index(drop=True)
    y_str = first["dx"].astype(str).to_numpy()
    groups = first["lesion_id"].astype(str).to_numpy()
    y = np.array([CLASSES.index(c) for c in y_str])
    splits = grouped_splits(y_str, groups, seeds=seeds)
    members = a.members.split(",")
    res: dict = {"machine": machine(), "seeds": seeds, "tables": {}, "rows": {},
                 "variants": {n: {"base": b, "options": kw} for n, (b, kw, _) in variants.items()}}
    oofs: dict[str, OOF] = {}
    for k, t in tables.items():
        thash = table_hash(t)
        res["tables"][k] = {"path": paths[k], "hash": thash, "n_columns": int(t.shape[1]),
                            "mask_methods": sorted(t["mask_method"].astype(str).unique())
                            if "mask_method" in t else []}
        for mem in members:
            oofs[f"{k}:{mem}"] = _cached_oof(k, mem, t, thash, splits, seeds, Path(a.cache),
                                             a.jobs, variants=variants)
    for k, spec in extras.items():
        base, _, xpath = spec.partition("+")
        try:
            x = load_table(xpath)
        except HamfeatError as exc:
            sys.exit(f"bench_gap_dev: {exc}")
        if set(x["image_id"].astype(str)) != set(ids):
            sys.exit(f"{xpath}: not the same images as {paths[base]}")
        x = x.set_index(x["image_id"].astype(str)).loc[ids].reset_index(drop=True)
        thash = table_hash(tables[base]) + "x" + table_hash(x)
        res["tables"][k] = {"path": f"train on {paths[base]} + {xpath}, test on {paths[base]}",
                            "hash": thash, "n_columns": int(tables[base].shape[1]),
                            "mask_methods": sorted(set(tables[base]["mask_method"].astype(str))
                                                   | set(x["mask_method"].astype(str)))}
        for mem in a.extra_members.split(",") if a.extra_members else members:
            oofs[f"{k}:{mem}"] = _cached_oof(k, mem, tables[base], thash, splits, seeds,
                                             Path(a.cache), a.jobs, extra=x,
                                             variants=variants)
    names = list(oofs)
    combos = [(n,) for n in names] + list(itertools.combinations(names, 2))
    for c in filter(None, a.combos.split(",")):
        parts = tuple(c.split("+"))
        bad = [p for p in parts if p not in oofs]
        if bad:
            ap.error(f"--combos: unknown candidate(s) {bad}; choose from {names}")
        combos.append(parts)
    ship = tuple(filter(None, a.ship.split("+")))
    if any(p not in oofs for p in ship):
        ap.error(f"--ship: unknown candidate(s) in {a.ship!r}; choose from {names}")
    for combo in combos + ([ship] if ship and ship not in combos else []):
        name = "+".join(combo)
        oof = oofs[combo[0]] if len(combo) == 1 else average_oof(name, [oofs[c] for c in combo])
        if combo == ship:
            res["ship"] = ship_curve(oof, y)
        res["rows"][name] = evaluate(oof, y, groups)
        r = res["rows"][name]
        print(f"{name}: {r['alpha_acc']:.3f} / {r['alpha_bal']:.3f}", file=sys.stderr)
    res["wall_s"] = time.perf_counter() - t_all
    write_md_json(a.report, res, _markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
