"""ChestX-ray14: adapter, grayscale families, whole-image config, multi-label CV, train + score."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from _paths import SHARED_DEFAULT
from hamfeat.cli import main
from hamfeat.datasets.cxr14 import (
    CXR_CONFIG,
    CXR_MODEL_FAMILIES,
    cxr_config,
    label_matrix,
    load_cxr14,
    split_findings,
)
from hamfeat.errors import DatasetError
from hamfeat.evaluation.multilabel import run_cv_multilabel
from hamfeat.evaluation.splits import patient_splits
from hamfeat.extract import extract_table
from hamfeat.features import DEFAULT_FAMILIES, GRAY_FAMILY_NAMES, Context, feature_names
from hamfeat.features.gray import (
    GrayGridFamily,
    GrayHistFamily,
    GrayHogFamily,
    GrayLbpFamily,
    GrayPixFamily,
    GrayProfileFamily,
    GrayThumbFamily,
    stretched_gray,
    zscored_gray,
)
from hamfeat.imageio import decode_image
from hamfeat.models import load_model, make_multilabel_model
from hamfeat.models_multilabel import ABNORMAL, PATCHKM, modellable_labels
from hamfeat.pipeline import FeatureConfig, compute_features, extract_file
from hamfeat.training import train_multilabel

SAMPLE = SHARED_DEFAULT / "nih-cxr14-sample"
LABELS = ("No Finding", "Effusion", "Effusion|Mass", "Cardiomegaly", "No Finding", "Mass")


def synthetic_cxr(seed: int, abnormal: bool, size: int = 64) -> np.ndarray:
    """A chest-X-ray-like grey image: two dark lung fields; 'abnormal' fills the lower left."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    img = np.full((size, size), 200.0)
    for cx in (0.3, 0.7):
        lung = ((xx - cx) / 0.15) ** 2 + ((yy - 0.45) / 0.3) ** 2 <= 1
        img[lung] = 70.0
    if abnormal:  # an effusion-like opacity at the left base
        img[(yy > 0.55) & (yy < 0.8) & (xx > 0.15) & (xx < 0.45)] = 170.0
    img += rng.normal(0, 8, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_png(path: Path, gray: np.ndarray, mode: str = "RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "RGB":
        img = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    elif mode == "RGBA":
        img = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGRA)
    else:
        img = gray
    assert cv2.imwrite(str(path), img)
    return path


def make_cxr_folder(root: Path, n_patients: int = 30, per_patient: int = 2) -> Path:
    """NIH-style folder: images in nested sub-folders, NIH's Data_Entry_2017 table (gzipped)."""
    rows = []
    k = 0
    for pid in range(1, n_patients + 1):
        for f in range(per_patient):
            image_id = f"{pid:08d}_{f:03d}.png"
            labels = LABELS[k % len(LABELS)] if pid % 2 else "No Finding"
            abnormal = labels != "No Finding"
            sub = root / f"images_{1 + pid % 3:03d}" / "images"
            mode = ("RGB", "RGBA", "L")[k % 3]
            write_png(sub / image_id, synthetic_cxr(k, abnormal, 64 + 16 * (k % 2)), mode)
            rows.append(f"{image_id},{labels},{f},{pid},{40 + k % 30},M,PA,64,64,0.1,0.1\n")
            k += 1
    header = (
        "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
        "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]\n"
    )
    with gzip.open(root / "Data_Entry_2017_v2020.csv.gz", "wt") as fh:
        fh.write(header + "".join(rows))
    return root


# --------------------------------------------------------------------------------------------
# adapter
# --------------------------------------------------------------------------------------------


def test_split_findings_and_label_matrix() -> None:
    assert split_findings("No Finding") == []
    assert split_findings("Effusion|Mass") == ["Effusion", "Mass"]
    m = label_matrix(["No Finding", "Mass|Effusion", "Effusion"])
    assert list(m.columns) == ["Effusion", "Mass", ABNORMAL]  # NIH order, then abnormal
    assert m.to_numpy().tolist() == [[0, 0, 0], [1, 1, 1], [1, 0, 1]]


def test_adapter_reads_nih_layout_recursively(tmp_path: Path) -> None:
    root = make_cxr_folder(tmp_path / "nih", n_patients=4)
    write_png(tmp_path / "nih" / "extra" / "99999999_000.png", synthetic_cxr(0, False))
    ds = load_cxr14(root)
    assert len(ds) == 8
    assert list(ds.table.columns[:4]) == ["image_id", "patient_id", "finding_labels", "image_path"]
    assert ds.table["image_id"].iloc[0] == "00000001_000"
    assert set(ds.table["patient_id"]) == {"1", "2", "3", "4"}
    assert all(Path(p).is_file() for p in ds.table["image_path"])
    assert {"age", "sex", "view", "follow_up"} <= set(ds.table.columns)
    # the unlabelled image is reported once, not silently used
    assert any("no label row" in p.message for p in ds.problems)


def test_adapter_reads_sample_labels_csv(tmp_path: Path) -> None:
    root = tmp_path / "sample"
    write_png(root / "images" / "00000001_000.png", synthetic_cxr(1, True))
    write_png(root / "images" / "00000002_000.png", synthetic_cxr(2, False))
    (root / "labels.csv").write_text(
        "image_id,finding_labels,patient_id,follow_up,age,sex,view\n"
        "00000001_000.png,Effusion|Mass,1,0,50,F,AP\n00000002_000.png,No Finding,2,0,60,M,PA\n"
        "00000003_000.png,Mass,3,0,70,M,PA\n"
    )
    ds = load_cxr14(root)
    assert ds.table["finding_labels"].tolist() == ["Effusion|Mass", "No Finding"]
    assert ds.table["age"].tolist() == [50, 60]


def test_adapter_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        load_cxr14(tmp_path / "nope")
    (tmp_path / "a").mkdir()
    with pytest.raises(DatasetError, match="no labels found"):
        load_cxr14(tmp_path / "a")
    (tmp_path / "a" / "labels.csv").write_text("image_id,dx\nx.png,Mass\n")
    with pytest.raises(DatasetError, match="missing column"):
        load_cxr14(tmp_path / "a")


# --------------------------------------------------------------------------------------------
# features
# --------------------------------------------------------------------------------------------


def test_defaults_unchanged_and_gray_registered() -> None:
    assert not set(DEFAULT_FAMILIES) & set(GRAY_FAMILY_NAMES)
    assert GRAY_FAMILY_NAMES == (
        "grayhist", "grayglcm", "graylbp", "graygrid", "graythumb", "grayprof", "grayhog",
        "graypix",
    )
    names = feature_names(GRAY_FAMILY_NAMES)
    assert len(names) == len(set(names))
    assert all(n.split("_")[0] in GRAY_FAMILY_NAMES for n in names)


def test_region_lesion_keeps_existing_config_key() -> None:
    # "lesion" is left out of as_dict, so caches and saved models keep their keys
    assert "region" not in FeatureConfig().as_dict()
    assert FeatureConfig().key() == FeatureConfig(region="lesion").key()
    assert FeatureConfig(region="whole").key() != FeatureConfig().key()
    assert CXR_CONFIG.as_dict()["region"] == "whole"
    assert CXR_CONFIG.color_constancy is False
    with pytest.raises(ValueError, match="region"):
        FeatureConfig(region="lungs")


def test_whole_image_config_uses_every_pixel_and_native_size() -> None:
    gray = synthetic_cxr(3, True)
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    res = compute_features(rgb, None, CXR_CONFIG)
    assert res.mask_source == "whole" and res.warnings == []
    names = CXR_CONFIG.feature_names()
    vals = dict(zip(names, res.values, strict=True))
    assert np.isfinite(res.values).all()
    # at 64 px the image is used as is: the mean is the raw mean of every pixel
    assert vals["grayhist_mean"] == pytest.approx(gray.mean(), abs=1e-9)
    # a given mask is ignored with region="whole"
    mask = np.zeros(gray.shape, bool)
    mask[10:20, 10:20] = True
    assert np.array_equal(compute_features(rgb, mask, CXR_CONFIG).values, res.values)


def test_gray_hist_and_lbp_values() -> None:
    gray = np.zeros((40, 40), np.uint8)
    gray[:, 20:] = 200
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    ctx = Context(rgb, np.ones(gray.shape, bool), window=False)
    fam = GrayHistFamily()
    v = dict(zip(fam.names(), fam.compute(ctx), strict=True))
    assert v["grayhist_mean"] == pytest.approx(100.0)
    assert v["grayhist_std"] == pytest.approx(100.0)
    assert v["grayhist_entropy"] == pytest.approx(1.0)
    assert v["grayhist_bin00"] == pytest.approx(0.5) and v["grayhist_bin12"] == pytest.approx(0.5)
    assert v["grayhist_p50"] == pytest.approx(100.0)
    lbp = GrayLbpFamily().compute(ctx)
    # each radius's histogram sums to 1; a flat region is all "every neighbour >= centre" (u08)
    assert np.allclose(lbp.reshape(4, 10).sum(axis=1), 1.0)
    assert lbp[8] > 0.8


def test_gray_grid_sees_layout_and_asymmetry() -> None:
    normal = np.repeat(synthetic_cxr(5, False)[:, :, None], 3, axis=2)
    sick = np.repeat(synthetic_cxr(5, True)[:, :, None], 3, axis=2)
    fam = GrayGridFamily()

    def grid(rgb):
        ctx = Context(rgb, np.ones(rgb.shape[:2], bool), window=False)
        return dict(zip(fam.names(), fam.compute(ctx), strict=True))

    a, b = grid(normal), grid(sick)
    assert abs(a["graygrid_r2_lr_mean"]) < 0.2  # symmetric lungs
    assert b["graygrid_r2_lr_mean"] > 0.5  # opacity in the left lower field
    # z-scored: invariant to exposure (a linear change of grey levels)
    brighter = np.clip(normal.astype(int) // 2 + 60, 0, 255).astype(np.uint8)
    c = grid(brighter)
    assert c["graygrid_r1c1_mean"] == pytest.approx(a["graygrid_r1c1_mean"], abs=0.05)


def _ctx(gray: np.ndarray, mask: np.ndarray | None = None) -> Context:
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    return Context(rgb, np.ones(gray.shape, bool) if mask is None else mask, window=False)


def _sample_grays(n: int) -> list[np.ndarray]:
    """The first ``n`` images of the real sample as grey arrays (skip when it is absent)."""
    if not (SAMPLE / "labels.csv").is_file():
        pytest.skip(f"NIH ChestX-ray14 sample not found at {SAMPLE}")
    paths = sorted((SAMPLE / "images").glob("*.png"))[:n]
    return [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in paths]


def _generated_grays() -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    return [synthetic_cxr(s, bool(s % 2)) for s in range(6)] + [
        rng.integers(0, 256, (64, 64), dtype=np.uint8)
    ]


def _hog_reference(ctx: Context) -> np.ndarray:
    from skimage.feature import hog

    return hog(stretched_gray(ctx).astype(np.float64), orientations=9, pixels_per_cell=(16, 16),
               cells_per_block=(1, 1), block_norm="L1", feature_vector=True)


def _check_thumb_hog_prof(gray: np.ndarray) -> None:
    ctx = _ctx(gray)
    z = zscored_gray(ctx)
    # thumbnail = area-averaging resize of the z-scored image (exact up to rounding)
    thumb = GrayThumbFamily().compute(ctx)
    ref = cv2.resize(z, (8, 8), interpolation=cv2.INTER_AREA).ravel()
    np.testing.assert_allclose(thumb, ref, rtol=0, atol=1e-12)
    # HOG = skimage's hog with 1x1 blocks and L1 normalisation; skimage's Cython cell histogram
    # accumulates in single precision (differences up to ~1e-7 seen), hence atol 1e-6
    np.testing.assert_allclose(GrayHogFamily().compute(ctx), _hog_reference(ctx), rtol=0,
                               atol=1e-6)
    # profiles = row/column means of the z-scored image over 4-pixel bands
    prof = dict(zip(GrayProfileFamily().names(), GrayProfileFamily().compute(ctx), strict=True))
    rows = z.mean(axis=1).reshape(16, 4).mean(axis=1)
    cols = z.mean(axis=0).reshape(16, 4).mean(axis=1)
    np.testing.assert_allclose([prof[f"grayprof_row{k:02d}"] for k in range(16)], rows,
                               atol=1e-12)
    np.testing.assert_allclose([prof[f"grayprof_col{k:02d}"] for k in range(16)], cols,
                               atol=1e-12)
    assert prof["grayprof_lr_asym"] == pytest.approx(np.abs(cols - cols[::-1]).mean(), abs=1e-12)
    assert prof["grayprof_ud_asym"] == pytest.approx(rows[:8].mean() - rows[8:].mean(),
                                                     abs=1e-12)


def test_thumb_hog_prof_match_references_on_generated_images() -> None:
    for gray in _generated_grays():
        _check_thumb_hog_prof(gray)


def test_thumb_hog_prof_match_references_on_real_sample() -> None:
    for gray in _sample_grays(40):
        _check_thumb_hog_prof(gray)


def test_thumb_prof_hog_properties() -> None:
    # a vertical edge: every gradient is horizontal (0 degrees, bin 0) in the cells it crosses
    gray = np.zeros((64, 64), np.uint8)
    gray[:, 24:] = 200
    hog = dict(zip(GrayHogFamily().names(), GrayHogFamily().compute(_ctx(gray)), strict=True))
    assert hog["grayhog_g4_r2c1_o0"] == pytest.approx(1.0, abs=1e-6)
    assert hog["grayhog_g4_r2c0_o0"] == 0.0  # no edge in the first column of cells
    assert len(GrayHogFamily().names()) == 4 * 4 * 9
    # left-right asymmetry: zero for a mirror-symmetric image, large for a one-sided opacity
    prof = GrayProfileFamily()
    sym = synthetic_cxr(5, False)
    sym = np.concatenate([sym[:, :32], sym[:, :32][:, ::-1]], axis=1)
    a = dict(zip(prof.names(), prof.compute(_ctx(sym)), strict=True))
    sick = sym.copy()
    sick[36:51, 10:29] = 170  # an effusion-like opacity at the left base
    b = dict(zip(prof.names(), prof.compute(_ctx(sick)), strict=True))
    assert a["grayprof_lr_asym"] == pytest.approx(0.0, abs=1e-12)
    assert b["grayprof_lr_asym"] > 0.1
    assert b["grayprof_ud_asym"] < a["grayprof_ud_asym"]  # the opacity brightens the base
    # thumbnail and profiles are invariant to a linear change of exposure
    g = synthetic_cxr(6, True)
    brighter = (g.astype(int) // 2 + 60).astype(np.uint8)
    for fam in (GrayThumbFamily(), GrayProfileFamily()):
        np.testing.assert_allclose(fam.compute(_ctx(brighter)), fam.compute(_ctx(g)), atol=0.05)
    # a partial region: cells without a region pixel are NaN, the others finite
    mask = np.zeros((64, 64), bool)
    mask[:, :32] = True
    ctx = _ctx(g, mask)
    for fam in (GrayThumbFamily(), GrayProfileFamily(), GrayHogFamily()):
        v = fam.compute(ctx)
        assert v.shape == (len(fam.names()),) and np.isfinite(v).all()
    mask[:, 16:] = False
    mask[:, 48:] = True  # a region in two parts, columns 0-15 and 48-63: cells 2-5 are empty
    thumb = GrayThumbFamily().compute(_ctx(g, mask)).reshape(8, 8)
    assert np.isnan(thumb[:, 2:6]).all() and np.isfinite(thumb[:, [0, 1, 6, 7]]).all()
    # deterministic
    assert np.array_equal(GrayHogFamily().compute(_ctx(g)), GrayHogFamily().compute(_ctx(g)))


def test_graypix_is_the_zscored_image_on_a_fixed_grid() -> None:
    fam = GrayPixFamily()
    names = fam.names()
    assert len(names) == 64 * 64 and names[0] == "graypix_g64_r00c00"
    assert names[64 * 3 + 5] == "graypix_g64_r03c05"
    # at 64 x 64 the values are the z-scored pixels, unchanged (bit for bit)
    for gray in _generated_grays():
        ctx = _ctx(gray)
        assert np.array_equal(fam.compute(ctx), zscored_gray(ctx).ravel())
    # a larger image is area-averaged onto the grid (reference: cv2.resize, INTER_AREA)
    big = synthetic_cxr(3, True, 128)
    ctx = _ctx(big)
    ref = cv2.resize(zscored_gray(ctx), (64, 64), interpolation=cv2.INTER_AREA).ravel()
    np.testing.assert_allclose(fam.compute(ctx), ref, rtol=0, atol=1e-12)
    # a partial region: only region pixels are averaged; grid pixels without any are NaN
    mask = np.zeros((128, 128), bool)
    mask[:, :64] = True
    mask[:, 64:66] = True  # two columns more, so the bounding box is 128 x 66
    v = fam.compute(_ctx(big, mask)).reshape(64, 64)
    assert np.isfinite(v).all()
    mask[:, 64:66] = False
    mask[0, 100] = True  # a lone pixel far right: the columns between it are empty
    v = fam.compute(_ctx(big, mask)).reshape(64, 64)
    assert np.isnan(v).any() and np.isfinite(v[:, 0]).all()
    assert np.isnan(fam.compute(_ctx(big, np.zeros((128, 128), bool)))).all()


def test_graypix_on_real_sample() -> None:
    fam = GrayPixFamily()
    for gray in _sample_grays(20):
        v = fam.compute(_ctx(gray))
        # reference: plain NumPy z-score of the 64 x 64 file (population std)
        ref = (gray - gray.mean()) / gray.std()
        np.testing.assert_allclose(v, ref.ravel(), rtol=0, atol=1e-9)


def test_gray_features_same_for_gray_rgb_and_rgba_files(tmp_path: Path) -> None:
    g = synthetic_cxr(7, True)
    vals = [
        extract_file(write_png(tmp_path / f"{m}.png", g, m), None, CXR_CONFIG).values
        for m in ("L", "RGB", "RGBA")
    ]
    assert np.array_equal(vals[0], vals[1]) and np.array_equal(vals[0], vals[2])


def test_long_side_rescales_large_images(tmp_path: Path) -> None:
    big = cv2.resize(synthetic_cxr(8, False), (256, 256), interpolation=cv2.INTER_LINEAR)
    res = extract_file(write_png(tmp_path / "big.png", big), None, CXR_CONFIG)
    small = cv2.resize(big, (64, 64), interpolation=cv2.INTER_AREA)
    direct = compute_features(np.repeat(small[:, :, None], 3, axis=2), None, CXR_CONFIG)
    assert np.array_equal(res.values, direct.values)
    assert cxr_config(128).long_side == 128


# --------------------------------------------------------------------------------------------
# multi-label CV, train, score (generated data)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cxr_table(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    root = make_cxr_folder(tmp_path_factory.mktemp("cxr") / "nih", n_patients=30)
    ds = load_cxr14(root)
    res = extract_table(ds.table, CXR_CONFIG, jobs=1, cache_dir=False, progress=False)
    assert not [p for p in res.problems if p.severity == "error"]
    table = res.table
    table.attrs["hamfeat"] = {"config": CXR_CONFIG.as_dict(), "dataset": "cxr14"}
    path = root.parent / "features.parquet"
    table.to_parquet(path)
    return path, table


def test_patient_splits_never_leak(cxr_table) -> None:
    _, table = cxr_table
    y = label_matrix(table["finding_labels"])[ABNORMAL].to_numpy()
    splits = patient_splits(y, table["patient_id"], seed=0)
    assert len(splits) == 5
    seen = np.concatenate([s.test for s in splits])
    assert sorted(seen.tolist()) == list(range(len(table)))
    for s in splits:
        tr = set(table["patient_id"].iloc[s.train])
        assert not tr & set(table["patient_id"].iloc[s.test])
    again = patient_splits(y, table["patient_id"], seed=0)
    assert all(np.array_equal(a.test, b.test) for a, b in zip(splits, again, strict=True))


def test_modellable_labels_skip_rare(cxr_table) -> None:
    _, table = cxr_table
    labels, skipped = modellable_labels(table, min_images=8)
    counts = label_matrix(table["finding_labels"]).sum()
    assert list(labels.columns)[-1] == ABNORMAL
    for f, n in counts.items():
        if f != ABNORMAL:
            assert (f in labels.columns) == (n >= 8)
            assert (f in skipped) == (n < 8)


def test_run_cv_multilabel_report(cxr_table, tmp_path: Path) -> None:
    path, _ = cxr_table
    r = run_cv_multilabel(path, tmp_path, models=("lr", "knn"), min_images=8, n_boot=20)
    assert r["cv"]["patient_leaks"] == 0
    assert r["labels"][-1] == ABNORMAL
    assert set(r["skipped_labels"]) == {"Cardiomegaly"}  # 5 images < 8
    # the generated opacity is easy: abnormal is well separated
    assert r["results"]["lr"]["abnormal_auc"] > 0.9
    assert r["target"]["met"] == (r["target"]["value"] >= 0.70)
    md = (tmp_path / "cv_report.md").read_text()
    assert "Not modelled (fewer than 8 images): Cardiomegaly (5)" in md
    assert "patient_id" in md
    assert json.loads((tmp_path / "cv_report.json").read_text())["best_model"] in ("lr", "knn")
    # the development comparison (other seeds) and the metadata rows are reported apart
    dev = {v["name"].split(" (")[0]: v for v in r["development"]}
    assert set(dev) == {"previous families, previous lr C=0.03", "previous families",
                        "committed families", "committed families without grayhog"}
    assert set(dev["committed families"]["per_seed"]) == {"0", "1", "2", "3"}
    assert dev["committed families"]["report_seed"]["ensemble"] > 0.9
    assert dev["committed families"]["families"] == r["families"]
    assert r["families"] == list(CXR_MODEL_FAMILIES)
    assert "graypix" not in r["families"]  # pixels are for the learned model only
    assert "## How the configuration was chosen" in md and "seeds 1, 2, 3" in md
    meta = r["metadata"]
    assert meta["columns"] == ["age", "male", "view_ap", "follow_up"]
    assert meta["view_ap"] == 0.5  # every generated image is PA: a constant score
    assert meta["image_within_view"]["PA"]["images"] == 60
    assert "## Metadata (extra row, not image features)" in md


def test_run_cv_multilabel_reports_patchkm(cxr_table, tmp_path: Path) -> None:
    path, _ = cxr_table
    r = run_cv_multilabel(path, tmp_path, models=(PATCHKM,), min_images=8, n_boot=0,
                          ablations=False, dev_seeds=(1,))
    assert r["results"][PATCHKM]["abnormal_auc"] > 0.9 and r["best_model"] == PATCHKM
    pk = next(v for v in r["development"] if v["name"] == PATCHKM)
    assert pk["families"] == ["graypix"] and set(pk["per_seed"]) == {"0", "1"}
    assert pk["report_seed"][PATCHKM] == pytest.approx(r["results"][PATCHKM]["abnormal_auc"])
    assert 0.5 < pk["mean_dev"]["rank_mean"] <= 1
    md = (tmp_path / "cv_report.md").read_text()
    assert "### The learned patch model (`patchkm`)" in md and "| 0 (reported) |" in md


def test_multilabel_model_probabilities(cxr_table) -> None:
    _, table = cxr_table
    labels, _ = modellable_labels(table, min_images=8)
    model = make_multilabel_model("ensemble").fit(table, labels.to_numpy())
    p = model.predict_proba(table)
    assert p.shape == (len(table), labels.shape[1])
    assert ((p >= 0) & (p <= 1)).all()


def test_patchkm_model_learns_the_generated_opacity(cxr_table) -> None:
    _, table = cxr_table
    labels, _ = modellable_labels(table, min_images=8)
    Y = labels.to_numpy()
    y = labels[ABNORMAL].to_numpy()
    p = np.full(len(y), np.nan)
    for s in patient_splits(y, table["patient_id"], seed=0):
        model = make_multilabel_model(PATCHKM, random_state=0)
        model.fit(table.iloc[s.train], Y[s.train])
        proba = model.predict_proba(table.iloc[s.test])
        assert proba.shape == (len(s.test), Y.shape[1])
        p[s.test] = proba[:, -1]
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y, p) > 0.9  # out of fold, patients grouped
    # it reads the pixel family only, and one encoder serves every label
    model = make_multilabel_model(PATCHKM).fit(table, Y)
    assert model.named_steps["select"].families == ("graypix",)
    assert all(c.startswith("graypix_") for c in model.named_steps["select"].columns_)
    assert len(model.named_steps["clf"].estimators_) == Y.shape[1]
    again = make_multilabel_model(PATCHKM).fit(table, Y)
    assert np.array_equal(model.predict_proba(table), again.predict_proba(table))


@pytest.mark.parametrize(("min_images", "name"), [(8, "ensemble"), (25, "lr"), (8, PATCHKM)])
def test_cli_train_and_score_cxr14(cxr_table, tmp_path: Path, capsys, min_images, name) -> None:
    path, _ = cxr_table
    model = tmp_path / "m.skops"
    if min_images == 25:  # the CLI default: only "abnormal" is modellable here
        assert main(["train", "--dataset", "cxr14", "--features", str(path), "-o", str(model),
                     "--model", name]) == 0
    else:
        train_multilabel(path, model, model=name, min_images=min_images)
    loaded = load_model(model)
    # the model file names the columns the model reads
    pix = [n for n in loaded.feature_names if n.startswith("graypix_")]
    assert bool(pix) == (name == PATCHKM) and (len(pix) == len(loaded.feature_names)) == bool(pix)
    assert loaded.extra["task"] == "multilabel" and loaded.classes[-1] == ABNORMAL
    assert len(loaded.classes) == (3 if min_images == 8 else 1)
    folder = tmp_path / "new"
    for i in range(3):
        write_png(folder / f"img{i}.png", synthetic_cxr(100 + i, bool(i % 2), 96))
    (folder / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "scores.csv"
    rc = main(["score", str(folder), "--model", str(model), "-o", str(out), "--jobs", "1"])
    assert rc == 1  # one input failed, the rest scored
    scores = pd.read_csv(out)
    assert [f"p_{c}" for c in loaded.classes] == [c for c in scores if c.startswith("p_")]
    ok = scores[scores["error"].isna()]
    assert len(ok) == 3 and ok["p_abnormal"].between(0, 1).all()
    assert scores.loc[scores["image_id"] == "broken", "error"].notna().all()
    # a HAM10000 request with a cxr14 model is refused in one line
    rc = main(["score", str(folder), "--model", str(model), "--dataset", "ham10000"])
    assert rc == 3
    assert "model is for cxr14" in capsys.readouterr().err
    rc = main(["score", str(folder), "--model", str(model), "--format", "isic2018"])
    assert rc == 3
    assert "needs a HAM10000 model" in capsys.readouterr().err


def test_cli_train_cxr14_defaults_to_patchkm_and_needs_pixels(cxr_table, tmp_path: Path,
                                                            capsys) -> None:
    path, table = cxr_table
    model = tmp_path / "m.skops"
    assert main(["train", "--dataset", "cxr14", "--features", str(path), "-o", str(model)]) == 0
    assert load_model(model).extra["model"] == PATCHKM
    assert main(["train", "--dataset", "cxr14", "--features", str(path), "-o", str(model),
                 "--model", "nosuch"]) != 0
    err = capsys.readouterr().err
    assert "unknown 'nosuch'" in err and "patchkm" in err
    # a table from before the pixel family: a one-line error naming the file and the fix
    old = tmp_path / "old.parquet"
    table.drop(columns=[c for c in table.columns if c.startswith("graypix_")]).to_parquet(old)
    rc = main(["train", "--dataset", "cxr14", "--features", str(old), "-o", str(model)])
    assert rc == 3
    err = capsys.readouterr().err
    assert "old.parquet: model patchkm needs the graypix columns" in err
    assert main(["train", "--dataset", "cxr14", "--features", str(old), "-o", str(model),
                 "--model", "lr"]) == 0


def test_cli_cv_cxr14(cxr_table, tmp_path: Path) -> None:
    path, _ = cxr_table
    rc = main(["cv", "--dataset", "cxr14", "--features", str(path), "--models", "knn",
               "--report-dir", str(tmp_path / "rep")])
    assert rc == 0
    r = json.loads((tmp_path / "rep" / "cv_report.json").read_text())
    assert r["models"] == ["knn"] and r["command"].startswith("hamfeat cv --dataset cxr14")
    assert r["cv"]["grouped_by"] == "patient_id" and r["cv"]["n_splits"] == 5


def test_cli_cv_cxr14_refuses_a_ham_table(tmp_path: Path) -> None:
    from hamfeat.synthetic import make_synthetic_table

    path = tmp_path / "ham.parquet"
    make_synthetic_table(30).to_parquet(path)
    rc = main(["cv", "--dataset", "cxr14", "--features", str(path), "--report-dir",
               str(tmp_path / "r")])
    assert rc == 3


def test_cli_features_cxr14(tmp_path: Path) -> None:
    root = make_cxr_folder(tmp_path / "nih", n_patients=3)
    out = tmp_path / "f.parquet"
    rc = main(["features", "--dataset", "cxr14", "--data", str(root), "-o", str(out),
               "--jobs", "1", "--no-cache"])
    assert rc == 0
    t = pd.read_parquet(out)
    assert len(t) == 6 and set(t["mask_source"]) == {"whole"}
    assert [c for c in t.columns if c.split("_")[0] in GRAY_FAMILY_NAMES] == (
        CXR_CONFIG.feature_names()
    )
    assert not any(c.split("_")[0] in DEFAULT_FAMILIES for c in t.columns)


# --------------------------------------------------------------------------------------------
# the real sample
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample() -> Path:
    if not (SAMPLE / "labels.csv").is_file():
        pytest.skip(f"NIH ChestX-ray14 sample not found at {SAMPLE}")
    return SAMPLE


def test_real_sample_adapter(sample: Path) -> None:
    ds = load_cxr14(sample)
    assert len(ds) == 1000 and ds.table["patient_id"].nunique() == 264
    assert not ds.errors
    labels, skipped = modellable_labels(ds.table)
    assert skipped == {"Pneumonia": 11, "Hernia": 9}
    assert labels[ABNORMAL].sum() == 501


def test_real_sample_features(sample: Path) -> None:
    ds = load_cxr14(sample)
    rgba = [p for p in ds.table["image_path"] if decode_image(Path(p).read_bytes()).shape[2] == 3]
    assert len(rgba) == 1000  # RGBA files decode to RGB
    res = extract_table(ds.table.iloc[:40], CXR_CONFIG, jobs=1, cache_dir=False, progress=False)
    assert len(res.table) == 40 and not res.problems
    X = res.table[CXR_CONFIG.feature_names()].to_numpy()
    assert np.isfinite(X).all()


def test_cli_data_cxr14(tmp_path: Path, capsys) -> None:
    root = make_cxr_folder(tmp_path / "nih", n_patients=3)
    assert main(["data", "--dataset", "cxr14", "--data", str(root)]) == 0
    out = capsys.readouterr().out
    assert "6 images, 3 patients, 2 abnormal (any finding), 4 No Finding" in out
    assert "Effusion 1, Mass 1" in out and "view: PA 6" in out
    # an image without a label row: a warning, exit 0; --strict makes it fatal (3)
    write_png(root / "extra" / "99999999_000.png", synthetic_cxr(0, False))
    assert main(["data", "--dataset", "cxr14", "--data", str(root)]) == 0
    assert "no label row" in capsys.readouterr().err
    assert main(["data", "--dataset", "cxr14", "--data", str(root), "--strict"]) == 3
    assert main(["data", "--dataset", "cxr14", "--data", str(tmp_path / "missing")]) == 3
    assert "data folder not found" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, flags",
    [
        (["features", "-o", "f.parquet", "--hair-removal"], "--hair-removal"),
        (["features", "-o", "f.parquet", "--masks", "auto", "--color-constancy"],
         "--masks, --color-constancy"),
        (["train", "--features", "f.parquet", "-o", "m.skops", "--families", "grayhist"],
         "--families"),
        (["cv", "--features", "f.parquet", "--auto-features", "a.parquet"], "--auto-features"),
        (["score", "dir", "--masks", "masks"], "--masks"),
    ],
)
def test_cli_cxr14_refuses_dermoscopy_options(argv, flags, tmp_path: Path, capsys,
                                               monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--dataset", "cxr14"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"error: {flags} only appl" in err[0] and "cxr14" in err[0]
    assert not (tmp_path / "f.parquet").exists() and not (tmp_path / "m.skops").exists()


def test_cli_cxr14_cv_refuses_several_seeds(tmp_path: Path, capsys, monkeypatch) -> None:
    """Several ``--seeds`` would silently use the first one: a usage error instead."""
    monkeypatch.chdir(tmp_path)
    argv = ["cv", "--dataset", "cxr14", "--features", "f.parquet", "--seeds", "0,1"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "takes one --seeds value" in err[0] and "0,1" in err[0]
    assert not (tmp_path / "benchmarks").exists()
