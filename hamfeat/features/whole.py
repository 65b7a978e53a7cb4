"""The ``whole`` family: colour and texture of the whole visible field, no lesion mask at all.

Every other dermoscopy family is computed inside the lesion mask, so its values move with the
mask's errors. A new image never has a reference mask, and the automatic mask fails most on the
pink, flat classes (akiec, bcc, vasc) that carry balanced accuracy. This family gives the models
a view of the image that no segmentation can spoil: the colour, heterogeneity, texture and
structure families run unchanged over every pixel of the field of view (the canonical image
without its dark vignette or frame), at half the canonical resolution.

Names are the sub-family's own names behind ``whole_``: ``whole_color_lab_l_mean``,
``whole_glcm_d1_contrast_mean``, ``whole_lbp_r2_u07``, ...
"""

from __future__ import annotations

import cv2
import numpy as np

from hamfeat.features.base import FRAME_V_MAX, Context, Family
from hamfeat.features.color import ColorFamily
from hamfeat.features.regional import HeterogeneityFamily
from hamfeat.features.structure import StructureFamily
from hamfeat.features.texture import GlcmFamily, LbpFamily, WaveletFamily

__all__ = ["WHOLE_LONG_SIDE", "WHOLE_MIN_FIELD", "WholeFamily", "field_context"]

#: Long side, in pixels, at which the field is measured (half the canonical 300 px).
WHOLE_LONG_SIDE = 150
#: Fraction of the image that must be field (not frame) to use the field as the region;
#: below it (an almost black image), every pixel is used.
WHOLE_MIN_FIELD = 0.2


def field_context(rgb: np.ndarray, long_side: int = WHOLE_LONG_SIDE) -> Context:
    """A :class:`Context` of the whole field of view of an image.

    The image is area-averaged to ``long_side`` (never enlarged), and the "lesion" mask of the
    context is every pixel brighter than the frame (HSV V > :data:`FRAME_V_MAX`): the dark
    vignette and black borders of many dermatoscopes are left out, so that a device's frame
    does not stand in for a diagnosis.

    Parameters
    ----------
    rgb : numpy.ndarray
        ``uint8`` ``(H, W, 3)``: the canonical image.
    long_side : int
        Longer side of the measured image.

    Returns
    -------
    Context
        Not cropped to an analysis window.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((225, 300, 3), 150, np.uint8)
    >>> img[:, :30] = 0  # a black frame on the left
    >>> ctx = field_context(img)
    >>> ctx.rgb.shape, round(float(ctx.mask.mean()), 2)
    ((112, 150, 3), 0.9)
    """
    h, w = rgb.shape[:2]
    scale = min(1.0, long_side / max(h, w))
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    rgb = np.ascontiguousarray(rgb)
    # the frame test of Context.skin, on V = max(R, G, B) / 255
    field = rgb.max(axis=2) > FRAME_V_MAX * 255.0
    if field.mean() < WHOLE_MIN_FIELD:
        field = np.ones(field.shape, dtype=bool)
    return Context(rgb, field, window=False)


class WholeFamily(Family):
    """Colour, heterogeneity, texture and structure of the whole field of view (no mask).

    Names: ``whole_`` + the names of the ``color``, ``hetero``, ``glcm``, ``lbp``, ``wavelet``
    and ``structure`` families, each computed as that family computes it, over the field of
    :func:`field_context` instead of the lesion. The values do not depend on the lesion mask:
    the same for given and automatic masks.
    """

    name = "whole"
    description = "colour and texture of the whole field of view, independent of the mask"

    def __init__(self) -> None:
        self._subs: tuple[Family, ...] = (
            ColorFamily(),
            HeterogeneityFamily(),
            GlcmFamily(),
            LbpFamily(),
            WaveletFamily(),
            StructureFamily(),
        )

    def names(self) -> list[str]:
        return [f"whole_{n}" for fam in self._subs for n in fam.names()]

    def compute(self, ctx: Context) -> np.ndarray:
        sub = field_context(ctx.image)
        return np.concatenate([np.asarray(f.compute(sub), np.float64) for f in self._subs])
