"""``hamfeat evaluate``: score labelled images with a saved model and measure it (external
validation).

The images go through :func:`hamfeat.score.score_folder`, the one scoring path (the same
features, model, decision rule, flags and lesion averaging as ``hamfeat score``). Their scores
are matched by ``image_id`` with a ground-truth CSV (:func:`read_truth`), and the metrics of
``hamfeat cv`` are computed by
:func:`hamfeat.evaluation.metrics.classification_metrics`, at two operating points:

``decision``
    The model's decision rule, ``argmax p / prior**alpha``: its ``prediction`` column. The
    probabilities are the ``q_`` columns (``p / prior**alpha``, renormalised), the numbers
    ``hamfeat score --format isic2018`` writes into a submission; macro AUC is computed on them.
    Its balanced accuracy and macro AUC are what the official ISIC 2018 scorer
    (``isic-challenge-scoring classification``) reports for that submission (a test runs both).
``argmax``
    The arg-max of the model's probabilities ``p_``; macro AUC on ``p_``, as ``hamfeat cv``
    reports it.

Both per image and, with a lesion map, per lesion (``p_`` averaged over a lesion's images,
then the decision rule, as ``score --lesion-map`` and ``cv`` do).

What the official scorer computes, and hamfeat with it (``isic-challenge-scoring`` 5.6.0,
``isic_challenge_scoring/metrics.py``): balanced accuracy is the mean over the classes present
in the truth of ``TP / (images of the class)`` (a class absent from the truth gives 0/0, which
its mean skips), a prediction being the column arg-max (a row whose maximum is tied counts as
wrong there; hamfeat's ``prediction`` takes the first, so the report counts such rows); AUC is
``sklearn.metrics.roc_auc_score`` per class column (one-vs-rest) on the submission's values,
averaged over the classes where it is defined (a class absent from the truth has none). It gives
``ISIC_0035068`` a weight of 0 (that is, leaves it out), and so does hamfeat with an ISIC 2018
truth file (as well as any row whose ``score_weight`` is 0).

Computation only: :class:`Evaluation` holds typed results; :mod:`hamfeat.render.evaluate_report`
turns them into Markdown and figures, and :func:`write_report` writes the files through
:func:`hamfeat._io.write_output`.
"""

from __future__ import annotations

import csv
import json
import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hamfeat._io import check_output, check_output_dir, write_output
from hamfeat._version import __version__
from hamfeat.datasets.ham10000 import CLASSES, ISIC2018_COLUMNS
from hamfeat.errors import DatasetError, Problem
from hamfeat.score import ScoreResult

__all__ = [
    "REPORT_FILES",
    "ClassMetrics",
    "Evaluation",
    "LevelMetrics",
    "PointMetrics",
    "Truth",
    "check_report_dir",
    "evaluate_images",
    "evaluate_scores",
    "read_file_list",
    "read_truth",
    "write_report",
]

#: Truth formats (:attr:`Truth.format`).
ISIC2018, DX_TABLE = "isic2018", "image_id,dx"
#: Images the official ISIC scorer gives a weight of 0 (``load_csv.parse_truth_csv``).
OFFICIAL_ZERO_WEIGHT = ("ISIC_0035068",)
#: Weight columns an ISIC truth file may have (the official scorer reads them).
WEIGHT_COLUMNS = ("score_weight", "validation_weight")
#: Suffixes taken off truth image ids (``ISIC_0024306.jpg`` is ``ISIC_0024306``).
_ID_SUFFIXES = (".jpg", ".jpeg", ".png")
#: Files of the report folder: name -> what it is.
REPORT_FILES = {
    "md": "evaluate_report.md",
    "json": "evaluate_report.json",
    "scores": "evaluate_scores.csv",
    "submission": "evaluate_isic2018_submission.csv",
    "truth": "evaluate_isic2018_truth.csv",
    "confusion": "evaluate_confusion.png",
    "recall": "evaluate_recall.png",
    "roc": "evaluate_roc.png",
}
#: How many ids the Markdown report lists per list (the JSON lists all).
MD_LIST_LIMIT = 50


# --------------------------------------------------------------------------------------------
# truth
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Truth:
    """A ground-truth file, validated.

    Attributes
    ----------
    path : str
    format : {"isic2018", "image_id,dx"}
        Detected from the header.
    labels : dict of str to str
        ``image_id`` -> class name, in file order (rows left out by weight are not here).
    excluded : dict of str to str
        ``image_id`` -> why it is left out of every metric (weight 0, as the official scorer).
    """

    path: str
    format: str
    labels: dict[str, str]
    excluded: dict[str, str] = field(default_factory=dict)


def _norm_id(value: str) -> str:
    value = value.strip()
    low = value.lower()
    for suffix in _ID_SUFFIXES:
        if low.endswith(suffix):
            return value[: -len(suffix)]
    return value


def _bad(path: str, line: int | None, reason: str) -> DatasetError:
    where = f"{path}:{line}" if line is not None else path
    return DatasetError(f"{where}: {reason}")


def read_truth(path: str | os.PathLike[str]) -> Truth:
    """Read and validate a ground-truth CSV; its format is detected from the header.

    Formats:

    * ISIC 2018 Task 3: ``image,MEL,NV,BCC,AKIEC,BKL,DF,VASC`` in any order, values ``0``/``1``
      (or ``0.0``/``1.0``), exactly one ``1`` per row; optional ``score_weight`` and
      ``validation_weight`` columns as in the official scorer (``score_weight`` 0 leaves a
      row out, 1 keeps it). ``ISIC_0035068`` is left out, as the official scorer does.
    * a table with ``image_id`` and ``dx`` columns (``dx`` one of the 7 class names, any case);
      other columns are allowed, so HAM10000's ``HAM10000_metadata.csv`` is a truth file (and,
      having ``image_id,lesion_id``, a lesion map).

    Column names are matched without regard to case. Image ids lose a ``.jpg``, ``.jpeg`` or
    ``.png`` suffix.

    Parameters
    ----------
    path : path-like
        The CSV file (UTF-8, with or without a byte-order mark).

    Returns
    -------
    Truth

    Raises
    ------
    DatasetError
        One line naming the file (and the line for a bad row): not found or not a regular
        file, neither format, an unknown class, a row that is not one-hot, a duplicate image
        id, an empty file.
    """
    p = Path(path)
    name = str(path)
    if not p.exists():
        raise _bad(name, None, "truth file not found")
    if not p.is_file():
        raise _bad(name, None, "truth file is not a regular file")
    try:
        with open(p, newline="", encoding="utf-8-sig") as fh:
            rows = [(i, r) for i, r in enumerate(csv.reader(fh), start=1)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise _bad(name, None, f"cannot read truth file ({exc})") from None
    rows = [(i, r) for i, r in rows if any(c.strip() for c in r)]  # blank lines
    if not rows:
        raise _bad(name, None, "truth file is empty")
    header_line, header = rows[0]
    cols = [c.strip().strip('"').lower() for c in header]
    where = {c: j for j, c in enumerate(cols)}
    isic = {"image", *(c.lower() for c in ISIC2018_COLUMNS)}
    if isic <= set(where):
        known = isic | set(WEIGHT_COLUMNS)
        extra = [header[j].strip() for j, c in enumerate(cols) if c not in known]
        if extra:
            raise _bad(
                name,
                header_line,
                f"ISIC 2018 truth header has unexpected column(s) {', '.join(extra)} (expected "
                f"image,{','.join(ISIC2018_COLUMNS)} and optionally {','.join(WEIGHT_COLUMNS)})",
            )
        return _read_isic(name, rows[1:], where, len(cols))
    if {"image_id", "dx"} <= set(where):
        return _read_dx(name, rows[1:], where, len(cols))
    raise _bad(
        name,
        header_line,
        "not a truth file: expected the header image,MEL,NV,BCC,AKIEC,BKL,DF,VASC (ISIC 2018) "
        f"or image_id,dx; found {','.join(c.strip() for c in header) or 'nothing'}",
    )


def _cells(name: str, line: int, row: list[str], n: int) -> list[str]:
    if len(row) != n:
        raise _bad(name, line, f"row has {len(row)} field(s), the header {n}")
    return [c.strip() for c in row]


def _check_id(name: str, line: int, image_id: str, first_line: dict[str, int]) -> None:
    if not image_id:
        raise _bad(name, line, "empty image id")
    if image_id in first_line:
        first = first_line[image_id]
        raise _bad(name, line, f"duplicate image id {image_id} (first on line {first})")
    first_line[image_id] = line


def _read_isic(name: str, rows, where: dict[str, int], n: int) -> Truth:
    labels: dict[str, str] = {}
    excluded: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for line, row in rows:
        cells = _cells(name, line, row, n)
        image_id = _norm_id(cells[where["image"]])
        _check_id(name, line, image_id, first_line)
        values = []
        for col in ISIC2018_COLUMNS:
            raw = cells[where[col.lower()]]
            try:
                v = float(raw)
            except ValueError:
                v = math.nan
            if v not in (0.0, 1.0):
                raise _bad(name, line, f"{image_id}: {col} is {raw!r}; expected 0 or 1")
            values.append(v)
        if sum(values) != 1.0:
            raise _bad(
                name, line, f"{image_id}: row is not one-hot ({int(sum(values))} classes are 1)"
            )
        dx = ISIC2018_COLUMNS[values.index(1.0)].lower()
        weight = 1.0
        if "score_weight" in where:
            raw = cells[where["score_weight"]]
            try:
                weight = float(raw)
            except ValueError:
                weight = math.nan
            if weight not in (0.0, 1.0):
                raise _bad(
                    name, line, f"{image_id}: score_weight is {raw!r}; hamfeat takes 0 or 1"
                )
        if weight == 0.0:
            excluded[image_id] = "score_weight 0 in the truth file"
        elif image_id in OFFICIAL_ZERO_WEIGHT:
            excluded[image_id] = "weight 0 in the official ISIC scorer"
        else:
            labels[image_id] = dx
    return Truth(name, ISIC2018, labels, excluded)


def _read_dx(name: str, rows, where: dict[str, int], n: int) -> Truth:
    labels: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for line, row in rows:
        cells = _cells(name, line, row, n)
        image_id = _norm_id(cells[where["image_id"]])
        _check_id(name, line, image_id, first_line)
        dx = cells[where["dx"]].lower()
        if dx not in CLASSES:
            raise _bad(
                name,
                line,
                f"{image_id}: unknown class {cells[where['dx']]!r} (expected one of "
                f"{', '.join(CLASSES)})",
            )
        labels[image_id] = dx
    return Truth(name, DX_TABLE, labels, {})


def read_file_list(path: str | os.PathLike[str]) -> list[Path]:
    """The image paths of a list file: one per line; blank lines and ``#`` comments skipped.

    Relative paths are relative to the list file's folder.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    list of pathlib.Path

    Raises
    ------
    DatasetError
        The list cannot be read, or names no file.
    """
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"{p}: file list not found (or not a regular file)")
    try:
        lines = p.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{p}: cannot read file list ({exc})") from None
    out = []
    for line in lines:
        s = line.strip()
        if s and not s.startswith("#"):
            q = Path(s)
            out.append(q if q.is_absolute() else p.parent / q)
    if not out:
        raise DatasetError(f"{p}: file list names no file")
    return out


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassMetrics:
    """One class at one operating point (``auc``: one-vs-rest, NaN when the truth has no
    image of the class, or only images of it)."""

    precision: float
    recall: float
    f1: float
    support: int
    n_predicted: int
    auc: float


@dataclass(frozen=True)
class PointMetrics:
    """The metrics of one operating point.

    Attributes
    ----------
    rule : {"decision", "argmax"}
    probabilities : {"q", "p"}
        The columns the predictions and the AUC come from.
    accuracy, balanced_accuracy, macro_f1 : float
        ``balanced_accuracy``: mean recall over the classes present in the truth.
    macro_auc : float
        Mean one-vs-rest AUC over the classes where it is defined (all 7 present: exactly
        :func:`hamfeat.evaluation.metrics.classification_metrics`'s ``macro_auc``).
    per_class : dict of str to ClassMetrics
    confusion : list of list of int
        Counts, rows the true class, columns the predicted class, in :data:`CLASSES` order.
    confusion_normalised : list of list of float
        Each row divided by its sum (NaN for a class absent from the truth).
    roc : dict of str to dict
        Per class with a defined AUC: ``fpr`` and ``tpr`` lists (for the ROC figure).
    """

    rule: str
    probabilities: str
    accuracy: float
    balanced_accuracy: float
    macro_f1: float
    macro_auc: float
    per_class: dict[str, ClassMetrics]
    confusion: list[list[int]]
    confusion_normalised: list[list[float]]
    roc: dict[str, dict[str, list[float]]] = field(default_factory=dict)


@dataclass(frozen=True)
class LevelMetrics:
    """Metrics per image or per lesion.

    Attributes
    ----------
    level : {"image", "lesion"}
    n : int
        Evaluated rows (images or lesions with a truth and a score).
    class_counts : dict of str to int
        Truth per class among them.
    classes_absent : list of str
        Classes without any truth row here: no recall, no AUC for them; balanced accuracy
        and macro AUC are over the others.
    decision, argmax : PointMetrics
    n_tied : int
        Rows whose largest ``q`` is tied: ``prediction`` takes the first class, the official
        scorer counts the row as wrong.
    """

    level: str
    n: int
    class_counts: dict[str, int]
    classes_absent: list[str]
    decision: PointMetrics
    argmax: PointMetrics
    n_tied: int = 0


@dataclass
class Evaluation:
    """Everything :func:`evaluate_scores` finds (what the report says).

    Attributes
    ----------
    truth : Truth
    model_path : str
    alpha : float or None
        Exponent of the model's decision rule (None: plain arg-max).
    n_files : int
        Image files scored (or tried).
    failed : list of tuple
        ``(path, error)`` of files that could not be scored.
    images_without_truth : list of str
        ``image_id`` of scored images with no truth row (scored, not evaluated).
    truth_without_image : list of str
        Truth ``image_id`` with no image file (or only failed ones: see ``failed``).
    excluded : dict of str to str
        Truth rows left out of the metrics, with the reason.
    duplicates : list of str
        Paths of later files with an ``image_id`` already scored (the first is evaluated).
    image : LevelMetrics or None
        None when no image could be evaluated.
    lesion : LevelMetrics or None
        With a lesion map.
    lesion_conflicts : list of str
        Lesions whose images have different truths (left out of the lesion metrics).
    isic2018 : dict
        ``balanced_accuracy`` and ``macro_auc`` as the official scorer computes them on
        :meth:`submission` and :meth:`truth_table` (the ``decision`` point, ``q``
        probabilities), and what they are computed on.
    notes : list of str
        Run-wide warnings (mask mode, old model, ties, absent classes).
    scores : pandas.DataFrame
        The score table (score's columns, plus ``truth``).
    command : str
        The command line, as the report states it.
    problems : list of Problem
        Every failed file and warning of the scoring.
    result : ScoreResult or None
        What was scored (its model, feature configuration and feature rows): what the
        ``--html`` page needs to re-segment the images shown and to draw the decision rule's
        trade-off. Not in the report files.
    """

    truth: Truth
    model_path: str
    alpha: float | None
    n_files: int
    failed: list[tuple[str, str]]
    images_without_truth: list[str]
    truth_without_image: list[str]
    excluded: dict[str, str]
    duplicates: list[str]
    image: LevelMetrics | None
    lesion: LevelMetrics | None
    lesion_conflicts: list[str]
    isic2018: dict[str, Any]
    notes: list[str]
    scores: pd.DataFrame
    command: str = ""
    problems: list[Problem] = field(default_factory=list)
    result: ScoreResult | None = field(default=None, repr=False, compare=False)

    @property
    def n_evaluated(self) -> int:
        """Images with a truth and a score."""
        return 0 if self.image is None else self.image.n

    def evaluated(self) -> pd.DataFrame:
        """The image rows that enter the metrics (first file per ``image_id``, scored, with a
        truth, not excluded)."""
        t = self.scores
        if "level" in t.columns:
            t = t[t["level"] == "image"]
        t = t[t["error"].isna() & t["truth"].notna()]
        return t.drop_duplicates("image_id", keep="first")

    def submission(self) -> pd.DataFrame:
        """The evaluated images as an ISIC 2018 submission (``q_`` probabilities, full
        precision): what the official scorer is given to reproduce :attr:`isic2018`."""
        ok = self.evaluated()
        out = pd.DataFrame({"image": ok["image_id"].to_numpy()})
        for col in ISIC2018_COLUMNS:
            out[col] = ok[f"q_{col.lower()}"].to_numpy(dtype=float)
        return out

    def truth_table(self) -> pd.DataFrame:
        """The truth of the evaluated images in the ISIC 2018 one-hot format."""
        ok = self.evaluated()
        out = pd.DataFrame({"image": ok["image_id"].to_numpy()})
        for col in ISIC2018_COLUMNS:
            out[col] = (ok["truth"].to_numpy() == col.lower()).astype(float)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Everything but the score table, as JSON-ready data (NaN as ``null``)."""
        d = {
            "hamfeat_version": __version__,
            "command": self.command,
            "model": self.model_path,
            "decision_rule": {
                "alpha": self.alpha,
                "rule": "argmax p / prior**alpha (prediction = argmax q)",
            },
            "truth": {
                "path": self.truth.path,
                "format": self.truth.format,
                "n_rows": len(self.truth.labels) + len(self.truth.excluded),
            },
            "counts": {
                "files": self.n_files,
                "failed": len(self.failed),
                "evaluated": self.n_evaluated,
                "images_without_truth": len(self.images_without_truth),
                "truth_without_image": len(self.truth_without_image),
                "excluded": len(self.excluded),
                "duplicates": len(self.duplicates),
            },
            "failed": [{"path": p, "error": e} for p, e in self.failed],
            "images_without_truth": self.images_without_truth,
            "truth_without_image": self.truth_without_image,
            "excluded": self.excluded,
            "duplicates": self.duplicates,
            "image": None if self.image is None else asdict(self.image),
            "lesion": None if self.lesion is None else asdict(self.lesion),
            "lesion_conflicts": self.lesion_conflicts,
            "isic2018": self.isic2018,
            "notes": self.notes,
        }
        return _json_ready(d)


def _json_ready(o: Any) -> Any:
    if isinstance(o, dict):
        return {str(k): _json_ready(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_json_ready(v) for v in o]
    if isinstance(o, (float, np.floating)):
        return None if not math.isfinite(float(o)) else float(o)
    if isinstance(o, np.integer):
        return int(o)
    return o


# --------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------


def _point(rule: str, which: str, y: np.ndarray, proba: np.ndarray) -> PointMetrics:
    """Metrics of ``argmax proba`` (hamfeat.evaluate's), plus per-class AUC and ROC curves."""
    from sklearn.metrics import roc_auc_score, roc_curve

    from hamfeat.evaluation.metrics import classification_metrics

    k = len(CLASSES)
    with warnings.catch_warnings():  # a class absent from the truth: sklearn warns, we report
        warnings.simplefilter("ignore")
        m = classification_metrics(y, proba, np.ones(k), 0.0)
    pred = proba.argmax(axis=1)
    aucs: dict[str, float] = {}
    roc: dict[str, dict[str, list[float]]] = {}
    for j, c in enumerate(CLASSES):
        pos = y == j
        if pos.all() or not pos.any():
            aucs[c] = math.nan
            continue
        aucs[c] = float(roc_auc_score(pos, proba[:, j]))
        fpr, tpr, _ = roc_curve(pos, proba[:, j])
        roc[c] = {"fpr": fpr.tolist(), "tpr": tpr.tolist()}
    macro_auc = m["macro_auc"]
    if not math.isfinite(macro_auc):  # a class absent: the mean over the classes it is defined
        defined = [v for v in aucs.values() if math.isfinite(v)]
        macro_auc = float(np.mean(defined)) if defined else math.nan
    present = np.bincount(y, minlength=k) > 0
    recall = {c: m["per_class"][c]["recall"] if present[j] else math.nan for j, c in
              enumerate(CLASSES)}
    cm = np.asarray(m["confusion"], dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = cm / cm.sum(axis=1, keepdims=True)
    per_class = {
        c: ClassMetrics(
            precision=m["per_class"][c]["precision"],
            recall=recall[c],
            f1=m["per_class"][c]["f1"],
            support=m["per_class"][c]["support"],
            n_predicted=int((pred == j).sum()),
            auc=aucs[c],
        )
        for j, c in enumerate(CLASSES)
    }
    return PointMetrics(
        rule=rule,
        probabilities=which,
        accuracy=m["accuracy"],
        balanced_accuracy=m["balanced_accuracy"],
        macro_f1=m["macro_f1"],
        macro_auc=macro_auc,
        per_class=per_class,
        confusion=[[int(v) for v in row] for row in m["confusion"]],
        confusion_normalised=norm.tolist(),
        roc=roc,
    )


def _level(level: str, truth: Sequence[str], p: np.ndarray, q: np.ndarray) -> LevelMetrics:
    index = {c: i for i, c in enumerate(CLASSES)}
    y = np.array([index[t] for t in truth], dtype=int)
    counts = np.bincount(y, minlength=len(CLASSES))
    top = q.max(axis=1, keepdims=True)
    return LevelMetrics(
        level=level,
        n=len(y),
        class_counts={c: int(counts[i]) for i, c in enumerate(CLASSES)},
        classes_absent=[c for i, c in enumerate(CLASSES) if counts[i] == 0],
        decision=_point("decision", "q", y, q),
        argmax=_point("argmax", "p", y, p),
        n_tied=int(((q == top).sum(axis=1) > 1).sum()),
    )


def _matrix(rows: pd.DataFrame, prefix: str) -> np.ndarray:
    cols = [f"{prefix}_{c}" for c in CLASSES]
    return rows.reindex(columns=cols).fillna(0.0).to_numpy(dtype=float)


def _decision_alpha(model) -> float | None:
    est = getattr(model, "estimator", None)
    last = est[-1] if hasattr(est, "steps") else est
    alpha = getattr(last, "alpha", None)
    return None if alpha is None else float(alpha)


def evaluate_scores(result: ScoreResult, truth: Truth) -> Evaluation:
    """Compare a :class:`~hamfeat.score.ScoreResult` with a ground truth.

    Parameters
    ----------
    result : ScoreResult
        What :func:`hamfeat.score.score_folder` returned (``q_`` and ``p_`` columns of the 7
        HAM10000 classes; lesion rows when it was given a lesion map).
    truth : Truth
        :func:`read_truth`'s result.

    Returns
    -------
    Evaluation
        ``decision`` metrics use ``q_`` (prediction = the model's decision rule; AUC on ``q_``,
        the numbers of an ISIC 2018 submission); ``argmax`` metrics use ``p_`` (AUC on ``p_``,
        as ``hamfeat cv``).

    Raises
    ------
    DatasetError
        The score table is not of a HAM10000 (7-class) model.
    """
    table = result.table.copy()
    if not {f"q_{c}" for c in CLASSES} & set(table.columns):
        raise DatasetError(
            f"{result.model_path}: evaluate needs a HAM10000 model (7 classes), not a "
            "multi-label one"
        )
    notes = list(result.notes)
    missing_cls = [c for c in CLASSES if f"p_{c}" not in table.columns]
    if missing_cls:
        notes.append(f"the model has no class {', '.join(missing_cls)}: probability 0 used")
    is_image = table["level"] == "image" if "level" in table.columns else pd.Series(
        True, index=table.index
    )
    images = table[is_image]
    labels = truth.labels
    table["truth"] = None
    table.loc[is_image, "truth"] = images["image_id"].map(labels)
    images = table[is_image]
    failed = [(str(r.path), str(r.error)) for r in images.itertuples() if isinstance(r.error, str)]
    dup_mask = images["image_id"].duplicated(keep="first")
    duplicates = [str(p) for p in images.loc[dup_mask, "path"]]
    ids = set(images["image_id"])
    scored_ids = set(images.loc[images["error"].isna(), "image_id"])
    images_without_truth = sorted(
        {i for i in ids if i not in labels and i not in truth.excluded}
    )
    truth_without_image = [i for i in labels if i not in ids]
    failed_with_truth = [i for i in labels if i in ids and i not in scored_ids]
    if failed_with_truth:
        notes.append(
            f"{len(failed_with_truth)} image(s) with a truth row could not be scored "
            "(listed under failed); left out of the metrics"
        )
    excluded_found = {i: r for i, r in truth.excluded.items() if i in ids}

    ev = Evaluation(
        truth=truth,
        model_path=str(result.model_path),
        alpha=_decision_alpha(result.model),
        n_files=len(images),
        failed=failed,
        images_without_truth=images_without_truth,
        truth_without_image=truth_without_image,
        excluded=truth.excluded,
        duplicates=duplicates,
        image=None,
        lesion=None,
        lesion_conflicts=[],
        isic2018={},
        notes=notes,
        scores=table,
        problems=list(result.problems),
        result=result,
    )
    if excluded_found:
        notes.append(
            f"{len(excluded_found)} image(s) left out of the metrics by weight: "
            + ", ".join(f"{i} ({r})" for i, r in excluded_found.items())
        )
    ok = ev.evaluated()
    if len(ok):
        ev.image = _level("image", list(ok["truth"]), _matrix(ok, "p"), _matrix(ok, "q"))
        ev.isic2018 = {
            "balanced_accuracy": ev.image.decision.balanced_accuracy,
            "macro_auc": ev.image.decision.macro_auc,
            "probabilities": "q_ columns (p / prior**alpha, renormalised), as `hamfeat score "
            "--format isic2018` writes them",
            "n_images": ev.image.n,
        }
        _absent_note(ev.image, notes)
        if ev.image.n_tied:
            notes.append(
                f"{ev.image.n_tied} image(s) have tied largest q: prediction takes the first "
                "class, the official scorer counts them wrong (its balanced accuracy may be lower)"
            )
    if "level" in table.columns:
        ev.lesion, ev.lesion_conflicts = _lesions(table, ok, notes)
    return ev


def _absent_note(level: LevelMetrics, notes: list[str]) -> None:
    if level.classes_absent:
        notes.append(
            f"per {level.level}: no truth of class {', '.join(level.classes_absent)}: no recall "
            f"or AUC for it; balanced accuracy and macro AUC are over the other "
            f"{len(CLASSES) - len(level.classes_absent)} classes (as the official scorer)"
        )


def _lesions(
    table: pd.DataFrame, ok: pd.DataFrame, notes: list[str]
) -> tuple[LevelMetrics | None, list[str]]:
    """Lesion rows of the score table (probabilities averaged by score_folder) with truth."""
    les = table[table["level"] == "lesion"].copy()
    truth_of = ok.dropna(subset=["lesion_id"]).groupby("lesion_id")["truth"].agg(
        lambda s: sorted(set(s))
    )
    conflicts = sorted(str(k) for k, v in truth_of.items() if len(v) > 1)
    single = {k: v[0] for k, v in truth_of.items() if len(v) == 1}
    les["truth"] = les["lesion_id"].map(single)
    table.loc[les.index, "truth"] = les["truth"]
    if conflicts:
        notes.append(
            f"{len(conflicts)} lesion(s) whose images have different truths, left out of the "
            f"lesion metrics: {', '.join(conflicts[:MD_LIST_LIMIT])}"
        )
    les = les[les["truth"].notna()]
    if not len(les):
        return None, conflicts
    level = _level("lesion", list(les["truth"]), _matrix(les, "p"), _matrix(les, "q"))
    _absent_note(level, notes)
    return level, conflicts


# --------------------------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------------------------


def check_report_dir(report_dir: str | os.PathLike[str], extra: Sequence[str] = ()) -> Path:
    """Check, before any work, that the report folder and its files can be written.

    Nothing is created (the folder is made when the report is written).

    Parameters
    ----------
    report_dir : path-like
    extra : sequence of str
        Names of further files that will be written there (``report.html`` with ``--html``).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    OutputError
        The folder is a file or cannot be created or written, or one of its report files is
        a folder or a socket.
    """
    folder = check_output_dir(report_dir, create=False)
    if folder.is_dir():
        for name in (*REPORT_FILES.values(), *extra):
            check_output(folder / name)
    return folder


def evaluate_images(
    images: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    truth_path: str | os.PathLike[str],
    *,
    model_path: str | os.PathLike[str] | None = None,
    masks_dir: str | os.PathLike[str] | None = None,
    recursive: bool = False,
    jobs: int = 0,
    lesion_map: str | os.PathLike[str] | None = None,
    segmenter: str | os.PathLike[str] | None = None,
    backend: str = "joblib",
    scheduler: str | None = None,
    progress: bool | None = None,
    say: Callable[[str], None] | None = None,
) -> Evaluation:
    """Score labelled images with :func:`hamfeat.score.score_folder` and evaluate them.

    The truth file is read, and the image ids compared with it, before the model is loaded:
    a bad truth file, or images none of which has a truth row, fail at once.

    Parameters
    ----------
    images : path-like or sequence of path-like
        A folder, an image file, or a sequence of them
        (:func:`hamfeat.score.collect_images`).
    truth_path : path-like
        The ground truth (:func:`read_truth`).
    model_path, masks_dir, recursive, jobs, lesion_map, segmenter, backend, scheduler, progress
        As :func:`hamfeat.score.score_folder`.
    say : callable, optional
        Called with one-line progress messages.

    Returns
    -------
    Evaluation

    Raises
    ------
    DatasetError
        Bad truth file, no image found, no image id in the truth.
    ModelError
        The model cannot be used (or is not a HAM10000 model).
    """
    from hamfeat.score import collect_images, score_folder

    truth = read_truth(truth_path)
    files, _ = collect_images(images, recursive=recursive)
    ids = {f.stem for f in files}
    if not ids & (set(truth.labels) | set(truth.excluded)):
        raise DatasetError(
            f"{truth.path}: none of the {len(ids)} image file(s) has a truth row (ids such as "
            f"{sorted(ids)[0]}; truth ids such as {next(iter(truth.labels), 'none')})"
        )
    if say:
        say(f"truth {truth.path} ({truth.format}, {len(truth.labels)} rows)")
    result = score_folder(
        images,
        model_path=model_path,
        masks_dir=masks_dir,
        recursive=recursive,
        jobs=jobs,
        lesion_map=lesion_map,
        dataset="ham10000",
        segmenter=segmenter,
        backend=backend,
        scheduler=scheduler,
        progress=progress,
    )
    if say is not None and result.masks is not None:  # how many --masks matched
        say(result.masks.line())
    return evaluate_scores(result, truth)


def write_report(
    ev: Evaluation,
    report_dir: str | os.PathLike[str],
    *,
    plots: bool = True,
    float_format: str = "%.6g",
) -> list[Path]:
    """Write the report folder, every file through :func:`hamfeat._io.write_output`.

    ``evaluate_report.md``, ``evaluate_report.json``, ``evaluate_scores.csv`` (score's columns
    plus ``truth``, probabilities to ``float_format``), the evaluated images as an ISIC 2018
    submission and truth at full precision (``isic-challenge-scoring classification
    evaluate_isic2018_truth.csv evaluate_isic2018_submission.csv`` reproduces
    :attr:`Evaluation.isic2018`), and the figures (confusion matrix, per-class recall, ROC
    curves; skipped with a note when matplotlib is missing).

    Parameters
    ----------
    ev : Evaluation
    report_dir : path-like
        Created if needed.
    plots : bool
        Write the PNG figures.
    float_format : str
        Of the per-image score table.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    from hamfeat.extract import write_csv_atomic
    from hamfeat.render.evaluate_report import evaluation_markdown, evaluation_plots

    folder = check_output_dir(report_dir)
    written: list[Path] = []
    figures: list[str] = []
    if plots and ev.image is not None:
        try:
            figures = evaluation_plots(ev, folder, REPORT_FILES)
        except ImportError:
            ev.notes.append(
                "plots skipped: matplotlib is not installed (pip install 'hamfeat[plots]')"
            )
    written += [Path(f) for f in figures]
    scores = folder / REPORT_FILES["scores"]
    write_csv_atomic(ev.scores, scores, float_format=float_format)
    written.append(scores)
    if ev.image is not None:
        for key, table in (("submission", ev.submission()), ("truth", ev.truth_table())):
            path = folder / REPORT_FILES[key]
            write_csv_atomic(table, path)  # full precision (repr): like with like
            written.append(path)
    data = ev.to_dict()
    data["files"] = [p.name for p in written]
    data["figures"] = [Path(f).name for f in figures]
    blob = json.dumps(data, indent=1) + "\n"
    path = folder / REPORT_FILES["json"]
    write_output(path, lambda fh: fh.write(blob), binary=False)
    written.append(path)
    md = evaluation_markdown(ev, figures=[Path(f).name for f in figures])
    path = folder / REPORT_FILES["md"]
    write_output(path, lambda fh: fh.write(md), binary=False)
    written.append(path)
    return written
