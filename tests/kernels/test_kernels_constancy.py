"""Shades-of-Gray and palette kernels against plain NumPy references."""

from __future__ import annotations

import numpy as np
import pytest

from hamfeat._kernels.constancy import shades_of_gray
from hamfeat._kernels.palette import nearest_colour_counts


def sog_reference(rgb: np.ndarray, p: float) -> np.ndarray:
    x = rgb.astype(np.float64) / 255
    e = np.mean(x.reshape(-1, 3) ** p, axis=0) ** (1 / p)
    gain = np.linalg.norm(e) / (np.sqrt(3) * e)
    return np.clip(np.floor(rgb * gain + 0.5), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("p", [1.0, 6.0])
def test_shades_of_gray_matches_numpy(seed: int, p: float) -> None:
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    rgb[..., 0] = rgb[..., 0] // 2 + 100  # a colour cast
    out = shades_of_gray(rgb, p)
    ref = sog_reference(rgb, p)
    # identical but for ties at .5 that float summation order can move by one level
    assert np.abs(out.astype(int) - ref).max() <= 1
    assert (out == ref).mean() > 0.999


def test_shades_of_gray_neutralises_a_cast(shared_data) -> None:
    from hamfeat.imageio import read_image, to_canonical

    rgb = to_canonical(read_image(shared_data / "ham10000" / "images" / "ISIC_0024306.jpg"))
    cast = np.clip(rgb * np.array([1.0, 0.8, 0.6]), 0, 255).astype(np.uint8)
    a, b = shades_of_gray(rgb), shades_of_gray(cast)

    def chroma(x: np.ndarray) -> np.ndarray:  # brightness-free colour
        x = x.astype(np.float64) + 1
        return x / x.sum(axis=2, keepdims=True)

    # the cast is mostly removed: corrected chromaticities differ far less than the inputs'
    assert np.abs(chroma(a) - chroma(b)).mean() < 0.2 * np.abs(chroma(rgb) - chroma(cast)).mean()
    assert np.array_equal(shades_of_gray(rgb), a)  # deterministic


def test_shades_of_gray_black_image() -> None:
    out = shades_of_gray(np.zeros((20, 20, 3), np.uint8))
    assert (out == 0).all()
    with pytest.raises(TypeError):
        shades_of_gray(np.zeros((20, 20, 3), np.float32))


def test_nearest_colour_counts_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    lab = rng.uniform(-50, 100, (30, 40, 3)).astype(np.float32)
    mask = rng.random((30, 40)) < 0.6
    refs = rng.uniform(-20, 80, (6, 3))
    d = np.linalg.norm(lab[mask][:, None, :].astype(np.float64) - refs[None], axis=2)
    best = d.argmin(axis=1)
    best[d.min(axis=1) >= 30] = 6
    ref = np.bincount(best, minlength=7)
    np.testing.assert_array_equal(nearest_colour_counts(lab, mask, refs, 30.0), ref)
