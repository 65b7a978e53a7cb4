"""The example evaluation page (``benchmarks/reports/evaluate_html/report.html``) from real
images, and the README's screenshot of it (``docs/evaluate_page.png``).

From the real HAM10000 folder (default ``../shared/data/ham10000``), seeded:

* 60 held-out images (whole lesions, about 9 per class: akiec, bcc, bkl, mel, nv 9, df 8,
  vasc 7), linked into ``out/evaluate_html_example/images/`` with their truth
  ``out/evaluate_html_example/truth.csv`` (``image_id,dx`` from the metadata);
* a training folder of 305 images of the other lesions (linked), nv-heavy as HAM10000 is
  (:data:`TRAIN`: nv 120, bkl and mel 40, bcc 30, 25 of the others; so the model's class
  priors differ and its decision rule is not the arg-max), whose features
  (automatic masks) and a logistic regression are computed by the commands themselves::

    hamfeat features --data out/evaluate_html_example/train -o .../train.parquet --masks auto
    hamfeat train --features .../train.parquet -o .../model_lr.skops --model lr

* then::

    hamfeat evaluate out/evaluate_html_example/images --truth out/evaluate_html_example/truth.csv \\
        --model out/evaluate_html_example/model_lr.skops \\
        --lesion-map ../shared/data/ham10000/HAM10000_metadata.csv \\
        --report-dir benchmarks/reports/evaluate_html --html

With ``--screenshot PNG`` (needs Chromium, and ``tests/chromium.py``), the page is opened in
headless Chromium with the per-lesion and per-class tables, the curves and the lists hidden by
one added style rule (the page itself is unchanged), scaled to 960 px wide and cut to
``--height`` px. About a minute on 2 cores. Usage::

    python benchmarks/evaluate_html_example.py [--data DIR] [--screenshot docs/evaluate_page.png]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hamfeat.datasets.ham10000 import CLASSES  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ham10000"
WORK = Path("out") / "evaluate_html_example"
REPORT = Path("benchmarks") / "reports" / "evaluate_html"
HELD = {"akiec": 9, "bcc": 9, "bkl": 9, "df": 8, "mel": 9, "nv": 9, "vasc": 7}
TRAIN = {"akiec": 25, "bcc": 30, "bkl": 40, "df": 25, "mel": 40, "nv": 120, "vasc": 25}
SEED = 0
#: Sections left out of the screenshot (not of the page).
HIDDEN = ("#per-class-lesion", "#confusion-lesion", "#curves", "#not-evaluated", "#notes")


def split(meta: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The held-out images (whole lesions, :data:`HELD` images per class at most) and the
    training images (:data:`TRAIN` per class, other lesions)."""
    rng = np.random.default_rng(SEED)
    held = []
    for c in CLASSES:
        les = meta.loc[meta["dx"] == c, "lesion_id"].drop_duplicates().to_numpy()
        n = 0
        for lesion in rng.permutation(les):
            rows = meta[meta["lesion_id"] == lesion]
            if n + len(rows) > HELD[c]:
                continue
            held.append(rows)
            n += len(rows)
            if n == HELD[c]:
                break
    held_df = pd.concat(held)
    rest = meta[~meta["lesion_id"].isin(held_df["lesion_id"])]
    train = pd.concat(
        [
            rest[rest["dx"] == c].sample(min(TRAIN[c], int((rest["dx"] == c).sum())),
                                         random_state=SEED)
            for c in CLASSES
        ]
    )
    return held_df, train


def link(ids, src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for image_id in ids:
        target = dst / f"{image_id}.jpg"
        if target.is_symlink() or target.exists():
            target.unlink()
        target.symlink_to(src / f"{image_id}.jpg")


def screenshot(page: Path, out: Path, height: int) -> None:
    """The page in headless Chromium, some sections hidden, 960 px wide, cut to ``height``."""
    sys.path.insert(0, str(ROOT / "tests"))
    from PIL import Image

    from chromium import open_page

    rule = "<style>" + ", ".join(HIDDEN) + " { display: none; }</style>\n</head>"
    text = page.read_text(encoding="utf-8").replace("</head>", rule, 1)
    with tempfile.TemporaryDirectory() as tmp:
        view = Path(tmp) / "view.html"
        view.write_text(text, encoding="utf-8")
        rep = open_page(view, max_height=16000)
    if rep.errors or rep.broken_images:
        raise SystemExit(f"the page did not render cleanly: {rep.errors} {rep.broken_images}")
    im = Image.open(io.BytesIO(rep.screenshot)).convert("RGB")
    im = im.resize((960, round(im.height * 960 / im.width)), Image.LANCZOS)
    im = im.crop((0, 0, 960, min(im.height, height)))
    out.parent.mkdir(parents=True, exist_ok=True)
    im.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
    print(f"{out}: {im.width}x{im.height}, {out.stat().st_size / 1e6:.2f} MB", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--screenshot", metavar="PNG", help="also write the README's screenshot")
    ap.add_argument("--height", type=int, default=2600, help="screenshot height (px)")
    args = ap.parse_args(argv)
    from hamfeat.cli import main as hamfeat

    data = Path(os.path.abspath(args.data))
    os.chdir(ROOT)
    data_arg = os.path.relpath(data, ROOT)
    meta = pd.read_csv(data / "HAM10000_metadata.csv")
    held, train = split(meta)
    print(f"held out {len(held)} images ({held['lesion_id'].nunique()} lesions): "
          f"{held['dx'].value_counts().to_dict()}; training {len(train)}", file=sys.stderr)
    link(held["image_id"], data / "images", WORK / "images")
    held[["image_id", "dx"]].to_csv(WORK / "truth.csv", index=False)
    link(train["image_id"], data / "images", WORK / "train" / "images")
    train.to_csv(WORK / "train" / "HAM10000_metadata.csv", index=False)
    table, model = WORK / "train.parquet", WORK / "model_lr.skops"
    steps = [
        ["features", "--data", str(WORK / "train"), "-o", str(table), "--masks", "auto"],
        ["train", "--features", str(table), "-o", str(model), "--model", "lr"],
        ["evaluate", str(WORK / "images"), "--truth", str(WORK / "truth.csv"),
         "--model", str(model), "--lesion-map", f"{data_arg}/HAM10000_metadata.csv",
         "--report-dir", str(REPORT), "--html"],
    ]
    for step in steps:
        code = hamfeat(step)
        if code != 0:
            return code
    if args.screenshot:
        screenshot(REPORT / "report.html", Path(args.screenshot), args.height)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
