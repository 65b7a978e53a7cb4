"""Old vs new kernels in one process: this tree's hamfeat._kernels against a git revision's.

The revision's kernel modules (color, glcm, lbp, stats; they import only numpy, numba and
hamfeat._kernels._validate) are extracted with ``git show`` into a temporary package and
imported next to the current ones; both, and the scikit-image / NumPy reference, are timed
interleaved on the same real images (whole 300x225 canonical images, one thread), and their
outputs are compared bit for bit.

    python benchmarks/bench_vs_rev.py [--rev 6023423] [--n 20] [--data DIR]

Prints a table; writes nothing.
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from threadpoolctl import threadpool_limits

from _common import DEFAULT_DATA, ROOT, steady_allocator

MODULES = ("color", "glcm", "lbp", "stats")


def load_rev(rev: str, tmp: Path) -> dict:
    pkg = tmp / "hamfeat_rev_kernels"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name in MODULES:
        src = subprocess.run(
            ["git", "show", f"{rev}:hamfeat/_kernels/{name}.py"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout
        (pkg / f"{name}.py").write_text(src)
    sys.path.insert(0, str(tmp))
    return {n: importlib.import_module(f"hamfeat_rev_kernels.{n}") for n in MODULES}


def best_ms(fn, items, rep: int) -> float:
    best = float("inf")
    for _ in range(rep):
        t0 = time.perf_counter()
        for it in items:
            fn(it)
        best = min(best, (time.perf_counter() - t0) / len(items))
    return best * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", default="6023423", help="git revision to compare against")
    ap.add_argument("--n", type=int, default=20, help="images")
    ap.add_argument("--rep", type=int, default=5, help="best of this many rounds")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    steady_allocator()  # steady-state timings (see _common.steady_allocator)

    from skimage.color import rgb2hsv, rgb2lab
    from skimage.feature import graycomatrix, graycoprops, local_binary_pattern

    from hamfeat._kernels import color, glcm, lbp, stats
    from hamfeat.imageio import decode_image, mask_to_canonical, read_mask, to_canonical

    files = sorted((args.data / "images").glob("*.jpg"))[:: max(1, 10015 // args.n)][: args.n]
    rgbs, masks = [], []
    for f in files:
        c = to_canonical(decode_image(f.read_bytes()))
        m = read_mask(args.data / "masks" / f"{f.stem}_segmentation.png")
        rgbs.append(c)
        masks.append(mask_to_canonical(m, c.shape[:2]))
    grays = [color.rgb_to_gray(c) for c in rgbs]
    labs = [color.rgb_to_lab(c) for c in rgbs]
    qs = [glcm.quantize(g, 32) for g in grays]
    full = np.ones(grays[0].shape, bool)
    d = np.array([1, 2, 4])
    a = np.array([0, np.pi / 4, np.pi / 2, 3 * np.pi / 4])
    props = ("contrast", "dissimilarity", "homogeneity", "ASM", "energy", "correlation",
             "mean", "variance", "std", "entropy")  # fmt: skip

    def sk_glcm(i):
        p = graycomatrix(qs[i], d, a, 32, symmetric=True)
        return [graycoprops(p, name) for name in props]

    with tempfile.TemporaryDirectory() as tmp:
        old = load_rev(args.rev, Path(tmp))
        o_c, o_g, o_l, o_s = old["color"], old["glcm"], old["lbp"], old["stats"]
        cases = {
            # name: (old, new, reference, reference name)
            "rgb->Lab": (lambda i: o_c.rgb_to_lab(rgbs[i]), lambda i: color.rgb_to_lab(rgbs[i]),
                         lambda i: rgb2lab(rgbs[i]), "skimage rgb2lab"),
            "rgb->HSV": (lambda i: o_c.rgb_to_hsv(rgbs[i]), lambda i: color.rgb_to_hsv(rgbs[i]),
                         lambda i: rgb2hsv(rgbs[i]), "skimage rgb2hsv"),
            "GLCM+Haralick": (
                lambda i: o_g.haralick(o_g.glcm(qs[i], full, d, a, 32, True)),
                lambda i: glcm.haralick(glcm.glcm(qs[i], full, d, a, 32, True)),
                sk_glcm, "skimage graycomatrix + graycoprops(10)"),
            "LBP P=8 R=1": (lambda i: o_l.lbp_uniform(grays[i], 8, 1),
                            lambda i: lbp.lbp_uniform(grays[i], 8, 1),
                            lambda i: local_binary_pattern(grays[i], 8, 1, "uniform"),
                            "skimage local_binary_pattern"),
            "LBP P=16 R=2": (lambda i: o_l.lbp_uniform(grays[i], 16, 2),
                             lambda i: lbp.lbp_uniform(grays[i], 16, 2),
                             lambda i: local_binary_pattern(grays[i], 16, 2, "uniform"),
                             "skimage local_binary_pattern"),
            "LBP P=24 R=3": (lambda i: o_l.lbp_uniform(grays[i], 24, 3),
                             lambda i: lbp.lbp_uniform(grays[i], 24, 3),
                             lambda i: local_binary_pattern(grays[i], 24, 3, "uniform"),
                             "skimage local_binary_pattern"),
            "masked histogram Lab L": (
                lambda i: o_s.masked_histogram(
                    np.ascontiguousarray(labs[i][:, :, 0]), masks[i], 10, 0.0, 100.0),
                lambda i: stats.masked_histogram(labs[i], masks[i], 10, 0.0, 100.0, channel=0),
                lambda i: np.histogram(labs[i][:, :, 0][masks[i]], 10, (0.0, 100.0)),
                "np.histogram(lab[..., 0][mask])"),
            "masked moments Lab": (lambda i: o_s.masked_moments(labs[i], masks[i]),
                                   lambda i: stats.masked_moments(labs[i], masks[i]),
                                   None, ""),
        }
        idx = list(range(len(files)))
        print(f"{len(files)} images, 300x225, best of {args.rep}, vs revision {args.rev}\n")
        print(f"{'kernel':24s} {'old ms':>8s} {'new ms':>8s} {'new/old':>8s} {'ref ms':>8s} "
              f"{'ref/old':>8s} {'ref/new':>8s} same  reference")
        with threadpool_limits(1):
            for name, (f_old, f_new, f_ref, ref_name) in cases.items():
                same = all(
                    np.asarray(f_old(i)).tobytes() == np.asarray(f_new(i)).tobytes()
                    for i in idx
                )
                t_old = t_new = t_ref = float("inf")
                for _ in range(args.rep):  # interleaved rounds: same machine load
                    t_old = min(t_old, best_ms(f_old, idx, 1))
                    t_new = min(t_new, best_ms(f_new, idx, 1))
                    if f_ref is not None:
                        t_ref = min(t_ref, best_ms(f_ref, idx, 1))
                r = (f"{t_ref:8.3f} {t_ref / t_old:7.1f}x {t_ref / t_new:7.1f}x"
                     if f_ref is not None else f"{'':8s} {'':8s} {'':8s}")
                print(f"{name:24s} {t_old:8.3f} {t_new:8.3f} {t_old / t_new:7.1f}x {r} "
                      f"{'yes' if same else 'NO ':4s} {ref_name}")


if __name__ == "__main__":
    main()
