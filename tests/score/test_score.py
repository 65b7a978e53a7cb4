"""``hamfeat score`` end to end: the real CLI in a subprocess, real images mixed with bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import write_jpeg
from hamfeat.datasets.ham10000 import CLASSES

N_PER_CLASS = 4  # a tiny real training set: enough to exercise the machinery, not to be good


def run(*args: str, env: dict | None = None, stdin=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hamfeat", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        stdin=stdin,
    )


def score(trained: dict, messy: dict, *extra: str, code: int = 1) -> subprocess.CompletedProcess:
    """Run `hamfeat [-v] score` on the messy folder with the test model; check its exit."""
    pre = [a for a in extra if a == "-v"]
    rest = [a for a in extra if a != "-v"]
    p = run(
        *pre,
        "score",
        str(messy["dir"]),
        "--model",
        str(trained["model"]),
        *rest,
        env=trained["env"],
    )
    assert p.returncode == code and "Traceback" not in p.stderr, p.stderr
    return p


@pytest.fixture(scope="module")
def trained(ham_dir: Path, tmp_path_factory) -> dict:
    """A small real data set (linked, not copied), its features and a KNN model."""
    root = tmp_path_factory.mktemp("score")
    meta = pd.read_csv(ham_dir / "HAM10000_metadata.csv")
    pick = meta.groupby("dx").head(N_PER_CLASS)
    data = root / "data"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    for image_id in pick["image_id"]:
        (data / "images" / f"{image_id}.jpg").symlink_to(ham_dir / "images" / f"{image_id}.jpg")
        name = f"{image_id}_segmentation.png"
        (data / "masks" / name).symlink_to(ham_dir / "masks" / name)
    pick.to_csv(data / "HAM10000_metadata.csv", index=False)
    env = {**os.environ, "HAMFEAT_CACHE_DIR": str(root / "cache")}
    feats, model = root / "f.parquet", root / "model.skops"
    p = run(
        "features", "--data", str(data), "-o", str(feats), "--masks", "auto", "--jobs", "1", env=env
    )
    assert p.returncode == 0, p.stderr
    p = run("train", "--features", str(feats), "-o", str(model), "--model", "knn", env=env)
    assert p.returncode == 0, p.stderr
    return {"root": root, "model": model, "env": env, "pick": pick, "ham": ham_dir}


@pytest.fixture(scope="module")
def messy(trained: dict) -> dict:
    """A folder of real images with every kind of bad input beside them."""
    ham = trained["ham"]
    d = trained["root"] / "messy é folder"
    d.mkdir()
    real = ["ISIC_0024306", "ISIC_0024307", "ISIC_0024308"]
    for i in real:
        (d / f"{i}.jpg").write_bytes((ham / "images" / f"{i}.jpg").read_bytes())
    rgb = np.asarray(Image.open(ham / "images" / "ISIC_0024309.jpg").convert("RGB"))
    bad = {}
    (d / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    bad["corrupt.jpg"] = "corrupt image header"
    data = (ham / "images" / "ISIC_0024310.jpg").read_bytes()
    (d / "truncated.jpg").write_bytes(data[: len(data) // 2])
    bad["truncated.jpg"] = "truncated JPEG"
    (d / "zero.jpg").write_bytes(b"")
    bad["zero.jpg"] = "empty file"
    (d / "tiny.png").write_bytes(_png(np.zeros((8, 8, 3), np.uint8)))
    bad["tiny.png"] = "too small"
    (d / "broken_link.jpg").symlink_to(d / "does_not_exist.jpg")
    bad["broken_link.jpg"] = "broken symbolic link"
    (d / "notes.txt").write_text("not an image")
    # files that must be scored fine
    Image.fromarray(rgb).convert("L").save(d / "grayscale.jpg", quality=90)
    Image.fromarray(rgb).convert("CMYK").save(d / "cmyk.jpg", quality=90)
    import cv2

    cv2.imwrite(str(d / "sixteen_bit.png"), rgb[:, :, ::-1].astype(np.uint16) * 257)
    write_jpeg(d / "big 1024x768 ä.jpg", cv2.resize(rgb, (1024, 768)), quality=60)
    good = [
        *(f"{i}.jpg" for i in real),
        "grayscale.jpg",
        "cmyk.jpg",
        "sixteen_bit.png",
        "big 1024x768 ä.jpg",
    ]
    return {"dir": d, "bad": bad, "good": good}


def _png(rgb: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def test_score_messy_folder(trained: dict, messy: dict) -> None:
    out = trained["root"] / "scores.csv"
    p = score(trained, messy, "-o", str(out), "--jobs", "2")  # exit 1: some files failed
    n_good, n_all = len(messy["good"]), len(messy["good"]) + len(messy["bad"])
    assert f"{n_good} of {n_all} images scored -> {out}" in p.stderr
    assert f"model {trained['model']}" in p.stderr
    table = pd.read_csv(out)
    names = {Path(x).name for x in table["path"]}
    assert names == set(messy["good"]) | set(messy["bad"])  # one row per image file
    assert "notes.txt" not in names  # not an image file: skipped (a warning with -v)
    by_name = table.set_index(table["path"].map(lambda x: Path(x).name))
    for name, reason in messy["bad"].items():
        assert reason in by_name.at[name, "error"], name
        assert name in p.stderr
        assert pd.isna(by_name.at[name, "prediction"])
    ok = by_name.loc[messy["good"]]
    assert ok["error"].isna().all()
    probs = ok[[f"p_{c}" for c in CLASSES]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)  # 6 significant digits
    assert set(ok["prediction"]) <= set(CLASSES)
    np.testing.assert_allclose(
        ok["p_malignant"], ok[["p_mel", "p_bcc", "p_akiec"]].sum(axis=1), rtol=1e-5, atol=1e-6
    )
    assert (ok["mask_source"] == "auto").all()
    assert list(table.columns[:3]) == ["path", "image_id", "prediction"]


def test_csv_matches_model_predict_proba(trained: dict, messy: dict) -> None:
    """The CLI's probabilities equal the saved model's predict_proba on the same images."""
    from hamfeat.models import load_model
    from hamfeat.pipeline import FeatureExtractor

    model = load_model(trained["model"])
    p = run("score", str(messy["dir"]), "--model", str(trained["model"]), "--jobs", "1")
    table = pd.read_csv(__import__("io").StringIO(p.stdout))  # stdout when no -o
    ok = table[table["error"].isna()].reset_index(drop=True)
    cfg = model.config
    ext = FeatureExtractor(
        families=cfg["families"],
        color_constancy=cfg["color_constancy"],
        hair_removal=cfg["hair_removal"],
        long_side=cfg["long_side"],
    )
    X = pd.DataFrame(ext.fit_transform(list(ok["path"])), columns=ext.get_feature_names_out())
    expected = model.predict_proba(X).to_numpy()
    np.testing.assert_allclose(
        ok[[f"p_{c}" for c in model.classes]].to_numpy(), expected, rtol=5e-6, atol=1e-12
    )
    np.testing.assert_array_equal(ok["prediction"].to_numpy(), model.predict(X))


def test_isic2018_format_and_lesion_map(trained: dict, messy: dict) -> None:
    out = trained["root"] / "sub.csv"
    p = score(trained, messy, "-o", str(out), "--format", "isic2018")
    sub = pd.read_csv(out)
    assert list(sub.columns) == ["image", "MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC"]
    assert len(sub) == len(messy["good"])
    np.testing.assert_allclose(sub.iloc[:, 1:].sum(axis=1), 1.0, atol=1e-5)
    lmap = trained["root"] / "lesions.csv"
    lmap.write_text("image_id,lesion_id\nISIC_0024306,L1\nISIC_0024307,L1\nISIC_0024308,L2\n")
    p = score(trained, messy, "--lesion-map", str(lmap))
    table = pd.read_csv(__import__("io").StringIO(p.stdout))
    les = table[table["level"] == "lesion"].set_index("lesion_id")
    assert sorted(les.index) == ["L1", "L2"]
    img = table[table["level"] == "image"].set_index("image_id")
    np.testing.assert_allclose(
        les.at["L1", "p_mel"],
        img.loc[["ISIC_0024306", "ISIC_0024307"], "p_mel"].mean(),
        rtol=1e-5,
    )


def test_usage_and_fatal_errors(trained: dict, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    p = run("score", str(empty), "--model", str(trained["model"]), env=trained["env"])
    assert p.returncode == 3 and "no .jpg/.jpeg/.png image found" in p.stderr
    not_model = tmp_path / "model.skops"
    not_model.write_text("hello")
    p = run("score", str(empty), "--model", str(not_model), env=trained["env"])
    assert p.returncode == 3 and str(not_model) in p.stderr
    p = run("score", str(empty), "--model", str(tmp_path / "none.skops"), env=trained["env"])
    assert p.returncode == 3 and "model file not found" in p.stderr
    p = run("score", env=trained["env"])
    assert p.returncode == 2  # argparse usage error


def test_masks_folder_used_where_present(trained: dict, messy: dict, tmp_path: Path) -> None:
    from conftest import write_mask

    ham = trained["ham"]
    masks = tmp_path / "masks"
    masks.mkdir()
    good = "ISIC_0024306_segmentation.png"
    (masks / good).write_bytes((ham / "masks" / good).read_bytes())
    write_mask(masks / "ISIC_0024307_segmentation.png", np.ones((10, 12), bool))  # wrong size
    p = score(trained, messy, "-v", "--masks", str(masks))
    table = pd.read_csv(__import__("io").StringIO(p.stdout)).set_index("image_id")
    assert table.at["ISIC_0024306", "mask_source"] == "given"
    assert table.at["ISIC_0024307", "mask_source"] == "auto"  # rejected mask: falls back
    assert table.at["ISIC_0024308", "mask_source"] == "auto"  # no mask
    assert "ISIC_0024307_segmentation.png: mask is 12x10 but its image is 600x450" in p.stderr
    assert "notes.txt: not a .jpg/.jpeg/.png file; skipped" in p.stderr  # -v lists warnings


@pytest.mark.slow
def test_official_scorer_accepts_cli_output(trained: dict, messy: dict) -> None:
    """`isic-challenge-scoring` scores the CLI's --format isic2018 file unchanged."""
    from test_isic_scorer import scorer

    out = trained["root"] / "submission.csv"
    score(trained, messy, "-o", str(out), "--format", "isic2018")
    sub = pd.read_csv(out)
    cols = ["MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC"]
    truth = pd.DataFrame({"image": sub["image"]})
    for i, col in enumerate(cols):  # any valid one-hot truth will do
        truth[col] = [1.0 if k % len(cols) == i else 0.0 for k in range(len(sub))]
    truth_path = trained["root"] / "truth.csv"
    truth.to_csv(truth_path, index=False)
    proc = subprocess.run(
        [str(scorer()), "classification", str(truth_path), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "balanced_accuracy" in proc.stdout


def test_stdout_closed_early_is_quiet(trained: dict, messy: dict) -> None:
    """`hamfeat score DIR | head -2`: no traceback when the reader stops early."""
    cmd = [
        sys.executable,
        "-m",
        "hamfeat",
        "score",
        str(messy["dir"]),
        "--model",
        str(trained["model"]),
        "--jobs",
        "1",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=trained["env"])
    proc.stdout.close()  # the reader goes away before anything is written
    err = proc.stderr.read()
    proc.wait(timeout=300)
    assert b"Traceback" not in err and proc.returncode == 141, err


def test_same_image_id_twice_is_warned_and_kept_once_in_isic2018(
    trained: dict, tmp_path: Path
) -> None:
    ham = trained["ham"]
    d = tmp_path / "dups"
    (d / "sub").mkdir(parents=True)
    for name in ("ISIC_0024306", "ISIC_0024307"):
        (d / f"{name}.jpg").write_bytes((ham / "images" / f"{name}.jpg").read_bytes())
    # the same id again, in a sub-folder and as a PNG
    (d / "sub" / "ISIC_0024306.jpg").write_bytes((ham / "images" / "ISIC_0024308.jpg").read_bytes())
    args = ("score", str(d), "--model", str(trained["model"]), "--recursive")
    p = run(*args, env=trained["env"])
    assert p.returncode == 0, p.stderr
    assert "1 warning(s), -v lists them" in p.stderr
    p = run("-v", *args, env=trained["env"])
    assert p.returncode == 0, p.stderr
    table = pd.read_csv(__import__("io").StringIO(p.stdout))
    assert len(table) == 3 and table["error"].isna().all()  # every file scored
    warned = [ln for ln in p.stderr.splitlines() if "same image_id 'ISIC_0024306'" in ln]
    assert len(warned) == 1 and str(d / "sub" / "ISIC_0024306.jpg") in warned[0], p.stderr
    out = tmp_path / "sub.csv"
    p = run(*args, "--format", "isic2018", "-o", str(out), env=trained["env"])
    assert p.returncode == 0, p.stderr
    sub = pd.read_csv(out)
    assert sorted(sub["image"]) == ["ISIC_0024306", "ISIC_0024307"]
    assert "1 repeated image_id(s) left out of the isic2018 file" in p.stderr
    # the row kept is the first file's: the same as scoring the top-level files alone
    alone = tmp_path / "alone.csv"
    p = run(*args[:-1], "--format", "isic2018", "-o", str(alone), env=trained["env"])
    assert p.returncode == 0, p.stderr
    pd.testing.assert_frame_equal(
        sub.set_index("image").sort_index(), pd.read_csv(alone).set_index("image").sort_index()
    )
    # ... which matters: the two files are different images with different scores
    twins = table[table["image_id"] == "ISIC_0024306"][[f"p_{c}" for c in CLASSES]].to_numpy()
    assert np.abs(twins[0] - twins[1]).max() > 0
