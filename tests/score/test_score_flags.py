"""Issue #18, "wrong answers given with confidence": the real CLI in a subprocess, on generated
images. Flags for images unlike the training images (both tasks), the re-weighted ``q_*``
columns, the mask-mode warning, and features selected by declared names only."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from conftest import METADATA_HEADER, write_jpeg, write_mask
from hamfeat.datasets.ham10000 import CLASSES
from hamfeat.models import load_model
from hamfeat.novelty import FLAGS

N_TRAIN = 70


def run(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hamfeat", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )


def lesion_image(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A dermoscopy-like image: a skin tone, a brown blotchy ellipse, vignette and noise; each
    seed varies the size, tones, lesion size, position and noise."""
    rng = np.random.default_rng(seed)
    h, w = ((150, 200), (120, 160), (180, 240))[seed % 3]
    yy, xx = np.mgrid[:h, :w].astype(np.float64)
    skin = rng.uniform([190, 140, 115], [235, 190, 165])
    img = np.empty((h, w, 3))
    img[:] = skin
    cy, cx = h / 2 + rng.uniform(-0.1, 0.1) * h, w / 2 + rng.uniform(-0.1, 0.1) * w
    ry, rx = rng.uniform(0.15, 0.35) * h, rng.uniform(0.15, 0.35) * w
    theta = rng.uniform(0, np.pi)
    u = ((yy - cy) * np.cos(theta) + (xx - cx) * np.sin(theta)) / ry
    v = (-(yy - cy) * np.sin(theta) + (xx - cx) * np.cos(theta)) / rx
    r = np.sqrt(u**2 + v**2)
    mask = r <= 1.0
    lesion = rng.uniform([70, 40, 30], [150, 100, 80])
    blotch = cv2.GaussianBlur(rng.normal(0, 1, (h, w)), (0, 0), 4)[..., None] * 25
    img[mask] = (lesion + blotch[mask] * np.array([1.0, 0.8, 0.7]))
    edge = (r > 1.0) & (r < 1.15)
    img[edge] = 0.5 * img[edge] + 0.5 * (lesion + skin) / 2
    dist = np.sqrt(((yy - h / 2) / h) ** 2 + ((xx - w / 2) / w) ** 2)
    img *= (1.0 - rng.uniform(0.1, 0.4) * dist**2)[..., None]
    img += rng.normal(0, rng.uniform(3, 9), img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), mask


def synthetic_xray(seed: int, size: int = 64) -> np.ndarray:
    from test_cxr14 import synthetic_cxr

    return np.repeat(synthetic_cxr(seed, bool(seed % 2), size)[..., None], 3, axis=2)


def non_lesions() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "black": np.zeros((150, 200, 3), np.uint8),
        "white": np.full((180, 240, 3), 252, np.uint8),
        "skin": np.broadcast_to(np.uint8([205, 160, 135]), (150, 200, 3)).copy(),
        "noise": rng.integers(0, 256, (150, 200, 3), dtype=np.uint8),
        "strip": np.broadcast_to(np.uint8([200, 150, 130]), (20, 2000, 3)).copy(),
        "xray": synthetic_xray(3, 128),
    }


@pytest.fixture(scope="module")
def ham(tmp_path_factory) -> dict:
    """A generated HAM10000 folder, its given- and automatic-mask tables and lr models."""
    root = tmp_path_factory.mktemp("flags")
    data = root / "HAM10000"
    rows = []
    for i in range(N_TRAIN):
        rgb, mask = lesion_image(i)
        image_id = f"ISIC_{i:07d}"
        write_jpeg(data / "images" / f"{image_id}.jpg", rgb)
        write_mask(data / "masks" / f"{image_id}_segmentation.png", mask)
        dx = "nv" if i % 2 else CLASSES[(i // 2) % len(CLASSES)]  # nv-heavy, as HAM10000
        rows.append(f"HAM_{i // 2:07d},{image_id},{dx},histo,{40 + i % 30}.0,male,back\n")
    (data / "HAM10000_metadata.csv").write_text(METADATA_HEADER + "".join(rows))
    env = {**os.environ, "HAMFEAT_CACHE_DIR": str(root / "cache")}
    out = {"root": root, "data": data, "env": env}
    for masks in ("given", "auto"):
        table, model = root / f"{masks}.parquet", root / f"{masks}.skops"
        p = run("features", "--data", str(data), "-o", str(table), "--masks", masks,
                "--jobs", "1", env=env)
        assert p.returncode == 0, p.stderr
        p = run("train", "--features", str(table), "-o", str(model), "--model", "lr", env=env)
        assert p.returncode == 0, p.stderr
        out[masks], out[f"{masks}_table"] = model, table
    new = root / "new"
    for i in range(8):  # new lesions of the training distribution
        write_jpeg(new / f"lesion_{i}.jpg", lesion_image(1000 + i)[0])
    for name, rgb in non_lesions().items():
        write_jpeg(new / f"not_{name}.jpg", rgb)
    out["new"] = new
    return out


def score(ham: dict, model: str, *extra: str, folder: Path | None = None):
    p = run("score", str(folder or ham["new"]), "--model", str(ham[model]), "--jobs", "1",
            *extra, env=ham["env"])
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    return pd.read_csv(io.StringIO(p.stdout), keep_default_na=False, na_values=[""]), p.stderr


def test_non_lesions_are_flagged_and_still_scored(ham: dict) -> None:
    table, err = score(ham, "auto")
    table["flags"] = table["flags"].fillna("")
    names = table["path"].map(lambda p: Path(p).stem)
    odd = table[names.str.startswith("not_")]
    assert len(odd) == len(non_lesions())
    assert (odd["flags"] != "").all(), odd[["path", "flags"]]
    assert odd["prediction"].isin(CLASSES).all()  # flagged images are still scored
    assert "novel" in odd.set_index(names[odd.index]).at["not_xray", "flags"]
    strip = odd.set_index(names[odd.index]).at["not_strip", "flags"].split(";")
    assert "aspect_ratio" in strip
    flags = {f for v in table["flags"] for f in v.split(";") if f}
    assert flags <= set(FLAGS)
    lesions = table[names.str.startswith("lesion_")]
    assert (lesions["flags"] != "").sum() <= 1, lesions[["path", "flags"]]
    n_flagged = int((table["flags"] != "").sum())
    assert f"{n_flagged} flagged as unlike the training images" in err
    assert load_model(ham["auto"]).novelty is not None


def test_q_columns_explain_the_prediction(ham: dict, tmp_path: Path) -> None:
    lmap = tmp_path / "lesions.csv"
    lmap.write_text("image_id,lesion_id\nlesion_0,L0\nlesion_1,L0\nnot_black,L1\n")
    table, _ = score(ham, "auto", "--lesion-map", str(lmap))
    q = table[[f"q_{c}" for c in CLASSES]].to_numpy(dtype=float)
    p = table[[f"p_{c}" for c in CLASSES]].to_numpy(dtype=float)
    np.testing.assert_allclose(q.sum(axis=1), 1.0, atol=1e-5)
    assert (np.asarray(CLASSES)[q.argmax(axis=1)] == table["prediction"]).all()
    assert not np.allclose(p, q)  # lr with alpha 0.5: the rule re-weights
    cols = list(table.columns)
    assert cols.index("p_malignant") < cols.index("q_akiec") < cols.index("flags")
    les = table[table["level"] == "lesion"].set_index("lesion_id")
    assert les.at["L1", "flags"] != ""  # a lesion carries its images' flags


def test_mask_mode_mismatch_is_warned(ham: dict) -> None:
    assert load_model(ham["given"]).extra["mask_mode"] == "given"
    assert load_model(ham["auto"]).extra["mask_mode"] == "auto"
    folder, masks = ham["root"] / "some", ham["root"] / "some_masks"
    folder.mkdir()
    masks.mkdir()
    for i in range(4):
        name = f"ISIC_{i:07d}"
        (folder / f"{name}.jpg").write_bytes((ham["data"] / "images" / f"{name}.jpg").read_bytes())
        mask = ham["data"] / "masks" / f"{name}_segmentation.png"
        (masks / mask.name).write_bytes(mask.read_bytes())
    _, err = score(ham, "given", folder=folder)
    line = [x for x in err.splitlines() if "trained on given masks" in x]
    assert len(line) == 1 and "4 of 4 images" in line[0]
    _, err = score(ham, "given", "--masks", str(masks), folder=folder)
    assert "trained on" not in err
    _, err = score(ham, "auto", "--masks", str(masks), folder=folder)
    assert "trained on automatic masks" in err
    _, err = score(ham, "auto", folder=folder)
    assert "trained on" not in err


def test_features_are_selected_by_declared_names(ham: dict, tmp_path: Path) -> None:
    t = pd.read_parquet(ham["auto_table"])
    assert t.attrs.get("hamfeat")
    t["skin_type"] = ["IV", "II"] * (len(t) // 2)  # text: used to crash training
    t["color_site_code"] = t["dx"].map({c: i for i, c in enumerate(CLASSES)})  # a label leak
    path, model = tmp_path / "extra.parquet", tmp_path / "m.skops"
    t.to_parquet(path)
    p = run("train", "--features", str(path), "-o", str(model), "--model", "lr", env=ham["env"])
    assert p.returncode == 0, p.stderr
    note = [x for x in p.stderr.splitlines() if "look like features" in x]
    assert len(note) == 1 and "skin_type" in note[0] and "color_site_code" in note[0]
    names = load_model(model).feature_names
    assert "skin_type" not in names and "color_site_code" not in names
    assert names == load_model(ham["auto"]).feature_names


@pytest.fixture(scope="module")
def cxr(tmp_path_factory) -> dict:
    """A generated ChestX-ray14 folder, its table (with two prefix-named extra columns) and a
    light model."""
    from test_cxr14 import make_cxr_folder

    root = tmp_path_factory.mktemp("cxrflags")
    data = make_cxr_folder(root / "nih", n_patients=40)
    env = {**os.environ, "HAMFEAT_CACHE_DIR": str(root / "cache")}
    table = root / "c.parquet"
    p = run("features", "--dataset", "cxr14", "--data", str(data), "-o", str(table),
            "--jobs", "1", env=env)
    assert p.returncode == 0, p.stderr
    t = pd.read_parquet(table)
    t["grayhist_site"] = "ward"
    t["graythumb_leak"] = t["finding_labels"].ne("No Finding").astype(float)
    t.to_parquet(table)
    model = root / "c.skops"
    p = run("train", "--dataset", "cxr14", "--features", str(table), "-o", str(model),
            "--model", "lr", env=env)
    return {"root": root, "model": model, "env": env, "train": p}


def test_cxr14_train_ignores_undeclared_columns(cxr: dict) -> None:
    p = cxr["train"]
    assert p.returncode == 0, p.stderr
    assert "grayhist_site" in p.stderr and "look like features" in p.stderr
    loaded = load_model(cxr["model"])
    assert "graythumb_leak" not in loaded.feature_names
    assert "grayhist_site" not in loaded.novelty.columns_
    assert loaded.extra["mask_mode"] == "whole"


def test_cxr14_model_flags_dermoscopy(cxr: dict) -> None:
    folder = cxr["root"] / "new"
    folder.mkdir()
    for i in range(5):
        assert cv2.imwrite(str(folder / f"xray_{i}.png"), synthetic_xray(500 + i))
        write_jpeg(folder / f"derm_{i}.jpg", lesion_image(2000 + i)[0])
    p = run("score", str(folder), "--model", str(cxr["model"]), "--jobs", "1", env=cxr["env"])
    assert p.returncode == 0, p.stderr
    table = pd.read_csv(io.StringIO(p.stdout), keep_default_na=False, na_values=[""])
    table["flags"] = table["flags"].fillna("")
    names = table["path"].map(lambda x: Path(x).stem)
    derm = table[names.str.startswith("derm_")]
    assert len(derm) == 5 and derm["flags"].str.contains("novel").all(), derm
    assert derm["p_abnormal"].between(0, 1).all()  # still scored
    xr = table[names.str.startswith("xray_")]
    assert (xr["flags"] != "").sum() <= 1, xr[["path", "flags"]]
    assert "flagged as unlike the training images" in p.stderr
