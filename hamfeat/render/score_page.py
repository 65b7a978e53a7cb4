"""The page of a scored folder (``hamfeat score DIR --html OUT``)."""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from hamfeat._version import __version__
from hamfeat.render.html import environment, outlined_thumbnail, write_page

__all__ = ["render_score_page", "write_score_page"]


def _pct(p) -> str:
    return "n/a" if p is None else f"{p:.0f}"


def _name(row: dict) -> str:
    return os.path.basename(str(row.get("path") or row.get("image_id") or ""))


def _size_words(shape, exp) -> str:
    for a in exp.abcd if exp else ():
        if a.key == "size" and shape is not None:
            return f"{shape[1]}x{shape[0]} px image"
    return ""


def _image_context(item, warnings: Sequence[str]) -> dict:
    row, e = item.row, item.explanation
    thumb = tw = th = None
    if item.view is not None:
        thumb = outlined_thumbnail(item.view.rgb, item.view.mask)
        h, w = item.view.rgb.shape[:2]
        s = min(1.0, 240.0 / max(h, w))
        tw, th = max(1, round(w * s)), max(1, round(h * s))
    probs = [(k[2:], v) for k, v in row.items() if k.startswith("p_") and k != "p_malignant"]
    bars = [
        {
            "cls": c,
            "p": p,
            "width": 0.0 if p is None else round(100.0 * float(p), 1),
            "is_pred": c == row.get("prediction"),
        }
        for c, p in probs
    ]
    toward = against = families = []
    if e is not None:
        scale = max([abs(f.effect) for f in e.toward + e.against] or [1.0]) or 1.0

        def feat(f):
            return {
                "name": f.name,
                "value": f.value,
                "effect": f.effect,
                "pct_pred": _pct(f.pct_pred),
                "pct_ref": _pct(f.pct_ref),
                "width": round(100.0 * abs(f.effect) / scale, 1),
            }

        toward = [feat(f) for f in e.toward]
        against = [feat(f) for f in e.against[:3]]
        families = e.families
    flags = row.get("flags")
    if flags is not None and isinstance(flags, float) and math.isnan(flags):
        flags = None
    return {
        "name": _name(row),
        "thumb": thumb,
        "thumb_w": tw,
        "thumb_h": th,
        "mask_source": row.get("mask_source") or "",
        "size": _size_words(item.shape, e),
        "prediction": row.get("prediction") or "",
        "p_malignant": row.get("p_malignant"),
        "flags": flags or None,
        "bars": bars,
        "exp": e,
        "toward": toward,
        "against": against,
        "families": families,
        "warnings": list(warnings),
    }


def render_score_page(
    items: Iterable,
    *,
    table,
    model_path: str | os.PathLike[str] = "",
    model_name: str = "",
    title: str | None = None,
    problems: Sequence = (),
    per_feature: bool = True,
    has_stats: bool = True,
) -> str:
    """Render the page of a scored folder.

    Parameters
    ----------
    items : iterable of hamfeat.explain.ExplainedImage
        The scored images (failed ones are listed apart), consumed once: thumbnails are made
        as the page is rendered.
    table : pandas.DataFrame
        The score table's image rows (for the counts and the failed images). A ``flags``
        column, when present, is shown on each image.
    model_path : path-like
    model_name : str
    title : str, optional
    problems : sequence of hamfeat.errors.Problem
        Warnings are shown with their image.
    per_feature : bool
        Whether the explanations have per-feature effects (else the family view only).
    has_stats : bool
        Whether the model stores training distributions (else a note replaces percentiles).

    Returns
    -------
    str
        The HTML page.
    """
    warn: dict[str, list[str]] = {}
    for p in problems:
        if getattr(p, "severity", "") != "error":
            warn.setdefault(str(p.path), []).append(str(p.message))
    ok = table[table["error"].isna()] if "error" in table else table
    failed = [
        {"name": _name(r), "error": str(r["error"])}
        for r in table.to_dict("records")
        if r.get("error") is not None and not (isinstance(r["error"], float))
    ]
    counts = Counter(ok["prediction"].dropna().astype(str)) if "prediction" in ok else Counter()
    sources = set(ok["mask_source"].dropna().astype(str)) if "mask_source" in ok else set()

    def images() -> Iterator[dict]:
        for it in items:
            if it.explanation is None and it.row.get("error"):
                continue
            yield _image_context(it, warn.get(str(it.row.get("path")), []))

    return (
        environment()
        .get_template("score.html.j2")
        .render(
            hamfeat_version=__version__,
            title=title or "hamfeat: scored images",
            model_path=str(model_path),
            model_name=model_name,
            n_images=len(table),
            n_scored=len(ok),
            n_failed=len(failed),
            class_counts=sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])),
            any_given="given" in sources,
            any_auto="auto" in sources,
            failed=failed,
            images=images(),
            per_feature=per_feature,
            has_stats=has_stats,
        )
    )


def write_score_page(items: Iterable, path: str | os.PathLike[str], **kwargs) -> Path:
    """:func:`render_score_page` written atomically to ``path``.

    Returns
    -------
    pathlib.Path
    """
    return write_page(render_score_page(items, **kwargs), path)
