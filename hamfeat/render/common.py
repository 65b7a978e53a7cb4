"""Formatting shared by the text renderers: ONE number formatter (missing values, NaN) and ONE
JSON encoder default (numpy scalars and arrays, paths), used by the library's reports and the
benchmarks (``benchmarks/_common.py``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["fmt", "json_default", "to_json"]


def fmt(x: float | None, nd: int = 3, missing: str = "–") -> str:
    """A number with ``nd`` decimals; ``missing`` for None, NaN or an infinite value.

    Parameters
    ----------
    x : float or None
    nd : int
    missing : str
        The dermoscopy reports write "–", the X-ray ones "n/a".

    Returns
    -------
    str
    """
    if x is None or not math.isfinite(float(x)):
        return missing
    return f"{x:.{nd}f}"


def json_default(o: Any) -> Any:
    """``json.dumps``'s ``default``: numpy scalars and arrays as Python values, paths as str.

    Raises
    ------
    TypeError
        For any other type.
    """
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o).__name__)


def to_json(obj: Any, *, indent: int = 1) -> str:
    """``obj`` as JSON text (NaN kept as ``NaN``), ending with a newline.

    Returns
    -------
    str
    """
    return json.dumps(obj, indent=indent, default=json_default) + "\n"
