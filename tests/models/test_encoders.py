"""PatchKMeansEncoder: estimator contract, a plain-loop reference, determinism, learning."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from hamfeat.encoders import PatchKMeansEncoder


def _images(n: int, side: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, side * side))


def _reference_transform(enc: PatchKMeansEncoder, X: np.ndarray) -> np.ndarray:
    """Loop over images, positions and centroids: the definition, one number at a time."""
    h, w = enc.image_shape_
    p, g, k = enc.patch_size, enc.pool, enc.n_clusters
    out = np.zeros((len(X), g * g * k))
    nh, nw = h - p + 1, w - p + 1
    rows = [np.arange(nh)[(i * nh) // g : ((i + 1) * nh) // g] for i in range(g)]
    cols = [np.arange(nw)[(i * nw) // g : ((i + 1) * nw) // g] for i in range(g)]
    for n, x in enumerate(X):
        img = x.reshape(h, w)
        act = np.zeros((nh, nw, k))
        for i in range(nh):
            for j in range(nw):
                v = img[i : i + p, j : j + p].ravel()
                v = (v - v.mean()) / np.sqrt(v.var() + enc.norm_eps)
                z = (v - enc.mean_) @ enc.whitening_
                d = np.array([np.linalg.norm(z - c) for c in enc.cluster_centers_])
                act[i, j] = np.maximum(0.0, d.mean() - d)
        cells = [act[np.ix_(r, c)].mean(axis=(0, 1)) for r in rows for c in cols]
        out[n] = np.concatenate(cells)
    return out


def test_transform_matches_the_loop_reference_on_random_images() -> None:
    X = _images(12)
    enc = PatchKMeansEncoder(n_clusters=6, patch_size=4, pool=3, patches_per_image=20)
    F = enc.fit(X).transform(X[:3])
    assert F.shape == (3, 6 * 9)
    # tolerance: the vectorised distances expand |z - c|^2 (float64 rounding)
    np.testing.assert_allclose(F, _reference_transform(enc, X[:3]), rtol=0, atol=1e-9)


def test_transform_matches_the_loop_reference_on_real_xrays() -> None:
    import cv2

    from _paths import SHARED_DEFAULT

    sample = SHARED_DEFAULT / "nih-cxr14-sample" / "images"
    paths = sorted(sample.glob("*.png"))[:30]
    if not paths:
        pytest.skip(f"NIH ChestX-ray14 sample not found at {sample}")
    imgs = np.stack([cv2.imread(str(q), cv2.IMREAD_GRAYSCALE) for q in paths]).astype(float)
    X = ((imgs - imgs.mean((1, 2), keepdims=True)) / imgs.std((1, 2), keepdims=True))
    X = X.reshape(len(X), -1)
    enc = PatchKMeansEncoder(n_clusters=8, patch_size=6, pool=4, patches_per_image=50)
    F = enc.fit(X[:28]).transform(X[28:])
    np.testing.assert_allclose(F, _reference_transform(enc, X[28:]), rtol=0, atol=1e-9)
    assert (F >= 0).all() and F.any()


def test_names_shape_and_contract() -> None:
    X = _images(10)
    enc = PatchKMeansEncoder(n_clusters=4, patch_size=3, pool=2, patches_per_image=10)
    assert enc.get_params()["n_clusters"] == 4 and not hasattr(enc, "cluster_centers_")
    with pytest.raises(NotFittedError):
        enc.transform(X)
    assert enc.fit(X) is enc
    names = enc.get_feature_names_out()
    assert len(names) == enc.transform(X).shape[1] == 16
    assert names[0] == "patchkm_r0c0_k000" and names[-1] == "patchkm_r1c1_k003"
    assert len(set(names)) == len(names)
    assert enc.image_shape_ == (16, 16) and enc.n_features_in_ == 256
    assert clone(enc).get_params() == enc.get_params()
    with pytest.raises(ValueError, match="features"):  # another image size after fit
        enc.transform(_images(2, side=12))


def test_deterministic_and_row_independent() -> None:
    X = _images(20, seed=3)
    a = PatchKMeansEncoder(n_clusters=5, patch_size=4, pool=2, random_state=7).fit(X)
    b = PatchKMeansEncoder(n_clusters=5, patch_size=4, pool=2, random_state=7).fit(X)
    assert np.array_equal(a.cluster_centers_, b.cluster_centers_)
    full = a.transform(X)
    assert np.array_equal(full, b.transform(X))
    # a row's features do not depend on the other rows of the batch, or on the batch size
    one = np.concatenate([a.transform(X[i : i + 1]) for i in range(len(X))])
    np.testing.assert_allclose(one, full, rtol=0, atol=1e-12)
    small = PatchKMeansEncoder(n_clusters=5, patch_size=4, pool=2, random_state=7, batch_size=3)
    np.testing.assert_allclose(small.fit(X).transform(X), full, rtol=0, atol=1e-12)
    other = PatchKMeansEncoder(n_clusters=5, patch_size=4, pool=2, random_state=8).fit(X)
    assert not np.array_equal(other.cluster_centers_, a.cluster_centers_)


def test_bad_parameters_and_shapes() -> None:
    X = _images(5)
    with pytest.raises(ValueError, match="not a square image"):
        PatchKMeansEncoder().fit(np.zeros((3, 10)))
    with pytest.raises(ValueError, match="image_shape 4x4"):
        PatchKMeansEncoder(image_shape=(4, 4)).fit(X)
    with pytest.raises(ValueError, match="patch_size"):
        PatchKMeansEncoder(patch_size=20).fit(X)
    with pytest.raises(ValueError, match="pool"):
        PatchKMeansEncoder(patch_size=4, pool=14).fit(X)
    with pytest.raises(ValueError, match="fewer than"):
        PatchKMeansEncoder(n_clusters=100, patch_size=4, patches_per_image=10).fit(X)
    with pytest.raises(ValueError, match="NaN"):
        PatchKMeansEncoder().fit(np.full((3, 256), np.nan))
    enc = PatchKMeansEncoder(n_clusters=3, patch_size=4, pool=2, patches_per_image=10,
                             image_shape=(8, 32))
    assert enc.fit(_images(5)).transform(_images(2)).shape == (2, 12)


def test_learns_orientation_a_pixel_model_cannot_see() -> None:
    """Horizontal vs vertical stripes at random phases: the mean image is the same for both."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:16, :16]
    X, y = [], []
    for i in range(120):
        horizontal = i % 2
        phase, period = rng.uniform(0, 2 * np.pi), rng.uniform(3, 6)
        t = yy if horizontal else xx
        X.append((np.sin(2 * np.pi * t / period + phase) + rng.normal(0, 0.5, t.shape)).ravel())
        y.append(horizontal)
    X, y = np.array(X), np.array(y)
    model = make_pipeline(
        PatchKMeansEncoder(n_clusters=16, patch_size=4, pool=1, patches_per_image=20),
        StandardScaler(),
        LogisticRegression(max_iter=2000),
    )
    model.fit(X[:80], y[:80])
    assert roc_auc_score(y[80:], model.predict_proba(X[80:])[:, 1]) > 0.95
    raw = LogisticRegression(max_iter=2000).fit(X[:80], y[:80])
    assert roc_auc_score(y[80:], raw.predict_proba(X[80:])[:, 1]) < 0.8
