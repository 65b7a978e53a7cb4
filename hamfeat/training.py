"""Training of the final models on a whole feature table: the multiclass (dermoscopy) model of
``hamfeat train`` and the one-vs-rest X-ray model of ``hamfeat train --dataset cxr14``; and the
checks that refuse, before any fitting, a table too small for a model."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hamfeat._io import check_output
from hamfeat._warnings import quiet
from hamfeat.datasets.ham10000 import CLASSES
from hamfeat.errors import DatasetError, UsageError
from hamfeat.models import (
    FAMILY_NAMES,
    GRAY_FAMILY_NAMES,
    feature_columns,
    fit_reporting,
    make_model,
    make_multilabel_model,
    model_families,
    model_feature_names,
    save_model,
)
from hamfeat.models_multilabel import MIN_IMAGES as CXR_MIN_IMAGES
from hamfeat.models_multilabel import PATCHKM
from hamfeat.tables import features_version, load_table, table_config, table_hash

if TYPE_CHECKING:
    from hamfeat.datasets import DatasetSpec

__all__ = [
    "MIN_IMAGES",
    "MIN_IMAGES_PER_CLASS",
    "TRAIN_ALPHA",
    "TRAIN_ALPHAS",
    "check_trainable",
    "train",
    "train_multilabel",
]

log = logging.getLogger("hamfeat")

#: Default decision-rule exponent of :func:`train` for models without an entry in
#: :data:`TRAIN_ALPHAS` (the cross-fitted operating point of the former ensemble).
TRAIN_ALPHA = 0.2
#: Decision-rule exponent :func:`train` stores per model: the ensemble's is the best balanced
#: accuracy with accuracy >= 0.80 on its mean trade-off curve over the development seeds 1 and
#: 2 of the learned-segmenter automatic-mask table (``benchmarks/reports/gap_dev.md``,
#: ``learned:hgb+learned:mlp``: 0.802 / 0.703 at 0.8; 0.7 on the classical table).
TRAIN_ALPHAS: dict[str, float] = {"ensemble": 0.8}


#: Fewest images a class present in a training table may have, per model: ``mlp`` (and an
#: ensemble holding it) holds out a stratified 10 % of the rows for early stopping, which must
#: contain every class; ``svm`` calibrates its probabilities by a stratified 3-fold split of
#: the training rows, which needs 3 images of every class; any classifier needs two images
#: of a class to learn anything from it.
MIN_IMAGES_PER_CLASS: dict[str, int] = {"mlp": 10, "ensemble": 10, "svm": 3}
#: Fewest images a training table may have, per model: a KNN asks for its k neighbours
#: (15 for ``knn``, 5 for ``knn_seed``) in the training images at prediction time.
MIN_IMAGES: dict[str, int] = {"knn": 15, "knn_seed": 5}



def check_trainable(
    table: pd.DataFrame, model: str, where: str | PathLike[str], *, option: str = "--model"
) -> None:
    """Refuse, before any fitting, a table too small or lopsided for ``model``.

    Parameters
    ----------
    table : pandas.DataFrame
        A feature table with labels in ``dx``.
    model : str
        A :func:`~hamfeat.models.make_model` name.
    where : path-like
        The table's path, for the message.
    option : str
        The command-line option that chose the model, for the message.

    Raises
    ------
    DatasetError
        One line naming the table, the classes that are short, their counts and the minimum.
    """
    counts = table["dx"].astype(str).value_counts()
    counts = counts[counts > 0]
    if len(counts) < 2:
        raise DatasetError(
            f"{where}: {len(table)} image(s) of {len(counts)} class(es) "
            f"({', '.join(counts.index) or 'none'}); a classifier needs images of 2 classes or "
            "more"
        )
    need = MIN_IMAGES_PER_CLASS.get(model, 2)
    short = counts[counts < need]
    if len(short):
        raise DatasetError(
            f"{where}: too few images for {option} {model}: "
            + ", ".join(f"{c} {n}" for c, n in short.items())
            + f"; every class present needs at least {need} (remove those rows, or add images)"
            + ((" or train --model lr" if option == "--model" else " or leave it out of --models")
               if need > 2 else "")
        )
    need = MIN_IMAGES.get(model, 0)
    if len(table) < need:
        raise DatasetError(
            f"{where}: too few images for {option} {model}: {len(table)}; it needs at least "
            f"{need} (its neighbours)" + (" or train --model lr" if option == "--model" else "")
        )


@quiet("train")
def train(
    features_path: str | PathLike[str],
    output_path: str | PathLike[str],
    *,
    model: str = "ensemble",
    families: Sequence[str] | None = None,
    alpha: float | None = None,
    random_state: int = 0,
    model_params: Mapping[str, Any] | None = None,
    n_jobs: int | None = None,
    progress: Callable[[str], None] | None = None,
    dataset: DatasetSpec | None = None,
) -> Path:
    """Fit a model on every image of a feature table and save it (skops).

    Parameters
    ----------
    features_path : path-like
        The feature table (``hamfeat features`` output).
    output_path : path-like
        The model file to write (``*.skops``).
    model : str
        A name of :func:`~hamfeat.models.make_model`.
    families : sequence of str, optional
        Feature families to use (default: all).
    alpha : float
        Exponent of the decision rule stored in the model (default: the model's entry of
        :data:`TRAIN_ALPHAS`, else :data:`TRAIN_ALPHA`).
    random_state : int
    model_params : mapping, optional
        Extra :func:`~hamfeat.models.make_model` arguments.
    n_jobs : int, optional
        Processes fitting the ensemble's members (and the ``mlp`` networks) in parallel;
        ``None`` or 1: one after the other. The fitted model does not depend on it.
    progress : callable, optional
        Called with one line when fitting starts, when each ensemble member is fitted and
        when the model is (default: the ``hamfeat`` logger, at INFO).
    dataset : DatasetSpec, optional
        A multi-class data set other than HAM10000 (:func:`hamfeat.tables.load_table`); the
        model records its name (``extra["dataset"]``, which ``hamfeat score --dataset`` checks).

    Returns
    -------
    pathlib.Path
        The written model file.

    Raises
    ------
    DatasetError
        When the table cannot be read, lacks usable labels, or carries no hamfeat feature
        configuration (``table.attrs["hamfeat"]``), or one of another features version.
    """
    features_path = Path(features_path)
    if alpha is None:
        alpha = TRAIN_ALPHAS.get(model, TRAIN_ALPHA)
    check_output(output_path)  # a folder, a missing or read-only folder: refused before fitting
    table = load_table(features_path, dataset)
    config = _checked_config(table, features_path, families)
    check_trainable(table, model, features_path)
    est = make_model(
        model,
        random_state=random_state,
        families=families,
        alpha=alpha,
        n_jobs=n_jobs,
        **dict(model_params or {}),
    )
    say = progress or (lambda msg: log.info(msg))
    members = getattr(est.steps[-1][1].estimator, "estimators", None)
    say(
        f"fitting {model} on {len(table)} images"
        + (f" (members {', '.join(n for n, _ in members)}"
           f"{f', {n_jobs} processes' if n_jobs and n_jobs > 1 else ''})"
           if model == "ensemble" and members else "")
    )
    t0 = time.perf_counter()
    fit_reporting(est, table, table["dx"].astype(str).to_numpy(), say)
    seconds = time.perf_counter() - t0
    say(f"{model} fitted in {seconds:.0f} s; novelty detector and training statistics next")
    classes = [str(c) for c in est.classes_]
    from hamfeat.novelty import fit_detector, mask_mode

    masks = mask_mode(table)
    detector = fit_detector(table, groups=table["lesion_id"].to_numpy())
    from hamfeat.explain import training_stats

    names = model_feature_names(est)
    return save_model(
        est,
        output_path,
        feature_names=names,
        # per-class feature quantiles for `hamfeat explain` (not the table: a few hundred kB)
        training_stats=training_stats(table, names, table["dx"].astype(str).to_numpy()),
        feature_config=config,
        classes=classes,
        training_table_hash=table_hash(table),
        extra={
            "model": model,
            "families": list(families) if families is not None else None,
            "alpha": float(alpha),
            "random_state": int(random_state),
            "model_params": dict(model_params or {}),
            "n_images": len(table),
            "n_lesions": int(table["lesion_id"].nunique()),
            "class_counts": {c: int((table["dx"] == c).sum())
                             for c in (CLASSES if dataset is None else dataset.classes)},
            "features_path": str(features_path),
            "fit_seconds": round(seconds, 2),
            **({"segmenter_file": table.attrs["hamfeat"].get("segmenter_file")}
               if config.get("segmenter") else {}),
            "mask_mode": masks["mode"],
            "mask_sources": masks["counts"],
            **({"dataset": dataset.name} if dataset is not None else {}),
        },
        novelty=detector,
    )


def _checked_config(table, features_path: Path, families: Sequence[str] | None) -> dict:
    """The table's feature configuration, refused when missing or of another features version,
    or when ``families`` names a family the table has no column of."""
    config = table_config(table)
    if not config:
        raise DatasetError(
            f"{features_path}: the table carries no hamfeat feature configuration "
            "(attrs['hamfeat']['config']); write it with `hamfeat features`"
        )
    current = features_version()
    if int(config.get("features_version", -1)) != current:
        raise DatasetError(
            f"{features_path}: features version {config.get('features_version')!r} is not "
            f"this hamfeat's ({current}); recompute the features"
        )
    if families is not None:
        fams = FAMILY_NAMES + GRAY_FAMILY_NAMES
        have = [f for f in fams if feature_columns(table.columns, (f,))]
        missing = [f for f in families if f not in have]
        if missing:
            raise UsageError(
                f"--families: {features_path} has no column of {', '.join(missing)}; its "
                f"families: {', '.join(have) or 'none'}"
            )
    return config


@quiet("train")
def train_multilabel(
    features_path: str | PathLike[str],
    output: str | PathLike[str],
    *,
    model: str = PATCHKM,
    min_images: int = CXR_MIN_IMAGES,
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
    from hamfeat.models_multilabel import (
        check_pixels,
        cxr_families,
        fit_ovr,
        load_cxr_table,
        modellable_labels,
    )

    check_output(output)  # a folder, a missing or read-only folder: refused before fitting
    table = load_cxr_table(features_path)
    check_pixels(table, features_path, (model,))
    labels_df, skipped = modellable_labels(table, min_images)
    fams = cxr_families(table)
    est = make_multilabel_model(model, random_state=random_state, families=fams)
    from threadpoolctl import threadpool_limits

    say = progress or (lambda msg: log.info(msg))
    say(f"fitting {model} on {len(table)} images ({labels_df.shape[1]} labels, one-vs-rest)")
    t0 = time.perf_counter()
    with threadpool_limits(limits=1):
        fit_ovr(est, table, labels_df.to_numpy(np.int64))
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
