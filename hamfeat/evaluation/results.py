"""Typed results of the cross-validations: what :func:`hamfeat.evaluation.cv.cross_validate` and
:func:`hamfeat.evaluation.multilabel.cross_validate_multilabel` return, and what the renderers
(:mod:`hamfeat.render.cv_report`, :mod:`hamfeat.render.cv_report_multilabel`,
:mod:`hamfeat.render.plots`) read.

Every class has ``to_dict()``, which yields exactly the structure (keys, key order and values)
of the ``cv_report.json`` files, and ``from_dict()``, its inverse (for a written report read
back). This module imports no computation (no scikit-learn, no evaluation module), so the
renderers may import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "POINTS",
    "SCALARS",
    "Ablations",
    "CVReport",
    "Curve",
    "LevelResult",
    "LevelSummary",
    "Majority",
    "ModelResult",
    "MultilabelModelResult",
    "MultilabelReport",
    "OOFResult",
    "OtherTable",
    "PointMetrics",
    "PointSummary",
    "SeedBaseline",
    "SeedResult",
    "Summary",
]

#: The operating points of every CV result, in report order.
POINTS: tuple[str, ...] = ("argmax", "fixed", "crossfit", "best_on_curve")
#: The scalar metrics summarised over seeds.
SCALARS: tuple[str, ...] = ("accuracy", "balanced_accuracy", "macro_f1", "macro_auc")
_LEVELS = ("image", "lesion")


def _opt(d: dict, key: str, value: Any) -> None:
    """Set ``d[key]`` when ``value`` is not None (an optional key of the JSON)."""
    if value is not None:
        d[key] = value


# --------------------------------------------------------------------------------------------
# multiclass (HAM10000)
# --------------------------------------------------------------------------------------------


@dataclass
class PointMetrics:
    """Every metric of one operating point (:func:`~hamfeat.evaluation.metrics.
    classification_metrics`), with the exponent that chose it.

    Attributes
    ----------
    accuracy, balanced_accuracy, macro_f1, macro_auc : float
    per_class : dict
        Class -> ``precision``, ``recall``, ``f1``, ``support``.
    confusion : list of list of int
        Rows: true class.
    alpha : float, optional
        The exponent (``fixed`` and ``best_on_curve`` points).
    alpha_per_fold : dict of int to float, optional
        The cross-fitted exponent of each test fold (``crossfit`` point).
    """

    accuracy: float
    balanced_accuracy: float
    macro_f1: float
    macro_auc: float
    per_class: dict[str, dict[str, float]]
    confusion: list[list[int]]
    alpha: float | None = None
    alpha_per_fold: dict[int, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON structure (the exponent first, as the report writes it)."""
        d: dict[str, Any] = {}
        _opt(d, "alpha", self.alpha)
        _opt(d, "alpha_per_fold", self.alpha_per_fold)
        d.update(
            accuracy=self.accuracy,
            balanced_accuracy=self.balanced_accuracy,
            macro_f1=self.macro_f1,
            macro_auc=self.macro_auc,
            per_class=self.per_class,
            confusion=self.confusion,
        )
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PointMetrics:
        """Inverse of :meth:`to_dict`."""
        apf = d.get("alpha_per_fold")
        return cls(
            d["accuracy"], d["balanced_accuracy"], d["macro_f1"], d["macro_auc"],
            d["per_class"], d["confusion"], d.get("alpha"),
            None if apf is None else {int(k): v for k, v in apf.items()},
        )


@dataclass
class Curve:
    """Accuracy and balanced accuracy of the decision rule per exponent (no refit)."""

    alpha: list[float]
    accuracy: list[float]
    balanced_accuracy: list[float]

    def to_dict(self) -> dict[str, list[float]]:
        """The JSON structure."""
        return {"alpha": self.alpha, "accuracy": self.accuracy,
                "balanced_accuracy": self.balanced_accuracy}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Curve:
        """Inverse of :meth:`to_dict`."""
        return cls(d["alpha"], d["accuracy"], d["balanced_accuracy"])


@dataclass
class LevelResult:
    """One seed at one level (image or lesion): the four operating points and the curve."""

    argmax: PointMetrics
    fixed: PointMetrics
    crossfit: PointMetrics
    best_on_curve: PointMetrics
    curve: Curve

    def point(self, name: str) -> PointMetrics:
        """The operating point ``name`` (one of :data:`POINTS`)."""
        return getattr(self, name)

    def to_dict(self) -> dict[str, Any]:
        """The JSON structure."""
        return {**{p: self.point(p).to_dict() for p in POINTS}, "curve": self.curve.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LevelResult:
        """Inverse of :meth:`to_dict`."""
        return cls(*(PointMetrics.from_dict(d[p]) for p in POINTS), Curve.from_dict(d["curve"]))


@dataclass
class SeedResult:
    """One CV repetition: per image, and per lesion when the images have lesion ids."""

    seed: int
    image: LevelResult
    lesion: LevelResult | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON structure."""
        d: dict[str, Any] = {"seed": self.seed, "image": self.image.to_dict()}
        if self.lesion is not None:
            d["lesion"] = self.lesion.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SeedResult:
        """Inverse of :meth:`to_dict`."""
        lesion = d.get("lesion")
        return cls(d["seed"], LevelResult.from_dict(d["image"]),
                   None if lesion is None else LevelResult.from_dict(lesion))


@dataclass
class PointSummary:
    """Mean and standard deviation over seeds of one operating point's scalar metrics.

    Attributes
    ----------
    mean, std : dict
        Metric of :data:`SCALARS` -> mean / standard deviation over seeds (0 for one seed).
    recall, precision : dict
        Class -> mean over seeds.
    alpha : float, optional
        Mean exponent (``fixed``, ``best_on_curve``).
    alphas : list of float, optional
        Every cross-fitted exponent (``crossfit``).
    """

    mean: dict[str, float]
    std: dict[str, float]
    recall: dict[str, float]
    precision: dict[str, float]
    alpha: float | None = None
    alphas: list[float] | None = None

    @property
    def accuracy(self) -> float:
        """Mean accuracy."""
        return self.mean["accuracy"]

    @property
    def balanced_accuracy(self) -> float:
        """Mean balanced accuracy."""
        return self.mean["balanced_accuracy"]

    @property
    def macro_auc(self) -> float:
        """Mean macro one-vs-rest AUC."""
        return self.mean["macro_auc"]

    def to_dict(self) -> dict[str, Any]:
        """The JSON structure (``accuracy``, ``accuracy_std``, ...)."""
        d: dict[str, Any] = {}
        for m in SCALARS:
            d[m] = self.mean[m]
            d[m + "_std"] = self.std[m]
        _opt(d, "alpha", self.alpha)
        _opt(d, "alphas", self.alphas)
        d["recall"] = self.recall
        d["precision"] = self.precision
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PointSummary:
        """Inverse of :meth:`to_dict`."""
        return cls({m: d[m] for m in SCALARS}, {m: d[m + "_std"] for m in SCALARS},
                   d["recall"], d["precision"], d.get("alpha"), d.get("alphas"))


@dataclass
class LevelSummary:
    """The four operating points' summaries at one level."""

    argmax: PointSummary
    fixed: PointSummary
    crossfit: PointSummary
    best_on_curve: PointSummary

    def point(self, name: str) -> PointSummary:
        """The operating point ``name`` (one of :data:`POINTS`)."""
        return getattr(self, name)

    def to_dict(self) -> dict[str, Any]:
        """The JSON structure."""
        return {p: self.point(p).to_dict() for p in POINTS}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LevelSummary:
        """Inverse of :meth:`to_dict`."""
        return cls(*(PointSummary.from_dict(d[p]) for p in POINTS))


@dataclass
class Summary:
    """Summaries over seeds, per image and (with lesion ids) per lesion."""

    image: LevelSummary
    lesion: LevelSummary | None = None

    def level(self, name: str) -> LevelSummary | None:
        """``image`` or ``lesion`` (None when absent)."""
        return getattr(self, name)

    def to_dict(self) -> dict[str, Any]:
        """The JSON structure."""
        d = {"image": self.image.to_dict()}
        if self.lesion is not None:
            d["lesion"] = self.lesion.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Summary:
        """Inverse of :meth:`to_dict`."""
        lesion = d.get("lesion")
        return cls(LevelSummary.from_dict(d["image"]),
                   None if lesion is None else LevelSummary.from_dict(lesion))


@dataclass
class OOFResult:
    """The metrics of one model's out-of-fold predictions: per seed, summarised, fit time."""

    per_seed: list[SeedResult]
    summary: Summary
    fit_seconds: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON structure."""
        return {"per_seed": [s.to_dict() for s in self.per_seed],
                "summary": self.summary.to_dict(), "fit_seconds": self.fit_seconds}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OOFResult:
        """Inverse of :meth:`to_dict`."""
        return cls([SeedResult.from_dict(s) for s in d["per_seed"]],
                   Summary.from_dict(d["summary"]), d["fit_seconds"])


@dataclass
class ModelResult(OOFResult):
    """A model of the report: :class:`OOFResult` and how its predictions were made."""

    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON structure."""
        return {**super().to_dict(), "info": self.info}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelResult:
        """Inverse of :meth:`to_dict`."""
        r = OOFResult.from_dict(d)
        return cls(r.per_seed, r.summary, r.fit_seconds, d["info"])


@dataclass
class Majority:
    """The majority-class baseline (always the most frequent class)."""

    klass: str
    image: PointMetrics
    lesion: PointMetrics | None = None

    def level(self, name: str) -> PointMetrics | None:
        """``image`` or ``lesion``."""
        return getattr(self, name)

    def to_dict(self) -> dict[str, Any]:
        """The JSON structure."""
        d: dict[str, Any] = {"class": self.klass, "image": self.image.to_dict()}
        if self.lesion is not None:
            d["lesion"] = self.lesion.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Majority:
        """Inverse of :meth:`to_dict`."""
        lesion = d.get("lesion")
        return cls(d["class"], PointMetrics.from_dict(d["image"]),
                   None if lesion is None else PointMetrics.from_dict(lesion))


@dataclass
class SeedBaseline:
    """The seed baseline (``knn_seed``), image-level (leaky) and lesion-grouped."""

    n_features: int
    pattern: str
    image_level: OOFResult
    lesion_grouped: OOFResult

    def to_dict(self) -> dict[str, Any]:
        """The JSON structure."""
        return {"n_features": self.n_features, "pattern": self.pattern,
                "image_level": self.image_level.to_dict(),
                "lesion_grouped": self.lesion_grouped.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SeedBaseline:
        """Inverse of :meth:`to_dict`."""
        return cls(d["n_features"], d["pattern"], OOFResult.from_dict(d["image_level"]),
                   OOFResult.from_dict(d["lesion_grouped"]))


@dataclass
class OtherTable:
    """The ablation model on another table of the same images (its own splits, same seed)."""

    path: str
    table_hash: str
    n_images: int
    n_common_images: int
    config: dict[str, Any]
    summary: Summary

    def to_dict(self) -> dict[str, Any]:
        """The JSON structure."""
        return {"path": self.path, "table_hash": self.table_hash, "n_images": self.n_images,
                "n_common_images": self.n_common_images, "config": self.config,
                "summary": self.summary.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> OtherTable | None:
        """Inverse of :meth:`to_dict` (None for a skipped table)."""
        if d is None:
            return None
        return cls(d["path"], d["table_hash"], d["n_images"], d["n_common_images"], d["config"],
                   Summary.from_dict(d["summary"]))


def _summaries(d: dict[str, Any]) -> dict[str, Summary]:
    return {k: Summary.from_dict(v) for k, v in d.items()}


def _dicts(d: dict[str, Summary]) -> dict[str, Any]:
    return {k: v.to_dict() for k, v in d.items()}


@dataclass
class Ablations:
    """The ablation study of one model on the first seed's splits.

    Attributes
    ----------
    model : str
    seed : int
    params : dict
    imbalance : dict of str to Summary
        Class weights and resampling variants (``default`` first).
    families : dict of str to Summary
        ``all``, then each family left out.
    metadata : dict of str to Summary
        ``image_only`` and ``with_metadata``.
    masks_given : Summary
    masks_auto : OtherTable or None
    cc_main : str
        The main table's colour-constancy setting, ``on`` or ``off``.
    cc_other : OtherTable or None
        The table with the other setting.
    fit_seconds : dict of str to float
    """

    model: str
    seed: int
    params: dict[str, Any]
    imbalance: dict[str, Summary]
    families: dict[str, Summary]
    metadata: dict[str, Summary]
    masks_given: Summary
    masks_auto: OtherTable | None
    cc_main: str
    cc_other: OtherTable | None
    fit_seconds: dict[str, float]

    @property
    def cc_other_setting(self) -> str:
        """The colour-constancy setting of :attr:`cc_other`."""
        return "off" if self.cc_main == "on" else "on"

    def to_dict(self) -> dict[str, Any]:
        """The JSON structure."""
        return {
            "model": self.model,
            "seed": self.seed,
            "params": self.params,
            "imbalance": _dicts(self.imbalance),
            "families": _dicts(self.families),
            "metadata": _dicts(self.metadata),
            "masks": {"given": self.masks_given.to_dict(),
                      "auto": None if self.masks_auto is None else self.masks_auto.to_dict()},
            "color_constancy": {
                "main": self.cc_main,
                self.cc_main: self.masks_given.to_dict(),
                self.cc_other_setting: None if self.cc_other is None else self.cc_other.to_dict(),
            },
            "fit_seconds": self.fit_seconds,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Ablations:
        """Inverse of :meth:`to_dict`."""
        cc = d["color_constancy"]
        other = "off" if cc["main"] == "on" else "on"
        return cls(d["model"], d["seed"], d["params"], _summaries(d["imbalance"]),
                   _summaries(d["families"]), _summaries(d["metadata"]),
                   Summary.from_dict(d["masks"]["given"]), OtherTable.from_dict(d["masks"]["auto"]),
                   cc["main"], OtherTable.from_dict(cc.get(other)), d["fit_seconds"])


#: Top-level keys of ``cv_report.json`` that hold plain JSON values, in report order (the
#: typed ones are inserted at their places by :meth:`CVReport.to_dict`).
_HEAD_KEYS = ("command", "features_path", "table_hash", "table_config", "n_images", "n_lesions",
              "class_counts", "n_features", "masks", "hamfeat_version", "date", "machine", "cv",
              "fixed_alpha", "acc_floor", "model_params")


@dataclass
class CVReport:
    """Everything ``hamfeat cv`` reports for the multiclass (dermoscopy) task.

    Attributes
    ----------
    head : dict
        The plain header values (command, table, hash, config, counts, masks, version, date,
        machine, CV settings, fixed alpha, accuracy floor, model parameters), in report order.
    majority : Majority
    timings : dict of str to float
        Wall times, seconds.
    notes : list of str
    models : dict of str to ModelResult
    best_model : str
    seed_baseline : SeedBaseline, optional
    ablations : Ablations, optional
    targets : dict
        Target name -> ``{"value", "met"}`` or ``{"model", "point", "accuracy",
        "balanced_accuracy", "met"}``.
    plots : list of str, optional
        The PNG files written (None: plots not asked for).
    oof_file : str, optional
    html : str, optional
        The page's file name, with ``--html``.
    """

    head: dict[str, Any]
    majority: Majority
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    models: dict[str, ModelResult] = field(default_factory=dict)
    best_model: str = ""
    seed_baseline: SeedBaseline | None = None
    ablations: Ablations | None = None
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)
    plots: list[str] | None = None
    oof_file: str | None = None
    html: str | None = None

    def __getattr__(self, name: str) -> Any:
        """The header values as attributes (``report.n_images``, ``report.cv``, ...)."""
        head = self.__dict__.get("head", {})
        if name in head:
            return head[name]
        raise AttributeError(name)

    def to_dict(self) -> dict[str, Any]:
        """The ``cv_report.json`` structure, key for key."""
        d: dict[str, Any] = {k: self.head[k] for k in _HEAD_KEYS if k in self.head}
        d["majority"] = self.majority.to_dict()
        d["timings"] = self.timings
        d["notes"] = self.notes
        d["models"] = {k: m.to_dict() for k, m in self.models.items()}
        d["best_model"] = self.best_model
        if self.seed_baseline is not None:
            d["seed_baseline"] = self.seed_baseline.to_dict()
        if self.ablations is not None:
            d["ablations"] = self.ablations.to_dict()
        d["targets"] = self.targets
        _opt(d, "plots", self.plots)
        _opt(d, "oof_file", self.oof_file)
        _opt(d, "html", self.html)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CVReport:
        """Inverse of :meth:`to_dict` (a ``cv_report.json`` read back)."""
        return cls(
            {k: d[k] for k in _HEAD_KEYS if k in d},
            Majority.from_dict(d["majority"]),
            d["timings"],
            d["notes"],
            {k: ModelResult.from_dict(m) for k, m in d["models"].items()},
            d["best_model"],
            SeedBaseline.from_dict(d["seed_baseline"]) if "seed_baseline" in d else None,
            Ablations.from_dict(d["ablations"]) if "ablations" in d else None,
            d["targets"],
            d.get("plots"),
            d.get("oof_file"),
            d.get("html"),
        )


# --------------------------------------------------------------------------------------------
# multi-label (ChestX-ray14)
# --------------------------------------------------------------------------------------------


@dataclass
class MultilabelModelResult:
    """One one-vs-rest model's pooled out-of-fold AUCs, with patient-bootstrap intervals."""

    auc: dict[str, float]
    auc_ci95: dict[str, list[float]]
    mean_auc_findings: float | None
    mean_auc_findings_ci95: list[float] | None
    abnormal_auc: float | None
    abnormal_auc_ci95: list[float] | None
    fit_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON structure."""
        d = {"auc": self.auc, "auc_ci95": self.auc_ci95,
             "mean_auc_findings": self.mean_auc_findings,
             "mean_auc_findings_ci95": self.mean_auc_findings_ci95,
             "abnormal_auc": self.abnormal_auc, "abnormal_auc_ci95": self.abnormal_auc_ci95}
        _opt(d, "fit_seconds", self.fit_seconds)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MultilabelModelResult:
        """Inverse of :meth:`to_dict`."""
        return cls(d["auc"], d["auc_ci95"], d["mean_auc_findings"], d["mean_auc_findings_ci95"],
                   d["abnormal_auc"], d["abnormal_auc_ci95"], d.get("fit_seconds"))


#: Top-level keys of the X-ray ``cv_report.json``, in report order; ``results`` is typed.
_ML_KEYS = ("title", "created_utc", "command", "hamfeat_version", "python", "features",
            "table_hash", "feature_config", "families", "n_features", "n_images", "n_patients",
            "cv", "min_images", "labels", "skipped_labels", "label_counts", "models",
            "ensemble_members", "model_params", "results", "ablations", "development",
            "dev_seeds", "metadata", "best_model", "target", "anchors", "seconds")


@dataclass
class MultilabelReport:
    """Everything ``hamfeat cv --dataset cxr14`` reports.

    Attributes
    ----------
    results : dict of str to MultilabelModelResult
    fields : dict
        Every other key of the report (see :data:`_ML_KEYS`: ``title``, ``cv``, ``labels``,
        ``ablations``, ``development``, ``metadata``, ``target``, ...), readable as attributes
        (``report.labels``).
    """

    results: dict[str, MultilabelModelResult]
    fields: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        """The plain values as attributes."""
        f = self.__dict__.get("fields", {})
        if name in f:
            return f[name]
        raise AttributeError(name)

    def to_dict(self) -> dict[str, Any]:
        """The ``cv_report.json`` structure, key for key."""
        return {k: ({m: r.to_dict() for m, r in self.results.items()} if k == "results"
                    else self.fields[k]) for k in _ML_KEYS}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MultilabelReport:
        """Inverse of :meth:`to_dict`."""
        return cls({m: MultilabelModelResult.from_dict(r) for m, r in d["results"].items()},
                   {k: d[k] for k in _ML_KEYS if k != "results"})
