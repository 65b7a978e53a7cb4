"""``hamfeat score``: a folder of images in, a table of class probabilities out.

Every image takes the same path as in training (:mod:`hamfeat.pipeline`), with the feature
configuration stored in the model file, so scoring features always match the model's.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hamfeat.data import CLASSES, ISIC2018_COLUMNS, list_images
from hamfeat.errors import DatasetError, ModelError, Problem
from hamfeat.extract import extract_table
from hamfeat.imageio import not_regular_reason, special_kind
from hamfeat.pipeline import FeatureConfig

__all__ = ["MALIGNANT", "ScoreResult", "default_model_path", "score_folder"]

log = logging.getLogger("hamfeat")

#: Classes summed into ``p_malignant``.
MALIGNANT = ("mel", "bcc", "akiec")


def default_model_path() -> Path:
    """The model ``make train`` writes: ``$HAMFEAT_MODEL``, else ``./out/model.skops``."""
    return Path(os.environ.get("HAMFEAT_MODEL", "out/model.skops"))


@dataclass
class ScoreResult:
    """What :func:`score_folder` returns.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per input image file (in path order): ``path, image_id, prediction,
        p_<class>`` for each class, ``p_malignant, mask_source, error``; failed files have an
        ``error`` and empty predictions. With a lesion map, ``level`` and ``lesion_id``
        columns are added, and one ``level == "lesion"`` row per lesion.
    problems : list of Problem
        Every failed file (errors) and warnings (skipped non-image files, rejected masks).
    model_path : pathlib.Path
    n_failed : int
    """

    table: pd.DataFrame
    problems: list[Problem] = field(default_factory=list)
    model_path: Path | None = None
    n_failed: int = 0
    #: The feature rows of the scored images (``image_id, path, ..., mask_path`` and the
    #: features), and the loaded model: what ``score --html`` explains. Not in the CSV.
    features: pd.DataFrame | None = None
    model: object | None = None

    def isic2018(self) -> pd.DataFrame:
        """The ISIC 2018 Task 3 submission: ``image,MEL,NV,BCC,AKIEC,BKL,DF,VASC``.

        The probabilities are the model's, re-weighted by its decision rule and renormalised,
        so that each row's largest value is the predicted class (the challenge's balanced
        accuracy is computed from that argmax). Failed images are left out, and so are
        later files with an ``image_id`` already written (a warning names them).
        """
        ok = self.images()
        ok = ok[ok["error"].isna()].drop_duplicates("image_id", keep="first")
        cols = {c.upper(): f"q_{c}" for c in CLASSES}
        if not set(cols.values()) <= set(ok.columns):
            raise ModelError(self.model_path or "model", "--format isic2018 needs a HAM10000 model")
        out = pd.DataFrame({"image": ok["image_id"].to_numpy()})
        for col in ISIC2018_COLUMNS:
            out[col] = ok[cols[col]].to_numpy()
        return out

    def images(self) -> pd.DataFrame:
        """The image rows of :attr:`table` (without lesion rows)."""
        if "level" in self.table.columns:
            return self.table[self.table["level"] == "image"]
        return self.table

    def csv_table(self) -> pd.DataFrame:
        """:attr:`table` without the internal decision-weighted ``q_*`` columns."""
        return self.table.drop(columns=[c for c in self.table.columns if c.startswith("q_")])


def _config_from_model(model) -> FeatureConfig:
    cfg = dict(model.config or {})
    try:
        return FeatureConfig(
            families=tuple(cfg["families"]),
            color_constancy=bool(cfg["color_constancy"]),
            hair_removal=bool(cfg["hair_removal"]),
            long_side=int(cfg["long_side"]),
            region=str(cfg.get("region", "lesion")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(model.path, f"model has no usable feature configuration ({exc})") from None


def score_folder(
    folder: str | os.PathLike[str],
    *,
    model_path: str | os.PathLike[str] | None = None,
    masks_dir: str | os.PathLike[str] | None = None,
    recursive: bool = False,
    jobs: int = 0,
    lesion_map: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | bool | None = False,
    progress: bool | None = None,
    dataset: str | None = None,
    backend: str = "joblib",
    scheduler: str | None = None,
) -> ScoreResult:
    """Score every JPEG/PNG image of a folder with a trained hamfeat model.

    Parameters
    ----------
    folder : path-like
        The images (``.jpg``, ``.jpeg``, ``.png``, any case; other files are skipped with a
        warning), or one image file. Only regular files (and links to them) are read: a FIFO,
        socket, device or folder named like an image gets its kind as its ``error``.
    model_path : path-like, optional
        A model written by ``hamfeat train`` (default: :func:`default_model_path`).
    masks_dir : path-like, optional
        Folder of ``<image_id>_segmentation.png`` masks; images without one are segmented
        automatically.
    recursive : bool
        Include sub-folders, following links to folders (each folder once, no loop).
    jobs : int
        Worker processes (0: all cores).
    lesion_map : path-like, optional
        CSV with ``image_id,lesion_id``: adds lesion rows with probabilities averaged over
        each lesion's images.
    cache_dir : path-like, True or False
        Feature cache (default: none).
    progress : bool, optional
        Progress bar on stderr (default: when stderr is a terminal).
    dataset : {"ham10000", "cxr14"}, optional
        Refuse a model made for another data set (default: take the model's). A multi-label
        (``cxr14``) model writes ``path, image_id, p_<label>...`` (one probability per label,
        ``abnormal`` = any finding) ``, mask_source, error``.
    backend, scheduler
        Where features are computed: as in :func:`hamfeat.extract.extract_table`.

    Returns
    -------
    ScoreResult

    Raises
    ------
    ModelError
        The model file is missing, not a hamfeat model, or unsafe.
    DatasetError
        The folder (or file) does not exist, or the folder holds no image file.
    """
    from hamfeat.models import load_model

    model_path = Path(model_path) if model_path is not None else default_model_path()
    if not model_path.is_file():
        raise ModelError(model_path, "model file not found (run `make train`, or pass --model)")
    model = load_model(model_path)
    config = _config_from_model(model)
    multilabel = model.extra.get("task") == "multilabel"
    model_dataset = str(model.extra.get("dataset", "ham10000"))
    if dataset is not None and dataset != model_dataset:
        raise ModelError(model_path, f"model is for {model_dataset}, not {dataset}")
    if multilabel and (masks_dir is not None or lesion_map is not None):
        raise DatasetError(f"{model_path}: a {model_dataset} model takes no masks or lesion map")

    src = Path(folder)
    if src.is_dir():
        files, problems = list_images(src, recursive=recursive)
    elif os.path.lexists(src):  # one file: scored whatever its name (a FIFO fails, never hangs)
        files, problems = [src], []
    else:
        raise DatasetError(f"{src}: no such file or folder")
    if not files:
        raise DatasetError(
            f"{folder}: no .jpg/.jpeg/.png image found"
            + ("" if recursive else " (use --recursive for sub-folders)"),
            problems,
        )
    ids = [f.stem for f in files]
    first_of: dict[str, Path] = {}
    for f, i in zip(files, ids, strict=True):
        if i in first_of:  # e.g. a.jpg and a.png, or a.jpg in two sub-folders
            problems.append(
                Problem(
                    str(f),
                    f"same image_id {i!r} as {first_of[i]}; both are scored, "
                    "--format isic2018 keeps the first scored one",
                    "warning",
                )
            )
        else:
            first_of[i] = f
    masks = None
    if masks_dir is not None:
        mdir = Path(masks_dir)
        if not mdir.is_dir():
            raise DatasetError(f"{mdir}: masks folder not found")
        masks = []
        for i in ids:
            m = mdir / f"{i}_segmentation.png"
            kind = special_kind(m)
            if kind is not None:  # a FIFO, folder, broken link ...: never opened
                problems.append(
                    Problem(str(m), f"{not_regular_reason(kind)}; automatic mask used", "warning")
                )
            masks.append(str(m) if kind is None and m.is_file() else None)
    table = pd.DataFrame(
        {
            "path": [str(f) for f in files],
            "image_id": ids,
            "image_path": [str(f) for f in files],
            "mask_path": masks if masks is not None else [None] * len(files),
        }
    )
    result = extract_table(
        table,
        config,
        jobs=jobs,
        cache_dir=cache_dir,
        progress=progress,
        backend=backend,
        scheduler=scheduler,
    )
    problems += result.problems
    feats = result.table
    out = pd.DataFrame({"path": table["path"], "image_id": table["image_id"]})
    classes = [str(c) for c in model.classes]
    prob_cols = [f"p_{c}" for c in classes]
    scored = pd.DataFrame(index=out.index)
    if multilabel:
        return _score_multilabel(model, model_path, table, feats, out, problems, prob_cols)
    if len(feats):
        proba = model.predict_proba(feats).to_numpy()
        q = _decision_weights(model, proba)
        # argmax of the decision weights is exactly the model's predict (one pass, not two)
        pred = np.asarray(classes)[q.argmax(axis=1)]
        pos = pd.Index(table["path"]).get_indexer(feats["path"])
        scored = pd.DataFrame(proba, columns=prob_cols, index=pos)
        for j, c in enumerate(classes):
            scored[f"q_{c}"] = q[:, j]
        scored["prediction"] = pred
        scored["p_malignant"] = scored[[f"p_{c}" for c in MALIGNANT if c in classes]].sum(axis=1)
        scored["mask_source"] = feats["mask_source"].to_numpy()
    out = out.join(scored)
    errors = {p.path: p.message for p in problems if p.severity == "error"}
    out["error"] = [errors.get(p) for p in out["path"]]
    first = ["path", "image_id", "prediction", *prob_cols, "p_malignant", "mask_source", "error"]
    out = out.reindex(columns=first + [c for c in out.columns if c not in first])
    if lesion_map is not None:
        out = _add_lesions(out, Path(lesion_map), classes, problems, model)
    n_failed = (
        int(out["error"].notna().sum())
        if "level" not in out
        else int((out["error"].notna() & (out["level"] == "image")).sum())
    )
    mask_of = dict(zip(table["path"], table["mask_path"], strict=True))
    if "path" in feats.columns:
        feats = feats.assign(mask_path=[mask_of.get(p) for p in feats["path"]])
    return ScoreResult(out, problems, model_path, n_failed, features=feats, model=model)


def _score_multilabel(model, model_path, table, feats, out, problems, prob_cols) -> ScoreResult:
    """One probability per label (one-vs-rest), no single prediction."""
    if len(feats):
        proba = np.asarray(model.estimator.predict_proba(feats), dtype=np.float64)
        if len(prob_cols) == 1 and proba.shape[1] == 2:  # one label is fitted as binary
            proba = proba[:, 1:]
        pos = pd.Index(table["path"]).get_indexer(feats["path"])
        scored = pd.DataFrame(proba, columns=prob_cols, index=pos)
        scored["mask_source"] = feats["mask_source"].to_numpy()
        out = out.join(scored)
    errors = {p.path: p.message for p in problems if p.severity == "error"}
    out["error"] = [errors.get(p) for p in out["path"]]
    out = out.reindex(columns=["path", "image_id", *prob_cols, "mask_source", "error"])
    return ScoreResult(out, problems, model_path, int(out["error"].notna().sum()))


def _decision_weights(model, proba: np.ndarray) -> np.ndarray:
    """Probabilities re-weighted by the model's decision rule (``p / prior**alpha``), normalised.

    The rule is that of the pipeline's final :class:`~hamfeat.models.PriorCorrectedClassifier`
    (its ``class_prior_`` and ``alpha``); a model without one uses plain probabilities.
    """
    est = model.estimator
    last = est[-1] if hasattr(est, "steps") else est
    prior = getattr(last, "class_prior_", None)
    alpha = float(getattr(last, "alpha", 0.0) or 0.0)
    if prior is None or alpha == 0.0:
        return proba
    prior = np.clip(np.asarray(prior, dtype=np.float64), 1e-12, None)
    w = proba / prior**alpha
    return w / w.sum(axis=1, keepdims=True)


def _add_lesions(
    out: pd.DataFrame, path: Path, classes: list[str], problems: list[Problem], model
) -> pd.DataFrame:
    try:
        lmap = pd.read_csv(path, dtype=str)
    except Exception as exc:  # pandas raises many types
        raise DatasetError(f"{path}: cannot read lesion map ({exc})") from None
    if not {"image_id", "lesion_id"} <= set(lmap.columns):
        raise DatasetError(f"{path}: lesion map needs columns image_id,lesion_id")
    mapping = dict(zip(lmap["image_id"], lmap["lesion_id"], strict=True))
    out = out.assign(level="image", lesion_id=[mapping.get(i) for i in out["image_id"]])
    for i in out.index[out["lesion_id"].isna()]:
        problems.append(Problem(out.at[i, "path"], "image not in the lesion map", "warning"))
    ok = out[out["error"].isna() & out["lesion_id"].notna()]
    cols = [f"p_{c}" for c in classes]
    les = ok.groupby("lesion_id", sort=True)[cols].mean().reset_index()
    if len(les):
        # average the probabilities over the lesion's images, then apply the decision rule
        q = _decision_weights(model, les[cols].to_numpy())
        for j, c in enumerate(classes):
            les[f"q_{c}"] = q[:, j]
        les["prediction"] = np.asarray(classes)[q.argmax(axis=1)]
        les["p_malignant"] = les[[f"p_{c}" for c in MALIGNANT if c in classes]].sum(axis=1)
        les["level"] = "lesion"
        les["image_id"] = None
        out = pd.concat([out, les], ignore_index=True)
    first = ["level", "path", "image_id", "lesion_id"]
    return out[first + [c for c in out.columns if c not in first]]
