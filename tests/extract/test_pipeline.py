"""The one path: compute_features / extract_file and the scikit-learn FeatureExtractor."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from conftest import synthetic_lesion, write_jpeg, write_mask
from hamfeat.errors import ImageError
from hamfeat.features import FAMILIES, feature_names
from hamfeat.pipeline import FeatureConfig, FeatureExtractor, compute_features, extract_file


@pytest.fixture(scope="module")
def lesion() -> tuple[np.ndarray, np.ndarray]:
    return synthetic_lesion(120, 160, seed=7)


def test_given_mask_and_auto_mask(lesion) -> None:
    rgb, mask = lesion
    given = compute_features(rgb, mask)
    assert given.mask_source == "given" and given.mask_method == "given"
    assert given.values.shape == (len(feature_names()),)
    assert np.isfinite(given.values).mean() > 0.95
    auto = compute_features(rgb)
    assert auto.mask_source == "auto" and auto.mask_method
    names = feature_names()
    area = names.index("shape_area_frac")
    # the automatic mask finds about the same lesion on this easy image
    assert auto.values[area] == pytest.approx(given.values[area], rel=0.25)


def test_deterministic_bit_for_bit(lesion) -> None:
    rgb, mask = lesion
    a = compute_features(rgb, mask).values
    b = compute_features(rgb.copy(), mask.copy()).values
    assert a.tobytes() == b.tobytes()


def test_config_options_change_values_and_key(lesion) -> None:
    rgb, mask = lesion
    no_cc = FeatureConfig()
    cc = FeatureConfig(color_constancy=True)
    assert no_cc.color_constancy is False  # the default: CV showed colour constancy hurts
    assert cc.key() != no_cc.key()
    assert FeatureConfig(color_constancy=False).key() == no_cc.key()
    a = compute_features(rgb, mask, cc).values
    b = compute_features(rgb, mask, no_cc).values
    assert not np.array_equal(a, b)
    hair = compute_features(rgb, mask, FeatureConfig(hair_removal=True))
    assert hair.values.shape == a.shape
    only = FeatureConfig(families=("shape", "color"))
    assert only.families == ("color", "shape")  # registry order
    assert len(compute_features(rgb, mask, only).values) == len(feature_names(["color", "shape"]))
    with pytest.raises(ValueError, match="unknown feature family"):
        FeatureConfig(families=("nope",))


def test_failing_family_is_nan_and_warning(lesion, monkeypatch, caplog) -> None:
    rgb, mask = lesion

    def boom(ctx):
        raise RuntimeError("kaput")

    monkeypatch.setattr(FAMILIES["wavelet"], "compute", boom)
    res = compute_features(rgb, mask, name="img.jpg")
    names = feature_names()
    wave = [i for i, n in enumerate(names) if n.startswith("wavelet_")]
    assert np.isnan(res.values[wave]).all()
    other = [i for i, n in enumerate(names) if n.startswith("shape_")]
    assert np.isfinite(res.values[other]).all()
    assert any("img.jpg: feature family wavelet failed (kaput)" in w for w in res.warnings)
    # the scikit-learn transformer logs it
    with caplog.at_level(logging.WARNING, logger="hamfeat"):
        X = FeatureExtractor().fit_transform([(rgb, mask)])
    assert "feature family wavelet failed (kaput)" in caplog.text
    assert np.isnan(X[0, wave]).all() and np.isfinite(X[0, other]).all()


def test_infinite_feature_is_nan_and_warning(lesion, monkeypatch) -> None:
    """An infinity is undefined, as NaN is: set to NaN with a warning naming the feature, so
    that no model (the imputers refuse infinities) and no statistic ever sees one."""
    rgb, mask = lesion
    fam = FAMILIES["shape"]
    real = fam.compute

    def with_inf(ctx):
        v = np.asarray(real(ctx), dtype=np.float64).copy()
        v[1], v[3] = np.inf, -np.inf
        return v

    monkeypatch.setattr(fam, "compute", with_inf)
    res = compute_features(rgb, mask, name="img.jpg")
    names = feature_names()
    first = names.index(fam.names()[0])
    assert np.isnan(res.values[[first + 1, first + 3]]).all()
    assert not np.isinf(res.values).any()
    assert np.isfinite(res.values[first]) and np.isfinite(res.values[first + 2])
    warn = [w for w in res.warnings if "infinite value" in w]
    assert warn and fam.names()[1] in warn[0] and fam.names()[3] in warn[0]


def test_bad_mask_falls_back_to_auto_with_warning(tmp_path: Path, lesion) -> None:
    rgb, mask = lesion
    img = write_jpeg(tmp_path / "a.jpg", rgb)
    good = extract_file(img, write_mask(tmp_path / "m.png", mask))
    assert good.mask_source == "given" and not good.warnings
    for bad, msg in (
        (write_mask(tmp_path / "small.png", mask[:50, :50]), "mask is 50x50"),
        (write_mask(tmp_path / "empty.png", np.zeros_like(mask)), "empty"),
        (tmp_path / "missing.png", "file not found"),
    ):
        res = extract_file(img, bad)
        assert res.mask_source == "auto"
        assert msg in res.warnings[0] and str(bad) in res.warnings[0]


def test_bad_image_raises_image_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    with pytest.raises(ImageError, match=r"bad\.jpg"):
        extract_file(bad)


def test_any_size_gives_comparable_features(lesion) -> None:
    """A 2x larger copy of an image lands on the same canonical grid: near-equal features."""
    import cv2

    rgb, mask = lesion  # 160x120 -> canonical 300x225 (upsampled)
    big = cv2.resize(rgb, (640, 480), interpolation=cv2.INTER_LINEAR)
    big_mask = cv2.resize(mask.astype(np.uint8), (640, 480), interpolation=cv2.INTER_NEAREST) > 0
    a = compute_features(rgb, mask).values
    b = compute_features(big, big_mask).values
    names = feature_names()
    for name in ("shape_area_frac", "color_lab_l_mean", "shape_eccentricity"):
        i = names.index(name)
        assert a[i] == pytest.approx(b[i], rel=0.05), name


def test_feature_extractor_in_sklearn_pipeline(tmp_path: Path, lesion) -> None:
    rgb, mask = lesion
    paths = [
        write_jpeg(tmp_path / f"{i}.jpg", synthetic_lesion(90, 120, seed=i)[0]) for i in range(3)
    ]
    ext = FeatureExtractor(families=["color", "shape"])
    assert ext.get_params()["families"] == ["color", "shape"]
    X = ext.fit_transform(pd.DataFrame({"image_path": paths}))
    assert X.shape == (3, len(feature_names(["color", "shape"])))
    assert list(ext.get_feature_names_out()) == feature_names(["color", "shape"])
    # arrays and (array, mask) pairs
    X2 = FeatureExtractor(families=["shape"]).fit_transform([(rgb, mask), rgb])
    assert X2.shape == (2, len(feature_names(["shape"])))
    # a bad file is a NaN row, the batch goes on
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"")
    X3 = FeatureExtractor(families=["shape"]).fit_transform([str(paths[0]), str(bad)])
    assert np.isfinite(X3[0]).all() and np.isnan(X3[1]).all()
    pipe = make_pipeline(FeatureExtractor(families=["color"]), StandardScaler())
    assert pipe.fit_transform([p for p in paths]).shape[0] == 3
