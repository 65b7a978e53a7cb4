"""hamfeat's feature families against what a user would write with the well-known libraries.

Usage: python benchmarks/bench_peers.py [N_IMAGES=200]   (real HAM10000 images and their
Tschandl masks from $HAMFEAT_SHARED_DATA or ../shared/data).  Not a test.

For each family that has a library counterpart (color, glcm, lbp, wavelet, shape), the same
quantities are computed on the same images, in one process, by hamfeat as a user calls it
(``FAMILIES[name].compute(Context(rgb, mask))``, a fresh Context per call so that the colour
views a family needs are paid inside its time) and by the code a competent user would write
with scikit-image, mahotas, OpenCV, PyWavelets, NumPy and SciPy. Both sides are interleaved
per image and timed best-of-``REPEAT``; a few values per image are compared with hamfeat's.
Writes benchmarks/reports/peers_speed.md and .json. The kernels report
(kernels_speed.md) compares single kernels; this one compares whole families.
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import scipy.stats
from threadpoolctl import threadpool_limits

from _common import REPORTS, machine, steady_allocator, write_md_json
from hamfeat.features import FAMILIES, Context
from hamfeat.features.color import HISTOGRAMS, QUANTILES
from hamfeat.pipeline import FeatureConfig, prepare_file

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HAM = Path(os.environ.get("HAMFEAT_SHARED_DATA", DEFAULT)) / "ham10000"
SEED = 21
REPEAT = 3
WARMUP = 3
ANG = np.array([0, np.pi / 4, np.pi / 2, 3 * np.pi / 4])
DISTANCES = (1, 2, 4)
LEVELS = 32
RADII = (1, 2, 3)
P = 8
# families without a library counterpart, and why (their NumPy references: kernels_speed.md)
NOT_COMPARED = {
    "skin": "lesion-minus-skin contrasts over hamfeat's own skin ring (distance transform, "
    "frame test): plain NumPy on the colour views, no library computes it",
    "variegation": "nearest of six reference dermoscopic colours in Lab: no library function",
    "zone": "colour statistics per depth zone of the lesion: hamfeat-specific (NumPy reference)",
    "hetero": "block colour heterogeneity: hamfeat-specific (NumPy reference)",
    "border": "gradient statistics along the lesion border: hamfeat-specific (NumPy reference)",
    "structure": "top/black-hat and LoG response statistics: hamfeat-specific summaries of "
    "OpenCV filters",
    "whole": "whole-image summaries: hamfeat-specific",
}

# ---------------------------------------------------------------------------- optional peers
NOTES: list[str] = []
try:
    from skimage.color import rgb2hsv, rgb2lab
    from skimage.feature import graycomatrix, graycoprops, local_binary_pattern

    HAVE_SKIMAGE = True
except ImportError:  # pragma: no cover
    HAVE_SKIMAGE = False
    NOTES.append("scikit-image not installed: its peers skipped")
try:
    import mahotas
    import mahotas.features
    from mahotas.features import _lbp as _mh_lbp
    from mahotas.features.lbp import lbp_transform as _mh_lbp_transform

    HAVE_MAHOTAS = True
except ImportError:  # pragma: no cover
    HAVE_MAHOTAS = False
    NOTES.append("mahotas not installed: its peers skipped (pip install mahotas)")
try:
    import pywt

    HAVE_PYWT = True
except ImportError:  # pragma: no cover
    HAVE_PYWT = False
    NOTES.append("PyWavelets not installed: the wavelet peer skipped (pip install PyWavelets)")


# ---------------------------------------------------------------------------- images
def select_images(n: int, seed: int = SEED) -> list[str]:
    """A seeded sample stratified over the 7 classes: n // 7 per class (the first n % 7
    classes, alphabetically, get one more), image ids sorted within each class first."""
    meta = pd.read_csv(HAM / "HAM10000_metadata.csv")
    rng = np.random.default_rng(seed)
    classes = sorted(meta["dx"].unique())
    out = []
    for k, dx in enumerate(classes):
        ids = np.sort(meta.loc[meta["dx"] == dx, "image_id"].to_numpy())
        take = n // len(classes) + (k < n % len(classes))
        out += list(rng.choice(ids, size=min(take, len(ids)), replace=False))
    return out


def load(ids: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Decode once and bring to hamfeat's canonical size (its own helpers), untimed."""
    out = []
    for i in ids:
        prep, _ = prepare_file(
            HAM / "images" / f"{i}.jpg", HAM / "masks" / f"{i}_segmentation.png", FeatureConfig()
        )
        assert prep.mask_source == "given", i
        out.append((np.ascontiguousarray(prep.rgb), np.ascontiguousarray(prep.mask)))
    return out


def bbox(mask: np.ndarray, margin: int = 0, align: int = 1) -> tuple[slice, slice]:
    """The lesion's bounding box grown by ``margin``, its corner moved down to ``align``."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    r0 = max(0, rows[0] - margin) // align * align
    c0 = max(0, cols[0] - margin) // align * align
    return slice(r0, min(h, rows[-1] + 1 + margin)), slice(c0, min(w, cols[-1] + 1 + margin))


def gray_of(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


# ---------------------------------------------------------------------------- colour peers
HSV_U8 = np.array([255 / 360, 255.0, 255.0])
LAB_U8_SCALE, LAB_U8_OFF = np.array([2.55, 1.0, 1.0]), np.array([0.0, 128.0, 128.0])
HSV_UNIT = np.array([360 / 255, 1 / 255, 1 / 255])
LAB_UNIT_SCALE, LAB_UNIT_OFF = np.array([1 / 2.55, 1.0, 1.0]), np.array([0.0, -128.0, -128.0])
PCT = np.array(QUANTILES) * 100


def _colour_stats(rgb_px, hsv, lab) -> np.ndarray:
    """hamfeat's color quantities from lesion pixels (N, 3) in RGB, rotated HSV and Lab."""
    n = len(rgb_px)
    out = []
    views = (
        (rgb_px.astype(np.float64), rgb_px, 1.0, 0.0),
        (hsv, np.clip(np.floor(hsv * HSV_U8 + 0.5), 0, 255).astype(np.uint8), HSV_UNIT, 0.0),
        (lab, np.clip(np.floor(lab * LAB_U8_SCALE + LAB_U8_OFF + 0.5), 0, 255).astype(np.uint8),
         LAB_UNIT_SCALE, LAB_UNIT_OFF),
    )  # fmt: skip
    for v, u8, scale, off in views:
        mom = np.stack([v.mean(0), v.std(0), scipy.stats.skew(v, 0), scipy.stats.kurtosis(v, 0)])
        q = np.percentile(u8, PCT, axis=0).T * np.reshape(scale, (-1, 1)) + np.reshape(off, (-1, 1))
        for c in range(3):
            out += [mom[:, c], q[c]]
    for space, v in (("hsv", hsv), ("lab", lab)):
        for c, ch in enumerate(("h", "s", "v") if space == "hsv" else ("l", "a", "b")):
            lo, hi, bins = HISTOGRAMS[(space, ch)]
            out.append(np.histogram(v[:, c], bins, (lo, hi))[0] / n)
    return np.concatenate(out)


def _rotate_hue(hsv: np.ndarray) -> np.ndarray:
    h = hsv[:, 0]
    h += 180.0
    h[h >= 360.0] -= 360.0
    return hsv


def color_skimage(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    px = rgb[mask]  # convert the lesion pixels only, as an (N, 1, 3) image
    hsv = rgb2hsv(px[:, None, :])[:, 0, :] * np.array([360.0, 1.0, 1.0])
    lab = rgb2lab(px[:, None, :])[:, 0, :]
    return _colour_stats(px, _rotate_hue(hsv), lab)


def color_cv2(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    px = rgb[mask]
    f = px[:, None, :].astype(np.float32) / 255  # float input: H in degrees, L in 0..100
    hsv = cv2.cvtColor(f, cv2.COLOR_RGB2HSV)[:, 0, :].astype(np.float64)
    lab = cv2.cvtColor(f, cv2.COLOR_RGB2Lab)[:, 0, :].astype(np.float64)
    return _colour_stats(px, _rotate_hue(hsv), lab)


# ---------------------------------------------------------------------------- GLCM peers
SK_PROPS = ("contrast", "dissimilarity", "homogeneity", "ASM", "energy", "correlation",
            "entropy", "variance")  # fmt: skip
_L = np.arange(LEVELS)
_I, _J = np.meshgrid(_L, _L, indexing="ij")
_SUM1H = np.eye(2 * LEVELS - 1)[(_I + _J).ravel()]  # (L*L, 2L-1) one-hot of i + j
_DIFF1H = np.eye(LEVELS)[np.abs(_I - _J).ravel()]  # (L*L, L) one-hot of |i - j|


def _ent(p: np.ndarray, axis) -> np.ndarray:
    return -np.sum(p * np.log(p, where=p > 0, out=np.zeros_like(p)), axis=axis)


def _masked_code(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Lesion window quantised to 1..32 (``gray * 32 // 256 + 1``), 0 outside the lesion."""
    r, c = bbox(mask)
    q = (gray_of(rgb[r, c]).astype(np.uint16) * LEVELS >> 8).astype(np.uint8) + 1
    return np.where(mask[r, c], q, 0).astype(np.uint8)


def glcm_skimage(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """graycomatrix on the masked code (level 0 = outside, dropped) + graycoprops for the
    properties it has + NumPy for the other Haralick properties hamfeat reports."""
    code = _masked_code(rgb, mask)
    counts = graycomatrix(code, list(DISTANCES), ANG, levels=LEVELS + 1, symmetric=True)
    counts = np.ascontiguousarray(counts[1:, 1:])  # pairs with both pixels in the lesion
    sk = {p: graycoprops(counts, p) for p in SK_PROPS}  # (D, A) each
    tot = counts.sum(axis=(0, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        pm = counts / tot  # (L, L, D, A)
        flat = pm.reshape(LEVELS * LEVELS, -1)
        psum = (_SUM1H.T @ flat).reshape(-1, *tot.shape)
        pdiff = (_DIFF1H.T @ flat).reshape(-1, *tot.shape)
        px, py = pm.sum(axis=1), pm.sum(axis=0)
        kk = np.arange(2 * LEVELS - 1)[:, None, None]
        s_avg = (kk * psum).sum(0)
        s_var = ((kk - s_avg) ** 2 * psum).sum(0)
        kd = np.arange(LEVELS)[:, None, None]
        d_var = ((kd - (kd * pdiff).sum(0)) ** 2 * pdiff).sum(0)
        mu_x = (kd * px).sum(0)
        mu_y = (kd * py).sum(0)
        t = _I[..., None, None] - mu_x + _J[..., None, None] - mu_y
        pxy = px[:, None] * py[None, :]
        lpxy = np.log(pxy, where=pxy > 0, out=np.zeros_like(pxy))
        hxy, hx, hy = sk["entropy"], _ent(px, 0), _ent(py, 0)
        hxy1, hxy2 = -(pm * lpxy).sum((0, 1)), -(pxy * lpxy).sum((0, 1))
        hmax = np.maximum(hx, hy)
        imc1 = np.where(hmax > 0, (hxy - hxy1) / hmax, 0.0)
        imc2 = np.sqrt(np.clip(1 - np.exp(-2 * (hxy2 - hxy)), 0, None))
    # (19, D, A), in hamfeat's HARALICK_PROPS order
    props = np.stack([
        sk["contrast"], sk["dissimilarity"], sk["homogeneity"], sk["ASM"], sk["energy"],
        sk["correlation"], hxy, sk["variance"], s_avg, s_var, _ent(psum, 0), d_var,
        _ent(pdiff, 0), imc1, imc2, (pm * t**3).sum((0, 1)), (pm * t**4).sum((0, 1)),
        pm.max(axis=(0, 1)), mu_x,
    ])  # fmt: skip
    return np.stack([props.mean(2).T, np.ptp(props, axis=2).T], axis=2).ravel()


def glcm_mahotas(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """mahotas.features.haralick (its 13 features, 4 directions) per distance on the masked
    code, ignore_zeros=True: (D, 4, 13).  Mahotas has 13 of hamfeat's 19 properties."""
    code = _masked_code(rgb, mask)
    out = np.full((len(DISTANCES), 4, 13), np.nan)
    for k, d in enumerate(DISTANCES):
        try:
            out[k] = mahotas.features.haralick(code, ignore_zeros=True, distance=d)
        except ValueError:  # no pair inside the lesion at this distance
            pass
    return out


# ---------------------------------------------------------------------------- LBP peers
def lbp_skimage(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    r, c = bbox(mask, max(RADII) + 1)
    g, m = gray_of(rgb[r, c]), mask[r, c]
    n = int(m.sum())
    out = []
    for rad in RADII:
        codes = local_binary_pattern(g, P, rad, "uniform")
        out.append(np.bincount(codes[m].astype(np.intp), minlength=P + 2) / n)
    return np.concatenate(out)


def _riu2_of_mahotas() -> np.ndarray:
    """Lookup table: mahotas' compressed rotation-invariant code -> riu2 label (0..P+1)."""
    raw = np.arange(2**P, dtype=np.uint32)
    comp = _mh_lbp.map(raw.copy(), P)
    bits = (raw[:, None] >> np.arange(P)) & 1
    trans = (bits != np.roll(bits, 1, axis=1)).sum(1)
    label = np.where(trans <= 2, bits.sum(1), P + 1)
    lut = np.zeros(int(comp.max()) + 1, np.intp)
    lut[comp] = label
    return lut


_MH_LUT = _riu2_of_mahotas() if HAVE_MAHOTAS else None


def lbp_mahotas(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    r, c = bbox(mask, max(RADII) + 1)
    g, m = gray_of(rgb[r, c]), mask[r, c]
    n = int(m.sum())
    out = []
    for rad in RADII:
        codes = _mh_lbp_transform(g, rad, P)
        out.append(np.bincount(_MH_LUT[codes[m]], minlength=P + 2) / n)
    return np.concatenate(out)


# ---------------------------------------------------------------------------- wavelet peer
def wavelet_pywt(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """pywt.wavedec2 (Haar, 3 levels) on the lesion window (corner on the image's 8-px grid);
    energies over the coefficients whose 2x2 block at each level lies inside the lesion."""
    r, c = bbox(mask, 0, align=8)
    x = gray_of(rgb[r, c]).astype(np.float64)
    m = mask[r, c]
    coeffs = pywt.wavedec2(x, "haar", mode="periodization", level=3)
    out = []
    for cH, cV, cD in coeffs[:0:-1]:  # level 1 first
        h, w = m.shape[0] // 2 * 2, m.shape[1] // 2 * 2
        m = m[0:h:2, 0:w:2] & m[0:h:2, 1:w:2] & m[1:h:2, 0:w:2] & m[1:h:2, 1:w:2]
        for band in (cH, cV, cD):
            v = band[: m.shape[0], : m.shape[1]][m]
            out += [np.mean(v * v), np.mean(np.abs(v))] if v.size else [np.nan, np.nan]
    return np.asarray(out)


# ---------------------------------------------------------------------------- shape peer
def shape_cv2(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """OpenCV contours/moments/hull/Hu + NumPy mirror asymmetry, on the whole mask."""
    h, w = mask.shape
    m8 = mask.astype(np.uint8)
    mom = cv2.moments(m8, binaryImage=True)
    area = mom["m00"]
    contours, _ = cv2.findContours(m8, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    big = max(contours, key=cv2.contourArea)
    perim = cv2.arcLength(big, True)
    hull = cv2.convexHull(big)
    _, _, bw, bh = cv2.boundingRect(big)
    cx, cy = mom["m10"] / area, mom["m01"] / area
    mu20, mu02, mu11 = mom["mu20"] / area, mom["mu02"] / area, mom["mu11"] / area
    common = math.sqrt(((mu20 - mu02) / 2) ** 2 + mu11**2)
    lam1, lam2 = (mu20 + mu02) / 2 + common, (mu20 + mu02) / 2 - common
    # mirror every lesion pixel about each principal axis; count those landing in the lesion
    ys, xs = np.nonzero(mask)
    dx, dy = xs - cx, ys - cy
    theta = 0.5 * math.atan2(2 * mom["mu11"], mom["mu20"] - mom["mu02"])
    asym = []
    for a in (theta, theta + math.pi / 2):
        ux, uy = math.cos(a), math.sin(a)
        t = dx * ux + dy * uy
        rx = np.floor(cx + 2 * t * ux - dx + 0.5).astype(np.intp)
        ry = np.floor(cy + 2 * t * uy - dy + 0.5).astype(np.intp)
        ok = (rx >= 0) & (rx < w) & (ry >= 0) & (ry < h)
        asym.append(1 - mask[ry[ok], rx[ok]].sum() / area)
    pts = big[:, 0, :]
    radii = np.hypot(pts[:, 0] - cx, pts[:, 1] - cy)
    edge = (pts[:, 0] == 0) | (pts[:, 1] == 0) | (pts[:, 0] == w - 1) | (pts[:, 1] == h - 1)
    hu = cv2.HuMoments(mom).ravel()
    with np.errstate(divide="ignore", invalid="ignore"):
        hu = -np.sign(hu) * np.log10(np.abs(hu))
    return np.array([
        area / (h * w), perim / math.sqrt(area), 4 * math.pi * area / perim**2,
        cv2.contourArea(big) / cv2.contourArea(hull), area / (bw * bh),
        math.sqrt(1 - lam2 / lam1), math.sqrt(lam2 / lam1),
        math.sqrt(4 * area / math.pi) / math.hypot(h, w), *asym,
        cv2.arcLength(hull, True) / perim, radii.std() / radii.mean(),
        cv2.connectedComponents(m8, connectivity=8)[0] - 1, edge.mean(),
        *np.where(np.isfinite(hu), hu, np.nan),
    ])  # fmt: skip


# ---------------------------------------------------------------------------- agreement
def _idx(family: str, names: list[str]) -> np.ndarray:
    allnames = FAMILIES[family].names()
    return np.array([allnames.index(n) for n in names])


def _names(family: str, pred) -> list[str]:
    return [n for n in FAMILIES[family].names() if pred(n)]


COLOR_MOM = _names("color", lambda n: n.endswith(("_mean", "_std")) and "_hsv_h_" not in n)
COLOR_SHAPE = _names("color", lambda n: n.endswith(("_skew", "_kurt")) and "_hsv_h_" not in n)
COLOR_HUE = _names(
    "color", lambda n: n.endswith(("_mean", "_std", "_skew", "_kurt")) and "_hsv_h_" in n
)
COLOR_Q = _names("color", lambda n: n[-3:] in ("p05", "p25", "p50", "p75", "p95"))
COLOR_H = _names("color", lambda n: "_hist" in n)
# one u8 level, in each channel's unit, per quantile name
COLOR_Q_TOL = np.array([
    {"rgb": 1.0, "hsv_h": 360 / 255, "hsv": 1 / 255, "lab_l": 1 / 2.55, "lab": 1.0}[
        "rgb" if n.startswith("color_rgb") else
        ("hsv_h" if "_hsv_h_" in n else "hsv") if n.startswith("color_hsv") else
        ("lab_l" if "_lab_l_" in n else "lab")]
    for n in COLOR_Q
]) + 1e-9  # fmt: skip
HAR = ("contrast", "dissimilarity", "homogeneity", "asm", "energy", "correlation", "entropy",
       "variance", "sum_average", "sum_variance", "sum_entropy", "difference_variance",
       "difference_entropy", "imc1", "imc2", "cluster_shade", "cluster_prominence",
       "max_probability", "mean")  # fmt: skip
# mahotas feature index -> (hamfeat property, conversion of mahotas' value); d = 1, mean
MH_MAP = {
    0: ("asm", lambda v: v), 1: ("contrast", lambda v: v), 2: ("correlation", lambda v: v),
    3: ("variance", lambda v: v), 4: ("homogeneity", lambda v: v),
    5: ("sum_average", lambda v: v - 2),  # levels 1..32 (0 = outside) vs hamfeat's 0..31
    6: ("sum_variance", lambda v: v), 7: ("sum_entropy", lambda v: v * math.log(2)),  # log2
    8: ("entropy", lambda v: v * math.log(2)),
    10: ("difference_entropy", lambda v: v * math.log(2)),
    11: ("imc1", lambda v: v),
}  # fmt: skip


def _diff(a, b, rel_floor: float = 1e-12) -> tuple[float, float]:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    both = np.isfinite(a) & np.isfinite(b)
    nan_mismatch = bool((np.isfinite(a) != np.isfinite(b)).any())
    d = np.abs(a[both] - b[both])
    if nan_mismatch:
        return float("inf"), float("inf")
    if not d.size:
        return 0.0, 0.0
    rel = d / np.maximum(np.abs(a[both]), rel_floor)
    return float(d.max()), float(rel.max())


def checks(family: str, peer: str, ham: np.ndarray, got) -> list[tuple[str, float, float]]:
    """(quantity, max abs diff, max rel diff) of one image; see TOL for the tolerances."""
    if family == "color":

        def part(ns):
            return _diff(ham[_idx("color", ns)], got[_idx("color", ns)])

        qa = np.abs(ham[_idx("color", COLOR_Q)] - got[_idx("color", COLOR_Q)]) / COLOR_Q_TOL
        return [
            ("mean, std (RGB, S, V, Lab)", *part(COLOR_MOM)),
            ("skew, kurt (RGB, S, V, Lab)", *part(COLOR_SHAPE)),
            ("hue mean, std, skew, kurt", *part(COLOR_HUE)),
            ("quantiles (in u8 levels)", float(qa.max()), float("nan")),
            ("histogram fractions", *part(COLOR_H)),
        ]
    if family == "glcm" and peer.startswith("skimage"):
        return [("all 114 values", *_diff(ham, got)),
                ("d=1 contrast mean", *_diff(ham[0], got[0]))]  # fmt: skip
    if family == "glcm":  # mahotas: (D, 4, 13)
        ham3 = ham.reshape(len(DISTANCES), len(HAR), 2)
        rows = []
        for k, d in enumerate(DISTANCES):
            a = [ham3[k, HAR.index(name), 0] for name, _ in MH_MAP.values()]
            b = [conv(np.mean(got[k, :, j])) for j, (_, conv) in MH_MAP.items()]
            rows.append((f"d={d}: 11 of 13 props, angle mean", *_diff(a, b)))
        return rows
    if family == "lbp":
        return [("riu2 histogram fractions (30)", *_diff(ham, got))]
    if family == "wavelet":
        return [("18 energies / MADs", *_diff(ham, got))]
    if family == "shape":
        hu = _idx("shape", [f"shape_hu{i}" for i in range(1, 8)])
        rest = np.setdiff1d(np.arange(len(ham)), hu)
        return [("14 shape descriptors", *_diff(ham[rest], got[rest])),
                ("Hu moments (log-scaled)", *_diff(ham[hu], got[hu]))]  # fmt: skip
    raise KeyError(family)


#: (family, peer, quantity) -> (abs tol, rel tol): agreement when abs <= a OR rel <= r
TOL = {
    ("color", "mean, std (RGB, S, V, Lab)"): (1e-3, 1e-5),
    ("color", "skew, kurt (RGB, S, V, Lab)"): (1e-3, 1e-4),
    ("color", "hue mean, std, skew, kurt"): (1e-3, 1e-4),
    ("color", "quantiles (in u8 levels)"): (1.0, None),
    ("color", "histogram fractions"): (0.02, None),
    # OpenCV's float Lab uses its own constants: a slightly different Lab (see below)
    ("color", "cv2", "mean, std (RGB, S, V, Lab)"): (0.25, None),
    ("color", "cv2", "skew, kurt (RGB, S, V, Lab)"): (0.25, None),
    ("glcm", "all 114 values"): (1e-9, 1e-9),
    ("glcm", "d=1 contrast mean"): (1e-9, 1e-9),
    ("glcm", "d=1: 11 of 13 props, angle mean"): (1e-9, 1e-9),
    ("glcm", "d=2: 11 of 13 props, angle mean"): (1e-9, 1e-9),
    ("glcm", "d=4: 11 of 13 props, angle mean"): (1e-9, 1e-9),
    ("lbp", "riu2 histogram fractions (30)"): (1e-12, None),
    ("wavelet", "18 energies / MADs"): (1e-9, 1e-9),
    ("shape", "14 shape descriptors"): (1e-9, 1e-9),
    ("shape", "Hu moments (log-scaled)"): (1e-9, 1e-9),
}


def tol(family: str, peer: str, quantity: str) -> tuple:
    return TOL.get((family, peer.split()[0].split(".")[0], quantity), TOL[(family, quantity)])


def within(family: str, peer: str, quantity: str, a: float, r: float) -> bool:
    ta, tr = tol(family, peer, quantity)
    return bool(a <= ta or (tr is not None and r <= tr))


# ---------------------------------------------------------------------------- the benchmark
PEERS: dict[str, list[tuple[str, object]]] = {
    "color": ([("skimage rgb2hsv/rgb2lab + NumPy/SciPy", color_skimage)] if HAVE_SKIMAGE else [])
    + [("cv2.cvtColor (float32) + NumPy/SciPy", color_cv2)],
    "glcm": ([("skimage graycomatrix + graycoprops + NumPy", glcm_skimage)] if HAVE_SKIMAGE
             else []) + ([("mahotas haralick (13 props)", glcm_mahotas)] if HAVE_MAHOTAS else []),
    "lbp": ([("skimage local_binary_pattern + bincount", lbp_skimage)] if HAVE_SKIMAGE else [])
    + ([("mahotas lbp_transform + riu2 LUT + bincount", lbp_mahotas)] if HAVE_MAHOTAS else []),
    "wavelet": [("pywt.wavedec2 + NumPy", wavelet_pywt)] if HAVE_PYWT else [],
    "shape": [("cv2 contours/moments/hull/Hu + NumPy", shape_cv2)],
}  # fmt: skip


def ours(family: str):
    fam = FAMILIES[family]
    return lambda rgb, mask: fam.compute(Context(rgb, mask))


def _time(f, rgb, mask) -> tuple[float, float, object]:
    """Wall time and this thread's CPU time of one call, seconds, and its value."""
    c, t = time.thread_time(), time.perf_counter()
    v = f(rgb, mask)
    return time.perf_counter() - t, time.thread_time() - c, v


def run(imgs, repeat: int = REPEAT, families=None) -> dict:
    families = [f for f in (families or PEERS) if PEERS[f]]
    for rgb, mask in imgs[:WARMUP]:  # Numba compile / caches / imports: not timed
        for fam in families:
            ours(fam)(rgb, mask)
            for _, f in PEERS[fam]:
                f(rgb, mask)
    res = {}
    for fam in families:
        sides = [("hamfeat", ours(fam)), *PEERS[fam]]
        times = np.zeros((len(imgs), len(sides)))
        cpu = np.zeros((len(imgs), len(sides)))
        agree: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for i, (rgb, mask) in enumerate(imgs):
            best = [np.inf] * len(sides)
            best_cpu = [np.inf] * len(sides)
            vals = [None] * len(sides)
            for _ in range(repeat):  # interleaved: hamfeat, peer 1, peer 2, hamfeat, ...
                for s, (_, f) in enumerate(sides):
                    t, c, vals[s] = _time(f, rgb, mask)
                    best[s] = min(best[s], t)
                    best_cpu[s] = min(best_cpu[s], c)
            times[i] = best
            cpu[i] = best_cpu
            for s, (pname, _) in enumerate(sides[1:], 1):
                for q, a, r in checks(fam, pname, vals[0], vals[s]):
                    agree.setdefault((pname, q), []).append((a, r))
        peers = []
        for s, (pname, _) in enumerate(sides[1:], 1):
            rows = []
            for (pn, q), v in agree.items():
                if pn != pname:
                    continue
                a = float(np.nanmax([x[0] for x in v]))
                r = float(np.nanmax([x[1] for x in v])) if TOL[(fam, q)][1] is not None else None
                n_ok = sum(within(fam, pname, q, x[0], x[1]) for x in v)
                rows.append({"quantity": q, "max_abs": a, "max_rel": r, "tol": tol(fam, pname, q),
                             "images_within": n_ok, "n": len(v)})  # fmt: skip
            peers.append({"peer": pname, "ms": float(times[:, s].mean() * 1e3),
                          "median_ms": float(np.median(times[:, s]) * 1e3),
                          "ratio": float(times[:, s].sum() / times[:, 0].sum()),
                          "cpu_ms": float(cpu[:, s].mean() * 1e3),
                          "ratio_cpu": float(cpu[:, s].sum() / cpu[:, 0].sum()),
                          "agreement": rows})  # fmt: skip
        res[fam] = {
            "hamfeat_ms": float(times[:, 0].mean() * 1e3),
            "hamfeat_median_ms": float(np.median(times[:, 0]) * 1e3),
            "hamfeat_cpu_ms": float(cpu[:, 0].mean() * 1e3),
            "peers": peers,
        }
        print(f"{fam:8s} hamfeat {res[fam]['hamfeat_ms']:7.3f} ms  " + "  ".join(
            f"{p['peer'].split()[0]} {p['ms']:7.3f} ms "
            f"({p['ratio']:.1f}x, cpu {p['ratio_cpu']:.1f}x)"
            for p in peers),
            flush=True)  # fmt: skip
    return res


def _fmt(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if x == float("inf"):
        return "NaN mismatch"
    return f"{x:.2g}"


def report(res: dict, info: dict, ids: list[str], n: int) -> str:
    whole_h = sum(r["hamfeat_ms"] for r in res.values())
    whole_p = sum(min(p["ms"] for p in r["peers"]) for r in res.values())
    whole_hc = sum(r["hamfeat_cpu_ms"] for r in res.values())
    whole_pc = sum(min(p["cpu_ms"] for p in r["peers"]) for r in res.values())
    md = [
        "# hamfeat's feature families against the libraries a user would reach for",
        "",
        f"Measured by `{info['command']}` on {info['date']}, commit {info['commit']}, "
        f"{info['cpus']} CPUs (python {info['python']}, numpy {info['numpy']}, numba "
        f"{info['numba']}; {info['libs']}).",
        "",
        "**The machine was shared** (2 cores, three other agents' load): absolute times are "
        "noisy, the result is the **ratios**, measured in the same process with the two sides "
        f"interleaved per image (hamfeat, peer 1, peer 2, repeated {REPEAT}×, best of the "
        "repeats per image and side). One thread on both sides (OpenCV, BLAS). Warm-up: every "
        f"side ran on {WARMUP} images before timing, so Numba compilation (and first-call "
        "imports) are excluded.",
        "",
        f"Images: {n} real HAM10000 images, a seeded (seed {SEED}) sample stratified over the 7 "
        "classes (equal numbers per class), each decoded once and brought to hamfeat's "
        "canonical size (longer side 300, area averaging) with its Tschandl mask by "
        "`hamfeat.pipeline.prepare_file`, outside the timed region. Both sides get the same "
        "uint8 RGB and boolean mask.",
        "",
        "hamfeat side: `FAMILIES[name].compute(Context(rgb, mask))`, a fresh `Context` per "
        "call, so the analysis window and the colour views a family needs are inside its "
        "time. Peer side: what a competent user writes to get the same quantities (see "
        "`benchmarks/bench_peers.py`): crop to the lesion's bounding box (plus the LBP "
        "radius; on the 8-px grid for the wavelet), grey by `cv2.cvtColor` (hamfeat's grey "
        "is OpenCV's luma), colour conversions of the lesion pixels only.",
        "",
        "ms/image = mean over the images of the best-of-repeats wall time; ratio = peer total "
        "/ hamfeat total (> 1: hamfeat faster). The CPU ratio uses each call's thread CPU time "
        "(best of the repeats) instead: under the other agents' load a long call is preempted "
        "more often than a short one, which inflates the wall ratio of the slow side, so the "
        "CPU ratio is the steadier of the two.",
        "",
        "| family | hamfeat ms/image | peer | peer ms/image | ratio peer/hamfeat (wall) | "
        "ratio (CPU) | agreement |",
        "| --- | ---: | --- | ---: | ---: | ---: | --- |",
    ]
    for fam, r in res.items():
        for k, p in enumerate(r["peers"]):
            bad = [a for a in p["agreement"] if a["images_within"] < a["n"]]
            agree = (
                "within tolerance"
                if not bad
                else "**differs**: "
                + "; ".join(
                    f"{a['quantity']} ({a['n'] - a['images_within']}/{a['n']} images)" for a in bad
                )
            )
            ham = f"{r['hamfeat_ms']:.3f}" if k == 0 else ""
            md.append(f"| {fam if k == 0 else ''} | {ham} | {p['peer']} | {p['ms']:.3f} | "
                      f"{p['ratio']:.1f}× | {p['ratio_cpu']:.1f}× | {agree} |")  # fmt: skip
    md += [
        f"| **whole set** ({', '.join(res)}) | **{whole_h:.3f}** | fastest peer per family | "
        f"**{whole_p:.3f}** | **{whole_p / whole_h:.1f}×** | **{whole_pc / whole_hc:.1f}×** | |",
        "",
        "The whole set is the sum over the compared families; for each family the faster "
        "peer is used (" + "; ".join(
            f"{fam}: {min(r['peers'], key=lambda p: p['ms'])['peer']}" for fam, r in res.items())
        + ").",
        "",
        "## Agreement with hamfeat's values",
        "",
        "Per image, the peer's values against hamfeat's; max over the images of the max "
        "difference. Agreement = |diff| ≤ abs tol, or relative diff ≤ rel tol.",
        "",
        "| family | peer | quantity | max abs diff | max rel diff | tolerance (abs, rel) | "
        "images within |",
        "| --- | --- | --- | ---: | ---: | --- | ---: |",
    ]  # fmt: skip
    for fam, r in res.items():
        for p in r["peers"]:
            for a in p["agreement"]:
                ta, tr = a["tol"]
                md.append(f"| {fam} | {p['peer']} | {a['quantity']} | {_fmt(a['max_abs'])} | "
                          f"{_fmt(a['max_rel'])} | {_fmt(ta)}, {_fmt(tr)} | "
                          f"{a['images_within']}/{a['n']} |")  # fmt: skip
    md += ["", "### Known definitional differences", "", *DIFFERENCES, ""]
    md += ["## Families not compared", "",
           "No library computes these; their kernels' NumPy references are timed in "
           "[kernels_speed.md](kernels_speed.md).", ""]  # fmt: skip
    md += [f"- **{k}**: {v}" for k, v in NOT_COMPARED.items()]
    if NOTES:
        md += ["", "## Skipped peers", "", *[f"- {x}" for x in NOTES]]
    md += ["", f"Images: {', '.join(ids)}", ""]
    return "\n".join(md)


DIFFERENCES = [
    "- **color**: hamfeat converts in float32 Numba kernels, skimage in float64: moments "
    "agree to float32 precision, except that a pixel on the hue cut (rotated hue 0/360, "
    "i.e. cyan, or a near-grey pixel) can land on the other side of it, which moves the hue "
    "moments of that image. The uint8 levels behind the quantiles can land one level apart at "
    "a rounding boundary (quantile tolerance: 1 level in the channel's unit), and values "
    "exactly on a histogram bin edge (e.g. S = 0.5, common with integer RGB: max = 2·(max − "
    "min), or rotated hue exactly 180 = pure red) fall on either side in float32 vs float64 "
    "(tolerance 0.02 of the lesion). Checked on the worst image (ISIC_0030712): 4.2% of its "
    "lesion pixels change hue bin, and 5.5% have a float64 hue exactly on a bin edge. "
    "OpenCV's float32 `cvtColor` Lab uses its own constants (a slightly different Lab: "
    "tolerance 0.25 in Lab units for its moments).",
    "- **glcm / skimage**: `graycomatrix` has no mask; the lesion is coded 1..32 "
    "(`gray * 32 // 256 + 1`), 0 outside, and row/column 0 of the 33-level matrix dropped: the "
    "same symmetric masked counts as hamfeat, so values agree to rounding. graycoprops lacks 10 "
    "of hamfeat's 19 Haralick properties; they are written in NumPy (in the timed code).",
    "- **glcm / mahotas**: `haralick(ignore_zeros=True)` on the same code. It has 13 "
    "features, 11 of them hamfeat's (after conversion: entropies in log2 → × ln 2; sum "
    "average on levels 1..32 → − 2); its difference variance is the variance of the "
    "p_{x−y} vector, not of |i−j|, and its IMC2 uses log2 entropies in exp(), so those two "
    "are not compared, and dissimilarity, energy, cluster shade/prominence, max probability "
    "and mean are missing, so the mahotas peer does less work than hamfeat. At distances 2 and "
    "4 mahotas offsets the diagonals by (d, ±d) where skimage and hamfeat use "
    "round(d·sin 45°) = (1, ±1) and (3, ±3): the d = 2, 4 rows differ by definition. "
    "(Checked by hand on one image: hamfeat's Haralick kernel on a skimage GLCM with "
    "mahotas' offsets (0, d), (d, ±d), (d, 0) gives mahotas' contrast and ASM at d = 2, 4 to "
    "1e-16.)",
    "- **lbp / skimage**: same riu2 codes as hamfeat (`lbp_uniform` is tested equal to "
    "skimage's 'uniform'). **lbp / mahotas**: `lbp_transform` thresholds with > (skimage "
    "and hamfeat: ≥) and interpolates with its own spline shift, so ties and diagonal "
    "samples give other codes: a different LBP, reported but not within tolerance. Its "
    "rotation-invariant codes are mapped to riu2 labels with a table built once at import "
    "from `mahotas.features._lbp.map` (not timed).",
    "- **wavelet**: `pywt.wavedec2('haar', mode='periodization')` gives the orthonormal Haar "
    "coefficients hamfeat computes by hand (sign conventions of the bands do not matter for "
    "energies and MADs); coefficients beyond the even-truncated mask are not used.",
    "- **shape**: the same OpenCV calls hamfeat makes (a user would write them too), plus "
    "the principal-axis mirror asymmetry in NumPy (hamfeat: a Numba kernel) and on the whole "
    "mask instead of hamfeat's analysis window.",
]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    cv2.setNumThreads(1)
    threadpool_limits(1)
    steady_allocator()
    info = machine()
    libs = [f"opencv {cv2.__version__}"]
    if HAVE_SKIMAGE:
        import skimage

        libs.append(f"scikit-image {skimage.__version__}")
    if HAVE_MAHOTAS:
        libs.append(f"mahotas {mahotas.__version__}")
    if HAVE_PYWT:
        from importlib.metadata import version

        # pywt.__version__ of the 1.9.0 wheel still says 1.8.0: ask the distribution
        libs.append(f"PyWavelets {version('PyWavelets')}")
    libs.append(f"scipy {scipy.__version__}")
    info["libs"] = ", ".join(libs)
    ids = select_images(n)
    t0 = time.perf_counter()
    imgs = load(ids)
    print(f"{len(imgs)} images loaded in {time.perf_counter() - t0:.1f} s", flush=True)
    t0 = time.perf_counter()
    res = run(imgs)
    print(f"timed in {time.perf_counter() - t0:.1f} s")
    md = report(res, info, ids, len(imgs))
    print(md)
    out = {"machine": info, "n_images": len(imgs), "seed": SEED, "repeat": REPEAT, "images": ids,
           "families": res, "not_compared": NOT_COMPARED, "notes": NOTES}  # fmt: skip
    write_md_json(REPORTS / "peers_speed.md", out, md)


if __name__ == "__main__":
    main()
