"""Reference tests for hamfeat._kernels.glcm (vs skimage graycomatrix/graycoprops, NumPy)."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.feature import graycomatrix, graycoprops

from conftest import real_pairs
from hamfeat._kernels.glcm import HARALICK_PROPS, glcm, haralick, quantize

N_REAL = 3
PROPS_RTOL = 1e-10  # different summation order than skimage / the NumPy reference
PROPS_ATOL = 1e-12

ANGLES = np.array(
    [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4, np.pi, np.pi / 6, -np.pi / 6, 2 * np.pi / 3, 5.0]
)
DISTANCES = np.array([0, 1, 2, 3, 5])
SK_PROPS = ["contrast", "dissimilarity", "homogeneity", "ASM", "energy", "correlation",
            "mean", "variance", "entropy"]


def _real_gray_masks(n: int = N_REAL) -> list[tuple[np.ndarray, np.ndarray]]:
    return real_pairs(n, gray=True)


def _offsets_ref(d: float, a: float) -> tuple[int, int]:
    # skimage's rounding: half away from zero after the float add
    def rnd(x: float) -> int:
        return int(x + 0.5) if x > 0 else int(x - 0.5)

    return rnd(np.sin(a) * d), rnd(np.cos(a) * d)


def _glcm_ref(q, mask, distances, angles, levels, symmetric) -> np.ndarray:
    """Plain NumPy masked GLCM: shifted views of the image and of the mask."""
    h, w = q.shape
    out = np.zeros((levels, levels, len(distances), len(angles)), dtype=np.float64)
    for di, d in enumerate(distances):
        for ai, a in enumerate(angles):
            oy, ox = _offsets_ref(float(d), float(a))
            r0, r1 = max(0, -oy), min(h, h - oy)
            c0, c1 = max(0, -ox), min(w, w - ox)
            if r0 >= r1 or c0 >= c1:
                continue
            a_q = q[r0:r1, c0:c1]
            b_q = q[r0 + oy:r1 + oy, c0 + ox:c1 + ox]
            ok = mask[r0:r1, c0:c1] & mask[r0 + oy:r1 + oy, c0 + ox:c1 + ox]
            np.add.at(out[:, :, di, ai], (a_q[ok], b_q[ok]), 1)
            if symmetric:
                np.add.at(out[:, :, di, ai], (b_q[ok], a_q[ok]), 1)
    return out


# ----------------------------------------------------------------------------- GLCM


@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (3, 5), (7, 4), (40, 33)])
@pytest.mark.parametrize("levels", [1, 2, 8, 32])
@pytest.mark.parametrize("symmetric", [False, True])
def test_glcm_full_mask_equals_skimage(shape, levels, symmetric) -> None:
    rng = np.random.default_rng(levels * 7 + shape[0])
    q = rng.integers(0, levels, shape, dtype=np.uint8)
    ours = glcm(q, np.ones(shape, bool), DISTANCES, ANGLES, levels, symmetric)
    ref = graycomatrix(q, DISTANCES, ANGLES, levels=levels, symmetric=symmetric)
    assert ours.dtype == np.float64 and ours.shape == ref.shape
    np.testing.assert_array_equal(ours, ref)


def test_glcm_full_mask_levels_256() -> None:
    q = np.random.default_rng(3).integers(0, 256, (20, 30), dtype=np.uint8)
    ref = graycomatrix(q, [1, 4], [0, np.pi / 2], levels=256, symmetric=True)
    ours = glcm(q, np.ones(q.shape, bool), [1, 4], [0, np.pi / 2], 256, True)
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("shape", [(2, 2), (9, 13), (60, 45)])
@pytest.mark.parametrize("symmetric", [False, True])
def test_glcm_masked_vs_numpy(shape, symmetric) -> None:
    rng = np.random.default_rng(shape[0])
    q = rng.integers(0, 8, shape, dtype=np.uint8)
    for m in (rng.random(shape) < 0.5, np.zeros(shape, bool), rng.random(shape) < 0.9):
        ours = glcm(q, m, DISTANCES, ANGLES, 8, symmetric)
        np.testing.assert_array_equal(ours, _glcm_ref(q, m, DISTANCES, ANGLES, 8, symmetric))


def test_glcm_real() -> None:
    angles = np.array([0, np.pi / 4, np.pi / 2, 3 * np.pi / 4])
    for g, m in _real_gray_masks():
        for levels in (8, 32, 64):
            q = quantize(g, levels)
            full = glcm(q, np.ones(q.shape, bool), [1, 2, 3], angles, levels, True)
            ref = graycomatrix(q, [1, 2, 3], angles, levels=levels, symmetric=True)
            np.testing.assert_array_equal(full, ref)
            np.testing.assert_array_equal(
                glcm(q, m, [1, 2, 3], angles, levels, True),
                _glcm_ref(q, m, [1, 2, 3], angles, levels, True),
            )


def test_glcm_contracts() -> None:
    q = np.zeros((4, 4), np.uint8)
    m = np.ones((4, 4), bool)
    q[0, 0] = 8
    with pytest.raises(ValueError, match="levels"):
        glcm(q, m, [1], [0.0], 8, True)
    with pytest.raises(TypeError, match="integers"):
        glcm(q, m, [1.5], [0.0], 16, True)
    with pytest.raises(TypeError, match="uint8"):
        glcm(q.astype(np.int32), m, [1], [0.0], 16, True)


# ----------------------------------------------------------------------------- quantize


def test_quantize() -> None:
    g = np.arange(256, dtype=np.uint8).reshape(16, 16)
    for levels in (1, 2, 7, 8, 32, 100, 256):
        q = quantize(g, levels)
        np.testing.assert_array_equal(q, (g.astype(np.int64) * levels // 256).astype(np.uint8))
        assert q.max() == levels - 1
    with pytest.raises(ValueError):
        quantize(g, 0)


# ----------------------------------------------------------------------------- Haralick


def _haralick_ref(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Straightforward NumPy implementation of the documented formulas."""
    L = counts.shape[0]
    res: dict[str, list] = {k: [] for k in HARALICK_PROPS}
    i, j = np.ogrid[0:L, 0:L]
    for di in range(counts.shape[2]):
        for ai in range(counts.shape[3]):
            c = counts[:, :, di, ai]
            if c.sum() == 0:
                for k in HARALICK_PROPS:
                    res[k].append(np.nan)
                continue
            p = c / c.sum()
            px, py = p.sum(1), p.sum(0)
            k_ = np.arange(L)
            mx, my = (k_ * px).sum(), (k_ * py).sum()
            vx, vy = ((k_ - mx) ** 2 * px).sum(), ((k_ - my) ** 2 * py).sum()
            psum = np.bincount((i + j).ravel(), p.ravel(), minlength=2 * L - 1)
            pdif = np.bincount(np.abs(i - j).ravel(), p.ravel(), minlength=L)

            def ent(x):
                x = x[x > 0]
                return -(x * np.log(x)).sum()

            hxy = ent(p.ravel())
            pxpy = np.outer(px, py)
            nz = pxpy > 0
            hxy1 = -(p[nz] * np.log(pxpy[nz])).sum()
            hxy2 = -(pxpy[nz] * np.log(pxpy[nz])).sum()
            hx, hy = ent(px), ent(py)
            ks = np.arange(2 * L - 1)
            s_avg = (ks * psum).sum()
            d_avg = (k_ * pdif).sum()
            t = (i - mx) + (j - my)
            sx, sy = np.sqrt(vx), np.sqrt(vy)
            vals = {
                "contrast": (p * (i - j) ** 2).sum(),
                "dissimilarity": (p * np.abs(i - j)).sum(),
                "homogeneity": (p / (1.0 + (i - j) ** 2)).sum(),
                "asm": (p**2).sum(),
                "energy": np.sqrt((p**2).sum()),
                "correlation": 1.0 if (sx < 1e-15 or sy < 1e-15)
                else (p * (i - mx) * (j - my)).sum() / (sx * sy),
                "entropy": hxy,
                "variance": vx,
                "sum_average": s_avg,
                "sum_variance": ((ks - s_avg) ** 2 * psum).sum(),
                "sum_entropy": ent(psum),
                "difference_variance": ((k_ - d_avg) ** 2 * pdif).sum(),
                "difference_entropy": ent(pdif),
                "imc1": (hxy - hxy1) / max(hx, hy) if max(hx, hy) > 0 else 0.0,
                "imc2": np.sqrt(max(0.0, 1 - np.exp(-2 * (hxy2 - hxy)))),
                "cluster_shade": (p * t**3).sum(),
                "cluster_prominence": (p * t**4).sum(),
                "max_probability": p.max(),
                "mean": mx,
            }
            for k in HARALICK_PROPS:
                res[k].append(vals[k])
    shape = counts.shape[2:]
    return {k: np.array(v, dtype=np.float64).reshape(shape) for k, v in res.items()}


def _check_haralick(counts: np.ndarray) -> None:
    ours = haralick(counts)
    assert ours.shape == (len(HARALICK_PROPS), *counts.shape[2:])
    ref = _haralick_ref(counts)
    for k, name in enumerate(HARALICK_PROPS):
        np.testing.assert_allclose(
            ours[k], ref[name], rtol=PROPS_RTOL, atol=PROPS_ATOL, err_msg=name
        )
    for sk_name in SK_PROPS:
        sk = graycoprops(counts, sk_name)
        k = HARALICK_PROPS.index(sk_name.lower())
        empty = counts.sum(axis=(0, 1)) == 0
        assert np.isnan(ours[k][empty]).all()
        np.testing.assert_allclose(
            ours[k][~empty], sk[~empty], rtol=PROPS_RTOL, atol=PROPS_ATOL, err_msg=sk_name
        )


def test_haralick_props_order() -> None:
    required = ["contrast", "dissimilarity", "homogeneity", "asm", "energy", "correlation",
                "entropy", "variance", "sum_average", "sum_variance", "sum_entropy",
                "difference_variance", "difference_entropy", "imc1", "imc2", "cluster_shade",
                "cluster_prominence", "max_probability"]
    assert list(HARALICK_PROPS[: len(required)]) == required
    assert len(set(HARALICK_PROPS)) == len(HARALICK_PROPS)


@pytest.mark.parametrize("levels", [2, 8, 32])
@pytest.mark.parametrize("symmetric", [False, True])
def test_haralick_random(levels, symmetric) -> None:
    rng = np.random.default_rng(levels)
    q = rng.integers(0, levels, (40, 50), dtype=np.uint8)
    m = rng.random(q.shape) < 0.7
    _check_haralick(glcm(q, m, [1, 2, 60], ANGLES[:4], levels, symmetric))  # d=60: no pairs


def test_haralick_degenerate() -> None:
    # constant patch: one GLCM cell -> correlation 1 (skimage), imc1 = imc2 = 0
    q = np.full((10, 10), 3, np.uint8)
    counts = glcm(q, np.ones(q.shape, bool), [1], [0.0], 8, True)
    out = haralick(counts)[:, 0, 0]
    d = dict(zip(HARALICK_PROPS, out, strict=True))
    assert d["correlation"] == 1.0 and d["asm"] == 1.0 and d["entropy"] == 0.0
    assert d["imc1"] == 0.0 and d["imc2"] == 0.0 and d["max_probability"] == 1.0
    _check_haralick(counts)
    empty = haralick(np.zeros((4, 4, 1, 2)))
    assert np.isnan(empty).all()


def test_haralick_real() -> None:
    angles = np.array([0, np.pi / 4, np.pi / 2, 3 * np.pi / 4])
    for g, m in _real_gray_masks():
        for levels in (8, 32):
            _check_haralick(glcm(quantize(g, levels), m, [1, 3], angles, levels, True))


def test_haralick_contracts() -> None:
    with pytest.raises(TypeError, match="float64"):
        haralick(np.zeros((4, 4, 1, 1), np.uint32))
    with pytest.raises(ValueError, match="L, L"):
        haralick(np.zeros((4, 3, 1, 1)))
