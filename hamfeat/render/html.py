"""HTML machinery shared by every page: templates, embedded images and figures, writing.

* :func:`environment`: the one Jinja2 environment (templates in ``hamfeat/render/templates``,
  HTML auto-escaping on, undefined names are errors, a few number filters);
* :func:`image_data_uri`, :func:`outlined_thumbnail`, :func:`figure_data_uri`: images as
  ``data:`` URIs, so a page is one self-contained file that opens from the file system with no
  server and no network (the base template's Content-Security-Policy forbids loading anything
  else: a page that tried would show the browser's error on its console);
* :func:`write_page`: the shared atomic writer of :mod:`hamfeat._io`.
"""

from __future__ import annotations

import base64
import functools
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "OUTLINE_RGB",
    "REFERENCE_RGB",
    "environment",
    "figure_data_uri",
    "image_data_uri",
    "outlined_thumbnail",
    "outlines_thumbnail",
    "png_data_uri",
    "write_page",
]

TEMPLATES = Path(__file__).with_name("templates")
#: Colour of the mask outline on thumbnails (bright cyan: visible on skin and pigment).
OUTLINE_RGB = (0, 255, 255)
#: Colour of a second outline (the reference mask beside the automatic one): magenta.
REFERENCE_RGB = (255, 0, 255)


def _pct(value: Any, digits: int = 0) -> str:
    """``0.1234`` -> ``"12%"`` (``""`` for a missing value)."""
    if value is None or not np.isfinite(float(value)):
        return ""
    return f"{100.0 * float(value):.{int(digits)}f}%"


def _finite(value: Any) -> float | None:
    """``value`` as a float, or None when it is missing (None, NaN, infinite)."""
    if value is None:
        return None
    v = float(value)
    return v if np.isfinite(v) else None


def _num(value: Any, digits: int = 3) -> str:
    """A number with ``digits`` significant digits (``"missing"`` for NaN/None)."""
    v = _finite(value)
    return "missing" if v is None else f"{v:.{int(digits)}g}"


def _fixed(value: Any, digits: int = 3) -> str:
    """A number with ``digits`` decimals (``"n/a"`` for NaN/None: not defined)."""
    v = _finite(value)
    return "n/a" if v is None else f"{v:.{int(digits)}f}"


@functools.lru_cache(maxsize=1)
def environment():
    """The Jinja2 environment of every hamfeat page.

    Returns
    -------
    jinja2.Environment
        Loader on :data:`TEMPLATES`; auto-escaping of every ``.html``/``.j2`` template (so a
        file name such as ``<script>.jpg`` is shown, never run); ``StrictUndefined``; filters
        ``pct`` (fraction as a percentage), ``num`` (significant digits) and ``fixed``
        (decimals, ``n/a`` when not defined).
    """
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html", "j2", "html.j2"], default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = _pct
    env.filters["num"] = _num
    env.filters["fixed"] = _fixed
    return env


def image_data_uri(rgb: np.ndarray, *, fmt: str = "jpeg", quality: int = 85) -> str:
    """Encode an RGB (or gray) ``uint8`` image as a ``data:`` URI.

    Parameters
    ----------
    rgb : numpy.ndarray
        ``uint8`` ``(H, W, 3)`` or ``(H, W)``.
    fmt : {"jpeg", "png"}
    quality : int
        JPEG quality.

    Returns
    -------
    str
    """
    from PIL import Image

    arr = np.ascontiguousarray(rgb, dtype=np.uint8)
    buf = io.BytesIO()
    img = Image.fromarray(arr)
    if fmt == "jpeg":
        img.save(buf, format="JPEG", quality=int(quality))
        mime = "image/jpeg"
    elif fmt == "png":
        img.save(buf, format="PNG", optimize=True)
        mime = "image/png"
    else:
        raise ValueError(f"unknown image format {fmt!r}; use 'jpeg' or 'png'")
    return f"data:{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def outlined_thumbnail(
    rgb: np.ndarray,
    mask: np.ndarray | None,
    *,
    max_side: int = 240,
    color: tuple[int, int, int] = OUTLINE_RGB,
    thickness: int = 2,
) -> str:
    """A thumbnail with the mask's outline drawn on it, as a JPEG ``data:`` URI.

    Parameters
    ----------
    rgb : numpy.ndarray
        ``uint8`` ``(H, W, 3)``.
    mask : numpy.ndarray or None
        ``bool`` ``(H, W)``; ``None`` draws no outline.
    max_side : int
        Longer side of the thumbnail in pixels (never enlarged).
    color : tuple of int
        Outline colour (RGB).
    thickness : int
        Outline width in thumbnail pixels.

    Returns
    -------
    str
    """
    outlines = [] if mask is None else [(mask, color)]
    return outlines_thumbnail(rgb, outlines, max_side=max_side, thickness=thickness)


def outlines_thumbnail(
    rgb: np.ndarray,
    outlines: Sequence[tuple[np.ndarray, tuple[int, int, int]]],
    *,
    max_side: int = 240,
    thickness: int = 2,
) -> str:
    """A thumbnail with several mask outlines, each in its colour, as a JPEG ``data:`` URI.

    Parameters
    ----------
    rgb : numpy.ndarray
        ``uint8`` ``(H, W, 3)``.
    outlines : sequence of (mask, color)
        ``bool`` ``(H, W)`` masks and their RGB colours, drawn in order (the last on top).
    max_side, thickness : int
        As :func:`outlined_thumbnail`.

    Returns
    -------
    str
    """
    import cv2

    h, w = rgb.shape[:2]
    scale = min(1.0, float(max_side) / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    thumb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) if scale < 1 else rgb.copy()
    thumb = np.ascontiguousarray(thumb)
    for mask, color in outlines:
        if mask is None or not np.any(mask):
            continue
        m = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
        contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(thumb, contours, -1, tuple(int(c) for c in color), int(thickness))
    return image_data_uri(thumb)


def png_data_uri(png: bytes) -> str:
    """PNG file bytes as a ``data:`` URI (a figure already written beside a report)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def figure_data_uri(fig, *, dpi: int = 100) -> str:
    """A matplotlib figure as a PNG ``data:`` URI (the figure is closed).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    dpi : int

    Returns
    -------
    str
    """
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=int(dpi), bbox_inches="tight")
    finally:
        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def write_page(text: str, path: str | os.PathLike[str]) -> Path:
    """Write a page (UTF-8) with the shared output writer (:func:`hamfeat._io.write_output`):
    atomic for a regular file, nothing half-written left in its place.

    Parameters
    ----------
    text : str
    path : path-like

    Returns
    -------
    pathlib.Path

    Raises
    ------
    OutputError
        When the page cannot be written (one line naming it).
    """
    from hamfeat._io import write_output

    write_output(path, lambda fh: fh.write(text), binary=False)
    return Path(path)
