"""Zone, heterogeneity, border and structure families: references and known answers."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy import ndimage
from skimage import morphology

from conftest import synthetic_lesion
from hamfeat.features import FAMILIES, Context
from hamfeat.features.structure import MORPH_SIZES


def _values(family: str, ctx: Context) -> dict[str, float]:
    fam = FAMILIES[family]
    return dict(zip(fam.names(), fam.compute(ctx), strict=True))


def _disk_image(
    h: int = 120, w: int = 160, r: float = 35, blur: float = 0.0, lesion=(110, 70, 55)
) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[:h, :w]
    mask = (yy - h / 2) ** 2 + (xx - w / 2) ** 2 <= r * r
    img = np.empty((h, w, 3), np.float32)
    img[:] = (205, 160, 140)
    img[mask] = lesion
    if blur:
        img = cv2.GaussianBlur(img, (0, 0), blur)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), mask


def test_zone_against_numpy_reference() -> None:
    rgb, mask = synthetic_lesion(90, 120, seed=3)
    ctx = Context(rgb, mask, window=False)
    got = _values("zone", ctx)
    # reference: scipy's exact Euclidean distance transform, thirds by quantile
    depth = ndimage.distance_transform_edt(mask)
    t1, t2 = np.quantile(depth[mask], [1 / 3, 2 / 3])
    lab = ctx.lab.astype(np.float64)
    core = mask & (depth > t2)
    rim = mask & (depth <= t1)
    # OpenCV's 5x5 distance mask is approximate: zone edges may move by a pixel; the means
    # agree to 1 L* unit on a 90x120 lesion with noise
    assert got["zone_core_lab_l_mean"] == pytest.approx(lab[core, 0].mean(), abs=1.0)
    assert got["zone_rim_lab_a_mean"] == pytest.approx(lab[rim, 1].mean(), abs=1.0)
    assert got["zone_core_minus_rim_lab_l"] == pytest.approx(
        got["zone_core_lab_l_mean"] - got["zone_rim_lab_l_mean"]
    )


def test_zone_dark_core_is_negative_core_minus_rim() -> None:
    rgb, mask = _disk_image()
    depth = cv2.distanceTransform(mask.view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5)
    rgb[depth > 20] = (40, 25, 20)  # a dark core
    got = _values("zone", Context(rgb, mask))
    assert got["zone_core_minus_rim_lab_l"] < -10
    assert got["zone_rim_lab_l_mean"] > got["zone_core_lab_l_mean"]


def test_heterogeneity_uniform_vs_two_colours() -> None:
    rgb, mask = _disk_image()
    flat = _values("hetero", Context(rgb, mask))
    assert flat["hetero_deltae_mean"] < 1.0
    assert flat["hetero_deltae_frac10"] == 0.0
    two = rgb.copy()
    two[:, 80:][mask[:, 80:]] = (60, 40, 90)  # half the lesion blue-grey
    split = _values("hetero", Context(two, mask))
    assert split["hetero_deltae_frac10"] > 0.3
    assert split["hetero_lab_b_std"] > 5 * max(flat["hetero_lab_b_std"], 0.1)
    assert split["hetero_n_blocks_sqrt"] == flat["hetero_n_blocks_sqrt"]


def test_heterogeneity_tiny_lesion_is_nan() -> None:
    rgb, mask = _disk_image(r=8)
    got = FAMILIES["hetero"].compute(Context(rgb, mask))
    assert np.isnan(got).all()


def test_heterogeneity_blocks_against_reference() -> None:
    rgb, mask = synthetic_lesion(96, 120, seed=5)  # multiples of the block side: no grid shift
    ctx = Context(rgb, mask, window=False)
    got = _values("hetero", ctx)
    lab = ctx.lab.astype(np.float64)
    means = []
    for r in range(0, 96, 12):
        for c in range(0, 120, 12):
            m = mask[r : r + 12, c : c + 12]
            if m.mean() >= 0.75:
                means.append(lab[r : r + 12, c : c + 12][m].mean(axis=0))
    means = np.array(means)
    d = np.sqrt(((means[:, None] - means[None]) ** 2).sum(-1))[np.triu_indices(len(means), 1)]
    assert got["hetero_lab_l_std"] == pytest.approx(means[:, 0].std(), rel=1e-9)
    assert got["hetero_deltae_mean"] == pytest.approx(d.mean(), rel=1e-9)
    assert got["hetero_n_blocks_sqrt"] == pytest.approx(np.sqrt(len(means)))


def test_border_sharp_vs_fading_edge() -> None:
    sharp = _values("border", Context(*_disk_image()))
    rgb, mask = _disk_image(blur=4.0)
    fading = _values("border", Context(rgb, mask))
    assert sharp["border_grad_mean"] > 1.5 * fading["border_grad_mean"]
    assert sharp["border_delta_l"] > 20  # skin lighter than the lesion
    assert sharp["border_sector_cv"] < 0.2  # a round, even border


def test_border_one_sided_sharpness() -> None:
    rgb, mask = _disk_image()
    soft, _ = _disk_image(blur=5.0)
    rgb[:, :80] = soft[:, :80]  # left half fades out, right half is cut off
    got = _values("border", Context(rgb, mask))
    even = _values("border", Context(*_disk_image()))
    assert got["border_sector_cv"] > 2 * even["border_sector_cv"]


@pytest.mark.parametrize("size", MORPH_SIZES)
def test_structure_blackhat_against_skimage(size: int) -> None:
    rgb, mask = synthetic_lesion(90, 120, seed=size)
    ctx = Context(rgb, mask, window=False)
    got = _values("structure", ctx)
    lum = ctx.lab_u8[:, :, 0]
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)).astype(bool)
    ref = morphology.black_tophat(lum, footprint=k).astype(np.float64)
    inner = ctx.interior
    # interior pixels are farther than the element's radius from the image edge here, so the
    # border handling of the two libraries does not matter: exact
    assert got[f"structure_blackhat_s{size}_mean"] == pytest.approx(ref[inner].mean(), rel=1e-12)
    assert got[f"structure_blackhat_s{size}_frac05"] == pytest.approx((ref[inner] > 5).mean())
    ref_top = morphology.white_tophat(lum, footprint=k).astype(np.float64)
    assert got[f"structure_tophat_s{size}_std"] == pytest.approx(ref_top[inner].std(), rel=1e-9)


def test_structure_dots_raise_dark_blob_density() -> None:
    rgb, mask = _disk_image(lesion=(150, 110, 90))
    plain = _values("structure", Context(rgb, mask))
    dotted = rgb.copy()
    rng = np.random.default_rng(0)
    ys, xs = np.nonzero(mask & (cv2.distanceTransform(mask.view(np.uint8), 2, 5) > 6))
    for i in rng.choice(len(ys), 25, replace=False):
        cv2.circle(dotted, (int(xs[i]), int(ys[i])), 2, (50, 30, 25), -1)
    dots = _values("structure", Context(dotted, mask))
    assert dots["structure_log_s1p5_dark_density"] > plain["structure_log_s1p5_dark_density"] + 0.2
    assert dots["structure_blackhat_s7_frac12"] > plain["structure_blackhat_s7_frac12"] + 0.02
    assert plain["structure_blackhat_s3_mean"] < 0.5


@pytest.mark.parametrize("family", ["zone", "hetero", "border", "structure"])
def test_empty_and_tiny_masks_give_nan_not_error(family: str) -> None:
    rgb, _ = _disk_image()
    for mask in (np.zeros(rgb.shape[:2], bool), _disk_image(r=1.5)[1]):
        out = FAMILIES[family].compute(Context(rgb, mask))
        assert out.shape == (len(FAMILIES[family].names()),)
        assert out.dtype == np.float64


def test_zone_halves_colour_asymmetry() -> None:
    rgb, _ = _disk_image(h=120, w=160)
    yy, xx = np.mgrid[:120, :160]
    ell = ((yy - 60) / 25.0) ** 2 + ((xx - 80) / 50.0) ** 2 <= 1  # major axis horizontal
    rgb[:] = (205, 160, 140)
    rgb[ell] = (110, 70, 55)
    even = _values("zone", Context(rgb, ell))
    assert even["zone_halves_major_deltae"] < 0.5
    assert even["zone_halves_minor_deltae"] < 0.5
    top = rgb.copy()
    top[ell & (yy < 60)] = (60, 40, 90)  # the half above the major axis turns blue-grey
    got = _values("zone", Context(top, ell))
    assert got["zone_halves_major_deltae"] > 20
    assert got["zone_halves_minor_deltae"] < 0.5  # left and right halves still alike
    assert got["zone_halves_major_lab_b_absdiff"] > 10
