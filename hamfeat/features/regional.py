"""Where colour sits in the lesion: concentric zones, local heterogeneity, the border transition.

Global colour statistics cannot tell a lesion that is dark in the centre and fades out (common
in naevi) from one with an eccentric dark blotch or a dark rim, nor a smooth fade from an
abrupt cut-off at the border. These families measure colour by position.
"""

from __future__ import annotations

import cv2
import numpy as np

from hamfeat._kernels.regional import (
    block_colour_heterogeneity,
    border_gradient_stats,
    border_samples,
    half_colour_difference,
    mask_axis_moments,
    zone_colour_stats,
)
from hamfeat.features.base import Context, Family

__all__ = ["BorderFamily", "HeterogeneityFamily", "ZoneFamily"]

ZONES = ("rim", "mid", "core")
LAB = ("l", "a", "b")
#: Side (canonical px) of the square blocks of the heterogeneity family.
BLOCK = 12
#: A block counts when at least this fraction of it is lesion.
BLOCK_MIN_FILL = 0.75
#: ΔE*ab thresholds for the share of block pairs that differ.
DELTA_E = (10, 20)
_DELTA_E = np.array(DELTA_E, np.float64)
#: Width (px) of the bands inside and outside the border compared by the border family.
BAND = 6
#: Number of angular sectors around the centroid for the border's sector variation.
SECTORS = 8


class ZoneFamily(Family):
    """CIE Lab mean and standard deviation in three concentric zones of the lesion.

    The zones split the lesion's pixels into thirds by their distance to the border
    (:attr:`Context.depth`): ``rim`` (outer third), ``mid`` and ``core`` (inner third).
    Names: ``zone_<rim|mid|core>_lab_<l|a|b>_<mean|std>``, ``zone_core_minus_rim_lab_<c>``
    (core mean minus rim mean), and colour asymmetry: the lesion is cut in two halves along its
    major (then minor) principal axis, ``zone_halves_<major|minor>_lab_<c>_absdiff`` is the
    absolute difference of the halves' mean and ``zone_halves_<major|minor>_deltae`` their ΔE*ab.
    """

    name = "zone"
    description = "Lab colour in concentric zones (rim, middle, core) of the lesion"

    def names(self) -> list[str]:
        out = [f"zone_{z}_lab_{c}_{s}" for z in ZONES for c in LAB for s in ("mean", "std")]
        out += [f"zone_core_minus_rim_lab_{c}" for c in LAB]
        for axis in ("major", "minor"):
            out += [f"zone_halves_{axis}_lab_{c}_absdiff" for c in LAB]
            out.append(f"zone_halves_{axis}_deltae")
        return out

    def compute(self, ctx: Context) -> np.ndarray:
        out = np.full(len(self.names()), np.nan)
        if ctx.n_lesion < 3:
            return out
        out[:21] = zone_colour_stats(ctx.lab, ctx.mask, ctx.depth, 1 / 3, 2 / 3)
        out[21:] = _halves(ctx)
        return out


def _halves(ctx: Context) -> list[float]:
    """Colour difference between the two halves of the lesion cut by each principal axis."""
    cx, cy, mxx, mxy, myy = mask_axis_moments(ctx.mask)
    cov = np.array([[mxx, mxy], [mxy, myy]])
    _, vecs = np.linalg.eigh(cov)  # ascending eigenvalues: column 1 is the major axis
    out: list[float] = []
    for k in (1, 0):
        # the major axis cuts the lesion into halves on either side of it: split by the
        # coordinate along the minor direction, and vice versa
        out += list(half_colour_difference(ctx.lab, ctx.mask, cx, cy, *vecs[:, 1 - k]))
    return out


class HeterogeneityFamily(Family):
    """Colour heterogeneity between small blocks of the lesion.

    The analysis window is tiled by :data:`BLOCK` x :data:`BLOCK` px blocks (canonical px, on the
    image's grid); blocks at least 75 % inside the lesion give one mean Lab colour each.
    Names (``hetero_`` +): ``lab_<c>_std`` and ``lab_<c>_p90_p10`` (spread of block means per
    channel), ``deltae_mean`` and ``deltae_p90`` (ΔE*ab between all pairs of blocks),
    ``deltae_frac10`` / ``deltae_frac20`` (share of pairs farther apart than 10 / 20), and
    ``n_blocks_sqrt``. NaN when fewer than 4 blocks fit (very small lesions).
    """

    name = "hetero"
    description = "colour heterogeneity between lesion blocks (Lab spread, pairwise ΔE)"

    def names(self) -> list[str]:
        out = [f"hetero_lab_{c}_std" for c in LAB] + [f"hetero_lab_{c}_p90_p10" for c in LAB]
        out += ["hetero_deltae_mean", "hetero_deltae_p90"]
        out += [f"hetero_deltae_frac{t}" for t in DELTA_E]
        return [*out, "hetero_n_blocks_sqrt"]

    def compute(self, ctx: Context) -> np.ndarray:
        # blocks on the whole image's grid, so the window does not move them
        return block_colour_heterogeneity(
            ctx.lab, ctx.mask, ctx.offset, BLOCK, BLOCK_MIN_FILL, _DELTA_E
        )


class BorderFamily(Family):
    """How the lesion meets the skin: sharpness of the lightness edge along the border.

    Names (``border_`` +):

    * ``grad_mean``, ``grad_std``, ``grad_cv``, ``grad_p10``, ``grad_p90``: Sobel gradient
      magnitude of L* (after a σ = 1 px Gaussian) on the border pixels (lesion pixels next to
      skin): an abrupt cut-off gives high values, a fading border low ones;
    * ``sector_cv``: coefficient of variation of the mean border gradient over 8 angular
      sectors around the centroid (a border sharp on one side only);
    * ``delta_l``: mean L* in a 6 px band outside the border minus inside it.
    """

    name = "border"
    description = "border sharpness: lightness gradient across the lesion border"

    def names(self) -> list[str]:
        stats = ("grad_mean", "grad_std", "grad_cv", "grad_p10", "grad_p90", "sector_cv")
        return [f"border_{s}" for s in stats] + ["border_delta_l"]

    def compute(self, ctx: Context) -> np.ndarray:
        out = np.full(len(self.names()), np.nan)
        lum = ctx.lab[:, :, 0]
        lf = cv2.GaussianBlur(lum, (0, 0), 1.0, borderType=cv2.BORDER_REFLECT)
        gx = cv2.Sobel(lf, cv2.CV_32F, 1, 0, borderType=cv2.BORDER_REFLECT)
        gy = cv2.Sobel(lf, cv2.CV_32F, 0, 1, borderType=cv2.BORDER_REFLECT)
        v, dy, dx, delta = border_samples(
            gx, gy, ctx.lab, ctx.mask, ctx.depth, ctx.outside_dist, ctx.skin, 1.0, BAND
        )
        if len(v) < 8:
            return out
        # NumPy's arctan2, as the sectors were defined with it (libm's differs in the last bit)
        out[:6] = border_gradient_stats(v, np.arctan2(dy, dx), SECTORS)
        out[6] = delta
        return out
