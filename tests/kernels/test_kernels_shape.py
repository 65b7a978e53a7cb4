"""Reference tests for hamfeat._kernels.shape (vs an OpenCV warpAffine reflection)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from _paths import SHARED
from hamfeat._kernels.shape import principal_axis_asymmetry

HAM = SHARED / "ham10000"
N_REAL = 8
# OpenCV's INTER_NEAREST rounds the source coordinate in 1/1024 fixed point, we round
# in float64: the two nearest-pixel reflections differ on a thin rim only.
REAL_ATOL = 0.02
ROTATED_ELLIPSE_MAX = 0.03  # discretisation of a symmetric but rotated shape


def _real_masks(n: int = N_REAL) -> list[np.ndarray]:
    if not (HAM / "masks").is_dir():
        pytest.skip(f"real masks not found under {HAM} (set HAMFEAT_SHARED_DATA)")
    out = []
    for mp in sorted((HAM / "masks").glob("ISIC_*_segmentation.png"))[:n]:
        m = cv2.imread(str(mp), cv2.IMREAD_GRAYSCALE)
        m = cv2.resize(m, (300, 225), interpolation=cv2.INTER_NEAREST) > 127
        out.append(np.ascontiguousarray(m))
    if not out:
        pytest.skip("no masks found")
    return out


def _ref(mask: np.ndarray) -> np.ndarray:
    """Reflect with cv2.warpAffine about the principal axes from cv2.moments."""
    m8 = mask.astype(np.uint8)
    mo = cv2.moments(m8, binaryImage=True)
    area = mo["m00"]
    cx, cy = mo["m10"] / area, mo["m01"] / area
    theta = 0.5 * np.arctan2(2 * mo["mu11"], mo["mu20"] - mo["mu02"])
    res = []
    for ang in (theta, theta + np.pi / 2):
        u = np.array([np.cos(ang), np.sin(ang)])
        refl = 2 * np.outer(u, u) - np.eye(2)  # reflection about the line along u
        c = np.array([cx, cy])
        mat = np.hstack([refl, (c - refl @ c)[:, None]])
        warped = cv2.warpAffine(
            m8, mat, (mask.shape[1], mask.shape[0]), flags=cv2.INTER_NEAREST,
            borderMode=cv2.BORDER_CONSTANT, borderValue=0,
        )
        res.append(1.0 - np.logical_and(mask, warped > 0).sum() / area)
    return np.array(res)


def _ellipse(shape, center, axes, angle) -> np.ndarray:
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    t = np.deg2rad(angle)
    dx, dy = xx - center[0], yy - center[1]
    u = dx * np.cos(t) + dy * np.sin(t)
    v = -dx * np.sin(t) + dy * np.cos(t)
    return np.ascontiguousarray((u / axes[0]) ** 2 + (v / axes[1]) ** 2 <= 1.0)


def test_empty_and_tiny() -> None:
    assert np.isnan(principal_axis_asymmetry(np.zeros((5, 6), bool))).all()
    one = np.zeros((1, 1), bool)
    one[0, 0] = True
    np.testing.assert_array_equal(principal_axis_asymmetry(one), [0.0, 0.0])
    sq = np.zeros((2, 2), bool)
    sq[:] = True
    np.testing.assert_array_equal(principal_axis_asymmetry(sq), [0.0, 0.0])


def test_axis_aligned_ellipse_is_exactly_symmetric() -> None:
    for axes in [(40, 20), (15, 35), (30, 30)]:
        m = _ellipse((101, 121), (60, 50), axes, 0)
        np.testing.assert_array_equal(principal_axis_asymmetry(m), [0.0, 0.0])


def test_rotated_ellipse_nearly_symmetric() -> None:
    for angle in (17, 30, 45, 60, 123):
        m = _ellipse((225, 300), (151.3, 110.7), (80, 35), angle)
        out = principal_axis_asymmetry(m)
        assert (out < ROTATED_ELLIPSE_MAX).all(), (angle, out)


def test_asymmetric_shapes() -> None:
    # a half-disc is symmetric about one principal axis only
    m = _ellipse((101, 101), (50, 50), (40, 40), 0)
    m[:, 51:] = False
    out = principal_axis_asymmetry(m)
    assert out.min() < 0.02 and out.max() > 0.1, out
    np.testing.assert_allclose(out, _ref(m), atol=REAL_ATOL)
    # union of two offset discs of different size: asymmetric about the minor axis
    m2 = _ellipse((120, 200), (60, 60), (40, 40), 0) | _ellipse((120, 200), (120, 60), (20, 20), 0)
    out2 = principal_axis_asymmetry(m2)
    assert out2[0] < 0.02 and out2[1] > 0.1, out2
    np.testing.assert_allclose(out2, _ref(m2), atol=REAL_ATOL)


def test_random_blobs_vs_warpaffine() -> None:
    rng = np.random.default_rng(0)
    for _ in range(10):
        m = np.zeros((225, 300), np.uint8)
        for _ in range(4):
            c = (int(rng.integers(100, 200)), int(rng.integers(70, 150)))
            ax = (int(rng.integers(10, 60)), int(rng.integers(10, 60)))
            cv2.ellipse(m, c, ax, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        mb = np.ascontiguousarray(m > 0)
        ours = principal_axis_asymmetry(mb)
        assert ((ours >= 0) & (ours <= 1)).all()
        np.testing.assert_allclose(ours, _ref(mb), atol=REAL_ATOL)


def test_real_masks_vs_warpaffine() -> None:
    for m in _real_masks():
        if not m.any():
            continue
        ours = principal_axis_asymmetry(m)
        ref = _ref(m)
        assert np.abs(ours - ref).max() < REAL_ATOL, (ours, ref)


def test_contracts() -> None:
    with pytest.raises(TypeError, match="bool"):
        principal_axis_asymmetry(np.zeros((3, 3), np.uint8))
    with pytest.raises(ValueError, match="2-D"):
        principal_axis_asymmetry(np.zeros((3, 3, 1), bool))
