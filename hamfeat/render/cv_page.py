"""The page of a CV run (``hamfeat cv --html``): one self-contained ``report.html``.

Renders a :class:`hamfeat.cv_page.CVPageData`; computes nothing (the numbers are the report's,
the curves and galleries are in the data). Figures are drawn with matplotlib and embedded as
PNG ``data:`` URIs, thumbnails as JPEG ones (:mod:`hamfeat.render.html`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hamfeat._version import __version__
from hamfeat.datasets.ham10000 import CLASSES
from hamfeat.render.html import (
    OUTLINE_RGB,
    REFERENCE_RGB,
    environment,
    figure_data_uri,
    outlines_thumbnail,
    png_data_uri,
    write_page,
)

if TYPE_CHECKING:  # pragma: no cover
    from hamfeat.cv_page import CVPageData, Gallery, GalleryItem

__all__ = ["render_cv_page", "write_cv_page"]

_POINTS = (
    ("argmax", "argmax"),
    ("fixed", "fixed α"),
    ("crossfit", "cross-fitted α"),
    ("best_on_curve", "best on curve (optimistic)"),
)
_SCALARS = ("accuracy", "balanced_accuracy", "macro_f1", "macro_auc")
_COLORS = {"auto": OUTLINE_RGB, "reference": REFERENCE_RGB}
THUMB = 160


def _fin(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _summary_rows(report: dict, level: str) -> list[dict]:
    rows = []
    maj = report["majority"].get(level)
    if maj:
        rows.append(
            {
                "model": f"majority ({report['majority']['class']})",
                "point": "–",
                "alpha": "–",
                **{k: _fin(maj[k]) for k in _SCALARS},
                "best": False,
            }
        )
    for name, m in report["models"].items():
        s = m["summary"].get(level)
        if s is None:
            continue
        for key, label in _POINTS:
            d = s[key]
            if key == "argmax":
                alpha = "0"
            elif "alpha" in d:
                alpha = f"{d['alpha']:.2f}"
            else:
                alpha = ",".join(f"{a:.2f}" for a in d.get("alphas", []))
            rows.append(
                {
                    "model": name,
                    "point": label,
                    "alpha": alpha,
                    **{k: _fin(d[k]) for k in _SCALARS},
                    "best": key == "crossfit",
                }
            )
    return rows


def confusion_context(cm: list[list[int]]) -> dict:
    """The confusion matrix as the ``confusion_table`` macro shows it."""
    a = np.asarray(cm, dtype=float)
    tot = a.sum(axis=1)
    rows = []
    for i, c in enumerate(CLASSES):
        cells = []
        for j in range(len(CLASSES)):
            frac = a[i, j] / tot[i] if tot[i] else None
            shade = 0.0 if frac is None else frac
            cells.append(
                {
                    "n": int(a[i, j]),
                    "frac": frac,
                    "bg": f"rgba(46, 134, 193, {0.08 + 0.85 * shade:.2f})",
                    "fg": "#fff" if shade > 0.5 else "#1d2330",
                    "diag": i == j,
                }
            )
        rows.append({"cls": c, "cells": cells, "n": int(tot[i])})
    return {"classes": list(CLASSES), "rows": rows}


def _per_class(report: dict, best: str) -> list[dict]:
    out = []
    for name, m in report["models"].items():
        d = m["summary"]["image"]["crossfit"]
        out.append(
            {
                "model": name,
                "best": name == best,
                "cells": [
                    {"recall": _fin(d["recall"][c]), "precision": _fin(d["precision"][c])}
                    for c in CLASSES
                ],
            }
        )
    return out


def curves_figure(curves, n: int, title: str) -> str | None:
    """ROC and precision-recall curves per class (:class:`hamfeat.cv_page.ClassCurves`) as one
    figure, a PNG ``data:`` URI (None without curves).

    Raises
    ------
    ImportError
        matplotlib is not installed.
    """
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.8))
    for cc in curves:
        a1.plot(cc.fpr, cc.tpr, lw=1.3, label=f"{cc.cls} (n={cc.n_pos}, AUC {cc.auc:.3f})")
        a2.plot(
            cc.recall,
            cc.precision,
            lw=1.3,
            label=f"{cc.cls} (AP {cc.average_precision:.3f}, prev. {cc.n_pos / n:.3f})",
        )
    a1.plot([0, 1], [0, 1], color="grey", ls="--", lw=0.8)
    a1.set_xlabel("false positive rate")
    a1.set_ylabel("true positive rate")
    a1.set_title("ROC per class, one-vs-rest")
    a1.legend(fontsize=7, loc="lower right")
    a2.set_xlabel("recall")
    a2.set_ylabel("precision")
    a2.set_xlim(0, 1)
    a2.set_ylim(0, 1.02)
    a2.set_title("precision-recall per class")
    a2.legend(fontsize=7, loc="upper right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return figure_data_uri(fig)


def _curves_figure(data: CVPageData) -> str | None:
    return curves_figure(
        data.curves, len(data.y), f"{data.best}, out-of-fold probabilities (seed {data.seed})"
    )


def _families_figure(data: CVPageData) -> str | None:
    if not data.families:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fams = data.families
    names = [k for k in fams if k != "all"]
    d_bal = [fams[k]["delta_balanced_accuracy"] for k in names]
    d_acc = [fams[k]["delta_accuracy"] for k in names]
    y = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(7.5, 0.32 * len(names) + 1.5))
    ax.barh(y - 0.2, d_bal, 0.4, label="balanced accuracy", color="#2e86c1")
    ax.barh(y + 0.2, d_acc, 0.4, label="accuracy", color="#7f8c9d")
    ax.axvline(0, color="#1d2330", lw=0.8)
    ax.set_yticks(y, [f"without {k}" for k in names])
    ax.invert_yaxis()
    ax.set_xlabel("change against all families (cross-fitted operating point, per image)")
    ab = data.report.get("ablations") or {}
    a = fams["all"]
    ax.set_title(
        f"feature families left out ({ab.get('model', '?')}, seed {ab.get('seed', '?')}); all: "
        f"balanced acc. {a['balanced_accuracy']:.3f}, acc. {a['accuracy']:.3f}",
        fontsize=9,
    )
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return figure_data_uri(fig)


def item_context(it: GalleryItem) -> dict:
    thumb = tw = th = None
    if it.rgb is not None:
        thumb = outlines_thumbnail(
            it.rgb, [(m, _COLORS.get(kind, OUTLINE_RGB)) for m, kind in it.masks], max_side=THUMB
        )
        h, w = it.rgb.shape[:2]
        s = min(1.0, THUMB / max(h, w))
        tw, th = max(1, round(w * s)), max(1, round(h * s))
    bars = [
        {
            "cls": c,
            "p": p,
            "width": round(100.0 * p, 1),
            "is_pred": c == it.prediction,
            "is_true": c == it.dx,
        }
        for c, p in it.proba.items()
    ]
    return {
        "image_id": it.image_id,
        "dx": it.dx,
        "thumb": thumb,
        "thumb_w": tw,
        "thumb_h": th,
        "dice": it.dice,
        "prediction": it.prediction,
        "fold": it.fold,
        "bars": bars,
        "note": it.note,
    }


def gallery_context(g: Gallery | None) -> dict | None:
    """A gallery as the ``gallery`` macro shows it (thumbnails made here)."""
    if g is None:
        return None
    return {
        "title": g.title,
        "how": g.how,
        "classes": [
            {"cls": c, "tiles": [item_context(i) for i in items], "count": g.counts.get(c, "")}
            for c, items in g.per_class.items()
        ],
    }


def render_cv_page(data: CVPageData, *, title: str | None = None) -> str:
    """Render the page of a CV run.

    Parameters
    ----------
    data : CVPageData
    title : str, optional

    Returns
    -------
    str
        The HTML page.
    """
    r = data.report
    targets = []
    for k, v in r.get("targets", {}).items():
        targets.append(
            {
                "name": k,
                "met": bool(v["met"]),
                "text": (
                    f"best: {v['model']} at the {v['point']} point: accuracy "
                    f"{v['accuracy']:.3f}, balanced accuracy {v['balanced_accuracy']:.3f}"
                    if "model" in v
                    else f"{v['value']:.3f}"
                ),
            }
        )
    ps = r["models"][data.best]["per_seed"][0]["image"]["crossfit"]
    notes = list(r.get("notes", [])) + list(data.notes)
    try:
        curves, families = _curves_figure(data), _families_figure(data)
    except ImportError:  # matplotlib is the optional ``plots`` extra
        curves = families = None
        notes.append("figures skipped: matplotlib is not installed (pip install 'hamfeat[plots]')")
    return (
        environment()
        .get_template("cv.html.j2")
        .render(
            hamfeat_version=__version__,
            title=title or "hamfeat: cross-validation report",
            r=r,
            best=data.best,
            seed=data.seed,
            mask_mode=r.get("masks", {}).get("mode", "unknown"),
            targets=targets,
            image_rows=_summary_rows(r, "image"),
            lesion_rows=_summary_rows(r, "lesion"),
            confusion=confusion_context(data.confusion),
            best_alphas=sorted({float(a) for a in ps["alpha_per_fold"].values()}),
            per_class=_per_class(r, data.best),
            classes=list(CLASSES),
            curves=curves,
            tradeoff=png_data_uri(data.tradeoff_png) if data.tradeoff_png else None,
            families=families,
            segmentation=gallery_context(data.segmentation),
            errors=gallery_context(data.errors),
            notes=notes,
            oof_file=data.oof_file,
        )
    )


def write_cv_page(data: CVPageData, path: str | os.PathLike[str], **kwargs) -> Path:
    """:func:`render_cv_page` written atomically to ``path``."""
    return write_page(render_cv_page(data, **kwargs), path)
