"""NIH ChestX-ray14 (chest X-rays, multi-label): its spec, loader and X-ray feature configuration.

Accepted layouts (searched below the data folder):

* images anywhere below the folder, in any sub-folder layout (NIH's ``images_001/images/`` ...
  ``images_012/images/``, a flat ``images/``, class folders ...), named as in NIH's release
  (``00000002_000.png``; ``.png``, ``.jpg`` or ``.jpeg``), at any resolution;
* labels from a ``labels.csv`` (the shared sample's ``image_id, finding_labels, patient_id``,
  plus ``follow_up, age, sex, view`` when present), or else from NIH's
  ``Data_Entry_2017*.csv`` (or ``.csv.gz``), columns ``Image Index``, ``Finding Labels``,
  ``Patient ID`` (and ``Follow-up #``, ``Patient Age``, ``Patient Gender``,
  ``View Position``). Labels are joined by ``|``; ``No Finding`` means none.

The table has one row per image found that has labels: ``image_id, patient_id,
finding_labels, image_path`` then ``follow_up, age, sex, view`` where known. Images without a
label row are left out (one warning); duplicate image names keep the first path (warnings).

Features for X-rays (:data:`CXR_CONFIG`): every grayscale family of
:mod:`hamfeat.features.gray` over the **whole image** (no lung mask, no segmentation), no
colour constancy, at a canonical long side of :data:`CXR_LONG_SIDE` = 64 pixels. 64 is the
resolution of the shared sample, so its images are used as they are (no resampling); a full
1024x1024 NIH image is area-averaged down to 64x64, the same operation that made the sample, so a
model trained on the sample scores full-size images at the same scale. ``hamfeat features
--dataset cxr14 --long-side 256`` computes finer features for a full-release training.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hamfeat.datasets import discovery
from hamfeat.datasets._registry import MULTILABEL, DatasetSpec, FeaturePreset, register_dataset
from hamfeat.datasets.discovery import Dataset, walk_folders
from hamfeat.errors import DatasetError, Problem
from hamfeat.imageio import IMAGE_SUFFIXES, not_regular_reason, special_kind

if TYPE_CHECKING:
    from hamfeat.pipeline import FeatureConfig

# also CXR_CONFIG, CXR_MODEL_FAMILIES and PIXEL_FAMILY, computed on first use (``__getattr__``)
__all__ = [
    "CXR14",
    "CXR_LONG_SIDE",
    "FINDINGS",
    "NO_FINDING",
    "cxr_config",
    "find_cxr14_dir",
    "label_matrix",
    "load_cxr14",
    "split_findings",
]

#: The 14 findings of ChestX-ray14, in NIH's order.
FINDINGS: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Pleural_Thickening",
    "Hernia",
)
#: The label of an image without any finding.
NO_FINDING = "No Finding"
#: Canonical long side for chest X-rays (see the module docstring).
CXR_LONG_SIDE = 64
#: Column names of NIH's ``Data_Entry_2017*.csv`` and what they become.
NIH_COLUMNS = {
    "Image Index": "image_id",
    "Finding Labels": "finding_labels",
    "Patient ID": "patient_id",
    "Follow-up #": "follow_up",
    "Patient Age": "age",
    "Patient Gender": "sex",
    "View Position": "view",
}
REQUIRED = ("image_id", "finding_labels", "patient_id")
OPTIONAL = ("follow_up", "age", "sex", "view")
_HINT = "pass --data DIR (a folder with the images and labels.csv or Data_Entry_2017*.csv)"


def cxr_config(long_side: int = CXR_LONG_SIDE, families=None) -> FeatureConfig:
    """The feature configuration for chest X-rays.

    Parameters
    ----------
    long_side : int
        Canonical long side in pixels (default :data:`CXR_LONG_SIDE`).
    families : sequence of str, optional
        Default: every grayscale family.

    Returns
    -------
    FeatureConfig
        Whole image (``region="whole"``), no colour constancy, no hair removal.
    """
    from hamfeat.features import GRAY_FAMILY_NAMES
    from hamfeat.pipeline import FeatureConfig

    fams = tuple(families) if families else GRAY_FAMILY_NAMES
    return FeatureConfig(
        families=fams,
        color_constancy=False,
        hair_removal=False,
        long_side=int(long_side),
        region="whole",
    )


def __getattr__(name: str) -> Any:
    """The feature-side names, computed on first use: this module sits below the features and
    the pipeline, so it imports neither up front (the registry is read before any computation).

    ``CXR_CONFIG``: the default configuration (:func:`cxr_config`). ``PIXEL_FAMILY``: the pixel
    family (:class:`~hamfeat.features.gray.GrayPixFamily`), read by learned models only.
    ``CXR_MODEL_FAMILIES``: the families the hand-made X-ray models (lr, rf, knn, ...) use:
    every grayscale family but ``graypix`` (pixels, read only by the learned ``patchkm`` model
    of :mod:`hamfeat.models_multilabel`). Chosen on development CV seeds 1-3, never on the
    report's seed 0 (see benchmarks/reports/cxr14/cv_report.md, "How the configuration was
    chosen"): the thumbnail, profiles and HOG families each raised the development abnormal AUC
    a little.
    """
    if name == "CXR_CONFIG":
        value: Any = cxr_config()
    elif name == "PIXEL_FAMILY":
        from hamfeat.features.gray import GrayPixFamily

        value = GrayPixFamily.name
    elif name == "CXR_MODEL_FAMILIES":
        from hamfeat.features import GRAY_FAMILY_NAMES
        from hamfeat.features.gray import GrayPixFamily

        value = tuple(f for f in GRAY_FAMILY_NAMES if f != GrayPixFamily.name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def find_cxr14_dir(data: str | os.PathLike[str] | None = None) -> Path:
    """Locate the ChestX-ray14 folder (:func:`hamfeat.datasets.discovery.find_data_dir`).

    Order: ``data`` when given, then ``$HAMFEAT_CXR14_DATA``, then ``./data/nih-cxr14``, then
    ``../shared/data/nih-cxr14-sample``.

    Parameters
    ----------
    data : path-like, optional
        An explicit folder.

    Returns
    -------
    pathlib.Path
        An existing folder.

    Raises
    ------
    DatasetError
        When no candidate exists.
    """
    return discovery.find_data_dir(CXR14, data)


def split_findings(labels: str) -> list[str]:
    """The findings of a ``Finding Labels`` value (``[]`` for ``No Finding``).

    Examples
    --------
    >>> split_findings("Effusion|Mass")
    ['Effusion', 'Mass']
    >>> split_findings("No Finding")
    []
    """
    parts = [p.strip() for p in str(labels).split("|")]
    return [p for p in parts if p and p != NO_FINDING]


def _read_labels(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:  # pandas raises many types on broken files
        raise DatasetError(f"{path}: cannot read table ({exc})") from None
    table.columns = [str(c).strip() for c in table.columns]
    if set(NIH_COLUMNS) & set(table.columns) and "image_id" not in table.columns:
        table = table.rename(columns=NIH_COLUMNS)
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise DatasetError(
            f"{path}: missing column(s) {', '.join(missing)}; expected labels.csv "
            "(image_id, finding_labels, patient_id) or NIH's Data_Entry_2017 "
            "(Image Index, Finding Labels, Patient ID)"
        )
    keep = [c for c in REQUIRED + OPTIONAL if c in table.columns]
    table = table[keep].copy()
    for c in keep:
        table[c] = table[c].str.strip()
    return table


def _find_label_file(root: Path) -> Path:
    found = sorted(p for p in root.rglob("labels.csv") if p.is_file())  # never a FIFO
    if found:
        return min(found, key=lambda p: (len(p.parts), str(p)))
    found = sorted(
        p
        for p in root.rglob("Data_Entry_2017*")
        if re.search(r"\.csv(\.gz)?$", p.name, re.I) and p.is_file()
    )
    if found:
        return min(found, key=lambda p: (len(p.parts), str(p)))
    raise DatasetError(f"{root}: no labels found (labels.csv or Data_Entry_2017*.csv); {_HINT}")


def _index_images(root: Path) -> tuple[dict[str, Path], list[Problem]]:
    found: dict[str, Path] = {}
    problems: list[Problem] = []

    # links to folders are followed, each real folder once (a link to an ancestor never loops)
    for dirpath, _dirnames, filenames in walk_folders(root, problems, skip_hidden=True):
        for name in filenames:
            stem, suffix = os.path.splitext(name)
            if suffix.lower() not in IMAGE_SUFFIXES or name.startswith("."):
                continue
            path = Path(dirpath) / name
            kind = special_kind(path)
            if kind is not None:  # a FIFO, socket, device or broken link: named, never opened
                problems.append(Problem(str(path), not_regular_reason(kind)))
                continue
            if stem in found:
                problems.append(
                    Problem(str(path), f"duplicate image for {stem} (also {found[stem]}); ignored")
                )
                continue
            found[stem] = path
    return found, problems


def load_cxr14(data: str | os.PathLike[str] | None = None, *, strict: bool = False) -> Dataset:
    """Read a ChestX-ray14 folder into one table of labelled images.

    Parameters
    ----------
    data : path-like, optional
        The folder (see :func:`find_cxr14_dir`).
    strict : bool
        Raise on the first problem instead of leaving the row out.

    Returns
    -------
    Dataset
        ``table`` sorted by ``image_id``; ``problems`` lists duplicates, images without labels,
        label rows with an empty ``finding_labels`` or ``patient_id`` (left out).

    Raises
    ------
    DatasetError
        No folder, no label file, missing columns, or no labelled image.
    """
    root = find_cxr14_dir(data)
    label_path = _find_label_file(root)
    labels = _read_labels(label_path)
    images, problems = _index_images(root)
    labels["image_key"] = labels["image_id"].map(lambda s: os.path.splitext(s)[0])
    dup = labels["image_key"].duplicated(keep="first")
    for i in np.flatnonzero(dup.to_numpy()):
        problems.append(
            Problem(f"{label_path}:{i + 2}", f"duplicate label row for {labels['image_id'].iat[i]}")
        )
    labels = labels[~dup]
    bad = (labels["finding_labels"] == "") | (labels["patient_id"] == "")
    for i in np.flatnonzero(bad.to_numpy()):
        problems.append(
            Problem(f"{label_path}", f"{labels['image_id'].iat[i]}: empty finding_labels or "
                    "patient_id; left out")
        )
    labels = labels[~bad]
    by_key = labels.set_index("image_key")
    unlabelled = sorted(k for k in images if k not in by_key.index)
    if unlabelled:
        problems.append(
            Problem(
                str(root),
                f"{len(unlabelled)} image(s) have no label row in {label_path.name} and are left "
                f"out, e.g. {images[unlabelled[0]]}",
                "warning",
            )
        )
    keys = sorted(k for k in images if k in by_key.index)
    if not keys:
        raise DatasetError(
            f"{root}: no labelled image found ({len(images)} image file(s), "
            f"{len(labels)} label row(s) in {label_path})",
            problems,
        )
    rows = by_key.loc[keys]
    table = pd.DataFrame(
        {
            "image_id": keys,
            "patient_id": rows["patient_id"].to_numpy(),
            "finding_labels": rows["finding_labels"].to_numpy(),
            "image_path": [str(images[k]) for k in keys],
        }
    )
    for c in OPTIONAL:
        if c in rows.columns:
            table[c] = rows[c].to_numpy()
    if "age" in table:
        table["age"] = pd.to_numeric(table["age"], errors="coerce")
    if "follow_up" in table:
        table["follow_up"] = pd.to_numeric(table["follow_up"], errors="coerce")
    unknown = sorted(
        {f for s in table["finding_labels"] for f in split_findings(s)} - set(FINDINGS)
    )
    if unknown:
        problems.append(
            Problem(str(label_path), f"finding(s) outside NIH's 14: {', '.join(unknown)}; kept",
                    "warning")
        )
    if strict and problems:
        raise DatasetError(f"{root}: {problems[0]}", problems)
    return Dataset(root, table.reset_index(drop=True), problems)


def label_matrix(
    finding_labels, findings: tuple[str, ...] | list[str] | None = None
) -> pd.DataFrame:
    """One 0/1 column per finding, plus ``abnormal`` (any finding vs ``No Finding``).

    Parameters
    ----------
    finding_labels : sequence of str
        ``Finding Labels`` values (joined by ``|``).
    findings : sequence of str, optional
        The finding columns, in order (default: every finding present, in NIH's order, then
        any other in alphabetical order).

    Returns
    -------
    pandas.DataFrame
        ``int8`` columns ``<finding>...`` and ``abnormal``.
    """
    sets = [set(split_findings(s)) for s in finding_labels]
    if findings is None:
        present = set().union(*sets) if sets else set()
        findings = [f for f in FINDINGS if f in present] + sorted(present - set(FINDINGS))
    out = pd.DataFrame(
        {f: np.array([f in s for s in sets], dtype=np.int8) for f in findings}
    )
    out["abnormal"] = np.array([bool(s) for s in sets], dtype=np.int8)
    return out


def _summary(ds: Dataset) -> list[str]:
    """``hamfeat data``'s lines for a ChestX-ray14 folder."""
    t = ds.table
    labels = label_matrix(t["finding_labels"])
    n_abn = int(labels.pop("abnormal").sum())
    lines = [
        f"{ds.root}: {len(ds)} images, {t['patient_id'].nunique()} patients, "
        f"{n_abn} abnormal (any finding), {len(ds) - n_abn} No Finding",
        "  " + ", ".join(f"{k} {int(v)}" for k, v in labels.sum().items()),
    ]
    if "view" in t:
        views = t["view"].value_counts().items()
        lines.append("  view: " + ", ".join(f"{k} {v}" for k, v in views))
    return lines


#: The ChestX-ray14 spec. ``models``: :data:`hamfeat.models_multilabel.CXR_MODELS` (names).
CXR14: DatasetSpec = register_dataset(
    DatasetSpec(
        name="cxr14",
        description="NIH ChestX-ray14, multi-label",
        title="chest X-rays (ChestX-ray14)",
        label="ChestX-ray14",
        task=MULTILABEL,
        load=load_cxr14,
        env="HAMFEAT_CXR14_DATA",
        candidates=("data/nih-cxr14", "../shared/data/nih-cxr14-sample"),
        hint=_HINT,
        label_column="finding_labels",
        group_column="patient_id",
        classes=FINDINGS,
        features=FeaturePreset(long_side=CXR_LONG_SIDE, region="whole", families="gray"),
        default_model="patchkm",
        models=("lr", "rf", "knn", "ensemble", "patchkm"),
        cv_models=("lr", "rf", "knn", "ensemble", "patchkm"),
        report_dir="reports/cxr14",
        summary=_summary,
        strict_help="any problem, warnings too",
    )
)
