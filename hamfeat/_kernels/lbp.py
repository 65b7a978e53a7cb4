"""Rotation-invariant uniform local binary patterns (Numba kernels)."""

from __future__ import annotations

import functools

import numba
import numpy as np

from hamfeat._kernels._validate import check_array, check_mask

__all__ = ["lbp_offsets", "lbp_uniform", "masked_code_histogram"]


@functools.lru_cache(maxsize=32)
def lbp_offsets(n_points: int, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Circular sampling offsets ``(rp, cp)`` exactly as skimage computes them.

    skimage's Cython signature takes ``float R`` (C float), so the radius is first
    rounded to float32; then ``rp = round(-R sin(2 pi i / P), 5)``,
    ``cp = round(R cos(2 pi i / P), 5)`` with numpy.  Cached per ``(P, R)``; the
    returned arrays are read-only.
    """
    r32 = float(np.float32(radius))
    ang = 2 * np.pi * np.arange(n_points, dtype=np.double) / n_points
    rp = np.round(-r32 * np.sin(ang), 5)
    cp = np.round(r32 * np.cos(ang), 5)
    rp.setflags(write=False)
    cp.setflags(write=False)
    return rp, cp


@numba.njit(cache=True, nogil=True)
def _lbp_uniform_core(gray: np.ndarray, rp: np.ndarray, cp: np.ndarray, out: np.ndarray) -> None:
    # Row-at-a-time, sample-at-a-time: for a fixed row r and sample i the four source
    # pixels of every column are contiguous slices of the padded image, so the inner
    # loop over columns vectorises (SIMD) while computing, per element, exactly
    # skimage's bilinear_interpolation:
    #   t = x + off; lo = floor(t); hi = ceil(t); w = t - lo
    #   top = (1-wc) a + wc b; bottom = (1-wc) c + wc d; v = (1-wr) top + wr bottom
    # For integer x (|x| < 2**30) and off rounded to 5 decimals, floor(x + off) ==
    # x + floor(off) (x + off never rounds across an integer), so lo/hi are constant
    # shifts per sample; only the weights w depend on x (in their last bits), so they
    # are tabulated per column (cw) and per row (rw).
    h_, w_ = gray.shape
    n_p = rp.shape[0]
    pad = 0
    for i in range(n_p):
        pad = max(pad, int(np.ceil(abs(rp[i]))), int(np.ceil(abs(cp[i]))))
    pad += 1
    wp = w_ + 2 * pad
    # zero-padded float64 copy: skimage samples outside the image as 0 ('C', cval=0)
    img = np.zeros((h_ + 2 * pad) * wp, dtype=np.float64)
    for r in range(h_):
        for c in range(w_):
            img[(r + pad) * wp + c + pad] = gray[r, c]
    rlo = np.empty(n_p, dtype=np.int64)
    rhi = np.empty(n_p, dtype=np.int64)
    clo = np.empty(n_p, dtype=np.int64)
    chi = np.empty(n_p, dtype=np.int64)
    direct = np.empty(n_p, dtype=np.bool_)
    for i in range(n_p):
        rlo[i] = np.int64(np.floor(rp[i]))
        rhi[i] = np.int64(np.ceil(rp[i]))
        clo[i] = np.int64(np.floor(cp[i]))
        chi[i] = np.int64(np.ceil(cp[i]))
        direct[i] = rlo[i] == rhi[i] and clo[i] == chi[i]  # weights are exactly 0
    cw = np.empty((n_p, w_), dtype=np.float64)
    for i in range(n_p):
        for c in range(w_):
            t = c + cp[i]
            cw[i, c] = t - np.floor(t)
    ones = np.empty(w_, dtype=np.int32)
    changes = np.empty(w_, dtype=np.int32)
    prev = np.empty(w_, dtype=np.int32)
    for r in range(h_):
        cen = (r + pad) * wp + pad
        for i in range(n_p):
            t = r + rp[i]
            wr = t - np.floor(t)
            a0 = (r + pad + rlo[i]) * wp + pad + clo[i]
            b0 = (r + pad + rlo[i]) * wp + pad + chi[i]
            c0 = (r + pad + rhi[i]) * wp + pad + clo[i]
            d0 = (r + pad + rhi[i]) * wp + pad + chi[i]
            wc = cw[i]
            if direct[i]:
                for c in range(w_):
                    bit = np.int32(img[a0 + c] - img[cen + c] >= 0)
                    if i == 0:
                        ones[c] = bit
                        changes[c] = 0
                    else:
                        ones[c] += bit
                        changes[c] += bit ^ prev[c]
                    prev[c] = bit
            else:
                for c in range(w_):
                    dc = wc[c]
                    top = (1 - dc) * img[a0 + c] + dc * img[b0 + c]
                    bottom = (1 - dc) * img[c0 + c] + dc * img[d0 + c]
                    v = (1 - wr) * top + wr * bottom
                    bit = np.int32(v - img[cen + c] >= 0)
                    if i == 0:
                        ones[c] = bit
                        changes[c] = 0
                    else:
                        ones[c] += bit
                        changes[c] += bit ^ prev[c]
                    prev[c] = bit
        for c in range(w_):
            out[r, c] = ones[c] if changes[c] <= 2 else n_p + 1


def lbp_uniform(gray: np.ndarray, n_points: int, radius: float) -> np.ndarray:
    """Rotation-invariant uniform LBP codes ("riu2"), equal to skimage's ``'uniform'``.

    For each pixel, ``P`` neighbours on a circle of radius ``R`` are sampled by bilinear
    interpolation (zero outside the image), thresholded against the centre
    (``neighbour - centre >= 0``); the code is the number of ones if the circular
    pattern has at most 2 transitions, else ``P + 1``.  Codes lie in ``[0, P + 1]``.
    Bit-identical to ``skimage.feature.local_binary_pattern(gray, P, R, 'uniform')``
    (same offsets, same per-pixel interpolation arithmetic and order).

    Parameters
    ----------
    gray : ndarray, uint8, shape (H, W), C-contiguous
    n_points : int, 1 <= P <= 254
    radius : float, > 0

    Returns
    -------
    codes : ndarray, uint8, shape (H, W)
    """
    check_array(gray, "gray", np.uint8, 2)
    n_points = int(n_points)
    if not 1 <= n_points <= 254:
        raise ValueError(f"n_points must be in [1, 254], got {n_points}")
    radius = float(radius)
    if not (np.isfinite(radius) and radius > 0):
        raise ValueError(f"radius must be finite and > 0, got {radius}")
    rp, cp = lbp_offsets(n_points, radius)
    out = np.empty(gray.shape, dtype=np.uint8)
    if gray.size:
        _lbp_uniform_core(gray, rp, cp, out)
    return out


@numba.njit(cache=True, nogil=True)
def _code_hist_core(codes: np.ndarray, mask: np.ndarray, counts: np.ndarray) -> int:
    n_bins = counts.shape[0]
    n_bad = 0
    for p in range(codes.shape[0]):
        if mask[p]:
            v = np.int64(codes[p])
            if v < n_bins:
                counts[v] += 1
            else:
                n_bad += 1
    return n_bad


def masked_code_histogram(codes: np.ndarray, mask: np.ndarray, n_bins: int) -> np.ndarray:
    """Counts of each code value ``0 .. n_bins-1`` among the pixels inside ``mask``.

    Parameters
    ----------
    codes : ndarray, uint8 or uint16, shape (H, W), C-contiguous
    mask : ndarray, bool, shape (H, W), C-contiguous
    n_bins : int, >= 1  (``P + 2`` for :func:`lbp_uniform` codes)

    Returns
    -------
    counts : ndarray, int64, shape (n_bins,)

    Raises
    ------
    ValueError
        If a masked pixel has a code ``>= n_bins``.
    """
    check_array(codes, "codes", (np.uint8, np.uint16), 2)
    check_mask(mask, codes.shape)
    n_bins = int(n_bins)
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    counts = np.zeros(n_bins, dtype=np.int64)
    n_bad = _code_hist_core(codes.reshape(-1), mask.reshape(-1), counts)
    if n_bad:
        raise ValueError(f"{n_bad} masked code(s) are >= n_bins={n_bins}")
    return counts
