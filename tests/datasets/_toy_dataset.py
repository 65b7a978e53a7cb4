"""A third, generated data set, declared in this one file: the proof that a data set is a spec.

``toyshapes``: small grey images of a disc, a ring or a square (three classes, column
``shape``), several images per object (the group column ``object_id``), labels in
``labels.csv``. :func:`make_toy_folder` writes such a folder; :data:`TOY` is its spec. Nothing
in hamfeat names it: a test registers it with :func:`hamfeat.datasets.register_dataset` (a
plain call rather than an entry point: the registry is an in-process table, and an entry point
would need an installed distribution just for a test).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from hamfeat.datasets import MULTICLASS, DatasetSpec, FeaturePreset
from hamfeat.datasets.discovery import Dataset, find_data_dir
from hamfeat.errors import DatasetError, Problem

CLASSES = ("disc", "ring", "square")


def draw(cls: str, rng: np.random.Generator, size: int = 48) -> np.ndarray:
    """One grey ``size`` x ``size`` image of a shape of class ``cls`` on a noisy background."""
    img = rng.normal(60, 8, (size, size)).clip(0, 255).astype(np.uint8)
    c = size // 2 + int(rng.integers(-3, 4)), size // 2 + int(rng.integers(-3, 4))
    r = size // 3 + int(rng.integers(-2, 3))
    if cls == "square":
        cv2.rectangle(img, (c[0] - r, c[1] - r), (c[0] + r, c[1] + r), 220, -1)
    else:
        cv2.circle(img, c, r, 220, -1 if cls == "disc" else 4)
    return img


def make_toy_folder(root: Path, n_objects: int = 18, per_object: int = 2) -> Path:
    """Write ``n_objects * per_object`` PNG images (classes in turn) and their ``labels.csv``."""
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for obj in range(n_objects):
        cls = CLASSES[obj % len(CLASSES)]
        for k in range(per_object):
            image_id = f"toy_{obj:03d}_{k}"
            img = draw(cls, np.random.default_rng(obj * 10 + k))
            cv2.imwrite(str(root / f"{image_id}.png"), img)
            rows.append({"image_id": image_id, "shape": cls, "object_id": f"obj{obj:03d}"})
    pd.DataFrame(rows).to_csv(root / "labels.csv", index=False)
    return root


def load_toy(data: str | os.PathLike[str] | None = None, *, strict: bool = False) -> Dataset:
    """Read a toy folder: ``labels.csv`` plus one ``<image_id>.png`` per row (rows without
    their image are left out, each named)."""
    root = find_data_dir(TOY, data)
    labels = root / "labels.csv"
    if not labels.is_file():
        raise DatasetError(f"{labels}: labels file not found; {TOY.hint}")
    table = pd.read_csv(labels, dtype=str)
    table["image_path"] = [str(root / f"{i}.png") for i in table["image_id"]]
    present = np.array([Path(p).is_file() for p in table["image_path"]])
    problems = [Problem(p, "image file not found") for p in table["image_path"][~present]]
    if strict and problems:
        raise DatasetError(f"{root}: {problems[0]}", problems)
    return Dataset(root, table[present].reset_index(drop=True), problems)


#: The toy spec: whole-image grayscale features at 48 px, a multi-class task of its own.
TOY = DatasetSpec(
    name="toyshapes",
    description="generated toy shapes",
    title="toy shapes (generated)",
    label="toy shapes",
    task=MULTICLASS,
    load=load_toy,
    env="HAMFEAT_TOY_DATA",
    candidates=(),
    hint="pass --data DIR (a folder with labels.csv and PNG images)",
    label_column="shape",
    group_column="object_id",
    classes=CLASSES,
    # dermoscopy families (the multi-class models read those), over the whole image
    features=FeaturePreset(long_side=48, region="whole", families=("color", "glcm", "lbp")),
    default_model="lr",
    models=("lr", "knn", "rf"),
    cv_models=("lr", "knn"),
    report_dir="reports/toyshapes",
    summary=lambda ds: [f"{ds.root}: {len(ds)} images, {ds.table['object_id'].nunique()} objects"],
)
