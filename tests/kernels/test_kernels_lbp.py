"""Reference tests for hamfeat._kernels.lbp (vs skimage local_binary_pattern)."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.feature import local_binary_pattern

from conftest import real_pairs
from hamfeat._kernels.lbp import lbp_uniform, masked_code_histogram, masked_lbp_histogram

N_REAL = 3
# Exact equality is required (same offsets, same interpolation arithmetic and order).
PR = [(8, 1), (8, 1.5), (16, 2), (24, 3), (8, 2.3), (4, 1), (12, 1.1), (1, 1)]


def _real_gray_masks(n: int = N_REAL) -> list[tuple[np.ndarray, np.ndarray]]:
    return real_pairs(n, gray=True)


def _ref(g: np.ndarray, p: int, r: float) -> np.ndarray:
    return local_binary_pattern(g, p, r, method="uniform")


@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (3, 7), (5, 1), (40, 33)])
@pytest.mark.parametrize(("p", "r"), PR)
def test_lbp_random_exact(shape, p, r) -> None:
    rng = np.random.default_rng(shape[0] * 100 + p)
    g = rng.integers(0, 256, shape, dtype=np.uint8)
    ours = lbp_uniform(g, p, r)
    assert ours.dtype == np.uint8 and ours.shape == shape
    np.testing.assert_array_equal(ours, _ref(g, p, r))


def test_lbp_flat_and_ties() -> None:
    # many exact ties (neighbour == centre) and smooth ramps stress the >= 0 rule
    g = np.full((12, 14), 77, np.uint8)
    g[4:8, 5:9] = 78
    ramp = np.add.outer(np.arange(20), np.arange(25)).astype(np.uint8)
    for p, r in PR:
        np.testing.assert_array_equal(lbp_uniform(g, p, r), _ref(g, p, r))
        np.testing.assert_array_equal(lbp_uniform(ramp, p, r), _ref(ramp, p, r))


def test_lbp_real_exact() -> None:
    for g, _ in _real_gray_masks():
        for p, r in [(8, 1), (16, 2), (24, 3)]:
            ours = lbp_uniform(g, p, r)
            np.testing.assert_array_equal(ours, _ref(g, p, r))
            assert ours.max() <= p + 1


def test_lbp_contracts() -> None:
    g = np.zeros((5, 5), np.uint8)
    with pytest.raises(TypeError, match="uint8"):
        lbp_uniform(g.astype(np.float64), 8, 1)
    with pytest.raises(ValueError, match="n_points"):
        lbp_uniform(g, 0, 1)
    with pytest.raises(ValueError, match="radius"):
        lbp_uniform(g, 8, 0)


def test_code_histogram() -> None:
    rng = np.random.default_rng(7)
    codes = rng.integers(0, 10, (31, 29), dtype=np.uint8)
    masks = (rng.random(codes.shape) < 0.4, np.zeros(codes.shape, bool), np.ones(codes.shape, bool))
    for m in masks:
        ours = masked_code_histogram(codes, m, 10)
        assert ours.dtype == np.int64
        np.testing.assert_array_equal(ours, np.bincount(codes[m], minlength=10))
    with pytest.raises(ValueError, match="n_bins"):
        masked_code_histogram(codes, np.ones(codes.shape, bool), 9)
    # a code >= n_bins outside the mask is fine
    m = codes < 9
    ref = np.bincount(codes[m], minlength=9)
    np.testing.assert_array_equal(masked_code_histogram(codes, m, 9), ref)


def test_code_histogram_real() -> None:
    for g, m in _real_gray_masks():
        codes = lbp_uniform(g, 8, 1)
        np.testing.assert_array_equal(
            masked_code_histogram(codes, m, 10), np.bincount(codes[m], minlength=10)
        )


@pytest.mark.parametrize(("p", "r"), PR)
def test_masked_lbp_histogram_random(p, r) -> None:
    rng = np.random.default_rng(p * 10 + int(r * 10))
    for shape in [(1, 1), (3, 7), (40, 33)]:
        g = rng.integers(0, 256, shape, dtype=np.uint8)
        masks = (rng.random(shape) < 0.4, np.zeros(shape, bool), np.ones(shape, bool))
        for m in masks:
            ours = masked_lbp_histogram(g, m, p, r)
            assert ours.dtype == np.int64 and ours.shape == (p + 2,)
            ref = np.bincount(_ref(g, p, r)[m].astype(np.int64), minlength=p + 2)
            np.testing.assert_array_equal(ours, ref)


def test_masked_lbp_histogram_real() -> None:
    for g, m in _real_gray_masks():
        for p, r in [(8, 1), (8, 2), (8, 3), (16, 2), (24, 3)]:
            ref = np.bincount(_ref(g, p, r)[m].astype(np.int64), minlength=p + 2)
            np.testing.assert_array_equal(masked_lbp_histogram(g, m, p, r), ref)


def test_masked_lbp_histogram_contracts() -> None:
    g = np.zeros((5, 5), np.uint8)
    with pytest.raises(ValueError, match="shape"):
        masked_lbp_histogram(g, np.ones((5, 4), bool), 8, 1)
    with pytest.raises(TypeError, match="bool"):
        masked_lbp_histogram(g, np.ones((5, 5), np.uint8), 8, 1)
    with pytest.raises(ValueError, match="radius"):
        masked_lbp_histogram(g, np.ones((5, 5), bool), 8, -1)
