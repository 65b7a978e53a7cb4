"""Decoding and guards: every image and mask enters hamfeat through this module.

Contract
--------
* :func:`read_image` returns a C-contiguous ``uint8`` array of shape ``(H, W, 3)`` in **RGB**
  order, whatever the file held (8-bit RGB, grayscale, palette, CMYK JPEG, 16-bit PNG, RGBA).
* :func:`read_mask` returns a ``bool`` array of shape ``(H, W)``; masks are read as luminance, so
  palette PNGs whose palette maps index 0 to white load the right way round.
* Every failure raises :class:`~hamfeat.errors.ImageError` or :class:`~hamfeat.errors.MaskError`
  whose message is one line naming the file.
* JPEGs of 1 or 3 components are decoded once, strictly, by libjpeg-turbo (through
  ``simplejpeg``): corrupt compressed data are refused (``corrupt JPEG data (...); refused``)
  instead of being decoded to wrong pixels with a warning on stderr, as OpenCV does. The pixels
  are those of ``cv2.imdecode(..., IMREAD_COLOR)``, EXIF orientation included, bit for bit
  (checked on every real file). PNGs, CMYK/YCCK JPEGs and what TurboJPEG cannot decode go
  through OpenCV, after a strict check of their compressed data.

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

import errno
import io
import os
import stat
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import simplejpeg
from PIL import Image, UnidentifiedImageError

from hamfeat.errors import ImageError, MaskError

__all__ = [
    "CANONICAL_LONG_SIDE",
    "IMAGE_SUFFIXES",
    "MAX_PIXELS",
    "canonical_shape",
    "decode_image",
    "mask_to_canonical",
    "not_regular_reason",
    "open_regular",
    "probe_header",
    "read_bytes",
    "read_image",
    "read_mask",
    "special_kind",
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
#: Strict-decoder complaints that are no damage to the compressed data, so the file is left to
#: OpenCV: a data precision, process, colour space or sampling TurboJPEG does not decode, and
#: libjpeg warnings about metadata (a bad ICC marker, an unknown Adobe transform code or JFIF
#: revision, a bad JFIF thumbnail), which simplejpeg cannot be told to ignore.
_JPEG_NOT_DAMAGE = (
    "precision",
    "color conversion",
    "colorspace",
    "subsampling",
    "jpeg process",
    "arithmetic coding",
    "not implemented",
    "omitted at compile time",
    "icc marker",
    "adobe",
    "jfif revision",
    "thumbnail",
)


def special_kind(path: str | os.PathLike[str]) -> str | None:
    """What a path is when it is not a regular file (or a link to one), without opening it.

    Parameters
    ----------
    path : path-like
        The path.

    Returns
    -------
    str or None
        ``None`` for a regular file (also through symbolic links) and for a path that does
        not exist; else ``"fifo"``, ``"socket"``, ``"directory"``, ``"character device"``,
        ``"block device"``, ``"broken symbolic link"`` or ``"symbolic link loop"``.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "broken symbolic link" if os.path.islink(path) else None
    except OSError as exc:
        return "symbolic link loop" if exc.errno == errno.ELOOP else None
    return _kind_of_mode(st.st_mode)


def _kind_of_mode(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    for test, name in (
        (stat.S_ISDIR, "directory"),
        (stat.S_ISFIFO, "fifo"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
    ):
        if test(mode):
            return name
    return "special file"


def not_regular_reason(kind: str) -> str:
    """The one-line reason given for a path that is not a regular file (see
    :func:`special_kind`)."""
    if kind == "broken symbolic link":
        return kind
    return f"not a regular file ({kind}); skipped"


def open_regular(path: str | os.PathLike[str], kind: type[ImageError] = ImageError):
    """Open a regular file for reading; anything else is refused, and never blocks.

    A FIFO, socket, device or folder is refused from a ``stat`` before opening, and the file
    is opened non-blocking and checked again with ``fstat`` (so a FIFO put in its place in
    between cannot make the open or the read wait for ever).

    Parameters
    ----------
    path : path-like
        The file.
    kind : type
        The error class to raise (:class:`ImageError` or :class:`MaskError`).

    Returns
    -------
    file object
        Opened ``"rb"``.

    Raises
    ------
    ImageError or MaskError
        One line naming the file and what it is (``not a regular file (fifo); skipped``).
    """
    what = special_kind(path)
    if what is not None:
        raise kind(path, not_regular_reason(what))
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        reason = "broken symbolic link" if os.path.islink(path) else "file not found"
        raise kind(path, reason) from None
    except PermissionError:
        raise kind(path, "permission denied") from None
    except IsADirectoryError:
        raise kind(path, not_regular_reason("directory")) from None
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket, or a FIFO swapped in
            raise kind(path, not_regular_reason("socket")) from None
        raise kind(path, f"cannot read file ({exc.strerror or exc})") from None
    try:
        what = _kind_of_mode(os.fstat(fd).st_mode)
    except OSError:
        what = "special file"
    if what is not None:
        os.close(fd)
        raise kind(path, not_regular_reason(what))
    return os.fdopen(fd, "rb")  # O_NONBLOCK has no effect on regular files


def read_bytes(path: str | os.PathLike[str], kind: type[ImageError] = ImageError) -> bytes:
    """Read a whole regular file, turning every OS error into a one-line hamfeat error.

    Parameters
    ----------
    path : path-like
        The file (a FIFO, socket, device or folder is refused: :func:`open_regular`).
    kind : type
        The error class to raise (:class:`ImageError` or :class:`MaskError`).

    Returns
    -------
    bytes
        The file's content.
    """
    try:
        with open_regular(path, kind) as fh:
            data = fh.read()
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
        # The bomb warning is judged below; PIL's other warnings are about metadata (a broken
        # EXIF entry...) and would reach stderr without the file's name.
        warnings.simplefilter("ignore")
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
    fmt, mode, (width, height) = probe_header(data, path, ImageError)
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
        if mode != "CMYK":  # PIL's mode for 4-component (CMYK and YCCK) JPEGs
            rgb = _decode_jpeg(data, path, (height, width))
            if rgb is not None:
                return rgb
        _check_jpeg_data(data, path)  # what follows is OpenCV's lenient decode
    elif fmt == "PNG":
        _check_png_chunks(data, path, ImageError)
    buf = np.frombuffer(data, dtype=np.uint8)
    # IMREAD_COLOR turns grayscale, palette, CMYK and 16-bit files into 8-bit BGR, and applies
    # the EXIF orientation.
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if bgr is None or bgr.ndim != 3 or bgr.shape[2] != 3:
        raise ImageError(path, f"cannot decode {fmt} data (corrupt file?)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _refuse_if_damage(exc: ValueError, path: str | os.PathLike[str]) -> None:
    """Raise for a strict-decoder complaint about damaged data; return for one that is not.

    Damage is anything not in :data:`_JPEG_NOT_DAMAGE`: a garbled byte, a bad Huffman code, a
    missing marker or end of data, a bogus header value. It raises :class:`ImageError`
    ``corrupt JPEG data (<libjpeg's reason>); refused``.
    """
    msg = " ".join(str(exc).split())
    if not any(s in msg.lower() for s in _JPEG_NOT_DAMAGE):
        detail = msg.removeprefix("Corrupt JPEG data: ")
        raise ImageError(path, f"corrupt JPEG data ({detail}); refused") from None


def _decode_jpeg(
    data: bytes, path: str | os.PathLike[str], shape: tuple[int, int]
) -> np.ndarray | None:
    """Decode a 1- or 3-component JPEG once, strictly, to RGB, as ``cv2.imdecode`` would.

    libjpeg only *warns* about corrupt compressed data (on stderr, without the file's name)
    and OpenCV then returns garbage pixels. TurboJPEG (through ``simplejpeg``: libjpeg-turbo,
    with the accurate integer IDCT and smooth chroma upsampling OpenCV uses too) is told to stop
    at the first warning instead, which refuses such a file with libjpeg's reason. Its pixels
    are those of ``cv2.imdecode(..., IMREAD_COLOR)`` in RGB order, bit for bit (a slow test
    checks every real file), and the EXIF orientation is applied as OpenCV applies it
    (:func:`_exif_transform`).

    Returns ``None`` for a file the strict decoder cannot do though it is not damaged (see
    :data:`_JPEG_NOT_DAMAGE`), or whose orientation could not be matched: it is left to OpenCV.
    """
    try:
        rgb = simplejpeg.decode_jpeg(data, colorspace="RGB", strict=True)
    except ValueError as exc:
        _refuse_if_damage(exc, path)
        return None
    if rgb.shape != (*shape, 3):
        return None  # not what the header announced: let OpenCV (and its guards) judge
    transform = _exif_transform(data)
    if transform is None:
        return None
    return rgb if transform is _identity else np.ascontiguousarray(transform(rgb))


def _identity(a: np.ndarray) -> np.ndarray:
    """EXIF orientation 1 (or none): the array itself."""
    return a


#: The eight EXIF orientations as array transforms, in the order OpenCV applies them.
_ORIENTATIONS = (
    _identity,
    lambda a: a[:, ::-1],
    lambda a: a[::-1, ::-1],
    lambda a: a[::-1],
    lambda a: a.transpose(1, 0, 2),
    lambda a: a.transpose(1, 0, 2)[:, ::-1],
    lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    lambda a: a.transpose(1, 0, 2)[::-1],
)
_probe_cache: dict[str, object] = {}


def _jpeg_app1_segments(data: bytes) -> list[bytes]:
    """The APP1 segments (Exif, XMP, ...) of a JPEG, marker and length included, up to SOS."""
    out, i, n = [], 2, len(data)
    while i + 4 <= n and data[i] == 0xFF:
        code = data[i + 1]
        if code == 0xFF:  # fill byte
            i += 1
            continue
        if code == 0xDA or code == 0xD9:  # start of scan, end of image
            break
        if code == 0x01 or 0xD0 <= code <= 0xD7:  # TEM, RSTn: no length
            i += 2
            continue
        end = i + 2 + int.from_bytes(data[i + 2 : i + 4], "big")
        if code == 0xE1:
            out.append(data[i:end])
        i = end
    return out


def _exif_transform(data: bytes):
    """The array transform ``cv2.imdecode(data, IMREAD_COLOR)`` applies for the EXIF orientation.

    Rather than re-implement OpenCV's EXIF reader (which reads one APP1 segment of its choice,
    with its own idea of malformed entries), the file's APP1 segments are spliced into a tiny
    16x16 JPEG whose four quadrants differ, OpenCV decodes that (microseconds), and the one
    transform of the eight that maps the plain tiny image onto OpenCV's result is returned.
    Without an APP1 segment the answer is the identity, without asking OpenCV. ``None`` when
    no transform matches (never seen; the caller then leaves the file to OpenCV).
    """
    app1 = _jpeg_app1_segments(data)
    if not app1:
        return _identity
    if not _probe_cache:
        quad = np.kron(np.array([[30, 100], [170, 240]], np.uint8), np.ones((8, 8), np.uint8))
        ok, enc = cv2.imencode(".jpg", quad, [cv2.IMWRITE_JPEG_QUALITY, 100])
        assert ok
        probe = enc.tobytes()
        # after SOI and the JFIF APP0 segment that OpenCV writes first
        at = 2 + 2 + int.from_bytes(probe[4:6], "big") if probe[2:4] == b"\xff\xe0" else 2
        plain = cv2.imdecode(np.frombuffer(probe, np.uint8), cv2.IMREAD_COLOR)
        _probe_cache.update(head=probe[:at], tail=probe[at:], plain=plain)
    spliced = _probe_cache["head"] + b"".join(app1) + _probe_cache["tail"]
    seen = cv2.imdecode(np.frombuffer(spliced, np.uint8), cv2.IMREAD_COLOR)
    if seen is None:
        return None
    plain = _probe_cache["plain"]
    for transform in _ORIENTATIONS:
        candidate = transform(plain)
        if candidate.shape == seen.shape and np.array_equal(candidate, seen):
            return transform
    return None


def _check_jpeg_data(data: bytes, path: str | os.PathLike[str]) -> None:
    """Refuse a JPEG whose compressed data is corrupt, before OpenCV decodes it.

    For the JPEGs :func:`_decode_jpeg` leaves to OpenCV (CMYK and YCCK, which OpenCV converts
    to RGB its own way, and what TurboJPEG cannot decode strictly): the data are decoded once
    more, strictly and at 1/8 scale (every compressed byte is still read). A complaint that is
    no damage (see :data:`_JPEG_NOT_DAMAGE`) is left to OpenCV.
    """
    try:
        colorspace = simplejpeg.decode_jpeg_header(data, strict=False)[2]
        out = "CMYK" if colorspace in ("CMYK", "YCCK") else "GRAY"
        simplejpeg.decode_jpeg(data, colorspace=out, min_factor=8, strict=True)
    except ValueError as exc:
        _refuse_if_damage(exc, path)


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
