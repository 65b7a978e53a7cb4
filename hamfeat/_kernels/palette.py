"""Nearest-reference-colour counts inside a mask (colour variegation). numpy and numba only."""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["nearest_colour_counts"]


@numba.njit(cache=True, nogil=True)
def _counts_core(
    lab: np.ndarray, mask: np.ndarray, refs: np.ndarray, max_dist2: float, out: np.ndarray
) -> None:
    h, w = mask.shape
    k = refs.shape[0]
    for y in range(h):
        for x in range(w):
            if not mask[y, x]:
                continue
            best = -1
            best_d = max_dist2
            for j in range(k):
                d0 = lab[y, x, 0] - refs[j, 0]
                d1 = lab[y, x, 1] - refs[j, 1]
                d2 = lab[y, x, 2] - refs[j, 2]
                d = d0 * d0 + d1 * d1 + d2 * d2
                if d < best_d:
                    best_d = d
                    best = j
            if best >= 0:
                out[best] += 1
            else:
                out[k] += 1


def nearest_colour_counts(
    lab: np.ndarray, mask: np.ndarray, refs: np.ndarray, max_dist: float
) -> np.ndarray:
    """Count mask pixels by their nearest reference colour in CIE Lab.

    Parameters
    ----------
    lab : numpy.ndarray
        ``float32`` ``(H, W, 3)`` Lab image.
    mask : numpy.ndarray
        ``bool`` ``(H, W)``.
    refs : numpy.ndarray
        ``float64`` ``(K, 3)`` reference colours.
    max_dist : float
        Pixels farther than this (Euclidean ΔE76) from every reference count as "other".

    Returns
    -------
    numpy.ndarray
        ``int64`` ``(K + 1,)``: counts per reference, then "other". Ties go to the first reference.
    """
    out = np.zeros(refs.shape[0] + 1, np.int64)
    _counts_core(
        np.ascontiguousarray(lab, dtype=np.float32),
        np.ascontiguousarray(mask, dtype=np.bool_),
        np.ascontiguousarray(refs, dtype=np.float64),
        float(max_dist) ** 2,
        out,
    )
    return out
