"""Shared fixtures: the real data folder (skipped when absent), small generated data sets and
the headless browser of the page tests."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from _paths import SHARED

HAM = SHARED / "ham10000"


def real_pairs(n: int, *, gray: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
    """The first ``n`` real images with their masks, at canonical size (skip when absent).

    Returns ``(rgb uint8 225x300x3, mask bool 225x300)`` pairs, or ``(gray uint8 225x300,
    mask)`` with ``gray=True``; images are resized with pixel-area averaging, masks by nearest
    neighbour and thresholded at 128, with plain OpenCV (an independent path from hamfeat's).
    """
    if not (HAM / "images").is_dir() or not (HAM / "masks").is_dir():
        pytest.skip(f"real data not found under {HAM} (set HAMFEAT_SHARED_DATA)")
    out = []
    for p in sorted((HAM / "images").glob("ISIC_*.jpg")):
        mp = HAM / "masks" / f"{p.stem}_segmentation.png"
        if not mp.exists():
            continue
        code = cv2.COLOR_BGR2GRAY if gray else cv2.COLOR_BGR2RGB
        img = cv2.cvtColor(cv2.imread(str(p), cv2.IMREAD_COLOR), code)
        m = cv2.imread(str(mp), cv2.IMREAD_GRAYSCALE)
        img = cv2.resize(img, (300, 225), interpolation=cv2.INTER_AREA)
        m = cv2.resize(m, (300, 225), interpolation=cv2.INTER_NEAREST) > 127
        out.append((np.ascontiguousarray(img), np.ascontiguousarray(m)))
        if len(out) == n:
            break
    if not out:
        pytest.skip("no image/mask pairs found")
    return out


@pytest.fixture(scope="session")
def browser() -> str:
    """The Chromium binary of the page tests (:mod:`chromium`): they skip without one, except
    in CI (``CI=true``), where they fail."""
    from chromium import find_chromium

    path = find_chromium()
    if path is None:
        reason = "no chromium found (apt-get install chromium, or set $CHROMIUM)"
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real ``shared/data`` folder; tests using it skip when it is absent."""
    if not (HAM / "HAM10000_metadata.csv").is_file():
        pytest.skip(f"real data not found at {SHARED} (set HAMFEAT_SHARED_DATA)")
    return SHARED


@pytest.fixture(scope="session")
def ham_dir(shared_data: Path) -> Path:
    """The real HAM10000 folder."""
    return shared_data / "ham10000"


def synthetic_lesion(h: int = 45, w: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A skin-coloured RGB image with a dark elliptical lesion, and its mask."""
    rng = np.random.default_rng(seed)
    img = np.empty((h, w, 3), np.uint8)
    img[:] = (205, 160, 140)
    yy, xx = np.mgrid[:h, :w]
    cy, cx = h / 2 + rng.uniform(-2, 2), w / 2 + rng.uniform(-2, 2)
    mask = ((yy - cy) / (h * 0.3)) ** 2 + ((xx - cx) / (w * 0.28)) ** 2 <= 1
    img[mask] = (110, 70, 55)
    noise = rng.integers(-12, 13, size=img.shape)
    img = np.clip(img.astype(int) + noise, 0, 255).astype(np.uint8)
    return img, mask


def write_jpeg(path: Path, rgb: np.ndarray, quality: int = 90) -> Path:
    """Write an RGB array as a JPEG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def write_mask(path: Path, mask: np.ndarray) -> Path:
    """Write a bool mask as an 8-bit PNG, lesion = 255."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", mask.astype(np.uint8) * 255)
    assert ok
    path.write_bytes(buf.tobytes())
    return path


METADATA_HEADER = "lesion_id,image_id,dx,dx_type,age,sex,localization\n"
DX_CYCLE = ("nv", "mel", "bkl", "bcc", "akiec", "vasc", "df")


def make_ham_folder(
    root: Path,
    n: int = 6,
    *,
    image_dirs: tuple[str, ...] = ("HAM10000_images_part_1", "HAM10000_images_part_2"),
    mask_dir: str | None = "HAM10000_segmentations_lesion_tschandl",
    size: tuple[int, int] = (45, 60),
) -> Path:
    """Write a small HAM10000-layout folder: ``n`` images, masks, metadata (2 images/lesion)."""
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        image_id = f"ISIC_{i:07d}"
        img, mask = synthetic_lesion(*size, seed=i)
        folder = root / image_dirs[i % len(image_dirs)] if image_dirs else root
        write_jpeg(folder / f"{image_id}.jpg", img)
        if mask_dir is not None:
            write_mask(root / mask_dir / f"{image_id}_segmentation.png", mask)
        rows.append(f"HAM_{i // 2:07d},{image_id},{DX_CYCLE[i % 7]},histo,{40 + i}.0,male,back\n")
    (root / "HAM10000_metadata.csv").write_text(METADATA_HEADER + "".join(rows))
    return root


@pytest.fixture
def ham_folder(tmp_path: Path) -> Path:
    """A small generated HAM10000 folder in the released layout."""
    return make_ham_folder(tmp_path / "HAM10000")
