"""Argument checks shared by the kernel wrappers (plain Python, numpy only)."""

from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=64)
def _allowed(dtype: object) -> tuple[frozenset, str]:
    dtypes = dtype if isinstance(dtype, tuple) else (dtype,)
    allowed = frozenset(np.dtype(d) for d in dtypes)
    return allowed, " or ".join(np.dtype(d).name for d in dtypes)


def check_array(
    x: object,
    name: str,
    dtype: np.dtype | type | tuple[np.dtype | type, ...],
    ndim: int,
    *,
    channels: int | None = None,
) -> np.ndarray:
    """Check that ``x`` is a C-contiguous ndarray of the given dtype(s) and ndim.

    Raises ``TypeError`` for a non-array or a wrong dtype, ``ValueError`` for a wrong
    number of dimensions, a wrong channel count (last axis) or non-C-contiguous memory.
    Returns ``x`` unchanged.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(x).__name__}")
    allowed, want = _allowed(dtype)  # cached: these checks run on every kernel call
    if x.dtype not in allowed:
        raise TypeError(f"{name} must have dtype {want}, got {x.dtype.name}")
    if x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {x.shape}")
    if channels is not None and x.shape[-1] != channels:
        raise ValueError(f"{name} must have {channels} channels (last axis), got shape {x.shape}")
    if not x.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (use np.ascontiguousarray)")
    return x


def check_mask(mask: object, shape: tuple[int, ...], name: str = "mask") -> np.ndarray:
    """Check a C-contiguous boolean 2-D mask whose shape equals ``shape``."""
    m = check_array(mask, name, np.bool_, 2)
    if m.shape != tuple(shape):
        raise ValueError(f"{name} shape {m.shape} does not match image shape {tuple(shape)}")
    return m
