"""``hamfeat evaluate --html``: the evaluation page (``report.html`` in the report folder).

* hand-made evaluations, known answers: the error gallery is the brute-force choice of the most
  confident wrong predictions (failed, repeated and unlabelled images never in it); the
  decision-rule trade-off at the model's exponent is the report's decision rule, at 0 its
  arg-max; without the model there is no trade-off and the page says why;
* the CLI on generated images with a model trained by the test (``--lesion-map``, ``--masks``
  for some images): every number on the page is the report's (its JSON), the gallery is the
  brute-force choice with the mask each image was scored with, the page opens in headless
  Chromium (non-blank, mask outlines visible, every image decoded, no console error), and a
  page that cannot be written is refused before anything is scored;
* a dozen real HAM10000 images scored by a small model trained on other real images (skips
  without the data).

The browser tests skip without Chromium, except in CI (``CI=true``), where they fail
(the ``browser`` fixture of ``conftest.py``).
"""

from __future__ import annotations

import html as htmllib
import json
import os
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from test_evaluate_external import gen, run, score_table  # noqa: F401 - gen is a fixture

from _paths import ROOT
from chromium import open_page
from conftest import write_mask
from hamfeat.datasets.ham10000 import CLASSES
from hamfeat.evaluate_external import Truth, evaluate_images, evaluate_scores
from hamfeat.evaluate_html import PAGE_NAME, write_evaluate_html
from hamfeat.evaluate_page import decision_tradeoff, error_frame, evaluation_errors, page_data
from hamfeat.score import ScoreResult

REPO = ROOT


# --------------------------------------------------------------------------------------------
# reading the page back
# --------------------------------------------------------------------------------------------


def _text(fragment: str) -> str:
    return htmllib.unescape(re.sub(r"<[^>]+>", " ", fragment)).split()


def row_cells(page: str, row_id: str) -> list[str]:
    """The text of each cell of the table row ``id=row_id``."""
    m = re.search(rf'<tr id="{re.escape(row_id)}"[^>]*>(.*?)</tr>', page, re.S)
    assert m, f"no row {row_id}"
    return [" ".join(_text(c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", m.group(1), re.S)]


def section(page: str, sid: str) -> str:
    m = re.search(rf'<section class="[^"]*" id="{re.escape(sid)}">(.*?)</section>', page, re.S)
    assert m, f"no section {sid}"
    return m.group(1)


def gallery_ids(page: str) -> dict[str, list[tuple[str, str]]]:
    """Per class of the error gallery: ``(image_id, note)`` of each tile, in page order."""
    out = {}
    for block in section(page, "errors").split("<h3>")[1:]:
        cls = block.split()[0].split("<")[0]
        tiles = []
        for tile in block.split('<div class="tile">')[1:]:
            image_id = re.search(r'<div class="id">(.*?)</div>', tile, re.S).group(1)
            note = re.search(r'<div class="small muted">(.*?)</div>', tile, re.S)
            tiles.append((htmllib.unescape(image_id),
                          htmllib.unescape(note.group(1)) if note else ""))
        out[cls] = tiles
    return out


def f3(x) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.3f}"


def brute_force_errors(ok: pd.DataFrame, k: int = 3) -> dict[str, list[str]]:
    """Independently of the gallery code: per true class, the wrong rows of largest
    renormalised p of the predicted class, ties by image_id."""
    out = {}
    for c in CLASSES:
        cand = []
        for _, r in ok.iterrows():
            if r["truth"] != c or r["prediction"] == c:
                continue
            p = np.array([r.get(f"p_{k_}", 0.0) for k_ in CLASSES], float)
            cand.append((-p[CLASSES.index(r["prediction"])] / p.sum(), r["image_id"]))
        if cand:
            out[c] = [i for _, i in sorted(cand)[:k]]
    return out


# --------------------------------------------------------------------------------------------
# hand-made evaluations: known answers
# --------------------------------------------------------------------------------------------


def random_case(n: int = 140, seed: int = 5, alpha: float = 0.5):
    """Random probabilities, a prior-corrected decision rule, a failed image, a repeated one
    and one without truth; ties of p between two wrong images."""
    rng = np.random.default_rng(seed)
    prior = np.array([0.03, 0.05, 0.11, 0.01, 0.11, 0.67, 0.02])
    p = rng.dirichlet(np.ones(7) * 0.6, size=n)
    p[1] = p[0]  # a tie of confidence (same truth below): broken by image_id
    q = p / prior**alpha
    q /= q.sum(axis=1, keepdims=True)
    ids = [f"ISIC_{i:07d}" for i in range(n)]
    truth = {i: CLASSES[k % 7] for k, i in enumerate(ids)}
    truth[ids[1]] = truth[ids[0]]
    ids = [*ids, ids[5], "ISIC_9999999", "ISIC_8888888"]  # repeated, no truth, failed
    p = np.vstack([p, np.full((2, 7), 1 / 7), np.full((1, 7), np.nan)])
    q = np.vstack([q, np.full((2, 7), 1 / 7), np.full((1, 7), np.nan)])
    errors = [None] * (n + 2) + ["corrupt"]
    truth["ISIC_8888888"] = "mel"
    table = score_table(ids, p, q, errors)
    table.loc[n + 2, "prediction"] = None
    model = SimpleNamespace(
        estimator=SimpleNamespace(class_prior_=prior, alpha=alpha), classes=list(CLASSES)
    )
    return table, Truth("t.csv", "image_id,dx", truth), model


def test_error_gallery_is_the_brute_force_choice() -> None:
    table, truth, model = random_case()
    ev = evaluate_scores(ScoreResult(table, model=model), truth)
    ok = ev.evaluated()
    assert len(ok) == 140  # the repeated, failed and unlabelled images are not evaluated
    want = brute_force_errors(ok)
    frame = error_frame(ev)
    got = {c: [frame["image_id"][i] for i in v] for c, v in evaluation_errors(ev).items()}
    assert got == want
    tie = [i for i in got[truth.labels["ISIC_0000000"]] if i in ("ISIC_0000000", "ISIC_0000001")]
    assert tie in ([], ["ISIC_0000000", "ISIC_0000001"], ["ISIC_0000000"])
    # more per class, and every wrong one
    got5 = {c: [frame["image_id"][i] for i in v] for c, v in evaluation_errors(
        ev, per_class=1000).items()}
    assert got5 == brute_force_errors(ok, 1000)
    assert sum(map(len, got5.values())) == int((ok["prediction"] != ok["truth"]).sum())


def test_tradeoff_known_answers(tmp_path: Path) -> None:
    table, truth, model = random_case(alpha=0.5)
    ev = evaluate_scores(ScoreResult(table, model=model), truth)
    assert ev.alpha == 0.5
    (t,), why = decision_tradeoff(ev)
    assert why == "" and t.level == "image" and t.n == ev.image.n
    assert 0.5 in t.alpha and t.alpha[0] == 0.0 and t.alpha[-1] == 1.0
    # the model's point is its decision rule; alpha 0 is argmax p
    assert t.at(0.5) == (ev.image.decision.accuracy, ev.image.decision.balanced_accuracy)
    assert t.at(0.0) == (ev.image.argmax.accuracy, ev.image.argmax.balanced_accuracy)
    # an exponent the report has not got, by hand
    ok = ev.evaluated()
    p = ok[[f"p_{c}" for c in CLASSES]].to_numpy()
    y = np.array([CLASSES.index(c) for c in ok["truth"]])
    pred = np.argmax(p / model.estimator.class_prior_**0.8, axis=1)
    rec = [np.mean(pred[y == j] == j) for j in range(7)]
    assert t.at(0.8) == pytest.approx((np.mean(pred == y), np.mean(rec)), abs=1e-12)
    # the page: the numbers and the table of the trade-off, no model: none, and why
    page = write_evaluate_html(ev, tmp_path / "a").read_text()
    cells = row_cells(page, "image-decision")
    assert cells[1:5] == [f3(ev.image.decision.accuracy), f3(ev.image.decision.balanced_accuracy),
                         f3(ev.image.decision.macro_f1), f3(ev.image.decision.macro_auc)]
    tr = section(page, "tradeoff")
    assert 'id="tradeoff-image"' in tr and "<img" in tr
    assert f'<td class="num model">{f3(ev.image.decision.balanced_accuracy)}</td>' in tr
    ev2 = evaluate_scores(ScoreResult(table), truth)
    page = write_evaluate_html(ev2, tmp_path / "b").read_text()
    assert 'id="no-tradeoff"' in page and "does not hold the model" in page
    assert "<img" not in section(page, "tradeoff")
    # plain arg-max model: no priors, said so
    plain = SimpleNamespace(estimator=SimpleNamespace(), classes=list(CLASSES))
    ev3 = evaluate_scores(ScoreResult(table, model=plain), truth)
    assert decision_tradeoff(ev3)[0] == [] and "plain arg-max" in decision_tradeoff(ev3)[1]
    # without a feature configuration, the gallery lists its images without thumbnails
    data = page_data(ev2)
    assert all(it.rgb is None and "not shown" in it.note
               for items in data.errors.per_class.values() for it in items)


def test_page_of_nothing_evaluated(tmp_path: Path) -> None:
    table, _, _ = random_case(n=14)
    ev = evaluate_scores(ScoreResult(table), Truth("t.csv", "image_id,dx", {"X": "nv"}))
    assert ev.image is None
    page = write_evaluate_html(ev, tmp_path).read_text()
    assert "No image could be evaluated" in page and 'id="errors"' not in page
    assert "Images without a truth row (16)" in page  # listed, as in the Markdown


# --------------------------------------------------------------------------------------------
# the CLI on generated images
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_page(gen: dict, tmp_path_factory) -> dict:  # noqa: F811
    """``hamfeat evaluate --html`` with a lesion map, given masks for 5 images, no PNGs."""
    from test_score_flags import lesion_image

    root = tmp_path_factory.mktemp("evalhtml")
    ids = gen["ids"]
    lmap = root / "lesions.csv"  # images k and k+7 share a class: one lesion each
    lmap.write_text("image_id,lesion_id\n" + "".join(
        f"{i},L{k % 7}\n" for k, i in enumerate(ids)))
    masks = root / "masks"
    for i in range(5):
        write_mask(masks / f"{ids[i]}_segmentation.png", lesion_image(1000 + i)[1])
    rep = root / "rep"
    args = ("--lesion-map", str(lmap), "--masks", str(masks), "--no-plots", "--html")
    p = run("evaluate", str(gen["new"]), "--truth", str(gen["dx_csv"]), "--model",
            str(gen["model"]), "--jobs", "1", "--report-dir", str(rep), *args, env=gen["env"])
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr  # the corrupt image
    assert f"page -> {rep / PAGE_NAME}" in p.stderr
    ev = evaluate_images(gen["new"], gen["dx_csv"], model_path=gen["model"], jobs=1,
                         lesion_map=lmap, masks_dir=masks)
    return {"rep": rep, "page": (rep / PAGE_NAME).read_text(), "ev": ev,
            "json": json.loads((rep / "evaluate_report.json").read_text()), "masks": masks}


def test_cli_page_numbers_are_the_reports(cli_page: dict) -> None:
    page, js, ev = cli_page["page"], cli_page["json"], cli_page["ev"]
    # the report itself is what evaluate writes without --html (no page file named in it)
    assert not list(cli_page["rep"].glob("*.png"))
    assert js["files"] == ["evaluate_scores.csv", "evaluate_isic2018_submission.csv",
                           "evaluate_isic2018_truth.csv"]
    assert js["image"] == ev.to_dict()["image"] and js["lesion"] == ev.to_dict()["lesion"]
    assert js["lesion"]["n"] == 7 and not js["lesion_conflicts"]
    for level in ("image", "lesion"):
        for point in ("decision", "argmax"):
            d = js[level][point]
            cells = row_cells(page, f"{level}-{point}")
            assert cells[1:] == [f3(d["accuracy"]), f3(d["balanced_accuracy"]), f3(d["macro_f1"]),
                             f3(d["macro_auc"]), d["probabilities"]], (level, point)
        for c in CLASSES:
            d, a = js[level]["decision"]["per_class"][c], js[level]["argmax"]["per_class"][c]
            assert row_cells(page, f"{level}-class-{c}") == [
                c, str(d["support"]), f3(d["recall"]), f3(d["precision"]), str(d["n_predicted"]),
                f3(d["auc"]), f3(a["recall"]), f3(a["precision"]), str(a["n_predicted"]),
                f3(a["auc"])]
        # both confusion matrices: counts, and the row shares
        conf = section(page, f"confusion-{level}")
        tables = re.findall(r'<table class="cm">(.*?)</table>', conf, re.S)
        assert len(tables) == 2
        for tab, point in zip(tables, ("decision", "argmax"), strict=True):
            cm = js[level][point]["confusion"]
            rows = re.findall(r"<tr><th>(\w+)</th>(.*?)</tr>", tab, re.S)
            assert [r[0] for r in rows] == list(CLASSES)
            for (_, body), want in zip(rows, cm, strict=True):
                cells = re.findall(r'<td class="[^"]*" style[^>]*>(\d+)<br>'
                                   r'<span class="frac">(\d*)%?</span>', body)
                assert [int(n) for n, _ in cells] == want
                for (_, pct), n in zip(cells, want, strict=True):
                    assert pct == (f"{100 * n / sum(want):.0f}" if sum(want) else "")
    isic = js["isic2018"]
    assert f'<b id="isic-balanced-accuracy">{isic["balanced_accuracy"]:.4f}</b>' in page
    assert f'<b id="isic-macro-auc">{isic["macro_auc"]:.4f}</b>' in page
    counts = section(page, "summary")
    n_ok = js["counts"]["evaluated"]
    assert f'<td>evaluated (scored, with a truth row)</td><td class="num">{n_ok}</td>' in counts
    # the trade-off: per image and per lesion, the model's point is the decision rule
    for level in ("image", "lesion"):
        tr = section(page, "tradeoff")
        m = re.search(rf'<table class="grid" id="tradeoff-{level}">(.*?)</table>', tr, re.S)
        model_cells = re.findall(r'<td class="num model">(.*?)</td>', m.group(1))
        d = js[level]["decision"]
        assert model_cells == [f"{js['decision_rule']['alpha']:g}", f3(d["accuracy"]),
                               f3(d["balanced_accuracy"])]
    # curves of the q probabilities: their AUCs are the report's AUC (q)
    data = page_data(ev)
    for cc in data.curves:
        assert cc.auc == pytest.approx(js["image"]["decision"]["per_class"][cc.cls]["auc"],
                                       abs=1e-12)
    assert "ISIC_0009999.jpg" in section(page, "not-evaluated")  # the failed file, named


def test_cli_page_gallery_is_the_brute_force_choice(cli_page: dict) -> None:
    ev, page = cli_page["ev"], cli_page["page"]
    want = brute_force_errors(ev.evaluated())
    got = gallery_ids(page)
    present = [c for c in CLASSES if ev.image.class_counts[c]]
    assert list(got) == present
    assert {c: [i for i, _ in v] for c, v in got.items() if v} == want
    # each thumbnail with the mask it was scored with: given for the images with a mask file
    given = {p.name.split("_segmentation")[0] for p in cli_page["masks"].iterdir()}
    for tiles in got.values():
        for image_id, note in tiles:
            assert note == ("mask: the given one (--masks)" if image_id in given
                            else "mask: automatic"), image_id
    # the gallery's masks are those the features used: an automatic one equals the pipeline's
    from hamfeat.pipeline import extract_file, prepare_file

    data = page_data(ev)
    items = [it for v in data.errors.per_class.values() for it in v]
    assert items and all(it.rgb is not None for it in items)
    it = items[0]
    path = str(Path(cli_page["ev"].evaluated().set_index("image_id").loc[it.image_id, "path"]))
    mask_file = cli_page["masks"] / f"{it.image_id}_segmentation.png"
    mpath = str(mask_file) if mask_file.exists() else None
    view, _ = prepare_file(path, mpath, ev.result.config)
    assert np.array_equal(view.mask, it.masks[0][0])
    feats = extract_file(path, mpath, ev.result.config)
    row = ev.result.features.set_index("image_id").loc[it.image_id]
    assert feats.mask_source == row["mask_source"] == it.masks[0][1]


def test_cli_page_in_browser(cli_page: dict, browser: str) -> None:
    page = open_page(cli_page["rep"] / PAGE_NAME, chromium=browser, max_height=12000)
    rgb = page.rgb()
    assert rgb.shape[1] == 1280 and rgb.std() > 10, "blank screenshot"
    cyan = (rgb[..., 0] < 90) & (rgb[..., 1] > 200) & (rgb[..., 2] > 200)
    assert cyan.sum() > 200, f"no mask outline visible ({cyan.sum()} cyan pixels)"
    n_tiles = sum(len(v) for v in gallery_ids(cli_page["page"]).values())
    assert n_tiles and len(page.images) == 2 + n_tiles  # curves, trade-off, thumbnails
    assert not page.broken_images, page.broken_images
    assert all(i["src"].startswith("data:image/") for i in page.images)
    assert not page.errors, page.errors


def test_cli_unwritable_page_refused_before_scoring(
    gen: dict, tmp_path: Path, monkeypatch, capsys  # noqa: F811
) -> None:
    rep = tmp_path / "rep"
    (rep / PAGE_NAME).mkdir(parents=True)  # the page's name is taken by a folder
    p = run("evaluate", str(gen["new"]), "--truth", str(gen["dx_csv"]), "--model",
            str(gen["model"]), "--report-dir", str(rep), "--html", env=gen["env"])
    assert p.returncode == 3 and p.stderr.strip() == (
        f"hamfeat evaluate: error: {rep / PAGE_NAME}: is a folder; give a file name"), p.stderr
    assert sorted(f.name for f in rep.iterdir()) == [PAGE_NAME]  # nothing scored or written
    # without --html the page is not this command's: the same folder is fine
    p = run("evaluate", str(gen["new"]), "--truth", str(gen["dx_csv"]), "--model",
            str(gen["model"]), "--jobs", "1", "--report-dir", str(rep), "--no-plots",
            env=gen["env"])
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    # a folder that cannot be written (as root, os.access says so only when told)
    from hamfeat import score
    from hamfeat.cli import main

    def no_scoring(*a, **k):
        raise AssertionError("scored")

    monkeypatch.setattr(score, "score_folder", no_scoring)
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    code = main(["evaluate", str(gen["new"]), "--truth", str(gen["dx_csv"]), "--model",
                 str(gen["model"]), "--report-dir", str(tmp_path / "ro" / "r"), "--html"])
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert code == 3 and err.strip() == (
        f"hamfeat evaluate: error: {tmp_path / 'ro' / 'r'}: cannot write (Permission denied)"), err
    assert not (tmp_path / "ro").exists()
    if os.geteuid() != 0:  # really read-only (root writes anywhere)
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            p = run("evaluate", str(gen["new"]), "--truth", str(gen["dx_csv"]), "--model",
                    str(gen["model"]), "--report-dir", str(ro / "r"), "--html", env=gen["env"])
            assert p.returncode == 3 and "cannot write" in p.stderr, p.stderr
        finally:
            ro.chmod(0o700)


# --------------------------------------------------------------------------------------------
# real images
# --------------------------------------------------------------------------------------------

N_TRAIN_PER_CLASS = 4
N_EVAL = 12


@pytest.mark.slow
def test_real_page(ham_dir: Path, tmp_path: Path, browser: str) -> None:
    """12 real images (held-out lesions, every class) scored by an lr model trained on 28
    other real images (two feature families, for speed); the page in Chromium."""
    meta = pd.read_csv(ham_dir / "HAM10000_metadata.csv")
    meta = meta[[(ham_dir / "images" / f"{i}.jpg").is_file() for i in meta["image_id"]]]
    if meta["dx"].nunique() < len(CLASSES):
        pytest.skip(f"{ham_dir}: not every class has an image")
    train = meta.groupby("dx").head(N_TRAIN_PER_CLASS)
    rest = meta[~meta["lesion_id"].isin(train["lesion_id"])].drop_duplicates("lesion_id")
    held = pd.concat([rest[rest["dx"] == c].head(1 if c in ("df", "vasc") else 2)
                      for c in CLASSES])
    assert len(held) == N_EVAL
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    for image_id in train["image_id"]:  # linked, not copied
        (data / "images" / f"{image_id}.jpg").symlink_to(ham_dir / "images" / f"{image_id}.jpg")
    train.to_csv(data / "HAM10000_metadata.csv", index=False)
    new = tmp_path / "new"
    new.mkdir()
    for image_id in held["image_id"]:
        (new / f"{image_id}.jpg").symlink_to(ham_dir / "images" / f"{image_id}.jpg")
    env = {**os.environ, "HAMFEAT_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": str(REPO)}
    table, model = tmp_path / "f.parquet", tmp_path / "m.skops"
    p = run("features", "--data", str(data), "-o", str(table), "--masks", "auto", "--jobs", "1",
            "--families", "color,shape", env=env)
    assert p.returncode == 0, p.stderr
    p = run("train", "--features", str(table), "-o", str(model), "--model", "lr", env=env)
    assert p.returncode == 0, p.stderr
    truth = tmp_path / "truth.csv"
    held[["image_id", "dx"]].to_csv(truth, index=False)
    rep = tmp_path / "rep"
    p = run("evaluate", str(new), "--truth", str(truth), "--model", str(model), "--jobs", "1",
            "--report-dir", str(rep), "--lesion-map", str(ham_dir / "HAM10000_metadata.csv"),
            "--html", env=env)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    js = json.loads((rep / "evaluate_report.json").read_text())
    page_text = (rep / PAGE_NAME).read_text()
    assert js["counts"]["evaluated"] == len(held)
    d = js["image"]["decision"]
    assert row_cells(page_text, "image-decision")[1:3] == [f3(d["accuracy"]),
                                                           f3(d["balanced_accuracy"])]
    scores = pd.read_csv(rep / "evaluate_scores.csv")
    ok = scores[(scores["level"] == "image")]
    want = brute_force_errors(ok)  # 6 significant digits: the same order here
    got = gallery_ids(page_text)
    assert {c: [i for i, _ in v] for c, v in got.items() if v} == want
    page = open_page(rep / PAGE_NAME, chromium=browser, max_height=12000)
    rgb = page.rgb()
    assert rgb.std() > 10, "blank screenshot"
    cyan = (rgb[..., 0] < 90) & (rgb[..., 1] > 200) & (rgb[..., 2] > 200)
    assert cyan.sum() > 200, cyan.sum()
    n_tiles = sum(len(v) for v in want.values())
    assert len(page.images) == 2 + n_tiles and not page.broken_images, page.images
    assert not page.errors, page.errors
