"""Pre-processing applied before features: colour constancy and optional hair removal."""

from __future__ import annotations

import cv2
import numpy as np

from hamfeat._kernels.constancy import shades_of_gray

__all__ = ["remove_hair", "shades_of_gray"]


def remove_hair(rgb: np.ndarray, kernel: int = 9, threshold: int = 12) -> np.ndarray:
    """Remove dark hairs: black-hat filtering finds thin dark lines, inpainting fills them.

    Parameters
    ----------
    rgb : numpy.ndarray
        ``uint8`` ``(H, W, 3)`` at canonical resolution.
    kernel : int
        Side of the cross-shaped structuring element, in pixels (wider than a hair).
    threshold : int
        Black-hat response (grey levels) above which a pixel is hair.

    Returns
    -------
    numpy.ndarray
        ``uint8`` ``(H, W, 3)``; the input when no hair pixel is found.
    """
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    se = cv2.getStructuringElement(cv2.MORPH_CROSS, (kernel, kernel))
    blackhat = cv2.morphologyEx(gray, cv2.MORPH_BLACKHAT, se)
    hair = (blackhat > threshold).astype(np.uint8)
    if not hair.any():
        return rgb
    hair = cv2.dilate(hair, np.ones((3, 3), np.uint8))
    return cv2.inpaint(rgb, hair, 3, cv2.INPAINT_TELEA)
