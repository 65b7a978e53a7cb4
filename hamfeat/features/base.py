"""What every feature family sees (:class:`Context`) and must provide (:class:`Family`)."""

from __future__ import annotations

from functools import cached_property

import cv2
import numpy as np

from hamfeat._kernels.color import hsv_views, lab_views, rgb_to_gray
from hamfeat._kernels.stats import masked_moments

__all__ = ["SKIN_RING_WIDTH", "WINDOW_ALIGN", "WINDOW_MARGIN", "Context", "Family"]

#: Width, in canonical pixels, of the ring of surrounding skin around the lesion.
SKIN_RING_WIDTH = 15
#: Margin of the analysis window around the lesion's bounding box, in canonical pixels.
WINDOW_MARGIN = SKIN_RING_WIDTH + 1
#: The analysis window starts on multiples of this (2**levels of the wavelet family).
WINDOW_ALIGN = 8
#: Pixels darker than this value (HSV V, 0..1) are vignette or frame, never skin.
FRAME_V_MAX = 0.12
# uint8 levels of the colour views: clip(floor(v * scale + offset + 0.5), 0, 255), float32
HSV_U8_SCALE = np.float32([255.0 / 360.0, 255.0, 255.0])
HSV_U8_OFFSET = np.zeros(3, np.float32)
LAB_U8_SCALE = np.float32([2.55, 1, 1])
LAB_U8_OFFSET = np.float32([0, 128, 128])


class Context:
    """One image at canonical resolution and its lesion mask, with derived views computed once.

    Features are computed in the **analysis window**: the lesion's bounding box grown by
    :data:`WINDOW_MARGIN` pixels (enough for the skin ring and every texture neighbourhood),
    clipped to the image, with its top-left corner moved up to a multiple of
    :data:`WINDOW_ALIGN` so that the wavelet grid is the whole image's. :attr:`rgb` and
    :attr:`mask` are that window; :attr:`full_shape` and :attr:`offset` place it in the image.

    Parameters
    ----------
    rgb : numpy.ndarray
        ``uint8`` ``(H, W, 3)`` RGB, after pre-processing.
    mask : numpy.ndarray
        ``bool`` ``(H, W)``, the lesion.
    window : bool
        Crop to the analysis window (``False``: use the whole image).
    """

    def __init__(self, rgb: np.ndarray, mask: np.ndarray, window: bool = True) -> None:
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise TypeError(f"rgb must be uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}")
        if mask.dtype != np.bool_ or mask.shape != rgb.shape[:2]:
            raise TypeError(f"mask must be bool {rgb.shape[:2]}, got {mask.dtype} {mask.shape}")
        self.full_shape: tuple[int, int] = mask.shape
        #: The whole image, before cropping to the analysis window (families that look
        #: beyond the lesion's neighbourhood, such as ``whole``, read it).
        self.image: np.ndarray = rgb
        self.offset: tuple[int, int] = (0, 0)
        if window and mask.any():
            h, w = mask.shape
            rows = np.flatnonzero(mask.any(axis=1))
            cols = np.flatnonzero(mask.any(axis=0))
            r0 = max(0, rows[0] - WINDOW_MARGIN) // WINDOW_ALIGN * WINDOW_ALIGN
            c0 = max(0, cols[0] - WINDOW_MARGIN) // WINDOW_ALIGN * WINDOW_ALIGN
            r1 = min(h, rows[-1] + 1 + WINDOW_MARGIN)
            c1 = min(w, cols[-1] + 1 + WINDOW_MARGIN)
            rgb, mask = rgb[r0:r1, c0:c1], mask[r0:r1, c0:c1]
            self.offset = (int(r0), int(c0))
        self.rgb = np.ascontiguousarray(rgb)
        self.mask = np.ascontiguousarray(mask)

    @cached_property
    def n_lesion(self) -> int:
        """Number of lesion pixels."""
        return int(self.mask.sum())

    @cached_property
    def gray(self) -> np.ndarray:
        """``uint8`` luma (OpenCV's RGB→GRAY weights)."""
        return rgb_to_gray(self.rgb)

    @cached_property
    def _hsv_views(self) -> tuple[np.ndarray, np.ndarray]:
        # HSV, hue rotation and uint8 levels in one kernel pass (bit-identical to the
        # separate steps)
        return hsv_views(self.rgb, 180.0, HSV_U8_SCALE, HSV_U8_OFFSET)

    @cached_property
    def _lab_views(self) -> tuple[np.ndarray, np.ndarray]:
        return lab_views(self.rgb, LAB_U8_SCALE, LAB_U8_OFFSET)

    @property
    def hsv(self) -> np.ndarray:
        """``float32`` HSV; H in degrees **rotated by 180** (cut on cyan), S and V in 0..1.

        Lesion and skin hues are red to brown (H near 0/360 in plain HSV); rotating puts them in
        the middle of the range so that linear statistics of hue are meaningful.
        """
        return self._hsv_views[0]

    @property
    def lab(self) -> np.ndarray:
        """``float32`` CIE L*a*b* (D65)."""
        return self._lab_views[0]

    @property
    def hsv_u8(self) -> np.ndarray:
        """HSV scaled to 0..255 ``uint8`` (for quantiles): H·255/360, S·255, V·255."""
        return self._hsv_views[1]

    @property
    def lab_u8(self) -> np.ndarray:
        """Lab as ``uint8`` (for quantiles): L·2.55, a+128, b+128."""
        return self._lab_views[1]

    @cached_property
    def skin(self) -> np.ndarray:
        """``bool`` ring of skin around the lesion (``SKIN_RING_WIDTH`` px), frame excluded.

        Falls back to every non-lesion, non-frame pixel of the analysis window when the ring
        has fewer than 20 pixels (a lesion that fills the frame); may be empty.
        """
        not_frame = self.hsv[:, :, 2] > FRAME_V_MAX
        ring = (self.outside_dist <= SKIN_RING_WIDTH) & ~self.mask & not_frame
        if ring.sum() < 20:
            ring = ~self.mask & not_frame
        return ring

    @cached_property
    def outside_dist(self) -> np.ndarray:
        """``float32`` distance (px, L2) from each non-lesion pixel to the nearest lesion pixel.

        0 inside the lesion (OpenCV's 5x5 distance mask, as :attr:`depth`).
        """
        outside = (~self.mask).view(np.uint8)
        return cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_5)

    @cached_property
    def depth(self) -> np.ndarray:
        """``float32`` distance (px, L2) from each lesion pixel to the nearest non-lesion pixel.

        0 outside the lesion. The image's edge is not "outside": a lesion cut by the frame is
        taken to go on beyond it. Equal to the whole image's distances, because the window
        reaches past the lesion on every side that is not the image's edge.
        """
        return cv2.distanceTransform(self.mask.view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5)

    @cached_property
    def interior(self) -> np.ndarray:
        """``bool`` lesion interior: lesion pixels deeper than 2 px (the whole lesion if that
        leaves fewer than 50 pixels)."""
        inner = self.depth > 2
        return inner if inner.sum() >= 50 else self.mask

    @cached_property
    def rgb_f32(self) -> np.ndarray:
        """``float32`` copy of :attr:`rgb`."""
        return self.rgb.astype(np.float32)

    def moments(self, space: str, region: str = "lesion") -> np.ndarray:
        """Mean, std, skewness, excess kurtosis per channel, cached.

        Parameters
        ----------
        space : {"rgb", "hsv", "lab"}
        region : {"lesion", "skin"}

        Returns
        -------
        numpy.ndarray
            ``float64`` ``(3, 4)``; NaN rows when the region is empty.
        """
        key = (space, region)
        cache = self.__dict__.setdefault("_moments", {})
        if key not in cache:
            # uint8 RGB directly: the kernel widens every value exactly to float64
            values = self.rgb if space == "rgb" else getattr(self, space)
            where = self.mask if region == "lesion" else self.skin
            cache[key] = masked_moments(values, where)
        return cache[key]

    def crop(self, margin: int = 0) -> tuple[slice, slice]:
        """Slices of the lesion's bounding box grown by ``margin`` pixels (clipped to the image).

        Texture kernels run on this window only: every pixel pair and neighbourhood they read
        for a lesion pixel lies inside it, so the results equal the whole-image ones.
        """
        rows = np.flatnonzero(self.mask.any(axis=1))
        cols = np.flatnonzero(self.mask.any(axis=0))
        if rows.size == 0:
            return slice(0, 0), slice(0, 0)
        h, w = self.mask.shape
        return (
            slice(max(0, rows[0] - margin), min(h, rows[-1] + 1 + margin)),
            slice(max(0, cols[0] - margin), min(w, cols[-1] + 1 + margin)),
        )


class Family:
    """A feature family: a fixed, named list of features computed from a :class:`Context`.

    Subclasses set :attr:`name` (the prefix of every feature name) and implement
    :meth:`names` and :meth:`compute`. A family's names never change meaning once released.
    """

    #: Registry key and the first token of every feature name of the family.
    name: str = ""
    #: One line saying what the family measures.
    description: str = ""

    def names(self) -> list[str]:
        """Feature names, in the order :meth:`compute` returns values."""
        raise NotImplementedError

    def compute(self, ctx: Context) -> np.ndarray:
        """Compute the family's features for one image.

        Returns
        -------
        numpy.ndarray
            ``float64`` of length ``len(self.names())``; NaN where a value is undefined.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<family {self.name}: {len(self.names())} features>"
