"""The ``hamfeat evaluate`` report for people: Markdown and figures.

Renders an :class:`hamfeat.evaluate_external.Evaluation`; computes nothing (every number,
including the ROC curves' points, is in the evaluation). Figures need matplotlib (the optional
``plots`` extra): :func:`evaluation_plots` raises :class:`ImportError` without it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hamfeat._io import write_output
from hamfeat.datasets.ham10000 import CLASSES

if TYPE_CHECKING:  # pragma: no cover
    from hamfeat.evaluate_external import Evaluation, LevelMetrics, PointMetrics

__all__ = ["evaluation_markdown", "evaluation_plots"]

#: Ids listed per list in the Markdown (the JSON has them all).
LIST_LIMIT = 50
_RULES = {
    "decision": "decision rule (`prediction`; q)",
    "argmax": "argmax p",
}


def _f(x: float | None, nd: int = 3) -> str:
    if x is None or not math.isfinite(float(x)):
        return "n/a"
    return f"{float(x):.{nd}f}"


def _md(text: object) -> str:
    """Text safe in a Markdown table cell or list item."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`").replace(
        "\n", " "
    )


def _listing(title: str, items: Sequence[str], empty: str = "none") -> list[str]:
    L = [f"### {title} ({len(items)})", ""]
    if not items:
        return [*L, empty, ""]
    L += [f"- {_md(i)}" for i in items[:LIST_LIMIT]]
    if len(items) > LIST_LIMIT:
        L.append(f"- ... and {len(items) - LIST_LIMIT} more (all in evaluate_report.json)")
    return [*L, ""]


def _confusion(pm: PointMetrics) -> list[str]:
    head = "| true \\ predicted | " + " | ".join(CLASSES) + " | n |"
    L = [head, "| --- | " + " | ".join("---:" for _ in CLASSES) + " | ---: |"]
    for i, c in enumerate(CLASSES):
        row = pm.confusion[i]
        norm = pm.confusion_normalised[i]
        cells = [
            f"{v}" + (f" ({_f(r, 2)})" if math.isfinite(r) else "")
            for v, r in zip(row, norm, strict=True)
        ]
        L.append(f"| {c} | " + " | ".join(cells) + f" | {sum(row)} |")
    return L


def _level(lv: LevelMetrics) -> list[str]:
    d, a = lv.decision, lv.argmax
    L = [
        f"{lv.n} {lv.level}s evaluated; truth per class: "
        + ", ".join(f"{c} {lv.class_counts[c]}" for c in CLASSES)
        + ".",
        "",
    ]
    if lv.classes_absent:
        L += [
            f"No truth of class {', '.join(lv.classes_absent)}: no recall or AUC for "
            f"{'it' if len(lv.classes_absent) == 1 else 'them'}; balanced accuracy and macro "
            f"AUC are over the other {len(CLASSES) - len(lv.classes_absent)} classes.",
            "",
        ]
    L += [
        "| operating point | accuracy | balanced accuracy | macro F1 | macro AUC |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for pm in (d, a):
        L.append(
            f"| {_RULES[pm.rule]} | {_f(pm.accuracy)} | {_f(pm.balanced_accuracy)} | "
            f"{_f(pm.macro_f1)} | {_f(pm.macro_auc)} (on {pm.probabilities}) |"
        )
    L += [
        "",
        "| class | truth | recall | precision | predicted | AUC (q) | recall, argmax p | "
        "precision, argmax p | predicted, argmax p | AUC (p) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in CLASSES:
        x, y = d.per_class[c], a.per_class[c]
        L.append(
            f"| {c} | {x.support} | {_f(x.recall)} | {_f(x.precision)} | {x.n_predicted} | "
            f"{_f(x.auc)} | {_f(y.recall)} | {_f(y.precision)} | {y.n_predicted} | {_f(y.auc)} |"
        )
    L += [
        "",
        "Precision is 0 for a class never predicted. Confusion matrix at the decision rule "
        "(counts, row-normalised in brackets; rows: truth):",
        "",
        *_confusion(d),
        "",
        "At argmax p:",
        "",
        *_confusion(a),
        "",
    ]
    if lv.n_tied:
        L += [
            f"{lv.n_tied} {lv.level}(s) have a tied largest q (the first class is predicted).",
            "",
        ]
    return L


def evaluation_markdown(ev: Evaluation, *, figures: Sequence[str] = ()) -> str:
    """The Markdown report of an evaluation.

    Parameters
    ----------
    ev : Evaluation
    figures : sequence of str
        File names of the figures written beside the report.

    Returns
    -------
    str
    """
    alpha = "none (plain arg-max)" if ev.alpha is None else f"alpha = {ev.alpha:g}"
    L = [
        "# External evaluation",
        "",
        f"- model: `{_md(ev.model_path)}`; decision rule `argmax p / prior**alpha`, {alpha}",
        f"- truth: `{_md(ev.truth.path)}` (format `{ev.truth.format}`, "
        f"{len(ev.truth.labels) + len(ev.truth.excluded)} rows)",
    ]
    if ev.command:
        L.append(f"- command: `{_md(ev.command)}`")
    L += [
        "",
        "## Summary",
        "",
        "| | count |",
        "| --- | ---: |",
        f"| image files | {ev.n_files} |",
        f"| failed (not scored) | {len(ev.failed)} |",
        f"| evaluated (scored, with a truth row) | {ev.n_evaluated} |",
        f"| images without a truth row (scored, not evaluated) | "
        f"{len(ev.images_without_truth)} |",
        f"| truth rows without an image | {len(ev.truth_without_image)} |",
        f"| truth rows left out by weight | {len(ev.excluded)} |",
        f"| later files with an image_id already scored (not evaluated) | "
        f"{len(ev.duplicates)} |",
        "",
    ]
    if ev.image is not None:
        L += [
            "ISIC 2018 Task 3 (what `isic-challenge-scoring classification` reports for these "
            "images, computed on the `q_` probabilities, i.e. the submission "
            "`hamfeat score --format isic2018` writes): balanced accuracy "
            f"**{_f(ev.isic2018['balanced_accuracy'], 4)}**, macro AUC "
            f"**{_f(ev.isic2018['macro_auc'], 4)}**. `evaluate_isic2018_submission.csv` and "
            "`evaluate_isic2018_truth.csv` are those files.",
            "",
            "## Per image",
            "",
            *_level(ev.image),
        ]
    else:
        L += ["No image could be evaluated.", ""]
    if ev.lesion is not None:
        L += [
            "## Per lesion",
            "",
            "Probabilities averaged over a lesion's images, then the decision rule (as "
            "`hamfeat score --lesion-map` and `hamfeat cv`).",
            "",
            *_level(ev.lesion),
        ]
    L += ["## Not evaluated", ""]
    L += _listing("Failed files", [f"{p}: {e}" for p, e in ev.failed])
    L += _listing("Truth rows without an image", ev.truth_without_image)
    L += _listing("Images without a truth row", ev.images_without_truth)
    L += _listing("Truth rows left out by weight", [f"{i}: {r}" for i, r in ev.excluded.items()])
    L += _listing("Later files with an image_id already scored", ev.duplicates)
    if ev.lesion_conflicts:
        L += _listing("Lesions whose images have different truths", ev.lesion_conflicts)
    if figures:
        L += ["## Figures", ""] + [f"![{Path(f).stem}]({f})" for f in figures] + [""]
    if ev.notes:
        L += ["## Notes", ""] + [f"- {_md(n)}" for n in ev.notes] + [""]
    return "\n".join(L)


def evaluation_plots(ev: Evaluation, folder: Path, names: Mapping[str, str]) -> list[str]:
    """Write the figures: confusion matrix and per-class recall (per image), ROC curves.

    Parameters
    ----------
    ev : Evaluation
        With image metrics.
    folder : pathlib.Path
    names : mapping
        File names by key (``confusion``, ``recall``, ``roc``).

    Returns
    -------
    list of str
        The paths written.

    Raises
    ------
    ImportError
        matplotlib is not installed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    assert ev.image is not None
    written = []

    def save(fig, key: str) -> None:
        p = folder / names[key]
        write_output(p, lambda fh: fig.savefig(fh, format="png", dpi=110), binary=True)
        plt.close(fig)
        written.append(str(p))

    d, a = ev.image.decision, ev.image.argmax
    cm = np.asarray(d.confusion, float)
    norm = np.nan_to_num(np.asarray(d.confusion_normalised, float))
    fig, ax = plt.subplots(figsize=(6, 5))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(CLASSES)):
        for j in range(len(CLASSES)):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(CLASSES)), CLASSES)
    ax.set_yticks(range(len(CLASSES)), CLASSES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("decision rule (row-normalised colour, counts)")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    save(fig, "confusion")

    fig, ax = plt.subplots(figsize=(7, 4))
    x = np.arange(len(CLASSES))
    for k, (pm, label) in enumerate(((d, "decision rule"), (a, "argmax p"))):
        rec = [np.nan_to_num(pm.per_class[c].recall) for c in CLASSES]
        ax.bar(x + (k - 0.5) * 0.4, rec, 0.4, label=label)
    ax.set_xticks(x, [f"{c}\n(n={d.per_class[c].support})" for c in CLASSES])
    ax.set_ylabel("recall")
    ax.set_ylim(0, 1)
    ax.set_title(f"per-class recall, {ev.image.n} images")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save(fig, "recall")

    fig, ax = plt.subplots(figsize=(5.5, 5))
    for c in CLASSES:
        if c in d.roc:
            ax.plot(d.roc[c]["fpr"], d.roc[c]["tpr"], label=f"{c} (AUC {_f(d.per_class[c].auc)})")
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC per class, one-vs-rest (q probabilities)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    save(fig, "roc")
    return written
