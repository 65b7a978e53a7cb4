"""The page of an external evaluation (``hamfeat evaluate --html``): one self-contained
``report.html`` beside the Markdown report.

Renders a :class:`hamfeat.evaluate_page.EvaluatePageData`; computes nothing (the numbers are
the evaluation's, the curves, trade-off and gallery are in the data). It reuses the CV page's
pieces: the confusion matrix and gallery macros of ``_parts.html.j2``
(:func:`hamfeat.render.cv_page.confusion_context`, :func:`~hamfeat.render.cv_page.gallery_context`)
and the curves figure (:func:`~hamfeat.render.cv_page.curves_figure`); figures are PNG
``data:`` URIs, thumbnails JPEG ones (:mod:`hamfeat.render.html`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from hamfeat._version import __version__
from hamfeat.datasets.ham10000 import CLASSES
from hamfeat.render.cv_page import confusion_context, curves_figure, gallery_context
from hamfeat.render.evaluate_report import LIST_LIMIT
from hamfeat.render.html import environment, figure_data_uri, write_page

if TYPE_CHECKING:  # pragma: no cover
    from hamfeat.evaluate_external import LevelMetrics, PointMetrics
    from hamfeat.evaluate_page import EvaluatePageData, TradeOff

__all__ = ["render_evaluate_page", "tradeoff_figure", "write_evaluate_page"]

_RULES = {"decision": "decision rule (prediction; q)", "argmax": "argmax p"}
#: Exponents listed in the trade-off table (the model's is added).
_TABLE_ALPHAS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def _point(level: str, pm: PointMetrics) -> dict:
    return {
        "id": f"{level}-{pm.rule}",
        "label": _RULES[pm.rule],
        "accuracy": pm.accuracy,
        "balanced_accuracy": pm.balanced_accuracy,
        "macro_f1": pm.macro_f1,
        "macro_auc": pm.macro_auc,
        "on": pm.probabilities,
    }


def _class_cells(pm: PointMetrics, c: str) -> dict:
    m = pm.per_class[c]
    return {"recall": m.recall, "precision": m.precision, "n_predicted": m.n_predicted,
            "auc": m.auc}


def _level(lv: LevelMetrics) -> dict:
    return {
        "level": lv.level,
        "n": lv.n,
        "class_counts": [(c, lv.class_counts[c]) for c in CLASSES],
        "classes_absent": lv.classes_absent,
        "points": [_point(lv.level, lv.decision), _point(lv.level, lv.argmax)],
        "confusion": confusion_context(lv.decision.confusion),
        "confusion_argmax": confusion_context(lv.argmax.confusion),
        "per_class": [
            {
                "cls": c,
                "support": lv.decision.per_class[c].support,
                "d": _class_cells(lv.decision, c),
                "a": _class_cells(lv.argmax, c),
            }
            for c in CLASSES
        ],
        "n_tied": lv.n_tied,
    }


def tradeoff_figure(tradeoff: list[TradeOff], title: str) -> str | None:
    """Accuracy against balanced accuracy of the decision rule as alpha goes from 0 to 1, one
    line per level, the model's point and arg-max marked, as a PNG ``data:`` URI (None without
    a curve).

    Parameters
    ----------
    tradeoff : list of hamfeat.evaluate_page.TradeOff
    title : str

    Returns
    -------
    str or None

    Raises
    ------
    ImportError
        matplotlib is not installed.
    """
    if not tradeoff:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.8, 4.8))
    for t in tradeoff:
        (line,) = ax.plot(t.accuracy, t.balanced_accuracy, marker=".", lw=1.2,
                          label=f"per {t.level} ({t.n})")
        acc0, bal0 = t.at(0.0)
        accm, balm = t.at(t.model_alpha)
        same = (acc0, bal0) == (accm, balm)  # one label for one point
        ax.scatter([acc0], [bal0], marker="s", s=36, color=line.get_color(), zorder=3)
        ax.annotate("α=0 (argmax p)" + (f" = model α={t.model_alpha:g}" if same else ""),
                    (acc0, bal0), fontsize=7, xytext=(6, -10), textcoords="offset points")
        acc1, bal1 = t.at(1.0)
        ax.annotate("α=1", (acc1, bal1), fontsize=7, xytext=(4, 2), textcoords="offset points")
        ax.scatter([accm], [balm], marker="*", s=160, color=line.get_color(),
                   edgecolor="#1d2330", zorder=4)
        if not same:
            ax.annotate(f"model α={t.model_alpha:g}", (accm, balm), fontsize=7, xytext=(6, 6),
                        textcoords="offset points")
    ax.set_xlabel("accuracy")
    ax.set_ylabel("balanced accuracy")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return figure_data_uri(fig)


def _tradeoff_rows(t: TradeOff) -> dict:
    alphas = sorted({*_TABLE_ALPHAS, float(t.model_alpha)})
    cols = []
    for a in alphas:
        acc, bal = t.at(a)
        cols.append({"alpha": a, "accuracy": acc, "balanced_accuracy": bal,
                     "model": abs(a - t.model_alpha) < 1e-12})
    return {"level": t.level, "n": t.n, "cols": cols}


def _listing(title: str, items: list[str]) -> dict:
    return {"title": title, "n": len(items), "entries": items[:LIST_LIMIT],
            "more": max(0, len(items) - LIST_LIMIT)}


def render_evaluate_page(data: EvaluatePageData, *, title: str | None = None) -> str:
    """Render the page of an evaluation.

    Parameters
    ----------
    data : EvaluatePageData
    title : str, optional

    Returns
    -------
    str
        The HTML page.
    """
    ev = data.ev
    notes = list(ev.notes) + list(data.notes)
    try:
        curves = curves_figure(
            data.curves, data.n_curves,
            f"{data.n_curves} evaluated images, q probabilities (the decision rule's)",
        )
        tradeoff = tradeoff_figure(
            data.tradeoff, "decision rule argmax p / prior^α, α from 0 to 1 (no refit)"
        )
    except ImportError:  # matplotlib is the optional ``plots`` extra
        curves = tradeoff = None
        notes.append("figures skipped: matplotlib is not installed (pip install 'hamfeat[plots]')")
    levels = [_level(lv) for lv in (ev.image, ev.lesion) if lv is not None]
    counts = [
        ("image files", ev.n_files),
        ("failed (not scored)", len(ev.failed)),
        ("evaluated (scored, with a truth row)", ev.n_evaluated),
        ("images without a truth row (scored, not evaluated)", len(ev.images_without_truth)),
        ("truth rows without an image", len(ev.truth_without_image)),
        ("truth rows left out by weight", len(ev.excluded)),
        ("later files with an image_id already scored (not evaluated)", len(ev.duplicates)),
    ]
    lists = [
        _listing("Failed files", [f"{p}: {e}" for p, e in ev.failed]),
        _listing("Truth rows without an image", ev.truth_without_image),
        _listing("Images without a truth row", ev.images_without_truth),
        _listing("Truth rows left out by weight", [f"{i}: {r}" for i, r in ev.excluded.items()]),
        _listing("Later files with an image_id already scored", ev.duplicates),
        _listing("Lesions whose images have different truths", ev.lesion_conflicts),
    ]
    return (
        environment()
        .get_template("evaluate.html.j2")
        .render(
            hamfeat_version=__version__,
            title=title or "hamfeat: external evaluation",
            ev=ev,
            alpha=ev.alpha,
            n_truth_rows=len(ev.truth.labels) + len(ev.truth.excluded),
            counts=counts,
            isic=ev.isic2018,
            levels=levels,
            classes=list(CLASSES),
            curves=curves,
            tradeoff=tradeoff,
            tradeoff_rows=[_tradeoff_rows(t) for t in data.tradeoff],
            tradeoff_missing=data.tradeoff_missing,
            prior=data.prior,
            errors=gallery_context(data.errors),
            lists=[x for x in lists if x["n"]],
            notes=notes,
        )
    )


def write_evaluate_page(data: EvaluatePageData, path: str | os.PathLike[str], **kwargs) -> Path:
    """:func:`render_evaluate_page` written atomically to ``path``.

    Parameters
    ----------
    data : EvaluatePageData
    path : path-like
    **kwargs
        ``title`` of :func:`render_evaluate_page`.

    Returns
    -------
    pathlib.Path
    """
    return write_page(render_evaluate_page(data, **kwargs), path)
