"""``hamfeat evaluate``: truth files, known answers, reports, the CLI in a subprocess, real
files, and equality with the official ISIC 2018 scorer (``isic-challenge-scoring``)."""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import METADATA_HEADER, write_jpeg, write_mask
from hamfeat.datasets.ham10000 import CLASSES, ISIC2018_COLUMNS
from hamfeat.errors import DatasetError
from hamfeat.evaluate_external import (
    REPORT_FILES,
    Evaluation,
    evaluate_scores,
    read_file_list,
    read_truth,
    write_report,
)
from hamfeat.score import ScoreResult

ISIC_HEADER = "image," + ",".join(ISIC2018_COLUMNS)


def run(*args: str, env: dict | None = None, cwd: Path | None = None):
    return subprocess.run(
        [sys.executable, "-m", "hamfeat", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=900,
    )


def onehot(dx: str) -> str:
    return ",".join("1" if c.lower() == dx else "0" for c in ISIC2018_COLUMNS)


# --------------------------------------------------------------------------------------------
# hand computation, independent of scikit-learn
# --------------------------------------------------------------------------------------------


def hand_auc(pos: list[float], neg: list[float]) -> float:
    """Mann-Whitney: the share of (positive, negative) pairs ranked right (ties count 1/2)."""
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg)
    return wins / (len(pos) * len(neg))


def hand_metrics(truth: list[str], proba: np.ndarray) -> dict:
    pred = [CLASSES[j] for j in proba.argmax(axis=1)]
    n = len(truth)
    recall, precision, auc = {}, {}, {}
    for j, c in enumerate(CLASSES):
        tp = sum(t == c and p == c for t, p in zip(truth, pred, strict=True))
        n_true = sum(t == c for t in truth)
        n_pred = sum(p == c for p in pred)
        recall[c] = tp / n_true if n_true else math.nan
        precision[c] = tp / n_pred if n_pred else 0.0
        pos = [proba[i, j] for i in range(n) if truth[i] == c]
        neg = [proba[i, j] for i in range(n) if truth[i] != c]
        auc[c] = hand_auc(pos, neg) if pos and neg else math.nan
    present = [c for c in CLASSES if not math.isnan(recall[c])]
    defined = [auc[c] for c in CLASSES if not math.isnan(auc[c])]
    confusion = [[sum(t == a and p == b for t, p in zip(truth, pred, strict=True))
                  for b in CLASSES] for a in CLASSES]
    return {
        "accuracy": sum(t == p for t, p in zip(truth, pred, strict=True)) / n,
        "balanced_accuracy": sum(recall[c] for c in present) / len(present),
        "macro_auc": sum(defined) / len(defined),
        "recall": recall,
        "precision": precision,
        "auc": auc,
        "confusion": confusion,
        "pred": pred,
    }


def check_point(pm, expected: dict) -> None:
    assert pm.accuracy == pytest.approx(expected["accuracy"], abs=1e-12)
    assert pm.balanced_accuracy == pytest.approx(expected["balanced_accuracy"], abs=1e-12)
    assert pm.macro_auc == pytest.approx(expected["macro_auc"], abs=1e-12)
    assert pm.confusion == expected["confusion"]
    for c in CLASSES:
        got = pm.per_class[c]
        for key in ("recall", "auc"):
            want = expected[key][c]
            if math.isnan(want):
                assert math.isnan(getattr(got, key)), (c, key)
            else:
                assert getattr(got, key) == pytest.approx(want, abs=1e-12), (c, key)
        assert got.precision == pytest.approx(expected["precision"][c], abs=1e-12)
    for i, row in enumerate(expected["confusion"]):
        if sum(row):
            np.testing.assert_allclose(pm.confusion_normalised[i], np.array(row) / sum(row))
        else:
            assert all(math.isnan(v) for v in pm.confusion_normalised[i])


def score_table(ids, p: np.ndarray, q: np.ndarray, errors=None, paths=None) -> pd.DataFrame:
    t = pd.DataFrame({"path": paths or [f"/x/{i}.jpg" for i in ids], "image_id": ids})
    t["prediction"] = [CLASSES[j] for j in q.argmax(axis=1)]
    for j, c in enumerate(CLASSES):
        t[f"p_{c}"] = p[:, j]
    for j, c in enumerate(CLASSES):
        t[f"q_{c}"] = q[:, j]
    t["error"] = errors or [None] * len(ids)
    return t


def two_class(values: dict[str, float]) -> list[float]:
    return [values.get(c, 0.0) for c in CLASSES]


# --------------------------------------------------------------------------------------------
# truth files
# --------------------------------------------------------------------------------------------


def test_read_truth_isic_any_order_floats_and_weights(tmp_path: Path) -> None:
    cols = ["VASC", "image", "NV", "MEL", "BCC", "DF", "AKIEC", "BKL", "score_weight"]
    rows = [",".join(cols)]
    for i, dx in enumerate(["mel", "nv", "vasc", "df"]):
        vals = {c: ("1.0" if c.lower() == dx else "0.0") for c in cols if c.isupper()}
        vals["image"] = f"ISIC_{i:07d}.jpg"  # a suffix is taken off
        vals["score_weight"] = "0" if i == 3 else "1.0"
        rows.append(",".join(vals[c] for c in cols))
    rows.append(",".join("ISIC_0035068" if c == "image" else "1" if c == "NV" else
                         "1" if c == "score_weight" else "0" for c in cols))
    path = tmp_path / "gt.csv"
    path.write_text("\ufeff" + "\n".join(rows) + "\n\n")  # a BOM, a blank line
    t = read_truth(path)
    assert t.format == "isic2018"
    assert t.labels == {"ISIC_0000000": "mel", "ISIC_0000001": "nv", "ISIC_0000002": "vasc"}
    assert t.excluded == {
        "ISIC_0000003": "score_weight 0 in the truth file",
        "ISIC_0035068": "weight 0 in the official ISIC scorer",
    }


def test_read_truth_dx_table(tmp_path: Path) -> None:
    path = tmp_path / "meta.csv"
    path.write_text(METADATA_HEADER + "HAM_1,ISIC_0000001,MEL,histo,40,male,back\n"
                    "HAM_1,ISIC_0000002, nv ,histo,40,male,back\n")
    t = read_truth(path)
    assert t.format == "image_id,dx"
    assert t.labels == {"ISIC_0000001": "mel", "ISIC_0000002": "nv"}


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("image_id,dx\na,nv\nb,melanoma\n", ":3:", "unknown class 'melanoma'"),
        (ISIC_HEADER + "\na," + onehot("nv") + "\nb,1,1,0,0,0,0,0\n", ":3:", "not one-hot"),
        (ISIC_HEADER + "\na,0,0,0,0,0,0,0\n", ":2:", "not one-hot (0 classes"),
        (ISIC_HEADER + "\na,2,0,0,0,0,0,0\n", ":2:", "MEL is '2'; expected 0 or 1"),
        (ISIC_HEADER + "\na,yes,0,0,0,0,0,0\n", ":2:", "MEL is 'yes'"),
        ("image_id,dx\na,nv\nb,mel\na.jpg,nv\n", ":4:", "duplicate image id a (first on line 2)"),
        ("image,diagnosis\na,nv\n", ":1:", "not a truth file"),
        ("", "", "truth file is empty"),
        ("image_id,dx\na,nv,extra\n", ":2:", "row has 3 field(s), the header 2"),
        (ISIC_HEADER + ",weight\na," + onehot("nv") + ",1\n", ":1:", "unexpected column(s) weight"),
        (ISIC_HEADER + ",score_weight\na," + onehot("nv") + ",0.5\n", ":2:", "score_weight"),
        ("image_id,dx\n,nv\n", ":2:", "empty image id"),
    ],
)
def test_bad_truth_is_one_line_naming_file_and_line(
    tmp_path: Path, text: str, where: str, what: str
) -> None:
    path = tmp_path / "truth.csv"
    path.write_text(text)
    with pytest.raises(DatasetError) as err:
        read_truth(path)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{path}{where}") and what in msg, msg


def test_missing_truth_and_file_list(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="truth file not found"):
        read_truth(tmp_path / "none.csv")
    with pytest.raises(DatasetError, match="not a regular file"):
        read_truth(tmp_path)
    lst = tmp_path / "list.txt"
    lst.write_text("# images\na.jpg\n\n/abs/b.png\n")
    assert read_file_list(lst) == [tmp_path / "a.jpg", Path("/abs/b.png")]


# --------------------------------------------------------------------------------------------
# known answers on hand-made score tables
# --------------------------------------------------------------------------------------------


def literal_case() -> tuple[ScoreResult, object]:
    """4 evaluated images (2 mel, 2 nv), p and q that disagree, plus every kind of mismatch."""
    ids = ["a", "b", "c", "d", "e", "f", "a"]
    p = np.array([
        two_class({"mel": 0.7, "nv": 0.3}),
        two_class({"mel": 0.4, "nv": 0.6}),
        two_class({"mel": 0.2, "nv": 0.8}),
        two_class({"mel": 0.45, "nv": 0.55}),
        [math.nan] * 7,  # e: failed
        two_class({"bcc": 1.0}),  # f: no truth row
        two_class({"bcc": 1.0}),  # a again (a later file): not evaluated
    ])
    q = np.array([
        two_class({"mel": 0.8, "nv": 0.2}),
        two_class({"mel": 0.55, "nv": 0.45}),
        two_class({"mel": 0.3, "nv": 0.7}),
        two_class({"mel": 0.52, "nv": 0.48}),
        [math.nan] * 7,
        two_class({"bcc": 1.0}),
        two_class({"bcc": 1.0}),
    ])
    errors = [None, None, None, None, "/x/e.jpg: corrupt image header", None, None]
    paths = [f"/x/{i}.jpg" for i in ids[:-1]] + ["/x/sub/a.jpg"]
    table = score_table(ids, p, q, errors, paths)
    table.loc[4, "prediction"] = None
    return table


def test_known_answers_literal(tmp_path: Path) -> None:
    truth_path = tmp_path / "t.csv"
    truth_path.write_text("image_id,dx\na,mel\nb,mel\nc,nv\nd,nv\ne,mel\ng,vasc\n")
    result = ScoreResult(literal_case(), model_path=Path("m.skops"), n_failed=1)
    ev = evaluate_scores(result, read_truth(truth_path))
    lv = ev.image
    assert lv.n == 4 and lv.class_counts["mel"] == 2 and lv.class_counts["nv"] == 2
    assert lv.classes_absent == ["akiec", "bcc", "bkl", "df", "vasc"]
    d, a = lv.decision, lv.argmax
    # decision rule (q): predictions mel, mel, nv, mel
    assert (d.accuracy, d.balanced_accuracy) == (0.75, 0.75)
    assert d.per_class["mel"].recall == 1.0 and d.per_class["nv"].recall == 0.5
    assert d.per_class["mel"].precision == pytest.approx(2 / 3)
    assert d.per_class["nv"].precision == 1.0
    assert d.per_class["mel"].auc == 1.0 and d.macro_auc == 1.0
    assert d.confusion[CLASSES.index("nv")][CLASSES.index("mel")] == 1
    assert math.isnan(d.per_class["vasc"].recall) and math.isnan(d.per_class["vasc"].auc)
    # argmax p: predictions mel, nv, nv, nv; AUC on p: 3 of 4 pairs right for each class
    assert (a.accuracy, a.balanced_accuracy) == (0.75, 0.75)
    assert a.per_class["mel"].recall == 0.5 and a.per_class["nv"].precision == pytest.approx(2 / 3)
    assert a.per_class["mel"].auc == 0.75 and a.per_class["nv"].auc == 0.75
    assert a.macro_auc == 0.75
    # every image and truth row accounted for
    assert ev.failed == [("/x/e.jpg", "/x/e.jpg: corrupt image header")]
    assert ev.images_without_truth == ["f"]
    assert ev.truth_without_image == ["g"]
    assert ev.duplicates == ["/x/sub/a.jpg"]
    assert ev.n_files == 7
    assert any("could not be scored" in n for n in ev.notes)
    assert any("no truth of class akiec, bcc, bkl, df, vasc" in n for n in ev.notes)
    assert ev.isic2018["balanced_accuracy"] == 0.75 and ev.isic2018["macro_auc"] == 1.0
    assert list(ev.submission()["image"]) == ["a", "b", "c", "d"]
    assert ev.submission().loc[3, "MEL"] == 0.52
    assert list(ev.truth_table()["MEL"]) == [1.0, 1.0, 0.0, 0.0]
    assert ev.scores["truth"].fillna("").tolist() == ["mel", "mel", "nv", "nv", "mel", "", "mel"]


def test_known_answers_random_against_hand_computation() -> None:
    rng = np.random.default_rng(3)
    n = 70
    truth = [CLASSES[i % 7] for i in range(n)]
    p = rng.dirichlet(np.ones(7) * 0.7, size=n)
    prior = np.array([0.03, 0.05, 0.11, 0.01, 0.11, 0.67, 0.02])
    q = p / prior**0.5
    q /= q.sum(axis=1, keepdims=True)
    ids = [f"ISIC_{i:07d}" for i in range(n)]
    from hamfeat.evaluate_external import Truth

    labels = dict(zip(ids, truth, strict=True))
    ev = evaluate_scores(ScoreResult(score_table(ids, p, q)), Truth("t.csv", "image_id,dx", labels))
    check_point(ev.image.decision, hand_metrics(truth, q))
    check_point(ev.image.argmax, hand_metrics(truth, p))
    assert ev.image.decision.accuracy != ev.image.argmax.accuracy  # the rule matters here
    # all 7 classes present: macro AUC is hamfeat.evaluate.classification_metrics's (as cv)
    from hamfeat.evaluation.metrics import classification_metrics

    y = np.array([CLASSES.index(t) for t in truth])
    m = classification_metrics(y, p, np.ones(7), 0.0)
    assert ev.image.argmax.macro_auc == pytest.approx(m["macro_auc"], abs=1e-12)
    assert ev.image.argmax.balanced_accuracy == pytest.approx(m["balanced_accuracy"], abs=1e-15)


def test_lesion_level_known_answers(tmp_path: Path) -> None:
    table = literal_case().iloc[:4].copy()
    table["level"] = "image"
    table["lesion_id"] = ["L1", "L1", "L2", "L3"]
    les = score_table(
        ["", "", ""],
        np.array([two_class({"mel": 0.55, "nv": 0.45}), two_class({"mel": 0.2, "nv": 0.8}),
                  two_class({"mel": 0.45, "nv": 0.55})]),
        np.array([two_class({"mel": 0.6, "nv": 0.4}), two_class({"mel": 0.3, "nv": 0.7}),
                  two_class({"mel": 0.52, "nv": 0.48})]),
    )
    les["image_id"] = None
    les["level"] = "lesion"
    les["lesion_id"] = ["L1", "L2", "L3"]
    table = pd.concat([table, les], ignore_index=True)
    truth_path = tmp_path / "t.csv"
    truth_path.write_text("image_id,dx\na,mel\nb,mel\nc,nv\nd,nv\n")
    ev = evaluate_scores(ScoreResult(table), read_truth(truth_path))
    assert ev.image.n == 4 and ev.lesion.n == 3
    assert ev.lesion.class_counts["mel"] == 1 and ev.lesion.class_counts["nv"] == 2
    # L1 mel -> mel, L2 nv -> nv, L3 nv -> mel (q); argmax p: mel, nv, nv
    assert ev.lesion.decision.accuracy == pytest.approx(2 / 3)
    assert ev.lesion.decision.balanced_accuracy == pytest.approx(0.75)
    assert ev.lesion.argmax.accuracy == 1.0
    assert ev.scores.loc[ev.scores["level"] == "lesion", "truth"].tolist() == ["mel", "nv", "nv"]
    # a lesion whose images disagree is left out and named
    truth_path.write_text("image_id,dx\na,mel\nb,nv\nc,nv\nd,nv\n")
    ev = evaluate_scores(ScoreResult(table), read_truth(truth_path))
    assert ev.lesion_conflicts == ["L1"] and ev.lesion.n == 2


def test_report_files_lists_and_no_matplotlib(tmp_path: Path, monkeypatch) -> None:
    truth_path = tmp_path / "t.csv"
    extra = [f"ISIC_{i:07d}" for i in range(60)]  # images without truth: listed, truncated
    table = literal_case()
    more = score_table(extra, np.tile(two_class({"nv": 1.0}), (60, 1)),
                       np.tile(two_class({"nv": 1.0}), (60, 1)))
    table = pd.concat([table, more], ignore_index=True)
    truth_path.write_text("image_id,dx\na,mel\nb,mel\nc,nv\nd,nv\ne,mel\ng,vasc\n")
    ev = evaluate_scores(ScoreResult(table, model_path=Path("m.skops")), read_truth(truth_path))
    written = write_report(ev, tmp_path / "rep" / "sub")
    names = {p.name for p in written}
    assert names == set(REPORT_FILES.values())
    data = json.loads((tmp_path / "rep" / "sub" / "evaluate_report.json").read_text())
    assert len(data["images_without_truth"]) == 61 and data["counts"]["images_without_truth"] == 61
    assert data["truth_without_image"] == ["g"]
    assert data["image"]["decision"]["per_class"]["vasc"]["recall"] is None  # NaN -> null
    md = (tmp_path / "rep" / "sub" / "evaluate_report.md").read_text()
    assert "### Images without a truth row (61)" in md and "... and 11 more" in md
    assert "- g" in md and "/x/e.jpg: corrupt image header" in md
    scores = pd.read_csv(tmp_path / "rep" / "sub" / "evaluate_scores.csv")
    assert list(scores.columns) == [*table.columns, "truth"]
    # without matplotlib: the same report, no figures, a note (as cv)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    ev = evaluate_scores(ScoreResult(table, model_path=Path("m.skops")), read_truth(truth_path))
    written = write_report(ev, tmp_path / "nomp")
    assert not any(p.suffix == ".png" for p in written)
    assert "plots skipped: matplotlib is not installed" in (tmp_path / "nomp" /
                                                            "evaluate_report.md").read_text()


# --------------------------------------------------------------------------------------------
# the CLI on generated images, with a model trained by the test
# --------------------------------------------------------------------------------------------

N_TRAIN = 28
N_NEW = 14


@pytest.fixture(scope="module")
def gen(tmp_path_factory) -> dict:
    """Generated training images (nv-heavy, so the decision rule differs from argmax), a small
    lr model on two feature families, and a folder of new images with a corrupt one."""
    from test_score_flags import lesion_image

    root = tmp_path_factory.mktemp("evaluate")
    data = root / "HAM10000"
    rows = []
    for i in range(N_TRAIN):
        rgb, mask = lesion_image(i)
        image_id = f"ISIC_{i:07d}"
        write_jpeg(data / "images" / f"{image_id}.jpg", rgb)
        write_mask(data / "masks" / f"{image_id}_segmentation.png", mask)
        dx = "nv" if i % 2 else CLASSES[(i // 2) % len(CLASSES)]
        rows.append(f"HAM_{i // 2:07d},{image_id},{dx},histo,40.0,male,back\n")
    (data / "HAM10000_metadata.csv").write_text(METADATA_HEADER + "".join(rows))
    env = {**os.environ, "HAMFEAT_CACHE_DIR": str(root / "cache")}
    table, model = root / "f.parquet", root / "model.skops"
    p = run("features", "--data", str(data), "-o", str(table), "--masks", "auto", "--jobs", "1",
            "--families", "color,shape", env=env)
    assert p.returncode == 0, p.stderr
    p = run("train", "--features", str(table), "-o", str(model), "--model", "lr", env=env)
    assert p.returncode == 0, p.stderr
    new = root / "new images"
    ids = [f"ISIC_{1000 + i:07d}" for i in range(N_NEW)]
    for i, image_id in enumerate(ids):
        write_jpeg(new / f"{image_id}.jpg", lesion_image(1000 + i)[0])
    (new / "ISIC_0009999.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    truth_dx = {image_id: CLASSES[i % 7] for i, image_id in enumerate(ids)}
    # truth: every image but the last, the corrupt one, and a row without an image
    rows_dx = [*list(truth_dx.items())[:-1], ("ISIC_0009999", "mel"), ("ISIC_0008888", "nv")]
    dx_csv = root / "truth_dx.csv"
    dx_csv.write_text("image_id,dx\n" + "".join(f"{i},{d}\n" for i, d in rows_dx))
    isic_csv = root / "truth_isic.csv"
    isic_csv.write_text(ISIC_HEADER + "\n" + "".join(f"{i},{onehot(d)}\n" for i, d in rows_dx))
    return {"root": root, "env": env, "model": model, "new": new, "ids": ids,
            "truth": truth_dx, "dx_csv": dx_csv, "isic_csv": isic_csv}


def evaluate(gen: dict, report: Path, *extra: str, truth: Path | None = None, code: int = 1,
             images: tuple[str, ...] | None = None):
    p = run("evaluate", *(images if images is not None else (str(gen["new"]),)),
            "--truth", str(truth or gen["dx_csv"]), "--model", str(gen["model"]), "--jobs", "1",
            "--report-dir", str(report), *extra, env=gen["env"])
    assert p.returncode == code and "Traceback" not in p.stderr, p.stderr
    return p


def test_cli_generated_both_formats(gen: dict, tmp_path: Path) -> None:
    rep = tmp_path / "rep"
    p = evaluate(gen, rep)  # exit 1: a corrupt image, reported, the rest evaluated
    assert (f"hamfeat evaluate: {N_NEW} of {N_NEW + 1} images scored; {N_NEW - 1} evaluated; "
            "1 image(s) without a truth row; 1 truth row(s) without an image") in p.stderr
    assert "ISIC_0009999.jpg" in p.stderr and "corrupt image header" in p.stderr
    assert f"report -> {rep}" in p.stderr
    assert {f.name for f in rep.iterdir()} == set(REPORT_FILES.values())
    data = json.loads((rep / "evaluate_report.json").read_text())
    assert data["truth"]["format"] == "image_id,dx"
    assert data["truth_without_image"] == ["ISIC_0008888"]
    assert data["images_without_truth"] == [gen["ids"][-1]]
    assert [f["path"] for f in data["failed"]] == [str(gen["new"] / "ISIC_0009999.jpg")]
    # the scores are exactly hamfeat score's, plus truth
    s = run("score", str(gen["new"]), "--model", str(gen["model"]), "--jobs", "1", env=gen["env"])
    assert s.returncode == 1, s.stderr
    scored = pd.read_csv(io.StringIO(s.stdout))
    table = pd.read_csv(rep / "evaluate_scores.csv")
    assert list(table.columns) == [*scored.columns, "truth"]
    pd.testing.assert_frame_equal(table.drop(columns="truth"), scored)
    # metrics against hand computation on the evaluated rows
    ok = table[table["error"].isna() & table["truth"].notna()]
    truth = list(ok["truth"])
    assert len(truth) == N_NEW - 1
    for point, prefix in (("decision", "q"), ("argmax", "p")):
        proba = ok[[f"{prefix}_{c}" for c in CLASSES]].to_numpy()
        want = hand_metrics(truth, proba)
        got = data["image"][point]
        assert got["accuracy"] == pytest.approx(want["accuracy"], abs=1e-12)
        assert got["balanced_accuracy"] == pytest.approx(want["balanced_accuracy"], abs=1e-12)
        # the CSV holds 6 significant digits: AUC from it agrees to rounding
        assert got["macro_auc"] == pytest.approx(want["macro_auc"], abs=0.02)
        assert got["confusion"] == want["confusion"]
    assert data["decision_rule"]["alpha"] == 0.2  # nv-heavy training: q is not p
    assert not np.allclose(ok[[f"q_{c}" for c in CLASSES]], ok[[f"p_{c}" for c in CLASSES]])
    assert list(ok["prediction"]) == hand_metrics(truth, ok[[f"q_{c}" for c in CLASSES]]
                                                  .to_numpy())["pred"]
    # the ISIC 2018 format gives the same numbers
    rep2 = tmp_path / "rep2"
    evaluate(gen, rep2, truth=gen["isic_csv"])
    data2 = json.loads((rep2 / "evaluate_report.json").read_text())
    assert data2["truth"]["format"] == "isic2018"
    assert data2["image"] == data["image"] and data2["isic2018"] == data["isic2018"]


def test_cli_files_from_lesion_map_and_default_report_dir(gen: dict, tmp_path: Path) -> None:
    lst = tmp_path / "list.txt"
    lst.write_text("".join(f"{gen['new'] / i}.jpg\n" for i in gen["ids"][:6]))
    lmap = tmp_path / "lesions.csv"
    lmap.write_text("image_id,lesion_id\n" + "".join(
        f"{i},L{k // 2}\n" for k, i in enumerate(gen["ids"][:6])))
    p = run("evaluate", "--files-from", str(lst), "--truth", str(gen["dx_csv"]), "--model",
            str(gen["model"]), "--jobs", "1", "--lesion-map", str(lmap), "--no-plots",
            env=gen["env"], cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    rep = tmp_path / "reports" / "evaluate"  # the default, under the current folder
    data = json.loads((rep / "evaluate_report.json").read_text())
    assert data["counts"]["evaluated"] == 6 and data["truth_without_image"][-1] == "ISIC_0008888"
    assert len(data["truth_without_image"]) == 9  # 7 truth rows of unlisted images + 2
    assert not list(rep.glob("*.png"))
    # images 2k and 2k+1 are one lesion; their truths differ (classes cycle), so every lesion
    # is a conflict, named
    assert data["lesion_conflicts"] == ["L0", "L1", "L2"] and data["lesion"] is None
    assert "per lesion" not in p.stderr


def test_cli_bad_truth_and_outputs_fail_before_work(gen: dict, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("image_id,dx\nISIC_0001000,nv\nISIC_0001001,carcinoma\n")
    p = run("evaluate", str(gen["new"]), "--truth", str(bad), "--model", str(tmp_path / "no.skops"),
            "--report-dir", str(tmp_path / "r"), env=gen["env"])
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 3 and lines[-1] == (
        f"hamfeat evaluate: error: {bad}:3: ISIC_0001001: unknown class 'carcinoma' (expected "
        "one of akiec, bcc, bkl, df, mel, nv, vasc)"), p.stderr
    assert not (tmp_path / "r").exists()  # nothing written
    # no image has a truth row: nothing to evaluate, before the model is loaded
    other = tmp_path / "other.csv"
    other.write_text("image_id,dx\nX,nv\n")
    p = run("evaluate", str(gen["new"]), "--truth", str(other), "--model",
            str(tmp_path / "no.skops"), "--report-dir", str(tmp_path / "r"), env=gen["env"])
    assert p.returncode == 3 and "none of the 15 image file(s) has a truth row" in p.stderr
    # the report folder is a file: one line, exit 3, before the truth or model is read
    afile = tmp_path / "afile"
    afile.write_text("x")
    p = run("evaluate", str(gen["new"]), "--truth", str(bad), "--report-dir", str(afile),
            env=gen["env"])
    assert p.returncode == 3 and p.stderr.strip() == (
        f"hamfeat evaluate: error: {afile}: is not a folder"), p.stderr
    # a report file that is a folder
    (tmp_path / "r2" / "evaluate_report.md").mkdir(parents=True)
    p = run("evaluate", str(gen["new"]), "--truth", str(bad), "--report-dir",
            str(tmp_path / "r2"), env=gen["env"])
    assert p.returncode == 3 and "evaluate_report.md: is a folder" in p.stderr
    # score's options are passed through: its own errors
    p = run("evaluate", str(gen["new"]), "--truth", str(gen["dx_csv"]), "--model",
            str(gen["model"]), "--masks", str(tmp_path / "no_masks"), "--report-dir",
            str(tmp_path / "r3"), env=gen["env"])
    assert p.returncode == 3 and "no_masks: masks folder not found" in p.stderr, p.stderr
    p = run("evaluate", str(tmp_path / "nowhere"), "--truth", str(gen["dx_csv"]),
            "--report-dir", str(tmp_path / "r3"), env=gen["env"])
    assert p.returncode == 3 and "nowhere: no such file or folder" in p.stderr, p.stderr
    # a model for another data set, or missing
    p = run("evaluate", str(gen["new"]), "--truth", str(gen["dx_csv"]), "--model",
            str(tmp_path / "no.skops"), "--report-dir", str(tmp_path / "r3"), env=gen["env"])
    assert p.returncode == 3 and "model file not found" in p.stderr


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (["--truth", "t.csv"], "give the images"),
        (["d"], "the following arguments are required: --truth"),
        (["d", "--truth", "t.csv", "--backend", "spark"], "choose from 'joblib', 'dask'"),
        (["d", "--truth", "t.csv", "--jobs", "-1"], "--jobs: must be 0"),
        (["d", "--truth", "t.csv", "--scheduler", "tcp://x:1", "--backend", "joblib"],
         "--scheduler needs --backend dask"),
        (["d", "--truth", "t.csv", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_cli_usage_errors(args: list[str], what: str, tmp_path: Path) -> None:
    p = run("evaluate", *args, cwd=tmp_path)
    assert p.returncode == 2 and what in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert not (tmp_path / "reports").exists()


def test_cli_help_lists_every_option() -> None:
    from hamfeat.cli import build_parser

    p = run("evaluate", "--help")
    assert p.returncode == 0
    sub = build_parser()._subparsers._group_actions[0].choices["evaluate"]
    for action in sub._actions:
        for flag in action.option_strings:
            assert flag in p.stdout, flag
        assert action.help, action.dest  # every option has help text


# --------------------------------------------------------------------------------------------
# equality with the official ISIC 2018 scorer
# --------------------------------------------------------------------------------------------

OFFICIAL = """
import json, sys
import pandas as pd
from isic_challenge_scoring import metrics
from isic_challenge_scoring.load_csv import parse_csv, parse_truth_csv, sort_rows, validate_rows
with open(sys.argv[1]) as t, open(sys.argv[2]) as s:
    truth, weights = parse_truth_csv(t)
    pred = parse_csv(s, truth.columns)
validate_rows(truth, pred)
sort_rows(truth)
sort_rows(pred)
w = weights.score_weight
# what ClassificationScore computes (its other per-class metrics are left out: the CLI stops
# with a traceback on a class without truth rows, in its partial AUC above 80% sensitivity)
auc = pd.Series([metrics.auc(truth[c], pred[c], w) for c in truth.columns]).mean()
bal = metrics.balanced_multiclass_accuracy(truth, pred, w)
print(json.dumps({"balanced_accuracy": bal, "macro_auc": auc}))
"""


def official(truth: Path, submission: Path, *, cli: bool = True) -> dict:
    """The official scorer's balanced accuracy and macro AUC: its CLI, and its functions."""
    from test_isic_scorer import VENV, scorer

    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out = {}
    if cli:
        proc = subprocess.run([str(scorer()), "-o", "json", "classification", str(truth),
                               str(submission)], capture_output=True, text=True, env=env,
                              timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        d = json.loads(proc.stdout)
        out["cli"] = {"balanced_accuracy": d["aggregate"]["balanced_accuracy"],
                      "macro_auc": d["macro_average"]["auc"]}
    scorer()
    proc = subprocess.run([str(VENV / "bin" / "python"), "-c", OFFICIAL, str(truth),
                           str(submission)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out["functions"] = json.loads(proc.stdout)
    return out


def assert_equal_official(data: dict, got: dict) -> None:
    for res in got.values():
        assert data["isic2018"]["balanced_accuracy"] == pytest.approx(
            res["balanced_accuracy"], abs=1e-9)
        assert data["isic2018"]["macro_auc"] == pytest.approx(res["macro_auc"], abs=1e-9)
    assert data["isic2018"]["balanced_accuracy"] == data["image"]["decision"]["balanced_accuracy"]
    assert data["isic2018"]["macro_auc"] == data["image"]["decision"]["macro_auc"]


@pytest.mark.slow
def test_equal_to_official_isic_scorer(gen: dict, tmp_path: Path) -> None:
    rep = tmp_path / "rep"
    evaluate(gen, rep, truth=gen["isic_csv"], code=1)
    data = json.loads((rep / "evaluate_report.json").read_text())
    sub = rep / "evaluate_isic2018_submission.csv"
    # the report's own pair of files
    assert_equal_official(data, official(rep / "evaluate_isic2018_truth.csv", sub))
    # the user's truth file (the scorer needs one row per submitted image: the rows without an
    # image or whose image failed are taken out), unchanged otherwise
    user = pd.read_csv(gen["isic_csv"])
    user = user[user["image"].isin(pd.read_csv(sub)["image"])]
    user_path = tmp_path / "user_truth.csv"
    user.to_csv(user_path, index=False)
    assert_equal_official(data, official(user_path, sub))
    # and `hamfeat score --format isic2018` (6 significant digits) on the same images
    s = run("score", str(gen["new"]), "--model", str(gen["model"]), "--jobs", "1", "--format",
            "isic2018", env=gen["env"])
    scored = pd.read_csv(io.StringIO(s.stdout))
    scored = scored[scored["image"].isin(user["image"])]
    scored_path = tmp_path / "scored.csv"
    scored.to_csv(scored_path, index=False)
    res = official(user_path, scored_path, cli=False)["functions"]
    assert data["isic2018"]["balanced_accuracy"] == pytest.approx(res["balanced_accuracy"],
                                                                  abs=1e-9)
    assert data["isic2018"]["macro_auc"] == pytest.approx(res["macro_auc"], abs=1e-3)
    # classes absent from the truth: both compute what is defined (the functions: the
    # official CLI itself stops on such a truth file)
    few = user[(user["VASC"] == 0) & (user["DF"] == 0)]
    few_path = tmp_path / "few.csv"
    few.to_csv(few_path, index=False)
    rep3 = tmp_path / "rep3"
    evaluate(gen, rep3, truth=few_path, code=1)
    data3 = json.loads((rep3 / "evaluate_report.json").read_text())
    assert data3["image"]["classes_absent"] == ["df", "vasc"]
    assert_equal_official(data3, official(
        few_path, rep3 / "evaluate_isic2018_submission.csv", cli=False))


# --------------------------------------------------------------------------------------------
# real files: the 35 original HAM10000 JPEGs, a small model trained on other real images
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_originals(ham_dir: Path, tmp_path: Path) -> None:
    originals = ham_dir.parent / "ham10000-originals"
    if not originals.is_dir():
        pytest.skip(f"{originals} not found (set HAMFEAT_SHARED_DATA)")
    meta = pd.read_csv(ham_dir / "HAM10000_metadata.csv")
    orig_ids = sorted(p.stem for p in originals.glob("ISIC_*.jpg"))
    held = meta[meta["image_id"].isin(orig_ids)]
    train = meta[~meta["lesion_id"].isin(held["lesion_id"])].groupby("dx").head(4)
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    for image_id in train["image_id"]:  # linked, not copied
        (data / "images" / f"{image_id}.jpg").symlink_to(ham_dir / "images" / f"{image_id}.jpg")
    train.to_csv(data / "HAM10000_metadata.csv", index=False)
    env = {**os.environ, "HAMFEAT_CACHE_DIR": str(tmp_path / "cache")}
    table, model = tmp_path / "f.parquet", tmp_path / "m.skops"
    p = run("features", "--data", str(data), "-o", str(table), "--masks", "auto", "--jobs", "1",
            env=env)
    assert p.returncode == 0, p.stderr
    p = run("train", "--features", str(table), "-o", str(model), "--model", "lr", env=env)
    assert p.returncode == 0, p.stderr
    truth = tmp_path / "truth.csv"
    held[["image_id", "dx"]].to_csv(truth, index=False)
    rep = tmp_path / "rep"
    p = run("evaluate", str(originals), "--truth", str(truth), "--model", str(model), "--jobs",
            "1", "--report-dir", str(rep), "--lesion-map", str(ham_dir / "HAM10000_metadata.csv"),
            env=env)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    assert "35 of 35 images scored; 35 evaluated; 0 image(s) without a truth row" in p.stderr
    data_ = json.loads((rep / "evaluate_report.json").read_text())
    assert data_["image"]["class_counts"] == {c: 5 for c in CLASSES}
    assert data_["image"]["classes_absent"] == [] and data_["lesion"]["n"] == len(
        held["lesion_id"].unique())
    scores = pd.read_csv(rep / "evaluate_scores.csv")
    ok = scores[(scores["level"] == "image")]
    dx_of = dict(zip(held["image_id"], held["dx"], strict=True))
    assert (ok["truth"] == ok["image_id"].map(dx_of)).all()
    acc = float((ok["prediction"] == ok["truth"]).mean())
    assert data_["image"]["decision"]["accuracy"] == pytest.approx(acc, abs=1e-12)
    assert (rep / "evaluate_roc.png").stat().st_size > 1000
    # the ISIC 2018 format of the same truth, and the official scorer on the real files
    isic = tmp_path / "truth_isic.csv"
    isic.write_text(ISIC_HEADER + "\n" + "".join(
        f"{i},{onehot(d)}\n" for i, d in zip(held["image_id"], held["dx"], strict=True)))
    assert_equal_official(data_, official(isic, rep / "evaluate_isic2018_submission.csv"))


def test_decision_ties_counted() -> None:
    from hamfeat.evaluate_external import Truth

    ids = ["a", "b"]
    q = np.array([two_class({"mel": 0.5, "nv": 0.5}), two_class({"nv": 1.0})])
    ev = evaluate_scores(ScoreResult(score_table(ids, q, q)),
                         Truth("t", "image_id,dx", {"a": "nv", "b": "nv"}))
    assert ev.image.n_tied == 1 and any("tied largest q" in n for n in ev.notes)
    assert isinstance(ev, Evaluation)


def test_hand_auc_sanity() -> None:  # the hand AUC itself, on a textbook case
    assert hand_auc([0.9, 0.8], [0.1, 0.85]) == 0.75
    assert hand_auc([0.5], [0.5]) == 0.5
