"""Reference tests for hamfeat._kernels.stats (vs numpy / scipy / OpenCV)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import scipy.stats

from conftest import real_pairs
from hamfeat._kernels.stats import (
    masked_channel_histograms,
    masked_histogram,
    masked_histogram_u8,
    masked_moments,
    masked_quantiles_u8,
)

N_REAL = 4
MOMENTS_RTOL = 1e-9  # float64 two-pass vs numpy/scipy pairwise sums: ~1e-13 observed
MOMENTS_ATOL = 1e-9


def _real_pairs(n: int = N_REAL) -> list[tuple[np.ndarray, np.ndarray]]:
    return real_pairs(n, gray=False)


SHAPES = [(1, 1), (2, 2), (3, 5), (17, 31), (225, 300)]


def _masks(shape: tuple[int, int], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        np.ones(shape, dtype=bool),
        rng.random(shape) < 0.5,
        rng.random(shape) < 0.05,
    ]


def _ref_moments(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    return np.stack(
        [x.mean(0), x.std(0), scipy.stats.skew(x, 0), scipy.stats.kurtosis(x, 0)], axis=1
    )


# ----------------------------------------------------------------------------- moments


@pytest.mark.parametrize("shape", SHAPES)
def test_moments_random(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(10)
    vals = (rng.gamma(2.0, 3.0, (*shape, 3)) - 5).astype(np.float32)
    for m in _masks(shape, 11):
        ours = masked_moments(vals, m)
        assert ours.shape == (3, 4) and ours.dtype == np.float64
        if m.sum() == 0:
            assert np.isnan(ours).all()
            continue
        ref = _ref_moments(vals[m])
        if m.sum() == 1:  # zero variance: std 0, skew/kurt NaN (scipy agrees)
            np.testing.assert_array_equal(ours[:, 1], 0.0)
            assert np.isnan(ours[:, 2:]).all() and np.isnan(ref[:, 2:]).all()
            np.testing.assert_array_equal(ours[:, 0], ref[:, 0])
            continue
        np.testing.assert_allclose(ours, ref, rtol=MOMENTS_RTOL, atol=MOMENTS_ATOL)


def test_moments_edge_cases() -> None:
    vals = np.full((6, 7, 2), 3.25, dtype=np.float32)
    vals[..., 1] = np.arange(42, dtype=np.float32).reshape(6, 7)
    m = np.zeros((6, 7), dtype=bool)
    assert np.isnan(masked_moments(vals, m)).all()  # empty mask
    m[2:5, 1:6] = True
    out = masked_moments(vals, m)
    np.testing.assert_array_equal(out[0, :2], [3.25, 0.0])  # constant channel
    assert np.isnan(out[0, 2:]).all()
    np.testing.assert_allclose(out[1], _ref_moments(vals[m][:, 1:])[0], rtol=MOMENTS_RTOL)
    # large offset: the two-pass algorithm keeps full precision
    big = (np.float32(1e6) + np.arange(42, dtype=np.float32)).reshape(6, 7, 1)
    ref_std = big[m].astype(np.float64).std()
    np.testing.assert_allclose(masked_moments(big, m)[0, 1], ref_std, rtol=1e-12)


def test_moments_real() -> None:
    for rgb, m in _real_pairs():
        vals = rgb.astype(np.float32) / 255
        np.testing.assert_allclose(
            masked_moments(vals, m), _ref_moments(vals[m]), rtol=MOMENTS_RTOL, atol=MOMENTS_ATOL
        )


# ----------------------------------------------------------------------------- histogram

RANGES = [(0.0, 1.0), (-1.3, 2.1), (0.1, 0.7), (0.0, 360.0)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_histogram_random(shape: tuple[int, int], dtype: type) -> None:
    rng = np.random.default_rng(20)
    vals = (rng.normal(0.3, 0.6, shape)).astype(dtype)
    # put values exactly on edges, both range ends, outside, and NaN
    flat = vals.reshape(-1)
    flat[::7] = np.round(flat[::7] * 10) / 10
    flat[::11] = 1.0
    flat[::13] = 0.0
    if flat.size > 3:
        flat[3] = np.nan
    for m in _masks(shape, 21):
        for n_bins in (1, 7, 10, 64):
            for lo, hi in RANGES:
                ours = masked_histogram(vals, m, n_bins, lo, hi)
                ref = np.histogram(vals[m], bins=n_bins, range=(lo, hi))[0]
                assert ours.dtype == np.int64
                np.testing.assert_array_equal(ours, ref, err_msg=f"{n_bins} {lo} {hi}")


def test_histogram_uint8_values() -> None:
    rng = np.random.default_rng(22)
    vals = rng.integers(0, 256, (31, 17), dtype=np.uint8)
    m = rng.random(vals.shape) < 0.6
    for n_bins, lo, hi in [(16, 0, 256), (10, 0, 255), (7, 20.5, 200)]:
        np.testing.assert_array_equal(
            masked_histogram(vals, m, n_bins, lo, hi),
            np.histogram(vals[m], bins=n_bins, range=(lo, hi))[0],
        )


def test_histogram_real_hue() -> None:
    for rgb, m in _real_pairs():
        hue = cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2HSV)[..., 0].copy()
        for n_bins in (12, 36):
            np.testing.assert_array_equal(
                masked_histogram(hue, m, n_bins, 0, 360),
                np.histogram(hue[m], bins=n_bins, range=(0, 360))[0],
            )


def test_histogram_contracts() -> None:
    v = np.zeros((3, 4), np.float32)
    m = np.ones((3, 4), bool)
    with pytest.raises(ValueError, match="lo < hi"):
        masked_histogram(v, m, 4, 1.0, 1.0)
    with pytest.raises(ValueError, match="n_bins"):
        masked_histogram(v, m, 0, 0, 1)
    with pytest.raises(TypeError, match="dtype"):
        masked_histogram(v.astype(np.int16), m, 4, 0, 1)
    with pytest.raises(ValueError, match="does not match"):
        masked_histogram(v, m[:2], 4, 0, 1)
    with pytest.raises(TypeError, match="bool"):
        masked_histogram(v, m.astype(np.uint8), 4, 0, 1)


@pytest.mark.parametrize("shape", SHAPES)
def test_histogram_u8_vs_calchist(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(30)
    vals = rng.integers(0, 256, shape, dtype=np.uint8)
    for m in _masks(shape, 31):
        for n_bins in (1, 3, 7, 10, 16, 32, 100, 255, 256):
            ref = cv2.calcHist([vals], [0], m.astype(np.uint8), [n_bins], [0, 256]).ravel()
            ours = masked_histogram_u8(vals, m, n_bins)
            assert ours.dtype == np.int64 and ours.shape == (n_bins,)
            np.testing.assert_array_equal(ours, ref.astype(np.int64), err_msg=str(n_bins))


def test_histogram_u8_real() -> None:
    for rgb, m in _real_pairs():
        g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        for n_bins in (8, 32, 256):
            ref = cv2.calcHist([g], [0], m.astype(np.uint8), [n_bins], [0, 256]).ravel()
            np.testing.assert_array_equal(masked_histogram_u8(g, m, n_bins), ref)
    with pytest.raises(ValueError, match="n_bins"):
        masked_histogram_u8(g, m, 257)


# ----------------------------------------------------------------------------- quantiles

QS = np.array([0.0, 0.01, 0.05, 0.1, 0.25, 1 / 3, 0.5, 2 / 3, 0.75, 0.9, 0.95, 0.99, 1.0])


@pytest.mark.parametrize("shape", SHAPES)
def test_quantiles_random(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(40)
    for trial in range(5):
        hi = int(rng.integers(1, 257))
        vals = rng.integers(0, hi, shape, dtype=np.uint8)
        for m in _masks(shape, 41 + trial):
            ours = masked_quantiles_u8(vals, m, QS)
            if m.sum() == 0:
                assert np.isnan(ours).all()
                continue
            np.testing.assert_array_equal(ours, np.quantile(vals[m], QS, method="linear"))


def test_quantiles_dense_q() -> None:
    rng = np.random.default_rng(42)
    vals = rng.integers(0, 256, (37, 23), dtype=np.uint8)
    m = rng.random(vals.shape) < 0.7
    qs = np.linspace(0, 1, 1001)
    np.testing.assert_array_equal(masked_quantiles_u8(vals, m, qs), np.quantile(vals[m], qs))


def test_quantiles_real() -> None:
    for rgb, m in _real_pairs():
        for c in range(3):
            ch = np.ascontiguousarray(rgb[..., c])
            np.testing.assert_array_equal(
                masked_quantiles_u8(ch, m, QS), np.quantile(ch[m], QS, method="linear")
            )
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        masked_quantiles_u8(ch, m, [0.5, 1.5])


# ----------------------------------------------------------------------------- multi-channel

CH_RANGES = ((90.0, 270.0, 12), (0.0, 1.0, 8), (-20.0, 60.0, 8))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_channel_histograms_equal_numpy(shape: tuple[int, int], dtype: type) -> None:
    rng = np.random.default_rng(50)
    vals = np.stack(
        [rng.uniform(60, 300, shape), rng.uniform(-0.2, 1.2, shape), rng.normal(20, 30, shape)],
        axis=-1,
    ).astype(dtype)
    flat = vals.reshape(-1, 3)
    flat[::7, 1] = 1.0  # closed last bin
    flat[::5, 0] = 90.0
    flat[::11, 2] = np.round(flat[::11, 2] / 10) * 10  # exactly on edges
    if flat.shape[0] > 3:
        flat[3] = np.nan
    for m in _masks(shape, 51):
        got = masked_channel_histograms(vals, m, CH_RANGES)
        for c, (lo, hi, n) in enumerate(CH_RANGES):
            ref = np.histogram(vals[..., c][m], bins=n, range=(lo, hi))[0]
            np.testing.assert_array_equal(got[c], ref)
            one = masked_histogram(vals, m, n, lo, hi, channel=c)
            assert one.dtype == np.int64
            np.testing.assert_array_equal(one, ref)
            # many bins: the scatter kernel
            many = masked_histogram(vals, m, 40, lo, hi, channel=c)
            ref40 = np.histogram(vals[..., c][m], bins=40, range=(lo, hi))[0]
            np.testing.assert_array_equal(many, ref40)


def test_channel_histograms_contracts() -> None:
    v = np.zeros((3, 4, 3), np.float32)
    m = np.ones((3, 4), bool)
    with pytest.raises(ValueError, match="per channel"):
        masked_channel_histograms(v, m, CH_RANGES[:2])
    with pytest.raises(ValueError, match="lo < hi"):
        masked_channel_histograms(v, m, ((0, 1, 4), (1, 1, 4), (0, 1, 4)))
    with pytest.raises(ValueError, match="channel"):
        masked_histogram(v, m, 4, 0, 1)
    with pytest.raises(ValueError, match="channel"):
        masked_histogram(v, m, 4, 0, 1, channel=3)
    with pytest.raises(ValueError, match="channel"):
        masked_histogram(v[..., 0].copy(), m, 4, 0, 1, channel=0)


def test_quantiles_channels_and_moments_u8_real() -> None:
    for rgb, m in _real_pairs():
        q3 = masked_quantiles_u8(rgb, m, QS)
        assert q3.shape == (3, len(QS))
        for c in range(3):
            ch = np.ascontiguousarray(rgb[..., c])
            assert q3[c].tobytes() == masked_quantiles_u8(ch, m, QS).tobytes()
        # uint8 input gives bit-identical moments to its float32 copy
        a = masked_moments(rgb, m)
        assert a.tobytes() == masked_moments(rgb.astype(np.float32), m).tobytes()
    assert np.isnan(masked_quantiles_u8(rgb, np.zeros(m.shape, bool), QS)).all()


def test_moments_three_channel_kernel_bit_identical_to_generic() -> None:
    # the 3-channel kernel advances the channels together; each channel alone goes
    # through the generic kernel: same addends in the same order, same bits
    for rgb, m in _real_pairs(2):
        x = rgb.astype(np.float32) * np.float32(0.37)
        both = masked_moments(x, m)
        for c in range(3):
            one = masked_moments(np.ascontiguousarray(x[..., c : c + 1]), m)
            assert both[c].tobytes() == one[0].tobytes()
