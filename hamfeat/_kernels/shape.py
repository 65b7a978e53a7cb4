"""Mask shape descriptors that are not a single fast OpenCV call (Numba kernels)."""

from __future__ import annotations

import numba
import numpy as np

from hamfeat._kernels._validate import check_array

__all__ = ["principal_axis_asymmetry"]


@numba.njit(cache=True, nogil=True)
def _principal_axis_asymmetry_core(mask: np.ndarray, out: np.ndarray) -> None:
    h_, w_ = mask.shape
    # pass 1: area and centroid (x = column, y = row; pixel centres at integers)
    n = 0
    sx = 0.0
    sy = 0.0
    for r in range(h_):
        for c in range(w_):
            if mask[r, c]:
                n += 1
                sx += c
                sy += r
    if n == 0:
        out[0] = np.nan
        out[1] = np.nan
        return
    cx = sx / n
    cy = sy / n
    # pass 2: second-order central moments (two-pass, exact centroid)
    mu20 = 0.0
    mu02 = 0.0
    mu11 = 0.0
    for r in range(h_):
        for c in range(w_):
            if mask[r, c]:
                dx = c - cx
                dy = r - cy
                mu20 += dx * dx
                mu02 += dy * dy
                mu11 += dx * dy
    theta = 0.5 * np.arctan2(2.0 * mu11, mu20 - mu02)  # major-axis direction
    ux = np.cos(theta)
    uy = np.sin(theta)
    # pass 3: reflect every mask pixel about the major axis (direction u) and about the
    # minor axis (direction v = u rotated by 90 deg), nearest-pixel sampling.
    # Reflection of d = p - c about a line through c with unit direction e:
    #   d' = 2 (d . e) e - d.  About the minor axis this equals -(reflection about the
    # major axis), so one projection gives both.
    miss_major = 0
    miss_minor = 0
    for r in range(h_):
        for c in range(w_):
            if not mask[r, c]:
                continue
            dx = c - cx
            dy = r - cy
            t = dx * ux + dy * uy
            ex = 2.0 * t * ux - dx
            ey = 2.0 * t * uy - dy
            # about the major axis
            xr = int(np.floor(cx + ex + 0.5))
            yr = int(np.floor(cy + ey + 0.5))
            if not (0 <= xr < w_ and 0 <= yr < h_ and mask[yr, xr]):
                miss_major += 1
            # about the minor axis
            xr = int(np.floor(cx - ex + 0.5))
            yr = int(np.floor(cy - ey + 0.5))
            if not (0 <= xr < w_ and 0 <= yr < h_ and mask[yr, xr]):
                miss_minor += 1
    out[0] = miss_major / n
    out[1] = miss_minor / n


def principal_axis_asymmetry(mask: np.ndarray) -> np.ndarray:
    """Asymmetry of a mask about its principal axes.

    The centroid and the major-axis angle ``theta = 0.5 atan2(2 mu11, mu20 - mu02)``
    come from the mask's first and second-order central moments (pixel centres at
    integer coordinates, x = column, y = row).  For each axis the lesion ``A`` is
    reflected about that axis (through the centroid) to ``A'`` and the score is

        ``|A \\ A'| / |A|``  = fraction of the lesion area that does not overlap its
        own reflection,

    computed by mapping every mask pixel through the reflection and rounding to the
    nearest pixel (half-up); reflections falling outside the image count as
    non-overlapping.  In the continuous limit this equals
    ``|A xor A'| / (2 |A|)``; it is 0 for a shape symmetric about the axis and at most 1.
    For a rotationally symmetric mask (mu11 = 0, mu20 = mu02) theta is 0.

    Parameters
    ----------
    mask : ndarray, bool, shape (H, W), C-contiguous

    Returns
    -------
    asym : ndarray, float64, shape (2,)
        ``[about_major_axis, about_minor_axis]``; NaN for an empty mask.
    """
    check_array(mask, "mask", np.bool_, 2)
    out = np.empty(2, dtype=np.float64)
    _principal_axis_asymmetry_core(mask, out)
    return out
