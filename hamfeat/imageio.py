"""Decoding and guards: every image and mask enters hamfeat through this module.

Contract
--------
* :func:`read_image` returns a C-contiguous ``uint8`` array of shape ``(H, W, 3)`` in **RGB**
  order, whatever the file held (8-bit RGB, grayscale, palette, CMYK JPEG, 16-bit PNG, RGBA).
* :func:`read_mask` returns a ``bool`` array of shape ``(H, W)``; masks are read as luminance, so
  palette PNGs whose palette maps index 0 to white load the right way round.
* Every failure raises :class:`~hamfeat.errors.ImageError` or :class:`~hamfeat.errors.MaskError`
  whose message is one line naming the file.

Size normalisation
------------------
Features are computed at a canonical resolution: the image is resized (``cv2.INTER_AREA``,
i.e. pixel-area averaging) so that its **longer side is** :data:`CANONICAL_LONG_SIDE` pixels,
keeping its aspect ratio. A 600x450 HAM10000 image becomes 300x225, a 1024x768 image from another
dermatoscope becomes 300x225 too. Area averaging removes most JPEG block noise, which makes texture
features robust to JPEG quality, and a quarter of the pixels makes every kernel four times cheaper.
Masks follow with nearest-neighbour-free area voting (a canonical pixel is lesion when at least
half of the source pixels it covers are).
"""

from __future__ import annotations

import io
import os
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from hamfeat.errors import ImageError, MaskError

__all__ = [
    "CANONICAL_LONG_SIDE",
    "IMAGE_SUFFIXES",
    "MAX_PIXELS",
    "canonical_shape",
    "decode_image",
    "mask_to_canonical",
    "probe_header",
    "read_bytes",
    "read_image",
    "read_mask",
    "to_canonical",
]

#: Longer side, in pixels, of the canonical resolution at which features are computed.
CANONICAL_LONG_SIDE = 300
#: Images with more pixels than this are refused before decoding (decompression bombs).
MAX_PIXELS = 64_000_000
#: Smallest accepted image side, in pixels.
MIN_SIDE = 16
#: File name endings treated as images.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")

_JPEG_SOI = b"\xff\xd8"
_JPEG_EOI = b"\xff\xd9"
#: Strict-decoder complaints that are not damage (see :func:`_check_jpeg_data`).
_JPEG_NOT_DAMAGE = ("precision", "color conversion", "colorspace", "icc")


def read_bytes(path: str | os.PathLike[str], kind: type[ImageError] = ImageError) -> bytes:
    """Read a whole file, turning every OS error into a one-line hamfeat error.

    Parameters
    ----------
    path : path-like
        The file.
    kind : type
        The error class to raise (:class:`ImageError` or :class:`MaskError`).

    Returns
    -------
    bytes
        The file's content.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        reason = "broken symbolic link" if os.path.islink(path) else "file not found"
        raise kind(path, reason) from None
    except PermissionError:
        raise kind(path, "permission denied") from None
    except IsADirectoryError:
        raise kind(path, "is a directory, not a file") from None
    except OSError as exc:
        raise kind(path, f"cannot read file ({exc.strerror or exc})") from None
    if not data:
        raise kind(path, "empty file (0 bytes)")
    return data


def probe_header(data: bytes, path: str | os.PathLike[str], kind: type[ImageError]):
    """Identify an image's format, mode and ``(width, height)`` from its header only.

    No pixel is decoded, so this is cheap and safe on decompression bombs.

    Parameters
    ----------
    data : bytes
        The file's first bytes (64 KiB is plenty) or all of it.
    path : path-like
        Used in error messages.
    kind : type
        The error class to raise.

    Returns
    -------
    tuple
        ``(format, mode, (width, height))`` as PIL reports them.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as im:
                return im.format, im.mode, im.size
        except Image.DecompressionBombError:
            raise kind(path, f"image too large (over {MAX_PIXELS} pixels); refused") from None
        except UnidentifiedImageError:
            raise kind(path, "not an image file (unrecognised format)") from None
        except Exception as exc:  # PIL raises many types on broken headers
            raise kind(path, f"corrupt image header ({exc})") from None


def decode_image(data: bytes, path: str | os.PathLike[str] = "<bytes>") -> np.ndarray:
    """Decode encoded JPEG/PNG bytes to an RGB ``uint8`` array, with guards.

    Parameters
    ----------
    data : bytes
        The encoded file.
    path : path-like
        Used in error messages only.

    Returns
    -------
    numpy.ndarray
        ``uint8``, shape ``(H, W, 3)``, RGB, C-contiguous.

    Raises
    ------
    ImageError
        Unknown format, truncated JPEG, corrupt JPEG data, decompression bomb, image too
        small, decode failure.
    """
    fmt, _mode, (width, height) = probe_header(data, path, ImageError)
    if fmt not in ("JPEG", "PNG", "MPO"):
        raise ImageError(path, f"unsupported image format {fmt} (hamfeat reads JPEG and PNG)")
    if width * height > MAX_PIXELS:
        raise ImageError(
            path, f"image too large ({width}x{height} pixels, limit {MAX_PIXELS}); refused"
        )
    if min(width, height) < MIN_SIDE:
        raise ImageError(path, f"image too small ({width}x{height}; at least {MIN_SIDE} px a side)")
    if fmt in ("JPEG", "MPO"):
        if _JPEG_EOI not in data[-4096:]:
            raise ImageError(path, "truncated JPEG (no end-of-image marker)")
        _check_jpeg_data(data, path)
    elif fmt == "PNG":
        _check_png_chunks(data, path, ImageError)
    buf = np.frombuffer(data, dtype=np.uint8)
    # IMREAD_COLOR turns grayscale, palette, CMYK and 16-bit files into 8-bit BGR.
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if bgr is None or bgr.ndim != 3 or bgr.shape[2] != 3:
        raise ImageError(path, f"cannot decode {fmt} data (corrupt file?)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _check_jpeg_data(data: bytes, path: str | os.PathLike[str]) -> None:
    """Refuse a JPEG whose compressed data is corrupt (garbled bytes, bad Huffman codes).

    libjpeg only *warns* about corrupt data (on stderr, without the file's name) and OpenCV
    then returns garbage pixels, so the data are decoded once more, strictly and at 1/8 scale
    (every compressed byte is still read; about 1 ms for a 600x450 image). What this strict
    decoder cannot do but is no damage (a data precision or colour space it does not support, a
    bad ICC profile) is left to the OpenCV decode.
    """
    import simplejpeg

    try:
        colorspace = simplejpeg.decode_jpeg_header(data, strict=False)[2]
        out = "CMYK" if colorspace in ("CMYK", "YCCK") else "GRAY"
        simplejpeg.decode_jpeg(data, colorspace=out, min_factor=8, strict=True)
    except ValueError as exc:
        msg = " ".join(str(exc).split())
        if not any(s in msg.lower() for s in _JPEG_NOT_DAMAGE):
            detail = msg.removeprefix("Corrupt JPEG data: ")
            raise ImageError(path, f"corrupt JPEG data ({detail}); refused") from None


def _check_png_chunks(
    data: bytes, path: str | os.PathLike[str], kind: type[ImageError] | type[MaskError]
) -> None:
    """Refuse a truncated PNG, or one whose critical chunk fails its CRC (garbled bytes).

    libpng refuses those too, but prints its reason on stderr without the file's name; this
    walk of the chunks (a CRC-32 over the file, a fraction of the decode time) names it.
    Ancillary chunks with a bad CRC are left to libpng, which skips them.
    """
    view, i = memoryview(data), 8
    while True:
        if i + 12 > len(data):
            raise kind(path, "truncated PNG (no IEND chunk)")
        length = int.from_bytes(view[i : i + 4], "big")
        end = i + 12 + length
        name = bytes(view[i + 4 : i + 8]).decode("latin-1")
        if end > len(data):
            raise kind(path, f"truncated PNG (inside its {name} chunk)")
        critical = not view[i + 4] & 0x20  # upper-case first letter
        crc = int.from_bytes(view[end - 4 : end], "big")
        if critical and zlib.crc32(view[i + 4 : end - 4]) != crc:
            raise kind(path, f"corrupt PNG data (CRC error in its {name} chunk); refused")
        if name == "IEND":
            return
        i = end


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as RGB ``uint8`` ``(H, W, 3)``.

    Parameters
    ----------
    path : path-like
        A JPEG or PNG file.

    Returns
    -------
    numpy.ndarray
        ``uint8``, shape ``(H, W, 3)``, RGB.

    Raises
    ------
    ImageError
        With a one-line message naming the file.

    Examples
    --------
    >>> import numpy as np, cv2, tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> p = os.path.join(d, "x.png")
    >>> _ = cv2.imwrite(p, np.zeros((20, 30, 3), np.uint8))
    >>> read_image(p).shape
    (20, 30, 3)
    """
    return decode_image(read_bytes(path, ImageError), path)


def read_mask(path: str | os.PathLike[str], shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read a binary lesion mask as luminance and threshold it at 128.

    Parameters
    ----------
    path : path-like
        A PNG (or JPEG) mask; lesion is white.
    shape : tuple of int, optional
        ``(H, W)`` of the image the mask belongs to; a mask of another size is refused.

    Returns
    -------
    numpy.ndarray
        ``bool``, shape ``(H, W)``.

    Raises
    ------
    MaskError
        Unreadable file, wrong size, no lesion pixel, or lesion covering every pixel.
    """
    data = read_bytes(path, MaskError)
    fmt, _mode, (width, height) = probe_header(data, path, MaskError)
    if width * height > MAX_PIXELS:
        raise MaskError(path, f"mask too large ({width}x{height} pixels); refused")
    if fmt == "PNG":
        _check_png_chunks(data, path, MaskError)
    # IMREAD_GRAYSCALE converts palette images through their palette (luminance), not indices.
    gray = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    if gray is None:
        raise MaskError(path, f"cannot decode {fmt} mask (corrupt file?)")
    if shape is not None and gray.shape != tuple(shape):
        raise MaskError(
            path,
            f"mask is {gray.shape[1]}x{gray.shape[0]} but its image is {shape[1]}x{shape[0]}",
        )
    mask = gray >= 128
    n = int(mask.sum())
    if n == 0:
        raise MaskError(path, "mask is empty (no lesion pixel)")
    if n == mask.size:
        raise MaskError(path, "mask covers the whole image (no skin pixel)")
    return mask


def canonical_shape(
    height: int, width: int, long_side: int = CANONICAL_LONG_SIDE
) -> tuple[int, int]:
    """Return the canonical ``(H, W)`` for an image of ``height`` x ``width`` pixels.

    Examples
    --------
    >>> canonical_shape(450, 600)
    (225, 300)
    >>> canonical_shape(768, 1024)
    (225, 300)
    >>> canonical_shape(1000, 1000)
    (300, 300)
    """
    scale = long_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def to_canonical(rgb: np.ndarray, long_side: int = CANONICAL_LONG_SIDE) -> np.ndarray:
    """Resize an image to the canonical resolution with pixel-area averaging.

    Parameters
    ----------
    rgb : numpy.ndarray
        ``uint8`` ``(H, W, 3)``.
    long_side : int
        Target length of the longer side.

    Returns
    -------
    numpy.ndarray
        ``uint8`` ``(h, w, 3)``, C-contiguous. The input itself when it is already that size.
    """
    h, w = canonical_shape(rgb.shape[0], rgb.shape[1], long_side)
    if (h, w) == rgb.shape[:2]:
        return np.ascontiguousarray(rgb)
    interp = cv2.INTER_AREA if h < rgb.shape[0] else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(rgb, (w, h), interpolation=interp))


def mask_to_canonical(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a boolean mask to ``shape`` by area voting (lesion when ≥ half covered).

    Parameters
    ----------
    mask : numpy.ndarray
        ``bool`` ``(H, W)``.
    shape : tuple of int
        Target ``(h, w)``.

    Returns
    -------
    numpy.ndarray
        ``bool`` ``(h, w)``.
    """
    if tuple(shape) == mask.shape:
        return mask
    small = cv2.resize(
        mask.astype(np.uint8) * 255, (shape[1], shape[0]), interpolation=cv2.INTER_AREA
    )
    return small >= 128


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` ends in a suffix of :data:`IMAGE_SUFFIXES` (any case)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES
