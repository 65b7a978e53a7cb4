"""Reference tests for hamfeat._kernels.color (vs OpenCV and scikit-image)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage.color import rgb2lab

from _paths import SHARED
from hamfeat._kernels.color import (
    hsv_views,
    lab_views,
    rgb_to_gray,
    rgb_to_hsv,
    rgb_to_lab,
    scale_to_u8,
)

IMAGES = SHARED / "ham10000" / "images"
N_REAL = 4

# OpenCV's SIMD body computes H with a fused multiply-add, its scalar row tail (the last
# width % vector_width pixels of each row) without: the reference itself differs by
# 1 float32 ulp depending on the column.  We reproduce the SIMD path bit for bit.
HSV_H_ATOL = 3.1e-5  # 1 ulp of float32 in [256, 512)
LAB_ATOL_SKIMAGE = 2e-5  # float64 math, float32 output: ~1 float32 ulp at L=100
LAB_ATOL_CV2 = 0.6  # OpenCV: white point (0.950456, 1, 1.088754) + spline approximations
LAB_P999_CV2 = 0.35  # 99.9th percentile of |diff| vs OpenCV


def _real_rgb(n: int = N_REAL) -> list[np.ndarray]:
    if not IMAGES.is_dir():
        pytest.skip(f"real data not found at {IMAGES} (set HAMFEAT_SHARED_DATA)")
    paths = sorted(IMAGES.glob("ISIC_*.jpg"))[:n]
    if not paths:
        pytest.skip(f"no ISIC_*.jpg under {IMAGES}")
    out = []
    for p in paths:
        bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        out.append(np.ascontiguousarray(cv2.resize(rgb, (300, 225), interpolation=cv2.INTER_AREA)))
    return out


@pytest.fixture(scope="module")
def all_colours() -> np.ndarray:
    """Every one of the 2**24 RGB triplets, as a 4096 x 4096 image."""
    v = np.arange(256, dtype=np.uint8)
    r, g, b = np.meshgrid(v, v, v, indexing="ij")
    return np.ascontiguousarray(np.stack([r, g, b], axis=-1).reshape(4096, 4096, 3))


RANDOM_SHAPES = [(1, 1), (2, 2), (3, 5), (17, 31), (225, 300)]


def _random_rgb(shape: tuple[int, int], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


# ----------------------------------------------------------------------------- gray


def test_gray_exhaustive(all_colours: np.ndarray) -> None:
    ours = rgb_to_gray(all_colours)
    ref = cv2.cvtColor(all_colours, cv2.COLOR_RGB2GRAY)
    assert ours.dtype == np.uint8 and ours.shape == ref.shape
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("shape", RANDOM_SHAPES)
def test_gray_random(shape: tuple[int, int]) -> None:
    rgb = _random_rgb(shape, 1)
    np.testing.assert_array_equal(rgb_to_gray(rgb), cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))


def test_gray_real() -> None:
    for rgb in _real_rgb():
        np.testing.assert_array_equal(rgb_to_gray(rgb), cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))


# ----------------------------------------------------------------------------- HSV


def _cv_hsv(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2HSV)


def test_hsv_exhaustive(all_colours: np.ndarray) -> None:
    ours = rgb_to_hsv(all_colours)
    assert ours.dtype == np.float32 and ours.shape == all_colours.shape
    # With an FMA-enabled OpenCV build (x86-64 AVX2, as here) this is bit-exact; builds
    # without FMA round H differently in ~6.5% of colours, by 1 ulp (HSV_H_ATOL).
    _check_hsv(all_colours, max_mismatch=0.1)
    assert ours[..., 0].min() >= 0 and ours[..., 0].max() < 360
    assert ours[..., 1:].min() >= 0 and ours[..., 1:].max() <= 1


def _check_hsv(rgb: np.ndarray, max_mismatch: float = 0.1) -> None:
    ours, ref = rgb_to_hsv(rgb), _cv_hsv(rgb)
    np.testing.assert_array_equal(ours[..., 1:], ref[..., 1:])
    np.testing.assert_allclose(ours[..., 0], ref[..., 0], rtol=0, atol=HSV_H_ATOL)
    # only OpenCV's non-FMA scalar row tails (or a non-FMA build) may differ
    # (tiny images are all "tail", so the fraction is only meaningful for large ones)
    frac = (ours[..., 0] != ref[..., 0]).mean()
    large = rgb.shape[0] * rgb.shape[1] >= 1000
    assert not large or frac <= max_mismatch, f"{frac:.2%} of H values differ (by <= 1 ulp)"


@pytest.mark.parametrize("shape", RANDOM_SHAPES)
def test_hsv_random(shape: tuple[int, int]) -> None:
    _check_hsv(_random_rgb(shape, 2))


def test_hsv_real() -> None:
    for rgb in _real_rgb():
        _check_hsv(rgb)


# ----------------------------------------------------------------------------- Lab


def test_lab_exhaustive_vs_skimage(all_colours: np.ndarray) -> None:
    ours = rgb_to_lab(all_colours)
    assert ours.dtype == np.float32 and ours.shape == all_colours.shape
    err = np.abs(ours.astype(np.float64) - rgb2lab(all_colours)).max()
    assert err <= LAB_ATOL_SKIMAGE, f"max |Lab - skimage| = {err} > {LAB_ATOL_SKIMAGE}"
    assert ours[..., 0].min() >= 0 and ours[..., 0].max() <= 100.0 + LAB_ATOL_SKIMAGE


def _lab_numpy_formula(rgb: np.ndarray) -> np.ndarray:
    """The kernel's documented float64 arithmetic, element by element, in NumPy."""
    from hamfeat._kernels.color import _CBRT_SCALE, _CBRT_TAB, _LAB_LUT

    r, g, b = (rgb[..., k].astype(np.intp) for k in range(3))
    f = []
    for row in range(3):
        t = _LAB_LUT[row, 0][r] + _LAB_LUT[row, 1][g] + _LAB_LUT[row, 2][b]
        u = t * _CBRT_SCALE
        i = u.astype(np.intp)
        fr = u - i
        c0 = _CBRT_TAB[i]
        x = c0 + fr * (_CBRT_TAB[i + 1] - c0)
        x3 = x * x * x
        with np.errstate(invalid="ignore", divide="ignore"):
            cube = x * (x3 + 2.0 * t) / (2.0 * x3 + t)
        f.append(np.where(t > 0.008856, cube, 7.787 * t + 16.0 / 116.0))
    fx, fy, fz = f
    return np.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], -1).astype(
        np.float32
    )


def test_lab_bit_identical_to_formula(all_colours: np.ndarray) -> None:
    # guards feature values: any change of the kernel's float64 arithmetic shows here
    ours = rgb_to_lab(all_colours)
    for rows in np.array_split(np.arange(all_colours.shape[0]), 4):
        ref = _lab_numpy_formula(all_colours[rows])
        assert ours[rows].tobytes() == ref.tobytes()


def test_lab_exhaustive_vs_opencv(all_colours: np.ndarray) -> None:
    ours = rgb_to_lab(all_colours)
    ref = cv2.cvtColor(all_colours.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    d = np.abs(ours - ref).reshape(-1, 3)
    assert d.max() <= LAB_ATOL_CV2, f"max |Lab - cv2| = {d.max(0)}"
    p999 = np.percentile(d, 99.9, axis=0)
    assert (p999 <= LAB_P999_CV2).all(), f"99.9th pct |Lab - cv2| = {p999}"


@pytest.mark.parametrize("shape", RANDOM_SHAPES)
def test_lab_random(shape: tuple[int, int]) -> None:
    rgb = _random_rgb(shape, 3)
    np.testing.assert_allclose(rgb_to_lab(rgb), rgb2lab(rgb), rtol=0, atol=LAB_ATOL_SKIMAGE)


def test_lab_real() -> None:
    for rgb in _real_rgb():
        np.testing.assert_allclose(rgb_to_lab(rgb), rgb2lab(rgb), rtol=0, atol=LAB_ATOL_SKIMAGE)


def test_lab_white_black() -> None:
    px = np.array([[[255, 255, 255], [0, 0, 0]]], dtype=np.uint8)
    lab = rgb_to_lab(px)
    np.testing.assert_allclose(lab[0, 0], [100.0, 0.0, 0.0], atol=5e-3)
    np.testing.assert_array_equal(lab[0, 1], [0.0, 0.0, 0.0])


# ----------------------------------------------------------------------------- fused views

HSV_SCALE = np.float32([255.0 / 360.0, 255.0, 255.0])
LAB_SCALE, LAB_OFFSET = np.float32([2.55, 1, 1]), np.float32([0, 128, 128])


def _hsv_steps(rgb: np.ndarray, shift: float) -> tuple[np.ndarray, np.ndarray]:
    hsv = rgb_to_hsv(rgb)
    h = hsv[:, :, 0]
    h += np.float32(shift)
    h[h >= 360.0] -= np.float32(360.0)
    return hsv, scale_to_u8(hsv, HSV_SCALE, np.zeros(3))


@pytest.mark.parametrize("shift", [180.0, 0.0, 90.5])
def test_hsv_views_exhaustive_equals_steps(all_colours: np.ndarray, shift: float) -> None:
    hsv, u8 = hsv_views(all_colours, shift, HSV_SCALE, np.zeros(3))
    ref, ref_u8 = _hsv_steps(all_colours, shift)
    assert hsv.dtype == np.float32 and u8.dtype == np.uint8 and u8.shape == all_colours.shape
    assert hsv.tobytes() == ref.tobytes()
    assert u8.tobytes() == ref_u8.tobytes()


def test_lab_views_exhaustive_equals_steps(all_colours: np.ndarray) -> None:
    lab, u8 = lab_views(all_colours, LAB_SCALE, LAB_OFFSET)
    ref = rgb_to_lab(all_colours)
    assert lab.tobytes() == ref.tobytes()
    assert u8.tobytes() == scale_to_u8(ref, LAB_SCALE, LAB_OFFSET).tobytes()
    assert u8[..., 0].max() == 255 and u8[..., 1].min() < 128 < u8[..., 2].max()


def test_views_real_and_contracts() -> None:
    for rgb in _real_rgb(2):
        hsv, u8 = hsv_views(rgb, 180.0, HSV_SCALE, np.zeros(3))
        ref, ref_u8 = _hsv_steps(rgb, 180.0)
        np.testing.assert_array_equal(hsv, ref)
        np.testing.assert_array_equal(u8, ref_u8)
    with pytest.raises(TypeError, match="uint8"):
        lab_views(np.zeros((2, 2, 3), np.float32), LAB_SCALE, LAB_OFFSET)
    with pytest.raises(ValueError, match="channels"):
        hsv_views(np.zeros((2, 2, 2), np.uint8), 0.0, HSV_SCALE, np.zeros(3))


# ----------------------------------------------------------------------------- contracts


@pytest.mark.parametrize("fn", [rgb_to_gray, rgb_to_hsv, rgb_to_lab])
def test_contracts(fn) -> None:
    rgb = _random_rgb((4, 5), 4)
    with pytest.raises(TypeError, match="uint8"):
        fn(rgb.astype(np.float32))
    with pytest.raises(ValueError, match="channels"):
        fn(np.ascontiguousarray(rgb[..., :2]))
    with pytest.raises(ValueError, match="3-D"):
        fn(rgb[..., 0].copy())
    with pytest.raises(ValueError, match="C-contiguous"):
        fn(rgb[:, ::2])
    with pytest.raises(TypeError, match="ndarray"):
        fn(rgb.tolist())


def test_deterministic() -> None:
    rgb = _random_rgb((225, 300), 5)
    for fn in (rgb_to_gray, rgb_to_hsv, rgb_to_lab):
        assert fn(rgb).tobytes() == fn(rgb.copy()).tobytes()
