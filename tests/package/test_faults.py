"""Fault injection end to end (issue #6): one data set of real images mixed with every fault.

One folder, ``data ü/`` (non-ASCII, with a space), holds 13 real HAM10000 images with their
masks (two of them real inverted-palette masks) and every kind of bad input: broken images,
bad masks, bad metadata rows. ``hamfeat features`` (on the folder) and ``hamfeat score`` (on
its images, with its masks) run on it as subprocesses, and the tests check that

(a) every fault is reported with its file's name: ``<stem>.errors.csv``, one line per error on
    stderr (and no stderr line that is not hamfeat's own), the score table's ``error``;
(b) every good image's features are, bit for bit, those of a clean run on the good images alone;
(c) the exit codes are the documented ones (README: 1 some inputs failed, 3 output unwritable);
(d) the batch completes: every good image is in the output.

Faults that are not files of the folder (a read-only output folder, a full disk) and the check
that a decompression bomb is refused from its header, never decoded, are focused tests below.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from test_score import run, trained  # noqa: F401  (module fixture: a small real KNN model)

from hamfeat.errors import ImageError, MaskError
from hamfeat.features import feature_names

N_PLAIN, N_INVERTED = 11, 2  # real images with ordinary masks, and with inverted-palette masks
HEADER = ["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization"]
FEATURE_START = 9  # label columns, then mask_source, mask_method, then the features


# --------------------------------------------------------------------------------- builders
def _real_ids(ham: Path) -> tuple[list[str], list[str]]:
    """The first real image ids (sorted) with an ordinary mask, and with an inverted palette."""
    plain, inverted = [], []
    for p in sorted((ham / "images").glob("ISIC_*.jpg")):
        m = ham / "masks" / f"{p.stem}_segmentation.png"
        if not m.is_file():
            continue
        with Image.open(m) as im:  # index 0 mapped to white: raw indices are the wrong way round
            inv = im.mode == "P" and im.getpalette()[:3] == [255, 255, 255]
        (inverted if inv else plain).append(p.stem)
        if len(plain) >= N_PLAIN and len(inverted) >= N_INVERTED:
            return plain[:N_PLAIN], inverted[:N_INVERTED]
        if len(plain) + len(inverted) > 2000:
            break
    pytest.skip("not enough real image/mask pairs (with inverted-palette masks) found")


def _png(array: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", array)
    assert ok
    return buf.tobytes()


def _pil(image: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, quality=90)
    return buf.getvalue()


def _garble(jpeg: bytes, n: int = 16) -> bytes:
    """``n`` bytes garbled in the middle of the compressed data, no marker made or broken.

    The header is intact and the file still ends with its end-of-image marker: OpenCV alone
    decodes it to wrong pixels, and libjpeg only prints a warning that names no file.
    """
    data = bytearray(jpeg)
    mid = len(data) // 2
    for k in range(mid, mid + 16 * n, 16):
        if data[k] != 0xFF and data[k - 1] != 0xFF and data[k] ^ 0x5A != 0xFF:
            data[k] ^= 0x5A
    return bytes(data)


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny valid-looking PNG whose header announces ``width`` x ``height`` RGB pixels."""

    def chunk(tag: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(tag + body))
        return struct.pack(">I", len(body)) + tag + body + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _jpeg_claiming(jpeg: bytes, width: int, height: int) -> bytes:
    """A real JPEG whose frame header (SOF) is patched to announce ``width`` x ``height``."""
    data = bytearray(jpeg)
    i = 2
    while i + 4 < len(data):
        assert data[i] == 0xFF, "malformed JPEG fixture"
        code, length = data[i + 1], struct.unpack(">H", data[i + 2 : i + 4])[0]
        if code in (0xC0, 0xC1, 0xC2):
            data[i + 5 : i + 9] = struct.pack(">HH", height, width)
            return bytes(data)
        i += 2 + length
    raise AssertionError("no SOF marker in the JPEG fixture")


@pytest.fixture(scope="module")
def mixed(ham_dir: Path, tmp_path_factory) -> dict:
    """The mixed folder, the clean folder of its good images, and what each fault must give."""
    tmp = tmp_path_factory.mktemp("faults")
    plain, inverted = _real_ids(ham_dir)
    meta = pd.read_csv(ham_dir / "HAM10000_metadata.csv", dtype=str).set_index("image_id")
    root, clean = tmp / "data ü", tmp / "clean"
    for d in (root, clean):
        (d / "images").mkdir(parents=True)
        (d / "masks").mkdir()

    def jpg(i: str) -> bytes:
        return (ham_dir / "images" / f"{i}.jpg").read_bytes()

    def real_mask(i: str) -> bytes:
        return (ham_dir / "masks" / f"{i}_segmentation.png").read_bytes()

    def gray_mask(i: str) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(real_mask(i))).convert("L"))

    def bgr(i: str) -> np.ndarray:
        return cv2.imdecode(np.frombuffer(jpg(i), np.uint8), cv2.IMREAD_COLOR)

    rows: list[list[str]] = []
    clean_ids: list[str] = []

    def add(
        image_id: str,
        data: bytes,
        *,
        suffix: str = ".jpg",
        mask: bytes | None = None,
        clean_mask: bytes | str | None = "same",
        source: str | None = None,
        good: bool = True,
    ) -> None:
        """One image (and mask) in the mixed folder; the good ones in the clean folder too."""
        src = meta.loc[source or image_id] if (source or image_id) in meta.index else None
        row = list(src[["lesion_id"]]) if src is not None else [f"HAM_{image_id}"]
        row += [image_id]
        row += list(src[HEADER[2:]]) if src is not None else ["nv", "histo", "50.0", "male", "back"]
        rows.append(row)
        (root / "images" / f"{image_id}{suffix}").write_bytes(data)
        if mask is not None:
            (root / "masks" / f"{image_id}_segmentation.png").write_bytes(mask)
        if good:
            clean_ids.append(image_id)
            (clean / "images" / f"{image_id}{suffix}").write_bytes(data)
            cm = mask if clean_mask == "same" else clean_mask
            if cm is not None:
                (clean / "masks" / f"{image_id}_segmentation.png").write_bytes(cm)

    # good real images with their real masks (two stored with an inverted palette)
    good_real = plain[:4] + inverted
    for i in plain[:4]:
        add(i, jpg(i), mask=real_mask(i))
    for i in inverted:  # the clean run gets the same mask as an ordinary 8-bit grey PNG
        add(i, jpg(i), mask=real_mask(i), clean_mask=_png(gray_mask(i)))
    name_u = "lésion ü 01"  # non-ASCII and a space in the image's and the mask's names
    add(name_u, jpg(plain[10]), mask=real_mask(plain[10]), source=plain[10])
    # images that are fine though unusual: features equal their source's, bit for bit
    add("png_named_jpg", _png(bgr(plain[1])), mask=real_mask(plain[1]), source=plain[1])
    add(
        "sixteen_bit",
        _png(bgr(plain[2]).astype(np.uint16) * 257),
        suffix=".png",
        mask=real_mask(plain[2]),
        source=plain[2],
    )
    rgb3 = Image.fromarray(bgr(plain[3])[:, :, ::-1])
    add("grayscale", _pil(rgb3.convert("L"), "JPEG"), mask=real_mask(plain[3]), source=plain[3])
    add("cmyk", _pil(Image.fromarray(bgr(plain[0])[:, :, ::-1]).convert("CMYK"), "JPEG"))
    # bad masks: the image is kept and segmented automatically (the mask file named)
    gm = gray_mask(plain[4])
    small = cv2.resize(gm, (300, 225), interpolation=cv2.INTER_NEAREST)
    add(plain[4], jpg(plain[4]), mask=_png(small), clean_mask=None)
    add(plain[5], jpg(plain[5]), mask=_png(np.zeros_like(gm)), clean_mask=None)
    add(plain[6], jpg(plain[6]), mask=_png(np.full_like(gm, 255)), clean_mask=None)
    # a non-binary (antialiased) mask: thresholded at 128, the same as its binarised self
    soft = cv2.GaussianBlur(gray_mask(plain[7]), (0, 0), 4)
    assert len(np.unique(soft)) > 50
    add(
        plain[7],
        jpg(plain[7]),
        mask=_png(soft),
        clean_mask=_png((soft >= 128).astype(np.uint8) * 255),
    )
    # broken images
    add("corrupt", _garble(jpg(plain[8]), 8), mask=real_mask(plain[8]), good=False)
    data9 = jpg(plain[9])
    add("truncated", data9[: len(data9) // 2], good=False)
    add("garbled_png", _garble(_png(bgr(plain[9]))), suffix=".png", good=False)
    add("zero_bytes", b"", good=False)
    add("bomb", _png_header_only(30_000, 30_000), suffix=".png", good=False)
    add("bomb_jpeg", _jpeg_claiming(jpg(plain[0]), 9000, 8000), good=False)
    # metadata faults
    add("unknown_dx", jpg(plain[1]), good=False)
    rows[-1][2] = "xyz"
    rows.append(["HAM_missing", "ISIC_9999999", "nv", "histo", "40.0", "male", "back"])
    rows.append([*rows[0][:2], "mel", *rows[0][3:]])  # the same image_id twice
    line = len(rows) + 1  # of the last row in the CSV file (the header is line 1)
    # a second file for the same image id (.jpg and .png beside it)
    (root / "images" / f"{plain[0]}.png").write_bytes(_png(bgr(plain[5])))

    pd.DataFrame(rows, columns=HEADER).to_csv(root / "HAM10000_metadata.csv", index=False)
    first = {r[1]: r for r in reversed(rows)}  # the first row of a duplicated id wins
    pd.DataFrame([first[i] for i in clean_ids], columns=HEADER).to_csv(
        clean / "HAM10000_metadata.csv", index=False
    )
    img, msk, csv = root / "images", root / "masks", root / "HAM10000_metadata.csv"
    w, h = Image.open(io.BytesIO(jpg(plain[4]))).size
    # (path, severity, what the message must say) for `hamfeat features`
    expected = [
        (img / "corrupt.jpg", "error", "corrupt JPEG data"),
        (img / "truncated.jpg", "error", "truncated JPEG"),
        (img / "garbled_png.png", "error", "corrupt PNG data (CRC error in its IDAT chunk)"),
        (img / "zero_bytes.jpg", "error", "empty image file (0 bytes)"),
        (img / "bomb.png", "error", "image too large"),
        (img / "bomb_jpeg.jpg", "error", "image too large (9000x8000"),
        (f"{csv}:{line - 2}", "error", "unknown dx 'xyz' for unknown_dx"),
        (f"{csv}:{line - 1}", "error", f"no image file for ISIC_9999999 under {root}"),
        (f"{csv}:{line}", "error", f"duplicate image_id {plain[0]}; first row kept"),
        (img / f"{plain[0]}.png", "error", f"duplicate image for {plain[0]}"),
        (
            msk / f"{plain[4]}_segmentation.png",
            "warning",
            f"mask is 300x225 but its image is {w}x{h}",
        ),
        # (a mask found unusable when read is reported at its image, and names the mask)
        (img / f"{plain[5]}.jpg", "warning", f"{msk / plain[5]}_segmentation.png: mask is empty"),
        (img / f"{plain[6]}.jpg", "warning", f"{msk / plain[6]}_segmentation.png: mask covers"),
    ]
    # `hamfeat score` on the images folder: no metadata, every image file is scored
    score_errors = {e[0].name: e[2] for e in expected[:6]}
    score_errors["zero_bytes.jpg"] = "empty file (0 bytes)"
    score_warnings = [
        f"{img / plain[4]}.jpg: {msk / plain[4]}_segmentation.png: mask is 300x225 but",
        *(f"{e[0]}: {e[2]}" for e in expected[11:]),
    ]
    return {
        "root": root,
        "clean": clean,
        "tmp": tmp,
        "good": sorted(clean_ids),
        "files": {i: next((clean / "images").glob(f"{i}.*")).name for i in clean_ids},
        "auto": sorted([plain[4], plain[5], plain[6], "cmyk"]),
        "same_as": {"png_named_jpg": plain[1], "sixteen_bit": plain[2]},
        "good_real": good_real,
        "expected": expected,
        "score_errors": score_errors,
        "score_warnings": score_warnings,
        "n_files": len(list(img.iterdir())),
    }


@pytest.fixture(scope="module")
def runs(mixed: dict, trained: dict) -> dict:  # noqa: F811 (the imported fixture)
    """`hamfeat features` on the mixed and on the clean folder, `hamfeat -v score` on the
    mixed images folder: real subprocesses, two workers."""
    out = mixed["tmp"] / "out ü"
    out.mkdir(exist_ok=True)  # hamfeat creates no output folder (issue #18)
    env = {**os.environ, "HAMFEAT_CACHE_DIR": str(mixed["tmp"] / "cache")}
    f_mixed, f_clean, scores = out / "features mixed.parquet", out / "clean.parquet", out / "s.csv"
    p_mixed = run(
        "features", "--data", str(mixed["root"]), "-o", str(f_mixed), "--jobs", "2", env=env
    )
    p_clean = run(
        "features", "--data", str(mixed["clean"]), "-o", str(f_clean), "--jobs", "2", "--no-cache"
    )
    p_score = run(
        "-v",
        "score",
        str(mixed["root"] / "images"),
        "--model",
        str(trained["model"]),
        "--masks",
        str(mixed["root"] / "masks"),
        "-o",
        str(scores),
        "--jobs",
        "2",
        env=env,
    )
    return {
        "env": env,
        "features": p_mixed,
        "clean": p_clean,
        "score": p_score,
        "f_mixed": f_mixed,
        "f_clean": f_clean,
        "scores": scores,
        "model": trained["model"],
    }


def _by_name(paths: pd.Series) -> pd.Index:
    return pd.Index([Path(p).name for p in paths])


def _unnamed_lines(stderr: str, command: str) -> list[str]:
    """stderr lines that are not hamfeat's own one-line messages (e.g. libjpeg chatter)."""
    return [ln for ln in stderr.splitlines() if not ln.startswith(f"hamfeat {command}: ")]


# ------------------------------------------------------------------------- hamfeat features
def test_features_exit_code_and_batch_completes(mixed: dict, runs: dict) -> None:
    p = runs["features"]
    assert p.returncode == 1, p.stderr  # documented: finished, but some inputs failed
    assert "Traceback" not in p.stderr
    n_err = sum(sev == "error" for _, sev, _ in mixed["expected"])
    n_warn = len(mixed["expected"]) - n_err
    assert (
        f"{len(mixed['good'])} images -> {runs['f_mixed']} ({len(mixed['good'])} computed, "
        f"0 from cache, {len(feature_names()) + 9} columns); "
        f"{n_err} error(s), {n_warn} warning(s); -v lists warnings"
    ) in p.stderr
    table = pd.read_parquet(runs["f_mixed"])
    assert sorted(table["image_id"]) == mixed["good"]  # every good image, nothing else
    assert not list(runs["f_mixed"].parent.glob(".*.tmp"))
    assert runs["clean"].returncode == 0, runs["clean"].stderr  # documented: all processed


def test_features_every_fault_named(mixed: dict, runs: dict) -> None:
    """Every fault is a row of ``<stem>.errors.csv`` naming its file (or CSV line), and every
    error is one line of stderr; nothing else is there (no unnamed decoder chatter)."""
    errors = pd.read_csv(runs["f_mixed"].with_name("features mixed.errors.csv"))
    assert list(errors.columns) == ["path", "severity", "message"]
    assert len(errors) == len(mixed["expected"])  # no fault missing, none unexpected
    stderr = runs["features"].stderr
    for path, severity, what in mixed["expected"]:
        rows = errors[errors["path"] == str(path)]
        assert len(rows) == 1, f"{path} not reported once in the errors file:\n{errors}"
        assert rows["severity"].iat[0] == severity and what in rows["message"].iat[0], path
        if severity == "error":
            line = f"hamfeat features: error: {path}: {rows['message'].iat[0]}"
            assert line in stderr.splitlines(), line
    assert _unnamed_lines(stderr, "features") == []


def test_features_good_images_bit_identical_to_clean_run(mixed: dict, runs: dict) -> None:
    """The faults change nothing for the good images: same rows, same bits as a clean run on
    the good images alone (computed without the cache, by other worker processes)."""
    a = pd.read_parquet(runs["f_mixed"]).set_index("image_id").loc[mixed["good"]]
    b = pd.read_parquet(runs["f_clean"]).set_index("image_id").loc[mixed["good"]]
    pd.testing.assert_frame_equal(a, b)
    feats = a.columns[FEATURE_START - 1 :]
    assert a[feats].to_numpy().tobytes() == b[feats].to_numpy().tobytes()
    # (a grey image has no hue or saturation spread: those moments are NaN, by design)
    assert np.isfinite(a.drop(index="grayscale")[feats].to_numpy()).all()


def test_features_unusual_files_and_masks(mixed: dict, runs: dict) -> None:
    """A PNG named .jpg and a 16-bit PNG give their source JPEG's features, bit for bit;
    rejected masks fall back to automatic segmentation, inverted-palette and antialiased masks
    are used as given."""
    t = pd.read_parquet(runs["f_mixed"]).set_index("image_id")
    feats = t.columns[FEATURE_START - 1 :]
    for name, source in mixed["same_as"].items():
        assert t.loc[name, feats].to_numpy().tobytes() == t.loc[source, feats].to_numpy().tobytes()
    auto = sorted(t.index[t["mask_source"] == "auto"])
    assert auto == mixed["auto"]
    assert (t.loc[mixed["good_real"], "mask_source"] == "given").all()


# ---------------------------------------------------------------------------- hamfeat score
def test_score_every_fault_named_and_batch_completes(mixed: dict, runs: dict) -> None:
    p = runs["score"]
    assert p.returncode == 1, p.stderr  # documented: finished, but some inputs failed
    n_bad = len(mixed["score_errors"])
    out = runs["scores"]
    assert f"{mixed['n_files'] - n_bad} of {mixed['n_files']} images scored -> {out}" in p.stderr
    table = pd.read_csv(out)
    table.index = _by_name(table["path"])
    assert len(table) == mixed["n_files"]  # one row per image file, good or bad
    for name, what in mixed["score_errors"].items():
        assert what in table.at[name, "error"], name
        assert pd.isna(table.at[name, "prediction"])
        line = f"hamfeat score: error: {table.at[name, 'path']}: {table.at[name, 'error']}"
        assert line in p.stderr.splitlines(), line
    ok = table[table["error"].isna()]
    assert len(ok) == mixed["n_files"] - n_bad and ok["prediction"].notna().all()
    for what in mixed["score_warnings"]:  # -v: warnings name the image and the mask file
        assert f"hamfeat score: warning: {what}" in p.stderr, what
    assert _unnamed_lines(p.stderr, "score") == []


def test_score_good_images_unaffected(mixed: dict, runs: dict) -> None:
    """Each good image's probabilities are the model's on its clean-run features (to the 6
    significant digits of the CSV): the faults beside it change nothing."""
    from hamfeat.cli import SCORE_FLOAT_FORMAT
    from hamfeat.models import load_model

    model = load_model(runs["model"])
    clean = pd.read_parquet(runs["f_clean"]).set_index("image_id").loc[mixed["good"]]
    expected = model.predict_proba(clean)
    table = pd.read_csv(runs["scores"], dtype=str, keep_default_na=False)
    table.index = _by_name(table["path"])
    got = table.loc[[mixed["files"][i] for i in mixed["good"]]]
    for c in model.classes:
        want = [SCORE_FLOAT_FORMAT % v for v in expected[c]]
        assert got[f"p_{c}"].tolist() == want, c
    assert got["mask_source"].tolist() == clean["mask_source"].tolist()


# ------------------------------------------------------------------------- focused tests
@pytest.fixture
def refuse_output(monkeypatch):
    """Make writing one output file fail the way the OS does, even for root (the CI user).

    ``"read-only"``: creating a file in the output folder is refused (EACCES), as in a
    read-only folder. ``"full"``: the file is created, but its bytes go to ``/dev/full``, so
    the kernel itself answers ENOSPC, as on a full disk.
    """
    from hamfeat import _io

    real_mkstemp = _io.tempfile.mkstemp

    def arm(out: Path, kind: str) -> None:
        def mkstemp(*args, **kwargs):
            fd, tmp = real_mkstemp(*args, **kwargs)
            if Path(tmp).parent != out.parent or not Path(tmp).name.startswith(f".{out.name}."):
                return fd, tmp
            if kind == "read-only":
                os.close(fd)
                os.unlink(tmp)
                raise PermissionError(13, "Permission denied", str(out.parent))
            os.close(fd)
            return os.open("/dev/full", os.O_WRONLY), tmp

        if kind == "full" and not os.path.exists("/dev/full"):
            pytest.skip("no /dev/full on this system")
        monkeypatch.setattr(_io.tempfile, "mkstemp", mkstemp)

    return arm


@pytest.mark.parametrize(
    ("kind", "reason"), [("read-only", "Permission denied"), ("full", "No space left on device")]
)
@pytest.mark.parametrize("command", ["features", "score"])
def test_unwritable_output(
    mixed: dict,
    runs: dict,
    tmp_path: Path,
    monkeypatch,
    capsys,
    refuse_output,
    command: str,
    kind: str,
    reason: str,
) -> None:
    """A read-only output folder or a full disk, for `features -o` and `score -o`: exit 3, one
    line naming the file, the old file left whole, no temporary file left behind."""
    from hamfeat.cli import main

    monkeypatch.setenv("HAMFEAT_CACHE_DIR", runs["env"]["HAMFEAT_CACHE_DIR"])  # mixed run's
    out = tmp_path / "out ü" / ("f.parquet" if command == "features" else "s.csv")
    out.parent.mkdir()
    out.write_bytes(b"old")
    if command == "features":
        argv = ["features", "--data", str(mixed["root"]), "-o", str(out), "--jobs", "1"]
    else:  # a good image and a broken one, with the test model
        d = tmp_path / "in"
        d.mkdir()
        for name in (mixed["files"][mixed["good_real"][0]], "corrupt.jpg"):
            (d / name).write_bytes((mixed["root"] / "images" / name).read_bytes())
        argv = ["score", str(d), "--model", str(runs["model"]), "-o", str(out), "--jobs", "1"]
    refuse_output(out, kind)
    assert main(argv) == 3  # documented: an output file that cannot be written
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"hamfeat {command}: error: {out}: cannot write ({reason})"
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]


def test_bombs_refused_from_the_header_without_decoding(mixed: dict, monkeypatch) -> None:
    """The two bombs of the folder (a 300-byte PNG announcing 900M pixels, a real JPEG whose
    header announces 72M) are refused without any pixel decoded."""
    from hamfeat import imageio
    from hamfeat.datasets.ham10000 import load_dataset

    def no_decode(*args, **kwargs):
        raise AssertionError("a decompression bomb was decoded")

    monkeypatch.setattr(imageio.cv2, "imdecode", no_decode)
    monkeypatch.setattr(imageio.simplejpeg, "decode_jpeg", no_decode)
    for name, what in (("bomb.png", "over 64000000 pixels"), ("bomb_jpeg.jpg", "9000x8000")):
        path = mixed["root"] / "images" / name
        assert path.stat().st_size < 100_000
        with pytest.raises(ImageError, match=f"image too large .*{what}.*refused"):
            imageio.read_image(path)
    problems = load_dataset(mixed["root"]).problems  # the data set's header check
    for name in ("bomb.png", "bomb_jpeg.jpg"):
        assert any(p.path.endswith(name) and "too large" in p.message for p in problems)


def test_corrupt_jpeg_data_refused_not_decoded_to_garbage(mixed: dict, capfd) -> None:
    """Bytes garbled in the middle of a JPEG (header and end marker intact): OpenCV alone
    returns wrong pixels, and libjpeg prints a warning naming no file. hamfeat refuses the file
    with one line naming it, and prints nothing itself (regression test for issue #6)."""
    from hamfeat.imageio import read_image

    path = mixed["root"] / "images" / "corrupt.jpg"
    data = path.read_bytes()
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None and decoded.shape == (450, 600, 3)  # the silent failure
    chatter = capfd.readouterr().err
    assert "Corrupt JPEG data" in chatter and "corrupt.jpg" not in chatter
    with pytest.raises(ImageError, match=r"corrupt\.jpg: corrupt JPEG data \(.+\); refused$"):
        read_image(path)
    assert capfd.readouterr().err == ""
    # every good JPEG of the folder passes the check (the real ones, grey, CMYK, 16-bit PNG)
    for name in mixed["files"].values():
        assert read_image(mixed["root"] / "images" / name).shape == (450, 600, 3), name


def test_corrupt_or_truncated_png_named_and_quiet(mixed: dict, tmp_path: Path, capfd) -> None:
    """libpng refuses a garbled or truncated PNG but says why on stderr, naming no file; hamfeat
    names the file (image or mask) and libpng prints nothing."""
    from hamfeat.imageio import read_image, read_mask

    garbled = mixed["root"] / "images" / "garbled_png.png"
    assert cv2.imdecode(np.frombuffer(garbled.read_bytes(), np.uint8), cv2.IMREAD_COLOR) is None
    assert "libpng error" in capfd.readouterr().err
    with pytest.raises(ImageError, match=r"garbled_png\.png: corrupt PNG data \(CRC error"):
        read_image(garbled)
    good = mixed["root"] / "images" / "png_named_jpg.jpg"
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(ImageError, match=r"cut\.png: truncated PNG \(inside its IDAT chunk\)"):
        read_image(cut)
    mask = tmp_path / "m_segmentation.png"
    mask.write_bytes(_garble(_png(np.full((450, 600), 255, np.uint8))))
    with pytest.raises(MaskError, match=r"m_segmentation\.png: corrupt PNG data"):
        read_mask(mask, (450, 600))
    assert capfd.readouterr().err == ""


@pytest.mark.slow
def test_no_real_mask_refused_by_the_corrupt_data_check(shared_data: Path) -> None:
    """The PNG check refuses none of the 10015 real masks. (That the strict JPEG decode refuses
    none of the 10050 real JPEGs, and gives OpenCV's pixels for each, is
    ``test_imageio.test_every_real_jpeg_decodes_to_opencv_pixels``.)"""
    from hamfeat.imageio import _check_png_chunks

    masks = sorted((shared_data / "ham10000" / "masks").glob("*.png"))
    refused = []
    for path in masks:
        try:
            _check_png_chunks(path.read_bytes(), path, MaskError)
        except MaskError as exc:
            refused.append(str(exc))
    assert (len(masks), refused) == (10015, [])
