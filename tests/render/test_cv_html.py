"""``hamfeat cv --html``: the out-of-fold table, the galleries' selection and the page.

* generated data, known answers: :func:`lowest_k` (the bound-ordered search), the segmentation
  gallery with a stand-in image source whose Dice values are known, the error gallery;
* a synthetic-table CV (runs everywhere): ``cv_oof.parquet`` reproduces the report's
  confusion matrix, and the page (with the ablation chart, without image galleries) opens in
  headless Chromium with every image decoded and no console error;
* a CV of a small real subset (rows of the real automatic-mask table, real images and
  reference masks): the page in Chromium (non-blank, every image decoded, both outline colours
  visible, no console error), and the segmentation gallery equals the brute-force lowest Dice.

Real-data tests skip without the data; the browser tests skip without Chromium, except in CI
(``CI=true``), where they fail (as ``test_browser.py``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _html_data import run
from _paths import ROOT
from chromium import open_page
from hamfeat.cv_page import (
    ImageSource,
    area_dice_bound,
    dice,
    error_gallery,
    lowest_k,
    segmentation_gallery,
    table_feature_config,
)
from hamfeat.datasets.ham10000 import CLASSES
from hamfeat.evaluation.cv import run_cv
from hamfeat.pipeline import FeatureConfig
from hamfeat.synthetic import make_synthetic_table

REPO = ROOT


# --------------------------------------------------------------------------------------------
# generated data: known answers
# --------------------------------------------------------------------------------------------


def test_lowest_k_known_answers():
    rng = np.random.default_rng(0)
    values = rng.uniform(0, 1, 500)
    bounds = np.minimum(1.0, values + rng.uniform(0, 0.05, 500))  # valid upper bounds
    calls = []

    def value(i):
        calls.append(i)
        return float(values[i])

    # no budget: every value, the brute-force answer
    sel = lowest_k(bounds, value, 5)
    assert [i for i, _ in sel.items] == list(np.argsort(values)[:5])
    assert [v for _, v in sel.items] == sorted(values)[:5]
    assert sel.exact and sel.n_computed == len(calls) == sel.n_candidates == 500
    # a budget: the candidates of lowest bound only, in that order (here they hold the answer)
    calls.clear()
    sel = lowest_k(bounds, value, 5, budget=30)
    assert calls == list(np.argsort(bounds, kind="stable")[:30])
    assert [i for i, _ in sel.items] == list(np.argsort(values)[:5])
    assert not sel.exact and sel.n_computed == 30
    # equal bounds: candidate order
    sel = lowest_k(np.ones(50), lambda i: float(values[i]), 3, budget=10)
    assert not sel.exact and sel.n_computed == 10
    assert [i for i, _ in sel.items] == list(np.argsort(values[:10])[:3])
    # values that cannot be computed are left out
    sel = lowest_k(np.zeros(4), lambda i: None if i % 2 else float(i), 3)
    assert sel.items == [(0, 0.0), (2, 2.0)] and sel.exact and sel.n_computed == 4


def test_area_bound_holds():
    rng = np.random.default_rng(1)
    for _ in range(200):
        a = rng.random((20, 30)) < rng.uniform(0.05, 0.9)
        b = rng.random((20, 30)) < rng.uniform(0.05, 0.9)
        assert dice(a, b) <= area_dice_bound(a.mean(), b.mean()) + 1e-12
    assert float(area_dice_bound(0.0, 0.0)) == 1.0
    assert float(area_dice_bound(0.2, 0.2)) == 1.0
    assert float(area_dice_bound(np.nan, 0.2)) == 1.0


class _Source(ImageSource):
    """Generated images: the automatic mask is a fixed square, the reference masks are given."""

    def __init__(self, table, refs, auto):
        super().__init__(table, {}, FeatureConfig())
        self.refs, self.auto, self.segmented = refs, auto, []

    def canonical(self, i):
        return np.zeros((*self.auto.shape, 3), np.uint8)

    def reference(self, i, long_side):
        return self.refs[i]

    def reference_area(self, i):
        return None if self.refs[i] is None else float(self.refs[i].mean())

    def automatic(self, rgb):
        self.segmented.append(1)
        return self.auto


def _square(h, w, top, left, side):
    m = np.zeros((h, w), bool)
    m[top : top + side, left : left + side] = True
    return m


def test_segmentation_gallery_known_answer():
    h, w = 60, 80
    auto = _square(h, w, 20, 30, 20)
    rows, refs = [], []
    # nv: the same square shifted right by 0..9 px: same area (bound 1), Dice 1 - shift / 20
    for s in range(10):
        rows.append(("nv", f"nv_{s}"))
        refs.append(_square(h, w, 20, 30 + s, 20))
    # mel: centred squares of sides 4..20 inside the automatic one: Dice = the area bound
    for side in (20, 16, 12, 8, 4, 18, 14):
        rows.append(("mel", f"mel_{side}"))
        off = (20 - side) // 2
        refs.append(_square(h, w, 20 + off, 30 + off, side))
    # bcc: no reference mask at all
    rows.append(("bcc", "bcc_0"))
    refs.append(None)
    table = pd.DataFrame(rows, columns=["dx", "image_id"])
    table["mask_source"] = "auto"
    table["shape_area_frac"] = auto.mean()
    src = _Source(table, refs, auto)
    g = segmentation_gallery(table, src, per_class=3)  # budget above every class: exhaustive
    assert [it.image_id for it in g.per_class["nv"]] == ["nv_9", "nv_8", "nv_7"]
    assert [round(it.dice, 6) for it in g.per_class["nv"]] == [0.55, 0.6, 0.65]
    assert [it.image_id for it in g.per_class["mel"]] == ["mel_4", "mel_8", "mel_12"]
    assert g.per_class["mel"][0].dice == pytest.approx(2 * 16 / (16 + 400))
    assert "all 7 segmented" in g.counts["mel"] and "all 10 segmented" in g.counts["nv"]
    assert g.per_class["bcc"] == [] and "0 with a reference mask" in g.counts["bcc"]
    assert len(src.segmented) == 17
    assert [k for _, k in g.per_class["nv"][0].masks] == ["auto", "reference"]
    # a budget of 3: mel's candidates are its 3 smallest references (lowest area bound), nv's
    # (equal areas, bound 1) its first 3 in table order
    src.segmented.clear()
    g = segmentation_gallery(table, src, per_class=2, budget=3)
    assert [it.image_id for it in g.per_class["mel"]] == ["mel_4", "mel_8"]
    assert [it.image_id for it in g.per_class["nv"]] == ["nv_2", "nv_1"]
    assert "3 candidates segmented" in g.counts["nv"] and len(src.segmented) == 6
    assert "area" in g.how and "missed" in g.how
    # a table without automatic-mask areas: table order, and the page says so
    g = segmentation_gallery(table.drop(columns="shape_area_frac"), src, per_class=2, budget=4)
    assert [it.image_id for it in g.per_class["mel"]] == ["mel_8", "mel_12"]  # of 20, 16, 12, 8
    assert "table order" in g.how
    # nor with the data set's masks (the table's areas are theirs, not the automatic masks')
    g = segmentation_gallery(table.assign(mask_source="given"), src, per_class=2, budget=4)
    assert [it.image_id for it in g.per_class["mel"]] == ["mel_8", "mel_12"]
    assert "table order" in g.how


def test_error_gallery_known_answer():
    rows = [
        # image, dx, prediction, p(predicted)
        ("a", "mel", "nv", 0.9),
        ("b", "mel", "nv", 0.6),
        ("c", "mel", "bkl", 0.95),
        ("d", "mel", "mel", 0.99),  # right: never shown
        ("e", "nv", "mel", 0.5),
        ("f", "mel", "nv", 0.6),  # ties with b: by image_id
    ]
    recs = []
    for image_id, dx, pred, p in rows:
        rec = {"image_id": image_id, "dx": dx, "prediction": pred, "seed": 0, "fold": 0}
        rest = (1 - p) / (len(CLASSES) - 1)
        rec.update({f"p_{c}": (p if c == pred else rest) for c in CLASSES})
        recs.append(rec)
    oof = pd.DataFrame(recs)
    other = oof.assign(seed=1, prediction=oof["dx"])  # another seed, all right
    both = pd.concat([oof, other], ignore_index=True)
    got = error_gallery(both, per_class=3)
    assert {c: [both["image_id"][i] for i in v] for c, v in got.items()} == {
        "mel": ["c", "a", "b"],
        "nv": ["e"],
    }
    assert error_gallery(both, seed=1) == {}


# --------------------------------------------------------------------------------------------
# synthetic CV: the out-of-fold table and a page without images
# --------------------------------------------------------------------------------------------


def test_oof_table_and_page_of_synthetic_cv(tmp_path, browser):
    path = tmp_path / "t.parquet"
    make_synthetic_table(120, seed=3).to_parquet(path)
    out = tmp_path / "r"
    r = run_cv(
        path, out, models=("lr", "knn"), baseline_seeds=(0,), ablations=True, html=True,
        command="pytest cv --html",
    )
    js = json.loads((out / "cv_report.json").read_text())
    best = js["best_model"]
    assert js["oof_file"] == "cv_oof.parquet" and js["html"] == "report.html"
    md = (out / "cv_report.md").read_text()
    assert f"best model ({best}): `cv_oof.parquet`; the page: `report.html`" in md
    oof = pd.read_parquet(out / "cv_oof.parquet")
    t = pd.read_parquet(path)
    assert len(oof) == len(t) and list(oof["image_id"]) == list(t["image_id"].astype(str))
    assert {f"p_{c}" for c in CLASSES} <= set(oof.columns)
    assert set(oof["fold"]) == set(range(5))
    # the table's predictions are the report's cross-fitted operating point
    cm = pd.crosstab(
        pd.Categorical(oof["dx"], CLASSES), pd.Categorical(oof["prediction"], CLASSES),
        dropna=False,
    ).to_numpy()
    assert cm.tolist() == js["models"][best]["per_seed"][0]["image"]["crossfit"]["confusion"]
    assert cm.tolist() == r["models"][best]["per_seed"][0]["image"]["crossfit"]["confusion"]
    html = (out / "report.html").read_text()
    for anchor in ('id="confusion"', 'id="curves"', 'id="tradeoff"', 'id="ablation"',
                   'id="errors"', "pytest cv --html"):
        assert anchor in html
    assert 'id="segmentation"' not in html and "no image galleries" in html
    page = open_page(out / "report.html", chromium=browser, max_height=8000)
    assert page.rgb().std() > 10
    assert len(page.images) == 3  # curves, trade-off, ablation; no image files
    assert not page.broken_images and not page.errors, (page.broken_images, page.errors)


# --------------------------------------------------------------------------------------------
# a real subset
# --------------------------------------------------------------------------------------------


def _real_table_path() -> Path | None:
    env = os.environ.get("HAMFEAT_FEATURES_AUTO")
    for p in ([Path(env)] if env else []) + [
        REPO / "out" / "features_auto.parquet",
        REPO.parent / "main" / "out" / "features_auto.parquet",
    ]:
        if p.is_file():
            return p
    return None


def _pick(dx: np.ndarray) -> np.ndarray:
    """Rows of the real subset: nv 60, 25 of each other class (seeded)."""
    rng = np.random.default_rng(0)
    return np.sort(np.concatenate(
        [
            rng.choice(np.flatnonzero(dx == c), min(60 if c == "nv" else 25, (dx == c).sum()),
                       replace=False)
            for c in CLASSES
        ]
    ))


def _build_real_table(ham_dir: Path, root: Path) -> Path:
    """No real table made by `make features` here (as in CI): extract the subset's own, from a
    folder of links to the chosen real images and masks, with the classical automatic masks."""
    meta = pd.read_csv(ham_dir / "HAM10000_metadata.csv")
    meta = meta.iloc[_pick(meta["dx"].astype(str).to_numpy())]
    folder = root / "ham"
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    for i in meta["image_id"]:
        (folder / "images" / f"{i}.jpg").symlink_to(ham_dir / "images" / f"{i}.jpg")
        m = ham_dir / "masks" / f"{i}_segmentation.png"
        if m.is_file():
            (folder / "masks" / m.name).symlink_to(m)
    meta.to_csv(folder / "HAM10000_metadata.csv", index=False)
    out = root / "features_auto.parquet"
    p = run("features", "--data", str(folder), "-o", str(out), "--masks", "auto",
            "--jobs", "2", env={**os.environ, "PYTHONPATH": str(REPO),
                                "HAMFEAT_CACHE_DIR": str(root / "cache")})
    assert p.returncode == 0, p.stderr
    return out


@pytest.fixture(scope="module")
def real_subset(ham_dir, tmp_path_factory) -> dict:
    """210 real images (nv 60, 25 of each other class) with their automatic-mask rows: from the
    table `make features` wrote when there is one, else extracted here."""
    if not (ham_dir / "HAM10000_metadata.csv").is_file():
        pytest.skip(f"no real HAM10000 folder at {ham_dir}")
    src = _real_table_path() or _build_real_table(ham_dir, tmp_path_factory.mktemp("cvsrc"))
    full = pd.read_parquet(src)
    pick = _pick(full["dx"].astype(str).to_numpy()) if len(full) > 300 else np.arange(len(full))
    sub = full.iloc[pick].reset_index(drop=True)
    sub.attrs = full.attrs
    root = tmp_path_factory.mktemp("cvreal")
    path = root / "subset.parquet"
    sub.to_parquet(path)
    seg_name = sub.attrs.get("hamfeat", {}).get("segmenter_file")
    if seg_name:  # a learned segmenter's masks: it is looked for beside the table
        seg = Path(src).parent / Path(seg_name).name
        if not seg.is_file():
            pytest.skip(f"the real table's learned segmenter {seg} is missing")
        (root / seg.name).symlink_to(seg.resolve())
    return {"root": root, "path": path, "table": sub, "data": ham_dir}


def test_real_cv_page_in_browser(real_subset, browser):
    root = real_subset["root"]
    out = root / "report"
    p = run(
        "cv", "--features", str(real_subset["path"]), "--models", "lr", "--no-ablations",
        "--report-dir", str(out), "--html", "--data", str(real_subset["data"]),
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert p.returncode == 0, p.stderr
    assert "writing the page" in p.stderr
    js = json.loads((out / "cv_report.json").read_text())
    oof = pd.read_parquet(out / "cv_oof.parquet")
    assert len(oof) == len(real_subset["table"])
    html = (out / "report.html").read_text()
    assert 'id="segmentation"' in html and 'id="errors"' in html
    assert js["command"] in html or "hamfeat cv" in html
    page = open_page(out / "report.html", chromium=browser, max_height=16000)
    rgb = page.rgb()
    assert rgb.shape[1] == 1280 and rgb.std() > 10, "blank screenshot"
    cyan = (rgb[..., 0] < 90) & (rgb[..., 1] > 200) & (rgb[..., 2] > 200)
    magenta = (rgb[..., 0] > 200) & (rgb[..., 1] < 90) & (rgb[..., 2] > 200)
    assert cyan.sum() > 500 and magenta.sum() > 500, (cyan.sum(), magenta.sum())
    # 2 figures (curves, trade-off), 3 per class in each gallery (every class has > 3 images
    # with a reference mask, and > 3 errors of lr on 25 images)
    n_err = sum(min(3, int(((oof.dx == c) & (oof.prediction != c)).sum())) for c in CLASSES)
    assert len(page.images) == 2 + 3 * len(CLASSES) + n_err, len(page.images)
    assert not page.broken_images, page.broken_images
    assert all(i["width"] > 0 and i["height"] > 0 for i in page.images)
    assert not page.errors, page.errors
    (root / "shot.png").write_bytes(page.screenshot)


def test_real_segmentation_gallery_is_the_lowest_dice(real_subset):
    """With every class within the budget, the gallery is the brute-force lowest Dice; the
    areas it ranks by are the automatic masks' (the table's) and bound the Dice."""
    table = real_subset["table"]
    config, problem = table_feature_config(table, real_subset["path"])
    assert problem is None
    src = ImageSource.from_data_dir(table, real_subset["data"], config)
    g = segmentation_gallery(table, src, per_class=3)
    for c in CLASSES:
        dices = []
        for i in np.flatnonzero(table["dx"].to_numpy() == c):
            rgb = src.canonical(int(i))
            ref = src.reference(int(i), 300)
            if rgb is None or ref is None:
                continue
            auto = src.automatic(rgb)
            # the table's area is the automatic mask's: the bound is valid
            assert auto.mean() == pytest.approx(table["shape_area_frac"].iloc[i], abs=1e-9)
            assert dice(auto, ref) <= area_dice_bound(auto.mean(), ref.mean()) + 1e-12
            dices.append((dice(auto, ref), str(table["image_id"].iloc[i])))
        want = sorted(dices)[:3]
        got = [(it.dice, it.image_id) for it in g.per_class[c]]
        assert got == want, c
        assert "the lowest of the class" in g.counts[c]


def test_cli_html_options_refused_before_work(tmp_path, capsys):
    from hamfeat.cli import main

    path = tmp_path / "t.parquet"
    make_synthetic_table(30, seed=1).to_parquet(path)
    rep = tmp_path / "r"
    code = main(["cv", "--features", str(path), "--report-dir", str(rep), "--html",
                 "--data", str(tmp_path / "nowhere")])
    assert code == 3 and "nowhere" in capsys.readouterr().err
    assert not rep.exists()
    code = main(["cv", "--dataset", "cxr14", "--features", str(path), "--html"])
    assert code == 2
    assert "--html only applies to dermoscopy" in capsys.readouterr().err


def test_table_feature_config_finds_the_tables_segmenter(tmp_path):
    """A table made with a learned segmenter: the page re-makes its masks with that segmenter
    (found beside the table, checked by hash), never silently with the classical one."""
    from hamfeat.segmenter import file_sha

    table = make_synthetic_table(30, seed=1)
    config, problem = table_feature_config(table, tmp_path / "t.parquet")
    assert problem is None and config.segmenter is None and config.long_side == 256
    seg = tmp_path / "seg.skops"
    seg.write_bytes(b"not really a segmenter, only its hash matters here")
    table.attrs["hamfeat"]["config"]["segmenter"] = file_sha(seg)
    table.attrs["hamfeat"]["segmenter_file"] = "/elsewhere/seg.skops"
    config, problem = table_feature_config(table, tmp_path / "t.parquet")
    assert problem is None and config.segmenter == str(seg)
    config, problem = table_feature_config(table, tmp_path / "sub" / "t.parquet")
    assert config is None and "seg.skops was not found beside the table" in problem
    seg.write_bytes(b"another file")
    config, problem = table_feature_config(table, tmp_path / "t.parquet")
    assert config is None and "another hash" in problem
