"""Print ms per call of each hamfeat._kernels function and the ratio vs its reference.

Usage: python benchmarks/bench_kernels.py [N_IMAGES]  (real HAM10000 images from
$HAMFEAT_SHARED_DATA or ../shared/data; both 300x225 and 600x450).  Not a test.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import scipy.stats
from skimage.color import rgb2hsv, rgb2lab
from skimage.feature import graycomatrix, graycoprops, local_binary_pattern
from threadpoolctl import threadpool_limits

from _common import steady_allocator
from hamfeat._kernels.color import hsv_views, lab_views, rgb_to_gray, rgb_to_hsv, rgb_to_lab
from hamfeat._kernels.glcm import glcm, haralick, quantize
from hamfeat._kernels.lbp import lbp_uniform, masked_code_histogram, masked_lbp_histogram
from hamfeat._kernels.shape import principal_axis_asymmetry
from hamfeat._kernels.stats import (
    masked_histogram,
    masked_histogram_u8,
    masked_moments,
    masked_quantiles_u8,
)

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HAM = Path(os.environ.get("HAMFEAT_SHARED_DATA", DEFAULT)) / "ham10000"
ANG = np.array([0, np.pi / 4, np.pi / 2, 3 * np.pi / 4])
QS = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
# every property skimage 0.26's graycoprops offers (haralick computes these 10 and 9 more)
SK_PROPS = [
    "contrast", "dissimilarity", "homogeneity", "ASM", "energy", "correlation",
    "mean", "variance", "std", "entropy",
]  # fmt: skip


def best_ms(f, reps: int = 5, inner: int = 10) -> float:
    f()
    best = np.inf
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(inner):
            f()
        best = min(best, (time.perf_counter() - t) / inner)
    return best * 1e3


def load(n: int, size: tuple[int, int] | None):
    out = []
    for p in sorted((HAM / "images").glob("ISIC_*.jpg"))[:n]:
        rgb = cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
        m = cv2.imread(str(HAM / "masks" / f"{p.stem}_segmentation.png"), 0) > 127
        if size is not None:
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            m = cv2.resize(m.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
        out.append((np.ascontiguousarray(rgb), np.ascontiguousarray(m)))
    return out


def cases(rgb: np.ndarray, m: np.ndarray):
    g = rgb_to_gray(rgb)
    f = rgb.astype(np.float32) / 255
    q = quantize(g, 32)
    lab = rgb_to_lab(rgb)
    full = np.ones_like(m)
    counts = glcm(q, full, [1, 2], ANG, 32, True)
    sk_counts = graycomatrix(q, [1, 2], ANG, levels=32, symmetric=True)
    codes = lbp_uniform(g, 8, 1)
    m8 = m.astype(np.uint8)
    return [
        ("rgb_to_gray", lambda: rgb_to_gray(rgb), "cv2",
         lambda: cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)),
        ("rgb_to_hsv", lambda: rgb_to_hsv(rgb), "skimage", lambda: rgb2hsv(rgb)),
        ("rgb_to_hsv", lambda: rgb_to_hsv(rgb), "cv2(float)",
         lambda: cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2HSV)),
        ("rgb_to_lab", lambda: rgb_to_lab(rgb), "skimage", lambda: rgb2lab(rgb)),
        ("rgb_to_lab", lambda: rgb_to_lab(rgb), "cv2(float)",
         lambda: cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)),
        ("masked_moments(3ch)", lambda: masked_moments(f, m), "numpy+scipy",
         lambda: (lambda x: (x.mean(0), x.std(0), scipy.stats.skew(x, 0),
                             scipy.stats.kurtosis(x, 0)))(f[m].astype(np.float64))),
        ("masked_histogram(f32)", lambda: masked_histogram(f[..., 0].copy(), m, 32, 0, 1),
         "np.histogram", lambda: np.histogram(f[..., 0][m], 32, (0, 1))),
        ("masked_histogram(Lab L, in place)",
         lambda: masked_histogram(lab, m, 10, 0, 100, channel=0),
         "np.histogram", lambda: np.histogram(lab[..., 0][m], 10, (0, 100))),
        ("masked_histogram_u8", lambda: masked_histogram_u8(g, m, 32), "cv2.calcHist",
         lambda: cv2.calcHist([g], [0], m8, [32], [0, 256])),
        ("masked_quantiles_u8", lambda: masked_quantiles_u8(g, m, QS), "np.quantile",
         lambda: np.quantile(g[m], QS)),
        ("glcm(L=32,2d,4a,full)", lambda: glcm(q, full, [1, 2], ANG, 32, True), "skimage",
         lambda: graycomatrix(q, [1, 2], ANG, levels=32, symmetric=True)),
        ("haralick(19 props)", lambda: haralick(counts), "graycoprops(10)",
         lambda: [graycoprops(sk_counts, p) for p in SK_PROPS]),
        ("lbp_uniform(8,1)", lambda: lbp_uniform(g, 8, 1), "skimage",
         lambda: local_binary_pattern(g, 8, 1, "uniform")),
        ("lbp_uniform(16,2)", lambda: lbp_uniform(g, 16, 2), "skimage",
         lambda: local_binary_pattern(g, 16, 2, "uniform")),
        ("masked_code_histogram", lambda: masked_code_histogram(codes, m, 10), "np.bincount",
         lambda: np.bincount(codes[m], minlength=10)),
        ("masked_lbp_histogram(8,1)", lambda: masked_lbp_histogram(g, m, 8, 1),
         "skimage+bincount",
         lambda: np.bincount(local_binary_pattern(g, 8, 1, "uniform")[m].astype(np.int64),
                             minlength=10)),
        ("hsv_views(+rot,+u8)", lambda: hsv_views(rgb, 180.0, HSV_S, Z3), "skimage+numpy",
         lambda: _hsv_steps_ref(rgb)),
        ("lab_views(+u8)", lambda: lab_views(rgb, LAB_S, LAB_O), "skimage+numpy",
         lambda: _lab_steps_ref(rgb)),
        ("principal_axis_asymmetry", lambda: principal_axis_asymmetry(m), "cv2 warpAffine x2",
         lambda: _warp_ref(m8)),
    ]


HSV_S = np.float32([255.0 / 360.0, 255.0, 255.0])
Z3 = np.zeros(3, np.float32)
LAB_S, LAB_O = np.float32([2.55, 1, 1]), np.float32([0, 128, 128])


def _hsv_steps_ref(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    hsv = rgb2hsv(rgb) * np.array([360.0, 1.0, 1.0])
    h = hsv[..., 0]
    h += 180.0
    h[h >= 360.0] -= 360.0
    return hsv, np.clip(np.floor(hsv * HSV_S + 0.5), 0, 255).astype(np.uint8)


def _lab_steps_ref(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lab = rgb2lab(rgb)
    return lab, np.clip(np.floor(lab * LAB_S + LAB_O + 0.5), 0, 255).astype(np.uint8)


def _warp_ref(m8: np.ndarray) -> float:
    mo = cv2.moments(m8, binaryImage=True)
    a = mo["m00"]
    cx, cy = mo["m10"] / a, mo["m01"] / a
    th = 0.5 * np.arctan2(2 * mo["mu11"], mo["mu20"] - mo["mu02"])
    s = 0.0
    for ang in (th, th + np.pi / 2):
        u = np.array([np.cos(ang), np.sin(ang)])
        r = 2 * np.outer(u, u) - np.eye(2)
        c = np.array([cx, cy])
        w = cv2.warpAffine(m8, np.hstack([r, (c - r @ c)[:, None]]), m8.shape[::-1],
                           flags=cv2.INTER_NEAREST)
        s += float((m8 & w).sum())
    return s


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    cv2.setNumThreads(1)
    threadpool_limits(1)  # every reference single-threaded, as the kernels are
    steady_allocator()  # steady-state timings (see _common.steady_allocator)
    for size, label in (((300, 225), "300x225"), (None, "600x450")):
        imgs = load(n, size)
        print(f"\n== {label}, median over {len(imgs)} real images (best-of-5 per image) ==")
        print(f"{'kernel':28s} {'ours ms':>8s} {'ref ms':>8s} {'ratio':>7s}  reference")
        rows: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for rgb, m in imgs:
            for name, ours, ref_name, ref in cases(rgb, m):
                rows.setdefault((name, ref_name), []).append((best_ms(ours), best_ms(ref)))
        for (name, ref_name), v in rows.items():
            a = float(np.median([x[0] for x in v]))
            b = float(np.median([x[1] for x in v]))
            print(f"{name:28s} {a:8.3f} {b:8.3f} {b / a:6.1f}x  {ref_name}")


if __name__ == "__main__":
    main()
