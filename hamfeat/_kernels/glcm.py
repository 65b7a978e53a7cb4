"""Masked grey-level co-occurrence matrices and Haralick features (Numba kernels)."""

from __future__ import annotations

import functools
import math

import numba
import numpy as np

from hamfeat._kernels._validate import check_array, check_mask

__all__ = ["HARALICK_PROPS", "glcm", "glcm_offsets", "haralick", "quantize"]

#: Order of the first axis of :func:`haralick`'s output.
HARALICK_PROPS: tuple[str, ...] = (
    "contrast",
    "dissimilarity",
    "homogeneity",
    "asm",
    "energy",
    "correlation",
    "entropy",
    "variance",
    "sum_average",
    "sum_variance",
    "sum_entropy",
    "difference_variance",
    "difference_entropy",
    "imc1",
    "imc2",
    "cluster_shade",
    "cluster_prominence",
    "max_probability",
    "mean",
)

# --------------------------------------------------------------------------- quantize


@numba.njit(cache=True, nogil=True)
def _quantize_core(flat: np.ndarray, levels: int, out: np.ndarray) -> None:
    for p in range(flat.shape[0]):
        out[p] = np.uint8((np.int32(flat[p]) * levels) >> 8)


def quantize(gray: np.ndarray, levels: int) -> np.ndarray:
    """Uniformly quantise uint8 grey levels to ``levels`` bins: ``gray * levels // 256``.

    Parameters
    ----------
    gray : ndarray, uint8, 2-D, C-contiguous
    levels : int, 1 <= levels <= 256

    Returns
    -------
    q : ndarray, uint8, same shape, values in ``[0, levels)``
    """
    check_array(gray, "gray", np.uint8, 2)
    levels = int(levels)
    if not 1 <= levels <= 256:
        raise ValueError(f"levels must be in [1, 256], got {levels}")
    out = np.empty_like(gray)
    _quantize_core(gray.reshape(-1), levels, out.reshape(-1))
    return out


# --------------------------------------------------------------------------- GLCM


def _sk_round(x: float) -> int:
    return int(x + 0.5) if x > 0.0 else int(x - 0.5)


def glcm_offsets(distances: np.ndarray, angles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer (row, col) pixel offsets used by ``skimage.feature.graycomatrix``.

    ``drow = round(sin(angle) * d)``, ``dcol = round(cos(angle) * d)`` where ``round``
    is skimage's ``_shared.interpolation.round``: ``trunc(x + 0.5)`` for ``x > 0``,
    ``trunc(x - 0.5)`` otherwise (half away from zero, *after* the float addition, so
    ``sin(pi/6) = 0.49999999999999994`` rounds to 1).  Computed with :mod:`math` (the
    C library ``sin``/``cos`` that skimage's Cython uses), not numpy's SIMD versions.

    Returns
    -------
    drow, dcol : ndarray, int64, shape (n_dist, n_angle)
    """
    drow = np.empty((len(distances), len(angles)), dtype=np.int64)
    dcol = np.empty_like(drow)
    for i, d in enumerate(distances):
        for j, a in enumerate(angles):
            drow[i, j] = _sk_round(math.sin(float(a)) * float(d))
            dcol[i, j] = _sk_round(math.cos(float(a)) * float(d))
    return drow, dcol


@functools.lru_cache(maxsize=64)
def _cached_offsets(distances: tuple, angles: tuple) -> tuple[np.ndarray, np.ndarray]:
    drow, dcol = glcm_offsets(np.array(distances, np.int64), np.array(angles, np.float64))
    drow.setflags(write=False)
    dcol.setflags(write=False)
    return drow, dcol


@numba.njit(cache=True, nogil=True)
def _count_pairs(
    code: np.ndarray,
    rel: int,
    h_: int,
    w_: int,
    wp: int,
    pad: int,
    l1: int,
    n_cells: int,
    acc: np.ndarray,
) -> None:
    # acc: int32 (4 * n_cells,); sub-table (c & 3) breaks same-bin store/load chains.
    # Row slices indexed by the range variable and unsigned index arithmetic: no
    # negative-index wraparound code in the hot loop.
    ul1 = np.uint32(l1)
    ucells = np.uint32(n_cells)
    for r in range(h_):
        base = (r + pad) * wp + pad
        a = code[base : base + w_]
        b = code[base + rel : base + rel + w_]
        for c in range(w_):
            k = np.uint32(c & 3) * ucells + np.uint32(a[c]) * ul1 + np.uint32(b[c])
            acc[k] += 1


@numba.njit(cache=True, nogil=True)
def _glcm_core(
    q: np.ndarray,
    mask: np.ndarray,
    drow: np.ndarray,
    dcol: np.ndarray,
    levels: int,
    symmetric: bool,
    out: np.ndarray,
) -> None:
    # Branch-free counting.  The image is copied once into a padded uint8 "code" plane,
    # code = q + 1 inside the mask and 0 outside the mask or the image, so every pair
    # (p, p + offset) is counted into an (L+1) x (L+1) table without any test and the
    # row/column 0 (pairs touching a non-mask pixel) are simply ignored at the end.
    # Consecutive pixels often hit the same bin; interleaving 4 sub-tables by column
    # breaks that store->load dependency chain.  (levels <= 255 here; 256 levels use
    # _glcm_core_wide.)
    h_, w_ = q.shape
    n_d, n_a = drow.shape
    n_off = n_d * n_a
    pad = 0
    for k in range(n_off):
        pad = max(pad, min(abs(drow.flat[k]), h_), min(abs(dcol.flat[k]), w_))
    hp = h_ + 2 * pad
    wp = w_ + 2 * pad
    code = np.zeros(hp * wp, dtype=np.uint8)
    one = np.uint8(1)
    for r in range(h_):
        dst = code[(r + pad) * wp + pad : (r + pad) * wp + pad + w_]
        qr = q[r]
        mr = mask[r]
        for c in range(w_):
            dst[c] = (qr[c] + one) * np.uint8(mr[c])
    _glcm_tables(code, h_, w_, wp, pad, drow, dcol, levels, symmetric, out)


@numba.njit(cache=True, nogil=True)
def _glcm_core_wide(
    q: np.ndarray,
    mask: np.ndarray,
    drow: np.ndarray,
    dcol: np.ndarray,
    levels: int,
    symmetric: bool,
    out: np.ndarray,
) -> None:
    # as _glcm_core with a uint16 code plane (q + 1 can be 256)
    h_, w_ = q.shape
    n_d, n_a = drow.shape
    pad = 0
    for k in range(n_d * n_a):
        pad = max(pad, min(abs(drow.flat[k]), h_), min(abs(dcol.flat[k]), w_))
    hp = h_ + 2 * pad
    wp = w_ + 2 * pad
    code = np.zeros(hp * wp, dtype=np.uint16)
    for r in range(h_):
        base = (r + pad) * wp + pad
        for c in range(w_):
            code[base + c] = (np.uint16(q[r, c]) + 1) if mask[r, c] else 0
    _glcm_tables(code, h_, w_, wp, pad, drow, dcol, levels, symmetric, out)


@numba.njit(cache=True, nogil=True)
def _glcm_tables(
    code: np.ndarray,
    h_: int,
    w_: int,
    wp: int,
    pad: int,
    drow: np.ndarray,
    dcol: np.ndarray,
    levels: int,
    symmetric: bool,
    out: np.ndarray,
) -> None:
    n_d, n_a = drow.shape
    l1 = levels + 1
    n_cells = l1 * l1
    buf = np.empty(4 * n_cells, dtype=np.int32)  # 4 column-interleaved sub-tables
    for di in range(n_d):
        for ai in range(n_a):
            oy = drow[di, ai]
            ox = dcol[di, ai]
            buf[:] = 0
            if abs(oy) < h_ and abs(ox) < w_:  # else the partner is never in the image
                _count_pairs(code, oy * wp + ox, h_, w_, wp, pad, l1, n_cells, buf)
            for i in range(levels):
                for j in range(levels):
                    v = 0
                    for cp in range(4):
                        v += buf[cp * n_cells + (i + 1) * l1 + (j + 1)]
                        if symmetric:
                            v += buf[cp * n_cells + (j + 1) * l1 + (i + 1)]
                    out[i, j, di, ai] = v


def glcm(
    q: np.ndarray,
    mask: np.ndarray,
    distances: np.ndarray,
    angles: np.ndarray,
    levels: int,
    symmetric: bool,
) -> np.ndarray:
    """Masked grey-level co-occurrence counts.

    A pair ``(p1, p2 = p1 + offset)`` is counted in ``out[q[p1], q[p2], d, a]`` only if
    both pixels are inside the image **and** inside the mask.  Offsets follow
    ``skimage.feature.graycomatrix`` exactly (see :func:`glcm_offsets`); with an
    all-True mask the result equals
    ``graycomatrix(q, distances, angles, levels=levels, symmetric=symmetric)``
    (as float64).  ``symmetric=True`` adds the transpose (each pair counted both ways).

    Parameters
    ----------
    q : ndarray, uint8, shape (H, W), C-contiguous, all values < ``levels``
    mask : ndarray, bool, shape (H, W), C-contiguous
    distances : array-like of int, 1-D, >= 0
    angles : array-like of float, 1-D, radians
    levels : int, 1 <= levels <= 256
    symmetric : bool

    Returns
    -------
    counts : ndarray, float64, shape (levels, levels, n_dist, n_angle)
    """
    check_array(q, "q", np.uint8, 2)
    check_mask(mask, q.shape)
    distances = np.asarray(distances)
    angles = np.asarray(angles, dtype=np.float64)
    if distances.ndim != 1 or angles.ndim != 1:
        raise ValueError("distances and angles must be 1-D")
    if not np.issubdtype(distances.dtype, np.integer):
        raise TypeError(f"distances must be integers, got dtype {distances.dtype}")
    if np.any(distances < 0):
        raise ValueError("distances must be >= 0")
    levels = int(levels)
    if not 1 <= levels <= 256:
        raise ValueError(f"levels must be in [1, 256], got {levels}")
    if q.size and int(q.max()) >= levels:
        raise ValueError(f"q has values >= levels ({int(q.max())} >= {levels})")
    drow, dcol = _cached_offsets(tuple(distances.tolist()), tuple(angles.tolist()))
    out = np.empty((levels, levels, drow.shape[0], drow.shape[1]), dtype=np.float64)
    core = _glcm_core if levels < 256 else _glcm_core_wide
    core(q, mask, drow, dcol, levels, bool(symmetric), out)
    return out


# --------------------------------------------------------------------------- Haralick


@numba.njit(cache=True, nogil=True)
def _xlogx_sum(p: np.ndarray) -> float:
    s = 0.0
    for k in range(p.shape[0]):
        if p[k] > 0.0:
            s -= p[k] * np.log(p[k])
    return s


@numba.njit(cache=True, nogil=True)
def _haralick_core(counts: np.ndarray, out: np.ndarray) -> None:
    n_lev, _, n_d, n_a = counts.shape
    p = np.empty((n_lev, n_lev), dtype=np.float64)
    px = np.empty(n_lev, dtype=np.float64)
    py = np.empty(n_lev, dtype=np.float64)
    psum = np.empty(2 * n_lev - 1, dtype=np.float64)
    pdiff = np.empty(n_lev, dtype=np.float64)
    for di in range(n_d):
        for ai in range(n_a):
            total = 0.0
            for i in range(n_lev):
                for j in range(n_lev):
                    total += counts[i, j, di, ai]
            if total == 0.0:
                out[:, di, ai] = np.nan
                continue
            px[:] = 0.0
            py[:] = 0.0
            psum[:] = 0.0
            pdiff[:] = 0.0
            contrast = 0.0
            dissim = 0.0
            homog = 0.0
            asm = 0.0
            entropy = 0.0
            pmax = 0.0
            for i in range(n_lev):
                for j in range(n_lev):
                    v = counts[i, j, di, ai] / total
                    p[i, j] = v
                    px[i] += v
                    py[j] += v
                    psum[i + j] += v
                    d = abs(i - j)
                    pdiff[d] += v
                    contrast += v * (d * d)
                    dissim += v * d
                    homog += v / (1.0 + d * d)
                    asm += v * v
                    if v > 0.0:
                        entropy -= v * np.log(v)
                    if v > pmax:
                        pmax = v
            mu_x = 0.0
            mu_y = 0.0
            for i in range(n_lev):
                mu_x += i * px[i]
                mu_y += i * py[i]
            var_x = 0.0
            var_y = 0.0
            for i in range(n_lev):
                var_x += (i - mu_x) ** 2 * px[i]
                var_y += (i - mu_y) ** 2 * py[i]
            cov = 0.0
            shade = 0.0
            prom = 0.0
            hxy1 = 0.0
            hxy2 = 0.0
            for i in range(n_lev):
                for j in range(n_lev):
                    v = p[i, j]
                    di_ = i - mu_x
                    dj_ = j - mu_y
                    cov += v * di_ * dj_
                    t = di_ + dj_
                    t2 = t * t
                    shade += v * t2 * t
                    prom += v * t2 * t2
                    pp = px[i] * py[j]
                    if pp > 0.0:
                        lpp = np.log(pp)
                        hxy1 -= v * lpp
                        hxy2 -= pp * lpp
            # sum / difference distributions
            s_avg = 0.0
            for k in range(2 * n_lev - 1):
                s_avg += k * psum[k]
            s_var = 0.0
            for k in range(2 * n_lev - 1):
                s_var += (k - s_avg) ** 2 * psum[k]
            d_avg = 0.0
            for k in range(n_lev):
                d_avg += k * pdiff[k]
            d_var = 0.0
            for k in range(n_lev):
                d_var += (k - d_avg) ** 2 * pdiff[k]
            s_ent = _xlogx_sum(psum)
            d_ent = _xlogx_sum(pdiff)
            hx = _xlogx_sum(px)
            hy = _xlogx_sum(py)
            std_x = np.sqrt(var_x)
            std_y = np.sqrt(var_y)
            if std_x < 1e-15 or std_y < 1e-15:
                corr = 1.0  # skimage's convention for a degenerate marginal
            else:
                corr = cov / (std_x * std_y)
            hmax = max(hx, hy)
            imc1 = (entropy - hxy1) / hmax if hmax > 0.0 else 0.0
            imc2 = np.sqrt(max(0.0, 1.0 - np.exp(-2.0 * (hxy2 - entropy))))
            out[0, di, ai] = contrast
            out[1, di, ai] = dissim
            out[2, di, ai] = homog
            out[3, di, ai] = asm
            out[4, di, ai] = np.sqrt(asm)
            out[5, di, ai] = corr
            out[6, di, ai] = entropy
            out[7, di, ai] = var_x
            out[8, di, ai] = s_avg
            out[9, di, ai] = s_var
            out[10, di, ai] = s_ent
            out[11, di, ai] = d_var
            out[12, di, ai] = d_ent
            out[13, di, ai] = imc1
            out[14, di, ai] = imc2
            out[15, di, ai] = shade
            out[16, di, ai] = prom
            out[17, di, ai] = pmax
            out[18, di, ai] = mu_x


def haralick(counts: np.ndarray) -> np.ndarray:
    """Haralick texture properties of each (distance, angle) co-occurrence slice.

    Each slice ``counts[:, :, d, a]`` is normalised to probabilities ``p(i, j)``
    (0-based grey levels ``i, j``).  With ``px, py`` the marginals, ``mu_x, mu_y``
    and ``s_x, s_y`` their means and standard deviations, ``p_{x+y}(k)`` (k = i+j,
    0..2L-2) and ``p_{x-y}(k)`` (k = |i-j|, 0..L-1), and natural logarithms
    throughout (``0 log 0 = 0``):

    ==================== ==========================================================
    contrast             sum p (i-j)^2
    dissimilarity        sum p |i-j|
    homogeneity          sum p / (1 + (i-j)^2)              (skimage's definition)
    asm                  sum p^2
    energy               sqrt(asm)
    correlation          sum p (i-mu_x)(j-mu_y) / (s_x s_y); 1.0 if s_x or s_y
                         < 1e-15 (skimage's convention)
    entropy              HXY = -sum p ln p
    variance             sum p (i - mu_x)^2 (Haralick f4, = skimage 'variance')
    sum_average          sum_k k p_{x+y}(k)                 (0-based k; +2 for 1-based)
    sum_variance         sum_k (k - sum_average)^2 p_{x+y}(k) (corrected f7, not the
                         paper's typo using sum_entropy)
    sum_entropy          -sum_k p_{x+y} ln p_{x+y}
    difference_variance  sum_k (k - mu_d)^2 p_{x-y}(k), mu_d = sum_k k p_{x-y}(k)
                         (variance of |i-j|)
    difference_entropy   -sum_k p_{x-y} ln p_{x-y}
    imc1                 (HXY - HXY1) / max(HX, HY); 0.0 if max(HX, HY) == 0
    imc2                 sqrt(1 - exp(-2 (HXY2 - HXY))), argument clipped at 0
    cluster_shade        sum p (i + j - mu_x - mu_y)^3
    cluster_prominence   sum p (i + j - mu_x - mu_y)^4
    max_probability      max p
    mean                 mu_x (= skimage 'mean')
    ==================== ==========================================================

    with ``HX = -sum px ln px``, ``HY`` likewise, ``HXY1 = -sum p ln(px(i) py(j))``,
    ``HXY2 = -sum px(i) py(j) ln(px(i) py(j))``.

    Parameters
    ----------
    counts : ndarray, float64, shape (L, L, n_dist, n_angle), C-contiguous
        Non-negative co-occurrence counts (e.g. from :func:`glcm`).

    Returns
    -------
    props : ndarray, float64, shape (len(HARALICK_PROPS), n_dist, n_angle)
        In the order of :data:`HARALICK_PROPS`.  A slice with no pairs gives NaN for
        every property.
    """
    check_array(counts, "counts", np.float64, 4)
    if counts.shape[0] != counts.shape[1] or counts.shape[0] < 1:
        raise ValueError(f"counts must be (L, L, D, A), got shape {counts.shape}")
    out = np.empty((len(HARALICK_PROPS), counts.shape[2], counts.shape[3]), dtype=np.float64)
    _haralick_core(counts, out)
    return out
