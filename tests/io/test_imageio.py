"""Decoding guards and mask reading (``hamfeat.imageio``)."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import simplejpeg
from PIL import Image

from conftest import synthetic_lesion, write_jpeg, write_mask
from hamfeat.errors import ImageError, MaskError
from hamfeat.imageio import (
    MAX_PIXELS,
    canonical_shape,
    decode_image,
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

    def refuse(path, flags, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(imageio.os, "open", refuse)  # the reader opens with os.open
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


# --- JPEG: one strict decode (simplejpeg / TurboJPEG), pixels as OpenCV's --------------------


def _cv2_rgb(data: bytes) -> np.ndarray:
    """What hamfeat decoded JPEGs with before: ``cv2.imdecode(IMREAD_COLOR)``, in RGB order."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert bgr is not None
    return bgr[:, :, ::-1]


def _pil_jpeg(rgb: np.ndarray, mode: str = "RGB", **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).convert(mode).save(buf, "JPEG", **kw)
    return buf.getvalue()


def _segment(code: int, payload: bytes) -> bytes:
    return bytes([0xFF, code]) + (len(payload) + 2).to_bytes(2, "big") + payload


def _exif(orientation: int, endian: str = "<", type_: int = 3, before: bytes = b"") -> bytes:
    """An Exif APP1 payload whose IFD0 holds the orientation (after the entry ``before``)."""
    e = endian
    val = struct.pack(e + "HH", orientation, 0) if type_ == 3 else struct.pack(e + "I", orientation)
    entries = ([before] if before else []) + [struct.pack(e + "HHI", 0x0112, type_, 1) + val]
    ifd = struct.pack(e + "H", len(entries)) + b"".join(entries) + struct.pack(e + "I", 0)
    return b"Exif\0\0" + (b"II" if e == "<" else b"MM") + struct.pack(e + "HI", 42, 8) + ifd


@pytest.fixture
def count_decoders(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the calls of the two full decoders hamfeat may use for a JPEG."""
    import hamfeat.imageio as imageio

    calls = {"simplejpeg": 0, "cv2": 0}
    sj, cv = imageio.simplejpeg.decode_jpeg, imageio.cv2.imdecode

    def sj_counted(*args, **kwargs):
        if kwargs.get("min_factor", 1) == 1:  # not the 1/8-scale check of the fallback
            calls["simplejpeg"] += 1
        return sj(*args, **kwargs)

    def cv_counted(*args, **kwargs):
        calls["cv2"] += 1
        return cv(*args, **kwargs)

    monkeypatch.setattr(imageio.simplejpeg, "decode_jpeg", sj_counted)
    monkeypatch.setattr(imageio.cv2, "imdecode", cv_counted)
    return calls


@pytest.mark.parametrize(
    ("mode", "options"),
    [
        ("RGB", {"quality": 75}),
        ("RGB", {"quality": 95, "subsampling": 0}),  # 4:4:4
        ("RGB", {"quality": 90, "subsampling": 1}),  # 4:2:2
        ("RGB", {"quality": 50, "subsampling": 2, "progressive": True, "optimize": True}),
        ("L", {"quality": 90}),
        ("L", {"quality": 80, "progressive": True}),
    ],
)
@pytest.mark.parametrize("shape", [(60, 80), (45, 61), (37, 53)])  # odd sides: edge upsampling
def test_jpeg_decoded_once_strictly_with_opencv_pixels(
    count_decoders: dict[str, int], mode: str, options: dict, shape: tuple[int, int]
) -> None:
    """A sound 1- or 3-component JPEG costs one strict decode (no OpenCV decode, no check
    decode), and gives OpenCV's ``IMREAD_COLOR`` pixels in RGB order, bit for bit."""
    data = _pil_jpeg(synthetic_lesion(*shape, seed=shape[1])[0], mode, **options)
    ref = _cv2_rgb(data)
    count_decoders.update(simplejpeg=0, cv2=0)
    out = decode_image(data)
    assert count_decoders == {"simplejpeg": 1, "cv2": 0}
    assert out.dtype == np.uint8 and out.flags.c_contiguous and out.shape == (*shape, 3)
    np.testing.assert_array_equal(out, ref)


def test_mpo_first_frame_as_opencv(count_decoders: dict[str, int]) -> None:
    """A multi-picture JPEG (PIL says MPO): its first frame, as OpenCV decodes it."""
    first, second = (Image.fromarray(synthetic_lesion(60, 80, seed=s)[0]) for s in (0, 3))
    buf = io.BytesIO()
    first.save(buf, "MPO", save_all=True, append_images=[second])
    ref = _cv2_rgb(buf.getvalue())
    count_decoders.update(simplejpeg=0, cv2=0)
    np.testing.assert_array_equal(decode_image(buf.getvalue()), ref)
    assert count_decoders == {"simplejpeg": 1, "cv2": 0}


def test_jpeg_decode_is_deterministic_across_processes(tmp_path: Path) -> None:
    """The same bytes give the same pixels, in this process and in a fresh one."""
    path = write_jpeg(tmp_path / "a.jpg", synthetic_lesion(90, 120)[0], quality=80)
    digests = {hashlib.sha256(read_image(path).tobytes()).hexdigest() for _ in range(3)}
    code = (
        "import hashlib, sys; from hamfeat.imageio import read_image; "
        "print(hashlib.sha256(read_image(sys.argv[1]).tobytes()).hexdigest())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    digests.add(out.stdout.strip())
    assert len(digests) == 1


_MAKE_OUT_OF_RANGE = struct.pack("<HHII", 0x010F, 2, 100, 5000)  # a Make string past the end
_EXIF_CASES = {
    **{f"orientation {o}": [_exif(o)] for o in range(10)},  # 0 and 9: invalid, ignored
    **{f"big-endian {o}": [_exif(o, ">")] for o in (3, 6, 7)},
    "orientation as LONG": [_exif(6, type_=4)],
    "XMP segment first": [_segment(0xE1, b"http://ns.adobe.com/xap/1.0/\0<x/>"), _exif(8)],
    "APP1 without Exif header": [b"Abcd\0\0" + _exif(6)[6:]],
    "broken entry before orientation": [_exif(6, before=_MAKE_OUT_OF_RANGE)],
    "cut TIFF header": [b"Exif\0\0II*\0"],
}


@pytest.mark.parametrize("case", list(_EXIF_CASES))
def test_exif_orientation_applied_as_opencv_applies_it(
    case: str, count_decoders: dict[str, int], capfd
) -> None:
    """OpenCV's ``IMREAD_COLOR`` rotates/flips by the EXIF orientation (and has its own views on
    malformed EXIF): the strict decode gives exactly its result for every case, with one full
    decode."""
    rgb = np.random.default_rng(1).integers(0, 256, (40, 64, 3), dtype=np.uint8)
    plain = _pil_jpeg(rgb, quality=90)
    segments = [s if s.startswith(b"\xff") else _segment(0xE1, s) for s in _EXIF_CASES[case]]
    data = plain[:2] + b"".join(segments) + plain[2:]
    ref = _cv2_rgb(data)
    count_decoders.update(simplejpeg=0, cv2=0)
    out = decode_image(data)
    assert count_decoders["simplejpeg"] == 1
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, ref)
    if case in ("orientation 6", "orientation 8", "XMP segment first"):
        assert out.shape == (64, 40, 3)  # the fixture does exercise a rotation
    assert capfd.readouterr().err == ""


def test_exif_orientation_written_by_pil(tmp_path: Path) -> None:
    rgb = np.random.default_rng(2).integers(0, 256, (40, 64, 3), dtype=np.uint8)
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        data = _pil_jpeg(rgb, quality=90, exif=exif.tobytes())
        np.testing.assert_array_equal(decode_image(data), _cv2_rgb(data))


def _garble_scan(data: bytes, n: int = 40) -> bytes:
    """About ``n`` bytes garbled inside the entropy-coded data, no marker made or broken."""
    out = bytearray(data)
    start = data.index(b"\xff\xda") + 20
    for k in range(start, len(data) - 8, max(1, (len(data) - 8 - start) // n)):
        if out[k] != 0xFF and out[k - 1] != 0xFF and out[k] ^ 0x5A != 0xFF:
            out[k] ^= 0x5A
    return bytes(out)


@pytest.mark.parametrize(
    ("mode", "shape"), [("RGB", (240, 320)), ("L", (240, 320)), ("CMYK", (120, 160))]
)
def test_corrupt_jpeg_data_refused_quietly(
    tmp_path: Path, capfd, mode: str, shape: tuple[int, int]
) -> None:
    """Garbled entropy-coded data: OpenCV returns pixels (libjpeg only warns on stderr); hamfeat
    refuses the file with one line naming it, and nothing reaches stderr. (CMYK JPEGs, left to
    OpenCV, are checked strictly first.)"""
    good = _pil_jpeg(synthetic_lesion(*shape)[0], mode, quality=90)
    path = tmp_path / "garbled é.jpg"
    path.write_bytes(_garble_scan(good))
    assert cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_COLOR) is not None
    assert "Corrupt JPEG data" in capfd.readouterr().err  # the fixture is what it should be
    with pytest.raises(ImageError) as err:
        read_image(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: corrupt JPEG data (") and msg.endswith("); refused")
    assert "\n" not in msg
    # the end of the data missing, though the file ends with an end-of-image marker
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(good[: len(good) // 2] + b"\xff\xd9")
    with pytest.raises(ImageError, match=r"cut\.jpg: corrupt JPEG data \(.+\); refused$"):
        read_image(cut)
    assert capfd.readouterr().err == ""


def test_cmyk_jpeg_left_to_opencv(count_decoders: dict[str, int]) -> None:
    """simplejpeg converts CMYK to RGB its own way: CMYK/YCCK JPEGs keep OpenCV's conversion."""
    data = _pil_jpeg(synthetic_lesion(60, 80)[0], "CMYK", quality=90)
    ref = _cv2_rgb(data)
    count_decoders.update(simplejpeg=0, cv2=0)
    np.testing.assert_array_equal(decode_image(data), ref)
    assert count_decoders == {"simplejpeg": 0, "cv2": 1}


def test_jpeg_metadata_warnings_are_not_damage(count_decoders: dict[str, int]) -> None:
    """libjpeg warnings about metadata only (an unknown JFIF revision, an unknown Adobe
    transform code) are no damage. simplejpeg stops at them even when not strict, so these
    files are left to OpenCV, as before: read, with OpenCV's pixels."""
    rgb = synthetic_lesion(60, 80)[0]
    plain = _pil_jpeg(rgb, quality=90)
    assert plain[6:11] == b"JFIF\0"
    jfif = bytearray(plain)
    jfif[11] = 2  # JFIF version 2.01: libjpeg warns "unknown JFIF revision number"
    no_app0 = plain[:2] + plain[4 + int.from_bytes(plain[4:6], "big") :]
    adobe = no_app0[:2] + _segment(0xEE, b"Adobe\0\x64\0\0\0\0\x07") + no_app0[2:]
    for data, warning in ((bytes(jfif), "JFIF revision"), (adobe, "Adobe color transform")):
        with pytest.raises(ValueError, match=warning):
            simplejpeg.decode_jpeg(data, "RGB", strict=False)
        ref = _cv2_rgb(data)
        count_decoders.update(simplejpeg=0, cv2=0)
        np.testing.assert_array_equal(decode_image(data), ref)
        assert count_decoders == {"simplejpeg": 1, "cv2": 1}


@pytest.mark.parametrize(
    "reason",
    [
        "Unsupported JPEG data precision 12",
        "Sorry, arithmetic coding is not supported",
        "Unsupported JPEG process: SOF type 0xc3",
        "Could not determine subsampling level of JPEG image",
    ],
)
def test_what_the_strict_decoder_cannot_do_is_left_to_opencv(
    monkeypatch: pytest.MonkeyPatch, reason: str
) -> None:
    """A refusal of the strict decoder that is no damage (a precision, process, colour space or
    sampling it does not decode) sends the file to OpenCV instead of refusing it."""
    import hamfeat.imageio as imageio

    data = _pil_jpeg(synthetic_lesion(60, 80)[0], quality=90)

    complaint = reason

    def refuse(*args, **kwargs):
        raise ValueError(complaint)

    monkeypatch.setattr(imageio.simplejpeg, "decode_jpeg", refuse)
    np.testing.assert_array_equal(decode_image(data), _cv2_rgb(data))
    complaint = "Corrupt JPEG data: bad Huffman code"  # the same path, but damage: refused
    with pytest.raises(ImageError, match=r"^x\.jpg: corrupt JPEG data \(bad Huffman code\)"):
        decode_image(data, "x.jpg")


@pytest.mark.slow
def test_every_real_jpeg_decodes_to_opencv_pixels(shared_data: Path, monkeypatch) -> None:
    """All 10015 HAM10000 JPEGs and the 35 quality-100 originals: hamfeat's one strict decode
    gives ``cv2.imdecode(IMREAD_COLOR)``'s pixels (RGB order) bit for bit, no file is refused,
    and none falls back to OpenCV. Run with ``-s`` to see the count."""
    import hamfeat.imageio as imageio

    paths = sorted((shared_data / "ham10000" / "images").glob("*.jpg"))
    paths += sorted((shared_data / "ham10000-originals").glob("*.jpg"))
    cv_imdecode = cv2.imdecode
    fallbacks = []
    monkeypatch.setattr(imageio.cv2, "imdecode", lambda *a: fallbacks.append(a) or cv_imdecode(*a))
    differ, max_diff, px_differ, px_total = [], 0, 0, 0
    for path in paths:
        data = path.read_bytes()
        ours = decode_image(data, path)
        ref = cv_imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
        px_total += ref.shape[0] * ref.shape[1]
        if ours.shape != ref.shape or not np.array_equal(ours, ref):
            differ.append(path.name)
            if ours.shape == ref.shape:
                diff = np.abs(ours.astype(int) - ref).max(axis=2)
                max_diff, px_differ = (
                    max(max_diff, int(diff.max())),
                    px_differ + int((diff > 0).sum()),
                )
    print(
        f"\n{len(paths)} real JPEGs: {len(differ)} differ from cv2.imdecode "
        f"(max abs difference {max_diff}, {px_differ / px_total:.2e} of the pixels)"
    )
    assert len(paths) == 10050 and fallbacks == []
    assert differ == [], f"{len(differ)} differ, max {max_diff}: {differ[:10]}"
