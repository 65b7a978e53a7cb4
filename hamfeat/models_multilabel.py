"""The ChestX-ray14 side of the multi-label task: the X-ray feature table, its labels, and
fitting and predicting one-vs-rest models on a 0/1 label matrix.

The models themselves are built by the model registry's
:func:`hamfeat.models.make_multilabel_model` (one binary model per label, fitted one-vs-rest:
:class:`~sklearn.multiclass.OneVsRestClassifier` around the usual
:func:`hamfeat.models.make_model` pipelines, with the X-ray parameters of
``task_params("multilabel")``): one label per finding with at least :data:`MIN_IMAGES`
images, plus ``abnormal`` (any finding vs ``No Finding``).
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hamfeat.datasets.cxr14 import CXR_MODEL_FAMILIES, label_matrix
from hamfeat.errors import DatasetError
from hamfeat.models import (
    GRAY_FAMILY_NAMES,
    MULTILABEL,
    feature_columns,
    get_model_spec,
    missing_families,
    model_names,
    note_undeclared,
)

__all__ = [
    "ABNORMAL",
    "CXR_LABEL_COLUMNS",
    "CXR_MODELS",
    "MIN_IMAGES",
    "PATCHKM",
    "check_pixels",
    "cxr_families",
    "fit_ovr",
    "load_cxr_table",
    "modellable_labels",
    "positive_proba",
]

#: The "any finding vs No Finding" label.
ABNORMAL = "abnormal"
#: Findings with fewer images than this are not modelled.
MIN_IMAGES = 25
#: Models evaluated by default: the registry's default list for the multi-label task
#: (``model_names("multilabel", default=True)``). ``svm`` and ``hgb`` are left out: on the
#: sample neither beats rf with the seven families (abnormal AUC: hgb 0.605, svm 0.500 against
#: rf 0.643), hgb fitting is slow (112 s of fit time for 13 labels x 5 folds on 2 idle cores),
#: and the calibrated SVM ranks at chance out of fold; see benchmarks/reports/cxr14/svm_hgb/.
#: ``patchkm`` is the learned patch model (:data:`PATCHKM`).
CXR_MODELS: tuple[str, ...] = model_names(MULTILABEL, default=True)
#: The learned-feature model (registered in :mod:`hamfeat.models.builders`): a
#: :class:`~hamfeat.encoders.PatchKMeansEncoder` on the ``graypix`` family, then one logistic
#: regression per label; the X-ray default of ``hamfeat train --dataset cxr14``.
PATCHKM = "patchkm"
#: Columns every X-ray feature table must have.
CXR_LABEL_COLUMNS = ("image_id", "patient_id", "finding_labels")


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


def cxr_families(table: pd.DataFrame) -> tuple[str, ...]:
    """The model families (:data:`~hamfeat.datasets.cxr14.CXR_MODEL_FAMILIES`) the table has.

    A table with none of them (e.g. only ``grayhog``) uses every grayscale family it has.

    Parameters
    ----------
    table : pandas.DataFrame

    Returns
    -------
    tuple of str
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


def check_pixels(table: pd.DataFrame, path, models: Sequence[str]) -> None:
    """A one-line error when a model that reads fixed families (:data:`PATCHKM`: the
    ``graypix`` pixels) is asked for and the table lacks them.

    Parameters
    ----------
    table : pandas.DataFrame
    path : path-like
        Named in the message.
    models : sequence of str
        Names that are not registered models are left to the model factory.

    Raises
    ------
    DatasetError
    """
    known = model_names()
    for m in models:
        lacking = missing_families(m, table.columns) if m in known else ()
        if lacking:
            others = ",".join(n for n in CXR_MODELS if not get_model_spec(n).fixed_families)
            raise DatasetError(
                f"{path}: model {m} needs the {', '.join(lacking)} columns, which this table "
                "lacks; recompute it with 'hamfeat features --dataset cxr14' (or leave the "
                f"model out, e.g. --models {others})"
            )


def fit_ovr(est: Any, X: pd.DataFrame, Y: np.ndarray) -> Any:
    """Fit a one-vs-rest estimator on a 0/1 label matrix (one label: a binary problem).

    Returns
    -------
    The fitted estimator.
    """
    return est.fit(X, Y[:, 0] if Y.shape[1] == 1 else Y)


def positive_proba(est: Any, X: pd.DataFrame, n_labels: int) -> np.ndarray:
    """The positive-class probability of each label, shape (n, n_labels).

    Returns
    -------
    numpy.ndarray
    """
    proba = np.asarray(est.predict_proba(X), dtype=np.float64)
    if n_labels == 1:  # a single label is fitted as a binary problem
        return proba[:, 1:2] if proba.shape[1] == 2 else proba
    return proba
