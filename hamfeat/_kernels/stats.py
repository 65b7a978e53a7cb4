"""Masked statistics: moments, histograms and quantiles (Numba kernels).

A *mask* is always a C-contiguous ``bool`` array of shape ``(H, W)`` matching the
image; only pixels where it is ``True`` contribute.
"""

from __future__ import annotations

import numba
import numpy as np

from hamfeat._kernels._validate import check_array, check_mask

__all__ = [
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
            s1 += values[idx[k], c]
        mean = s1 / count
        # pass 2: central moments about that mean
        m2 = 0.0
        m3 = 0.0
        m4 = 0.0
        for k in range(count):
            d = values[idx[k], c] - mean
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


def masked_moments(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean, std, skewness and excess kurtosis of each channel inside a mask.

    Two-pass algorithm (mean first, then central moments about it) with float64
    accumulation in a fixed order, so results are deterministic.

    Parameters
    ----------
    values : ndarray, float32, shape (H, W, C), C-contiguous
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
    check_array(values, "values", np.float32, 3)
    check_mask(mask, values.shape[:2])
    n_ch = values.shape[2]
    out = np.empty((n_ch, 4), dtype=np.float64)
    _masked_moments_core(values.reshape(-1, n_ch), mask.reshape(-1), out)
    return out


# --------------------------------------------------------------------------- histograms


@numba.njit(cache=True, nogil=True)
def _masked_histogram_core(
    values: np.ndarray, mask: np.ndarray, edges: np.ndarray, counts: np.ndarray
) -> None:
    n_bins = edges.shape[0] - 1
    lo = edges[0]
    hi = edges[n_bins]
    scale = n_bins / (hi - lo)
    for p in range(values.shape[0]):
        if not mask[p]:
            continue
        x = np.float64(values[p])
        if not (x >= lo and x <= hi):  # also drops NaN
            continue
        k = int((x - lo) * scale)  # estimate, then fix against the exact edges
        if k > n_bins - 1:
            k = n_bins - 1
        while k > 0 and x < edges[k]:
            k -= 1
        while k < n_bins - 1 and x >= edges[k + 1]:
            k += 1
        counts[k] += 1


def masked_histogram(
    values: np.ndarray, mask: np.ndarray, n_bins: int, lo: float, hi: float
) -> np.ndarray:
    """Histogram of ``values[mask]`` with ``n_bins`` equal bins over ``[lo, hi]``.

    Equal to ``np.histogram(values[mask], bins=n_bins, range=(float(lo), float(hi)))[0]``
    exactly: the bin edges are ``np.linspace(lo, hi, n_bins + 1)`` in numpy's edge
    dtype (``np.result_type(lo, hi, values)``: float32 for float32 values, float64
    otherwise), bins are half-open ``[e_k, e_{k+1})`` except the last which is closed,
    and values outside ``[e_0, e_n]`` (and NaN) are dropped.

    Parameters
    ----------
    values : ndarray, float32, float64 or uint8, shape (H, W), C-contiguous
    mask : ndarray, bool, shape (H, W), C-contiguous
    n_bins : int, >= 1
    lo, hi : float, finite, ``lo < hi``

    Returns
    -------
    counts : ndarray, int64, shape (n_bins,)
    """
    check_array(values, "values", (np.float32, np.float64, np.uint8), 2)
    check_mask(mask, values.shape)
    n_bins = int(n_bins)
    lo = float(lo)
    hi = float(hi)
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"need finite lo < hi, got lo={lo}, hi={hi}")
    edge_dtype = np.result_type(lo, hi, values)
    if np.issubdtype(edge_dtype, np.integer):  # as numpy does
        edge_dtype = np.result_type(edge_dtype, float)
    edges = np.linspace(lo, hi, n_bins + 1, endpoint=True, dtype=edge_dtype)
    edges = edges.astype(np.float64)  # exact widening; comparisons stay exact
    counts = np.zeros(n_bins, dtype=np.int64)
    _masked_histogram_core(values.reshape(-1), mask.reshape(-1), edges, counts)
    return counts


@numba.njit(cache=True, nogil=True)
def _count_u8_core(values: np.ndarray, mask: np.ndarray, counts: np.ndarray) -> None:
    # counts: int64 (256,), zeroed by the caller
    for p in range(values.shape[0]):
        counts[values[p]] += mask[p]  # branch-free


@numba.njit(cache=True, nogil=True)
def _fold_u8_counts(counts256: np.ndarray, n_bins: int, out: np.ndarray) -> None:
    for v in range(256):
        out[(v * n_bins) >> 8] += counts256[v]


def _u8_counts(values_u8: np.ndarray, mask: np.ndarray) -> np.ndarray:
    check_array(values_u8, "values_u8", np.uint8, 2)
    check_mask(mask, values_u8.shape)
    counts = np.zeros(256, dtype=np.int64)
    _count_u8_core(values_u8.reshape(-1), mask.reshape(-1), counts)
    return counts


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
    values_u8 : ndarray, uint8, shape (H, W), C-contiguous
    mask : ndarray, bool, shape (H, W), C-contiguous
    qs : array-like of float, 1-D, each in [0, 1]

    Returns
    -------
    quantiles : ndarray, float64, shape (len(qs),)
        All NaN for an empty mask.
    """
    qs = np.ascontiguousarray(qs, dtype=np.float64)
    if qs.ndim != 1:
        raise ValueError(f"qs must be 1-D, got shape {qs.shape}")
    if np.any(~((qs >= 0.0) & (qs <= 1.0))):
        raise ValueError("qs must be in [0, 1]")
    counts = _u8_counts(values_u8, mask)
    out = np.empty(qs.shape[0], dtype=np.float64)
    _quantiles_from_counts(counts, qs, out)
    return out
