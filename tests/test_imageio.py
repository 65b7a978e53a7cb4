"""Decoding guards and mask reading (``hamfeat.imageio``)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import synthetic_lesion, write_jpeg, write_mask
from hamfeat.errors import ImageError, MaskError
from hamfeat.imageio import (
    MAX_PIXELS,
    canonical_shape,
    mask_to_canonical,
    read_image,
    read_mask,
    to_canonical,
)


@pytest.fixture
def rgb() -> np.ndarray:
    return synthetic_lesion(60, 80)[0]


def test_jpeg_and_png_read_as_rgb(tmp_path: Path, rgb: np.ndarray) -> None:
    png = tmp_path / "a.png"
    cv2.imwrite(str(png), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    out = read_image(png)
    assert out.dtype == np.uint8 and out.shape == rgb.shape and out.flags.c_contiguous
    np.testing.assert_array_equal(out, rgb)  # PNG is lossless: RGB order proven exactly
    jpg = write_jpeg(tmp_path / "a.jpg", rgb, quality=95)
    decoded = read_image(jpg).astype(int)
    assert np.abs(decoded - rgb).mean() < 8  # lossy, with chroma subsampling
    assert np.abs(decoded - rgb[..., ::-1]).mean() > 20  # and not in BGR order


def test_grayscale_cmyk_and_16bit_become_rgb(tmp_path: Path, rgb: np.ndarray) -> None:
    gray = tmp_path / "g.jpg"
    Image.fromarray(rgb).convert("L").save(gray, quality=95)
    out = read_image(gray)
    assert out.shape == rgb.shape
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])

    cmyk = tmp_path / "c.jpg"
    Image.fromarray(rgb).convert("CMYK").save(cmyk, quality=95)
    out = read_image(cmyk)
    assert out.shape == rgb.shape
    assert np.abs(out.astype(int) - rgb).mean() < 8, "CMYK JPEG decoded to the wrong colours"

    p16 = tmp_path / "d.png"
    cv2.imwrite(str(p16), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257)
    out = read_image(p16)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, rgb)

    rgba = tmp_path / "e.png"
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])).save(rgba)
    np.testing.assert_array_equal(read_image(rgba), rgb)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"hello, not an image at all", "not an image file"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 100, "not an image file"),
    ],
)
def test_bad_files_raise_one_line_error_naming_file(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "bad file é.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageError) as err:
        read_image(path)
    msg = str(err.value)
    assert msg.startswith(str(path)) and reason in msg and "\n" not in msg


def test_truncated_jpeg_is_refused(tmp_path: Path, rgb: np.ndarray) -> None:
    full = write_jpeg(tmp_path / "full.jpg", rgb).read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(full[: len(full) * 2 // 3])
    with pytest.raises(ImageError, match="truncated JPEG"):
        read_image(cut)


def test_png_named_jpg_is_read(tmp_path: Path, rgb: np.ndarray) -> None:
    path = tmp_path / "really_a_png.jpg"
    _, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    path.write_bytes(buf.tobytes())
    np.testing.assert_array_equal(read_image(path), rgb)


def test_decompression_bomb_header_refused_without_decoding(tmp_path: Path) -> None:
    # A valid PNG header announcing 20000x20000 pixels, with almost no data behind it.
    side = int(np.sqrt(MAX_PIXELS)) + 1000
    im = Image.new("1", (side, side))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    path = tmp_path / "bomb.png"
    path.write_bytes(buf.getvalue())
    assert path.stat().st_size < 5_000_000
    with pytest.raises(ImageError, match="too large"):
        read_image(path)


def test_missing_unreadable_and_broken_link(tmp_path: Path, rgb: np.ndarray) -> None:
    with pytest.raises(ImageError, match="file not found"):
        read_image(tmp_path / "nope.jpg")
    link = tmp_path / "link.jpg"
    os.symlink(tmp_path / "gone.jpg", link)
    with pytest.raises(ImageError, match="broken symbolic link"):
        read_image(link)
    with pytest.raises(ImageError, match="directory"):
        read_image(tmp_path)
    locked = write_jpeg(tmp_path / "locked.jpg", rgb)
    locked.chmod(0)
    if os.geteuid() != 0:  # root reads anything: see the next test
        with pytest.raises(ImageError, match="permission denied"):
            read_image(locked)


def test_unreadable_file_as_root_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The OS refusing to open a file (as it does for a non-root user) is a one-line error."""
    import hamfeat.imageio as imageio

    def refuse(path, mode="r", *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(imageio, "open", refuse, raising=False)
    with pytest.raises(ImageError, match=r"locked\.jpg: permission denied$"):
        read_image(tmp_path / "locked.jpg")


def test_tiny_image_refused(tmp_path: Path) -> None:
    path = tmp_path / "tiny.png"
    cv2.imwrite(str(path), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ImageError, match="too small"):
        read_image(path)


def test_read_mask_checks(tmp_path: Path) -> None:
    _, mask = synthetic_lesion(45, 60)
    good = write_mask(tmp_path / "m.png", mask)
    np.testing.assert_array_equal(read_mask(good, (45, 60)), mask)
    with pytest.raises(MaskError, match="mask is 60x45 but its image is 80x60"):
        read_mask(good, (60, 80))
    with pytest.raises(MaskError, match="empty"):
        read_mask(write_mask(tmp_path / "e.png", np.zeros((45, 60), bool)))
    with pytest.raises(MaskError, match="whole image"):
        read_mask(write_mask(tmp_path / "f.png", np.ones((45, 60), bool)))
    # non-binary masks are thresholded at 128
    soft = tmp_path / "soft.png"
    cv2.imwrite(str(soft), (mask * 200 + 20).astype(np.uint8))
    np.testing.assert_array_equal(read_mask(soft), mask)


def test_inverted_palette_mask_reads_as_luminance(tmp_path: Path) -> None:
    _, mask = synthetic_lesion(45, 60)
    im = Image.fromarray((~mask).astype(np.uint8), mode="L").convert("P")
    # index 0 (where the lesion is NOT) is made white, index 1 black: raw indices are inverted
    im = Image.fromarray((~mask).astype(np.uint8)).convert("L").point(lambda v: v)
    pal = Image.new("P", (60, 45))
    pal.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)
    pal.putdata(list((~mask).astype(np.uint8).ravel()))
    path = tmp_path / "pal.png"
    pal.save(path)
    raw = np.array(Image.open(path))
    assert np.array_equal(raw == 0, mask), "fixture: raw palette index 0 must be the lesion"
    np.testing.assert_array_equal(read_mask(path), mask)
    del im


def test_canonical_size() -> None:
    assert canonical_shape(450, 600) == (225, 300)
    assert canonical_shape(768, 1024) == (225, 300)
    assert canonical_shape(600, 450) == (300, 225)
    img = np.random.default_rng(0).integers(0, 256, (450, 600, 3), dtype=np.uint8)
    small = to_canonical(img)
    assert small.shape == (225, 300, 3) and small.dtype == np.uint8
    # area averaging of 2x2 blocks, within rounding
    ref = img.reshape(225, 2, 300, 2, 3).mean(axis=(1, 3))
    assert np.abs(small - ref).max() <= 1
    assert to_canonical(small) is small or np.shares_memory(to_canonical(small), small)
    m = np.zeros((450, 600), bool)
    m[100:300, 200:400] = True
    cm = mask_to_canonical(m, (225, 300))
    assert cm.shape == (225, 300) and cm[50:150, 100:200].all() and cm.sum() == 100 * 100


def test_real_images_decode(ham_dir: Path) -> None:
    for p in sorted((ham_dir / "images").glob("*.jpg"))[:5]:
        img = read_image(p)
        assert img.shape == (450, 600, 3)
        # OpenCV's own reader agrees bit for bit
        np.testing.assert_array_equal(img, cv2.imread(str(p))[:, :, ::-1])
