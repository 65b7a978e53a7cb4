"""Terminal text of an explanation (``hamfeat explain IMAGE``)."""

from __future__ import annotations

import math

__all__ = ["explanation_text"]


def _p(pct):
    return "  n/a" if pct is None else f"{pct:5.1f}"


def _v(x: float) -> str:
    return "missing" if x is None or not math.isfinite(x) else f"{x:.4g}"


def explanation_text(item, *, model_name: str = "") -> str:
    """The facts of one explained image as plain text lines.

    Parameters
    ----------
    item : hamfeat.explain.ExplainedImage
    model_name : str
        Shown in the header (e.g. the model file).

    Returns
    -------
    str
        Ends with a newline.
    """
    e = item.explanation
    row = item.row
    lines = [
        f"{row['path']}: predicted {e.predicted}" + (f" (model {model_name})" if model_name else "")
    ]
    probs = sorted(e.proba.items(), key=lambda kv: -kv[1])
    lines.append("  probabilities: " + ", ".join(f"{c} {p:.3f}" for c, p in probs))
    if e.p_malignant is not None:
        lines.append(f"  p_malignant (mel + bcc + akiec): {e.p_malignant:.3f}")
    lines.append(f"  mask: {row.get('mask_source', '')}")
    for w in row.get("warnings") or ():
        lines.append(f"  warning: {w}")
    ref = e.reference
    lines.append(
        f"\nWhy {e.predicted} rather than {ref}: log(p_{e.predicted} / p_{ref}) = "
        f"{e.log_ratio:+.2f}, {e.total_shift:+.2f} of it from this image's features "
        "(all features at their training medians gives the rest)"
    )
    lines.append(f"  ({e.method})")
    pp, pr = f"pct in {e.predicted}", f"pct in {ref}"
    head = f"  {'feature':<36} {'value':>10} {pp:>11} {pr:>11} {'effect':>7}"
    if e.toward:
        lines.append(f"\nFeatures that moved it most toward {e.predicted} and away from {ref}:")
        lines.append(head)
        for f in e.toward:
            lines.append(
                f"  {f.name:<36} {_v(f.value):>10} {_p(f.pct_pred):>11} {_p(f.pct_ref):>11} "
                f"{f.effect:+7.3f}"
            )
    if e.against:
        lines.append(f"\nFeatures that pulled the other way (toward {ref}):")
        lines.append(head)
        for f in e.against:
            lines.append(
                f"  {f.name:<36} {_v(f.value):>10} {_p(f.pct_pred):>11} {_p(f.pct_ref):>11} "
                f"{f.effect:+7.3f}"
            )
    if not e.has_stats:
        lines.append(
            "  (percentiles n/a: this model file has no training distributions; retrain it "
            "with this hamfeat to get them)"
        )
    lines.append("\nFeature families (every feature of the family at its median):")
    lines.append("  " + ", ".join(f"{f.name} {f.effect:+.2f}" for f in e.families))
    lines.append("\nABCD summary:")
    for a in e.abcd:
        grade = f" [{a.grade}]" if a.grade else ""
        lines.append(f"  {a.title}{grade}: {a.text}")
    return "\n".join(lines) + "\n"
