"""Patient-grouped cross-validation of the one-vs-rest models for chest X-rays (ChestX-ray14).

Cross-validation is 5-fold, grouped by ``patient_id`` (no patient on both sides of a split;
:class:`~sklearn.model_selection.StratifiedGroupKFold` stratified on ``abnormal``, fixed seed).
AUCs are computed on the pooled out-of-fold probabilities, with a 95% interval from a bootstrap
over patients. The ``ensemble`` is the mean of its members' probabilities (soft voting), computed
from their out-of-fold predictions without refitting. The models come from the model
registry (:func:`hamfeat.models.make_multilabel_model`), the table and its labels from
:mod:`hamfeat.models_multilabel`; splits, out-of-fold fitting and metrics are shared with the
multiclass CV (:mod:`hamfeat.evaluation.splits`, :mod:`~hamfeat.evaluation.oof`,
:mod:`~hamfeat.evaluation.metrics`).
"""

from __future__ import annotations

import datetime as _dt
import platform
import time
from collections.abc import Callable, Sequence
from os import PathLike
from typing import Any

import numpy as np
import pandas as pd

from hamfeat._io import check_output_dir, write_output
from hamfeat._version import __version__
from hamfeat._warnings import quiet
from hamfeat.datasets.cxr14 import PIXEL_FAMILY, label_matrix
from hamfeat.errors import DatasetError
from hamfeat.evaluation.metrics import auc as _auc
from hamfeat.evaluation.metrics import multilabel_metrics
from hamfeat.evaluation.oof import oof_multilabel
from hamfeat.evaluation.results import MultilabelReport
from hamfeat.evaluation.splits import check_grouped, patient_splits
from hamfeat.models import (
    CXR_ENSEMBLE,
    GRAY_FAMILY_NAMES,
    MULTILABEL,
    feature_columns,
    make_multilabel_model,
    task_params,
)
from hamfeat.models_multilabel import (
    ABNORMAL,
    CXR_MODELS,
    MIN_IMAGES,
    PATCHKM,
    check_pixels,
    cxr_families,
    load_cxr_table,
    modellable_labels,
)
from hamfeat.render.common import fmt
from hamfeat.tables import table_config, table_hash

__all__ = ["ABNORMAL_TARGET", "ANCHORS", "DEV_SEEDS", "cross_validate_multilabel",
           "run_cv_multilabel"]

#: Target of issue #8: patient-grouped 5-fold CV on the 1000-image sample, abnormal AUC.
ABNORMAL_TARGET = 0.70
#: CV seeds on which the feature families and model parameters were compared (never the
#: report's seed 0); the report repeats that comparison (``abnormal`` only).
DEV_SEEDS: tuple[int, ...] = (1, 2, 3)
#: The feature configuration before issue #8's second round, kept in the comparison.
PREVIOUS_FAMILIES: tuple[str, ...] = ("grayhist", "grayglcm", "graylbp", "graygrid")
#: Published deep-learning results on the full data set (official patient split, 14 findings).
ANCHORS = (
    {
        "name": "Wang et al. 2017 (ChestX-ray8/14, CVPR)",
        "mean_auc": 0.738,
        "data": "full data set (112,120 images), patient-wise split",
    },
    {
        "name": "CheXNet (Rajpurkar et al. 2017, DenseNet-121)",
        "mean_auc": 0.841,
        "data": "full data set (112,120 images) at 224 px, patient-wise split",
    },
)


@quiet("cv")
def run_cv_multilabel(
    features_path: str | PathLike[str],
    report_dir: str | PathLike[str],
    *,
    models: Sequence[str] = CXR_MODELS,
    n_splits: int = 5,
    seed: int = 0,
    min_images: int = MIN_IMAGES,
    n_jobs: int = 2,
    n_boot: int = 200,
    ablations: bool = True,
    dev_seeds: Sequence[int] = DEV_SEEDS,
    command: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Patient-grouped CV of the one-vs-rest models; writes ``cv_report.json`` and ``.md``.

    Parameters
    ----------
    features_path : path-like
        A table from ``hamfeat features --dataset cxr14``.
    report_dir : path-like
        Where the reports go (created).
    models : sequence of str
        Model names (``ensemble``: mean of :data:`CXR_ENSEMBLE`'s probabilities).
    n_splits, seed : int
        Folds and the shuffling seed of :func:`patient_splits`.
    min_images : int
        Findings with fewer images are not modelled (listed in the report).
    n_jobs : int
        Folds fitted in parallel.
    n_boot : int
        Patient bootstrap resamples for the 95% intervals (0: none).
    ablations : bool
        Also fit :data:`ABLATION_MODEL` on ``abnormal`` alone with each feature family alone and
        with each left out (same splits).
    dev_seeds : sequence of int
        Repeat, on ``abnormal`` only, the comparison of feature sets and parameters made on
        these CV seeds (plus ``seed``); empty: skip it.
    command : str, optional
        The command line that produced the report (recorded in it).
    progress : callable, optional
        Called with one-line progress messages.

    Returns
    -------
    dict
        The report (as written to ``cv_report.json``).
    """
    say = progress or (lambda msg: None)
    t_start = time.perf_counter()
    report_dir = check_output_dir(report_dir, create=False)  # before any work; created on write
    table = load_cxr_table(features_path)
    check_pixels(table, features_path, models)
    report = cross_validate_multilabel(
        table, features_path=features_path, models=models, n_splits=n_splits, seed=seed,
        min_images=min_images, n_jobs=n_jobs, n_boot=n_boot, ablations=ablations,
        dev_seeds=dev_seeds, command=command, progress=say, t_start=t_start,
    )
    from hamfeat.render.cv_report_multilabel import multilabel_json, multilabel_markdown

    blob = multilabel_json(report)
    check_output_dir(report_dir)  # created now that there is a report to write
    write_output(report_dir / "cv_report.json", lambda fh: fh.write(blob), binary=False)
    md = multilabel_markdown(report)
    write_output(report_dir / "cv_report.md", lambda fh: fh.write(md), binary=False)
    return report.to_dict()


def _oof_results(table, labels, Y, groups, splits, fams, models, seed, n_jobs, n_boot, say):
    """The out-of-fold probabilities and the metrics of each model."""
    base = [m for m in models if m != "ensemble"]
    if "ensemble" in models:
        base += [m for m in CXR_ENSEMBLE if m not in base]
    estimators = {m: make_multilabel_model(m, random_state=seed, families=fams) for m in base}
    say(
        f"{len(table)} images, {len(set(groups))} patients, {len(labels)} labels, "
        f"{len(estimators)} models x {len(splits)} folds"
    )
    oof, seconds = oof_multilabel(estimators, table, Y, splits, n_jobs=n_jobs)
    if "ensemble" in models:
        oof["ensemble"] = np.mean([oof[m] for m in CXR_ENSEMBLE], axis=0)
        seconds["ensemble"] = sum(seconds[m] for m in CXR_ENSEMBLE)
    results = {}
    for m in models:
        results[m] = multilabel_metrics(labels, Y, oof[m], groups, n_boot, seed,
                                        abnormal=ABNORMAL)
        results[m].fit_seconds = round(seconds[m], 1)
        say(
            f"{m}: abnormal AUC {fmt(results[m].abnormal_auc, missing='n/a')}, mean AUC over "
            f"findings {fmt(results[m].mean_auc_findings, missing='n/a')}"
        )
    return oof, results


def _label_counts(table, labels, groups) -> dict[str, dict[str, Any]]:
    counts_df = label_matrix(table["finding_labels"])
    return {
        c: {
            "images": int(counts_df[c].sum()),
            "patients": int(pd.Series(groups[counts_df[c].to_numpy() == 1]).nunique()),
            "modelled": c in labels,
        }
        for c in counts_df.columns
    }


def cross_validate_multilabel(
    table: pd.DataFrame,
    *,
    features_path: str | PathLike[str],
    models: Sequence[str] = CXR_MODELS,
    n_splits: int = 5,
    seed: int = 0,
    min_images: int = MIN_IMAGES,
    n_jobs: int = 2,
    n_boot: int = 200,
    ablations: bool = True,
    dev_seeds: Sequence[int] = DEV_SEEDS,
    command: str | None = None,
    progress: Callable[[str], None] | None = None,
    t_start: float | None = None,
) -> MultilabelReport:
    """The patient-grouped CV of a checked X-ray table, as a typed result.

    Parameters are those of :func:`run_cv_multilabel` (``table``: the table read from
    ``features_path``; ``t_start``: the ``perf_counter`` time the run started).

    Returns
    -------
    MultilabelReport
    """
    say = progress or (lambda msg: None)
    t_start = time.perf_counter() if t_start is None else t_start
    labels_df, skipped = modellable_labels(table, min_images)
    labels = list(labels_df.columns)
    Y = labels_df.to_numpy(np.int64)
    groups = table["patient_id"].astype(str).to_numpy()
    y_abn = labels_df[ABNORMAL].to_numpy()
    if y_abn.min() == y_abn.max():
        raise DatasetError(f"{features_path}: every image is {'ab' * int(y_abn[0])}normal")
    n_patients = len(set(groups))
    if n_patients < n_splits:
        raise DatasetError(f"{features_path}: {n_patients} patients, fewer than {n_splits} folds")
    splits = patient_splits(y_abn, groups, n_splits=n_splits, seed=seed)
    leaks = check_grouped(splits, groups)
    fams = cxr_families(table)
    oof, results = _oof_results(table, labels, Y, groups, splits, fams, models, seed, n_jobs,
                                n_boot, say)
    best = max(models, key=lambda m: results[m].abnormal_auc)
    ablation = None
    if ablations and len(fams) > 1:
        ablation = _ablations(table, y_abn, splits, fams, seed, n_jobs)
        say(
            "ablations (abnormal, rf): "
            + ", ".join(f"{k} {v:.3f}" for k, v in ablation["abnormal_auc"].items())
        )
    development = None
    if dev_seeds:
        development = _development(  # the table has graypix when patchkm is asked for
            table, y_abn, groups, fams, n_splits, seed, dev_seeds, n_jobs,
            with_patchkm=PATCHKM in models,
        )
        say(
            "development comparison (abnormal): "
            + ", ".join(
                f"{v['name']} {v['mean_dev'].get('ensemble', v['mean_dev'].get(PATCHKM)):.3f}"
                for v in development
            )
        )
    meta = _metadata_rows(table, y_abn, splits, oof[best][:, labels.index(ABNORMAL)], seed)
    best_auc = results[best].abnormal_auc
    fields = {
        "title": "ChestX-ray14: patient-grouped cross-validation of one-vs-rest models",
        "created_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "command": command,
        "hamfeat_version": __version__,
        "python": platform.python_version(),
        "features": str(features_path),
        "table_hash": table_hash(table),
        "feature_config": table_config(table),
        "families": list(fams),
        "n_features": len(feature_columns(table.columns, fams)),
        "n_images": len(table),
        "n_patients": n_patients,
        "cv": {
            "n_splits": n_splits,
            "seed": seed,
            "grouped_by": "patient_id",
            "stratified_on": ABNORMAL,
            "patient_leaks": leaks,
            "n_boot": n_boot,
        },
        "min_images": min_images,
        "labels": labels,
        "skipped_labels": skipped,
        "label_counts": _label_counts(table, labels, groups),
        "models": list(models),
        "ensemble_members": list(CXR_ENSEMBLE),
        "model_params": task_params(MULTILABEL),
        "ablations": ablation,
        "development": development,
        "dev_seeds": list(dev_seeds),
        "metadata": meta,
        "best_model": best,
        "target": {
            "metric": "abnormal-vs-normal AUC, patient-grouped 5-fold CV",
            "threshold": ABNORMAL_TARGET,
            "model": best,
            "value": best_auc,
            "met": bool(best_auc >= ABNORMAL_TARGET),
        },
        "anchors": list(ANCHORS),
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    return MultilabelReport(results, fields)


def _development(
    table, y, groups, fams, n_splits: int, seed: int, dev_seeds, n_jobs: int,
    with_patchkm: bool = False,
):
    """Abnormal AUC of the candidate configurations on the development seeds and ``seed``.

    Variants: the previous families with the previous LR (C=0.03); the previous families; the
    committed families ``fams``; and ``fams`` without ``grayhog`` (or with it, when the table
    has it and ``fams`` does not). Models lr, rf and their ``ensemble`` (mean probability).
    With ``with_patchkm``, also the :data:`PATCHKM` model and ``rank_mean``, the mean of the
    ranks of its scores and of the committed lr and rf scores (a combination of the two kinds
    of features).
    """
    y = np.asarray(y)
    have = {f for f in GRAY_FAMILY_NAMES if feature_columns(table.columns, (f,))}
    old_lr = {**task_params(MULTILABEL), "lr": {}}
    variants = []
    prev = tuple(f for f in PREVIOUS_FAMILIES if f in have)
    if prev and prev != tuple(fams):
        variants.append(("previous families, previous lr C=0.03", prev, old_lr))
        variants.append(("previous families", prev, None))
    variants.append(("committed families (" + ", ".join(fams) + ")", tuple(fams), None))
    if "grayhog" in have and "grayhog" not in fams:
        variants.append(("committed families + grayhog", (*fams, "grayhog"), None))
    elif "grayhog" in fams and len(fams) > 1:
        no_hog = tuple(f for f in fams if f != "grayhog")
        variants.append(("committed families without grayhog", no_hog, None))
    seeds = [int(seed), *[int(s) for s in dev_seeds if int(s) != int(seed)]]
    committed = next(n for n, _, _ in variants if n.startswith("committed families ("))
    out = []
    per_seed = {}
    for s in seeds:
        splits = patient_splits(y, groups, n_splits=n_splits, seed=s)
        est = {
            (name, m): make_multilabel_model(m, random_state=s, families=f, params=p)
            for name, f, p in variants
            for m in CXR_ENSEMBLE
        }
        if with_patchkm:
            est[(PATCHKM, PATCHKM)] = make_multilabel_model(PATCHKM, random_state=s)
        oof, _ = oof_multilabel(est, table, y[:, None], splits, n_jobs=n_jobs)
        for name, _, _ in variants:
            probs = {m: oof[(name, m)][:, 0] for m in CXR_ENSEMBLE}
            probs["ensemble"] = np.mean(list(probs.values()), axis=0)
            per_seed[(name, s)] = {m: _auc(y, p) for m, p in probs.items()}
        if with_patchkm:
            pk = oof[(PATCHKM, PATCHKM)][:, 0]
            ranks = [_ranks(pk)] + [_ranks(oof[(committed, m)][:, 0]) for m in CXR_ENSEMBLE]
            per_seed[(PATCHKM, s)] = {
                PATCHKM: _auc(y, pk),
                "rank_mean": _auc(y, np.mean(ranks, axis=0)),
            }
    rows = [(name, list(f), [*CXR_ENSEMBLE, "ensemble"]) for name, f, _ in variants]
    if with_patchkm:
        rows.append((PATCHKM, [PIXEL_FAMILY], [PATCHKM, "rank_mean"]))
    for name, f, models in rows:
        out.append(
            {
                "name": name,
                "families": f,
                "report_seed": {m: per_seed[(name, seeds[0])][m] for m in models},
                "mean_dev": {
                    m: float(np.mean([per_seed[(name, s)][m] for s in seeds[1:]]))
                    if len(seeds) > 1 else float("nan")
                    for m in models
                },
                "per_seed": {str(s): per_seed[(name, s)] for s in seeds},
            }
        )
    return out


def _ranks(p: np.ndarray) -> np.ndarray:
    """Ranks scaled to (0, 1] (ties averaged), for averaging scores of different scales."""
    return pd.Series(np.asarray(p)).rank().to_numpy() / len(p)


def _metadata_matrix(table: pd.DataFrame) -> pd.DataFrame | None:
    """The metadata columns of an X-ray table as numbers (``None`` when it has none)."""
    cols = {}
    if "age" in table:
        cols["age"] = pd.to_numeric(table["age"], errors="coerce")
    if "sex" in table:
        cols["male"] = (table["sex"].astype(str).str.upper() == "M").astype(float)
    if "view" in table:
        cols["view_ap"] = (table["view"].astype(str).str.upper() == "AP").astype(float)
    if "follow_up" in table:
        cols["follow_up"] = pd.to_numeric(table["follow_up"], errors="coerce")
    return pd.DataFrame(cols).reset_index(drop=True) if cols else None


def _metadata_rows(table, y, splits, image_oof, seed: int) -> dict | None:
    """Abnormal AUC from metadata alone (never mixed into the image-only numbers).

    ``view_ap``: the AUC of "AP view" as a score; ``lr_metadata``: out-of-fold logistic
    regression on age, sex, AP view and follow-up number (same splits); ``image_within_view``:
    the image-only model's out-of-fold AUC inside the PA and the AP images separately (how much
    of its AUC is the view confound).
    """
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = _metadata_matrix(table)
    if X is None:
        return None
    y = np.asarray(y)
    p = np.full(len(y), np.nan)
    for s in splits:
        m = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True),
                          StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
        m.fit(X.iloc[s.train], y[s.train])
        p[s.test] = m.predict_proba(X.iloc[s.test])[:, 1]
    out = {"columns": list(X.columns), "lr_metadata": _auc(y, p)}
    if "view_ap" in X:
        ap = X["view_ap"].to_numpy()
        out["view_ap"] = _auc(y, ap)
        out["image_within_view"] = {
            v: {"images": int((ap == k).sum()), "abnormal": int(y[ap == k].sum()),
                "auc": _auc(y[ap == k], np.asarray(image_oof)[ap == k])}
            for v, k in (("PA", 0.0), ("AP", 1.0))
        }
    return out


#: The model of the family ablations.
ABLATION_MODEL = "rf"


def _ablations(table, y, splits, fams, seed: int, n_jobs: int) -> dict:
    """Abnormal AUC of :data:`ABLATION_MODEL` with each family alone and each left out."""
    variants = {f"only {f}": (f,) for f in fams}
    variants.update({f"without {f}": tuple(g for g in fams if g != f) for f in fams})
    est = {k: make_multilabel_model(ABLATION_MODEL, random_state=seed, families=v)
           for k, v in variants.items()}
    oof, _ = oof_multilabel(est, table, np.asarray(y)[:, None], splits, n_jobs=n_jobs)
    return {
        "model": ABLATION_MODEL,
        "label": ABNORMAL,
        "abnormal_auc": {k: _auc(np.asarray(y), oof[k][:, 0]) for k in variants},
    }

