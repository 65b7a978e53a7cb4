"""Grayscale families for radiographs (chest X-rays): intensity, GLCM, LBP, spatial layout.

These families read only the grey image (:attr:`Context.gray`; an X-ray stored as RGB has
R = G = B, which the luma conversion returns unchanged) and the region mask
(:attr:`Context.mask`), which for X-rays is every pixel (``FeatureConfig(region="whole")``):
there is no lung mask, the features describe the whole frame. They are registered in
:data:`hamfeat.features.FAMILIES` but are **not** default families: dermoscopy tables are
unchanged.

Exposure differs a lot between radiographs, so the texture and layout features are computed on
an exposure-normalised image (see :func:`stretched_gray` and :func:`zscored_gray`); the
``grayhist`` family keeps the raw intensities as well.

Names: ``grayhist_*``, ``grayglcm_d<d>_<property>_<mean|range>``, ``graylbp_r<R>_u<k>``,
``graygrid_r<i>c<j>_<mean|std|grad>`` and ``graygrid_r<i>_lr_<mean|std>``.
"""

from __future__ import annotations

import numpy as np

from hamfeat._kernels.lbp import lbp_uniform, masked_code_histogram
from hamfeat._kernels.stats import masked_histogram_u8, masked_moments, masked_quantiles_u8
from hamfeat.features.base import Context, Family
from hamfeat.features.texture import GlcmFamily

__all__ = [
    "GRAY_FAMILIES",
    "GrayGlcmFamily",
    "GrayGridFamily",
    "GrayHistFamily",
    "GrayLbpFamily",
    "stretched_gray",
    "zscored_gray",
]

#: Lower and upper percentiles mapped to 0 and 255 by :func:`stretched_gray`.
STRETCH_PERCENTILES = (0.01, 0.99)


def _cached(ctx: Context, key: str, make):
    cache = ctx.__dict__.setdefault("_gray_cache", {})
    if key not in cache:
        cache[key] = make()
    return cache[key]


def stretched_gray(ctx: Context) -> np.ndarray:
    """The grey image with its 1st..99th percentile range (inside the mask) stretched to 0..255.

    ``round(clip((g - p1) / (p99 - p1), 0, 1) * 255)``; a flat image (``p99 == p1``) maps to 0.
    Cached on the context.

    Returns
    -------
    numpy.ndarray
        ``uint8``, the shape of ``ctx.gray``.
    """

    def make() -> np.ndarray:
        lo, hi = masked_quantiles_u8(ctx.gray, ctx.mask, np.array(STRETCH_PERCENTILES))
        g = ctx.gray.astype(np.float64)
        if not np.isfinite(hi - lo) or hi <= lo:
            return np.zeros_like(ctx.gray)
        x = np.clip((g - lo) / (hi - lo), 0.0, 1.0) * 255.0
        return np.ascontiguousarray(np.rint(x).astype(np.uint8))

    return _cached(ctx, "stretched", make)


def zscored_gray(ctx: Context) -> np.ndarray:
    """The grey image minus its mean, over its standard deviation (inside the mask).

    A flat image gives zeros. Cached on the context.

    Returns
    -------
    numpy.ndarray
        ``float64``, the shape of ``ctx.gray``.
    """

    def make() -> np.ndarray:
        m = masked_moments(ctx.gray.astype(np.float32)[:, :, None], ctx.mask)[0]
        g = ctx.gray.astype(np.float64)
        if not np.isfinite(m[0]) or not m[1] > 0:
            return np.zeros_like(g)
        return (g - m[0]) / m[1]

    return _cached(ctx, "zscored", make)


class GrayHistFamily(Family):
    """Intensity distribution of the grey image inside the region.

    Moments (mean, std, skewness, excess kurtosis) and percentiles of the raw grey levels, the
    Shannon entropy (bits) of their 32-bin histogram, the 16-bin histogram (fractions) of the raw
    levels and the 16-bin histogram of the exposure-normalised image (:func:`stretched_gray`),
    which describes contrast independently of exposure.
    """

    name = "grayhist"
    description = "grey-level moments, percentiles, entropy and histograms"
    percentiles = (1, 5, 10, 25, 50, 75, 90, 95, 99)
    bins = 16

    def names(self) -> list[str]:
        out = [f"grayhist_{m}" for m in ("mean", "std", "skew", "kurtosis")]
        out += [f"grayhist_p{p:02d}" for p in self.percentiles]
        out.append("grayhist_entropy")
        out += [f"grayhist_bin{k:02d}" for k in range(self.bins)]
        out += [f"grayhist_norm_bin{k:02d}" for k in range(self.bins)]
        return out

    def compute(self, ctx: Context) -> np.ndarray:
        n = ctx.n_lesion
        size = 4 + len(self.percentiles) + 1 + 2 * self.bins
        if n == 0:
            return np.full(size, np.nan)
        gray, mask = ctx.gray, ctx.mask
        mom = masked_moments(gray.astype(np.float32)[:, :, None], mask)[0]
        qs = masked_quantiles_u8(gray, mask, np.array(self.percentiles, np.float64) / 100.0)
        h32 = masked_histogram_u8(gray, mask, 32) / n
        nz = h32[h32 > 0]
        entropy = float(-(nz * np.log2(nz)).sum())
        h = masked_histogram_u8(gray, mask, self.bins) / n
        hn = masked_histogram_u8(stretched_gray(ctx), mask, self.bins) / n
        return np.concatenate([mom, qs, [entropy], h, hn]).astype(np.float64)


class GrayGlcmFamily(GlcmFamily):
    """Haralick features of the exposure-normalised grey image (:func:`stretched_gray`).

    The same masked co-occurrence kernel and summaries as the dermoscopy ``glcm`` family
    (32 levels, distances 1, 2, 4 canonical pixels, 4 angles; mean and range over angles), on
    the stretched image inside the region. Names: ``grayglcm_d<d>_<property>_<mean|range>``.
    """

    name = "grayglcm"
    description = "grey-level co-occurrence (Haralick) of the exposure-normalised image"

    def image(self, ctx: Context) -> np.ndarray:
        return stretched_gray(ctx)


class GrayLbpFamily(Family):
    """Multi-scale rotation-invariant uniform LBP (riu2, P = 8) histograms of the grey image.

    LBP codes depend only on the order of grey levels, so no exposure normalisation is needed.
    Radii 1 to 4 canonical pixels; names ``graylbp_r<R>_u<k>``: the fraction of region pixels
    with label ``k`` (0..9, 9 = non-uniform).
    """

    name = "graylbp"
    description = "uniform local binary pattern histograms of the grey image, radii 1-4"
    radii = (1, 2, 3, 4)
    points = 8

    def names(self) -> list[str]:
        return [f"graylbp_r{r}_u{k:02d}" for r in self.radii for k in range(self.points + 2)]

    def compute(self, ctx: Context) -> np.ndarray:
        n = ctx.n_lesion
        p = self.points
        rows, cols = ctx.crop(max(self.radii) + 1)
        gray = np.ascontiguousarray(ctx.gray[rows, cols])
        mask = np.ascontiguousarray(ctx.mask[rows, cols])
        out = []
        for r in self.radii:
            codes = lbp_uniform(gray, p, r)
            hist = masked_code_histogram(codes, mask, p + 2)
            out.append(hist / n if n else np.full(p + 2, np.nan))
        return np.concatenate(out).astype(np.float64)


class GrayGridFamily(Family):
    """Coarse spatial layout: intensity and texture on a grid over the region's bounding box.

    The box is cut into :attr:`rows` x :attr:`cols` cells (a frontal chest X-ray's 4 x 4 grid
    puts the upper, middle and lower lung fields of each side, the mediastinum and the
    diaphragm in different cells). Per cell, on the z-scored grey image (:func:`zscored_gray`):
    ``mean``, ``std`` and ``grad`` (mean gradient magnitude, central differences, z units per
    pixel). Per row band, left-right asymmetry: ``lr_mean`` and ``lr_std``, the left half's
    mean (std) minus the right half's. Cells without a region pixel are NaN.
    """

    name = "graygrid"
    description = "intensity and texture on a 4x4 grid, left-right asymmetry"
    rows = 4
    cols = 4

    def names(self) -> list[str]:
        out = [
            f"graygrid_r{i}c{j}_{s}"
            for i in range(self.rows)
            for j in range(self.cols)
            for s in ("mean", "std", "grad")
        ]
        out += [f"graygrid_r{i}_lr_{s}" for i in range(self.rows) for s in ("mean", "std")]
        return out

    def compute(self, ctx: Context) -> np.ndarray:
        rows, cols = ctx.crop(0)
        z = zscored_gray(ctx)
        gy, gx = np.gradient(z) if min(z.shape) > 1 else (np.zeros_like(z), np.zeros_like(z))
        grad = np.hypot(gx, gy)[rows, cols]
        z, mask = z[rows, cols], ctx.mask[rows, cols]
        h, w = mask.shape
        rb = np.rint(np.linspace(0, h, self.rows + 1)).astype(int)
        cb = np.rint(np.linspace(0, w, self.cols + 1)).astype(int)
        cells = []
        for i in range(self.rows):
            for j in range(self.cols):
                m = mask[rb[i] : rb[i + 1], cb[j] : cb[j + 1]]
                if not m.any():
                    cells += [np.nan] * 3
                    continue
                v = z[rb[i] : rb[i + 1], cb[j] : cb[j + 1]][m]
                g = grad[rb[i] : rb[i + 1], cb[j] : cb[j + 1]][m]
                cells += [float(v.mean()), float(v.std()), float(g.mean())]
        half = w // 2
        lr = []
        for i in range(self.rows):
            band_z, band_m = z[rb[i] : rb[i + 1]], mask[rb[i] : rb[i + 1]]
            left = band_z[:, :half][band_m[:, :half]]
            right = band_z[:, w - half :][band_m[:, w - half :]]
            if left.size and right.size:
                lr += [float(left.mean() - right.mean()), float(left.std() - right.std())]
            else:
                lr += [np.nan, np.nan]
        return np.asarray(cells + lr, dtype=np.float64)


#: The grayscale families, in registry order.
GRAY_FAMILIES: tuple[Family, ...] = (
    GrayHistFamily(),
    GrayGlcmFamily(),
    GrayLbpFamily(),
    GrayGridFamily(),
)
