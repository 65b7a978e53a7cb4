"""The learned segmenter in the user's path: train-segmenter, features --segmenter, score.

Generated folders (dark ellipses on skin-coloured noise, tests/conftest.py), the real CLI in a
subprocess.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import make_ham_folder, synthetic_lesion, write_jpeg
from hamfeat.segmenter import METHOD_LEARNED, METHOD_LEARNED_OOF, CrossFittedSegmenter, image_key


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, HAMFEAT_CACHE_DIR=str((cwd or Path.cwd()) / "cache"))
    return subprocess.run(
        [sys.executable, "-m", "hamfeat", *args], capture_output=True, text=True, env=env,
        cwd=cwd, timeout=600,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("seg")
    data = make_ham_folder(root / "HAM10000", 14, size=(90, 120))
    seg = root / "segmenter.skops"
    p = run("train-segmenter", "--data", str(data), "-o", str(seg), "--folds", "2",
            "--jobs", "1", "--max-iter", "15", cwd=root)
    assert p.returncode == 0, p.stderr
    assert seg.is_file()
    table = root / "features_auto.parquet"
    p = run("features", "--data", str(data), "-o", str(table), "--masks", "auto",
            "--segmenter", str(seg), "--families", "shape,color", "--jobs", "1", cwd=root)
    assert p.returncode == 0, p.stderr
    model = root / "model.skops"
    p = run("train", "--features", str(table), "-o", str(model), "--model", "lr", cwd=root)
    assert p.returncode == 0, p.stderr
    return {"root": root, "data": data, "seg": seg, "table": table, "model": model}


def test_training_images_get_out_of_fold_masks(trained: dict) -> None:
    t = pd.read_parquet(trained["table"])
    assert len(t) == 14
    assert set(t["mask_method"]) == {METHOD_LEARNED_OOF}
    assert set(t["mask_source"]) == {"auto"}
    assert t.filter(like="shape_").notna().all().all()


def test_new_images_get_the_full_model_and_scores_need_the_segmenter(trained: dict) -> None:
    root = trained["root"]
    new = root / "new"
    for i in range(3):
        write_jpeg(new / f"x{i}.jpg", synthetic_lesion(90, 120, seed=100 + i)[0])
    p = run("score", str(new), "--model", str(trained["model"]), "-o", str(root / "s.csv"),
            "--jobs", "1", cwd=root)
    assert p.returncode == 0, p.stderr
    s = pd.read_csv(root / "s.csv")
    assert len(s) == 3 and s["error"].isna().all()
    # the model names its segmenter; without it beside the model, one line, no traceback
    lone = root / "lone"
    lone.mkdir()
    shutil.copy(trained["model"], lone / "model.skops")
    p = run("score", str(new), "--model", str(lone / "model.skops"), cwd=root)
    assert p.returncode == 3, p.stderr
    assert "Traceback" not in p.stderr
    assert "segmenter" in p.stderr and str(lone) in p.stderr
    # --segmenter beside a model: found again
    p = run("score", str(new), "--model", str(lone / "model.skops"), "--segmenter",
            str(trained["seg"]), "-o", str(root / "s2.csv"), "--jobs", "1", cwd=root)
    assert p.returncode == 0, p.stderr
    pd.testing.assert_frame_equal(
        s.drop(columns="path"), pd.read_csv(root / "s2.csv").drop(columns="path")
    )


@pytest.mark.parametrize("shape", [(20, 4000), (4000, 16), (16, 600)])
def test_images_too_thin_for_the_learned_segmenter_are_scored_and_flagged(
    trained: dict, shape: tuple[int, int]
) -> None:
    """A strip (16 px a side or more, so decoded) is under the learned segmenter's 16 px at
    canonical size: the classical segmenter makes its mask, named as a fallback, and score
    flags it, never an error row (the rest of the batch is unaffected)."""
    import cv2

    root = trained["root"]
    folder = root / f"thin_{shape[0]}x{shape[1]}"
    folder.mkdir()
    rng = np.random.default_rng(sum(shape))
    cv2.imwrite(str(folder / "strip.png"), rng.integers(0, 255, (*shape, 3), dtype=np.uint8))
    write_jpeg(folder / "normal.jpg", synthetic_lesion(90, 120, seed=7)[0])
    out = folder / "s.csv"
    p = run("score", str(folder), "--model", str(trained["model"]), "-o", str(out),
            "--jobs", "1", cwd=root)
    assert p.returncode == 0, p.stderr
    s = pd.read_csv(out).set_index("image_id")
    assert s["error"].isna().all(), s["error"]
    assert "seg_fallback" in str(s.loc["strip", "flags"])
    assert s.loc["strip", "prediction"] in ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")


def test_another_segmenter_file_is_refused(trained: dict) -> None:
    root = trained["root"]
    other = root / "other.skops"
    other.write_bytes(b"not a segmenter")
    p = run("score", str(trained["data"] / "HAM10000_images_part_1"), "--model",
            str(trained["model"]), "--segmenter", str(other), cwd=root)
    assert p.returncode == 3 and "Traceback" not in p.stderr
    assert "hash" in p.stderr and str(other) in p.stderr
    p = run("features", "--data", str(trained["data"]), "-o", str(root / "f.parquet"),
            "--masks", "auto", "--segmenter", str(other), cwd=root)
    assert p.returncode == 3 and "Traceback" not in p.stderr and str(other) in p.stderr


def test_train_segmenter_usage_errors(tmp_path: Path) -> None:
    data = make_ham_folder(tmp_path / "HAM10000", 4)
    p = run("train-segmenter", "--data", str(data), "-o", str(tmp_path / "s.skops"),
            "--folds", "1", cwd=tmp_path)
    assert p.returncode == 2 and "--folds" in p.stderr
    p = run("train-segmenter", "--data", str(data), "-o", str(tmp_path), cwd=tmp_path)
    assert p.returncode != 0 and "Traceback" not in p.stderr
    # 2 lesions, 5 folds: refused before any fitting
    p = run("train-segmenter", "--data", str(data), "-o", str(tmp_path / "s.skops"),
            cwd=tmp_path)
    assert p.returncode != 0 and "Traceback" not in p.stderr and "folds" in p.stderr


def test_fold_models_never_see_their_fold() -> None:
    pairs = [synthetic_lesion(60, 80, seed=i) for i in range(8)]
    groups = [f"L{i // 2}" for i in range(8)]
    seg = CrossFittedSegmenter(
        n_folds=2, segmenter_params={"max_iter": 10, "pixels_per_image": 60}
    ).fit([p[0] for p in pairs], [p[1] for p in pairs], groups)
    fold = np.array([seg.fold_of_[image_key(p[0])] for p in pairs])
    # whole lesions in one fold; each fold model trained on the other fold's images only
    assert all(fold[i] == fold[i + 1] for i in range(0, 8, 2))
    for k, member in enumerate(seg.folds_):
        assert member.n_training_images_ == int((fold != k).sum())
    assert seg.full_.n_training_images_ == 8
    mask, method = seg.segment(pairs[0][0])
    assert method == METHOD_LEARNED_OOF and mask.dtype == bool and mask.shape == (60, 80)
    new = synthetic_lesion(60, 80, seed=99)
    mask, method = seg.segment(new[0])
    assert method == METHOD_LEARNED
    dice = 2 * (mask & new[1]).sum() / (mask.sum() + new[1].sum())
    assert dice > 0.8
    # deterministic, bit for bit
    np.testing.assert_array_equal(mask, seg.segment(new[0].copy())[0])
