"""The PNG plots of ``hamfeat cv`` (confusion matrix, per-class recall, trade-off curve),
rendered from the typed result :class:`~hamfeat.evaluation.results.CVReport` (needs
matplotlib; no computation here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hamfeat._io import write_output
from hamfeat.evaluation.results import CVReport

__all__ = ["cv_plots"]


def _save(fig, path: Path) -> str:
    import matplotlib.pyplot as plt

    write_output(path, lambda fh: fig.savefig(fh, format="png", dpi=110), binary=True)
    plt.close(fig)
    return str(path)


def _confusion(r: CVReport, report_dir: Path) -> str:
    import matplotlib.pyplot as plt

    best = r.best_model
    CLASSES = list(r.head["class_counts"])
    cm = np.asarray(r.models[best].per_seed[0].image.crossfit.confusion, float)
    norm = cm / np.clip(cm.sum(axis=1, keepdims=True), 1, None)
    fig, ax = plt.subplots(figsize=(6, 5))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(CLASSES)):
        for j in range(len(CLASSES)):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center",
                    color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xticks(range(len(CLASSES)), CLASSES)
    ax.set_yticks(range(len(CLASSES)), CLASSES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{best}, cross-fitted alpha (row-normalised colour, counts)")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    return _save(fig, report_dir / "cv_confusion.png")


def _recall(r: CVReport, report_dir: Path) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    CLASSES = list(r.head["class_counts"])
    names = list(r.models)
    w = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        rec = r.models[name].summary.image.crossfit.recall
        ax.bar(np.arange(len(CLASSES)) + i * w, [rec[c] for c in CLASSES], w, label=name)
    ax.set_xticks(np.arange(len(CLASSES)) + w * (len(names) - 1) / 2, CLASSES)
    ax.set_ylabel("recall")
    ax.set_ylim(0, 1)
    ax.set_title("per-class recall, cross-fitted operating point")
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    return _save(fig, report_dir / "cv_recall.png")


def _tradeoff(r: CVReport, report_dir: Path, bal_target: float) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 5))
    for name, m in r.models.items():
        c = m.per_seed[0].image.curve
        ax.plot(c.accuracy, c.balanced_accuracy, marker=".", label=name)
        ax.annotate("α=0", (c.accuracy[0], c.balanced_accuracy[0]), fontsize=6)
        ax.annotate("α=1", (c.accuracy[-1], c.balanced_accuracy[-1]), fontsize=6)
    ax.axvline(r.acc_floor, color="grey", ls="--", lw=0.8)
    ax.axhline(bal_target, color="grey", ls="--", lw=0.8)
    ax.set_xlabel("accuracy")
    ax.set_ylabel("balanced accuracy")
    ax.set_title("decision rule argmax p / prior^α, α from 0 to 1 (OOF, no refit)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, report_dir / "cv_alpha_tradeoff.png")


def cv_plots(report: CVReport, report_dir: Path, *, bal_target: float = 0.70) -> list[str]:
    """Write ``cv_confusion.png``, ``cv_recall.png`` and ``cv_alpha_tradeoff.png``.

    Parameters
    ----------
    report : CVReport
    report_dir : pathlib.Path
        An existing folder.
    bal_target : float
        The balanced-accuracy target line of the trade-off plot (the accuracy line is the
        report's ``acc_floor``).

    Returns
    -------
    list of str
        The files written.

    Raises
    ------
    ImportError
        Without matplotlib.
    """
    import matplotlib

    matplotlib.use("Agg")
    return [_confusion(report, report_dir), _recall(report, report_dir),
            _tradeoff(report, report_dir, bal_target)]
