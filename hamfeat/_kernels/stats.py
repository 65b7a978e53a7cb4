"""Masked statistics: moments, histograms and quantiles (Numba kernels).

A *mask* is always a C-contiguous ``bool`` array of shape ``(H, W)`` matching the
image; only pixels where it is ``True`` contribute.
"""

from __future__ import annotations

import functools
import math

import numba
import numpy as np

from hamfeat._kernels._validate import check_array, check_mask

__all__ = [
    "masked_channel_histograms",
    "masked_histogram",
    "masked_histogram_u8",
    "masked_moments",
    "masked_quantiles_u8",
]

# --------------------------------------------------------------------------- moments


@numba.njit(cache=True, nogil=True)
def _mask_indices(mask: np.ndarray) -> tuple[np.ndarray, int]:
    # Branch-free compaction of the flat indices of True pixels (an unconditional
    # store plus a conditional increment: no mispredictions on ragged masks).
    n_pix = mask.shape[0]
    idx = np.empty(n_pix + 1, dtype=np.int64)
    k = 0
    for p in range(n_pix):
        idx[k] = p
        k += mask[p]
    return idx, k


@numba.njit(cache=True, nogil=True)
def _masked_moments_core(values: np.ndarray, mask: np.ndarray, out: np.ndarray) -> None:
    n_ch = values.shape[1]
    idx, count = _mask_indices(mask)
    if count == 0:
        out[:, :] = np.nan
        return
    for c in range(n_ch):  # channel-outer keeps the accumulators in registers
        # pass 1: mean (float64 accumulation, fixed order)
        s1 = 0.0
        for k in range(count):
            s1 += np.float64(values[idx[k], c])
        mean = s1 / count
        # pass 2: central moments about that mean
        m2 = 0.0
        m3 = 0.0
        m4 = 0.0
        for k in range(count):
            d = np.float64(values[idx[k], c]) - mean
            d2 = d * d
            m2 += d2
            m3 += d2 * d
            m4 += d2 * d2
        v = m2 / count
        out[c, 0] = mean
        out[c, 1] = np.sqrt(v)
        if v > 0.0:
            out[c, 2] = (m3 / count) / (v * np.sqrt(v))
            out[c, 3] = (m4 / count) / (v * v) - 3.0
        else:
            out[c, 2] = np.nan
            out[c, 3] = np.nan


@numba.njit(cache=True, nogil=True)
def _masked_moments3_core(values: np.ndarray, mask: np.ndarray, out: np.ndarray) -> None:
    # _masked_moments_core for 3 channels, channels advanced together: every accumulator
    # receives the same addends in the same (raster) order as there, so the results
    # are bit-identical, but the 3 (pass 1) and 9 (pass 2) dependency chains overlap
    # instead of running one after another (float adds are latency-bound).
    n_pix = mask.shape[0]
    count = 0
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    for p in range(n_pix):
        if mask[p]:
            count += 1
            s0 += np.float64(values[p, 0])
            s1 += np.float64(values[p, 1])
            s2 += np.float64(values[p, 2])
    if count == 0:
        out[:, :] = np.nan
        return
    mu0 = s0 / count
    mu1 = s1 / count
    mu2 = s2 / count
    a2 = a3 = a4 = 0.0
    b2 = b3 = b4 = 0.0
    c2 = c3 = c4 = 0.0
    for p in range(n_pix):
        if mask[p]:
            d = np.float64(values[p, 0]) - mu0
            dd = d * d
            a2 += dd
            a3 += dd * d
            a4 += dd * dd
            d = np.float64(values[p, 1]) - mu1
            dd = d * d
            b2 += dd
            b3 += dd * d
            b4 += dd * dd
            d = np.float64(values[p, 2]) - mu2
            dd = d * d
            c2 += dd
            c3 += dd * d
            c4 += dd * dd
    _moments_row(out, 0, count, mu0, a2, a3, a4)
    _moments_row(out, 1, count, mu1, b2, b3, b4)
    _moments_row(out, 2, count, mu2, c2, c3, c4)


@numba.njit(cache=True, nogil=True)
def _moments_row(
    out: np.ndarray, c: int, count: int, mean: float, m2: float, m3: float, m4: float
) -> None:
    v = m2 / count
    out[c, 0] = mean
    out[c, 1] = np.sqrt(v)
    if v > 0.0:
        out[c, 2] = (m3 / count) / (v * np.sqrt(v))
        out[c, 3] = (m4 / count) / (v * v) - 3.0
    else:
        out[c, 2] = np.nan
        out[c, 3] = np.nan


def masked_moments(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean, std, skewness and excess kurtosis of each channel inside a mask.

    Two-pass algorithm (mean first, then central moments about it) with float64
    accumulation in a fixed order, so results are deterministic.

    Parameters
    ----------
    values : ndarray, float32 or uint8, shape (H, W, C), C-contiguous
        (every value is widened exactly to float64, so a uint8 image gives the same
        result as its float32 copy)
    mask : ndarray, bool, shape (H, W), C-contiguous

    Returns
    -------
    moments : ndarray, float64, shape (C, 4)
        Columns: ``mean``, ``std`` (population, ``ddof=0``), ``skew`` (Fisher-Pearson,
        biased: ``m3 / m2**1.5``, as ``scipy.stats.skew``) and excess ``kurtosis``
        (``m4 / m2**2 - 3``, as ``scipy.stats.kurtosis``).  Empty mask: all NaN.
        Zero variance (``m2 == 0`` exactly, e.g. a constant channel or one pixel):
        ``std = 0`` and skew/kurtosis NaN (undefined; scipy also returns NaN there,
        but scipy additionally flags *nearly* constant data as NaN via a relative
        threshold, which this kernel does not).
    """
    check_array(values, "values", (np.float32, np.uint8), 3)
    check_mask(mask, values.shape[:2])
    n_ch = values.shape[2]
    out = np.empty((n_ch, 4), dtype=np.float64)
    core = _masked_moments3_core if n_ch == 3 else _masked_moments_core
    core(values.reshape(-1, n_ch), mask.reshape(-1), out)
    return out


# --------------------------------------------------------------------------- histograms


_HIST_BLOCK = 2048  # pixels per block of the histogram kernel


@numba.njit(cache=True, nogil=True)
def _masked_histogram_core(
    values: np.ndarray,
    stride: int,
    ch: int,
    mask: np.ndarray,
    edges: np.ndarray,
    counts: np.ndarray,
) -> None:
    # values: contiguous (N * stride,); the pixel values are values[p * stride + ch].
    # Exact and gather-free, so every loop vectorises: with valid = mask & lo <= x <= hi
    # (False for NaN) and C_j = #(valid & x >= e_j), bin k holds C_k - C_{k+1} pixels
    # (half-open [e_k, e_{k+1})) and the last bin C_{n-1} (closed, as x <= hi).  edges
    # have the dtype the values are compared in (float32 edges for float32 values are
    # exact: numpy computes them in float32), so each comparison is numpy's.
    n_bins = edges.shape[0] - 1
    lo = edges[0]
    hi = edges[n_bins]
    n = mask.shape[0]
    xb = np.empty(_HIST_BLOCK, dtype=edges.dtype)
    vb = np.empty(_HIST_BLOCK, dtype=np.int32)
    cum = np.zeros(n_bins, dtype=np.int64)
    for b0 in range(0, n, _HIST_BLOCK):
        m = min(_HIST_BLOCK, n - b0)
        msk = mask[b0 : b0 + m]
        n_in = 0
        for i in range(m):  # cheap (bytes, vectorised): skip blocks outside the mask
            n_in += np.int32(msk[i])
        if n_in == 0:
            continue
        n_valid = 0
        if stride == 1:
            src = values[b0 : b0 + m]
            for i in range(m):
                xb[i] = src[i]
        elif stride == 3:  # constant stride: vectorised de-interleaving loads
            src = values[3 * b0 + ch : 3 * (b0 + m)]
            for i in range(m):
                xb[i] = src[3 * i]
        else:
            src = values[stride * b0 + ch : stride * (b0 + m)]
            for i in range(m):
                xb[i] = src[stride * i]
        for i in range(m):
            x = xb[i]
            v = np.int32(msk[i] & (x >= lo) & (x <= hi))
            vb[i] = v
            n_valid += v
        if n_valid == 0:
            continue
        cum[0] += n_valid
        for j in range(1, n_bins):
            e = edges[j]
            c = np.int32(0)
            for i in range(m):
                c += vb[i] & np.int32(xb[i] >= e)
            cum[j] += c
    for k in range(n_bins - 1):
        counts[k] = cum[k] - cum[k + 1]
    counts[n_bins - 1] = cum[n_bins - 1]


@numba.njit(cache=True, nogil=True)
def _masked_histogram_scatter(
    values: np.ndarray,
    stride: int,
    ch: int,
    mask: np.ndarray,
    edges: np.ndarray,
    counts: np.ndarray,
) -> None:
    # For many bins (the cumulative kernel costs one pass per bin): estimate the bin as
    # int((x - lo) * scale), fix it up against the exact edges (which yields the unique
    # k with edges[k] <= x < edges[k + 1], last bin closed, whatever the estimate) and
    # count into 4 pixel-interleaved sub-tables.
    n_bins = edges.shape[0] - 1
    lo = edges[0]
    hi = edges[n_bins]
    scale = n_bins / (np.float64(hi) - np.float64(lo))
    sub = np.zeros(4 * n_bins, dtype=np.int64)
    for p in range(mask.shape[0]):
        if not mask[p]:
            continue
        x = values[p * stride + ch]
        if not (x >= lo and x <= hi):  # also drops NaN
            continue
        k = int((np.float64(x) - lo) * scale)
        if k > n_bins - 1:
            k = n_bins - 1
        while k > 0 and x < edges[k]:
            k -= 1
        while k < n_bins - 1 and x >= edges[k + 1]:
            k += 1
        sub[(p & 3) * n_bins + k] += 1
    for k in range(n_bins):
        counts[k] = sub[k] + sub[n_bins + k] + sub[2 * n_bins + k] + sub[3 * n_bins + k]


#: Above this many bins masked_histogram counts by scatter, else by cumulative passes.
_CUMULATIVE_MAX_BINS = 16


@functools.lru_cache(maxsize=256)
def _hist_edges(n_bins: int, lo: float, hi: float, dtype: str) -> np.ndarray:
    edge_dtype = np.result_type(lo, hi, np.dtype(dtype))
    if np.issubdtype(edge_dtype, np.integer):  # as numpy does
        edge_dtype = np.result_type(edge_dtype, float)
    edges = np.linspace(lo, hi, n_bins + 1, endpoint=True, dtype=edge_dtype)
    # float32 edges for float32 values (numpy compares those in float32), else float64
    # (exact widening of any other edge dtype; uint8 values compare exactly in float64)
    edges = edges.astype(np.float32 if np.dtype(dtype) == np.float32 else np.float64)
    edges.setflags(write=False)
    return edges


def masked_histogram(
    values: np.ndarray,
    mask: np.ndarray,
    n_bins: int,
    lo: float,
    hi: float,
    channel: int | None = None,
) -> np.ndarray:
    """Histogram of ``values[mask]`` with ``n_bins`` equal bins over ``[lo, hi]``.

    Equal to ``np.histogram(values[mask], bins=n_bins, range=(float(lo), float(hi)))[0]``
    exactly: the bin edges are ``np.linspace(lo, hi, n_bins + 1)`` in numpy's edge
    dtype (``np.result_type(lo, hi, values)``: float32 for float32 values, float64
    otherwise), bins are half-open ``[e_k, e_{k+1})`` except the last which is closed,
    and values outside ``[e_0, e_n]`` (and NaN) are dropped.

    Parameters
    ----------
    values : ndarray, float32, float64 or uint8, shape (H, W) or (H, W, C), C-contiguous
    mask : ndarray, bool, shape (H, W), C-contiguous
    n_bins : int, >= 1
    lo, hi : float, finite, ``lo < hi``
    channel : int, optional
        For ``(H, W, C)`` values (required there): the channel to count, read in place
        (equal to ``np.histogram(values[..., channel][mask], ...)``, no copy).

    Returns
    -------
    counts : ndarray, int64, shape (n_bins,)
    """
    check_array(values, "values", (np.float32, np.float64, np.uint8), _ndim_2_or_3(values))
    check_mask(mask, values.shape[:2])
    n_bins = int(n_bins)
    lo = float(lo)
    hi = float(hi)
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"need finite lo < hi, got lo={lo}, hi={hi}")
    n_ch, ch = 1, 0
    if values.ndim == 3:
        n_ch = values.shape[2]
        if channel is None or not 0 <= int(channel) < n_ch:
            raise ValueError(f"channel must be in [0, {n_ch}) for (H, W, C) values")
        ch = int(channel)
    elif channel is not None:
        raise ValueError("channel is only for (H, W, C) values")
    edges = _hist_edges(n_bins, lo, hi, values.dtype.str)
    counts = np.empty(n_bins, dtype=np.int64)
    core = _masked_histogram_core if n_bins <= _CUMULATIVE_MAX_BINS else _masked_histogram_scatter
    core(values.reshape(-1), n_ch, ch, mask.reshape(-1), edges, counts)
    return counts


def _ndim_2_or_3(values: object) -> int:
    return 3 if isinstance(values, np.ndarray) and values.ndim == 3 else 2


def masked_channel_histograms(
    values: np.ndarray, mask: np.ndarray, ranges: tuple[tuple[float, float, int], ...]
) -> list[np.ndarray]:
    """One histogram per channel of ``values`` inside ``mask`` (channels read in place).

    Element ``c`` of the result equals ``masked_histogram(values, mask, n, lo, hi,
    channel=c)`` with ``(lo, hi, n) = ranges[c]`` (that is, numpy's histogram of
    ``values[..., c][mask]``) exactly.

    Parameters
    ----------
    values : ndarray, float32, float64 or uint8, shape (H, W, C), C-contiguous
    mask : ndarray, bool, shape (H, W), C-contiguous
    ranges : sequence of C ``(lo, hi, n_bins)``

    Returns
    -------
    list of C ndarray, int64, shapes (n_bins_c,)
    """
    check_array(values, "values", (np.float32, np.float64, np.uint8), 3)
    check_mask(mask, values.shape[:2])
    if len(ranges) != values.shape[2]:
        raise ValueError(f"need one (lo, hi, n_bins) per channel, got {len(ranges)}")
    edges = []
    for lo, hi, n_bins in ranges:
        n_bins, lo, hi = int(n_bins), float(lo), float(hi)
        if n_bins < 1:
            raise ValueError(f"n_bins must be >= 1, got {n_bins}")
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"need finite lo < hi, got lo={lo}, hi={hi}")
        edges.append(_hist_edges(n_bins, lo, hi, values.dtype.str))
    flat = values.reshape(-1)
    m = mask.reshape(-1)
    n_ch = len(edges)
    out = []
    for c, e in enumerate(edges):
        counts = np.empty(len(e) - 1, dtype=np.int64)
        few = len(e) - 1 <= _CUMULATIVE_MAX_BINS
        (_masked_histogram_core if few else _masked_histogram_scatter)(flat, n_ch, c, m, e, counts)
        out.append(counts)
    return out


@numba.njit(cache=True, nogil=True)
def _count_u8_core(values: np.ndarray, mask: np.ndarray, counts: np.ndarray) -> None:
    # values: uint8 (N * C,) interleaved channels; counts: int64 (C, 256), zeroed.
    # Branch-free (adds the mask bit); one channel uses 4 pixel-interleaved sub-tables
    # (runs of equal values otherwise chain store->load on one bin); with 3 channels
    # the channels' tables already interleave.
    n_ch = counts.shape[0]
    n = mask.shape[0]
    if n_ch == 1:
        sub = np.zeros(4 * 256, dtype=np.int64)
        for p in range(n):
            sub[np.uint32(p & 3) * np.uint32(256) + np.uint32(values[p])] += mask[p]
        for v in range(256):
            counts[0, v] = sub[v] + sub[256 + v] + sub[512 + v] + sub[768 + v]
    elif n_ch == 3:
        c0 = counts[0]
        c1 = counts[1]
        c2 = counts[2]
        for p in range(n):
            m = mask[p]
            c0[values[3 * p]] += m
            c1[values[3 * p + 1]] += m
            c2[values[3 * p + 2]] += m
    else:
        for p in range(n):
            m = mask[p]
            for c in range(n_ch):
                counts[c, values[p * n_ch + c]] += m


@numba.njit(cache=True, nogil=True)
def _fold_u8_counts(counts256: np.ndarray, n_bins: int, out: np.ndarray) -> None:
    for v in range(256):
        out[(v * n_bins) >> 8] += counts256[v]


def _u8_counts(values_u8: np.ndarray, mask: np.ndarray) -> np.ndarray:
    # (256,) counts for (H, W) values, (C, 256) for (H, W, C)
    check_array(values_u8, "values_u8", np.uint8, _ndim_2_or_3(values_u8))
    check_mask(mask, values_u8.shape[:2])
    n_ch = values_u8.shape[2] if values_u8.ndim == 3 else 1
    counts = np.zeros((n_ch, 256), dtype=np.int64)
    _count_u8_core(values_u8.reshape(-1), mask.reshape(-1), counts)
    return counts if values_u8.ndim == 3 else counts[0]


def masked_histogram_u8(values_u8: np.ndarray, mask: np.ndarray, n_bins: int) -> np.ndarray:
    """Fast histogram of uint8 values inside a mask, ``n_bins`` equal bins over [0, 256).

    Value ``v`` goes to bin ``floor(v * n_bins / 256)``, exactly as
    ``cv2.calcHist([img], [0], mask.astype(np.uint8), [n_bins], [0, 256])``
    (which returns float32 of shape ``(n_bins, 1)``; this returns int64 ``(n_bins,)``).

    Parameters
    ----------
    values_u8 : ndarray, uint8, shape (H, W), C-contiguous
    mask : ndarray, bool, shape (H, W), C-contiguous
    n_bins : int, 1 <= n_bins <= 256

    Returns
    -------
    counts : ndarray, int64, shape (n_bins,)
    """
    n_bins = int(n_bins)
    if not 1 <= n_bins <= 256:
        raise ValueError(f"n_bins must be in [1, 256], got {n_bins}")
    check_array(values_u8, "values_u8", np.uint8, 2)
    counts256 = _u8_counts(values_u8, mask)
    if n_bins == 256:
        return counts256
    out = np.zeros(n_bins, dtype=np.int64)
    _fold_u8_counts(counts256, n_bins, out)
    return out


# --------------------------------------------------------------------------- quantiles


@numba.njit(cache=True, nogil=True)
def _quantiles_from_counts(counts: np.ndarray, qs: np.ndarray, out: np.ndarray) -> None:
    n = 0
    for v in range(256):
        n += counts[v]
    if n == 0:
        out[:] = np.nan
        return
    cum = np.empty(256, dtype=np.int64)
    acc = 0
    for v in range(256):
        acc += counts[v]
        cum[v] = acc
    for j in range(qs.shape[0]):
        # numpy 'linear' (Hyndman & Fan 7): virtual index (n - 1) * q, lerp as np._lerp
        vi = (n - 1) * qs[j]
        if vi >= n - 1:
            i0 = n - 1
            i1 = n - 1
        else:
            i0 = int(np.floor(vi))
            i1 = i0 + 1
        gamma = vi - np.floor(vi)
        # sorted[i] = smallest v with cum[v] > i
        a = 0
        while cum[a] <= i0:
            a += 1
        b = a
        while cum[b] <= i1:
            b += 1
        d = np.float64(b - a)
        if gamma >= 0.5:
            out[j] = b - d * (1.0 - gamma)
        else:
            out[j] = a + d * gamma


def masked_quantiles_u8(values_u8: np.ndarray, mask: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """Quantiles of uint8 values inside a mask, via a 256-bin count (no sort).

    Equal to ``np.quantile(values_u8[mask], qs, method='linear')`` bit for bit:
    virtual index ``(n - 1) * q``; result ``a + (b - a) * g`` if ``g < 0.5`` else
    ``b - (b - a) * (1 - g)`` with ``a``, ``b`` the neighbouring order statistics
    and ``g`` the fractional part (numpy's ``_lerp``).

    Parameters
    ----------
    values_u8 : ndarray, uint8, shape (H, W) or (H, W, C), C-contiguous
        With channels, every channel is counted in the same pass.
    mask : ndarray, bool, shape (H, W), C-contiguous
    qs : array-like of float, 1-D, each in [0, 1]

    Returns
    -------
    quantiles : ndarray, float64, shape (len(qs),), or (C, len(qs)) for (H, W, C) values
        (row ``c`` equal to the result for ``values_u8[..., c]``).  All NaN for an empty
        mask.
    """
    qs = np.ascontiguousarray(qs, dtype=np.float64)
    if qs.ndim != 1:
        raise ValueError(f"qs must be 1-D, got shape {qs.shape}")
    if np.any(~((qs >= 0.0) & (qs <= 1.0))):
        raise ValueError("qs must be in [0, 1]")
    counts = _u8_counts(values_u8, mask)
    if counts.ndim == 1:
        out = np.empty(qs.shape[0], dtype=np.float64)
        _quantiles_from_counts(counts, qs, out)
        return out
    out = np.empty((counts.shape[0], qs.shape[0]), dtype=np.float64)
    for c in range(counts.shape[0]):
        _quantiles_from_counts(counts[c], qs, out[c])
    return out
