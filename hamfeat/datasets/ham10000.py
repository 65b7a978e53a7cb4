"""HAM10000 (dermoscopy, multi-class): its spec, and a folder in, one clean table of images out.

Accepted layouts (any mix, searched below the data folder):

* images flat in the folder, or in ``HAM10000_images_part_1/`` and ``HAM10000_images_part_2/``,
  ``HAM10000_images/``, ``images/``, ``ISIC2018_Task3_Training_Input/`` or
  ``ISIC2018_Task3_Test_Images/``, named ``<image_id>.jpg`` (``.jpeg``/``.png`` too);
* masks in ``HAM10000_segmentations_lesion_tschandl/``, ``masks/`` or ``segmentations/``, named
  ``<image_id>_segmentation.png``;
* labels from ``HAM10000_metadata.csv`` (or Dataverse's tab-separated ``HAM10000_metadata.tab``),
  or else from an ISIC 2018 Task 3 ground-truth file (one-hot columns
  ``image,MEL,NV,BCC,AKIEC,BKL,DF,VASC``), with lesion ids from an ISIC 2018
  ``*LesionGroupings.csv`` when present.

Problems never stop the reading of a folder: each is recorded with the file it concerns, the
faulty rows are left out, and :func:`load_dataset` returns the rest, unless ``strict=True``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from hamfeat.datasets import discovery
from hamfeat.datasets._registry import MULTICLASS, DatasetSpec, FeaturePreset, register_dataset
from hamfeat.datasets.discovery import MASK_SUFFIX, Dataset
from hamfeat.errors import DatasetError, ImageError, MaskError, Problem
from hamfeat.imageio import (
    IMAGE_SUFFIXES,
    MAX_PIXELS,
    not_regular_reason,
    open_regular,
    probe_header,
    special_kind,
)

__all__ = [
    "CLASSES",
    "HAM10000",
    "ISIC2018_COLUMNS",
    "MASK_DIRS",
    "find_data_dir",
    "load_dataset",
]

#: The seven diagnostic classes, in the order used for every probability column.
CLASSES: tuple[str, ...] = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
#: ISIC 2018 Task 3 column names, in the official submission order.
ISIC2018_COLUMNS: tuple[str, ...] = ("MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC")

IMAGE_DIRS = (
    "HAM10000_images_part_1",
    "HAM10000_images_part_2",
    "HAM10000_images",
    "images",
    "ISIC2018_Task3_Training_Input",
    "ISIC2018_Task3_Validation_Input",
    "ISIC2018_Task3_Test_Input",
    "ISIC2018_Task3_Test_Images",
)
MASK_DIRS = ("HAM10000_segmentations_lesion_tschandl", "masks", "segmentations")
METADATA_NAMES = ("HAM10000_metadata.csv", "HAM10000_metadata.tab", "HAM10000_metadata")
REQUIRED_COLUMNS = ("lesion_id", "image_id", "dx")
_ID_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")

_README_HINT = (
    "put HAM10000 in ./data/HAM10000 (see data/README), set HAMFEAT_DATA, or pass --data DIR"
)


def find_data_dir(data: str | os.PathLike[str] | None = None) -> Path:
    """Locate the HAM10000 folder (:func:`hamfeat.datasets.discovery.find_data_dir`).

    Order: ``data`` when given, then ``$HAMFEAT_DATA``, then ``./data/HAM10000``, then
    ``../shared/data/ham10000``.

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
        When no candidate exists; the message says where to put the data.
    """
    return discovery.find_data_dir(HAM10000, data)


def _index_files(
    root: Path, dirs: Iterable[str], *, masks: bool, skipped: set[str] | None = None
) -> tuple[dict[str, Path], list[Problem]]:
    """Map ids to files in ``root`` and the known sub-folders; duplicates are problems.

    Entries that are not regular files are problems too; their ids are added to ``skipped``.
    """
    found: dict[str, Path] = {}
    problems: list[Problem] = []
    skipped = set() if skipped is None else skipped
    folders = [root] + [root / d for d in dirs if (root / d).is_dir()]
    for folder in folders:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            problems.append(Problem(str(folder), f"cannot list folder ({exc.strerror})"))
            continue
        for entry in entries:
            stem, suffix = os.path.splitext(entry.name)
            if suffix.lower() not in IMAGE_SUFFIXES or entry.name.startswith("."):
                continue
            if masks != stem.endswith(MASK_SUFFIX):
                continue
            key = stem[: -len(MASK_SUFFIX)] if masks else stem
            path = Path(entry.path)
            try:
                regular = entry.is_file()  # follows links; never opens the entry
            except OSError:
                regular = False
            if not regular:  # a FIFO, socket, device, folder or broken link named like one
                kind = special_kind(path) or "special file"
                problems.append(
                    Problem(str(path), not_regular_reason(kind), "warning" if masks else "error")
                )
                skipped.add(key)
                continue
            if key in found:
                kind = "mask" if masks else "image"
                problems.append(
                    Problem(str(path), f"duplicate {kind} for {key} (also {found[key]}); ignored")
                )
                continue
            found[key] = path
    return found, problems


def _read_table(path: Path) -> pd.DataFrame:
    sep = "\t" if path.suffix.lower() in (".tab", ".tsv") or path.suffix == "" else ","
    try:
        table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except Exception as exc:  # pandas raises many types on broken files
        raise DatasetError(f"{path}: cannot read table ({exc})") from None
    table.columns = [str(c).strip().strip('"') for c in table.columns]
    return table


def _find_labels(root: Path) -> tuple[pd.DataFrame, Path, list[Problem]]:
    """Read labels from HAM10000 metadata or ISIC 2018 ground truth; normalise columns."""
    problems: list[Problem] = []
    for name in METADATA_NAMES:
        path = root / name
        if path.is_file():
            table = _read_table(path)
            missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
            if missing:
                raise DatasetError(
                    f"{path}: missing column(s) {', '.join(missing)}; "
                    f"expected {','.join(REQUIRED_COLUMNS)} (found {','.join(table.columns)})"
                )
            return table, path, problems
    truth = [
        p
        for p in sorted(root.glob("*GroundTruth*.csv")) + sorted(root.glob("*/*GroundTruth*.csv"))
        if p.is_file()  # regular files only: a FIFO is never opened
    ]
    if truth:
        return _read_isic2018(truth[0], root, problems), truth[0], problems
    raise DatasetError(
        f"{root}: no labels found (HAM10000_metadata.csv or an ISIC 2018 *GroundTruth.csv); "
        + _README_HINT
    )


def _read_isic2018(path: Path, root: Path, problems: list[Problem]) -> pd.DataFrame:
    table = _read_table(path)
    missing = [c for c in ("image", *ISIC2018_COLUMNS) if c not in table.columns]
    if missing:
        raise DatasetError(
            f"{path}: missing column(s) {', '.join(missing)} of the ISIC 2018 format"
        )
    try:
        onehot = table[list(ISIC2018_COLUMNS)].astype(float).to_numpy()
    except ValueError as exc:
        raise DatasetError(f"{path}: class columns are not numbers ({exc})") from None
    dx = np.array([c.lower() for c in ISIC2018_COLUMNS], dtype=object)[onehot.argmax(axis=1)]
    n_pos = (onehot > 0.5).sum(axis=1)
    dx = np.where(n_pos == 1, dx, "")  # "" is reported as an unknown label below
    out = pd.DataFrame({"image_id": table["image"].str.strip(), "dx": dx})
    for i in np.flatnonzero(n_pos != 1):
        problems.append(
            Problem(f"{path}:{i + 2}", f"row has {n_pos[i]} positive classes, expected exactly 1")
        )
    groupings = [
        p
        for p in sorted(root.glob("*LesionGroupings*.csv"))
        + sorted(root.glob("*/*LesionGroupings*.csv"))
        if p.is_file()
    ]
    if groupings:
        g = _read_table(groupings[0])
        if {"image", "lesion_id"} <= set(g.columns):
            out = out.merge(
                g[["image", "lesion_id"]].rename(columns={"image": "image_id"}),
                on="image_id",
                how="left",
            )
    if "lesion_id" not in out.columns:
        out["lesion_id"] = ""
    no_lesion = out["lesion_id"].isna() | (out["lesion_id"] == "")
    if no_lesion.any():
        problems.append(
            Problem(
                str(path),
                f"{int(no_lesion.sum())} image(s) have no lesion_id; "
                "each is treated as its own lesion",
                "warning",
            )
        )
        out.loc[no_lesion, "lesion_id"] = out.loc[no_lesion, "image_id"]
    return out


def load_dataset(
    data: str | os.PathLike[str] | None = None,
    *,
    strict: bool = False,
    check_files: bool = True,
) -> Dataset:
    """Read and validate a HAM10000-style data set folder.

    Parameters
    ----------
    data : path-like, optional
        The folder; see :func:`find_data_dir` for the default.
    strict : bool
        Raise :class:`DatasetError` listing every problem when any row had to be left out.
    check_files : bool
        Read every image's and mask's header (cheap: no pixel is decoded) to find empty,
        non-image and oversized files, and masks whose size differs from their image's.

    Returns
    -------
    Dataset
        The usable rows and every problem found.

    Raises
    ------
    DatasetError
        The folder or its labels cannot be read at all, or ``strict`` and a problem was found.
    """
    root = find_data_dir(data)
    labels, label_path, problems = _find_labels(root)
    not_regular: set[str] = set()  # ids whose "image" is a FIFO, folder ...: already named
    images, p = _index_files(root, IMAGE_DIRS, masks=False, skipped=not_regular)
    problems += p
    masks, p = _index_files(root, MASK_DIRS, masks=True)
    problems += p

    labels = labels.copy()
    for col in REQUIRED_COLUMNS:
        labels[col] = labels[col].astype(str).str.strip()
    labels["dx"] = labels["dx"].str.lower()
    keep = np.ones(len(labels), dtype=bool)
    line = np.arange(len(labels)) + 2  # header is line 1
    for i in np.flatnonzero(~labels["dx"].isin(CLASSES).to_numpy()):
        if labels["dx"].iat[i]:
            problems.append(
                Problem(
                    f"{label_path}:{line[i]}",
                    f"unknown dx {labels['dx'].iat[i]!r} for {labels['image_id'].iat[i]} "
                    f"(expected one of {', '.join(CLASSES)})",
                )
            )
        keep[i] = False
    for i in np.flatnonzero((labels["image_id"] == "").to_numpy()):
        problems.append(Problem(f"{label_path}:{line[i]}", "empty image_id"))
        keep[i] = False
    for i in np.flatnonzero((labels["lesion_id"] == "").to_numpy() & keep):
        problems.append(
            Problem(f"{label_path}:{line[i]}", f"empty lesion_id for {labels['image_id'].iat[i]}")
        )
        keep[i] = False
    dup = labels["image_id"].duplicated(keep="first").to_numpy()
    for i in np.flatnonzero(dup):
        problems.append(
            Problem(
                f"{label_path}:{line[i]}",
                f"duplicate image_id {labels['image_id'].iat[i]}; first row kept",
            )
        )
    keep &= ~dup
    has_file = labels["image_id"].isin(images.keys()).to_numpy()
    for i in np.flatnonzero(keep & ~has_file):
        if labels["image_id"].iat[i] in not_regular:
            continue
        problems.append(
            Problem(
                f"{label_path}:{line[i]}",
                f"no image file for {labels['image_id'].iat[i]} under {root}",
            )
        )
    keep &= has_file
    labelled = set(labels["image_id"])
    for key in sorted(set(images) - labelled):
        problems.append(
            Problem(str(images[key]), "image has no row in the labels; ignored", "warning")
        )
    for key in sorted(set(masks) - set(images)):
        problems.append(Problem(str(masks[key]), "mask has no matching image; ignored", "warning"))

    table = labels.loc[keep].copy()
    table["image_path"] = [str(images[k]) for k in table["image_id"]]
    table["mask_path"] = [str(masks[k]) if k in masks else None for k in table["image_id"]]

    if check_files:
        bad = _check_headers(table, problems)
        table = table.loc[~bad]

    first = ["image_id", "lesion_id", "dx", "image_path", "mask_path"]
    table = table[first + [c for c in table.columns if c not in first]]
    table = table.sort_values("image_id", kind="stable").reset_index(drop=True)
    if "age" in table.columns:
        table["age"] = pd.to_numeric(table["age"], errors="coerce")
    dataset = Dataset(root=root, table=table, problems=problems)
    if strict and dataset.errors:
        raise DatasetError(f"{root}: {len(dataset.errors)} problem(s) in the data set", problems)
    if table.empty:
        raise DatasetError(f"{root}: no usable image in the data set", problems)
    return dataset


def _check_headers(table: pd.DataFrame, problems: list[Problem]) -> np.ndarray:
    """Header-level checks of images and masks; returns a bool array of rows to drop."""
    bad = np.zeros(len(table), dtype=bool)
    mask_col = table.columns.get_loc("mask_path")
    for i, (img, mask) in enumerate(zip(table["image_path"], table["mask_path"], strict=True)):
        size = _header_size(img, problems)
        if size is None:
            bad[i] = True
            continue
        if pd.isna(mask):
            continue
        msize = _header_size(mask, problems, severity="warning", what="mask")
        if msize is None:
            table.iat[i, mask_col] = None
        elif msize != size:
            problems.append(
                Problem(
                    mask,
                    f"mask is {msize[0]}x{msize[1]} but its image is "
                    f"{size[0]}x{size[1]}; mask ignored",
                    "warning",
                )
            )
            table.iat[i, mask_col] = None
    return bad


def _header_size(
    path: str, problems: list[Problem], severity: str = "error", what: str = "image"
) -> tuple[int, int] | None:
    try:
        with open_regular(path, MaskError if what == "mask" else ImageError) as fh:
            head = fh.read(1 << 16)
    except (ImageError, MaskError) as exc:  # a FIFO, socket or folder is named, never opened
        problems.append(Problem(path, exc.reason, severity))
        return None
    except OSError as exc:
        problems.append(Problem(path, f"cannot read {what} ({exc.strerror})", severity))
        return None
    if not head:
        problems.append(Problem(path, f"empty {what} file (0 bytes)", severity))
        return None
    try:
        _fmt, _mode, size = probe_header(head, path, ImageError)
    except ImageError as exc:
        problems.append(Problem(path, exc.reason, severity))
        return None
    if size[0] * size[1] > MAX_PIXELS:
        problems.append(Problem(path, f"{what} too large ({size[0]}x{size[1]}); refused", severity))
        return None
    return size


def _summary(ds: Dataset) -> list[str]:
    """``hamfeat data``'s lines for a HAM10000 folder."""
    counts = ds.table["dx"].value_counts().sort_index()
    n_masks = int(ds.table["mask_path"].notna().sum())
    return [
        f"{ds.root}: {len(ds)} images, {ds.table['lesion_id'].nunique()} lesions, {n_masks} masks",
        "  " + ", ".join(f"{k} {v}" for k, v in counts.items()),
    ]


#: The HAM10000 spec (the ``--dataset`` default).
HAM10000: DatasetSpec = register_dataset(
    DatasetSpec(
        name="ham10000",
        description="dermoscopy",
        title="dermoscopy (HAM10000)",
        label="HAM10000",
        task=MULTICLASS,
        load=load_dataset,
        env="HAMFEAT_DATA",
        candidates=("data/HAM10000", "../shared/data/ham10000"),
        hint=_README_HINT,
        label_column="dx",
        group_column="lesion_id",
        classes=CLASSES,
        features=FeaturePreset(
            long_side=300, region="lesion", families="dermoscopy", uses_masks=True,
            mask_dirs=MASK_DIRS,
        ),
        default_model="ensemble",
        report_dir="reports",
        options={
            "features": (
                ("masks", "--masks"),
                ("color_constancy", "--color-constancy"),
                ("hair_removal", "--hair-removal"),
                ("segmenter", "--segmenter"),
            ),
            "train": (("families", "--families"),),
            "cv": (
                ("auto_features", "--auto-features"),
                ("cc_features", "--cc-features"),
                ("html", "--html"),
                ("data", "--data"),
            ),
            "score": (
                ("masks", "--masks"),
                ("lesion_map", "--lesion-map"),
                ("segmenter", "--segmenter"),
                ("html", "--html"),
            ),
        },
        tag_tables=False,
        summary=_summary,
    )
)
