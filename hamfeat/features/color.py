"""Colour families: lesion colour statistics, surrounding-skin contrast, colour variegation."""

from __future__ import annotations

import numpy as np

from hamfeat._kernels.palette import nearest_colour_counts
from hamfeat._kernels.stats import masked_channel_histograms, masked_quantiles_u8
from hamfeat.features.base import Context, Family

__all__ = ["ColorFamily", "SkinFamily", "VariegationFamily"]

MOMENTS = ("mean", "std", "skew", "kurt")
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
QUANTILE_NAMES = tuple(f"p{round(q * 100):02d}" for q in QUANTILES)

# channel names, u8 -> original unit (scale, offset) for quantiles
SPACES = {
    "rgb": (("r", "g", "b"), np.array([1.0, 1.0, 1.0]), np.array([0.0, 0.0, 0.0])),
    "hsv": (("h", "s", "v"), np.array([360 / 255, 1 / 255, 1 / 255]), np.zeros(3)),
    "lab": (("l", "a", "b"), np.array([1 / 2.55, 1.0, 1.0]), np.array([0.0, -128.0, -128.0])),
}
# histogram ranges (lo, hi, bins) per channel, in the channel's own unit
HISTOGRAMS = {
    ("hsv", "h"): (90.0, 270.0, 12),  # rotated hue: 180 = red; 90..270 covers magenta..yellow
    ("hsv", "s"): (0.0, 1.0, 8),
    ("hsv", "v"): (0.0, 1.0, 8),
    ("lab", "l"): (0.0, 100.0, 10),
    ("lab", "a"): (-20.0, 60.0, 8),
    ("lab", "b"): (-20.0, 60.0, 8),
}


def _u8_view(ctx: Context, space: str) -> np.ndarray:
    return ctx.rgb if space == "rgb" else getattr(ctx, f"{space}_u8")


class ColorFamily(Family):
    """Colour inside the lesion: moments, quantiles and histograms in RGB, HSV and CIE Lab.

    Names: ``color_<space>_<channel>_<stat>`` with stat in mean, std, skew (Fisher), kurt
    (excess), p05..p95 (quantiles, from 8-bit levels of the channel), and
    ``color_<space>_<channel>_hist<k>`` (fraction of lesion pixels in bin k; out-of-range values
    fall in no bin). HSV hue is rotated by 180 degrees (see :attr:`Context.hsv`).
    """

    name = "color"
    description = "lesion colour moments, quantiles and histograms (RGB, HSV, Lab)"

    def names(self) -> list[str]:
        out = []
        for space, (chans, _, _) in SPACES.items():
            for ch in chans:
                out += [f"color_{space}_{ch}_{s}" for s in MOMENTS + QUANTILE_NAMES]
        for (space, ch), (_, _, bins) in HISTOGRAMS.items():
            out += [f"color_{space}_{ch}_hist{k:02d}" for k in range(bins)]
        return out

    def compute(self, ctx: Context) -> np.ndarray:
        mask, n = ctx.mask, ctx.n_lesion
        out = []
        qs = np.array(QUANTILES)
        for space, (chans, scale, offset) in SPACES.items():
            mom = ctx.moments(space, "lesion")
            # every channel's quantiles from one counting pass: (3, len(qs))
            quant = masked_quantiles_u8(_u8_view(ctx, space), mask, qs)
            for c in range(len(chans)):
                out.append(mom[c])
                out.append(quant[c] * scale[c] + offset[c])
        for space in ("hsv", "lab"):  # each space's 3 histograms in one pass
            chans = SPACES[space][0]
            ranges = tuple(HISTOGRAMS[(space, ch)] for ch in chans)
            for counts in masked_channel_histograms(getattr(ctx, space), mask, ranges):
                out.append(counts / n if n else np.full(len(counts), np.nan))
        return np.concatenate(out).astype(np.float64)


class SkinFamily(Family):
    """The ring of skin around the lesion, and lesion-minus-skin contrast.

    Names: ``skin_<space>_<channel>_<mean|std>`` for the ring (see :attr:`Context.skin`),
    ``skin_contrast_<space>_<channel>`` = lesion mean − skin mean,
    ``skin_contrast_ratio_<space>_<ch>`` = lesion std / skin std, and
    ``skin_contrast_deltae`` = CIE76 ΔE between the lesion's and the skin's mean Lab colours.
    """

    name = "skin"
    description = "surrounding-skin colour and lesion-minus-skin contrasts"
    spaces = ("rgb", "lab", "hsv")

    def names(self) -> list[str]:
        out = []
        for space in self.spaces:
            for ch in SPACES[space][0]:
                out += [f"skin_{space}_{ch}_mean", f"skin_{space}_{ch}_std"]
                out += [f"skin_contrast_{space}_{ch}", f"skin_contrast_ratio_{space}_{ch}"]
        out.append("skin_contrast_deltae")
        return out

    def compute(self, ctx: Context) -> np.ndarray:
        out = []
        lab_delta = None
        for space in self.spaces:
            les = ctx.moments(space, "lesion")
            sk = ctx.moments(space, "skin")
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = les[:, 1] / sk[:, 1]
            for c in range(3):
                out += [sk[c, 0], sk[c, 1], les[c, 0] - sk[c, 0], ratio[c]]
            if space == "lab":
                lab_delta = les[:, 0] - sk[:, 0]
        out.append(float(np.sqrt(np.sum(lab_delta**2))))
        return np.asarray(out, dtype=np.float64)


#: Reference Lab colours of the six dermoscopic colours (set on colour-constancy-corrected
#: images; the same references are used when colour constancy is off, the default).
DERMOSCOPIC_COLOURS = {
    "white": (88.0, 0.0, 5.0),
    "red": (50.0, 45.0, 25.0),
    "lightbrown": (58.0, 18.0, 30.0),
    "darkbrown": (33.0, 14.0, 18.0),
    "bluegray": (48.0, -2.0, -8.0),
    "black": (12.0, 2.0, 2.0),
}
#: ΔE76 beyond which a pixel matches none of the reference colours.
COLOUR_MAX_DELTAE = 25.0
#: A colour counts as present when it covers at least this fraction of the lesion.
COLOUR_PRESENT_FRACTION = 0.05


class VariegationFamily(Family):
    """How many of the six dermoscopic colours a lesion shows (the C of ABCD).

    Each lesion pixel takes the nearest of :data:`DERMOSCOPIC_COLOURS` in Lab (within
    :data:`COLOUR_MAX_DELTAE`, else "other"). Names: ``variegation_<colour>_frac``,
    ``variegation_other_frac``, ``variegation_n_colors`` (colours covering at least
    :data:`COLOUR_PRESENT_FRACTION`) and ``variegation_entropy`` (of the 7 fractions, bits).
    """

    name = "variegation"
    description = "dermoscopic colours present (white, red, light/dark brown, blue-grey, black)"

    def __init__(self) -> None:
        self._refs = np.array(list(DERMOSCOPIC_COLOURS.values()), dtype=np.float64)

    def names(self) -> list[str]:
        cols = [*DERMOSCOPIC_COLOURS, "other"]
        return [f"variegation_{c}_frac" for c in cols] + [
            "variegation_n_colors",
            "variegation_entropy",
        ]

    def compute(self, ctx: Context) -> np.ndarray:
        n = ctx.n_lesion
        if n == 0:
            return np.full(len(self.names()), np.nan)
        counts = nearest_colour_counts(ctx.lab, ctx.mask, self._refs, COLOUR_MAX_DELTAE)
        frac = counts / n
        present = float(np.sum(frac[:-1] >= COLOUR_PRESENT_FRACTION))
        nz = frac[frac > 0]
        entropy = float(-np.sum(nz * np.log2(nz)))
        return np.concatenate([frac, [present, entropy]])
