"""Shape family: ABCD-style descriptors of the lesion mask (asymmetry, border, size)."""

from __future__ import annotations

import cv2
import numpy as np

from hamfeat._kernels.shape import principal_axis_asymmetry
from hamfeat.features.base import Context, Family

__all__ = ["ShapeFamily"]


class ShapeFamily(Family):
    """Asymmetry, border and size of the lesion mask (canonical resolution).

    Names (``shape_`` +):

    * ``area_frac``: lesion pixels / image pixels;
    * ``perimeter_rel``: perimeter of the largest outer contour / sqrt(area);
    * ``circularity``: 4πA/P²;
    * ``solidity``: area of the largest contour / area of its convex hull (both polygons);
    * ``extent``: A / bounding-box area;
    * ``eccentricity`` and ``axis_ratio`` (minor/major), from second-order moments;
    * ``equiv_diameter_rel``: sqrt(4A/π) / image diagonal;
    * ``asymmetry_major`` and ``asymmetry_minor``: fraction of the lesion that does not
      overlap its mirror image about the major / minor principal axis;
    * ``convexity``: hull perimeter / perimeter;
    * ``radial_cv``: coefficient of variation of centroid-to-border distances;
    * ``n_components``: connected components of the mask;
    * ``border_touch``: fraction of contour points on the image edge;
    * ``hu1`` .. ``hu7``: log-scaled Hu moment invariants, -sign(h)·log10|h|.
    """

    name = "shape"
    description = "ABCD shape: asymmetry, border irregularity, compactness, Hu moments"

    def names(self) -> list[str]:
        base = [
            "area_frac",
            "perimeter_rel",
            "circularity",
            "solidity",
            "extent",
            "eccentricity",
            "axis_ratio",
            "equiv_diameter_rel",
            "asymmetry_major",
            "asymmetry_minor",
            "convexity",
            "radial_cv",
            "n_components",
            "border_touch",
        ] + [f"hu{i}" for i in range(1, 8)]
        return [f"shape_{n}" for n in base]

    def compute(self, ctx: Context) -> np.ndarray:
        mask = ctx.mask
        h, w = ctx.full_shape  # the whole image's size; ctx.mask is the analysis window
        r0, c0 = ctx.offset
        area = float(ctx.n_lesion)
        out = np.full(len(self.names()), np.nan)
        if area == 0:
            return out
        m8 = mask.view(np.uint8)
        contours, _ = cv2.findContours(m8, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        largest = max(contours, key=cv2.contourArea)
        perim = cv2.arcLength(largest, True)
        hull = cv2.convexHull(largest)
        hull_area = cv2.contourArea(hull)
        hull_perim = cv2.arcLength(hull, True)
        _, _, bw, bh = cv2.boundingRect(largest)
        mom = cv2.moments(m8, binaryImage=True)
        mu20, mu02, mu11 = mom["mu20"] / area, mom["mu02"] / area, mom["mu11"] / area
        common = np.sqrt(((mu20 - mu02) / 2) ** 2 + mu11**2)
        lam1 = (mu20 + mu02) / 2 + common
        lam2 = (mu20 + mu02) / 2 - common
        pts = largest[:, 0, :].astype(np.float64)
        cx, cy = mom["m10"] / mom["m00"], mom["m01"] / mom["m00"]
        radii = np.hypot(pts[:, 0] - cx, pts[:, 1] - cy)
        px, py = pts[:, 0] + c0, pts[:, 1] + r0
        on_edge = (px == 0) | (py == 0) | (px == w - 1) | (py == h - 1)
        n_comp = cv2.connectedComponents(m8, connectivity=8)[0] - 1
        hu = cv2.HuMoments(mom).ravel()
        with np.errstate(divide="ignore", invalid="ignore"):
            hu_log = -np.sign(hu) * np.log10(np.abs(hu))
            values = [
                area / (h * w),
                perim / np.sqrt(area),
                4 * np.pi * area / perim**2 if perim > 0 else np.nan,
                cv2.contourArea(largest) / hull_area if hull_area > 0 else np.nan,
                area / (bw * bh),
                np.sqrt(1 - lam2 / lam1) if lam1 > 0 else np.nan,
                np.sqrt(lam2 / lam1) if lam1 > 0 else np.nan,
                np.sqrt(4 * area / np.pi) / np.hypot(h, w),
                *principal_axis_asymmetry(mask),
                hull_perim / perim if perim > 0 else np.nan,
                radii.std() / radii.mean() if radii.mean() > 0 else np.nan,
                float(n_comp),
                float(on_edge.mean()),
            ]
        out[: len(values)] = values
        out[len(values) :] = np.where(np.isfinite(hu_log), hu_log, np.nan)
        return out
