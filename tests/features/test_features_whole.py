"""The ``whole`` family: the field of view without the lesion mask, against NumPy/OpenCV."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import real_pairs, synthetic_lesion
from hamfeat.features import FAMILIES, Context
from hamfeat.features.base import FRAME_V_MAX
from hamfeat.features.color import ColorFamily
from hamfeat.features.texture import GlcmFamily, LbpFamily
from hamfeat.features.whole import WHOLE_LONG_SIDE, WholeFamily, field_context
from hamfeat.pipeline import FeatureConfig, compute_features

WHOLE = FAMILIES["whole"]


def _framed(seed: int = 0) -> np.ndarray:
    """A 225x300 lesion image with a black vignette in its corners."""
    rgb, _ = synthetic_lesion(225, 300, seed=seed)
    yy, xx = np.mgrid[:225, :300]
    rgb[(yy - 112) ** 2 + (xx - 150) ** 2 > 135**2] = 0
    return rgb


def test_names_are_the_sub_families_behind_whole() -> None:
    names = WHOLE.names()
    assert len(names) == len(set(names)) == 338
    assert all(n.startswith("whole_") for n in names)
    for n in ("whole_color_lab_l_mean", "whole_glcm_d1_contrast_mean", "whole_lbp_r2_u07",
              "whole_structure_blackhat_s7_frac12", "whole_wavelet_l1_hh_energy"):
        assert n in names
    assert isinstance(WHOLE, WholeFamily)


def test_field_leaves_out_the_frame_and_halves_the_size() -> None:
    rgb = _framed()
    ctx = field_context(rgb)
    assert ctx.rgb.shape == (112, WHOLE_LONG_SIDE, 3)
    small = cv2.resize(rgb, (150, 112), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(ctx.rgb, small)
    np.testing.assert_array_equal(ctx.mask, small.max(axis=2) > FRAME_V_MAX * 255)
    assert 0.5 < ctx.mask.mean() < 0.95
    # an image that is (almost) all frame: every pixel is the field, never an empty region
    dark = np.full((225, 300, 3), 5, np.uint8)
    assert field_context(dark).mask.all()


def test_colour_of_the_field_against_numpy() -> None:
    rgb = _framed(1)
    values = dict(zip(WHOLE.names(), WHOLE.compute(Context(rgb, np.ones(rgb.shape[:2], bool))),
                      strict=True))
    small = cv2.resize(rgb, (150, 112), interpolation=cv2.INTER_AREA).astype(np.float64)
    field = small.max(axis=2) > FRAME_V_MAX * 255
    for c, ch in enumerate("rgb"):
        px = small[..., c][field]
        assert values[f"whole_color_rgb_{ch}_mean"] == pytest.approx(px.mean(), rel=1e-9)
        assert values[f"whole_color_rgb_{ch}_std"] == pytest.approx(px.std(), rel=1e-9)


def test_sub_families_computed_as_on_their_own() -> None:
    rgb = _framed(2)
    ref_ctx = field_context(rgb)
    values = WHOLE.compute(Context(rgb, np.ones(rgb.shape[:2], bool)))
    got = dict(zip(WHOLE.names(), values, strict=True))
    for fam in (ColorFamily(), GlcmFamily(), LbpFamily()):
        ref = fam.compute(ref_ctx)
        mine = np.array([got["whole_" + n] for n in fam.names()])
        np.testing.assert_array_equal(mine, ref)


def test_independent_of_the_lesion_mask() -> None:
    """The point of the family: the same values whatever mask the image gets."""
    rgb, mask = synthetic_lesion(225, 300, seed=4)
    cfg = FeatureConfig(families=("whole",))
    a = compute_features(rgb, mask, cfg).values
    b = compute_features(rgb, None, cfg).values  # automatic mask
    other = np.zeros_like(mask)
    other[10:60, 20:90] = True
    c = compute_features(rgb, other, cfg).values
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    assert np.isfinite(a).mean() > 0.95


def test_real_images_deterministic_and_mask_free(shared_data) -> None:
    cfg = FeatureConfig(families=("whole",))
    for rgb, mask in real_pairs(3):
        a = compute_features(rgb, mask, cfg).values
        b = compute_features(rgb.copy(), None, cfg).values
        np.testing.assert_array_equal(a, b)
        assert np.isfinite(a).mean() > 0.95
