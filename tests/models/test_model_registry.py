"""Tests of the model registry (hamfeat.models.registry) and of old model files loading.

``tests/data/model_params.json`` was written by ``tests/data/freeze_models.py`` from main's
code before the models became a registry: every model must keep those parameters and, fitted
on the same small synthetic table, give the same probabilities.
``tests/data/multilabel_params.json`` (written by ``tests/data/freeze_multilabel.py`` at commit
e677030) does the same for the X-ray one-vs-rest factory, with non-default seeds, families,
threads and parameter tables.
"""

from __future__ import annotations

import importlib.util
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _paths import DATA
from hamfeat._warnings import capture
from hamfeat.errors import ModelError
from hamfeat.models import (
    LEGACY_TYPE_PATHS,
    MODEL_NAMES,
    MULTICLASS,
    MULTILABEL,
    FeatureSelector,
    ModelSpec,
    PriorCorrectedClassifier,
    _is_trusted_type,
    get_model_spec,
    load_model,
    make_model,
    make_multilabel_model,
    missing_families,
    model_families,
    model_feature_names,
    model_names,
    register_model,
    save_model,
    task_params,
)
from hamfeat.models import registry as _registry
from hamfeat.synthetic import make_synthetic_table
from hamfeat.tables import table_config, table_hash

_spec = importlib.util.spec_from_file_location("freeze_models", DATA / "freeze_models.py")
_freeze = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_freeze)
TABLE, params_of = _freeze.TABLE, _freeze.params_of
FROZEN = json.loads((DATA / "model_params.json").read_text())
_spec_ml = importlib.util.spec_from_file_location("freeze_multilabel",
                                                  DATA / "freeze_multilabel.py")
_freeze_ml = importlib.util.module_from_spec(_spec_ml)
_spec_ml.loader.exec_module(_freeze_ml)
FROZEN_ML = json.loads((DATA / "multilabel_params.json").read_text())


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return make_synthetic_table(TABLE["n_lesions"], seed=TABLE["seed"],
                                n_per_family=TABLE["n_per_family"])


def test_the_frozen_listing_covers_every_model() -> None:
    assert tuple(FROZEN["single"]) == tuple(sorted(MODEL_NAMES))
    assert set(FROZEN["multilabel"]) == {*MODEL_NAMES, "patchkm"}


@pytest.mark.parametrize("name", sorted(FROZEN["single"]))
def test_make_model_has_the_frozen_params(name: str) -> None:
    assert params_of(make_model(name)) == FROZEN["single"][name]


@pytest.mark.parametrize("name", sorted(FROZEN["multilabel"]))
def test_make_multilabel_model_has_the_frozen_params(name: str) -> None:
    assert params_of(make_multilabel_model(name)) == FROZEN["multilabel"][name]


def test_the_frozen_multilabel_listing_covers_every_xray_name() -> None:
    names = {k.split("/")[0] for k in FROZEN_ML["params"]}
    assert names == {*MODEL_NAMES, *model_names(MULTILABEL)} == set(_freeze_ml.NAMES)
    assert FROZEN_ML["factory"] == "hamfeat.evaluate_multilabel:make_multilabel_model"


@pytest.mark.parametrize("key", sorted(FROZEN_ML["params"]))
def test_multilabel_variants_have_the_frozen_params(key: str) -> None:
    """Frozen from the X-ray factory before the registry (freeze_multilabel.py): seeds,
    families, threads and parameter tables give the same models."""
    name, variant = key.split("/")
    model = make_multilabel_model(name, **_freeze_ml.VARIANTS[variant])
    assert params_of(model) == FROZEN_ML["params"][key]


def test_unknown_multilabel_names_have_the_frozen_message() -> None:
    for bad, message in FROZEN_ML["unknown"].items():
        with pytest.raises(ValueError) as err:
            make_multilabel_model(bad)
        assert str(err.value) == message


@pytest.fixture(scope="module")
def multilabel_table():
    return _freeze_ml.multilabel_table()


@pytest.mark.parametrize("key", sorted(FROZEN_ML["proba"]))
def test_multilabel_probabilities_are_the_frozen_ones(key: str, multilabel_table) -> None:
    name, variant = key.split("/")
    X, Y = multilabel_table
    proba = _freeze_ml.fit_proba(make_multilabel_model(name, **_freeze_ml.VARIANTS[variant]), X, Y)
    want = FROZEN_ML["proba"][key]
    if isinstance(want, str):  # the frozen error (knn_seed reads no X-ray family)
        assert proba == want
    else:
        np.testing.assert_array_equal(
            proba, np.array([[float.fromhex(p) for p in row] for row in want]))


@pytest.mark.parametrize("name", sorted(FROZEN["proba"]))
def test_fitted_probabilities_are_the_frozen_ones(name: str, table) -> None:
    with capture():
        proba = make_model(name).fit(table, table["dx"].to_numpy()).predict_proba(table)
    want = np.array([[float.fromhex(p) for p in row] for row in FROZEN["proba"][name]])
    np.testing.assert_array_equal(proba, want)


def test_task_lists_are_the_cli_lists() -> None:
    assert MODEL_NAMES == ("knn", "svm", "rf", "hgb", "lr", "mlp", "ensemble", "knn_seed")
    assert model_names(MULTICLASS, default=True) == MODEL_NAMES[:-1]
    assert model_names(MULTILABEL) == ("lr", "rf", "knn", "ensemble", "patchkm")
    assert model_names(MULTILABEL, default=True) == model_names(MULTILABEL)
    # the X-ray report's "model_params", keys in this order
    assert list(task_params(MULTILABEL).items()) == [
        ("rf", {"n_estimators": 150, "min_samples_leaf": 5}), ("svm", {"C": 1.0}),
        ("lr", {"C": 0.003}),
    ]


def test_unknown_names_say_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown model 'patchkm'; known: knn, svm, rf"):
        make_model("patchkm")  # a multi-label model only
    with pytest.raises(ValueError, match=r"unknown model 'x'; known: knn, .*knn_seed, patchkm$"):
        make_multilabel_model("x")
    with pytest.raises(ValueError, match=r"ensemble: bad members \['knn_seed'\]"):
        make_model("ensemble", members=("hgb", "knn_seed"))
    with pytest.raises(ValueError, match="ensemble: bad members"):
        make_model("ensemble", members=("patchkm",))
    with pytest.raises(ValueError, match="mlp: no class weights"):
        make_model("mlp", class_weight="balanced")


def test_fixed_families_are_spec_fields(table) -> None:
    assert model_families("patchkm", ("grayhist",)) == ("graypix",)
    assert model_families("lr", ("grayhist", "graylbp")) == ("grayhist", "graylbp")
    assert missing_families("patchkm", table.columns) == ("graypix",)
    assert missing_families("lr", table.columns) == ()
    assert missing_families("patchkm", ["graypix_g64_r00c00"]) == ()


def test_multilabel_default_families_are_the_cxr_ones() -> None:
    from hamfeat.datasets.cxr14 import CXR_MODEL_FAMILIES
    from hamfeat.models import MULTILABEL_FAMILIES

    assert MULTILABEL_FAMILIES == CXR_MODEL_FAMILIES


@pytest.fixture()
def extra_model():
    """A model registered for one test: a shallow decision tree."""

    def build(ctx):
        from sklearn.tree import DecisionTreeClassifier

        return DecisionTreeClassifier(random_state=ctx.random_state,
                                      class_weight=ctx.class_weight, **ctx.params)

    spec = register_model(ModelSpec(
        "tree", "a shallow decision tree", build, {"max_depth": 3},
        class_weight="balanced", tasks={MULTICLASS: 8, MULTILABEL: 9},
    ))
    yield spec
    del _registry._REGISTRY[spec.name]


def test_adding_a_model_is_one_entry(extra_model, table) -> None:
    assert get_model_spec("tree") is extra_model
    assert model_names(MULTICLASS)[-1] == "tree" and "tree" in model_names(MULTILABEL)
    assert "tree" not in model_names(MULTICLASS, default=True)
    model = make_model("tree", max_depth=2).fit(table, table["dx"])
    clf = model.named_steps["clf"].estimator_
    assert clf.max_depth == 2 and clf.class_weight == "balanced"
    ens = make_model("ensemble", members=("tree", "lr"))
    assert [n for n, _ in ens[-1].estimator.estimators] == ["tree", "lr"]
    ovr = make_multilabel_model("tree", families=("color",))
    assert ovr.estimator.named_steps["select"].families == ("color",)
    with pytest.raises(ValueError, match="already registered"):
        register_model(extra_model)


# ------------------------------------------------------------------------- persistence


@pytest.fixture(scope="module")
def fitted(table):
    return make_model("lr", random_state=0).fit(table, table["dx"].to_numpy())


def _save(model, table, path: Path) -> Path:
    return save_model(
        model, path, feature_names=model_feature_names(model),
        feature_config=table_config(table), classes=list(model.classes_),
        training_table_hash=table_hash(table),
    )


def _rewrite_types(path: Path, out: Path, mapping: dict[str, str]) -> Path:
    """Copy a skops file, renaming the types of its schema (``module.Class`` -> another)."""

    def walk(node):
        if isinstance(node, dict):
            name = f"{node.get('__module__')}.{node.get('__class__')}"
            if name in mapping:
                node["__module__"], _, node["__class__"] = mapping[name].rpartition(".")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "schema.json":
                schema = json.loads(data)
                walk(schema)
                data = json.dumps(schema).encode()
            zout.writestr(item, data)
    return out


def _as_old_file(path: Path, out: Path) -> Path:
    """Rewrite a skops file the way main (models.py, one module) wrote it: the moved classes
    recorded under ``hamfeat.models``."""
    return _rewrite_types(path, out, {new: old for old, new in LEGACY_TYPE_PATHS.items()})


def test_new_files_name_classes_where_they_are_defined(fitted, table, tmp_path) -> None:
    import skops.io as sio

    path = _save(fitted, table, tmp_path / "new.skops")
    types = set(sio.get_untrusted_types(file=path))
    assert "hamfeat.models.selection.FeatureSelector" in types
    assert "hamfeat.models.decision.PriorCorrectedClassifier" in types


def test_old_module_paths_load_through_the_mapping(fitted, table, tmp_path) -> None:
    import skops.io as sio

    new = _save(fitted, table, tmp_path / "new.skops")
    old = _as_old_file(new, tmp_path / "old.skops")
    types = set(sio.get_untrusted_types(file=old))
    assert set(LEGACY_TYPE_PATHS) <= types, types  # the rewrite did what an old file has
    assert not any(t.startswith("hamfeat.models.selection") for t in types)
    loaded = load_model(old)
    assert isinstance(loaded.estimator.named_steps["select"], FeatureSelector)
    assert isinstance(loaded.estimator.named_steps["clf"], PriorCorrectedClassifier)
    np.testing.assert_array_equal(
        loaded.predict_proba(table).to_numpy(), fitted.predict_proba(table)
    )


def test_trust_check_is_exact() -> None:
    for old, new in LEGACY_TYPE_PATHS.items():
        assert _is_trusted_type(old) and _is_trusted_type(new)
    assert _is_trusted_type("hamfeat.encoders.PatchKMeansEncoder")
    assert _is_trusted_type("hamfeat.novelty.NoveltyDetector")
    # classes only at the path that defines them; no other hamfeat path, no imported names
    assert not _is_trusted_type("hamfeat.models.LoadedModel")
    assert not _is_trusted_type("hamfeat.models.persistence.Path")
    assert not _is_trusted_type("hamfeat.models.selection.BaseEstimator")
    assert not _is_trusted_type("hamfeat.models.persistence.LoadedModel")
    assert not _is_trusted_type("hamfeat.models.registry.ModelSpec")
    assert not _is_trusted_type("hamfeat.models.make_model")
    assert not _is_trusted_type("hamfeat.extract.ExtractionResult")


def test_a_mapped_old_path_must_resolve_to_its_class(monkeypatch) -> None:
    import hamfeat.models as pkg

    monkeypatch.setattr(pkg, "FeatureSelector", PriorCorrectedClassifier)
    assert not _is_trusted_type("hamfeat.models.FeatureSelector")


REAL_MODEL = Path("/work/main/out/mainjob/model.skops")
REAL_TABLE = Path("/work/main/out/features_auto.parquet")


@pytest.mark.skipif(not (REAL_MODEL.is_file() and REAL_TABLE.is_file()),
                    reason="the shipped model and table are not here")
def test_the_real_model_written_by_main_loads_and_predicts() -> None:
    rows = pd.read_parquet(REAL_TABLE).iloc[:6]
    model = load_model(REAL_MODEL, expected_feature_names=rows.columns)
    proba = model.predict_proba(rows)
    assert proba.shape == (6, 7) and np.allclose(proba.sum(axis=1), 1.0)
    assert model.novelty is not None
    assert isinstance(model.estimator.named_steps["select"], FeatureSelector)


def test_refused_file_still_names_the_type(tmp_path, fitted, table) -> None:
    path = _save(fitted, table, tmp_path / "m.skops")
    bad = _rewrite_types(path, tmp_path / "bad.skops", {
        "hamfeat.models.selection.FeatureSelector": "hamfeat.models.persistence.Path"})
    with pytest.raises(ModelError, match=r"untrusted type.*hamfeat\.models\.persistence\.Path"):
        load_model(bad)
