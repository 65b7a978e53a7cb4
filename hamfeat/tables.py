"""Feature tables on disk: read and check a ``hamfeat features`` table, its content hash and
its stored feature configuration (used by cross-validation, training and the benchmarks)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from hamfeat.datasets.ham10000 import CLASSES
from hamfeat.errors import DatasetError
from hamfeat.models import FAMILY_NAMES, feature_columns, note_undeclared

if TYPE_CHECKING:
    from hamfeat.datasets import DatasetSpec

__all__ = ["LABEL_COLUMNS", "check_table", "features_version", "load_table", "table_config",
           "table_hash"]

LABEL_COLUMNS = ("image_id", "lesion_id", "dx")


def load_table(path: str | PathLike[str], dataset: DatasetSpec | None = None) -> pd.DataFrame:
    """Read a feature table and check its labels.

    Parameters
    ----------
    path : path-like
        A parquet table written by ``hamfeat features``.
    dataset : DatasetSpec, optional
        A multi-class data set other than HAM10000: its label and group columns are read as
        ``dx`` and ``lesion_id`` (renamed in the returned table) and its classes are the
        known labels (default: HAM10000's columns and classes).

    Returns
    -------
    pandas.DataFrame
        The table, with ``attrs`` kept.

    Raises
    ------
    DatasetError
        ``"<path>: <reason>"`` when the file cannot be read, lacks ``image_id``, ``lesion_id``
        or ``dx``, has missing or unknown labels, or has no feature column.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: feature table not found")
    try:
        table = pd.read_parquet(path)
    except Exception as exc:
        raise DatasetError(
            f"{path}: cannot read the feature table ({type(exc).__name__}: {exc})"
        ) from exc
    classes = CLASSES
    if dataset is not None:
        table = table.rename(
            columns={dataset.label_column: "dx", dataset.group_column: "lesion_id"})
        classes = tuple(dataset.classes)
    check_table(table, path, classes=classes)
    note_undeclared(table.columns, path)
    return table


def check_table(
    table: pd.DataFrame,
    path: str | PathLike[str] | None = None,
    *,
    classes: Sequence[str] = CLASSES,
) -> None:
    """Check that a feature table has usable labels, lesion ids and feature columns.

    Parameters
    ----------
    table : pandas.DataFrame
    path : path-like, optional
        Named in the error message.
    classes : sequence of str
        The known labels (default: HAM10000's).

    Raises
    ------
    DatasetError
    """
    where = str(path) if path is not None else "<table>"
    lacking = [c for c in LABEL_COLUMNS if c not in table.columns]
    if lacking:
        raise DatasetError(
            f"{where}: the feature table has no label column(s) {', '.join(lacking)}; "
            "training and cross-validation need image_id, lesion_id and dx"
        )
    if table.empty:
        raise DatasetError(f"{where}: the feature table has no rows")
    dx = table["dx"]
    n_missing = int(dx.isna().sum())
    if n_missing:
        raise DatasetError(f"{where}: {n_missing} row(s) have no label (dx is empty)")
    unknown = sorted(set(map(str, dx.unique())) - set(classes))
    if unknown:
        raise DatasetError(
            f"{where}: unknown label(s) {', '.join(map(repr, unknown[:5]))} in dx; "
            f"known: {', '.join(classes)}"
        )
    if int(table["lesion_id"].isna().sum()):
        raise DatasetError(f"{where}: {int(table['lesion_id'].isna().sum())} row(s) lack lesion_id")
    if not feature_columns(table.columns):
        raise DatasetError(
            f"{where}: no feature column (no column is a feature name declared by the families "
            f"{', '.join(FAMILY_NAMES)})"
        )


def table_hash(table: pd.DataFrame) -> str:
    """A short content hash of a feature table (columns, row order and every value).

    Parameters
    ----------
    table : pandas.DataFrame

    Returns
    -------
    str
        16 hex digits.
    """
    h = hashlib.sha256()
    h.update(json.dumps([str(c) for c in table.columns]).encode())
    h.update(pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


def table_config(table: pd.DataFrame) -> dict:
    """The feature configuration stored by ``hamfeat features`` in ``table.attrs``.

    Returns
    -------
    dict
        Empty when the table carries none.
    """
    meta = table.attrs.get("hamfeat") if isinstance(table.attrs, dict) else None
    if isinstance(meta, dict) and isinstance(meta.get("config"), dict):
        return dict(meta["config"])
    return {}

def features_version() -> int:
    """The feature version of this hamfeat (:data:`hamfeat.features.FEATURES_VERSION`).

    Returns
    -------
    int
    """
    from hamfeat.features import FEATURES_VERSION

    return int(FEATURES_VERSION)
