"""Fixtures of the explain / HTML tests: small trained models and folders to score.

Imported by ``test_explain_cli.py`` and ``test_browser.py`` (session scope: built once).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import make_ham_folder, synthetic_lesion, write_jpeg

N_REAL_PER_CLASS = 4


def run(*args: str, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    """``python -m hamfeat ARGS`` in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "hamfeat", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def _train(data: Path, root: Path, env: dict, model: str = "lr") -> Path:
    feats, out = root / "features.parquet", root / f"{model}.skops"
    p = run(
        "features", "--data", str(data), "-o", str(feats), "--masks", "auto", "--jobs", "1", env=env
    )
    assert p.returncode == 0, p.stderr
    p = run("train", "--features", str(feats), "-o", str(out), "--model", model, env=env)
    assert p.returncode == 0, p.stderr
    return out


@pytest.fixture(scope="session")
def generated(tmp_path_factory) -> dict:
    """A generated HAM10000-layout folder (21 images), an lr model trained on it, and a folder
    to score: 4 new generated lesions, a corrupt file and one with HTML in its name."""
    root = tmp_path_factory.mktemp("generated")
    env = {**os.environ, "HAMFEAT_CACHE_DIR": str(root / "cache")}
    data = make_ham_folder(root / "data", n=21, size=(90, 120))
    model = _train(data, root, env)
    folder = root / "to_score"
    images = []
    for i in range(4):
        img, _ = synthetic_lesion(120, 160, seed=100 + i)
        images.append(write_jpeg(folder / f"lesion_{i}.jpg", img))
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    img, _ = synthetic_lesion(120, 160, seed=200)
    images.append(write_jpeg(folder / "<img src=x onerror=alert(1)>&.jpg", img))
    return {
        "root": root,
        "env": env,
        "model": model,
        "folder": folder,
        "images": images,
        "data": data,
    }


@pytest.fixture(scope="session")
def real(ham_dir: Path, tmp_path_factory) -> dict:
    """An lr model trained on a tiny real subset (4 images per class, linked) and a folder of
    6 real quality-100 originals to score (skips when the data is absent)."""
    originals = ham_dir.parent / "ham10000-originals"
    if not originals.is_dir():
        pytest.skip(f"{originals} not found")
    root = tmp_path_factory.mktemp("real")
    env = {**os.environ, "HAMFEAT_CACHE_DIR": str(root / "cache")}
    meta = pd.read_csv(ham_dir / "HAM10000_metadata.csv")
    pick = meta.groupby("dx").head(N_REAL_PER_CLASS)
    data = root / "data"
    (data / "images").mkdir(parents=True)
    for image_id in pick["image_id"]:
        (data / "images" / f"{image_id}.jpg").symlink_to(ham_dir / "images" / f"{image_id}.jpg")
    pick.to_csv(data / "HAM10000_metadata.csv", index=False)
    model = _train(data, root, env)
    folder = root / "to_score"
    folder.mkdir()
    files = sorted(originals.glob("ISIC_*.jpg"))[:6]
    for f in files:
        (folder / f.name).symlink_to(f)
    return {"root": root, "env": env, "model": model, "folder": folder, "images": files}
