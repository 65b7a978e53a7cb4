"""The novelty detector and the per-image flags (hamfeat/novelty.py), on generated data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from conftest import write_jpeg
from hamfeat.models import feature_columns, load_model, save_model
from hamfeat.novelty import (
    FLAGS,
    MAX_ASPECT,
    METHODS,
    NoveltyDetector,
    image_flags,
    image_size,
    mask_mode,
)
from hamfeat.synthetic import make_synthetic_table

COLS = [f"shape_hu{i}" for i in range(1, 8)] + ["shape_area_frac", "shape_circularity"]


def gaussian(n: int, seed: int, groups_of: int = 1) -> tuple[pd.DataFrame, np.ndarray]:
    """Correlated, heavy-tailed features; rows come in groups of near-duplicates."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(len(COLS), len(COLS)))
    base = rng.standard_t(df=6, size=(n // groups_of, len(COLS))) @ mix
    X = np.repeat(base, groups_of, axis=0) + 0.02 * rng.normal(size=(n, len(COLS)))
    groups = np.repeat(np.arange(n // groups_of), groups_of) + seed * 10**6
    return pd.DataFrame(X, columns=COLS), groups


def test_estimator_contract() -> None:
    det = NoveltyDetector(method="knn", n_components=3, flag_rate=0.02)
    assert det.get_params()["method"] == "knn"
    assert not [k for k in vars(det) if k.endswith("_")]  # __init__ stores params only
    X, _ = gaussian(300, 0)
    assert det.fit(X) is det
    learned = [k for k in vars(det) if k.endswith("_")]
    assert {"threshold_", "columns_", "components_", "oof_scores_"} <= set(learned)
    again = clone(det)
    assert not hasattr(again, "threshold_") and again.get_params() == det.get_params()
    assert list(det.get_feature_names_out()) == ["novelty_score"]
    with pytest.raises(ValueError, match="unknown method"):
        NoveltyDetector(method="lof").fit(X)
    with pytest.raises(TypeError, match="DataFrame"):
        NoveltyDetector().fit(X.to_numpy())


@pytest.mark.parametrize("method", METHODS)
def test_threshold_holds_on_new_images_and_far_rows_are_novel(method: str) -> None:
    """The threshold is set on cross-fitted scores: new in-distribution rows are flagged at
    about ``flag_rate``; rows far from the training table always are."""
    X, _ = gaussian(3000, 1)
    det = NoveltyDetector(method=method, n_components=5, flag_rate=0.01, n_estimators=50)
    det.fit(X)
    fresh, _ = _same_distribution(6000, X, seed=2)  # same distribution, new draws
    rate = det.is_novel(fresh).mean()
    assert rate <= 0.025, (method, rate)
    assert rate >= 0.002, (method, rate)  # not a threshold at infinity either
    far = fresh.iloc[:50] + 40 * X.std().to_numpy()
    assert det.is_novel(far).all()
    # NaN features are the median, never a crash
    holes = fresh.iloc[:20].copy()
    holes.iloc[:, :3] = np.nan
    assert np.isfinite(det.score_samples(holes)).all()


def _same_distribution(n: int, X: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, None]:
    """New draws of :func:`gaussian`'s distribution of seed 1 (same mixing matrix)."""
    rng1 = np.random.default_rng(1)
    mix = rng1.normal(size=(len(COLS), len(COLS)))
    rng = np.random.default_rng(seed)
    Z = rng.standard_t(df=6, size=(n, len(COLS))) @ mix + 0.02 * rng.normal(size=(n, len(COLS)))
    return pd.DataFrame(Z, columns=X.columns), None


def test_groups_keep_near_duplicates_out_of_the_threshold() -> None:
    """Near-duplicate rows (several images of one lesion) make in-sample or row-wise scores
    too small for a kNN: grouped cross-fitting keeps the rate on new lesions near target."""
    X, groups = gaussian(3000, 1, groups_of=3)
    fresh, _ = _same_distribution(6000, X, seed=3)
    grouped = NoveltyDetector(method="knn", n_components=5, flag_rate=0.01)
    grouped.fit(X, groups=groups)
    rowwise = NoveltyDetector(method="knn", n_components=5, flag_rate=0.01).fit(X)
    assert grouped.threshold_ > 1.5 * rowwise.threshold_
    assert grouped.is_novel(fresh).mean() <= 0.03
    assert rowwise.is_novel(fresh).mean() > 0.1


def test_default_columns_are_declared_features_without_graypix() -> None:
    t = make_synthetic_table(60, seed=1)
    t["skin_type"] = "IV"  # metadata with a family prefix: never a feature
    t["graypix_r00_c00"] = 0.0
    det = NoveltyDetector(n_components=3).fit(t)
    assert det.columns_ == feature_columns(t.columns)
    assert "skin_type" not in det.columns_ and "graypix_r00_c00" not in det.columns_


def test_saved_inside_the_model_file(tmp_path: Path) -> None:
    """The detector goes through save_model/load_model's skops trusted-types check."""
    from hamfeat.models import make_model

    t = make_synthetic_table(80, seed=2)
    est = make_model("lr", families=["color", "shape"]).fit(t, t["dx"])
    for method in METHODS:
        det = NoveltyDetector(method=method, n_components=4, n_estimators=10)
        det.fit(t, groups=t["lesion_id"])
        path = save_model(
            est,
            tmp_path / f"{method}.skops",
            feature_names=feature_columns(t.columns, ["color", "shape"]),
            feature_config={"families": ["color", "shape"]},
            classes=list(est.classes_),
            training_table_hash="x",
            novelty=det,
        )
        back = load_model(path).novelty
        assert isinstance(back, NoveltyDetector) and back.threshold_ == det.threshold_
        np.testing.assert_array_equal(back.score_samples(t), det.score_samples(t))


def test_image_flags_facts() -> None:
    rows = pd.DataFrame(
        {
            "mask_source": ["auto", "auto", "given", "auto", "auto", "whole"],
            "mask_method": ["otsu", "fallback_centre_ellipse", "given", "otsu", "otsu", "whole"],
            "shape_area_frac": [0.2, 0.3, 0.001, 0.99, 0.2, 1.0],
            "color_a": [1.0, 1.0, 1.0, 1.0, np.nan, 1.0],
            "color_b": [1.0, 1.0, 1.0, 1.0, np.nan, 1.0],
        }
    )
    sizes = [(600, 450), (600, 450), (600, 450), (600, 450), (600, 450), (4000, 20)]
    got = image_flags(rows, feature_names=["color_a", "color_b"], sizes=sizes)
    assert got == [
        "",
        "seg_fallback",
        "tiny_lesion",
        "whole_image_lesion",
        "nan_features",
        "aspect_ratio",  # a whole-image (X-ray) row has no lesion to be tiny or whole
    ]
    assert set(";".join(got).split(";")) - {""} <= set(FLAGS)
    # a detector adds `novel`, first
    X, _ = gaussian(200, 0)
    det = NoveltyDetector(n_components=3).fit(X)
    far = X.iloc[:2] + 100.0
    far["shape_area_frac"] = 0.2
    far["mask_method"] = ["otsu", "fallback_clip_full"]
    assert image_flags(far, detector=det) == ["novel", "novel;seg_fallback"]
    assert image_flags(rows.iloc[:0]) == []


def test_image_size_reads_headers(tmp_path: Path) -> None:
    p = write_jpeg(tmp_path / "a.jpg", np.zeros((20, 400, 3), np.uint8))
    assert image_size(p) == (400, 20) and 400 / 20 > MAX_ASPECT
    assert image_size(tmp_path / "missing.jpg") is None
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    assert image_size(tmp_path / "bad.jpg") is None


def test_mask_mode() -> None:
    t = pd.DataFrame({"mask_source": ["given"] * 9 + ["auto"]})
    assert mask_mode(t) == {"mode": "given", "counts": {"given": 9, "auto": 1}}
    assert mask_mode(pd.DataFrame({"x": [1]}))["mode"] == "unknown"


def test_detector_scores_no_rows() -> None:
    """A batch whose images all failed gives an empty frame: no rows, no error."""
    from hamfeat.models import feature_columns
    from hamfeat.novelty import NoveltyDetector
    from hamfeat.synthetic import make_synthetic_table

    t = make_synthetic_table(40, seed=3)
    names = feature_columns(t.columns)[:12]
    for method in ("mahalanobis", "knn", "iforest"):
        det = NoveltyDetector(method=method).fit(t[names])
        assert det.score_samples(t[names].iloc[:0]).shape == (0,)
        assert det.is_novel(t[names].iloc[:0]).shape == (0,)
