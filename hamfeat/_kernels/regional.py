"""Colour by position in the lesion: zones, halves, blocks, border band (Numba kernels).

The kernels of :mod:`hamfeat.features.regional` (and the masked statistics of
:mod:`hamfeat.features.structure`). They reproduce the NumPy expressions those families were
first written with **bit for bit**, so their summation orders are NumPy's:

* a reduction over the first axis of an ``(n, 3)`` array (``x.mean(axis=0)``) or over the
  pixel axes of blocks adds the values one after another, in raster order;
* a whole 1-D ``float32`` / ``float64`` array's ``.sum()`` / ``.mean()`` uses NumPy's pairwise
  summation (:func:`_pairwise_sum`: runs of 8 interleaved accumulators, split in halves above
  128 elements);
* ``std`` is the mean, then the sum of squared deviations from it, divided by ``n``, sqrt;
* ``np.percentile`` / ``np.quantile`` (default ``linear`` method) interpolate between two
  order statistics exactly as NumPy's ``_lerp`` (:func:`_quantile_linear`).

Sums of integers (pixel coordinates, ``uint8`` levels, counts) are exact in ``float64`` and
need no particular order.
"""

from __future__ import annotations

import numba
import numpy as np

from hamfeat._kernels._validate import check_array, check_mask

__all__ = [
    "block_colour_heterogeneity",
    "border_gradient_stats",
    "border_samples",
    "half_colour_difference",
    "log_response_stats",
    "mask_axis_moments",
    "masked_u8_stats",
    "zone_colour_stats",
]

_PW_BLOCK = 128  # NumPy's PW_BLOCKSIZE


# --------------------------------------------------------------------------- building blocks


@numba.njit(cache=True, nogil=True)
def _pairwise_leaf(a: np.ndarray, lo: int, n: int, zero: float) -> float:
    # NumPy's pairwise_sum for n <= 128: plain loop below 8, else 8 interleaved sums
    if n < 8:
        res = zero
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0 = a[lo]
    r1 = a[lo + 1]
    r2 = a[lo + 2]
    r3 = a[lo + 3]
    r4 = a[lo + 4]
    r5 = a[lo + 5]
    r6 = a[lo + 6]
    r7 = a[lo + 7]
    i = 8
    stop = n - n % 8
    while i < stop:
        p = lo + i
        r0 += a[p]
        r1 += a[p + 1]
        r2 += a[p + 2]
        r3 += a[p + 3]
        r4 += a[p + 4]
        r5 += a[p + 5]
        r6 += a[p + 6]
        r7 += a[p + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@numba.njit(cache=True, nogil=True)
def _pairwise_sum(a: np.ndarray, lo: int, n: int, zero: float) -> float:
    # NumPy's pairwise_sum (numpy/_core/src/umath/loops_utils.h.src) over a[lo:lo + n],
    # accumulating in the dtype of `a` (float32 arrays sum in float32, as NumPy). Above
    # 128 elements NumPy recurses on halves (the first one a multiple of 8 long); the same
    # tree is walked here with an explicit stack (no recursion: cached recursive Numba
    # functions are fragile).
    if n <= _PW_BLOCK:
        return _pairwise_leaf(a, lo, n, zero)
    st_lo = np.empty(64, np.int64)
    st_n = np.empty(64, np.int64)
    st_stage = np.empty(64, np.int64)  # 0: left child next, 1: right child next
    st_left = np.empty(64, a.dtype)  # the left child's sum once known
    sp = 1
    st_lo[0] = lo
    st_n[0] = n
    st_stage[0] = 0
    res = zero
    while sp > 0:
        t = sp - 1
        m = st_n[t]
        if m <= _PW_BLOCK:
            v = _pairwise_leaf(a, st_lo[t], m, zero)
            sp -= 1
            # hand the value up: a left child starts its sibling, a right child completes
            # its parent (whose sum is handed up in turn)
            while True:
                if sp == 0:
                    res = v
                    break
                p = sp - 1
                if st_stage[p] == 0:
                    st_left[p] = v
                    st_stage[p] = 1
                    h2 = st_n[p] // 2
                    h2 -= h2 % 8
                    st_lo[sp] = st_lo[p] + h2
                    st_n[sp] = st_n[p] - h2
                    st_stage[sp] = 0
                    sp += 1
                    break
                v = st_left[p] + v
                sp -= 1
        else:
            h2 = m // 2
            h2 -= h2 % 8
            st_lo[sp] = st_lo[t]
            st_n[sp] = h2
            st_stage[sp] = 0
            sp += 1
    return res


@numba.njit(cache=True, nogil=True)
def _select(a: np.ndarray, n: int, k: int) -> None:
    # Partially order a[:n] in place so that a[k] is its k-th smallest value, every
    # a[:k] <= a[k] and every a[k + 1:n] >= a[k] (Hoare partition, median-of-3 pivot).
    lo = 0
    hi = n - 1
    while hi > lo:
        mid = (lo + hi) // 2
        if a[mid] < a[lo]:
            a[mid], a[lo] = a[lo], a[mid]
        if a[hi] < a[lo]:
            a[hi], a[lo] = a[lo], a[hi]
        if a[hi] < a[mid]:
            a[hi], a[mid] = a[mid], a[hi]
        pivot = a[mid]
        i = lo
        j = hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            return


@numba.njit(cache=True, nogil=True)
def _quantile_linear(a: np.ndarray, n: int, q: float) -> float:
    # np.quantile(a[:n], q) (method "linear"), reordering a[:n]; n >= 1, 0 <= q <= 1.
    # As NumPy: virtual index (n - 1) q, neighbours' difference in the dtype of `a`, then
    # a + diff * g below g = 0.5 and b - diff * (1 - g) from 0.5 on, in float64.
    v = (n - 1) * q
    if v >= n - 1:
        top = a[0]
        for i in range(1, n):
            if a[i] > top:
                top = a[i]
        return np.float64(top)
    f = np.floor(v)
    g = v - f
    k = int(f)
    _select(a, n, k)
    lo = a[k]
    hi = a[k + 1]
    for i in range(k + 2, n):
        if a[i] < hi:
            hi = a[i]
    diff = hi - lo
    if g >= 0.5:
        return np.float64(hi) - np.float64(diff) * (1.0 - g)
    return np.float64(lo) + np.float64(diff) * g


# --------------------------------------------------------------------------- zones


@numba.njit(cache=True, nogil=True)
def _zone_core(
    lab: np.ndarray, mask: np.ndarray, depth: np.ndarray, q1: float, q2: float, out: np.ndarray
) -> None:
    h, w = mask.shape
    n = 0
    for y in range(h):
        for x in range(w):
            n += mask[y, x]
    out[:] = np.nan
    if n == 0:
        return
    buf = np.empty(n, depth.dtype)
    k = 0
    for y in range(h):
        for x in range(w):
            if mask[y, x]:
                buf[k] = depth[y, x]
                k += 1
    t1 = _quantile_linear(buf, n, q1)
    t2 = _quantile_linear(buf, n, q2)
    # pass 1: per-zone sums in raster order (NumPy: lab[zone].mean(axis=0))
    sums = np.zeros((3, 3))
    counts = np.zeros(3, np.int64)
    for y in range(h):
        for x in range(w):
            if not mask[y, x]:
                continue
            d = np.float64(depth[y, x])
            z = 0 if d <= t1 else (1 if d <= t2 else 2)
            counts[z] += 1
            for c in range(3):
                sums[z, c] += np.float64(lab[y, x, c])
    means = np.empty((3, 3))
    for z in range(3):
        for c in range(3):
            means[z, c] = sums[z, c] / counts[z] if counts[z] > 0 else np.nan
    # pass 2: squared deviations from the zone mean, raster order
    ss = np.zeros((3, 3))
    for y in range(h):
        for x in range(w):
            if not mask[y, x]:
                continue
            d = np.float64(depth[y, x])
            z = 0 if d <= t1 else (1 if d <= t2 else 2)
            for c in range(3):
                e = np.float64(lab[y, x, c]) - means[z, c]
                ss[z, c] += e * e
    for z in range(3):
        if counts[z] == 0:
            continue
        for c in range(3):
            out[6 * z + 2 * c] = means[z, c]
            out[6 * z + 2 * c + 1] = np.sqrt(ss[z, c] / counts[z])
    for c in range(3):
        out[18 + c] = means[2, c] - means[0, c]


def zone_colour_stats(
    lab: np.ndarray, mask: np.ndarray, depth: np.ndarray, q1: float = 1 / 3, q2: float = 2 / 3
) -> np.ndarray:
    """Lab mean and std in three zones of the lesion split by depth quantiles.

    The zones are the mask pixels with ``depth <= t1`` (rim), ``t1 < depth <= t2`` (mid) and
    ``depth > t2`` (core), where ``t1, t2 = np.quantile(depth[mask], [q1, q2])``. Equal, bit
    for bit, to ``lab[zone].astype(np.float64).mean(axis=0)`` and ``.std(axis=0)``.

    Parameters
    ----------
    lab : numpy.ndarray
        ``float32`` ``(H, W, 3)``, C-contiguous.
    mask : numpy.ndarray
        ``bool`` ``(H, W)``, C-contiguous.
    depth : numpy.ndarray
        ``float32`` ``(H, W)``, C-contiguous: distance of each lesion pixel to the border.
    q1, q2 : float
        Quantiles (0..1) of the depth that separate rim / mid and mid / core.

    Returns
    -------
    numpy.ndarray
        ``float64`` ``(21,)``: for rim, mid, core in turn and each channel L, a, b: mean, std
        (18 values), then core mean minus rim mean per channel. NaN for an empty zone (and
        everything NaN for an empty mask).
    """
    check_array(lab, "lab", np.float32, 3, channels=3)
    check_mask(mask, lab.shape[:2])
    check_array(depth, "depth", np.float32, 2)
    check_mask(mask, depth.shape, "mask")
    if not (0.0 <= q1 <= 1.0 and 0.0 <= q2 <= 1.0):
        raise ValueError(f"quantiles must be in [0, 1], got {q1}, {q2}")
    out = np.empty(21)
    _zone_core(lab, mask, depth, float(q1), float(q2), out)
    return out


@numba.njit(cache=True, nogil=True)
def _axis_moments_core(mask: np.ndarray, out: np.ndarray) -> None:
    h, w = mask.shape
    n = 0
    sx = 0
    sy = 0
    for y in range(h):
        for x in range(w):
            if mask[y, x]:
                n += 1
                sx += x
                sy += y
    out[:] = np.nan
    if n == 0:
        return
    cx = np.float64(sx) / n  # integer sums: exact, as NumPy's xs.mean()
    cy = np.float64(sy) / n
    # NumPy: np.mean(x * x) etc. over the raster-ordered pixels, pairwise summation
    buf = np.empty((3, n))
    k = 0
    for y in range(h):
        for x in range(w):
            if mask[y, x]:
                dx = np.float64(x) - cx
                dy = np.float64(y) - cy
                buf[0, k] = dx * dx
                buf[1, k] = dx * dy
                buf[2, k] = dy * dy
                k += 1
    out[0] = cx
    out[1] = cy
    for j in range(3):
        out[2 + j] = _pairwise_sum(buf[j], 0, n, 0.0) / n


def mask_axis_moments(mask: np.ndarray) -> np.ndarray:
    """Centroid and second central moments of a mask's pixel coordinates.

    With ``ys, xs = np.nonzero(mask)``, ``x = xs - xs.mean()``, ``y = ys - ys.mean()``: equal
    bit for bit to ``xs.mean(), ys.mean(), np.mean(x * x), np.mean(x * y), np.mean(y * y)``.

    Parameters
    ----------
    mask : numpy.ndarray
        ``bool`` ``(H, W)``, C-contiguous.

    Returns
    -------
    numpy.ndarray
        ``float64`` ``(5,)``: ``cx, cy, mxx, mxy, myy`` (x = column, y = row); NaN when empty.
    """
    check_array(mask, "mask", np.bool_, 2)
    out = np.empty(5)
    _axis_moments_core(mask, out)
    return out


@numba.njit(cache=True, nogil=True)
def _halves_core(
    lab: np.ndarray, mask: np.ndarray, cx: float, cy: float, ux: float, uy: float, out: np.ndarray
) -> None:
    h, w = mask.shape
    sums = np.zeros((2, 3))
    counts = np.zeros(2, np.int64)
    for y in range(h):
        for x in range(w):
            if not mask[y, x]:
                continue
            s = 1 if ((np.float64(x) - cx) * ux + (np.float64(y) - cy) * uy) > 0 else 0
            counts[s] += 1
            for c in range(3):
                sums[s, c] += np.float64(lab[y, x, c])
    if counts[0] == 0 or counts[1] == 0:
        out[:] = np.nan
        return
    ss = 0.0
    for c in range(3):
        d = sums[1, c] / counts[1] - sums[0, c] / counts[0]
        out[c] = abs(d)
        ss += d * d
    out[3] = np.sqrt(ss)


def half_colour_difference(
    lab: np.ndarray, mask: np.ndarray, cx: float, cy: float, ux: float, uy: float
) -> np.ndarray:
    """Lab difference between the two halves of a mask on either side of a line.

    A pixel ``(x, y)`` is on the positive side when ``(x - cx) * ux + (y - cy) * uy > 0``.
    Equal bit for bit to ``d = lab[pos].mean(axis=0) - lab[neg].mean(axis=0)`` (float64 means
    of the raster-ordered pixels), ``|d|`` and ``sqrt((d ** 2).sum())``.

    Parameters
    ----------
    lab : numpy.ndarray
        ``float32`` ``(H, W, 3)``, C-contiguous.
    mask : numpy.ndarray
        ``bool`` ``(H, W)``, C-contiguous.
    cx, cy : float
        A point on the line (column, row).
    ux, uy : float
        The line's normal.

    Returns
    -------
    numpy.ndarray
        ``float64`` ``(4,)``: ``|d|`` per channel and the ΔE*ab ``||d||``; NaN when a side is
        empty.
    """
    check_array(lab, "lab", np.float32, 3, channels=3)
    check_mask(mask, lab.shape[:2])
    out = np.empty(4)
    _halves_core(lab, mask, float(cx), float(cy), float(ux), float(uy), out)
    return out


# --------------------------------------------------------------------------- blocks


@numba.njit(cache=True, nogil=True)
def _blocks_core(
    lab: np.ndarray,
    mask: np.ndarray,
    dr: int,
    dc: int,
    block: int,
    min_fill: float,
    thresholds: np.ndarray,
    out: np.ndarray,
) -> None:
    h, w = mask.shape
    out[:] = np.nan
    nby = max(h - dr, 0) // block
    nbx = max(w - dc, 0) // block
    if nby == 0 or nbx == 0:
        return
    counts = np.zeros(nby * nbx, np.int64)
    sums = np.zeros((nby * nbx, 3))
    # raster order: every block's sums receive its lesion pixels row by row (NumPy's order
    # for the sum over the pixel axes of the (rows, B, cols, B, 3) view)
    for by in range(nby):
        for y in range(dr + by * block, dr + (by + 1) * block):
            for bx in range(nbx):
                b = by * nbx + bx
                for x in range(dc + bx * block, dc + (bx + 1) * block):
                    if mask[y, x]:
                        counts[b] += 1
                        for c in range(3):
                            sums[b, c] += np.float64(lab[y, x, c])
    area = block * block
    n = 0
    for b in range(nby * nbx):
        if counts[b] / area >= min_fill:
            n += 1
    if n < 4:
        return
    blocks = np.empty((n, 3))
    k = 0
    for b in range(nby * nbx):
        if counts[b] / area >= min_fill:
            for c in range(3):
                blocks[k, c] = sums[b, c] / counts[b]
            k += 1
    # spread of the block means per channel: std (sequential sums) and p90 - p10
    col = np.empty(n)
    for c in range(3):
        s = 0.0
        for i in range(n):
            s += blocks[i, c]
        mean = s / n
        ss = 0.0
        for i in range(n):
            e = blocks[i, c] - mean
            ss += e * e
        out[c] = np.sqrt(ss / n)
        for i in range(n):
            col[i] = blocks[i, c]
        p90 = _quantile_linear(col, n, 0.9)
        p10 = _quantile_linear(col, n, 0.1)
        out[3 + c] = p90 - p10
    # ΔE*ab of every pair i < j, in row-major upper-triangle order
    n_pairs = n * (n - 1) // 2
    pairs = np.empty(n_pairs)
    n_over = np.zeros(thresholds.shape[0], np.int64)
    k = 0
    for i in range(n):
        for j in range(i + 1, n):
            s = 0.0
            for c in range(3):
                e = blocks[i, c] - blocks[j, c]
                s += e * e
            d = np.sqrt(s)
            pairs[k] = d
            for t in range(thresholds.shape[0]):
                if d > thresholds[t]:
                    n_over[t] += 1
            k += 1
    out[6] = _pairwise_sum(pairs, 0, n_pairs, 0.0) / n_pairs
    out[7] = _quantile_linear(pairs, n_pairs, 0.9)
    for t in range(thresholds.shape[0]):
        out[8 + t] = n_over[t] / n_pairs
    out[8 + thresholds.shape[0]] = np.sqrt(n)


def block_colour_heterogeneity(
    lab: np.ndarray,
    mask: np.ndarray,
    offset: tuple[int, int],
    block: int,
    min_fill: float,
    thresholds: np.ndarray,
) -> np.ndarray:
    """Spread of the mean Lab colours of the square blocks that lie mostly in the lesion.

    Blocks of ``block`` x ``block`` px sit on the grid of the whole image (the window's
    top-left pixel is at ``offset`` in it); a block counts when at least ``min_fill`` of it is
    lesion and then gives the mean Lab of its lesion pixels. Equal bit for bit to the NumPy
    expressions ``blocks.std(axis=0)``, ``np.percentile(blocks, [90, 10], axis=0)``,
    ``pairs.mean()``, ``np.percentile(pairs, 90)`` and ``(pairs > t).mean()`` over the ΔE*ab
    of all pairs of blocks (upper triangle, row-major).

    Parameters
    ----------
    lab : numpy.ndarray
        ``float32`` ``(H, W, 3)``, C-contiguous.
    mask : numpy.ndarray
        ``bool`` ``(H, W)``, C-contiguous.
    offset : tuple of int
        Row and column of the window's top-left pixel in the whole image.
    block : int
        Block side (px), >= 1.
    min_fill : float
        Least fraction of lesion pixels of a block that counts.
    thresholds : numpy.ndarray
        ``float64`` ``(T,)`` ΔE*ab thresholds.

    Returns
    -------
    numpy.ndarray
        ``float64`` ``(9 + T,)``: std of the block means per channel (3), p90 - p10 per
        channel (3), mean and p90 of the pairwise ΔE*ab, the fraction of pairs above each
        threshold (T), and the square root of the number of blocks. All NaN when fewer than
        4 blocks count.
    """
    check_array(lab, "lab", np.float32, 3, channels=3)
    check_mask(mask, lab.shape[:2])
    check_array(thresholds, "thresholds", np.float64, 1)
    if int(block) < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    block = int(block)
    dr, dc = (-int(offset[0])) % block, (-int(offset[1])) % block
    out = np.empty(9 + thresholds.shape[0])
    _blocks_core(lab, mask, dr, dc, block, float(min_fill), thresholds, out)
    return out


# --------------------------------------------------------------------------- border


@numba.njit(cache=True, nogil=True)
def _border_samples_core(
    gx: np.ndarray,
    gy: np.ndarray,
    lab: np.ndarray,
    mask: np.ndarray,
    depth: np.ndarray,
    out_dist: np.ndarray,
    skin: np.ndarray,
    edge_depth: float,
    band: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    h, w = mask.shape
    n = 0
    n_edge = 0
    sx = 0
    sy = 0
    n_in = 0
    n_out = 0
    for y in range(h):
        for x in range(w):
            if mask[y, x]:
                n += 1
                sx += x
                sy += y
                n_edge += depth[y, x] <= edge_depth
                n_in += depth[y, x] <= band
            elif out_dist[y, x] <= band and skin[y, x]:
                n_out += 1
    v = np.empty(n_edge)
    dy = np.empty(n_edge)
    dx = np.empty(n_edge)
    if n_edge == 0:
        return v, dy, dx, np.nan
    cx = np.float64(sx) / n  # integer sums: exact, as NumPy's xs.mean()
    cy = np.float64(sy) / n
    l_in = np.empty(n_in, np.float32)
    l_out = np.empty(n_out, np.float32)
    k = 0
    k_in = 0
    k_out = 0
    for y in range(h):
        for x in range(w):
            if mask[y, x]:
                if depth[y, x] <= edge_depth:
                    a = np.float64(gx[y, x])
                    b = np.float64(gy[y, x])
                    v[k] = np.sqrt(a * a + b * b)
                    dy[k] = np.float64(y) - cy
                    dx[k] = np.float64(x) - cx
                    k += 1
                if depth[y, x] <= band:
                    l_in[k_in] = lab[y, x, 0]
                    k_in += 1
            elif out_dist[y, x] <= band and skin[y, x]:
                l_out[k_out] = lab[y, x, 0]
                k_out += 1
    if n_out == 0:
        return v, dy, dx, np.nan
    # float32 means as NumPy's: float32 pairwise sums, divided in float64, rounded to float32
    zero = np.float32(0.0)
    m_out = np.float32(np.float64(_pairwise_sum(l_out, 0, n_out, zero)) / n_out)
    m_in = np.float32(np.float64(_pairwise_sum(l_in, 0, n_in, zero)) / n_in)
    return v, dy, dx, np.float64(m_out - m_in)


def border_samples(
    gx: np.ndarray,
    gy: np.ndarray,
    lab: np.ndarray,
    mask: np.ndarray,
    depth: np.ndarray,
    out_dist: np.ndarray,
    skin: np.ndarray,
    edge_depth: float,
    band: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Gradient magnitude on the border pixels and the lightness step across the border.

    Border pixels are lesion pixels with ``depth <= edge_depth``, in raster order.

    Parameters
    ----------
    gx, gy : numpy.ndarray
        ``float32`` ``(H, W)`` C-contiguous gradients of L*.
    lab : numpy.ndarray
        ``float32`` ``(H, W, 3)`` C-contiguous Lab (only L* is read).
    mask : numpy.ndarray
        ``bool`` ``(H, W)`` C-contiguous lesion.
    depth : numpy.ndarray
        ``float32`` ``(H, W)``: distance of lesion pixels to the nearest non-lesion pixel.
    out_dist : numpy.ndarray
        ``float32`` ``(H, W)``: distance of non-lesion pixels to the nearest lesion pixel.
    skin : numpy.ndarray
        ``bool`` ``(H, W)``: pixels allowed in the outer band.
    edge_depth : float
        Depth of the border pixels.
    band : float
        Width of the bands inside (``mask & depth <= band``) and outside
        (``~mask & out_dist <= band & skin``) the border.

    Returns
    -------
    v : numpy.ndarray
        ``float64`` ``(E,)``: ``sqrt(gx**2 + gy**2)`` (in float64) at the border pixels.
    dy, dx : numpy.ndarray
        ``float64`` ``(E,)``: the border pixels' row and column minus the lesion centroid's.
    delta : float
        ``lum[outside].mean() - lum[inside].mean()`` exactly as NumPy computes it on
        ``float32`` L* (float32 pairwise sums); NaN when there is no border pixel or the outer
        band is empty.
    """
    check_array(lab, "lab", np.float32, 3, channels=3)
    shape = lab.shape[:2]
    check_mask(mask, shape)
    check_mask(skin, shape, "skin")
    for name, a in (("gx", gx), ("gy", gy), ("depth", depth), ("out_dist", out_dist)):
        check_array(a, name, np.float32, 2)
        if a.shape != shape:
            raise ValueError(f"{name} shape {a.shape} does not match image shape {shape}")
    return _border_samples_core(
        gx, gy, lab, mask, depth, out_dist, skin, float(edge_depth), float(band)
    )


@numba.njit(cache=True, nogil=True)
def _border_stats_core(v: np.ndarray, angle: np.ndarray, sectors: int, out: np.ndarray) -> None:
    n = v.shape[0]
    mean = _pairwise_sum(v, 0, n, 0.0) / n
    dev = np.empty(n)
    for i in range(n):
        e = v[i] - mean
        dev[i] = e * e
    std = np.sqrt(_pairwise_sum(dev, 0, n, 0.0) / n)
    # mean gradient per angular sector (np.bincount: sequential sums in pixel order)
    sums = np.zeros(sectors)
    counts = np.zeros(sectors, np.int64)
    for i in range(n):
        s = int((angle[i] + np.pi) / (2 * np.pi) * sectors)
        s = min(s, sectors - 1)
        sums[s] += v[i]
        counts[s] += 1
    sec = np.empty(sectors)
    m = 0
    for s in range(sectors):
        if counts[s] > 0:
            sec[m] = sums[s] / counts[s]
            m += 1
    sec_mean = _pairwise_sum(sec, 0, m, 0.0) / m
    for i in range(m):
        e = sec[i] - sec_mean
        dev[i] = e * e
    sec_std = np.sqrt(_pairwise_sum(dev, 0, m, 0.0) / m)
    out[0] = mean
    out[1] = std
    out[2] = std / mean if mean > 0 else np.nan
    out[5] = sec_std / sec_mean if sec_mean > 0 else np.nan
    buf = v.copy()
    out[3] = _quantile_linear(buf, n, 0.1)
    out[4] = _quantile_linear(buf, n, 0.9)


def border_gradient_stats(v: np.ndarray, angle: np.ndarray, sectors: int) -> np.ndarray:
    """Statistics of the gradient magnitude along the border, overall and per angular sector.

    Equal bit for bit to NumPy's ``v.mean()``, ``v.std()``, ``np.percentile(v, [10, 90])``
    and the sector means of ``np.bincount``.

    Parameters
    ----------
    v : numpy.ndarray
        ``float64`` ``(E,)`` gradient magnitudes, E >= 1.
    angle : numpy.ndarray
        ``float64`` ``(E,)``: each pixel's angle around the centroid, ``np.arctan2(dy, dx)``
        (computed by the caller with NumPy, whose ``arctan2`` may differ from the C library's
        in the last bit).
    sectors : int
        Number of equal angular sectors, >= 1.

    Returns
    -------
    numpy.ndarray
        ``float64`` ``(6,)``: mean, std, coefficient of variation (NaN unless mean > 0), 10th
        and 90th percentiles, and the coefficient of variation of the non-empty sectors'
        mean magnitude (NaN unless their mean > 0).
    """
    check_array(v, "v", np.float64, 1)
    check_array(angle, "angle", np.float64, 1)
    if angle.shape != v.shape or v.shape[0] == 0:
        raise ValueError(f"v and angle must have the same non-zero length, got {v.shape}, "
                         f"{angle.shape}")  # fmt: skip
    if int(sectors) < 1:
        raise ValueError(f"sectors must be >= 1, got {sectors}")
    out = np.empty(6)
    _border_stats_core(v, angle, int(sectors), out)
    return out


# --------------------------------------------------------------------------- structure


@numba.njit(cache=True, nogil=True)
def _mask_index(mask: np.ndarray) -> tuple[np.ndarray, int]:
    # flat indices of the True pixels of a flat mask, in raster order (branch-free)
    idx = np.empty(mask.shape[0] + 1, np.int64)
    n = 0
    for p in range(mask.shape[0]):
        idx[n] = p
        n += mask[p]
    return idx, n


@numba.njit(cache=True, nogil=True)
def _u8_stats_core(
    values: np.ndarray, mask: np.ndarray, levels: np.ndarray, out: np.ndarray
) -> None:
    idx, n = _mask_index(mask)
    if n == 0:
        out[:, :] = np.nan
        return
    dev = np.empty(n)
    sq = np.empty(256)
    for j in range(values.shape[0]):
        v = values[j]
        counts = np.zeros(256, np.int64)
        for k in range(n):
            counts[v[idx[k]]] += 1
        total = 0
        for r in range(256):
            total += r * counts[r]
        mean = np.float64(total) / n  # a sum of integers: exact in any order
        for r in range(256):
            e = np.float64(r) - mean
            sq[r] = e * e
        for k in range(n):
            dev[k] = sq[v[idx[k]]]  # (r - mean) ** 2 in raster order, for the pairwise sum
        out[j, 0] = mean
        out[j, 1] = np.sqrt(_pairwise_sum(dev, 0, n, 0.0) / n)
        for t in range(levels.shape[0]):
            over = 0
            for r in range(max(levels[t] + 1, 0), 256):
                over += counts[r]
            out[j, 2 + t] = over / n


def masked_u8_stats(values: np.ndarray, mask: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Mean, std and exceedance fractions of ``uint8`` images inside a mask.

    For each image ``values[j]``: equal bit for bit to ``r = values[j][mask].astype(np.float64)``;
    ``r.mean()``, ``r.std()`` and ``(r > t).mean()`` for each level ``t``.

    Parameters
    ----------
    values : numpy.ndarray
        ``uint8`` ``(K, H, W)``, C-contiguous: K images (e.g. filter responses) on one grid.
    mask : numpy.ndarray
        ``bool`` ``(H, W)``, C-contiguous.
    levels : numpy.ndarray
        ``int64`` ``(T,)`` thresholds.

    Returns
    -------
    numpy.ndarray
        ``float64`` ``(K, 2 + T)``: mean, std, then the fraction of mask pixels above each
        level; NaN for an empty mask.
    """
    check_array(values, "values", np.uint8, 3)
    check_mask(mask, values.shape[1:])
    check_array(levels, "levels", np.int64, 1)
    k, h, w = values.shape
    out = np.empty((k, 2 + levels.shape[0]))
    _u8_stats_core(values.reshape(k, h * w), mask.reshape(h * w), levels, out)
    return out


@numba.njit(cache=True, nogil=True)
def _log_stats_core(
    lap: np.ndarray, peak: np.ndarray, mask: np.ndarray, blob_min: float, out: np.ndarray
) -> None:
    idx, n = _mask_index(mask)
    if n == 0:
        out[:, :] = np.nan
        return
    pos = np.empty(n)
    neg = np.empty(n)
    for j in range(lap.shape[0]):
        lj = lap[j]
        pj = peak[j]
        blobs = 0
        for k in range(n):
            p = idx[k]
            v = lj[p]
            d = np.float64(v)
            pos[k] = d if d >= 0.0 else 0.0  # np.clip(v, 0, None)
            d = -d
            neg[k] = d if d >= 0.0 else 0.0
            blobs += (v == pj[p]) & (v > blob_min)
        out[j, 0] = _pairwise_sum(pos, 0, n, 0.0) / n
        out[j, 1] = _pairwise_sum(neg, 0, n, 0.0) / n
        out[j, 2] = blobs


def log_response_stats(
    lap: np.ndarray, peak: np.ndarray, mask: np.ndarray, blob_min: float
) -> np.ndarray:
    """Positive and negative energy of filter responses inside a mask, and their peaks.

    For each response ``lap[j]``, with ``v = lap[j][mask].astype(np.float64)``: equal bit for
    bit to ``np.clip(v, 0, None).mean()``, ``np.clip(-v, 0, None).mean()`` and
    ``((lap[j] == peak[j]) & (lap[j] > blob_min) & mask).sum()``.

    Parameters
    ----------
    lap : numpy.ndarray
        ``float32`` ``(K, H, W)``, C-contiguous responses.
    peak : numpy.ndarray
        ``float32`` ``(K, H, W)``, C-contiguous: each response's local maximum (a dilation).
    mask : numpy.ndarray
        ``bool`` ``(H, W)``, C-contiguous.
    blob_min : float
        Least response of a counted peak (compared in float64; NumPy compares a float32 array
        with a Python float in float32: the same whenever ``blob_min`` is a float32 value,
        as 2.0 is).

    Returns
    -------
    numpy.ndarray
        ``float64`` ``(K, 3)``: positive-part mean, negative-part mean, number of peaks; NaN
        for an empty mask.
    """
    check_array(lap, "lap", np.float32, 3)
    check_array(peak, "peak", np.float32, 3)
    if peak.shape != lap.shape:
        raise ValueError(f"peak shape {peak.shape} does not match lap shape {lap.shape}")
    check_mask(mask, lap.shape[1:])
    k, h, w = lap.shape
    out = np.empty((k, 3))
    _log_stats_core(
        lap.reshape(k, h * w), peak.reshape(k, h * w), mask.reshape(h * w), float(blob_min), out
    )
    return out
