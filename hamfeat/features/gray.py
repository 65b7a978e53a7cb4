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
``graygrid_r<i>c<j>_<mean|std|grad>``, ``graygrid_r<i>_lr_<mean|std>``,
``graythumb_g<n>_r<i>c<j>``, ``grayprof_<row|col><k>``, ``grayprof_<lr|ud>_asym`` and
``grayhog_c<cell>_r<i>c<j>_o<k>`` and ``graypix_g<n>_r<ii>c<jj>``.

``graypix`` is the exception among them: its columns are pixels (the z-scored image on a fixed
grid), not statistics. Hand-made models do not read it (see
:data:`hamfeat.datasets.cxr14.CXR_MODEL_FAMILIES`); the learned patch encoder of
:mod:`hamfeat.encoders` does.
"""

from __future__ import annotations

import cv2
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
    "GrayHogFamily",
    "GrayLbpFamily",
    "GrayPixFamily",
    "GrayProfileFamily",
    "GrayThumbFamily",
    "grid_bounds",
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


def grid_bounds(n: int, parts: int) -> np.ndarray:
    """Boundaries of ``parts`` near-equal bands of ``n`` pixels.

    ``rint(linspace(0, n, parts + 1))``.

    Returns
    -------
    numpy.ndarray
        ``int`` array of ``parts + 1`` increasing offsets, from 0 to ``n``.
    """
    return np.rint(np.linspace(0, n, parts + 1)).astype(int)


def _band_means(values: np.ndarray, mask: np.ndarray, rb: np.ndarray, cb: np.ndarray) -> np.ndarray:
    """Mean of ``values`` over the region pixels of each cell of a grid (NaN for empty cells)."""
    out = np.full((len(rb) - 1, len(cb) - 1), np.nan)
    for i in range(len(rb) - 1):
        for j in range(len(cb) - 1):
            m = mask[rb[i] : rb[i + 1], cb[j] : cb[j + 1]]
            if m.any():
                out[i, j] = float(values[rb[i] : rb[i + 1], cb[j] : cb[j + 1]][m].mean())
    return out


class GrayThumbFamily(Family):
    """A coarse thumbnail: the z-scored grey image (:func:`zscored_gray`) averaged on a grid.

    The region's bounding box (the whole frame for X-rays) is cut into :attr:`grid` x
    :attr:`grid` cells (:func:`grid_bounds`) and each cell gives the mean z-scored grey level of
    its region pixels: at 64 x 64 and ``grid = 8`` these are the 8 x 8 block means, the same
    numbers as an area-averaging resize (``cv2.INTER_AREA``) of the z-scored image. The
    thumbnail describes the global layout (heart shadow, lung fields, diaphragm, clavicles) and is
    invariant to a linear change of exposure. Names ``graythumb_g<grid>_r<i>c<j>``; cells without
    a region pixel are NaN.
    """

    name = "graythumb"
    description = "8x8 thumbnail of the z-scored grey image (block means)"
    grid = 8

    def names(self) -> list[str]:
        g = self.grid
        return [f"graythumb_g{g}_r{i}c{j}" for i in range(g) for j in range(g)]

    def compute(self, ctx: Context) -> np.ndarray:
        rows, cols = ctx.crop(0)
        z = zscored_gray(ctx)[rows, cols]
        mask = ctx.mask[rows, cols]
        h, w = mask.shape
        return _band_means(z, mask, grid_bounds(h, self.grid), grid_bounds(w, self.grid)).ravel()


class GrayProfileFamily(Family):
    """Projection profiles of the z-scored grey image and their mirror asymmetry.

    ``row<k>``: the mean z-scored grey level (:func:`zscored_gray`) of the region pixels in each
    of :attr:`bands` horizontal bands, top to bottom (diaphragm height, apices, the extent of the
    lung fields); ``col<k>``: the same for vertical bands, left to right of the image (lung-field
    width, heart and mediastinum width). ``lr_asym``: the mean absolute difference between the
    column profile and its mirror image (left-right asymmetry); ``ud_asym``: the upper half of
    the row profile minus the lower half (mean; bright bases, e.g. effusions, lower it). Bands are
    :func:`grid_bounds` of the region's bounding box; bands without a region pixel are NaN.
    """

    name = "grayprof"
    description = "row and column mean-intensity profiles (16 bands) and their asymmetry"
    bands = 16

    def names(self) -> list[str]:
        b = self.bands
        out = [f"grayprof_row{k:02d}" for k in range(b)]
        out += [f"grayprof_col{k:02d}" for k in range(b)]
        return [*out, "grayprof_lr_asym", "grayprof_ud_asym"]

    def compute(self, ctx: Context) -> np.ndarray:
        rows, cols = ctx.crop(0)
        z = zscored_gray(ctx)[rows, cols]
        mask = ctx.mask[rows, cols]
        h, w = mask.shape
        b = self.bands
        row = _band_means(z, mask, grid_bounds(h, b), np.array([0, w]))[:, 0]
        col = _band_means(z.T, mask.T, grid_bounds(w, b), np.array([0, h]))[:, 0]
        with np.errstate(invalid="ignore"):
            lr = float(np.mean(np.abs(col - col[::-1])))
            ud = float(np.mean(row[: b // 2]) - np.mean(row[b - b // 2 :]))
        return np.concatenate([row, col, [lr, ud]]).astype(np.float64)


class GrayHogFamily(Family):
    """Histograms of oriented gradients (HOG-like) on a grid of cells.

    On the exposure-normalised image (:func:`stretched_gray`, as float): gradients by central
    differences (zero on the border rows/columns), unsigned orientation
    ``arctan2(g_row, g_col)`` in degrees modulo 180 cut into :attr:`orientations` equal bins, and
    per cell the sum of the gradient magnitudes in each bin over the cell's area, L1-normalised
    within the cell (``h / (sum(h) + 1e-5)``; an edge-free cell gives zeros). The region's
    bounding box (for X-rays the whole frame) is tiled from its top-left corner by
    :attr:`grid` x :attr:`grid` cells of ``height // grid`` x ``width // grid`` pixels (pixels
    past the last whole cell are not used): at 64 x 64 and ``grid = 4``, 16-pixel cells, and the
    values are ``skimage.feature.hog(image, orientations=9, pixels_per_cell=(16, 16),
    cells_per_block=(1, 1), block_norm="L1")`` (the tests check it). It describes the directions
    of rib, clavicle, heart and diaphragm borders and their loss in opacities. Only region pixels
    count; cells without one are NaN. Names ``grayhog_g<grid>_r<i>c<j>_o<k>`` (bin ``k`` covers
    ``[k, k + 1) * 180 / orientations`` degrees).
    """

    name = "grayhog"
    description = "HOG-like orientation histograms of the stretched image, 4x4 cells, 9 bins"
    grid = 4
    orientations = 9

    def names(self) -> list[str]:
        g, n_o = self.grid, self.orientations
        return [
            f"grayhog_g{g}_r{i}c{j}_o{k}" for i in range(g) for j in range(g) for k in range(n_o)
        ]

    def compute(self, ctx: Context) -> np.ndarray:
        img = stretched_gray(ctx).astype(np.float64)
        g_row = np.zeros_like(img)
        g_col = np.zeros_like(img)
        g_row[1:-1, :] = img[2:, :] - img[:-2, :]
        g_col[:, 1:-1] = img[:, 2:] - img[:, :-2]
        mag = np.hypot(g_col, g_row)
        ori = np.rad2deg(np.arctan2(g_row, g_col)) % 180.0
        g, n_o = self.grid, self.orientations
        bins = np.minimum((ori / (180.0 / n_o)).astype(np.int64), n_o - 1)
        rows, cols = ctx.crop(0)
        mag, bins, mask = mag[rows, cols], bins[rows, cols], ctx.mask[rows, cols]
        ch, cw = mask.shape[0] // g, mask.shape[1] // g
        hist = np.full((g, g, n_o), np.nan)
        for i in range(g if ch and cw else 0):
            for j in range(g):
                sl = (slice(i * ch, (i + 1) * ch), slice(j * cw, (j + 1) * cw))
                m = mask[sl]
                if not m.any():
                    continue
                h = np.bincount(bins[sl][m], weights=mag[sl][m], minlength=n_o) / (ch * cw)
                hist[i, j] = h / (h.sum() + 1e-5)
        return hist.ravel()


class GrayPixFamily(Family):
    """The z-scored grey image itself, area-averaged onto a fixed :attr:`grid` x :attr:`grid`.

    The input of the learned patch features (:class:`hamfeat.encoders.PatchKMeansEncoder`), which
    must be fitted inside the training folds and so cannot be a per-image family. The region's
    bounding box of :func:`zscored_gray` is resampled with area weights
    (``cv2.INTER_AREA``) of the region pixels only: ``resize(z * m) / resize(m)``; at 64 x 64
    with ``grid = 64`` the values are the z-scored pixels unchanged. A grid pixel whose area holds
    no region pixel is NaN. Names ``graypix_g<grid>_r<ii>c<jj>`` (row-major, zero-padded).
    """

    name = "graypix"
    description = "the z-scored grey image on a fixed 64x64 grid (input of learned encoders)"
    grid = 64

    def names(self) -> list[str]:
        g = self.grid
        return [f"graypix_g{g}_r{i:02d}c{j:02d}" for i in range(g) for j in range(g)]

    def compute(self, ctx: Context) -> np.ndarray:
        rows, cols = ctx.crop(0)
        z = zscored_gray(ctx)[rows, cols]
        m = ctx.mask[rows, cols].astype(np.float64)
        g = self.grid
        if m.size == 0:
            return np.full(g * g, np.nan)
        if m.all():  # the X-ray case: a plain resize (the identity at g x g)
            return cv2.resize(z, (g, g), interpolation=cv2.INTER_AREA).ravel()
        num = cv2.resize(z * m, (g, g), interpolation=cv2.INTER_AREA)
        den = cv2.resize(m, (g, g), interpolation=cv2.INTER_AREA)
        some = den > 1e-12
        return np.where(some, num / np.where(some, den, 1.0), np.nan).ravel()


#: The grayscale families, in registry order.
GRAY_FAMILIES: tuple[Family, ...] = (
    GrayHistFamily(),
    GrayGlcmFamily(),
    GrayLbpFamily(),
    GrayGridFamily(),
    GrayThumbFamily(),
    GrayProfileFamily(),
    GrayHogFamily(),
    GrayPixFamily(),
)
