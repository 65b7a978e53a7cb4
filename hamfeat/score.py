"""``hamfeat score``: a folder of images in, a table of class probabilities out.

Every image takes the same path as in training (:mod:`hamfeat.pipeline`), with the feature
configuration stored in the model file, so scoring features always match the model's.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from hamfeat.datasets import DEFAULT_DATASET
from hamfeat.datasets.discovery import list_images, masks_in_folder
from hamfeat.datasets.ham10000 import CLASSES, ISIC2018_COLUMNS
from hamfeat.errors import DatasetError, ModelError, Problem
from hamfeat.extract import MaskSummary, extract_table
from hamfeat.pipeline import FeatureConfig

__all__ = [
    "MALIGNANT",
    "ScoreResult",
    "collect_images",
    "decision_rule",
    "default_model_path",
    "score_folder",
]

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
        p_<class>`` for each class, ``p_malignant``, ``q_<class>`` for each class (the
        probabilities re-weighted by the decision rule: ``prediction`` is their arg-max),
        ``mask_source, flags, error``; failed files have an ``error`` and empty predictions.
        ``flags`` lists what makes an image unlike the training images (see
        :mod:`hamfeat.novelty`), ``""`` when nothing does. With a lesion map, ``level`` and
        ``lesion_id`` columns are added, and one ``level == "lesion"`` row per lesion.
    problems : list of Problem
        Every failed file (errors) and warnings (skipped non-image files, rejected masks).
    model_path : pathlib.Path
    n_failed : int
    notes : list of str
        One-line warnings about the whole run (the model's mask mode differs from the one
        scored with, the model has no novelty detector); always shown.
    """

    table: pd.DataFrame
    problems: list[Problem] = field(default_factory=list)
    model_path: Path | None = None
    n_failed: int = 0
    notes: list[str] = field(default_factory=list)
    #: The feature rows of the scored images (``image_id, path, ..., mask_path`` and the
    #: features), and the loaded model: what ``score --html`` explains. Not in the CSV.
    features: pd.DataFrame | None = None
    model: object | None = None
    #: With ``masks_dir``: how many images had a mask there and were scored with it.
    masks: MaskSummary | None = None
    #: The feature configuration the images were scored with (the model's, with its
    #: segmenter file resolved): what re-segmenting an image the same way needs.
    config: FeatureConfig | None = None

    @property
    def n_flagged(self) -> int:
        """Image rows with at least one flag."""
        images = self.images()
        if "flags" not in images.columns:
            return 0
        return int((images["flags"].fillna("").astype(str) != "").sum())

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
        """:attr:`table` as ``hamfeat score`` writes it (every column)."""
        return self.table


def collect_images(
    sources: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    recursive: bool = False,
) -> tuple[list[Path], list[Problem]]:
    """The image files :func:`score_folder` scores, in the order it scores them.

    Parameters
    ----------
    sources : path-like or sequence of path-like
        A folder (its ``.jpg/.jpeg/.png`` files), one file (scored whatever its name), or a
        sequence of folders and files. In a sequence, a path that does not exist is kept as a
        file, so that it gets its own error row and the batch goes on; given alone, it is an
        error.
    recursive : bool
        Include sub-folders of the folders.

    Returns
    -------
    files : list of pathlib.Path
    problems : list of Problem
        Warnings of the folder listings (other files skipped, links not entered).

    Raises
    ------
    DatasetError
        A single source does not exist, or no image file is found at all.
    """
    single = isinstance(sources, (str, os.PathLike))
    items = [sources] if single else list(sources)
    files: list[Path] = []
    problems: list[Problem] = []
    for item in items:
        src = Path(item)
        if src.is_dir():
            found, found_problems = list_images(src, recursive=recursive)
            files += found
            problems += found_problems
        elif os.path.lexists(src) or not single:  # a file (a FIFO fails later, never hangs)
            files.append(src)
        else:
            raise DatasetError(f"{src}: no such file or folder")
    if not files:
        raise DatasetError(
            f"{sources if single else ', '.join(map(str, items)) or 'no input'}: "
            "no .jpg/.jpeg/.png image found"
            + ("" if recursive else " (use --recursive for sub-folders)"),
            problems,
        )
    return files, problems


#: Where a model's learned segmenter is looked for, beside the model file, when the model does
#: not name one (``hamfeat train`` records the file name of the table's segmenter).
SEGMENTER_FILE = "segmenter.skops"


def _segmenter_for(model, given: str | os.PathLike[str] | None, sha: str) -> str:
    """The segmenter file a model's features need: ``given``, else beside the model."""
    from hamfeat.segmenter import get_segmenter

    if given is not None:
        path = Path(given)
    else:
        name = Path(str(model.extra.get("segmenter_file") or SEGMENTER_FILE)).name
        path = Path(model.path).parent / name
        if not path.is_file():
            raise ModelError(
                model.path,
                f"the model's features need its learned segmenter (hash {sha}); {path} not "
                "found: keep it beside the model or pass --segmenter",
            )
    get_segmenter(path, sha)  # refuses another segmenter, before any image is read
    return str(path)


def _config_from_model(model, segmenter: str | os.PathLike[str] | None = None) -> FeatureConfig:
    cfg = dict(model.config or {})
    try:
        config = FeatureConfig(
            families=tuple(cfg["families"]),
            color_constancy=bool(cfg["color_constancy"]),
            hair_removal=bool(cfg["hair_removal"]),
            long_side=int(cfg["long_side"]),
            region=str(cfg.get("region", "lesion")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(model.path, f"model has no usable feature configuration ({exc})") from None
    if cfg.get("segmenter"):
        path = _segmenter_for(model, segmenter, str(cfg["segmenter"]))
        config = replace(config, segmenter=path)
    elif segmenter is not None:
        raise ModelError(
            model.path, "the model was trained on the classical segmenter's masks; --segmenter "
            "does not apply"
        )
    return config


def score_folder(
    folder: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
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
    segmenter: str | os.PathLike[str] | None = None,
) -> ScoreResult:
    """Score every JPEG/PNG image of a folder with a trained hamfeat model.

    Parameters
    ----------
    folder : path-like or sequence of path-like
        The images (``.jpg``, ``.jpeg``, ``.png``, any case; other files are skipped with a
        warning), or one image file, or a sequence of folders and files
        (:func:`collect_images`). Only regular files (and links to them) are read: a FIFO,
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
    dataset : str, optional
        A registered data set name: refuse a model made for another data set (default: take
        the model's; a model that names none is for :data:`~hamfeat.datasets.DEFAULT_DATASET`).
        A multi-label (``cxr14``) model writes ``path, image_id, p_<label>...`` (one
        probability per label, ``abnormal`` = any finding) ``, mask_source, error``.
    backend, scheduler
        Where features are computed: as in :func:`hamfeat.extract.extract_table`.
    segmenter : path-like, optional
        The learned segmenter file of a model trained on its masks (default: the file the
        model names, beside the model); its hash must be the one the model was trained with.

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
    model, model_path = _load_for_scoring(model_path, dataset, masks_dir, lesion_map)
    config = _config_from_model(model, segmenter)
    table, problems, mask_summary = _input_table(folder, recursive, masks_dir)
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
    if mask_summary is not None:
        mask_summary.count(feats)
    flags = _flags(model, feats)
    notes = _mask_mode_notes(model, feats) + (
        []
        if model.novelty is not None
        else [
            f"{model_path}: model has no novelty detector (written by an older hamfeat); "
            "the flags column cannot say `novel`: retrain it"
        ]
    )
    out = pd.DataFrame({"path": table["path"], "image_id": table["image_id"]})
    classes = [str(c) for c in model.classes]
    prob_cols = [f"p_{c}" for c in classes]
    if model.extra.get("task") == "multilabel":
        res = _score_multilabel(model, model_path, table, feats, out, problems, prob_cols, flags)
        res.notes = notes
        return res
    scored = _multiclass_scores(model, table, feats, flags)
    out = out.join(scored)
    errors = {p.path: p.message for p in problems if p.severity == "error"}
    out["error"] = [errors.get(p) for p in out["path"]]
    q_cols = [f"q_{c}" for c in classes]
    first = ["path", "image_id", "prediction", *prob_cols, "p_malignant", *q_cols]
    first += ["mask_source", "flags", "error"]
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
    return ScoreResult(
        out, problems, model_path, n_failed, notes, features=feats, model=model,
        masks=mask_summary, config=config,
    )


def _load_for_scoring(model_path, dataset: str | None, masks_dir, lesion_map):
    """The model of :func:`score_folder` and its path, refused when it is missing, for another
    data set, or multi-label with masks or a lesion map."""
    from hamfeat.models import load_model

    model_path = Path(model_path) if model_path is not None else default_model_path()
    if not model_path.is_file():
        raise ModelError(model_path, "model file not found (run `make train`, or pass --model)")
    model = load_model(model_path)
    multilabel = model.extra.get("task") == "multilabel"
    model_dataset = str(model.extra.get("dataset", DEFAULT_DATASET))
    if dataset is not None and dataset != model_dataset:
        raise ModelError(model_path, f"model is for {model_dataset}, not {dataset}")
    if multilabel and (masks_dir is not None or lesion_map is not None):
        raise DatasetError(f"{model_path}: a {model_dataset} model takes no masks or lesion map")
    return model, model_path


def _input_table(folder, recursive: bool, masks_dir):
    """The images to score as an :func:`~hamfeat.extract.extract_table` input table, the
    problems found so far (files skipped, duplicate image ids, masks) and the mask summary."""
    files, problems = collect_images(folder, recursive=recursive)
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
    mask_summary = None
    if masks_dir is not None:
        masks, mask_problems = masks_in_folder(masks_dir, ids)
        problems += mask_problems
        mask_summary = MaskSummary(
            str(masks_dir), len(ids), sum(m is not None for m in masks)
        )
    table = pd.DataFrame(
        {
            "path": [str(f) for f in files],
            "image_id": ids,
            "image_path": [str(f) for f in files],
            "mask_path": masks if masks is not None else [None] * len(files),
        }
    )
    return table, problems, mask_summary


def _multiclass_scores(model, table: pd.DataFrame, feats: pd.DataFrame,
                       flags: list[str]) -> pd.DataFrame:
    """Probabilities, decision weights, prediction, ``p_malignant``, mask source and flags of
    each scored image, indexed by its row in ``table`` (empty when nothing was scored)."""
    classes = [str(c) for c in model.classes]
    if not len(feats):
        return pd.DataFrame(index=table.index)
    # an infinity (from a cache written before compute_features set them to NaN) must not
    # kill the batch: it is as undefined as NaN, which every model imputes
    num = feats.select_dtypes("number").columns
    if np.isinf(feats[num].to_numpy(dtype=np.float64)).any():
        feats = feats.copy()
        feats[num] = feats[num].replace([np.inf, -np.inf], np.nan)
    proba = model.predict_proba(feats).to_numpy()
    q = _decision_weights(model, proba)
    # argmax of the decision weights is exactly the model's predict (one pass, not two)
    pred = np.asarray(classes)[q.argmax(axis=1)]
    pos = pd.Index(table["path"]).get_indexer(feats["path"])
    scored = pd.DataFrame(proba, columns=[f"p_{c}" for c in classes], index=pos)
    for j, c in enumerate(classes):
        scored[f"q_{c}"] = q[:, j]
    scored["prediction"] = pred
    scored["p_malignant"] = scored[[f"p_{c}" for c in MALIGNANT if c in classes]].sum(axis=1)
    scored["mask_source"] = feats["mask_source"].to_numpy()
    scored["flags"] = flags
    return scored


def _flags(model, feats: pd.DataFrame) -> list[str]:
    """The ``flags`` of each feature row (:func:`hamfeat.novelty.image_flags`)."""
    from hamfeat.novelty import image_flags, image_size

    if not len(feats):
        return []
    sizes = [image_size(p) for p in feats["path"]] if "path" in feats.columns else None
    return image_flags(
        feats, detector=model.novelty, feature_names=model.feature_names, sizes=sizes
    )


def _mask_mode_notes(model, feats: pd.DataFrame) -> list[str]:
    """One line when the images are scored with another kind of mask than the model's."""
    trained = model.extra.get("mask_mode")
    if trained not in ("given", "auto") or not len(feats) or "mask_source" not in feats:
        return []
    n_other = int((feats["mask_source"].astype(str) != trained).sum())
    if not n_other:
        return []
    what = {"given": "given masks (--masks)", "auto": "automatic masks"}
    other = "auto" if trained == "given" else "given"
    return [
        f"{model.path}: model was trained on {what[trained]}, but {n_other} of {len(feats)} "
        f"images are scored with {what[other]}; expect other predictions"
    ]


def _score_multilabel(
    model, model_path, table, feats, out, problems, prob_cols, flags
) -> ScoreResult:
    """One probability per label (one-vs-rest), no single prediction."""
    if len(feats):
        proba = np.asarray(model.estimator.predict_proba(feats), dtype=np.float64)
        if len(prob_cols) == 1 and proba.shape[1] == 2:  # one label is fitted as binary
            proba = proba[:, 1:]
        pos = pd.Index(table["path"]).get_indexer(feats["path"])
        scored = pd.DataFrame(proba, columns=prob_cols, index=pos)
        scored["mask_source"] = feats["mask_source"].to_numpy()
        scored["flags"] = flags
        out = out.join(scored)
    errors = {p.path: p.message for p in problems if p.severity == "error"}
    out["error"] = [errors.get(p) for p in out["path"]]
    out = out.reindex(columns=["path", "image_id", *prob_cols, "mask_source", "flags", "error"])
    return ScoreResult(out, problems, model_path, int(out["error"].notna().sum()))


def decision_rule(model) -> tuple[np.ndarray | None, float]:
    """The decision rule of a loaded model: ``argmax p / prior**alpha``.

    Parameters
    ----------
    model : hamfeat.models.LoadedModel
        A single-label model.

    Returns
    -------
    prior : numpy.ndarray or None
        The class priors of the pipeline's final
        :class:`~hamfeat.models.PriorCorrectedClassifier` (``class_prior_``, in the order of
        ``model.classes``); None for a model without one (plain arg-max).
    alpha : float
        Its exponent (0 without one).
    """
    est = model.estimator
    last = est[-1] if hasattr(est, "steps") else est
    prior = getattr(last, "class_prior_", None)
    alpha = float(getattr(last, "alpha", 0.0) or 0.0)
    return (None if prior is None else np.asarray(prior, dtype=np.float64)), alpha


def _decision_weights(model, proba: np.ndarray) -> np.ndarray:
    """Probabilities re-weighted by the model's decision rule (``p / prior**alpha``), normalised.

    The rule is that of the pipeline's final :class:`~hamfeat.models.PriorCorrectedClassifier`
    (its ``class_prior_`` and ``alpha``); a model without one uses plain probabilities.
    """
    prior, alpha = decision_rule(model)
    if prior is None or alpha == 0.0:
        return proba
    prior = np.clip(prior, 1e-12, None)
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
        if "flags" in ok.columns:  # a lesion carries every flag of its images
            flags = ok.groupby("lesion_id", sort=True)["flags"].agg(_union_flags)
            les["flags"] = les["lesion_id"].map(flags).fillna("")
        les["level"] = "lesion"
        les["image_id"] = None
        out = pd.concat([out, les], ignore_index=True)
    first = ["level", "path", "image_id", "lesion_id"]
    return out[first + [c for c in out.columns if c not in first]]


def _union_flags(values: pd.Series) -> str:
    from hamfeat.novelty import FLAGS

    have = {f for v in values.dropna() for f in str(v).split(";") if f}
    return ";".join(f for f in FLAGS if f in have)
