"""Shades-of-Gray colour constancy (Finlayson & Trezzi 2004; Barata et al. 2015) as Numba kernels.

Imports only numpy and numba.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["shades_of_gray"]


@numba.njit(cache=True, nogil=True)
def _shades_of_gray_core(rgb: np.ndarray, p: float, out: np.ndarray) -> None:
    h, w = rgb.shape[0], rgb.shape[1]
    lut = np.empty(256, np.float64)
    for v in range(256):
        lut[v] = (v / 255.0) ** p
    sums = np.zeros(3, np.float64)
    for y in range(h):
        for x in range(w):
            for c in range(3):
                sums[c] += lut[rgb[y, x, c]]
    n = h * w
    e = np.empty(3, np.float64)
    for c in range(3):
        e[c] = (sums[c] / n) ** (1.0 / p)
    norm = np.sqrt(e[0] * e[0] + e[1] * e[1] + e[2] * e[2])
    apply = np.empty((3, 256), np.uint8)
    for c in range(3):
        # white point e/|e| is mapped to the neutral (1,1,1)/sqrt(3)
        gain = 1.0 if e[c] <= 0.0 else norm / (np.sqrt(3.0) * e[c])
        for v in range(256):
            val = np.floor(v * gain + 0.5)
            apply[c, v] = 255 if val > 255.0 else np.uint8(val)
    for y in range(h):
        for x in range(w):
            for c in range(3):
                out[y, x, c] = apply[c, rgb[y, x, c]]


def shades_of_gray(rgb: np.ndarray, p: float = 6.0) -> np.ndarray:
    """Correct the illuminant of an RGB image with the Shades-of-Gray method.

    The illuminant is estimated per channel as the Minkowski p-norm mean
    ``e_c = mean(I_c ** p) ** (1/p)`` (p=6 as in Barata et al. 2015), and each channel is
    multiplied by ``|e| / (sqrt(3) e_c)`` so that the estimated illuminant becomes neutral grey.
    Results are rounded half up and clipped to 255.

    Parameters
    ----------
    rgb : numpy.ndarray
        ``uint8`` ``(H, W, 3)``, C-contiguous.
    p : float
        Minkowski norm (1: grey world, large: max-RGB).

    Returns
    -------
    numpy.ndarray
        ``uint8`` ``(H, W, 3)``.
    """
    if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3):
        raise TypeError("rgb must be a uint8 (H, W, 3) array")
    rgb = np.ascontiguousarray(rgb)
    out = np.empty_like(rgb)
    _shades_of_gray_core(rgb, float(p), out)
    return out
