"""Colour-space conversions for uint8 RGB images (Numba kernels).

All functions take a C-contiguous ``uint8`` array of shape ``(H, W, 3)`` in **RGB**
channel order and return a new C-contiguous array of the same height and width.
"""

from __future__ import annotations

import numba
import numpy as np

from hamfeat._kernels._validate import check_array

__all__ = [
    "LAB_WHITE_D65",
    "XYZ_FROM_RGB",
    "hsv_views",
    "lab_views",
    "rgb_to_gray",
    "rgb_to_hsv",
    "rgb_to_lab",
    "scale_to_u8",
]

# --------------------------------------------------------------------------- HSV


# float32(v) / float32(255) for every uint8 v (bit-identical to the division).
_U8_TO_UNIT_F32 = (np.arange(256, dtype=np.float32) / np.float32(255.0)).astype(np.float32)


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _hsv_pixel(r, g, b):
    """HSV of one pixel (float32 r, g, b in 0..1): OpenCV's float formula, bit for bit."""
    eps = np.float32(np.finfo(np.float32).eps)  # OpenCV's FLT_EPSILON
    v = max(max(r, g), b)
    vmin = min(min(r, g), b)
    diff = v - vmin
    s = diff / (abs(v) + eps)
    k = np.float32(60.0) / (diff + eps)
    # branch-free selects (the hue sector is data-dependent: branches mispredict)
    is_r = v == r
    is_g = v == g
    num = (g - b) if is_r else ((b - r) if is_g else (r - g))
    off = (360.0 if g < b else 0.0) if is_r else (120.0 if is_g else 240.0)
    # OpenCV evaluates num * k + off with a fused multiply-add (one rounding). The
    # float32 x float32 product is exact in float64; the float64 sum rounded to
    # float32 reproduces the FMA for every uint8 triplet (checked exhaustively).
    return np.float32(np.float64(num) * np.float64(k) + off), s, v


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _rgb_to_hsv_core(flat: np.ndarray, unit: np.ndarray, out: np.ndarray) -> None:
    # flat: uint8 (3N,) interleaved RGB; out: float32 (3N,) interleaved HSV.
    n = flat.shape[0] // 3
    for p in range(n):
        h, s, v = _hsv_pixel(unit[flat[3 * p]], unit[flat[3 * p + 1]], unit[flat[3 * p + 2]])
        out[3 * p] = h
        out[3 * p + 1] = s
        out[3 * p + 2] = v


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """Convert uint8 RGB to float32 HSV (OpenCV float convention).

    Parameters
    ----------
    rgb : ndarray, uint8, shape (H, W, 3), C-contiguous
        RGB image.

    Returns
    -------
    hsv : ndarray, float32, shape (H, W, 3)
        ``H`` in degrees in ``[0, 360)``, ``S`` and ``V`` in ``[0, 1]``.  Same formulas
        and float32 operation order as
        ``cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2HSV)``:
        ``V = max``, ``S = (max - min) / (V + FLT_EPSILON)``,
        ``H = fma(., 60 / (max - min + FLT_EPSILON), {0 or 360, 120, 240})``.
        Grey pixels get ``H = S = 0``.  Bit-identical to OpenCV 5.0's SIMD path for
        all 2**24 RGB triplets (exhaustive test); OpenCV's scalar tail (last few
        pixels of a row whose width is not a multiple of the vector width) rounds
        ``H`` without FMA and can differ from this by 1 float32 ulp (<= 3.1e-5 deg).
    """
    check_array(rgb, "rgb", np.uint8, 3, channels=3)
    out = np.empty(rgb.shape, dtype=np.float32)
    _rgb_to_hsv_core(rgb.reshape(-1), _U8_TO_UNIT_F32, out.reshape(-1))
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _hsv_views_core(
    flat: np.ndarray,
    unit: np.ndarray,
    hue_shift: np.float32,
    scale: np.ndarray,
    offset: np.ndarray,
    out: np.ndarray,
    out_u8: np.ndarray,
) -> None:
    # _rgb_to_hsv_core, then (same pass) the hue rotation and the uint8 levels, with
    # exactly the float32 operations of rgb_to_hsv + rotate + scale_to_u8.
    n = flat.shape[0] // 3
    f360 = np.float32(360.0)
    half = np.float32(0.5)
    s0, s1, s2 = scale[0], scale[1], scale[2]
    o0, o1, o2 = offset[0], offset[1], offset[2]
    for p in range(n):
        h, s, v = _hsv_pixel(unit[flat[3 * p]], unit[flat[3 * p + 1]], unit[flat[3 * p + 2]])
        h = h + hue_shift
        h = (h - f360) if h >= f360 else h
        out[3 * p] = h
        out[3 * p + 1] = s
        out[3 * p + 2] = v
    # uint8 levels in a second, arithmetic-only (vectorised) loop over the output
    for p in range(n):
        out_u8[3 * p] = _to_u8(out[3 * p] * s0 + o0 + half)
        out_u8[3 * p + 1] = _to_u8(out[3 * p + 1] * s1 + o1 + half)
        out_u8[3 * p + 2] = _to_u8(out[3 * p + 2] * s2 + o2 + half)


def hsv_views(
    rgb: np.ndarray, hue_shift: float, scale: np.ndarray, offset: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """HSV with a rotated hue, and its uint8 levels, in one pass.

    Equal, bit for bit, to ``hsv = rgb_to_hsv(rgb)``; ``h = hsv[..., 0]; h += hue_shift;
    h[h >= 360] -= 360`` (float32 arithmetic); ``u8 = scale_to_u8(hsv, scale, offset)``.

    Parameters
    ----------
    rgb : ndarray, uint8, shape (H, W, 3), C-contiguous
    hue_shift : float
        Added to H (as float32), then 360 is subtracted where the result is >= 360.
        Use 0 for plain HSV.
    scale, offset : ndarray, shape (3,)
        Per-channel factors of :func:`scale_to_u8` (taken as float32).

    Returns
    -------
    hsv : ndarray, float32, shape (H, W, 3)
    hsv_u8 : ndarray, uint8, shape (H, W, 3)
    """
    check_array(rgb, "rgb", np.uint8, 3, channels=3)
    scale, offset = _scale_offset(scale, offset, 3)
    out = np.empty(rgb.shape, dtype=np.float32)
    out_u8 = np.empty(rgb.shape, dtype=np.uint8)
    _hsv_views_core(
        rgb.reshape(-1),
        _U8_TO_UNIT_F32,
        np.float32(hue_shift),
        scale,
        offset,
        out.reshape(-1),
        out_u8.reshape(-1),
    )
    return out, out_u8


# --------------------------------------------------------------------------- Lab

#: sRGB (linear) -> CIE XYZ matrix, the one used by scikit-image and OpenCV.
XYZ_FROM_RGB = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ],
    dtype=np.float64,
)
#: D65 / 2 degree reference white, as in ``skimage.color.xyz2lab``.
LAB_WHITE_D65 = np.array([0.95047, 1.0, 1.08883], dtype=np.float64)


def _srgb_linear_lut() -> np.ndarray:
    """256-entry sRGB -> linear LUT (float64), same formula as ``skimage.color.rgb2xyz``."""
    c = np.arange(256, dtype=np.float64) / 255.0
    return np.where(c > 0.04045, np.power((c + 0.055) / 1.055, 2.4), c / 12.92)


# Fold the white-point normalisation into the matrix rows and the matrix columns into
# three per-channel LUTs: X/Xn = LUT_X0[r] + LUT_X1[g] + LUT_X2[b], etc.
_LIN = _srgb_linear_lut()
_LAB_LUT = np.ascontiguousarray(
    (XYZ_FROM_RGB / LAB_WHITE_D65[:, None])[:, :, None] * _LIN[None, None, :]
)  # (3 xyz, 3 rgb, 256) float64


# Cube root on [0, _CBRT_TMAX]: tabulated on a uniform grid, linearly interpolated and
# refined by one Halley step (cubic convergence: relative error < 1e-13 for t > 0.008856,
# 3x faster than libm cbrt).  X/Xn, Y/Yn, Z/Zn are <= 1.0 for uint8 sRGB.
_CBRT_TMAX = 1.25
_CBRT_N = 1024
_CBRT_TAB = np.cbrt(np.linspace(0.0, _CBRT_TMAX, _CBRT_N + 1))
_CBRT_SCALE = _CBRT_N / _CBRT_TMAX


_LAB_BLOCK = 512  # pixels per block of the two-pass Lab kernels


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _lab_f_block(
    src: np.ndarray, lut: np.ndarray, cbrt_tab: np.ndarray, t: np.ndarray, x0: np.ndarray
) -> None:
    # CIE f(t) of X/Xn, Y/Yn, Z/Zn of the len(src) // 3 pixels of src (interleaved RGB),
    # into t (interleaved fx, fy, fz), with the constants used by skimage (0.008856,
    # 7.787).  Cube root: tabulated on a uniform grid, linearly interpolated and refined
    # by one Halley step.  Pass 1 does every table load (scalar); pass 2 is arithmetic
    # only on contiguous arrays, so it is vectorised (error_model="numpy": IEEE
    # division, no zero-division branch; the Halley quotient is computed for every t
    # and kept only where t > 0.008856, where its denominator is > 0).  The float64
    # operations and their order are those of the one-pass version, so the results are
    # bit-identical to it.
    m = src.shape[0] // 3
    lx0, lx1, lx2 = lut[0, 0], lut[0, 1], lut[0, 2]
    ly0, ly1, ly2 = lut[1, 0], lut[1, 1], lut[1, 2]
    lz0, lz1, lz2 = lut[2, 0], lut[2, 1], lut[2, 2]
    for p in range(m):
        r = src[3 * p]
        g = src[3 * p + 1]
        b = src[3 * p + 2]
        t[3 * p] = lx0[r] + lx1[g] + lx2[b]
        t[3 * p + 1] = ly0[r] + ly1[g] + ly2[b]
        t[3 * p + 2] = lz0[r] + lz1[g] + lz2[b]
        for k in range(3):
            u = t[3 * p + k] * _CBRT_SCALE
            i = np.uint32(u)  # t >= 0; unsigned: no negative-index code
            fr = u - i
            c0 = cbrt_tab[i]
            x0[3 * p + k] = c0 + fr * (cbrt_tab[i + 1] - c0)
    for q in range(3 * m):
        tq = t[q]
        x = x0[q]
        x3 = x * x * x
        cube = x * (x3 + 2.0 * tq) / (2.0 * x3 + tq)
        lin = 7.787 * tq + 16.0 / 116.0
        t[q] = cube if tq > 0.008856 else lin


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _rgb_to_lab_core(
    flat: np.ndarray, lut: np.ndarray, cbrt_tab: np.ndarray, out: np.ndarray
) -> None:
    # flat: uint8 (3N,) interleaved RGB; out: float32 (3N,) interleaved Lab.
    n = flat.shape[0] // 3
    t = np.empty(3 * _LAB_BLOCK)
    x0 = np.empty(3 * _LAB_BLOCK)
    for s in range(0, n, _LAB_BLOCK):
        m = min(_LAB_BLOCK, n - s)
        _lab_f_block(flat[3 * s : 3 * (s + m)], lut, cbrt_tab, t, x0)
        dst = out[3 * s : 3 * (s + m)]
        for p in range(m):
            fx = t[3 * p]
            fy = t[3 * p + 1]
            fz = t[3 * p + 2]
            dst[3 * p] = 116.0 * fy - 16.0
            dst[3 * p + 1] = 500.0 * (fx - fy)
            dst[3 * p + 2] = 200.0 * (fy - fz)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _lab_views_core(
    flat: np.ndarray,
    lut: np.ndarray,
    cbrt_tab: np.ndarray,
    scale: np.ndarray,
    offset: np.ndarray,
    out: np.ndarray,
    out_u8: np.ndarray,
) -> None:
    # _rgb_to_lab_core and, in the same pass, scale_to_u8 of its float32 output.
    n = flat.shape[0] // 3
    half = np.float32(0.5)
    s0, s1, s2 = scale[0], scale[1], scale[2]
    o0, o1, o2 = offset[0], offset[1], offset[2]
    t = np.empty(3 * _LAB_BLOCK)
    x0 = np.empty(3 * _LAB_BLOCK)
    for s in range(0, n, _LAB_BLOCK):
        m = min(_LAB_BLOCK, n - s)
        _lab_f_block(flat[3 * s : 3 * (s + m)], lut, cbrt_tab, t, x0)
        dst = out[3 * s : 3 * (s + m)]
        dst8 = out_u8[3 * s : 3 * (s + m)]
        for p in range(m):
            fx = t[3 * p]
            fy = t[3 * p + 1]
            fz = t[3 * p + 2]
            l_ = np.float32(116.0 * fy - 16.0)
            a_ = np.float32(500.0 * (fx - fy))
            b_ = np.float32(200.0 * (fy - fz))
            dst[3 * p] = l_
            dst[3 * p + 1] = a_
            dst[3 * p + 2] = b_
            dst8[3 * p] = _to_u8(l_ * s0 + o0 + half)
            dst8[3 * p + 1] = _to_u8(a_ * s1 + o1 + half)
            dst8[3 * p + 2] = _to_u8(b_ * s2 + o2 + half)


def lab_views(
    rgb: np.ndarray, scale: np.ndarray, offset: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """CIE L*a*b* and its uint8 levels, in one pass.

    Equal, bit for bit, to ``lab = rgb_to_lab(rgb)``, ``scale_to_u8(lab, scale, offset)``.

    Parameters
    ----------
    rgb : ndarray, uint8, shape (H, W, 3), C-contiguous
    scale, offset : ndarray, shape (3,)
        Per-channel factors of :func:`scale_to_u8` (taken as float32).

    Returns
    -------
    lab : ndarray, float32, shape (H, W, 3)
    lab_u8 : ndarray, uint8, shape (H, W, 3)
    """
    check_array(rgb, "rgb", np.uint8, 3, channels=3)
    scale, offset = _scale_offset(scale, offset, 3)
    out = np.empty(rgb.shape, dtype=np.float32)
    out_u8 = np.empty(rgb.shape, dtype=np.uint8)
    _lab_views_core(
        rgb.reshape(-1), _LAB_LUT, _CBRT_TAB, scale, offset, out.reshape(-1), out_u8.reshape(-1)
    )
    return out, out_u8


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """Convert uint8 sRGB to float32 CIE L*a*b* (D65, 2 degree observer).

    Linearisation uses a 256-entry LUT (sRGB companding, threshold 0.04045, exponent
    2.4), the skimage/OpenCV ``XYZ_FROM_RGB`` matrix, the skimage white point
    ``(0.95047, 1, 1.08883)`` and skimage's ``f(t)`` (cube root above 0.008856,
    ``7.787 t + 16/116`` below).  Arithmetic is float64; only the output is rounded
    to float32.

    Parameters
    ----------
    rgb : ndarray, uint8, shape (H, W, 3), C-contiguous
        sRGB image.

    Returns
    -------
    lab : ndarray, float32, shape (H, W, 3)
        ``L`` in ``[0, 100]``, ``a`` and ``b`` roughly in ``[-128, 128]``.
        Matches ``skimage.color.rgb2lab`` to ~1e-4 (float32 rounding) and
        ``cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)`` to a few
        hundredths (OpenCV uses a slightly different white point and spline
        approximations); see ``tests/kernels/test_kernels_color.py`` for the exact bounds.
    """
    check_array(rgb, "rgb", np.uint8, 3, channels=3)
    out = np.empty(rgb.shape, dtype=np.float32)
    _rgb_to_lab_core(rgb.reshape(-1), _LAB_LUT, _CBRT_TAB, out.reshape(-1))
    return out


# --------------------------------------------------------------------------- gray

# OpenCV >= 4.x/5.x RGB2GRAY for 8-bit: 15-bit fixed-point BT.601 coefficients with
# rounding, gray = (9798 R + 19235 G + 3735 B + 2**14) >> 15 (coefficients sum to 2**15).
_GRAY_R = 9798
_GRAY_G = 19235
_GRAY_B = 3735
_GRAY_SHIFT = 15


@numba.njit(cache=True, nogil=True)
def _rgb_to_gray_core(flat: np.ndarray, out: np.ndarray) -> None:
    # flat: uint8 (3N,) interleaved RGB; out: uint8 (N,).
    n = out.shape[0]
    half = np.int32(1 << (_GRAY_SHIFT - 1))
    for p in range(n):
        v = (
            np.int32(flat[3 * p]) * _GRAY_R
            + np.int32(flat[3 * p + 1]) * _GRAY_G
            + np.int32(flat[3 * p + 2]) * _GRAY_B
            + half
        ) >> _GRAY_SHIFT
        out[p] = np.uint8(v)


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """Convert uint8 RGB to uint8 luma, bit-identical to ``cv2.COLOR_RGB2GRAY``.

    ``gray = (9798 R + 19235 G + 3735 B + 16384) >> 15`` (OpenCV's 15-bit fixed-point
    BT.601 weights 0.299/0.587/0.114 with round-half-up).  Verified exhaustively on all
    2**24 RGB triplets against the installed OpenCV.

    Parameters
    ----------
    rgb : ndarray, uint8, shape (H, W, 3), C-contiguous

    Returns
    -------
    gray : ndarray, uint8, shape (H, W)
    """
    check_array(rgb, "rgb", np.uint8, 3, channels=3)
    out = np.empty(rgb.shape[:2], dtype=np.uint8)
    _rgb_to_gray_core(rgb.reshape(-1), out.reshape(-1))
    return out


# --------------------------------------------------------------------------- to uint8


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _to_u8(x: np.float32) -> np.uint8:
    # clip(floor(x), 0, 255) as uint8 for finite float32 x: the result of
    # _scale_to_u8_core, computed in float32 and branch-free (min/max) so that the
    # calling loops vectorise.  (The views never produce NaN from uint8 RGB.)
    v = np.floor(x)
    v = max(v, np.float32(0.0))
    v = min(v, np.float32(255.0))
    return np.uint8(np.int32(v))


def _scale_offset(scale: np.ndarray, offset: np.ndarray, c: int) -> tuple[np.ndarray, np.ndarray]:
    scale = np.ascontiguousarray(scale, dtype=np.float32).reshape(c)
    offset = np.ascontiguousarray(offset, dtype=np.float32).reshape(c)
    return scale, offset


@numba.njit(cache=True, nogil=True)
def _scale_to_u8_core(
    values: np.ndarray, scale: np.ndarray, offset: np.ndarray, out: np.ndarray
) -> None:
    h, w, c = values.shape
    for y in range(h):
        for x in range(w):
            for k in range(c):
                v = np.floor(values[y, x, k] * scale[k] + offset[k] + np.float32(0.5))
                if v < 0:
                    v = 0
                elif v > 255:
                    v = 255
                out[y, x, k] = np.uint8(v)


def scale_to_u8(values: np.ndarray, scale: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Map float channels to ``uint8`` levels: ``clip(floor(v * scale + offset + 0.5), 0, 255)``.

    Parameters
    ----------
    values : numpy.ndarray
        ``float32`` ``(H, W, C)``, C-contiguous.
    scale, offset : numpy.ndarray
        ``float32`` ``(C,)`` per-channel factors.

    Returns
    -------
    numpy.ndarray
        ``uint8`` ``(H, W, C)``.

    Examples
    --------
    >>> v = np.array([[[0.0, 0.5, 1.0]]], np.float32)
    >>> scale_to_u8(v, np.float32([255, 255, 255]), np.float32([0, 0, 0]))[0, 0].tolist()
    [0, 128, 255]
    """
    check_array(values, "values", np.float32, 3)
    c = values.shape[2]
    scale = np.ascontiguousarray(scale, dtype=np.float32).reshape(c)
    offset = np.ascontiguousarray(offset, dtype=np.float32).reshape(c)
    out = np.empty(values.shape, np.uint8)
    _scale_to_u8_core(values, scale, offset, out)
    return out
