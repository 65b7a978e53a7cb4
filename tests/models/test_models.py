"""Tests of hamfeat.models: pipelines, the decision rule, skops persistence and its refusals."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from hamfeat.datasets.ham10000 import CLASSES
from hamfeat.errors import ModelError
from hamfeat.features import FEATURES_VERSION
from hamfeat.models import (
    ENSEMBLE_MEMBERS,
    FAMILY_NAMES,
    FeatureSelector,
    PriorCorrectedClassifier,
    _is_trusted_type,
    apply_decision_rule,
    feature_columns,
    load_model,
    make_model,
    model_feature_names,
    save_model,
)
from hamfeat.synthetic import make_synthetic_table
from hamfeat.tables import table_config, table_hash

FAST = {
    "rf": {"n_estimators": 15},
    "hgb": {"max_iter": 5},
    "svm": {"C": 1.0},
    "mlp": {"n_seeds": 2, "max_iter": 30},
}


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return make_synthetic_table(150, seed=3)


@pytest.fixture(scope="module")
def y(table) -> np.ndarray:
    return table["dx"].to_numpy()


@pytest.fixture(scope="module")
def fitted(table, y):
    return make_model("rf", random_state=0, **FAST["rf"]).fit(table, y)


@pytest.fixture()
def saved(tmp_path, table, fitted) -> Path:
    return save_model(
        fitted,
        tmp_path / "model.skops",
        feature_names=model_feature_names(fitted),
        feature_config=table_config(table),
        classes=list(fitted.classes_),
        training_table_hash=table_hash(table),
        extra={"alpha": 0.5},
    )


# ---------------------------------------------------------------------------- pipelines


@pytest.mark.parametrize("name", ["knn", "svm", "rf", "hgb", "ensemble", "knn_seed", "lr", "mlp"])
def test_every_model_is_a_pipeline_on_the_table(name, table, y):
    params = FAST.get(name, {})
    if name == "ensemble":
        params = {"members": ("knn", "lr")}
    model = make_model(name, **params)
    assert isinstance(model, Pipeline)
    assert isinstance(model.steps[-1][1], PriorCorrectedClassifier)
    model.fit(table, y)
    proba = model.predict_proba(table)
    assert proba.shape == (len(table), len(CLASSES))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert list(model.classes_) == list(CLASSES)
    # well above chance on the (separable) training data
    assert (model.predict(table) == y).mean() > 0.5


def test_selector_picks_families_and_ignores_other_columns(table):
    sel = FeatureSelector(families=("color", "shape")).fit(table)
    assert sel.columns_ and all(c.split("_")[0] in ("color", "shape") for c in sel.columns_)
    assert "dx" not in sel.columns_ and "age" not in sel.columns_
    excl = FeatureSelector(exclude=("glcm",)).fit(table)
    assert not any(c.startswith("glcm_") for c in excl.columns_)
    assert len(excl.columns_) == len(feature_columns(table.columns)) - len(
        feature_columns(table.columns, ["glcm"])
    )
    # a table with extra and reordered columns gives the same matrix
    other = table[list(reversed(table.columns))].assign(extra_column=1.0)
    np.testing.assert_array_equal(sel.transform(other), sel.transform(table))
    with pytest.raises(ValueError, match="missing"):
        sel.transform(table.drop(columns=[sel.columns_[0]]))
    with pytest.raises(ValueError, match="unknown feature famil"):
        FeatureSelector(families=("colour",)).fit(table)


def test_seed_model_reads_only_simple_colour_features(table, y):
    model = make_model("knn_seed").fit(table, y)
    names = model_feature_names(model)
    assert names and all(n.startswith(("color_rgb_", "color_hsv_")) for n in names)
    assert model.named_steps["clf"].estimator_.named_steps["clf"].n_neighbors == 5


def test_metadata_variant_adds_one_hot_columns(table, y):
    sel = FeatureSelector(metadata=True).fit(table)
    out = sel.transform(table)
    assert out.shape[1] == len(sel.columns_) + 1 + sum(len(c) for c in sel.categories_.values())
    assert "sex=female" in sel.get_feature_names_out()


def test_imputation_handles_nan_inside_the_pipeline(table, y):
    t = table.copy()
    col = feature_columns(t.columns)[0]
    t[col] = np.nan  # a fully empty column must not break any model
    make_model("svm", **FAST["svm"]).fit(t, y).predict_proba(t)


# ---------------------------------------------------------------------------- decision rule


def test_apply_decision_rule():
    p = np.array([[0.6, 0.4], [0.95, 0.05]])
    prior = np.array([0.9, 0.1])
    assert apply_decision_rule(p, prior, 0.0).tolist() == [0, 0]
    assert apply_decision_rule(p, prior, 1.0).tolist() == [1, 0]
    # sqrt correction: 0.6/0.949 = 0.632 < 0.4/0.316 = 1.26
    assert apply_decision_rule(p, prior, 0.5).tolist() == [1, 0]


def test_prior_corrected_classifier_rule_and_priors(table, y):
    X = table[feature_columns(table.columns)].fillna(0.0).to_numpy()
    base = PriorCorrectedClassifier(LogisticRegression(C=1e-3, max_iter=500), alpha=0.0).fit(X, y)
    counts = pd.Series(y).value_counts(normalize=True).reindex(CLASSES).to_numpy()
    np.testing.assert_allclose(base.class_prior_, counts)
    p = base.predict_proba(X)
    np.testing.assert_array_equal(base.predict(X), base.classes_[p.argmax(axis=1)])
    full = PriorCorrectedClassifier(LogisticRegression(C=1e-3, max_iter=500), alpha=1.0).fit(X, y)
    np.testing.assert_allclose(full.predict_proba(X), p)  # probabilities untouched
    np.testing.assert_array_equal(full.predict(X), full.classes_[(p / counts).argmax(axis=1)])
    # the correction moves predictions towards rare classes
    nv = list(CLASSES).index("nv")
    assert (full.predict(X) == CLASSES[nv]).sum() < (base.predict(X) == CLASSES[nv]).sum()
    with pytest.raises(ValueError, match="alpha"):
        PriorCorrectedClassifier(LogisticRegression(), alpha=-1).fit(X, y)


def test_priors_come_from_training_labels_not_resampled(table, y):
    model = make_model("knn", resample="over", alpha=1.0).fit(table, y)
    clf = model.named_steps["clf"]
    counts = pd.Series(y).value_counts(normalize=True).reindex(CLASSES).to_numpy()
    np.testing.assert_allclose(clf.class_prior_, counts)
    # resampling happened inside (training only): the KNN saw a balanced set
    knn = clf.estimator_.named_steps["clf"]
    assert knn.n_samples_fit_ == len(CLASSES) * pd.Series(y).value_counts().max()
    assert len(model.predict(table)) == len(table)  # never resampled at predict time


def test_soft_voting_equals_mean_of_members(table, y):
    """The CV derives the ensemble from its members' out-of-fold probabilities: exact."""
    ens = make_model("ensemble", members=("knn", "svm"), alpha=0.0).fit(table, y)
    knn = make_model("knn").fit(table, y)
    svm = make_model("svm").fit(table, y)
    mean = (knn.predict_proba(table) + svm.predict_proba(table)) / 2
    np.testing.assert_allclose(ens.predict_proba(table), mean, atol=1e-12)


def test_mlp_is_the_mean_of_networks_with_consecutive_seeds(table, y):
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        bag = make_model("mlp", random_state=7, n_seeds=3, max_iter=20).fit(table, y)
        nets = [
            make_model("mlp", random_state=7 + i, n_seeds=1, max_iter=20).fit(table, y)
            for i in range(3)
        ]
    mean = np.mean([n.predict_proba(table) for n in nets], axis=0)
    np.testing.assert_allclose(bag.predict_proba(table), mean, atol=1e-12)
    # the networks really differ (otherwise the bag would be pointless)
    assert np.abs(nets[0].predict_proba(table) - nets[1].predict_proba(table)).max() > 1e-3
    with pytest.raises(ValueError, match="class weights"):
        make_model("mlp", class_weight="balanced")


def test_default_ensemble_round_trips_through_skops(tmp_path, table, y):
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    params = {
        "hgb": {"max_iter": 5},
        "mlp": {"n_seeds": 2, "max_iter": 20},
    }
    model = make_model("ensemble")
    # keep the default members, made fast
    for step, member in model[-1].estimator.estimators:
        clf = member[-1] if isinstance(member, Pipeline) else member
        kw = params.get(step, {})
        if step == "mlp":
            for _, net in clf.estimators:
                net.set_params(max_iter=20)
        elif kw:
            clf.set_params(**kw)
    assert [s for s, _ in model[-1].estimator.estimators] == list(ENSEMBLE_MEMBERS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(table, y)
    path = save_model(
        model,
        tmp_path / "ens.skops",
        feature_names=model_feature_names(model),
        feature_config=table_config(table),
        classes=list(model.classes_),
        training_table_hash=table_hash(table),
    )
    loaded = load_model(path, expected_feature_names=table.columns)
    np.testing.assert_array_equal(
        loaded.estimator.predict_proba(table), model.predict_proba(table)
    )


def test_own_estimators_pass_sklearn_checks():
    from sklearn.utils.estimator_checks import check_estimator

    for est in (PriorCorrectedClassifier(LogisticRegression(max_iter=200)), FeatureSelector()):
        results = check_estimator(est, on_fail=None)
        failed = [r["check_name"] for r in results if r["status"] == "failed"]
        assert not failed, failed


def test_unknown_model_and_bad_options():
    with pytest.raises(ValueError, match="unknown model"):
        make_model("xgboost")
    with pytest.raises(ValueError, match="class weights"):
        make_model("knn", class_weight="balanced")
    with pytest.raises(ValueError, match="resampling"):
        make_model("rf", resample="bootstrap")
    assert set(FAMILY_NAMES) >= {"color", "shape"}


# ---------------------------------------------------------------------------- persistence


def test_round_trip_keeps_predictions_and_metadata(saved, table, fitted):
    loaded = load_model(
        saved,
        expected_feature_names=table.columns,
        expected_config=table.attrs["hamfeat"]["config"],
    )
    np.testing.assert_array_equal(
        loaded.estimator.predict_proba(table), fitted.predict_proba(table)
    )
    assert loaded.classes == list(CLASSES)
    assert loaded.features_version == FEATURES_VERSION
    assert loaded.feature_names == model_feature_names(fitted)
    assert loaded.training_table_hash == table_hash(table)
    assert loaded.extra == {"alpha": 0.5}
    assert loaded.hamfeat_version
    assert list(loaded.predict_proba(table).columns) == list(CLASSES)
    # skops, not pickle: a zip with a schema
    with zipfile.ZipFile(saved) as z:
        assert "schema.json" in z.namelist()


def _assert_refused(path: Path, match: str, **kw) -> None:
    with pytest.raises(ModelError, match=match) as info:
        load_model(path, **kw)
    msg = str(info.value)
    assert msg.startswith(str(path)) and "\n" not in msg


def test_refuses_file_that_is_not_skops(tmp_path):
    p = tmp_path / "model.skops"
    p.write_bytes(b"\x80\x04\x95 this is a pickle, not a zip")
    _assert_refused(p, "not a skops model file")
    _assert_refused(tmp_path / "absent.skops", "not found")
    bad_zip = tmp_path / "bad.skops"
    with zipfile.ZipFile(bad_zip, "w") as z:
        z.writestr("hello.txt", "no schema here")
    _assert_refused(bad_zip, "not a readable skops")


def test_refuses_skops_file_that_is_not_a_hamfeat_model(tmp_path, table, y):
    p = tmp_path / "plain.skops"
    sio.dump(LogisticRegression().fit(np.eye(7), list(CLASSES)), p)
    _assert_refused(p, "not a hamfeat model")


class Injected:
    """A type no allow-list knows."""

    def __init__(self) -> None:
        self.payload = "rm -rf /"


def test_refuses_injected_unknown_type(tmp_path, saved):
    # 1. a model object carrying an unknown type
    obj = sio.load(saved, trusted=sio.get_untrusted_types(file=saved))
    obj["estimator"].named_steps["clf"].injected_ = Injected()
    p = tmp_path / "injected.skops"
    sio.dump(obj, p)
    _assert_refused(p, r"untrusted type.*Injected")


def test_refuses_tampered_file(tmp_path, saved):
    # 2. a valid file whose schema was edited to construct subprocess.Popen instead
    with zipfile.ZipFile(saved) as z:
        files = {n: z.read(n) for n in z.namelist()}
    schema = json.loads(files["schema.json"])

    def tamper(node):
        if isinstance(node, dict):
            if node.get("__class__") == "FeatureSelector":
                node["__module__"], node["__class__"] = "subprocess", "Popen"
                return True
            return any(tamper(v) for v in node.values())
        if isinstance(node, list):
            return any(tamper(v) for v in node)
        return False

    assert tamper(schema)
    files["schema.json"] = json.dumps(schema).encode()
    p = tmp_path / "tampered.skops"
    with zipfile.ZipFile(p, "w") as z:
        for n, data in files.items():
            z.writestr(n, data)
    _assert_refused(p, r"untrusted type.*subprocess\.Popen")


def test_refuses_other_features_version(tmp_path, table, fitted):
    config = {**table_config(table), "features_version": FEATURES_VERSION + 1}
    p = save_model(
        fitted,
        tmp_path / "old.skops",
        feature_names=model_feature_names(fitted),
        feature_config=config,
        classes=list(CLASSES),
        training_table_hash="x",
    )
    _assert_refused(p, "features version")


def test_refuses_mismatched_features_and_config(saved, table, fitted):
    names = model_feature_names(fitted)
    _assert_refused(saved, "feature names do not match", expected_feature_names=names[1:])
    renamed = [n.replace("color_", "colour_") for n in names]
    _assert_refused(saved, "feature names do not match", expected_feature_names=renamed)
    cfg = dict(table.attrs["hamfeat"]["config"])
    cfg["color_constancy"] = not cfg["color_constancy"]
    _assert_refused(saved, "color_constancy", expected_config=cfg)
    # the matching ones load
    load_model(saved, expected_feature_names=names, expected_config=table_config(table))


def test_allow_list_is_classes_of_known_packages_only():
    assert _is_trusted_type("hamfeat.models.FeatureSelector")
    assert _is_trusted_type("sklearn.ensemble._forest.RandomForestClassifier")
    assert not _is_trusted_type("hamfeat.models.save_model")  # a function
    assert not _is_trusted_type("sklearn.utils.deprecated_function_that_does_not_exist")
    assert not _is_trusted_type("os.system")
    assert not _is_trusted_type("builtins.eval")
    assert not _is_trusted_type("sklearnx.Evil")


def test_parallel_member_fits_give_the_same_model(table, y) -> None:
    """``n_jobs`` (``train --jobs``) fits the members in parallel processes, nothing else."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = make_model("ensemble", members=("hgb", "lr", "mlp"), random_state=1).fit(table, y)
        two = make_model(
            "ensemble", members=("hgb", "lr", "mlp"), random_state=1, n_jobs=2
        ).fit(table, y)
    np.testing.assert_array_equal(one.predict_proba(table), two.predict_proba(table))


def test_train_jobs_negative_is_a_usage_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "hamfeat", "train", "--features", str(tmp_path / "t.parquet"),
         "-o", str(tmp_path / "m.skops"), "--jobs", "-3"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("hamfeat train: error:") and "--jobs" in last
    assert "Traceback" not in proc.stderr


def test_saved_model_drops_training_state_only(table, y, tmp_path) -> None:
    """The MLP's optimiser moments and early-stopping copy are not saved; predictions are."""
    import warnings

    from hamfeat.models import drop_training_state

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = make_model("ensemble", members=("hgb", "mlp"), random_state=2).fit(table, y)
    before = model.predict_proba(table)
    nets = [
        net
        for member in model.named_steps["clf"].estimator_.estimators_
        for net in getattr(member[-1] if hasattr(member, "steps") else member, "estimators_", [])
    ]
    assert nets and all(hasattr(n, "_optimizer") for n in nets)
    assert drop_training_state(model) is model
    assert not any(hasattr(n, a) for n in nets for a in ("_optimizer", "_best_coefs"))
    np.testing.assert_array_equal(model.predict_proba(table), before)
    path = save_model(model, tmp_path / "m.skops", feature_names=model_feature_names(model),
                      feature_config=table_config(table), classes=list(model.classes_),
                      training_table_hash=table_hash(table))
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.estimator.predict_proba(table), before)
