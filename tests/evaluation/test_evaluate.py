"""Tests of hamfeat.evaluate: leak-free splits, metrics, the decision-rule curve, run_cv, train."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _paths import SHARED
from hamfeat.datasets.ham10000 import CLASSES
from hamfeat.errors import DatasetError
from hamfeat.evaluation.cv import run_cv
from hamfeat.evaluation.metrics import alpha_curve as _curve
from hamfeat.evaluation.metrics import classification_metrics, evaluate_oof
from hamfeat.evaluation.metrics import lesion_level as _lesion_level
from hamfeat.evaluation.metrics import pick_alpha as _pick_alpha
from hamfeat.evaluation.oof import OOF, average_oof, oof_predictions
from hamfeat.evaluation.results import CVReport, MultilabelReport
from hamfeat.evaluation.splits import check_grouped, grouped_splits, image_splits
from hamfeat.models import FAMILY_NAMES, load_model, make_model
from hamfeat.render.cv_report import cv_json, cv_markdown
from hamfeat.render.cv_report_multilabel import multilabel_json, multilabel_markdown
from hamfeat.synthetic import make_synthetic_table
from hamfeat.tables import load_table, table_hash
from hamfeat.training import train


def _evaluate_oof(oof, y, groups):
    return evaluate_oof(oof, y, groups).to_dict()


def _cc_choice(report: dict) -> str:
    from hamfeat.render.cv_report import cc_choice

    return cc_choice(CVReport(dict(report), None))

FAST_PARAMS = {
    "rf": {"n_estimators": 20},
    "hgb": {"max_iter": 5},
    "ensemble": {"members": ("knn", "rf")},
}


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return make_synthetic_table(220, seed=5, lesion_effect=2.0)


@pytest.fixture(scope="module")
def table_path(tmp_path_factory, table) -> Path:
    p = tmp_path_factory.mktemp("tables") / "features.parquet"
    table.to_parquet(p)
    return p


# ---------------------------------------------------------------------------- splits


def _assert_leak_free(y, groups, seeds):
    splits = grouped_splits(y, groups, n_splits=5, seeds=seeds)
    assert len(splits) == 5 * len(seeds)
    assert check_grouped(splits, groups) == 0
    for seed in seeds:
        tests = np.concatenate([s.test for s in splits if s.seed == seed])
        assert np.array_equal(np.sort(tests), np.arange(len(y)))  # each image tested once
        for s in splits:
            if s.seed == seed:
                assert not set(groups[s.train]) & set(groups[s.test])
    return splits


def test_grouped_splits_never_share_a_lesion(table):
    y, groups = table["dx"].to_numpy(), table["lesion_id"].to_numpy()
    splits = _assert_leak_free(y, groups, seeds=(0, 1, 2))
    # repetitions differ
    assert not np.array_equal(splits[0].test, splits[5].test)
    # the check can fail: an image-level split on the same table leaks lesions
    assert check_grouped(image_splits(y, seeds=(0,)), groups) > 0


def test_grouped_splits_on_real_metadata():
    meta = SHARED / "ham10000" / "HAM10000_metadata.csv"
    if not meta.is_file():
        pytest.skip(f"real metadata not found at {meta} (set HAMFEAT_SHARED_DATA)")
    m = pd.read_csv(meta)
    y, groups = m["dx"].to_numpy(), m["lesion_id"].to_numpy()
    assert len(m) == 10015 and m["lesion_id"].nunique() == 7470
    splits = _assert_leak_free(y, groups, seeds=(0, 1))
    # stratified: every test fold has every class, nv share close to 66.9 %
    for s in splits:
        assert set(y[s.test]) == set(CLASSES)
        assert abs(np.mean(y[s.test] == "nv") - 0.669) < 0.03


# ---------------------------------------------------------------------------- metrics


def test_classification_metrics_by_hand():
    y = np.array([5, 5, 5, 4])  # three nv, one mel
    proba = np.zeros((4, 7))
    proba[:, 5] = [0.9, 0.8, 0.6, 0.6]
    proba[:, 4] = [0.1, 0.2, 0.4, 0.4]
    prior = np.full(7, 1 / 7)
    prior[5], prior[4] = 0.7, 0.1
    m0 = classification_metrics(y, proba, prior, 0.0)
    assert m0["accuracy"] == 0.75
    assert m0["balanced_accuracy"] == pytest.approx(0.5)  # nv recall 1, mel recall 0
    assert m0["confusion"][4][5] == 1
    # full prior correction: 0.2/0.1 > 0.8/0.7 and 0.4/0.1 > 0.6/0.7 flip rows 1-3 to mel,
    # 0.1/0.1 < 0.9/0.7 keeps row 0 nv
    m1 = classification_metrics(y, proba, prior, 1.0)
    assert m1["accuracy"] == 0.5 and m1["per_class"]["mel"]["recall"] == 1.0
    assert m1["per_class"]["nv"]["recall"] == pytest.approx(1 / 3)
    assert m1["balanced_accuracy"] == pytest.approx((1 + 1 / 3) / 2)
    assert np.isnan(m0["macro_auc"])  # not all classes present


def test_curve_matches_metrics_at_each_alpha(table):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 300)
    proba = rng.dirichlet(np.ones(7), 300)
    prior = rng.dirichlet(np.ones(7) * 5, 300)
    c = _curve(y, proba, prior)
    for i in (0, 7, 20):
        m = classification_metrics(y, proba, prior, c["alpha"][i])
        assert c["accuracy"][i] == pytest.approx(m["accuracy"])
        assert c["balanced_accuracy"][i] == pytest.approx(m["balanced_accuracy"])


def test_pick_alpha_prefers_balanced_accuracy_above_the_floor():
    curve = {
        "alpha": [0, 0.5, 1],
        "accuracy": [0.85, 0.81, 0.7],
        "balanced_accuracy": [0.5, 0.6, 0.7],
    }
    assert _pick_alpha(curve) == 0.5
    low = {"alpha": [0, 0.5, 1], "accuracy": [0.7, 0.6, 0.5], "balanced_accuracy": [0.3, 0.5, 0.51]}
    assert _pick_alpha(low) == 0.5


def test_lesion_level_averages_a_lesions_images():
    y = np.array([1, 1, 2])
    proba = np.eye(7)[[1, 2, 2]].astype(float)
    yl, pl, _, codes = _lesion_level(y, proba, np.full(7, 1 / 7), np.array(["b", "b", "a"]))
    assert yl.tolist() == [2, 1]
    np.testing.assert_allclose(pl[1, [1, 2]], [0.5, 0.5])
    assert codes.tolist() == [1, 1, 0]


def test_crossfitted_alpha_ignores_the_test_folds_labels():
    """The alpha used on a fold is chosen without that fold's labels."""
    rng = np.random.default_rng(1)
    n = 500
    y = rng.choice(7, n, p=[0.03, 0.05, 0.11, 0.01, 0.11, 0.67, 0.02])
    proba = 0.5 * np.eye(7)[y] + 0.5 * rng.dirichlet(np.ones(7), n)
    proba[:, 5] += 0.4
    proba /= proba.sum(axis=1, keepdims=True)
    fold = np.arange(n) % 5
    prior = np.bincount(y, minlength=7) / n
    oof = OOF("m", [0], proba[None], np.broadcast_to(prior, proba.shape)[None].copy(), fold[None])
    a = _evaluate_oof(oof, y, None)["per_seed"][0]["image"]["crossfit"]["alpha_per_fold"]
    y2 = y.copy()
    y2[fold == 0] = 5  # scramble fold 0's labels
    b = _evaluate_oof(oof, y2, None)["per_seed"][0]["image"]["crossfit"]["alpha_per_fold"]
    assert a[0] == b[0]  # fold 0's own alpha did not move
    assert any(a[f] != b[f] for f in range(1, 5))  # the other folds' alphas saw the change


def test_derived_ensemble_equals_refitted_voting(table):
    splits = grouped_splits(table["dx"], table["lesion_id"], seeds=(0,))[:2]
    ens = make_model("ensemble", members=("knn", "rf"))
    ens.set_params(clf__estimator__rf__n_estimators=10)
    ests = {"knn": make_model("knn"), "rf": make_model("rf", n_estimators=10), "ens": ens}
    oofs = oof_predictions(ests, table, splits, n_jobs=1, require_complete=False)
    derived = average_oof("avg", [oofs["knn"], oofs["rf"]])
    tested = np.concatenate([s.test for s in splits])
    np.testing.assert_allclose(derived.proba[0, tested], oofs["ens"].proba[0, tested], atol=1e-12)


# ---------------------------------------------------------------------------- run_cv / train


@pytest.fixture(scope="module")
def report(tmp_path_factory, table_path):
    out = tmp_path_factory.mktemp("report")
    auto = table_path.parent / "features_auto.parquet"
    t = pd.read_parquet(table_path)
    t.iloc[:-10].to_parquet(auto)  # a smaller "automatic masks" table
    # the other colour-constancy setting (the synthetic table's is off, like the default)
    cc = table_path.parent / "features_cc.parquet"
    t_cc = t.iloc[:-20].copy()
    t_cc.attrs = copy.deepcopy(t.attrs)
    t_cc.attrs["hamfeat"]["config"]["color_constancy"] = True
    t_cc.to_parquet(cc)
    r = run_cv(
        table_path,
        out,
        models=("knn", "rf", "ensemble"),
        seeds=(0,),
        baseline_seeds=(0, 1, 2),
        ablations=True,
        ablation_model="knn",
        auto_features_path=auto,
        cc_features_path=cc,
        model_params=FAST_PARAMS,
        n_jobs=2,
        command="pytest run_cv",
    )
    return out, r


def test_run_cv_writes_every_output(report, table, table_path):
    out, _ = report
    md = (out / "cv_report.md").read_text()
    js = json.loads((out / "cv_report.json").read_text())
    for name in ("cv_confusion.png", "cv_recall.png", "cv_alpha_tradeoff.png"):
        assert (out / name).stat().st_size > 1000
    assert "pytest run_cv" in md and table_hash(table) in md
    # the user's condition first: which masks, and the automatic-mask result before anything
    head = md.split("- command:")[0]
    assert "masks: **given**" in head and "upper bound" in head
    assert "what a user gets" in head and "with automatic masks accuracy" in head
    assert js["masks"]["mode"] == "given"
    assert js["table_hash"] == table_hash(table) and js["machine"]["cpu_count"]
    assert js["cv"]["lesions_on_both_sides"] == 0
    for name in ("knn", "rf", "ensemble"):
        s = js["models"][name]["summary"]
        for level in ("image", "lesion"):
            for point in ("argmax", "fixed", "crossfit", "best_on_curve"):
                d = s[level][point]
                assert 0 <= d["accuracy"] <= 1 and 0 <= d["balanced_accuracy"] <= 1
        assert len(js["models"][name]["per_seed"][0]["image"]["curve"]["alpha"]) == 21
    # better than the majority baseline, which is reported beside
    maj = js["majority"]["image"]
    assert maj["balanced_accuracy"] == pytest.approx(1 / 7)
    assert js["models"]["ensemble"]["summary"]["image"]["argmax"]["balanced_accuracy"] > 0.3
    assert "Seed baseline" in md and "ablation skipped" not in md
    ab = js["ablations"]
    assert set(ab["families"]) == {"all", *[f for f in ab["families"] if f != "all"]}
    assert len(ab["families"]) == len(FAMILY_NAMES) + 1
    assert ab["masks"]["auto"]["n_images"] == len(table) - 10
    assert ab["color_constancy"]["main"] == "off"
    assert ab["color_constancy"]["on"]["n_images"] == len(table) - 20
    assert ab["color_constancy"]["on"]["config"]["color_constancy"] is True
    assert "| colour constancy on |" in md and "colour constancy off (main table)" in md
    assert not any("measures nothing" in n for n in js["notes"])
    assert {"default", "over"} <= set(ab["imbalance"])


def test_leaky_split_inflates_the_seed_baseline(report):
    """With near-duplicate images per lesion, an image-level split is optimistic."""
    sb = report[1]["seed_baseline"]
    leaky = sb["image_level"]["summary"]["image"]["argmax"]["accuracy"]
    honest = sb["lesion_grouped"]["summary"]["image"]["argmax"]["accuracy"]
    assert leaky > honest + 0.02


def test_train_saves_a_loadable_model(tmp_path, table_path, table):
    p = train(
        table_path, tmp_path / "m.skops", model="rf", alpha=0.5, model_params={"n_estimators": 10}
    )
    m = load_model(
        p, expected_feature_names=table.columns, expected_config=table.attrs["hamfeat"]["config"]
    )
    assert m.training_table_hash == table_hash(table)
    assert m.extra["alpha"] == 0.5 and m.extra["model"] == "rf"
    assert m.predict_proba(table).shape == (len(table), len(CLASSES))
    assert m.estimator.named_steps["clf"].alpha == 0.5


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda t: t.drop(columns=["dx"]), "no label column"),
        (lambda t: t.assign(dx=t["dx"].where(t.index != 3, "melanoma")), "unknown label"),
        (lambda t: t.assign(dx=t["dx"].where(t.index != 3, None)), "no label"),
        (lambda t: t.drop(columns=["lesion_id"]), "lesion_id"),
    ],
)
def test_bad_labels_are_refused_naming_the_file(tmp_path, table, change, match):
    p = tmp_path / "bad.parquet"
    change(table.copy()).to_parquet(p)
    with pytest.raises(DatasetError, match=match) as info:
        run_cv(p, tmp_path / "r", models=("knn",), ablations=False, plots=False)
    assert str(p) in str(info.value)
    with pytest.raises(DatasetError, match=match):
        train(p, tmp_path / "m.skops", model="knn")
    assert not (tmp_path / "r").exists() and not (tmp_path / "m.skops").exists()


def test_train_refuses_table_without_feature_config(tmp_path, table):
    t = table.copy()
    t.attrs = {}
    p = tmp_path / "noattrs.parquet"
    t.to_parquet(p)
    with pytest.raises(DatasetError, match="feature configuration"):
        train(p, tmp_path / "m.skops", model="knn")
    with pytest.raises(DatasetError, match="not found"):
        load_table(tmp_path / "absent.parquet")


def test_cross_validation_is_deterministic(table):
    """Same table, same seeds: identical splits and bit-identical out-of-fold probabilities,
    whether the folds run in one process or two."""
    from hamfeat.models import make_model

    y, groups = table["dx"].to_numpy(), table["lesion_id"].to_numpy()
    a = grouped_splits(y, groups, seeds=(0, 1))
    b = grouped_splits(y, groups, seeds=(0, 1))
    assert all(
        np.array_equal(s.train, t.train) and np.array_equal(s.test, t.test)
        for s, t in zip(a, b, strict=True)
    )
    models = {"rf": make_model("rf", random_state=0, n_estimators=20), "lr": make_model("lr")}
    one = oof_predictions(models, table, a, n_jobs=1)
    two = oof_predictions(models, table, b, n_jobs=2)
    for name in models:
        assert one[name].proba.tobytes() == two[name].proba.tobytes(), name


def test_report_says_how_the_colour_constancy_setting_was_chosen() -> None:
    assert _cc_choice({"table_config": {}}) == ""
    assert _cc_choice({"table_config": {"color_constancy": False, "synthetic": True}}) == ""
    off = _cc_choice({"table_config": {"color_constancy": False}})
    on = _cc_choice({"table_config": {"color_constancy": True}})
    assert "seed-0 folds" in off and "not the default" not in off
    assert on.startswith("This table has colour constancy ON, which is not the default")


def test_cc_ablation_with_the_same_setting_is_flagged(table_path, tmp_path) -> None:
    """A colour-constancy table with the main table's own setting measures nothing: noted."""
    r = run_cv(
        table_path,
        tmp_path / "report",
        models=("knn",),
        seeds=(0,),
        baseline_seeds=(0,),
        ablations=True,
        ablation_model="knn",
        cc_features_path=table_path,  # same table, same setting (off)
        model_params=FAST_PARAMS,
        n_jobs=1,
        plots=False,
    )
    assert r["ablations"]["color_constancy"]["main"] == "off"
    assert any("measures nothing" in n and "(off)" in n for n in r["notes"])


def test_cv_renderers_read_the_typed_report_as_its_json_round_trip(table_path, tmp_path):
    """The Markdown and JSON rendered from the typed report equal those rendered from the
    report read back from its JSON (``to_dict`` -> ``from_dict``), and equal the files written."""
    rep = tmp_path / "rep"
    r = run_cv(table_path, rep, models=("lr", "knn"), seeds=(0, 1), ablations=True,
               model_params=FAST_PARAMS, plots=False, n_jobs=1)
    back = CVReport.from_dict(json.loads((rep / "cv_report.json").read_text()))
    assert json.loads(cv_json(back)) == json.loads((rep / "cv_report.json").read_text())
    assert cv_markdown(back) == (rep / "cv_report.md").read_text()
    assert back.to_dict().keys() == r.keys()
    assert back.models["lr"].summary.image.crossfit.accuracy == (
        r["models"]["lr"]["summary"]["image"]["crossfit"]["accuracy"])


def test_multilabel_renderers_round_trip():
    """The X-ray renderers give the same text for a report and its JSON round trip."""
    res = {"auc": {"A": 0.61, "abnormal": float("nan")}, "auc_ci95": {},
           "mean_auc_findings": 0.61, "mean_auc_findings_ci95": None,
           "abnormal_auc": float("nan"), "abnormal_auc_ci95": None, "fit_seconds": 1.5}
    d = {
        "title": "t", "created_utc": "2024-01-01 00:00:00", "command": "c",
        "hamfeat_version": "0", "python": "3", "features": "f.parquet", "table_hash": "0" * 16,
        "feature_config": {"long_side": 256}, "families": ["grayhist"], "n_features": 3,
        "n_images": 10, "n_patients": 8,
        "cv": {"n_splits": 5, "seed": 0, "grouped_by": "patient_id",
               "stratified_on": "abnormal", "patient_leaks": 0, "n_boot": 0},
        "min_images": 25, "labels": ["A", "abnormal"], "skipped_labels": {"B": 2},
        "label_counts": {"A": {"images": 5, "patients": 4, "modelled": True},
                         "abnormal": {"images": 6, "patients": 5, "modelled": True}},
        "models": ["lr"], "ensemble_members": ["rf", "lr"], "model_params": {},
        "results": {"lr": res}, "ablations": None, "development": None, "dev_seeds": [],
        "metadata": None, "best_model": "lr",
        "target": {"metric": "m", "threshold": 0.7, "model": "lr", "value": float("nan"),
                   "met": False},
        "anchors": [], "seconds": 1.0,
    }
    r = MultilabelReport.from_dict(d)
    back = MultilabelReport.from_dict(json.loads(multilabel_json(r)))
    assert multilabel_markdown(back) == multilabel_markdown(r)
    assert "n/a" in multilabel_markdown(r)  # the X-ray reports' missing-value mark
    assert list(back.to_dict()) == list(d)
