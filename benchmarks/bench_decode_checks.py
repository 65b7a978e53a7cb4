"""JPEG decode paths of ``hamfeat.imageio`` on real HAM10000 files, one core, one process.

Compares, per 600x450 JPEG already in memory:

* ``cv2.imdecode`` (+ BGR->RGB): OpenCV alone, which decodes corrupt data to garbage silently;
* the old double decode: a strict simplejpeg decode at 1/8 scale (the corrupt-data check,
  ``imageio._check_jpeg_data``) followed by ``cv2.imdecode`` (+ BGR->RGB);
* the new single strict decode: ``simplejpeg.decode_jpeg(strict=True)`` to RGB, full size;
* ``imageio.decode_image`` as it is now (header probe, guards, the strict decode, the EXIF
  orientation look-up), and as it was (the same guards, then the old double decode);
* the header probe alone (PIL reads the header: format, mode, size for the bomb guard).

The paths are timed in turn within each pass, so that a load change on the shared machine hits
them alike; each figure is the best of ``--repeat`` passes. The PNG mask check (a CRC walk of
the chunks) is timed too.

    python benchmarks/bench_decode_checks.py [--data DIR] [--n 200] [--repeat 7]

Prints to stdout; writes no report.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import simplejpeg

from _common import DEFAULT_DATA, REPORTS, machine, write_json
from hamfeat import imageio
from hamfeat.errors import MaskError


def mean_ms(fn, blobs: list[bytes]) -> float:
    """Mean milliseconds of ``fn(blob)`` over ``blobs``, one pass."""
    t0 = time.perf_counter()
    for blob in blobs:
        fn(blob)
    return (time.perf_counter() - t0) / len(blobs) * 1e3


def cv2_decode(blob: bytes) -> np.ndarray:
    bgr = cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def old_double_decode(blob: bytes) -> np.ndarray:
    imageio._check_jpeg_data(blob, "x")
    return cv2_decode(blob)


def old_decode_image(blob: bytes) -> np.ndarray:
    """``decode_image`` before the change, for a JPEG: the same guards, then the double decode."""
    _fmt, _mode, (w, h) = imageio.probe_header(blob, "x", imageio.ImageError)
    assert w * h <= imageio.MAX_PIXELS and min(w, h) >= imageio.MIN_SIDE
    assert imageio._JPEG_EOI in blob[-4096:]
    return old_double_decode(blob)


def strict_decode(blob: bytes) -> np.ndarray:
    return simplejpeg.decode_jpeg(blob, colorspace="RGB", strict=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--n", type=int, default=200, help="files of each kind (evenly spaced)")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    images = sorted((args.data / "images").glob("*.jpg"))
    masks = sorted((args.data / "masks").glob("*.png"))
    jpegs = [p.read_bytes() for p in images[:: max(1, len(images) // args.n)]]
    pngs = [p.read_bytes() for p in masks[:: max(1, len(masks) // args.n)]]
    for blob in jpegs:  # the paths being compared give the same pixels
        assert np.array_equal(imageio.decode_image(blob), cv2_decode(blob))

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d) / "m.png"

        def read_mask(blob: bytes) -> None:
            tmp.write_bytes(blob)
            imageio.read_mask(tmp)

        paths = {
            "cv2.imdecode + BGR->RGB (no check)": (cv2_decode, jpegs),
            "old: 1/8 strict check + cv2.imdecode": (old_double_decode, jpegs),
            "new: simplejpeg strict, full size": (strict_decode, jpegs),
            "decode_image (all guards, new)": (imageio.decode_image, jpegs),
            "decode_image (all guards, old)": (old_decode_image, jpegs),
            "header probe alone": (lambda b: imageio.probe_header(b, "x", MaskError), jpegs),
            "PNG mask check alone": (lambda b: imageio._check_png_chunks(b, "x", MaskError), pngs),
            "read_mask (with the check)": (read_mask, pngs),
        }
        best = dict.fromkeys(paths, float("inf"))
        for _ in range(args.repeat):
            for name, (fn, blobs) in paths.items():
                best[name] = min(best[name], mean_ms(fn, blobs))
    load = os.getloadavg()[0]
    print(
        f"{len(jpegs)} JPEGs and {len(pngs)} PNG masks of {args.data}; ms per file, best of "
        f"{args.repeat} (load average {load:.1f} on {os.cpu_count()} cores):"
    )
    ref = best["cv2.imdecode + BGR->RGB (no check)"]
    rows = []
    for name, ms in best.items():
        jpeg = "PNG" not in name and "mask" not in name
        rel = f"{ms / ref:.2f}×" if jpeg else ""
        print(f"  {name:40s} {ms:7.3f}  {rel}")
        rows.append(f"| {name} | {ms:.3f} | {rel} |")
    info = machine()
    md = [
        "# Decoding with the corrupt-data checks",
        "",
        f"Measured by `python benchmarks/bench_decode_checks.py` on {info['date']}, commit "
        f"{info['commit']}, {info['cpus']} CPUs (load average {load:.1f}), one thread: "
        f"{len(jpegs)} real HAM10000 JPEGs and {len(pngs)} PNG masks, ms per file, best of "
        f"{args.repeat}; the JPEG paths are timed in turn in each pass and give the same pixels.",
        "",
        "| path | ms / file | × cv2 decode |",
        "| --- | ---: | ---: |",
        *rows,
        "",
    ]
    (REPORTS / "decode_checks.md").write_text("\n".join(md))
    write_json(REPORTS / "decode_checks.json", {"machine": info, "load": load, "ms": best})


if __name__ == "__main__":
    main()
