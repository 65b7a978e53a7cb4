"""Ms per call of each hamfeat._kernels function and the ratio to its reference.

Usage: python benchmarks/bench_kernels.py [N_IMAGES]  (real HAM10000 images from
$HAMFEAT_SHARED_DATA or ../shared/data; both 300x225 and 600x450).  Not a test.
Prints the table and writes benchmarks/reports/kernels_speed.md and .json. The references of
the regional kernels (zone, halves, hetero, border, structure) are the NumPy code they replaced.
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

from _common import REPORTS, machine, steady_allocator, write_json
from hamfeat._kernels.color import hsv_views, lab_views, rgb_to_gray, rgb_to_hsv, rgb_to_lab
from hamfeat._kernels.glcm import glcm, haralick, quantize
from hamfeat._kernels.lbp import lbp_uniform, masked_code_histogram, masked_lbp_histogram
from hamfeat._kernels.regional import (
    block_colour_heterogeneity,
    border_gradient_stats,
    border_samples,
    half_colour_difference,
    log_response_stats,
    mask_axis_moments,
    masked_u8_stats,
    zone_colour_stats,
)
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
        *_regional_cases(lab, m),
    ]


def _regional_cases(lab: np.ndarray, m: np.ndarray) -> list:
    """The regional / structure kernels against the NumPy code they replaced (features v3)."""
    depth = cv2.distanceTransform(m.view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5)
    out_dist = cv2.distanceTransform((~m).view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5)
    skin = ~m & (out_dist <= 15)
    lf = cv2.GaussianBlur(lab[:, :, 0], (0, 0), 1.0, borderType=cv2.BORDER_REFLECT)
    gx = cv2.Sobel(lf, cv2.CV_32F, 1, 0, borderType=cv2.BORDER_REFLECT)
    gy = cv2.Sobel(lf, cv2.CV_32F, 0, 1, borderType=cv2.BORDER_REFLECT)
    lum8 = np.clip(np.floor(lab[:, :, 0] * 2.55 + 0.5), 0, 255).astype(np.uint8)
    resp = np.stack(
        [
            cv2.morphologyEx(lum8, op, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (s, s)))
            for op in (cv2.MORPH_BLACKHAT, cv2.MORPH_TOPHAT)
            for s in (3, 7, 11)
        ]
    )
    lap = np.stack([cv2.Laplacian(cv2.GaussianBlur(lab[:, :, 0], (0, 0), s), cv2.CV_32F)
                    for s in (1.5, 3.0)])  # fmt: skip
    peak = np.stack([cv2.dilate(x, np.ones((3, 3), np.uint8)) for x in lap])
    levels = np.array([5, 12], np.int64)
    thr = np.array([10.0, 20.0])

    def halves() -> list:
        cx, cy, mxx, mxy, myy = mask_axis_moments(m)
        _, vecs = np.linalg.eigh(np.array([[mxx, mxy], [mxy, myy]]))
        return [half_colour_difference(lab, m, cx, cy, *vecs[:, j]) for j in (0, 1)]

    def border() -> np.ndarray:
        v, dy, dx, _ = border_samples(gx, gy, lab, m, depth, out_dist, skin, 1.0, 6.0)
        return border_gradient_stats(v, np.arctan2(dy, dx), 8)

    return [
        ("zone_colour_stats", lambda: zone_colour_stats(lab, m, depth), "numpy",
         lambda: _zone_ref(lab, m, depth)),
        ("axis moments + halves x2", halves, "numpy", lambda: _halves_ref(lab, m)),
        ("block_colour_heterogeneity",
         lambda: block_colour_heterogeneity(lab, m, (0, 0), 12, 0.75, thr), "numpy",
         lambda: _hetero_ref(lab, m)),
        ("border_samples + stats", border, "numpy",
         lambda: _border_ref(gx, gy, lab, m, depth, out_dist, skin)),
        ("masked_u8_stats(6 maps)", lambda: masked_u8_stats(resp, m, levels), "numpy",
         lambda: [(lambda r: [r.mean(), r.std(), (r > 5).mean(), (r > 12).mean()])(
             x[m].astype(np.float64)) for x in resp]),
        ("log_response_stats(2 maps)", lambda: log_response_stats(lap, peak, m, 2.0), "numpy",
         lambda: [(lambda v, x, p: [np.clip(v, 0, None).mean(), np.clip(-v, 0, None).mean(),
                                    ((x == p) & (x > 2.0) & m).sum()])(
             x[m].astype(np.float64), x, p) for x, p in zip(lap, peak, strict=True)]),
    ]  # fmt: skip


def _zone_ref(lab: np.ndarray, m: np.ndarray, d: np.ndarray) -> list:
    t1, t2 = np.quantile(d[m], [1 / 3, 2 / 3])
    out = []
    for z in (m & (d <= t1), m & (d > t1) & (d <= t2), m & (d > t2)):
        v = lab[z].astype(np.float64)
        out += [v.mean(axis=0), v.std(axis=0)]
    return out


def _halves_ref(lab: np.ndarray, m: np.ndarray) -> list:
    ys, xs = np.nonzero(m)
    x, y = xs - xs.mean(), ys - ys.mean()
    cov = np.array([[np.mean(x * x), np.mean(x * y)], [np.mean(x * y), np.mean(y * y)]])
    _, vecs = np.linalg.eigh(cov)
    v = lab[ys, xs].astype(np.float64)
    out = []
    for k in (1, 0):
        side = (x * vecs[0, 1 - k] + y * vecs[1, 1 - k]) > 0
        diff = v[side].mean(axis=0) - v[~side].mean(axis=0)
        out += [*np.abs(diff), float(np.sqrt((diff**2).sum()))]
    return out


def _hetero_ref(lab: np.ndarray, m: np.ndarray, b: int = 12) -> list:
    h, w = (m.shape[0] // b) * b, (m.shape[1] // b) * b
    mb = m[:h, :w].reshape(h // b, b, w // b, b)
    sel = mb.mean(axis=(1, 3)) >= 0.75
    lb = lab[:h, :w].astype(np.float64).reshape(h // b, b, w // b, b, 3)
    sums = (lb * mb[..., None].astype(np.float64)).sum(axis=(1, 3))[sel]
    blocks = sums / mb.sum(axis=(1, 3))[sel][:, None]
    diff = np.sqrt(((blocks[:, None, :] - blocks[None, :, :]) ** 2).sum(axis=-1))
    pairs = diff[np.triu_indices(len(blocks), k=1)]
    p90, p10 = np.percentile(blocks, [90, 10], axis=0)
    return [blocks.std(axis=0), p90 - p10, pairs.mean(), np.percentile(pairs, 90),
            [(pairs > t).mean() for t in (10, 20)]]  # fmt: skip


def _border_ref(gx, gy, lab, m, depth, out_dist, skin) -> list:
    edge = m & (depth <= 1.0)
    g = np.sqrt(gx.astype(np.float64) ** 2 + gy.astype(np.float64) ** 2)
    v = g[edge]
    ys, xs = np.nonzero(m)
    ey, ex = np.nonzero(edge)
    sector = ((np.arctan2(ey - ys.mean(), ex - xs.mean()) + np.pi) / (2 * np.pi) * 8).astype(int)
    sector = np.minimum(sector, 7)
    sums = np.bincount(sector, weights=v, minlength=8)
    counts = np.bincount(sector, minlength=8)
    sec = sums[counts > 0] / counts[counts > 0]
    lum = lab[:, :, 0]
    delta = lum[~m & (out_dist <= 6) & skin].mean() - lum[m & (depth <= 6)].mean()
    return [v.mean(), v.std(), np.percentile(v, 10), np.percentile(v, 90),
            sec.std() / sec.mean(), delta]  # fmt: skip


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
    info = machine()
    result: dict = {"machine": info, "n_images": n, "sizes": {}}
    md = [
        "# Numba kernels against their references, one call each",
        "",
        f"Measured by `{info['command']}` on {info['date']}, commit {info['commit']}, one "
        f"thread on both sides, {n} real HAM10000 images per size, median over the images of "
        "the best-of-5 mean per call. The issue's 10× target is about the skimage/mahotas "
        "twins in [features_speed.md](features_speed.md); the regional kernels' references are "
        "the NumPy code they replaced (same outputs, tested in "
        "`tests/kernels/test_kernels_regional.py`).",
    ]
    for size, label in (((300, 225), "300x225"), (None, "600x450")):
        imgs = load(n, size)
        print(f"\n== {label}, median over {len(imgs)} real images (best-of-5 per image) ==")
        print(f"{'kernel':28s} {'ours ms':>8s} {'ref ms':>8s} {'ratio':>7s}  reference")
        md += ["", f"## {label}", "", "| kernel | ms | reference | reference ms | ratio |",
               "| --- | ---: | --- | ---: | ---: |"]
        rows: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for rgb, m in imgs:
            for name, ours, ref_name, ref in cases(rgb, m):
                rows.setdefault((name, ref_name), []).append((best_ms(ours), best_ms(ref)))
        out = []
        for (name, ref_name), v in rows.items():
            a = float(np.median([x[0] for x in v]))
            b = float(np.median([x[1] for x in v]))
            print(f"{name:28s} {a:8.3f} {b:8.3f} {b / a:6.1f}x  {ref_name}")
            md.append(f"| {name} | {a:.3f} | {ref_name} | {b:.3f} | {b / a:.1f}× |")
            out.append({"kernel": name, "ms": a, "reference": ref_name, "reference_ms": b})
        result["sizes"][label] = out
    write_json(REPORTS / "kernels_speed.json", result)
    (REPORTS / "kernels_speed.md").write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
