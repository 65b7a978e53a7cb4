"""Dermoscopic-structure family: thin dark lines, dots and globules, bright structures.

Pigment network lines, dots and globules are small dark structures on a lighter background;
regression structures and milia-like cysts are small bright ones. Their amount and scale are
measured with morphological black-hat / top-hat transforms of the lightness channel at three
structuring-element sizes, and with the scale-normalised Laplacian of Gaussian (blob
detector) at two scales. Everything is counted in the lesion's interior (the mask eroded by
2 px), so the lesion's own border does not read as a structure (:attr:`Context.interior`).
"""

from __future__ import annotations

import cv2
import numpy as np

from hamfeat._kernels.regional import log_response_stats, masked_u8_stats
from hamfeat.features.base import Context, Family

__all__ = ["StructureFamily"]

#: Structuring-element diameters (canonical px) of the black-hat / top-hat transforms.
MORPH_SIZES = (3, 7, 11)
#: Response thresholds (lightness L*·2.55 levels) for the area fractions.
MORPH_LEVELS = (5, 12)
#: Gaussian scales (canonical px) of the Laplacian-of-Gaussian blob responses.
LOG_SIGMAS = (1.5, 3.0)
#: A dark blob is a local maximum (3x3) of the scale-normalised LoG above this value.
BLOB_MIN = 2.0
_LEVELS = np.array(MORPH_LEVELS, np.int64)
_PEAK_KERNEL = np.ones((3, 3), np.uint8)


def _sigma_name(s: float) -> str:
    return f"{s:g}".replace(".", "p")


class StructureFamily(Family):
    """Morphological and blob responses of the lightness channel inside the lesion interior.

    Names (``structure_`` +):

    * ``blackhat_s<k>_<mean|std|frac05|frac12>``: black-hat (closing minus image) with an
      elliptic element of diameter k px: dark structures narrower than k; mean and std of the
      response and the fraction of interior pixels where it exceeds 5 or 12 levels of
      L*·2.55;
    * ``tophat_s<k>_...``: the same for bright structures (image minus opening);
    * ``log_s<σ>_dark_mean`` / ``_bright_mean``: mean positive / negative part of the
      scale-normalised Laplacian of Gaussian (σ² ∇²G * L*), i.e. dark / bright blob energy;
    * ``log_s<σ>_dark_density``: dark blobs (3x3 local maxima above 2.0) per 100 interior
      pixels.
    """

    name = "structure"
    description = "dermoscopic structures: black-hat/top-hat and LoG blob responses"

    def names(self) -> list[str]:
        out = []
        for kind in ("blackhat", "tophat"):
            for s in MORPH_SIZES:
                stats = ["mean", "std"] + [f"frac{t:02d}" for t in MORPH_LEVELS]
                out += [f"structure_{kind}_s{s}_{st}" for st in stats]
        for sg in LOG_SIGMAS:
            n = _sigma_name(sg)
            stats = ("dark_mean", "bright_mean", "dark_density")
            out += [f"structure_log_s{n}_{st}" for st in stats]
        return out

    def compute(self, ctx: Context) -> np.ndarray:
        inner = ctx.interior
        n = int(inner.sum())
        out = np.full(len(self.names()), np.nan)
        if n == 0:
            return out
        # The morphology runs on the interior's bounding box grown by the reach of a closing /
        # opening (twice the largest element's radius): every interior pixel's response reads
        # only pixels inside it (or the window's own replicated edge where they coincide), so
        # the values equal the whole window's, on less area. Integer arithmetic: no rounding.
        rows = np.flatnonzero(inner.any(axis=1))
        cols = np.flatnonzero(inner.any(axis=0))
        h, w = inner.shape
        reach = 2 * (max(MORPH_SIZES) // 2)
        r0, r1 = max(0, rows[0] - reach), min(h, rows[-1] + 1 + reach)
        c0, c1 = max(0, cols[0] - reach), min(w, cols[-1] + 1 + reach)
        lum = np.ascontiguousarray(ctx.lab_u8[r0:r1, c0:c1, 0])  # L* x 2.55, uint8
        inner_box = np.ascontiguousarray(inner[r0:r1, c0:c1])
        resp = np.empty((2 * len(MORPH_SIZES), r1 - r0, c1 - c0), np.uint8)
        for i, (op, s) in enumerate(
            (op, s) for op in (cv2.MORPH_BLACKHAT, cv2.MORPH_TOPHAT) for s in MORPH_SIZES
        ):
            k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (s, s))
            cv2.morphologyEx(lum, op, k, dst=resp[i], borderType=cv2.BORDER_REPLICATE)
        vals: list[float] = list(masked_u8_stats(resp, inner_box, _LEVELS).ravel())
        lf = ctx.lab[:, :, 0]
        lap = np.empty((len(LOG_SIGMAS), h, w), np.float32)  # the whole window (float filters)
        peak = np.empty_like(lap)
        for i, sg in enumerate(LOG_SIGMAS):
            g = cv2.GaussianBlur(lf, (0, 0), sg, borderType=cv2.BORDER_REFLECT)
            cv2.Laplacian(g, cv2.CV_32F, dst=lap[i], borderType=cv2.BORDER_REFLECT)
            lap[i] *= np.float32(sg * sg)
            cv2.dilate(lap[i], _PEAK_KERNEL, dst=peak[i], borderType=cv2.BORDER_REPLICATE)
        for dark, bright, n_blobs in log_response_stats(lap, peak, inner, BLOB_MIN):
            vals += [dark, bright, n_blobs / n * 100]
        out[:] = vals
        return out
