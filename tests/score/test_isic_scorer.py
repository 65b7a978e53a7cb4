"""The official ISIC 2018 scorer accepts ``hamfeat score --format isic2018`` output unchanged.

``isic-challenge-scoring`` (PyPI) needs pandas < 2.2, so it gets a virtualenv of its own,
built once under ``.venv-isic/`` at the repository root (ignored by git).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from _paths import ROOT
from hamfeat.datasets.ham10000 import ISIC2018_COLUMNS

VENV = ROOT / ".venv-isic"
SCORER = VENV / "bin" / "isic-challenge-scoring"


def scorer() -> Path:
    if not SCORER.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        proc = subprocess.run(
            [*pip, "isic-challenge-scoring", "pandas<2.2"], capture_output=True, text=True
        )
        if proc.returncode != 0:
            pytest.fail(f"cannot install isic-challenge-scoring: {proc.stderr[-2000:]}")
    return SCORER


@pytest.mark.slow
def test_official_scorer_accepts_submission(tmp_path: Path) -> None:
    from hamfeat.score import ScoreResult

    ids = [f"ISIC_{i:07d}" for i in range(14)]
    truth_dx = [c.lower() for c in ISIC2018_COLUMNS] * 2
    truth = pd.DataFrame({"image": ids})
    for col in ISIC2018_COLUMNS:
        truth[col] = [1.0 if d == col.lower() else 0.0 for d in truth_dx]
    truth_path = tmp_path / "truth.csv"
    truth.to_csv(truth_path, index=False)

    # a ScoreResult as score_folder builds it: right for the first 10, wrong for the rest
    table = pd.DataFrame({"path": ids, "image_id": ids, "error": [None] * 14})
    classes = [c.lower() for c in ISIC2018_COLUMNS]
    for c in classes:
        q = [0.9 if (d == c) == (i < 10) else 0.1 / 6 for i, d in enumerate(truth_dx)]
        table[f"q_{c}"] = q
    sub = ScoreResult(table).isic2018()
    sub_path = tmp_path / "sub.csv"
    sub.to_csv(sub_path, index=False)
    proc = subprocess.run(
        [str(scorer()), "classification", str(truth_path), str(sub_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (
        "balanced_accuracy" in proc.stdout.lower().replace(" ", "_")
        or "accuracy" in proc.stdout.lower()
    )
