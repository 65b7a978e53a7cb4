"""Texture families: GLCM/Haralick, uniform LBP and Haar wavelet energies, inside the lesion."""

from __future__ import annotations

import numpy as np

from hamfeat._kernels.glcm import HARALICK_PROPS, glcm, haralick, quantize
from hamfeat._kernels.lbp import masked_lbp_histogram
from hamfeat.features.base import Context, Family

__all__ = ["GlcmFamily", "LbpFamily", "WaveletFamily"]


class GlcmFamily(Family):
    """Grey-level co-occurrence (Haralick) features counted over pixel pairs inside the lesion.

    Grey levels are quantised to :attr:`levels` (``gray * levels // 256``). Pairs at distances
    :attr:`distances` (canonical pixels; ×2 at HAM10000's native 600x450) along the 4 angles
    0, 45, 90 and 135 degrees are counted symmetrically when both pixels are in the mask. Each
    Haralick property is summarised over the angles by its mean and range (max − min), which
    are rotation invariant. Names: ``glcm_d<d>_<property>_<mean|range>``.
    """

    name = "glcm"
    description = "masked grey-level co-occurrence matrix, Haralick properties"
    levels = 32
    distances = (1, 2, 4)
    angles = (0.0, np.pi / 4, np.pi / 2, 3 * np.pi / 4)

    def names(self) -> list[str]:
        return [
            f"{self.name}_d{d}_{prop}_{stat}"
            for d in self.distances
            for prop in HARALICK_PROPS
            for stat in ("mean", "range")
        ]

    def image(self, ctx: Context) -> np.ndarray:
        """The ``uint8`` grey image whose co-occurrences are counted (subclasses change it)."""
        return ctx.gray

    def compute(self, ctx: Context) -> np.ndarray:
        rows, cols = ctx.crop(0)  # every counted pair lies in the lesion's bounding box
        q = quantize(np.ascontiguousarray(self.image(ctx)[rows, cols]), self.levels)
        counts = glcm(
            q,
            np.ascontiguousarray(ctx.mask[rows, cols]),
            np.array(self.distances, np.int64),
            np.array(self.angles, np.float64),
            self.levels,
            True,
        )
        props = haralick(counts)  # (n_props, D, A)
        mean = props.mean(axis=2)
        rng = props.max(axis=2) - props.min(axis=2)
        # order: distance, property, stat
        return np.stack([mean.T, rng.T], axis=2).ravel()


class LbpFamily(Family):
    """Rotation-invariant uniform LBP histograms (riu2) of the grey image inside the lesion.

    Every radius R uses P = 8 neighbours (10 labels): the multi-resolution LBP_{8,R} of Ojala
    et al. (2002), at a fraction of the cost of P = 8R. Names: ``lbp_r<R>_u<k>``, the fraction
    of lesion pixels with label k.
    """

    name = "lbp"
    description = "uniform local binary pattern histograms at several radii"
    radii = (1, 2, 3)
    points = 8

    def names(self) -> list[str]:
        return [f"lbp_r{r}_u{k:02d}" for r in self.radii for k in range(self.points + 2)]

    def compute(self, ctx: Context) -> np.ndarray:
        out = []
        n = ctx.n_lesion
        p = self.points
        # the window grows by the largest radius so that every lesion pixel sees the same
        # neighbours as in the whole image
        rows, cols = ctx.crop(max(self.radii) + 1)
        gray = np.ascontiguousarray(ctx.gray[rows, cols])
        mask = np.ascontiguousarray(ctx.mask[rows, cols])
        for r in self.radii:
            hist = masked_lbp_histogram(gray, mask, p, r)  # codes + histogram, one pass
            out.append(hist / n if n else np.full(p + 2, np.nan))
        return np.concatenate(out).astype(np.float64)


class WaveletFamily(Family):
    """Haar wavelet sub-band energies of the grey image inside the lesion.

    Three levels of the orthonormal 2-D Haar transform; at each level the mask is reduced to
    the 2x2 blocks lying wholly inside the lesion. Names: ``wavelet_l<level>_<lh|hl|hh>_energy``
    (mean squared coefficient, grey levels²) and ``..._mad`` (mean absolute coefficient).
    """

    name = "wavelet"
    description = "Haar wavelet sub-band energies (3 levels)"
    levels = 3

    def names(self) -> list[str]:
        return [
            f"wavelet_l{lv}_{band}_{stat}"
            for lv in range(1, self.levels + 1)
            for band in ("lh", "hl", "hh")
            for stat in ("energy", "mad")
        ]

    def compute(self, ctx: Context) -> np.ndarray:
        x = ctx.gray.astype(np.float64)
        m = ctx.mask
        out = []
        for _ in range(self.levels):
            h, w = (x.shape[0] // 2) * 2, (x.shape[1] // 2) * 2
            a, b = x[0:h:2, 0:w:2], x[0:h:2, 1:w:2]
            c, d = x[1:h:2, 0:w:2], x[1:h:2, 1:w:2]
            m = m[0:h:2, 0:w:2] & m[0:h:2, 1:w:2] & m[1:h:2, 0:w:2] & m[1:h:2, 1:w:2]
            bands = ((a + b - c - d) / 2, (a - b + c - d) / 2, (a - b - c + d) / 2)
            n = int(m.sum())
            for band in bands:
                if n:
                    v = band[m]
                    out += [float(np.mean(v * v)), float(np.mean(np.abs(v)))]
                else:
                    out += [np.nan, np.nan]
            x = (a + b + c + d) / 2
        return np.asarray(out, dtype=np.float64)
