"""Honest cross-validation of the multiclass (dermoscopy) models on a feature table.

Splits are grouped by ``lesion_id`` (:class:`~sklearn.model_selection.StratifiedGroupKFold`), so
no lesion is ever on both sides of a split: HAM10000 has 10015 images of 7470 lesions, and an
image-level split puts near-duplicate images of one lesion in training and test, which inflates
every score (the report measures by how much, on the published KNN baseline).

:func:`cross_validate` computes the typed result (:class:`~hamfeat.evaluation.results.CVReport`)
from a table; :func:`run_cv` reads the table, computes it and writes the reports through the
renderers of :mod:`hamfeat.render`.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hamfeat._io import check_output_dir, write_output
from hamfeat._version import __version__
from hamfeat._warnings import quiet
from hamfeat.datasets.ham10000 import CLASSES
from hamfeat.errors import DatasetError
from hamfeat.evaluation.ablations import labels_of, run_ablations
from hamfeat.evaluation.metrics import ACC_FLOOR, evaluate_oof, majority_baseline
from hamfeat.evaluation.oof import OOF, average_oof, oof_predictions, stacking_oof
from hamfeat.evaluation.results import CVReport, ModelResult, SeedBaseline
from hamfeat.evaluation.splits import Split, check_grouped, grouped_splits, image_splits
from hamfeat.evaluation.targets import BAL_TARGET, check_targets, is_diagnostic
from hamfeat.models import (
    DEFAULT_ALPHA,
    ENSEMBLE_MEMBERS,
    SEED_FEATURE_PATTERN,
    feature_columns,
    make_model,
)
from hamfeat.tables import load_table, table_config, table_hash
from hamfeat.training import MIN_IMAGES, check_trainable

__all__ = [
    "MAIN_MODELS",
    "OOF_FILE",
    "best_model_name",
    "check_cross_validatable",
    "cross_validate",
    "estimators_for",
    "run_cv",
]

if TYPE_CHECKING:
    from hamfeat.datasets import DatasetSpec

log = logging.getLogger("hamfeat")

MAIN_MODELS: tuple[str, ...] = ("knn", "svm", "rf", "hgb", "lr", "mlp", "ensemble")
#: The best model's per-image out-of-fold predictions, beside the report.
OOF_FILE = "cv_oof.parquet"


def check_cross_validatable(
    table: pd.DataFrame,
    n_splits: int,
    where: str | PathLike[str],
    models: Sequence[str] = (),
) -> None:
    """Refuse, before any fitting, a table its lesion-grouped CV cannot split or fit.

    Every class needs a lesion in each of the ``n_splits`` test folds (a class of fewer
    lesions leaves folds without it: its recall and AUC there are undefined, and
    ``StratifiedGroupKFold`` only warns), and every model the image minimum ``train``
    requires (:func:`~hamfeat.training.check_trainable`).

    Parameters
    ----------
    table : pandas.DataFrame
        A feature table with ``dx`` and ``lesion_id``.
    n_splits : int
        Folds of the CV.
    where : path-like
        The table's path, for the message.
    models : sequence of str
        The models to be cross-validated.

    Raises
    ------
    DatasetError
        One line naming the table, the classes that are short, their lesion counts and the
        number of folds.
    """
    dx = table["dx"].astype(str)
    lesions = table.groupby(dx, sort=True)["lesion_id"].nunique()
    lesions = lesions[lesions > 0]
    if len(lesions) < 2:
        raise DatasetError(
            f"{where}: {len(table)} image(s) of {len(lesions)} class(es) "
            f"({', '.join(lesions.index) or 'none'}); a classifier needs images of 2 classes or "
            "more"
        )
    n_lesions = int(table["lesion_id"].nunique())
    if n_lesions < n_splits:
        raise DatasetError(
            f"{where}: {n_lesions} lesion(s), fewer than the {n_splits} folds of the "
            f"lesion-grouped CV; every class present needs at least {n_splits} lesions"
        )
    short = lesions[lesions < n_splits]
    if len(short):
        raise DatasetError(
            f"{where}: too few lesions for {n_splits}-fold lesion-grouped CV: "
            + ", ".join(f"{c} {n} lesion{'s' * (n != 1)}" for c, n in short.items())
            + f"; every class present needs at least {n_splits} (one per test fold; remove "
            "those rows, or add images)"
        )
    for model in models:
        check_trainable(table, model, where, option="--models")
        need = MIN_IMAGES.get(model, 0)
        smallest_fold = len(table) - -(-len(table) // n_splits)  # its largest test fold out
        if smallest_fold < need:
            raise DatasetError(
                f"{where}: too few images for --models {model}: {len(table)}, so about "
                f"{smallest_fold} in a training fold; it needs at least {need} (its neighbours)"
            )


def estimators_for(
    models: Sequence[str], model_params: Mapping[str, Mapping[str, Any]], random_state: int
) -> tuple[dict[str, Any], dict[str, tuple[str, ...]]]:
    """Unfitted estimators to fit, and the ensembles to derive from their OOF predictions.

    Parameters
    ----------
    models : sequence of str
    model_params : mapping
        Extra :func:`~hamfeat.models.make_model` arguments per model (``ensemble``:
        ``members``).
    random_state : int

    Returns
    -------
    estimators : dict of str to estimator
    ensembles : dict of str to tuple of str
        Ensemble name -> member names.
    """
    ests: dict[str, Any] = {}
    ensembles: dict[str, tuple[str, ...]] = {}
    for m in models:
        params = dict(model_params.get(m, {}))
        if m == "ensemble":
            members = tuple(params.get("members", ENSEMBLE_MEMBERS))
            ensembles[m] = members
            for mem in members:
                if mem not in ests:
                    ests[mem] = make_model(
                        mem, random_state=random_state, **dict(model_params.get(mem, {}))
                    )
        elif m not in ests:
            ests[m] = make_model(m, random_state=random_state, **params)
    return ests, ensembles


def best_model_name(models: Mapping[str, ModelResult]) -> str:
    """The model with the best balanced accuracy at its cross-fitted operating point among
    those with accuracy >= :data:`~hamfeat.evaluation.metrics.ACC_FLOOR` there (else the best
    sum of both); comparison variants of the ensemble are not candidates.

    Parameters
    ----------
    models : mapping of str to ModelResult

    Returns
    -------
    str
    """

    def key(item):
        s = item[1].summary.image.crossfit
        feasible = s.accuracy >= ACC_FLOOR
        return (feasible, s.balanced_accuracy if feasible else s.accuracy + s.balanced_accuracy)

    candidates = [(n, r) for n, r in models.items() if not is_diagnostic(n)]
    return max(candidates, key=key)[0]


def _derived(oofs: dict[str, OOF], ensembles, y: np.ndarray, random_state: int) -> None:
    """Add each ensemble, its stacking, and its members left out / other models added."""
    for name, members in ensembles.items():
        oofs[name] = average_oof(name, [oofs[m] for m in members])
        oofs[name + "_stack"] = stacking_oof(
            name + "_stack", [oofs[m] for m in members], y, random_state
        )
        # the members' choice, shown: each member left out
        if len(members) > 2:
            for left in members:
                rest = [oofs[m] for m in members if m != left]
                oofs[f"{name}_without_{left}"] = average_oof(f"{name}_without_{left}", rest)
        # and each other fitted model added (knn, and the svm and lr members of old)
        for extra in ("knn", "svm", "lr", "rf"):
            if extra in oofs and extra not in members:
                oofs[f"{name}_with_{extra}"] = average_oof(
                    f"{name}_with_{extra}", [oofs[m] for m in (*members, extra)]
                )


def _seed_baseline(table, y, groups, model_params, n_splits, baseline_seeds, n_jobs,
                   classes=CLASSES):
    """The ``knn_seed`` baseline image-level and lesion-grouped (None: no colour columns)."""
    seed_est = {"knn_seed": make_model("knn_seed", **dict(model_params.get("knn_seed", {})))}
    n_seed_cols = len(feature_columns(table.columns, ("color",), pattern=SEED_FEATURE_PATTERN))
    if not n_seed_cols:
        return None
    img = oof_predictions(
        seed_est, table, image_splits(y, n_splits=n_splits, seeds=baseline_seeds), n_jobs=n_jobs,
        classes=classes,
    )["knn_seed"]
    grp = oof_predictions(
        seed_est,
        table,
        grouped_splits(y, groups, n_splits=n_splits, seeds=baseline_seeds),
        n_jobs=n_jobs,
        classes=classes,
    )["knn_seed"]
    return SeedBaseline(n_seed_cols, SEED_FEATURE_PATTERN,
                        evaluate_oof(img, y, None, classes=classes),
                        evaluate_oof(grp, y, groups, classes=classes))


def _head(table, features_path, command, y, groups, n_splits, seeds, leaks, model_params,
          classes=CLASSES, group_column="lesion_id"):
    """The plain header values of the report, in report order."""
    from hamfeat.novelty import mask_mode

    return {
        "command": command,
        "features_path": str(features_path),
        "table_hash": table_hash(table),
        "table_config": table_config(table),
        "n_images": len(table),
        "n_lesions": int(pd.Series(groups).nunique()),
        "class_counts": {c: int((y == i).sum()) for i, c in enumerate(classes)},
        "n_features": len(feature_columns(table.columns)),
        "masks": mask_mode(table),
        "hamfeat_version": __version__,
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "cv": {
            "kind": "StratifiedGroupKFold",
            "groups": group_column,
            "n_splits": n_splits,
            "seeds": list(seeds),
            "lesions_on_both_sides": leaks,
        },
        "fixed_alpha": DEFAULT_ALPHA,
        "acc_floor": ACC_FLOOR,
        "model_params": model_params,
    }


def cross_validate(
    table: pd.DataFrame,
    *,
    features_path: str | PathLike[str],
    command: str,
    models: Sequence[str] = MAIN_MODELS,
    seeds: Sequence[int] = (0,),
    baseline_seeds: Sequence[int] = (0, 1, 2),
    ablations: bool = True,
    ablation_model: str = "lr",
    auto_features_path: str | PathLike[str] | None = None,
    cc_features_path: str | PathLike[str] | None = None,
    model_params: Mapping[str, Mapping[str, Any]] | None = None,
    n_splits: int = 5,
    n_jobs: int | None = None,
    random_state: int = 0,
    progress: Callable[[str], None] | None = None,
    dataset: DatasetSpec | None = None,
) -> tuple[CVReport, dict[str, OOF]]:
    """The lesion-grouped CV of the models on a checked table, as a typed result.

    Parameters are those of :func:`run_cv` (``table``: the table read from ``features_path``
    by :func:`hamfeat.tables.load_table` with the same ``dataset``).

    Returns
    -------
    report : CVReport
        Without plots, out-of-fold file and page (:func:`run_cv` adds them).
    oofs : dict of str to OOF
        The main models' out-of-fold predictions.
    """
    t_start = time.perf_counter()
    say = progress or (lambda msg: log.info(msg))
    model_params = {k: dict(v) for k, v in (model_params or {}).items()}
    classes = CLASSES if dataset is None else tuple(dataset.classes)
    y = labels_of(table, classes)
    groups = table["lesion_id"].astype(str).to_numpy()
    splits = grouped_splits(y, groups, n_splits=n_splits, seeds=seeds)
    leaks = check_grouped(splits, groups)
    if leaks:  # pragma: no cover - StratifiedGroupKFold guarantees this
        raise RuntimeError(f"{leaks} lesions on both sides of a split")
    head = _head(table, features_path, command, y, groups, n_splits, seeds, leaks, model_params,
                 classes, "lesion_id" if dataset is None else dataset.group_column)
    report = CVReport(head, majority_baseline(y, groups, classes))

    say(f"cv: {len(table)} images, models {', '.join(models)}, seeds {list(seeds)}")
    t0 = time.perf_counter()
    ests, ensembles = estimators_for(models, model_params, random_state)
    oofs = oof_predictions(ests, table, splits, n_jobs=n_jobs, classes=classes)
    _derived(oofs, ensembles, y, random_state)
    report.timings["main_models_wall_s"] = time.perf_counter() - t0
    for name, o in oofs.items():
        r = evaluate_oof(o, y, groups, classes=classes)
        report.models[name] = ModelResult(r.per_seed, r.summary, r.fit_seconds, o.info)
    say(f"cv: main models done in {report.timings['main_models_wall_s']:.0f} s")
    report.best_model = best_model_name(report.models)

    t0 = time.perf_counter()
    report.seed_baseline = _seed_baseline(
        table, y, groups, model_params, n_splits, baseline_seeds, n_jobs, classes
    )
    if report.seed_baseline is None:
        report.notes.append("seed baseline skipped: the table has no simple colour columns")
    report.timings["seed_baseline_wall_s"] = time.perf_counter() - t0
    if ablations and dataset is not None:
        report.notes.append(f"ablations skipped: the ablation study is HAM10000's, not "
                            f"{dataset.name}'s")
    elif ablations:
        t0 = time.perf_counter()
        first: list[Split] = splits[:n_splits] if seeds else splits
        report.ablations = run_ablations(
            table, y, groups, first, ablation_model, model_params, random_state, n_jobs,
            auto_features_path, cc_features_path, report.notes, say, n_splits,
        )
        report.timings["ablations_wall_s"] = time.perf_counter() - t0
    report.timings["total_wall_s"] = time.perf_counter() - t_start
    report.targets = check_targets(report.models)
    return report, oofs


def _default_command(features_path, report_dir, models, seeds, ablations) -> str:
    return (
        f'{Path(sys.executable).name} -c "from hamfeat.evaluation.cv import run_cv; '
        f"run_cv('{features_path}', '{report_dir}', models={tuple(models)!r}, "
        f'seeds={tuple(seeds)!r}, ablations={ablations})"'
    )


@quiet("cv")
def run_cv(
    features_path: str | PathLike[str],
    report_dir: str | PathLike[str],
    *,
    models: Sequence[str] = MAIN_MODELS,
    seeds: Sequence[int] = (0,),
    baseline_seeds: Sequence[int] = (0, 1, 2),
    ablations: bool = True,
    ablation_model: str = "lr",
    auto_features_path: str | PathLike[str] | None = None,
    cc_features_path: str | PathLike[str] | None = None,
    model_params: Mapping[str, Mapping[str, Any]] | None = None,
    n_splits: int = 5,
    n_jobs: int | None = None,
    random_state: int = 0,
    plots: bool = True,
    command: str | None = None,
    progress: Callable[[str], None] | None = None,
    html: bool = False,
    data_dir: str | PathLike[str] | None = None,
    dataset: DatasetSpec | None = None,
) -> dict:
    """Cross-validate the models on a feature table and write the report.

    Parameters
    ----------
    features_path : path-like
        The feature table (``hamfeat features`` output).
    report_dir : path-like
        Where ``cv_report.md``, ``cv_report.json`` and the ``cv_*.png`` plots are written.
    models : sequence of str
        Models of :func:`~hamfeat.models.make_model`; ``ensemble`` is derived from its members'
        out-of-fold probabilities (soft voting, exact for deterministic members).
    seeds : sequence of int
        One lesion-grouped 5-fold repetition per seed.
    baseline_seeds : sequence of int
        Repetitions of the seed baseline (``knn_seed``), image-level and lesion-grouped.
    ablations : bool
        Also run the imbalance study, leave-one-family-out, masks (``auto_features_path``),
        colour constancy (``cc_features_path``) and the metadata variant, all with
        ``ablation_model`` and the first seed (:mod:`hamfeat.evaluation.ablations`).
    ablation_model : str
    auto_features_path, cc_features_path : path-like, optional
        Tables computed with automatic masks / with the other colour-constancy setting than
        the main table's (skipped with a note when absent).
    model_params : mapping, optional
        Extra :func:`~hamfeat.models.make_model` arguments per model name (``ensemble`` takes
        ``members``).
    n_splits : int
    n_jobs : int, optional
        Folds fitted in parallel (default: all cores).
    random_state : int
        Seed of the models.
    plots : bool
        Write the PNG plots (needs matplotlib; skipped with a note when absent).
    command : str, optional
        The command line to state in the report header.
    progress : callable, optional
        Called with one line per stage.
    html : bool
        Also write ``report.html``, one self-contained page (:mod:`hamfeat.cv_html`).
    data_dir : path-like, optional
        The HAM10000 folder (``images/``, ``masks/``) whose images the page's galleries show;
        None: no image galleries.
    dataset : DatasetSpec, optional
        A multi-class data set other than HAM10000 (:func:`hamfeat.tables.load_table`): its
        classes, label and group columns; the ablation study (HAM10000's) is then skipped, with
        a note.

    Returns
    -------
    dict
        Everything written to ``cv_report.json`` (:meth:`CVReport.to_dict`). The best model's
        per-image out-of-fold predictions are written beside it, ``cv_oof.parquet``
        (:func:`hamfeat.cv_page.oof_frame`).

    Raises
    ------
    DatasetError
        When a table cannot be read or lacks usable labels.
    """
    from hamfeat.cv_page import oof_frame
    from hamfeat.render.cv_report import cv_json, cv_markdown

    t_start = time.perf_counter()
    say = progress or (lambda msg: log.info(msg))
    features_path = Path(features_path)
    report_dir = check_output_dir(report_dir, create=False)  # before any work; created on write
    table = load_table(features_path, dataset)
    check_cross_validatable(table, n_splits, features_path, models)  # before any fitting
    report, oofs = cross_validate(
        table, features_path=features_path,
        command=command or _default_command(features_path, report_dir, models, seeds, ablations),
        models=models, seeds=seeds, baseline_seeds=baseline_seeds, ablations=ablations,
        ablation_model=ablation_model, auto_features_path=auto_features_path,
        cc_features_path=cc_features_path, model_params=model_params, n_splits=n_splits,
        n_jobs=n_jobs, random_state=random_state, progress=say, dataset=dataset,
    )
    best = report.best_model
    best_oof = oof_frame(oofs[best], table, report.models[best].to_dict()["per_seed"],
                         classes=list(report.head["class_counts"]))
    del oofs
    check_output_dir(report_dir)  # created now that there is a report to write
    if plots:
        _plots(report, report_dir)
    report.timings["total_wall_s"] = time.perf_counter() - t_start
    report.oof_file = OOF_FILE
    write_output(
        report_dir / OOF_FILE, lambda fh: best_oof.to_parquet(fh, index=False), binary=True
    )
    if html:
        from hamfeat.cv_html import PAGE_NAME

        report.html = PAGE_NAME
    blob = cv_json(report)
    write_output(report_dir / "cv_report.json", lambda fh: fh.write(blob), binary=False)
    md = cv_markdown(report)
    write_output(report_dir / "cv_report.md", lambda fh: fh.write(md), binary=False)
    out = report.to_dict()
    if html:  # after the report: the page only reads it
        from hamfeat.cv_html import write_cv_html

        say("cv: writing the page")
        write_cv_html(out, best_oof, table, report_dir, data_dir=data_dir, oof_file=OOF_FILE,
                      table_path=features_path)
    say(f"cv: report written to {report_dir} ({report.timings['total_wall_s']:.0f} s)")
    return out


def _plots(report: CVReport, report_dir: Path) -> None:
    """Write the PNG plots into the report (a note when matplotlib is missing)."""
    try:
        from hamfeat.render.plots import cv_plots

        report.plots = cv_plots(report, report_dir, bal_target=BAL_TARGET)
    except ImportError:
        report.plots = []
        report.notes.append("plots skipped: matplotlib is not installed")
