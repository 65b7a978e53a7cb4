"""Multi-label models and patient-grouped cross-validation for chest X-rays (ChestX-ray14).

One binary model per label, fitted one-vs-rest
(:class:`~sklearn.multiclass.OneVsRestClassifier` around the usual
:func:`hamfeat.models.make_model` pipelines): one label per finding with at least
:data:`MIN_IMAGES` images, plus ``abnormal`` (any finding vs ``No Finding``). Labels with fewer
images are not modelled and the report says so.

Cross-validation is 5-fold, grouped by ``patient_id`` (no patient on both sides of a split;
:class:`~sklearn.model_selection.StratifiedGroupKFold` stratified on ``abnormal``, fixed seed).
AUCs are computed on the pooled out-of-fold probabilities, with a 95% interval from a bootstrap
over patients. The ``ensemble`` is the mean of its members' probabilities (soft voting), computed
from their out-of-fold predictions without refitting.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import platform
import time
from collections.abc import Callable, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold

from hamfeat._version import __version__
from hamfeat._warnings import quiet
from hamfeat.datasets.cxr14 import CXR_MODEL_FAMILIES, PIXEL_FAMILY, label_matrix
from hamfeat.errors import DatasetError
from hamfeat.evaluate import Split, check_grouped, table_config, table_hash
from hamfeat.models import (
    GRAY_FAMILY_NAMES,
    MODEL_NAMES,
    feature_columns,
    make_model,
    note_undeclared,
    save_model,
)

__all__ = [
    "ABNORMAL",
    "ABNORMAL_TARGET",
    "CXR_MODELS",
    "MIN_IMAGES",
    "PATCHKM",
    "load_cxr_table",
    "make_multilabel_model",
    "modellable_labels",
    "oof_multilabel",
    "patient_splits",
    "run_cv_multilabel",
    "train_multilabel",
]

log = logging.getLogger("hamfeat")

#: The "any finding vs No Finding" label.
ABNORMAL = "abnormal"
#: Findings with fewer images than this are not modelled.
MIN_IMAGES = 25
#: Target of issue #8: patient-grouped 5-fold CV on the 1000-image sample, abnormal AUC.
ABNORMAL_TARGET = 0.70
#: Models evaluated by default. ``svm`` and ``hgb`` are left out (both can be asked for by
#: name): on the sample neither beats rf with the seven families (abnormal AUC: hgb 0.605,
#: svm 0.500 against rf 0.643), hgb fitting is slow (112 s of fit time for 13 labels x 5
#: folds on 2 idle cores), and the calibrated SVM ranks at chance out of fold; see
#: benchmarks/reports/cxr14/svm_hgb/. ``patchkm`` is the learned patch model
#: (:data:`PATCHKM`).
CXR_MODELS: tuple[str, ...] = ("lr", "rf", "knn", "ensemble", "patchkm")
#: The learned-feature model: :class:`~hamfeat.encoders.PatchKMeansEncoder` on the ``graypix``
#: family, standard-scaled, then one L2 logistic regression per label (balanced class weights).
#: The encoder (the k-means dictionary) is fitted once per training set and shared by every
#: label. Its settings (100 centroids, 6x6 patches, 4x4 pooling, C=1e-4) were chosen on the
#: development seeds (:data:`DEV_SEEDS`) with scratch scripts before this model was written.
PATCHKM = "patchkm"
PATCHKM_ENCODER: dict[str, Any] = {"n_clusters": 100, "patch_size": 6, "pool": 4}
PATCHKM_C = 1e-4
#: Members of the ``ensemble`` for X-rays (mean of their probabilities).
CXR_ENSEMBLE: tuple[str, ...] = ("rf", "lr")
#: Per-model parameters for X-rays, changed from the dermoscopy defaults. RF: 150 trees with
#: leaves of at least 5 images, half the fitting time of the default (300 trees, leaves of 2)
#: for 13 labels x 5 folds; a smoother forest for ~800 training images. SVM: C=1 instead of 10
#: (a softer margin for 800 images and 256 features). LR: C=0.003 instead of 0.03 (stronger
#: regularisation for ~400 features; chosen on the development seeds, see :data:`DEV_SEEDS`).
CXR_MODEL_PARAMS: dict[str, dict[str, Any]] = {
    "rf": {"n_estimators": 150, "min_samples_leaf": 5},
    "svm": {"C": 1.0},
    "lr": {"C": 0.003},
}
#: CV seeds on which the feature families and model parameters were compared (never the
#: report's seed 0); the report repeats that comparison (``abnormal`` only).
DEV_SEEDS: tuple[int, ...] = (1, 2, 3)
#: The feature configuration before issue #8's second round, kept in the comparison.
PREVIOUS_FAMILIES: tuple[str, ...] = ("grayhist", "grayglcm", "graylbp", "graygrid")
#: Columns every X-ray feature table must have.
CXR_LABEL_COLUMNS = ("image_id", "patient_id", "finding_labels")
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


def load_cxr_table(path: str | PathLike[str]) -> pd.DataFrame:
    """Read an X-ray feature table (``hamfeat features --dataset cxr14``) and check it.

    Raises
    ------
    DatasetError
        The file is missing or unreadable, lacks ``image_id``, ``patient_id`` or
        ``finding_labels``, or has no grayscale feature column.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: feature table not found")
    try:
        table = pd.read_parquet(path)
    except Exception as exc:
        raise DatasetError(f"{path}: cannot read the feature table ({exc})") from exc
    missing = [c for c in CXR_LABEL_COLUMNS if c not in table.columns]
    if missing:
        raise DatasetError(
            f"{path}: missing column(s) {', '.join(missing)}; is this a ChestX-ray14 table "
            "(hamfeat features --dataset cxr14)?"
        )
    if not feature_columns(table.columns, GRAY_FAMILY_NAMES):
        raise DatasetError(
            f"{path}: no grayscale feature column ({', '.join(GRAY_FAMILY_NAMES)}_*)"
        )
    if table["finding_labels"].isna().any() or table["patient_id"].isna().any():
        raise DatasetError(f"{path}: missing finding_labels or patient_id values")
    note_undeclared(table.columns, path)
    return table


def _families(table: pd.DataFrame) -> tuple[str, ...]:
    """The model families (:data:`~hamfeat.datasets.cxr14.CXR_MODEL_FAMILIES`) the table has.

    A table with none of them (e.g. only ``grayhog``) uses every grayscale family it has.
    """
    have = tuple(f for f in GRAY_FAMILY_NAMES if feature_columns(table.columns, (f,)))
    return tuple(f for f in have if f in CXR_MODEL_FAMILIES) or have


def modellable_labels(
    table: pd.DataFrame, min_images: int = MIN_IMAGES
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The label matrix of the labels to model, and the findings left out.

    Parameters
    ----------
    table : pandas.DataFrame
        With ``finding_labels``.
    min_images : int
        Findings with fewer positive images are left out.

    Returns
    -------
    labels : pandas.DataFrame
        ``int8`` columns: the findings kept (NIH order), then ``abnormal``.
    skipped : dict
        Finding -> number of images, for the findings left out.
    """
    full = label_matrix(table["finding_labels"])
    counts = full.drop(columns=[ABNORMAL]).sum()
    keep = [c for c in counts.index if counts[c] >= min_images]
    skipped = {c: int(counts[c]) for c in counts.index if counts[c] < min_images}
    return full[[*keep, ABNORMAL]], skipped


def make_multilabel_model(
    name: str = "ensemble",
    *,
    random_state: int = 0,
    families: Sequence[str] = CXR_MODEL_FAMILIES,
    n_jobs: int | None = None,
    params: dict[str, dict[str, Any]] | None = None,
):
    """An unfitted one-vs-rest model: one :func:`~hamfeat.models.make_model` pipeline per label.

    Parameters
    ----------
    name : str
        A model of :data:`hamfeat.models.MODEL_NAMES`, with :data:`CXR_MODEL_PARAMS`;
        ``ensemble`` means soft voting (:class:`~sklearn.ensemble.VotingClassifier`) of the
        :data:`CXR_ENSEMBLE` pipelines; :data:`PATCHKM` is the learned patch model (one shared
        encoder, then one logistic regression per label; it reads ``graypix`` and ignores
        ``families``).
    random_state : int
    families : sequence of str
        Feature families (default: :data:`~hamfeat.datasets.cxr14.CXR_MODEL_FAMILIES`).
    n_jobs : int, optional
        Threads of the estimators that take them.
    params : dict, optional
        Per-model parameters instead of :data:`CXR_MODEL_PARAMS`.

    Returns
    -------
    sklearn.multiclass.OneVsRestClassifier or sklearn.pipeline.Pipeline
        Takes the feature table (a DataFrame) and a 0/1 label matrix (:data:`PATCHKM`: a
        pipeline ending in a one-vs-rest classifier).
    """
    from sklearn.multiclass import OneVsRestClassifier

    if name == PATCHKM:
        return _patchkm_model(random_state)
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; known: {', '.join((*MODEL_NAMES, PATCHKM))}")

    def one(m: str):
        return make_model(
            m,
            random_state=random_state,
            families=tuple(families),
            alpha=0.0,
            n_jobs=n_jobs if m in ("rf", "knn") else None,
            **(CXR_MODEL_PARAMS if params is None else params).get(m, {}),
        )

    if name == "ensemble":
        from sklearn.ensemble import VotingClassifier

        # soft voting of whole member pipelines, so each keeps its X-ray parameters
        base = VotingClassifier([(m, one(m)) for m in CXR_ENSEMBLE], voting="soft")
    else:
        base = one(name)
    return OneVsRestClassifier(base)


def _patchkm_model(random_state: int = 0):
    """The :data:`PATCHKM` pipeline: select ``graypix``, impute, encode, scale, one LR per label."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from hamfeat.encoders import PatchKMeansEncoder
    from hamfeat.models import FeatureSelector

    lr = LogisticRegression(C=PATCHKM_C, class_weight="balanced", max_iter=3000)
    return Pipeline(
        [
            ("select", FeatureSelector(families=(PIXEL_FAMILY,))),
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("encode", PatchKMeansEncoder(random_state=int(random_state), **PATCHKM_ENCODER)),
            ("scale", StandardScaler()),
            ("clf", OneVsRestClassifier(lr)),
        ]
    )


def _check_pixels(table: pd.DataFrame, path, models: Sequence[str]) -> None:
    """A one-line error when :data:`PATCHKM` is asked for and the table has no pixel columns."""
    if PATCHKM in models and not feature_columns(table.columns, (PIXEL_FAMILY,)):
        raise DatasetError(
            f"{path}: model {PATCHKM} needs the {PIXEL_FAMILY} columns, which this table lacks; "
            "recompute it with 'hamfeat features --dataset cxr14' (or leave the model out, "
            "e.g. --models lr,rf,knn,ensemble)"
        )


def model_families(name: str, families: Sequence[str]) -> tuple[str, ...]:
    """The feature families model ``name`` reads (``graypix`` for :data:`PATCHKM`).

    Returns
    -------
    tuple of str
    """
    return (PIXEL_FAMILY,) if name == PATCHKM else tuple(families)


def _positive_proba(est, X: pd.DataFrame, n_labels: int) -> np.ndarray:
    proba = np.asarray(est.predict_proba(X), dtype=np.float64)
    if n_labels == 1:  # a single label is fitted as a binary problem
        return proba[:, 1:2] if proba.shape[1] == 2 else proba
    return proba


def _fit_ovr(est, X: pd.DataFrame, Y: np.ndarray):
    return est.fit(X, Y[:, 0] if Y.shape[1] == 1 else Y)


def patient_splits(
    y: Sequence[int], groups: Sequence[Any], *, n_splits: int = 5, seed: int = 0
) -> list[Split]:
    """Patient-grouped K-fold, stratified on a 0/1 label (``abnormal``).

    Returns
    -------
    list of Split
        Every image is in exactly one test fold; no group is on both sides of a split.
    """
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=int(seed))
    y = np.asarray(y)
    return [
        Split(int(seed), fold, tr, te)
        for fold, (tr, te) in enumerate(cv.split(np.zeros(len(y)), y, np.asarray(groups)))
    ]


def _fit_predict(est, table: pd.DataFrame, Y: np.ndarray, split: Split):
    from threadpoolctl import threadpool_limits

    from hamfeat._warnings import capture, messages

    t0 = time.perf_counter()
    est = clone(est)
    with threadpool_limits(limits=1), capture() as caught:  # sent back, logged by the caller
        _fit_ovr(est, table.iloc[split.train], Y[split.train])
        proba = _positive_proba(est, table.iloc[split.test], Y.shape[1])
    return split, proba, time.perf_counter() - t0, messages(caught)


def oof_multilabel(
    estimators: dict[str, Any],
    table: pd.DataFrame,
    Y: np.ndarray,
    splits: Sequence[Split],
    *,
    n_jobs: int = 2,
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Out-of-fold probabilities of each one-vs-rest estimator.

    Parameters
    ----------
    estimators : dict of name to unfitted estimator
    table : pandas.DataFrame
    Y : numpy.ndarray of shape (n_images, n_labels)
        0/1 labels.
    splits : sequence of Split
        One repetition (each image in exactly one test fold).
    n_jobs : int
        Folds fitted in parallel (processes).

    Returns
    -------
    proba : dict of name to numpy.ndarray of shape (n_images, n_labels)
    seconds : dict of name to float
        Fit + predict time summed over folds.
    """
    from joblib import Parallel, delayed

    tasks = [(name, est, s) for name, est in estimators.items() for s in splits]
    results = Parallel(n_jobs=max(1, min(int(n_jobs), len(tasks))), prefer="processes")(
        delayed(_fit_predict)(est, table, Y, s) for _, est, s in tasks
    )
    proba = {name: np.full(Y.shape, np.nan) for name in estimators}
    seconds = dict.fromkeys(estimators, 0.0)
    from hamfeat._warnings import log_lines

    for (name, _, _), (split, p, sec, _) in zip(tasks, results, strict=True):
        proba[name][split.test] = p
        seconds[name] += sec
    log_lines("cv", [w for *_, warned in results for w in warned])
    for name, p in proba.items():
        if np.isnan(p).any():
            raise ValueError(f"{name}: some images are in no test fold")
    return proba, seconds


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    if len(y) == 0 or y.min() == y.max():
        return float("nan")
    return float(roc_auc_score(y, p))


def _bootstrap(
    Y: np.ndarray, P: np.ndarray, groups: np.ndarray, n_boot: int, seed: int
) -> np.ndarray:
    """Per-label AUCs over ``n_boot`` resamples of patients (with replacement)."""
    rng = np.random.default_rng(seed)
    uniq, inv = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inv == g) for g in range(len(uniq))]
    out = np.full((n_boot, Y.shape[1]), np.nan)
    for b in range(n_boot):
        pick = rng.integers(0, len(uniq), size=len(uniq))
        idx = np.concatenate([members[g] for g in pick])
        for j in range(Y.shape[1]):
            out[b, j] = _auc(Y[idx, j], P[idx, j])
    return out


def _model_metrics(
    labels: list[str], Y: np.ndarray, P: np.ndarray, groups: np.ndarray, n_boot: int, seed: int
) -> dict:
    aucs = {lab: _auc(Y[:, j], P[:, j]) for j, lab in enumerate(labels)}
    findings = [lab for lab in labels if lab != ABNORMAL]
    boot = _bootstrap(Y, P, groups, n_boot, seed) if n_boot else None
    ci = {}
    mean_ci = None
    if boot is not None:
        for j, lab in enumerate(labels):
            ci[lab] = [float(np.nanpercentile(boot[:, j], 2.5)),
                       float(np.nanpercentile(boot[:, j], 97.5))]
        if findings:
            fidx = [labels.index(f) for f in findings]
            means = np.nanmean(boot[:, fidx], axis=1)
            mean_ci = [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]
    return {
        "auc": aucs,
        "auc_ci95": ci,
        "mean_auc_findings": float(np.nanmean([aucs[f] for f in findings])) if findings else None,
        "mean_auc_findings_ci95": mean_ci,
        "abnormal_auc": aucs.get(ABNORMAL),
        "abnormal_auc_ci95": ci.get(ABNORMAL),
    }


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
    from hamfeat._io import check_output_dir, write_output

    say = progress or (lambda msg: None)
    t_start = time.perf_counter()
    report_dir = check_output_dir(report_dir, create=False)  # before any work; created on write
    table = load_cxr_table(features_path)
    _check_pixels(table, features_path, models)
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
    fams = _families(table)
    base = [m for m in models if m != "ensemble"]
    if "ensemble" in models:
        base += [m for m in CXR_ENSEMBLE if m not in base]
    estimators = {m: make_multilabel_model(m, random_state=seed, families=fams) for m in base}
    say(
        f"{len(table)} images, {n_patients} patients, {len(labels)} labels, "
        f"{len(estimators)} models x {n_splits} folds"
    )
    oof, seconds = oof_multilabel(estimators, table, Y, splits, n_jobs=n_jobs)
    if "ensemble" in models:
        oof["ensemble"] = np.mean([oof[m] for m in CXR_ENSEMBLE], axis=0)
        seconds["ensemble"] = sum(seconds[m] for m in CXR_ENSEMBLE)
    results = {}
    for m in models:
        results[m] = _model_metrics(labels, Y, oof[m], groups, n_boot, seed)
        results[m]["fit_seconds"] = round(seconds[m], 1)
        say(
            f"{m}: abnormal AUC {_f(results[m]['abnormal_auc'])}, mean AUC over findings "
            f"{_f(results[m]['mean_auc_findings'])}"
        )
    best = max(models, key=lambda m: results[m]["abnormal_auc"])
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
    counts_df = label_matrix(table["finding_labels"])
    label_counts = {
        c: {
            "images": int(counts_df[c].sum()),
            "patients": int(pd.Series(groups[counts_df[c].to_numpy() == 1]).nunique()),
            "modelled": c in labels,
        }
        for c in counts_df.columns
    }
    best_auc = results[best]["abnormal_auc"]
    report = {
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
        "label_counts": label_counts,
        "models": list(models),
        "ensemble_members": list(CXR_ENSEMBLE),
        "model_params": CXR_MODEL_PARAMS,
        "results": results,
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
    blob = json.dumps(report, indent=2, sort_keys=False, default=_jdefault, allow_nan=True)
    check_output_dir(report_dir)  # created now that there is a report to write
    write_output(report_dir / "cv_report.json", lambda fh: fh.write(blob + "\n"), binary=False)
    md = _markdown(report)
    write_output(report_dir / "cv_report.md", lambda fh: fh.write(md), binary=False)
    return report


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
    old_lr = {**CXR_MODEL_PARAMS, "lr": {}}
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


def _jdefault(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)


def _f(x: float | None, nd: int = 3) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.{nd}f}"


def _ci(c) -> str:
    return "" if not c else f" ({_f(c[0])}-{_f(c[1])})"


def _markdown(r: dict) -> str:
    res = r["results"]
    models = r["models"]
    best = r["best_model"]
    t = r["target"]
    cfg = r.get("feature_config") or {}
    lines = [
        f"# {r['title']}",
        "",
        f"Made by `{r['command'] or 'hamfeat cv --dataset cxr14'}` "
        f"(hamfeat {r['hamfeat_version']}, {r['created_utc']} UTC, {r['seconds']} s).",
        "",
        f"Data: `{r['features']}`: {r['n_images']} images of {r['n_patients']} patients "
        f"(table hash `{r['table_hash'][:12]}`). Features: {r['n_features']} columns of the "
        f"families {', '.join(r['families'])}, computed on the whole image (no lung mask), "
        f"no colour constancy, canonical long side {cfg.get('long_side', '?')} px."
        + (
            f" `{PATCHKM}` reads instead the {PIXEL_FAMILY} columns (the z-scored image on a "
            "64x64 grid) and learns its features from them inside each training fold "
            "(k-means on image patches, Coates et al. 2011)."
            if PATCHKM in models
            else ""
        ),
        "",
        f"CV: {r['cv']['n_splits']}-fold, grouped by `patient_id` (StratifiedGroupKFold "
        f"stratified on `abnormal`, seed {r['cv']['seed']}); patients on both sides of a split: "
        f"{r['cv']['patient_leaks']}. AUCs on the pooled out-of-fold probabilities; 95% "
        f"intervals from {r['cv']['n_boot']} bootstrap resamples of patients.",
        "",
        "## Target",
        "",
        f"Abnormal (any finding) vs No Finding AUC >= {t['threshold']:.2f}: "
        f"**{'met' if t['met'] else 'NOT met'}**, best model `{t['model']}` "
        f"{_f(t['value'])}{_ci(res[best]['abnormal_auc_ci95'])}.",
        "",
        "## Summary",
        "",
        "| model | abnormal AUC (95% CI) | mean AUC over modelled findings (95% CI) | fit s |",
        "| --- | --- | --- | --- |",
    ]
    for m in models:
        x = res[m]
        lines.append(
            f"| {m}{' (best)' if m == best else ''} | {_f(x['abnormal_auc'])}"
            f"{_ci(x['abnormal_auc_ci95'])} | {_f(x['mean_auc_findings'])}"
            f"{_ci(x['mean_auc_findings_ci95'])} | {x['fit_seconds']} |"
        )
    used = set(models) | (set(r["ensemble_members"]) if "ensemble" in models else set())
    params = {m: p for m, p in r["model_params"].items() if m in used}
    lines += [
        "",
        (
            f"`ensemble` = mean of the probabilities of {', '.join(r['ensemble_members'])}. "
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
    for lab in r["labels"]:
        c = r["label_counts"][lab]
        lines.append(
            f"| {lab} | {c['images']} | {c['patients']} | "
            + " | ".join(_f(res[m]["auc"][lab]) for m in models)
            + " |"
        )
    skipped = r["skipped_labels"]
    lines += [
        "",
        (
            f"Not modelled (fewer than {r['min_images']} images): "
            + ", ".join(f"{k} ({v})" for k, v in skipped.items())
            + ". They still count as findings in `abnormal`."
            if skipped
            else f"Every finding present has at least {r['min_images']} images."
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
    for a in r["anchors"]:
        lines.append(f"| {a['name']} | {a['mean_auc']:.3f} | {a['data']} |")
    lines.append(
        f"| hamfeat `{best}`, this report | {_f(res[best]['mean_auc_findings'])} "
        f"(over {len(r['labels']) - 1} findings) | {r['n_images']} images, "
        f"{cfg.get('long_side', '?')} px, patient-grouped CV |"
    )
    lines += [
        "",
        "The numbers are not directly comparable, and the comparison favours the deep models: "
        "they were trained on tens of thousands of images at 224 px or more and tested on a "
        "held-out patient split of the full data set, whereas this is 5-fold CV on "
        f"{r['n_images']} images at {cfg.get('long_side', '?')} px (each training fold has "
        "about 4/5 of them, and 20-30 positives for the rarer findings), over "
        f"{len(r['labels']) - 1} findings instead of 14. No deep-learning result on this "
        "sample is known to us, so the gap to the anchors mixes the method, the amount of "
        "data and the resolution.",
        "",
    ]
    return "\n".join(lines)


def _ablation_lines(r: dict) -> list[str]:
    a = r.get("ablations")
    if not a:
        return []
    full = r["results"].get(a["model"], {}).get("abnormal_auc")
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


def _development_lines(r: dict) -> list[str]:
    dev = r.get("development")
    if not dev:
        return []
    seeds = ", ".join(str(s) for s in r["dev_seeds"])
    seed = r["cv"]["seed"]
    pk = next((v for v in dev if v["name"] == PATCHKM), None)
    dev = [v for v in dev if v["name"] != PATCHKM]
    best_dev = max(v["mean_dev"]["ensemble"] for v in dev)
    committed_best = any(
        v["families"] == r["families"] and v["name"].startswith("committed families (")
        and v["mean_dev"]["ensemble"] >= best_dev
        for v in dev
    )
    out = [
        "## How the configuration was chosen (abnormal label)",
        "",
        f"Feature families and model parameters were compared on the development CV seeds "
        f"{seeds} (the same patient-grouped 5-fold CV with other shuffles), never on the "
        f"reported seed {seed}: with {r['n_images']} images, choosing on the reported splits "
        "would make the reported number optimistic. The committed configuration (models on "
        f"{', '.join(r['families'])}; lr C={r['model_params'].get('lr', {}).get('C', 0.03)}) "
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


def _metadata_lines(r: dict) -> list[str]:
    m = r.get("metadata")
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
            f"| image-only `{r['best_model']}`, {v} images only ({x['images']} images, "
            f"{x['abnormal']} abnormal) | {_f(x['auc'])} |"
        )
    return [*out, ""]


@quiet("train")
def train_multilabel(
    features_path: str | PathLike[str],
    output: str | PathLike[str],
    *,
    model: str = PATCHKM,
    min_images: int = MIN_IMAGES,
    random_state: int = 0,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Fit a one-vs-rest model on a whole X-ray feature table and save it (skops).

    The model file records ``extra["task"] = "multilabel"`` and ``extra["dataset"] =
    "cxr14"``; ``classes`` are the label names (``hamfeat score`` writes one ``p_<label>``
    column per label). ``progress`` is called with a line when fitting starts and ends
    (default: the ``hamfeat`` logger, at INFO).

    Returns
    -------
    pathlib.Path
    """
    from hamfeat._io import check_output

    check_output(output)  # a folder, a missing or read-only folder: refused before fitting
    table = load_cxr_table(features_path)
    _check_pixels(table, features_path, (model,))
    labels_df, skipped = modellable_labels(table, min_images)
    fams = _families(table)
    est = make_multilabel_model(model, random_state=random_state, families=fams)
    from threadpoolctl import threadpool_limits

    say = progress or (lambda msg: log.info(msg))
    say(f"fitting {model} on {len(table)} images ({labels_df.shape[1]} labels, one-vs-rest)")
    t0 = time.perf_counter()
    with threadpool_limits(limits=1):
        _fit_ovr(est, table, labels_df.to_numpy(np.int64))
    say(f"{model} fitted in {time.perf_counter() - t0:.0f} s; novelty detector next")
    names = feature_columns(table.columns, model_families(model, fams))
    from hamfeat.novelty import fit_detector, mask_mode

    detector = fit_detector(table, groups=table["patient_id"].to_numpy())
    return save_model(
        est,
        output,
        feature_names=names,
        feature_config=table_config(table),
        classes=list(labels_df.columns),
        training_table_hash=table_hash(table),
        extra={
            "task": "multilabel",
            "dataset": "cxr14",
            "model": model,
            "skipped_labels": skipped,
            "n_images": len(table),
            "mask_mode": mask_mode(table)["mode"],
        },
        novelty=detector,
    )
