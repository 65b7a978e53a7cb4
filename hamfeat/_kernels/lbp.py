"""Rotation-invariant uniform local binary patterns (Numba kernels)."""

from __future__ import annotations

import functools

import numba
import numpy as np

from hamfeat._kernels._validate import check_array, check_mask

__all__ = ["lbp_offsets", "lbp_uniform", "masked_code_histogram", "masked_lbp_histogram"]


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
def _lbp_setup(gray: np.ndarray, rp: np.ndarray, cp: np.ndarray):
    # Zero-padded float64 copy of the image (skimage samples outside the image as 0:
    # mode 'C', cval 0), the per-sample integer corner shifts and the per-column
    # interpolation weights.  For integer x (|x| < 2**30) and an offset rounded to 5
    # decimals, floor(x + off) == x + floor(off) (x + off never rounds across an
    # integer), so the four corners of sample i are constant shifts of the pixel; only
    # the weights t - floor(t) depend on x (in their last bits): tabulated per column
    # (cw) here and computed once per row by the caller.
    h_, w_ = gray.shape
    n_p = rp.shape[0]
    pad = 0
    for i in range(n_p):
        pad = max(pad, int(np.ceil(abs(rp[i]))), int(np.ceil(abs(cp[i]))))
    pad += 1
    wp = w_ + 2 * pad
    img = np.zeros((h_ + 2 * pad) * wp, dtype=np.float64)
    for r in range(h_):
        row = img[(r + pad) * wp + pad : (r + pad) * wp + pad + w_]
        g = gray[r]
        for c in range(w_):
            row[c] = g[c]
    # kind: 0 = both weights exactly 0 (one corner), 1 = row weight 0 (two corners on
    # one row), 2 = column weight 0 (two corners in one column), 3 = general
    shift = np.empty((n_p, 4), dtype=np.int64)  # a, b, c, d corner shifts
    kind = np.empty(n_p, dtype=np.int64)
    for i in range(n_p):
        rlo = np.int64(np.floor(rp[i]))
        rhi = np.int64(np.ceil(rp[i]))
        clo = np.int64(np.floor(cp[i]))
        chi = np.int64(np.ceil(cp[i]))
        shift[i, 0] = rlo * wp + clo
        shift[i, 1] = rlo * wp + chi
        shift[i, 2] = rhi * wp + clo
        shift[i, 3] = rhi * wp + chi
        kind[i] = (1 if clo != chi else 0) + (2 if rlo != rhi else 0)
    cw = np.empty((n_p, w_), dtype=np.float64)
    for i in range(n_p):
        for c in range(w_):
            t = c + cp[i]
            cw[i, c] = t - np.floor(t)
    return img, wp, pad, shift, kind, cw


@numba.njit(cache=True, nogil=True)
def _lbp_row(
    img: np.ndarray,
    wp: int,
    pad: int,
    r: int,
    c0: int,
    c1: int,
    rp: np.ndarray,
    shift: np.ndarray,
    kind: np.ndarray,
    cw: np.ndarray,
    ones: np.ndarray,
    changes: np.ndarray,
    prev: np.ndarray,
) -> None:
    # Number of ones and of 0/1 transitions (not wrapping around) of the P thresholded
    # samples of pixels (r, c0..c1-1), into ones[:n], changes[:n] (prev: scratch).
    # Every inner loop runs over contiguous slices (no index arithmetic, no
    # data-dependent branch), so Numba/LLVM vectorises it.  The arithmetic
    # per element is skimage's bilinear_interpolation, in its order:
    #   top = (1-wc) a + wc b; bottom = (1-wc) c + wc d; v = (1-wr) top + wr bottom
    # and the bit is v - centre >= 0 (== v >= centre for finite doubles).  A zero weight
    # makes its term exactly 0 and the other exactly the corner value, so the kinds
    # with zero weights read fewer corners and give the same bits.
    n = c1 - c0
    n_p = rp.shape[0]
    base = (r + pad) * wp + pad + c0
    cen = img[base : base + n]
    for i in range(n_p):
        t = r + rp[i]
        wr = t - np.floor(t)
        k = kind[i]
        a = img[base + shift[i, 0] : base + shift[i, 0] + n]
        if k == 0:
            for c in range(n):
                b_ = np.int32(a[c] - cen[c] >= 0.0)
                if i == 0:
                    ones[c] = b_
                    changes[c] = 0
                else:
                    ones[c] += b_
                    changes[c] += b_ ^ prev[c]
                prev[c] = b_
        elif k == 1:
            b = img[base + shift[i, 1] : base + shift[i, 1] + n]
            wc = cw[i, c0 : c0 + n]
            for c in range(n):
                dc = wc[c]
                v = (1 - dc) * a[c] + dc * b[c]
                b_ = np.int32(v - cen[c] >= 0.0)
                if i == 0:
                    ones[c] = b_
                    changes[c] = 0
                else:
                    ones[c] += b_
                    changes[c] += b_ ^ prev[c]
                prev[c] = b_
        elif k == 2:
            d2 = img[base + shift[i, 2] : base + shift[i, 2] + n]
            for c in range(n):
                v = (1 - wr) * a[c] + wr * d2[c]
                b_ = np.int32(v - cen[c] >= 0.0)
                if i == 0:
                    ones[c] = b_
                    changes[c] = 0
                else:
                    ones[c] += b_
                    changes[c] += b_ ^ prev[c]
                prev[c] = b_
        else:
            b = img[base + shift[i, 1] : base + shift[i, 1] + n]
            cc = img[base + shift[i, 2] : base + shift[i, 2] + n]
            d = img[base + shift[i, 3] : base + shift[i, 3] + n]
            wc = cw[i, c0 : c0 + n]
            for c in range(n):
                dc = wc[c]
                top = (1 - dc) * a[c] + dc * b[c]
                bottom = (1 - dc) * cc[c] + dc * d[c]
                v = (1 - wr) * top + wr * bottom
                b_ = np.int32(v - cen[c] >= 0.0)
                if i == 0:
                    ones[c] = b_
                    changes[c] = 0
                else:
                    ones[c] += b_
                    changes[c] += b_ ^ prev[c]
                prev[c] = b_


@numba.njit(cache=True, nogil=True)
def _lbp_uniform_core(gray: np.ndarray, rp: np.ndarray, cp: np.ndarray, out: np.ndarray) -> None:
    h_, w_ = gray.shape
    n_p = rp.shape[0]
    img, wp, pad, shift, kind, cw = _lbp_setup(gray, rp, cp)
    ones = np.empty(w_, dtype=np.int32)
    changes = np.empty(w_, dtype=np.int32)
    prev = np.empty(w_, dtype=np.int32)
    nonu = np.uint8(n_p + 1)
    for r in range(h_):
        _lbp_row(img, wp, pad, r, 0, w_, rp, shift, kind, cw, ones, changes, prev)
        o = out[r]
        for c in range(w_):
            o[c] = np.uint8(ones[c]) if changes[c] <= 2 else nonu


def _check_pr(n_points: int, radius: float) -> tuple[int, float]:
    n_points = int(n_points)
    if not 1 <= n_points <= 254:
        raise ValueError(f"n_points must be in [1, 254], got {n_points}")
    radius = float(radius)
    if not (np.isfinite(radius) and radius > 0):
        raise ValueError(f"radius must be finite and > 0, got {radius}")
    return n_points, radius


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
    n_points, radius = _check_pr(n_points, radius)
    rp, cp = lbp_offsets(n_points, radius)
    out = np.empty(gray.shape, dtype=np.uint8)
    if gray.size:
        _lbp_uniform_core(gray, rp, cp, out)
    return out


@numba.njit(cache=True, nogil=True)
def _lbp_hist_core(
    gray: np.ndarray, mask: np.ndarray, rp: np.ndarray, cp: np.ndarray, counts: np.ndarray
) -> None:
    # Codes and histogram in one pass, row by row, computed only over each row's span of
    # mask pixels (first to last True); the histogram adds mask[c] (branch-free) into
    # 4 column-interleaved sub-tables (breaks same-bin store->load chains).
    h_, w_ = gray.shape
    n_p = rp.shape[0]
    n_bins = n_p + 2
    img, wp, pad, shift, kind, cw = _lbp_setup(gray, rp, cp)
    ones = np.empty(w_, dtype=np.int32)
    changes = np.empty(w_, dtype=np.int32)
    prev = np.empty(w_, dtype=np.int32)
    sub = np.zeros(4 * n_bins, dtype=np.int64)
    nonu = n_p + 1
    for r in range(h_):
        m = mask[r]
        c0 = 0
        while c0 < w_ and not m[c0]:
            c0 += 1
        if c0 == w_:
            continue
        c1 = w_
        while not m[c1 - 1]:
            c1 -= 1
        _lbp_row(img, wp, pad, r, c0, c1, rp, shift, kind, cw, ones, changes, prev)
        mm = m[c0:c1]
        for c in range(c1 - c0):
            code = ones[c] if changes[c] <= 2 else nonu
            sub[(c & 3) * n_bins + code] += mm[c]
    for k in range(n_bins):
        counts[k] = sub[k] + sub[n_bins + k] + sub[2 * n_bins + k] + sub[3 * n_bins + k]


def masked_lbp_histogram(
    gray: np.ndarray, mask: np.ndarray, n_points: int, radius: float
) -> np.ndarray:
    """Histogram of the uniform LBP codes of the pixels inside ``mask``, in one pass.

    Equal to ``masked_code_histogram(lbp_uniform(gray, P, R), mask, P + 2)`` (same codes,
    bit-exact with skimage), but codes are computed only between the first and last mask
    pixel of each row and never stored.

    Parameters
    ----------
    gray : ndarray, uint8, shape (H, W), C-contiguous
    mask : ndarray, bool, shape (H, W), C-contiguous
    n_points : int, 1 <= P <= 254
    radius : float, > 0

    Returns
    -------
    counts : ndarray, int64, shape (P + 2,)
    """
    check_array(gray, "gray", np.uint8, 2)
    check_mask(mask, gray.shape)
    n_points, radius = _check_pr(n_points, radius)
    rp, cp = lbp_offsets(n_points, radius)
    counts = np.zeros(n_points + 2, dtype=np.int64)
    if gray.size:
        _lbp_hist_core(gray, mask, rp, cp, counts)
    return counts


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
