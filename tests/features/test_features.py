"""Feature families and their registry, checked against NumPy / scikit-image references."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.measure import regionprops

from conftest import synthetic_lesion
from hamfeat.features import DEFAULT_FAMILIES, FAMILIES, Context, feature_names, get_families
from hamfeat.features.color import DERMOSCOPIC_COLOURS

TOL = 1e-9  # features that reduce to the same arithmetic as the reference


def test_names_unique_prefixed_and_stable() -> None:
    names = feature_names()
    assert len(names) == len(set(names))
    for fam in get_families():
        assert all(n.startswith(fam.name + "_") for n in fam.names()), fam.name
    # a few released names that must never change meaning
    for name in (
        "color_lab_l_mean",
        "color_hsv_h_hist03",
        "glcm_d1_contrast_mean",
        "lbp_r2_u07",
        "shape_asymmetry_major",
        "skin_contrast_deltae",
        "variegation_n_colors",
        "wavelet_l1_hh_energy",
    ):
        assert name in names


def test_enable_disable_by_name() -> None:
    assert [f.name for f in get_families(["shape", "color"])] == ["color", "shape"]
    assert DEFAULT_FAMILIES == (
        "color", "skin", "variegation", "zone", "hetero", "border", "glcm", "lbp", "wavelet",
        "structure", "shape", "whole",
    )  # the grayscale (X-ray) families are registered but never defaults
    assert set(FAMILIES) - set(DEFAULT_FAMILIES) == {
        "grayhist", "grayglcm", "graylbp", "graygrid", "graythumb", "grayprof", "grayhog",
        "graypix",
    }
    with pytest.raises(ValueError, match="unknown feature family 'colour'"):
        get_families(["colour"])
    with pytest.raises(ValueError, match="twice"):
        get_families(["shape", "shape"])
    with pytest.raises(ValueError, match="no feature family"):
        get_families([])


@pytest.fixture(scope="module")
def ctx() -> Context:
    rgb, mask = synthetic_lesion(90, 120, seed=3)
    return Context(rgb, mask)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_each_family_shape_dtype_and_determinism(ctx: Context, family: str) -> None:
    fam = FAMILIES[family]
    a = fam.compute(ctx)
    assert a.dtype == np.float64 and a.shape == (len(fam.names()),)
    if family == "graypix":  # pixels of the lesion's bounding box: NaN exactly off the lesion
        import cv2

        rows, cols = ctx.crop(0)
        area = cv2.resize(ctx.mask[rows, cols].astype(np.float64), (64, 64),
                          interpolation=cv2.INTER_AREA)
        assert np.array_equal(np.isnan(a), area.ravel() <= 1e-12)
    else:
        assert np.isfinite(a).mean() > 0.9, f"{family}: too many NaN on a clean synthetic lesion"
    rgb, mask = synthetic_lesion(90, 120, seed=3)
    b = fam.compute(Context(rgb, mask))
    assert a.tobytes() == b.tobytes(), "not bit-identical across runs"


def named(family: str, ctx: Context) -> dict[str, float]:
    fam = FAMILIES[family]
    return dict(zip(fam.names(), fam.compute(ctx), strict=True))


def test_color_moments_against_numpy(ctx: Context) -> None:
    f = named("color", ctx)
    for c, ch in enumerate("rgb"):
        v = ctx.rgb[..., c][ctx.mask].astype(np.float64)
        assert f[f"color_rgb_{ch}_mean"] == pytest.approx(v.mean(), abs=1e-4)
        assert f[f"color_rgb_{ch}_std"] == pytest.approx(v.std(), abs=1e-4)
        assert f[f"color_rgb_{ch}_p50"] == pytest.approx(np.quantile(v, 0.5), abs=TOL)
        assert f[f"color_rgb_{ch}_p05"] == pytest.approx(np.quantile(v, 0.05), abs=TOL)
    lab_l = ctx.lab[..., 0][ctx.mask]
    assert f["color_lab_l_mean"] == pytest.approx(lab_l.mean(), abs=1e-3)
    # quantiles of float channels come from 8-bit levels: within one level
    assert f["color_lab_l_p50"] == pytest.approx(np.quantile(lab_l, 0.5), abs=1 / 2.55)
    hist = [f[f"color_lab_l_hist{k:02d}"] for k in range(10)]
    ref = np.histogram(lab_l, bins=10, range=(0, 100))[0] / ctx.mask.sum()
    np.testing.assert_allclose(hist, ref, atol=TOL)


def test_skin_contrast_sign(ctx: Context) -> None:
    f = named("skin", ctx)
    assert f["skin_contrast_lab_l"] < -20  # the lesion is darker than the skin around it
    assert f["skin_contrast_deltae"] > 20
    ring = ctx.skin
    assert not (ring & ctx.mask).any() and ring.sum() > 100


def test_variegation_counts_pure_colours() -> None:
    import cv2

    h, w = 40, 60
    rgb = np.full((h, w, 3), 230, np.uint8)
    mask = np.zeros((h, w), bool)
    mask[5:35, 5:55] = True
    # paint the lesion half black, half dark brown (from the reference Lab values)
    for (x0, x1), colour in (((5, 30), "black"), ((30, 55), "darkbrown")):
        lab = np.array(DERMOSCOPIC_COLOURS[colour], np.float32).reshape(1, 1, 3)
        rgb_c = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)[0, 0]
        rgb[5:35, x0:x1] = np.clip(np.rint(rgb_c * 255), 0, 255).astype(np.uint8)
    f = named("variegation", Context(rgb, mask))
    assert f["variegation_black_frac"] == pytest.approx(0.5)
    assert f["variegation_darkbrown_frac"] == pytest.approx(0.5)
    assert f["variegation_n_colors"] == 2
    assert f["variegation_entropy"] == pytest.approx(1.0)


def test_shape_against_regionprops() -> None:
    h, w = 225, 300
    yy, xx = np.mgrid[:h, :w]
    theta = 0.5
    u = (xx - 150) * np.cos(theta) + (yy - 110) * np.sin(theta)
    v = -(xx - 150) * np.sin(theta) + (yy - 110) * np.cos(theta)
    mask = (u / 80) ** 2 + (v / 40) ** 2 <= 1
    rgb = np.full((h, w, 3), 200, np.uint8)
    f = named("shape", Context(rgb, mask))
    rp = regionprops(mask.astype(np.uint8))[0]
    assert f["shape_area_frac"] == pytest.approx(rp.area / (h * w), rel=1e-12)
    assert f["shape_eccentricity"] == pytest.approx(rp.eccentricity, abs=1e-6)
    assert f["shape_axis_ratio"] == pytest.approx(
        rp.axis_minor_length / rp.axis_major_length, abs=1e-6
    )
    assert f["shape_solidity"] == pytest.approx(rp.solidity, abs=0.01)  # hull of pixel centres
    assert f["shape_equiv_diameter_rel"] == pytest.approx(
        rp.equivalent_diameter_area / np.hypot(h, w), rel=1e-9
    )
    assert f["shape_circularity"] == pytest.approx(4 * np.pi * rp.area / rp.perimeter**2, rel=0.1)
    assert f["shape_asymmetry_major"] < 0.03 and f["shape_asymmetry_minor"] < 0.03
    assert f["shape_n_components"] == 1 and f["shape_border_touch"] == 0
    # an irregular blob is less circular, less solid and more asymmetric
    blob = mask.copy()
    blob[100:200, 150:260] = True
    g = named("shape", Context(rgb, blob))
    assert g["shape_solidity"] < f["shape_solidity"]
    assert g["shape_asymmetry_major"] > 0.1


def test_empty_mask_gives_nan_not_error() -> None:
    rgb, _ = synthetic_lesion()
    ctx = Context(rgb, np.zeros(rgb.shape[:2], bool))
    for fam in get_families():
        values = fam.compute(ctx)
        assert values.shape == (len(fam.names()),)
        if fam.name in ("color", "variegation", "glcm", "lbp", "wavelet", "shape"):
            assert np.isnan(values).all(), fam.name


@pytest.mark.parametrize("where", ["interior", "touching the border"])
def test_texture_on_bounding_box_equals_whole_image(where: str) -> None:
    """GLCM and LBP run on the lesion's bounding box; the result must equal the whole image's."""
    from hamfeat._kernels.glcm import glcm, haralick, quantize
    from hamfeat._kernels.lbp import lbp_uniform, masked_code_histogram

    rgb, mask = synthetic_lesion(90, 120, seed=11)
    if where != "interior":
        mask = np.roll(mask, (40, 55), axis=(0, 1))
        mask[:, :3] |= mask[:, 3:6]
    ctx = Context(rgb, mask, window=False)
    fam = FAMILIES["glcm"]
    counts = glcm(
        quantize(ctx.gray, fam.levels),
        mask,
        np.array(fam.distances, np.int64),
        np.array(fam.angles),
        fam.levels,
        True,
    )
    props = haralick(counts)
    ref = np.stack([props.mean(axis=2).T, np.ptp(props, axis=2).T], axis=2).ravel()
    np.testing.assert_array_equal(fam.compute(ctx), ref)
    lbp = FAMILIES["lbp"]
    ref = np.concatenate(
        [
            masked_code_histogram(lbp_uniform(ctx.gray, lbp.points, r), mask, lbp.points + 2)
            / mask.sum()
            for r in lbp.radii
        ]
    )
    np.testing.assert_array_equal(lbp.compute(ctx), ref)


def check_window(fam, window: Context, whole: Context) -> None:
    a, b = fam.compute(window), fam.compute(whole)
    if fam.name == "shape":
        # OpenCV's moments are sums over pixel coordinates: a shifted origin changes rounding
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=fam.name)
    else:
        np.testing.assert_array_equal(a, b, err_msg=fam.name)


@pytest.mark.parametrize("seed", range(3))
def test_analysis_window_equals_whole_image(seed: int) -> None:
    """Cropping to the analysis window is exact: every family gives the same values."""
    rgb, mask = synthetic_lesion(225, 300, seed=seed)
    small = np.zeros_like(mask)
    small[37:101, 53:139] = mask[80:144, 100:186]  # an off-centre, smaller lesion
    for m in (mask, small):
        whole, window = Context(rgb, m, window=False), Context(rgb, m)
        assert window.rgb.shape[0] * window.rgb.shape[1] <= rgb.shape[0] * rgb.shape[1]
        for fam in get_families():
            check_window(fam, window, whole)


def test_analysis_window_equals_whole_image_real(shared_data) -> None:
    from hamfeat.imageio import mask_to_canonical, read_image, read_mask, to_canonical

    ham = shared_data / "ham10000"
    for image_id in ("ISIC_0024306", "ISIC_0024310", "ISIC_0024400", "ISIC_0025030"):
        rgb = to_canonical(read_image(ham / "images" / f"{image_id}.jpg"))
        m = read_mask(ham / "masks" / f"{image_id}_segmentation.png")
        m = mask_to_canonical(m, rgb.shape[:2])
        whole, window = Context(rgb, m, window=False), Context(rgb, m)
        for fam in get_families():
            check_window(fam, window, whole)
