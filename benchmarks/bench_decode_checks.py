"""Cost of the corrupt-data checks of ``hamfeat.imageio`` on real HAM10000 files, one core.

The JPEG check decodes the compressed data a second time, strictly, at 1/8 scale; the PNG
check walks the chunks with a CRC-32. Printed per file, best of ``--repeat`` passes, next to
the guarded decode without the check and with it (``decode_image``, masks: ``read_mask``).

    python benchmarks/bench_decode_checks.py [--data DIR] [--n 200] [--repeat 5]

Prints to stdout; writes no report.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2

from _common import DEFAULT_DATA
from hamfeat import imageio
from hamfeat.errors import MaskError


def per_file(fn, blobs: list[bytes], repeat: int) -> float:
    """Best-of-``repeat`` mean milliseconds of ``fn(blob)`` over ``blobs``."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for blob in blobs:
            fn(blob)
        best = min(best, (time.perf_counter() - t0) / len(blobs) * 1e3)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--n", type=int, default=200, help="files of each kind (evenly spaced)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    images = sorted((args.data / "images").glob("*.jpg"))
    masks = sorted((args.data / "masks").glob("*.png"))
    jpegs = [p.read_bytes() for p in images[:: max(1, len(images) // args.n)]]
    pngs = [p.read_bytes() for p in masks[:: max(1, len(masks) // args.n)]]

    check_jpeg, check_png = imageio._check_jpeg_data, imageio._check_png_chunks
    rows = {
        "JPEG check alone": per_file(lambda b: check_jpeg(b, "x"), jpegs, args.repeat),
        "decode_image, with the check": per_file(imageio.decode_image, jpegs, args.repeat),
    }
    imageio._check_jpeg_data = lambda data, path: None
    try:
        rows["decode_image, check disabled"] = per_file(imageio.decode_image, jpegs, args.repeat)
    finally:
        imageio._check_jpeg_data = check_jpeg

    def read_mask(blob: bytes) -> None:
        tmp.write_bytes(blob)
        imageio.read_mask(tmp)

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d) / "m.png"
        rows["PNG mask check alone"] = per_file(
            lambda b: check_png(b, "x", MaskError), pngs, args.repeat
        )
        rows["read_mask, with the check"] = per_file(read_mask, pngs, args.repeat)
        imageio._check_png_chunks = lambda data, path, kind: None
        try:
            rows["read_mask, check disabled"] = per_file(read_mask, pngs, args.repeat)
        finally:
            imageio._check_png_chunks = check_png
    print(f"{len(jpegs)} JPEGs and {len(pngs)} PNG masks of {args.data}, ms per file:")
    for name, ms in rows.items():
        print(f"  {name:32s} {ms:7.3f}")


if __name__ == "__main__":
    main()
