"""Tests of :mod:`hamfeat.segment`: the contract on generated images, Dice on known answers,
and a small real-data check against the HAM10000 reference masks."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from _paths import SHARED
from hamfeat.errors import HamfeatError, MaskError
from hamfeat.segment import Params, Segmentation, segment_lesion

H, W = 225, 300
SKIN = (222, 168, 150)
LESION = (120, 70, 50)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def skin(h: int = H, w: int = W, seed: int = 0, noise: float = 6.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.empty((h, w, 3), np.float32)
    img[:] = SKIN
    img += rng.normal(0, noise, (h, w, 3)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def ellipse_image(
    centre=(150, 112), axes=(60, 40), angle=0, seed: int = 0, colour=LESION
) -> tuple[np.ndarray, np.ndarray]:
    """Skin with a dark noisy ellipse; returns the image and the true mask."""
    img = skin(seed=seed)
    truth = np.zeros((H, W), np.uint8)
    cv2.ellipse(truth, centre, axes, angle, 0, 360, 1, -1)
    rng = np.random.default_rng(seed + 1)
    lesion = np.clip(np.array(colour, np.float32) + rng.normal(0, 10, (H, W, 3)), 0, 255)
    img[truth > 0] = lesion.astype(np.uint8)[truth > 0]
    img = cv2.GaussianBlur(img, (3, 3), 0)
    return img, truth.astype(bool)


def add_vignette(img: np.ndarray, radius_frac: float = 0.53) -> np.ndarray:
    """Black outside a centred circle of radius ``radius_frac * width`` (dermatoscope frame)."""
    out = img.copy()
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(xx - w / 2, yy - h / 2)
    out[r > radius_frac * w] = (8, 6, 6)
    return out


def add_hair(img: np.ndarray, n: int = 12, seed: int = 0) -> np.ndarray:
    out = img.copy()
    rng = np.random.default_rng(seed)
    h, w = img.shape[:2]
    for _ in range(n):
        p0 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.line(out, p0, p1, (40, 30, 25), 2, cv2.LINE_AA)
    return out


def check_contract(img: np.ndarray) -> Segmentation:
    seg = segment_lesion(img)
    assert isinstance(seg, Segmentation)
    assert seg.mask.dtype == np.bool_
    assert seg.mask.shape == img.shape[:2]
    assert seg.mask.any(), "mask is empty"
    assert not seg.mask.all(), "mask covers every pixel"
    assert isinstance(seg.method, str) and seg.method
    assert 0.0 <= seg.quality <= 1.0
    again = segment_lesion(img.copy())
    assert np.array_equal(seg.mask, again.mask), "not deterministic"
    assert seg.method == again.method
    return seg


def test_clean_ellipse():
    img, truth = ellipse_image()
    seg = check_contract(img)
    assert seg.method == "otsu"
    assert seg.channel == "blue"
    # a pigmented (dark) lesion keeps the blue channel with the redness channel on too
    assert segment_lesion(img, REDNESS).channel == "blue"
    assert dice(seg.mask, truth) >= 0.9


#: The optional redness channel, with the margin tuned for Dice.
REDNESS = Params(redness_margin=0.05)
#: Pink lesions whose blue value equals the skin's (150): no lightness contrast in blue,
#: only redness (a*) contrast.
PINK_LESIONS = [(230, 125, 150), (225, 140, 150)]


@pytest.mark.parametrize("colour", PINK_LESIONS)
def test_pink_lesion_uses_redness(colour):
    img, truth = ellipse_image(colour=colour)
    seg = segment_lesion(img, REDNESS)
    assert seg.channel == "redness"
    assert np.array_equal(seg.mask, segment_lesion(img.copy(), REDNESS).mask)
    assert dice(seg.mask, truth) >= 0.85
    # the blue channel alone (the default) finds nothing of it (measured Dice 0.0)
    blue_only = check_contract(img)
    assert blue_only.channel == "blue"
    assert dice(blue_only.mask, truth) < 0.5


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_off_centre_rotated_ellipses(seed):
    rng = np.random.default_rng(seed)
    centre = (int(rng.integers(110, 190)), int(rng.integers(85, 140)))
    axes = (int(rng.integers(35, 70)), int(rng.integers(25, 50)))
    img, truth = ellipse_image(centre, axes, angle=int(rng.integers(0, 180)), seed=seed)
    assert dice(check_contract(img).mask, truth) >= 0.85


def test_vignette_corners():
    img, truth = ellipse_image()
    img = add_vignette(img)
    seg = check_contract(img)
    assert seg.frame_fraction > 0.05
    assert dice(seg.mask, truth) >= 0.85
    # nothing of the black frame is called lesion
    frame = img.max(axis=2) < 30
    assert not (seg.mask & frame).any()


def test_hair_lines():
    img, truth = ellipse_image()
    seg = check_contract(add_hair(img))
    assert dice(seg.mask, truth) >= 0.8


def test_vignette_and_hair():
    img, truth = ellipse_image(axes=(50, 35))
    seg = check_contract(add_hair(add_vignette(img), seed=3))
    assert dice(seg.mask, truth) >= 0.75


def test_uneven_illumination():
    """A dark gradient towards one side must not be taken for the lesion."""
    img, truth = ellipse_image(axes=(45, 35))
    ramp = np.linspace(1.0, 0.55, W, dtype=np.float32)[None, :, None]
    img = (img.astype(np.float32) * ramp).astype(np.uint8)
    assert dice(check_contract(img).mask, truth) >= 0.75


def test_lesion_touching_border():
    img, truth = ellipse_image(centre=(250, 112), axes=(90, 70))
    seg = check_contract(img)
    assert dice(seg.mask, truth) >= 0.8


def test_small_lesion():
    # The mask is grown by a few pixels on purpose (reference masks are drawn generously), which
    # costs Dice on a small, sharp synthetic lesion.
    img, truth = ellipse_image(axes=(16, 12))
    assert dice(check_contract(img).mask, truth) >= 0.7


def test_uniform_image_falls_back():
    img = np.full((H, W, 3), SKIN, np.uint8)
    seg = check_contract(img)
    assert seg.method.startswith("fallback")


@pytest.mark.parametrize("value", [0, 255])
def test_black_and_white_images(value):
    check_contract(np.full((H, W, 3), value, np.uint8))


def test_noise_image():
    rng = np.random.default_rng(5)
    check_contract(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))


def test_tiny_image():
    img = skin(16, 16, seed=3)
    img[5:11, 5:11] = LESION
    seg = check_contract(img)
    assert seg.mask.shape == (16, 16)


@pytest.mark.parametrize("shape", [(16, 40), (40, 16), (17, 23), (451, 601), (300, 300)])
def test_other_sizes(shape):
    h, w = shape
    img = skin(h, w, seed=4)
    cv2.ellipse(img, (w // 2, h // 2), (max(w // 5, 2), max(h // 5, 2)), 0, 0, 360, LESION, -1)
    seg = check_contract(img)
    if min(h, w) >= 100:
        truth = np.zeros((h, w), np.uint8)
        cv2.ellipse(truth, (w // 2, h // 2), (w // 5, h // 5), 0, 0, 360, 1, -1)
        assert dice(seg.mask, truth.astype(bool)) >= 0.85


def test_all_lesion():
    """An image that is all lesion (dark, textured) still gets a valid mask."""
    rng = np.random.default_rng(7)
    img = np.clip(np.array(LESION) + rng.normal(0, 12, (H, W, 3)), 0, 255).astype(np.uint8)
    check_contract(img)


def test_lesion_filling_frame():
    """A lesion larger than the field of view: most of the image should be lesion."""
    img, truth = ellipse_image(axes=(200, 160))
    seg = check_contract(img)
    assert dice(seg.mask, truth) >= 0.8


def test_non_contiguous_and_views():
    img, _ = ellipse_image()
    big = np.zeros((H, W * 2, 3), np.uint8)
    big[:, ::2] = img
    view = big[:, ::2]
    assert not view.flags.c_contiguous
    assert np.array_equal(segment_lesion(view).mask, segment_lesion(img).mask)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((20, 20), np.uint8),
        np.zeros((20, 20, 3), np.float32),
        np.zeros((20, 20, 4), np.uint8),
    ],
)
def test_rejects_invalid_input(bad):
    with pytest.raises(ValueError):
        segment_lesion(bad)


def test_params_are_used():
    img, _ = ellipse_image()
    a = segment_lesion(img).mask.sum()
    b = segment_lesion(img, Params(grow=15)).mask.sum()
    assert b > a


# --------------------------------------------------------------------------------------------
# Real data

REAL_IMAGES = 20
#: Median Dice over the 20 images must reach this. The full benchmark's median is about 0.93;
#: 0.80 leaves room for the small sample while still catching a broken segmentation (the plain
#: Otsu baseline scores about 0.83 overall and far lower on its tail).
REAL_MEDIAN_DICE = 0.80


def shared_data() -> Path:
    return SHARED


#: Pink lesions on real images: basal cell carcinomas and actinic keratoses (every 20th of
#: those with an even id, the tuning half). Measured median Dice: 0.845 with the optional
#: redness channel, 0.757 with the blue channel alone; 0.80 fails without the redness channel.
REAL_PINK_MEDIAN_DICE = 0.80


def test_real_pink_lesions_dice_with_redness():
    import pandas as pd

    from hamfeat.imageio import mask_to_canonical, read_image, read_mask, to_canonical

    root = shared_data() / "ham10000"
    meta_path = root / "HAM10000_metadata.csv"
    if not meta_path.is_file() or not (root / "masks").is_dir():
        pytest.skip(f"HAM10000 data not found at {root} (set HAMFEAT_SHARED_DATA)")
    meta = pd.read_csv(meta_path).sort_values("image_id")
    even = meta.image_id.str[5:].astype(int) % 2 == 0
    ids = meta.image_id[even & meta.dx.isin(["akiec", "bcc"])].tolist()
    scores_blue: list[float] = []
    scores = []
    for image_id in ids[::20]:
        path = root / "images" / f"{image_id}.jpg"
        try:
            rgb = read_image(path)
            ref = read_mask(root / "masks" / f"{image_id}_segmentation.png", rgb.shape[:2])
        except HamfeatError:  # a missing or unusable file is left out
            continue
        can = to_canonical(rgb)
        ref = mask_to_canonical(ref, can.shape[:2])
        scores.append(dice(segment_lesion(can, REDNESS).mask, ref))
        scores_blue.append(dice(segment_lesion(can).mask, ref))
    if len(scores) < 10:
        pytest.skip(f"too few usable akiec/bcc images ({len(scores)})")
    print(f"median Dice {np.median(scores):.3f}, blue channel only {np.median(scores_blue):.3f}")
    assert float(np.median(scores)) >= REAL_PINK_MEDIAN_DICE, sorted(scores)


def test_real_images_dice():
    from hamfeat.imageio import mask_to_canonical, read_image, read_mask, to_canonical

    root = shared_data() / "ham10000"
    images, masks = root / "images", root / "masks"
    if not images.is_dir() or not masks.is_dir():
        pytest.skip(f"HAM10000 data not found at {root} (set HAMFEAT_SHARED_DATA)")
    files = sorted(images.glob("ISIC_*.jpg"))
    if not files:
        pytest.skip(f"no ISIC_*.jpg images in {images}")
    step = max(1, len(files) // REAL_IMAGES)
    scores, skipped = [], []
    for path in files[::step][:REAL_IMAGES]:
        rgb = read_image(path)
        can = to_canonical(rgb)
        try:
            ref = read_mask(masks / f"{path.stem}_segmentation.png", rgb.shape[:2])
        except MaskError as exc:
            skipped.append(str(exc))
            continue
        ref = mask_to_canonical(ref, can.shape[:2])
        seg = segment_lesion(can)
        assert seg.mask.shape == can.shape[:2]
        scores.append(dice(seg.mask, ref))
    if len(scores) < REAL_IMAGES // 2:
        pytest.skip(f"too few usable reference masks ({len(scores)}); skipped: {skipped}")
    assert float(np.median(scores)) >= REAL_MEDIAN_DICE, sorted(scores)
