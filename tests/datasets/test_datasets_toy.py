"""A third data set, registered from one test file (``_toy_dataset.py``), runs ``data``,
``features``, ``cv``, ``train`` and ``score`` through the command line with no other change to
the library: the proof that a data set is a spec."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from _toy_dataset import CLASSES, TOY, make_toy_folder

from hamfeat.cli import main
from hamfeat.datasets import _registry, dataset_names, register_dataset


@pytest.fixture
def toy():
    """The toy registered (a plain :func:`register_dataset` call) for one test, then removed
    so that no other test sees a third ``--dataset`` choice."""
    register_dataset(TOY)
    yield TOY
    _registry._REGISTRY.pop(TOY.name, None)


def test_toy_data_set_through_the_cli(toy, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert dataset_names() == ("ham10000", "cxr14", "toyshapes")
    root = make_toy_folder(tmp_path / "toy")
    assert main(["data", "--dataset", "toyshapes", "--data", str(root)]) == 0
    assert "36 images, 18 objects" in capsys.readouterr().out

    table = tmp_path / "toy.parquet"
    assert main(["features", "--dataset", "toyshapes", "--data", str(root), "-o", str(table),
                 "--jobs", "1", "--no-cache"]) == 0, capsys.readouterr().err
    t = pd.read_parquet(table)
    assert len(t) == 36 and {"shape", "object_id"} <= set(t.columns)
    meta = t.attrs["hamfeat"]
    assert meta["dataset"] == "toyshapes"
    assert meta["config"]["long_side"] == 48 and meta["config"]["region"] == "whole"
    assert meta["config"]["families"] == ["color", "glcm", "lbp"]  # the preset's families
    assert any(c.startswith("glcm") for c in t.columns)
    assert not any(c.startswith(("shape_", "gray")) for c in t.columns)

    # cv: the spec's default report folder, its classes and group column
    assert main(["cv", "--dataset", "toyshapes", "--features", str(table)]) == 0, (
        capsys.readouterr().err)
    report = json.loads((tmp_path / "reports/toyshapes/cv_report.json").read_text())
    assert list(report["class_counts"]) == list(CLASSES)
    assert report["class_counts"] == {c: 12 for c in CLASSES}
    assert report["cv"]["groups"] == "object_id" and report["n_lesions"] == 18
    assert set(report["models"]) >= {"lr", "knn"}  # the spec's cv_models
    assert report["models"]["lr"]["summary"]["image"]["argmax"]["balanced_accuracy"] > 0.6
    assert any("ablations skipped" in n for n in report["notes"])
    capsys.readouterr()

    model = tmp_path / "toy.skops"
    assert main(["train", "--dataset", "toyshapes", "--features", str(table),
                 "-o", str(model)]) == 0
    assert "model lr written" in capsys.readouterr().err  # the spec's default model

    scores = tmp_path / "scores.csv"
    assert main(["score", str(root), "--model", str(model), "--dataset", "toyshapes",
                 "-o", str(scores), "--jobs", "1"]) == 0, capsys.readouterr().err
    s = pd.read_csv(scores)
    assert {f"p_{c}" for c in CLASSES} <= set(s.columns) and len(s) == 36
    truth = pd.read_csv(root / "labels.csv").set_index("image_id")["shape"]
    assert (s["prediction"].to_numpy() == truth.loc[s["image_id"]].to_numpy()).mean() > 0.8
    capsys.readouterr()
    assert main(["score", str(root), "--model", str(model), "--dataset", "ham10000"]) == 3
    assert "model is for toyshapes, not ham10000" in capsys.readouterr().err


@pytest.mark.parametrize("argv, flags", [
    (["features", "-o", "f.parquet", "--hair-removal"], "--hair-removal"),
    (["train", "--features", "f.parquet", "-o", "m.skops", "--families", "grayhist"],
     "--families"),
    (["cv", "--features", "f.parquet", "--auto-features", "a.parquet", "--html"],
     "--auto-features, --html"),
    (["score", "dir", "--lesion-map", "m.csv"], "--lesion-map"),
])
def test_toy_refuses_options_it_does_not_take(toy, argv, flags, tmp_path: Path, capsys,
                                              monkeypatch) -> None:
    """The dermoscopy-only options, refused with today's message, naming the toy."""
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--dataset", "toyshapes"]) == 2
    verb = "applies" if "," not in flags else "apply"
    assert capsys.readouterr().err.splitlines() == [
        f"hamfeat {argv[0]}: error: {flags} only {verb} to dermoscopy (HAM10000), "
        "not --dataset toyshapes"
    ]
    assert not any(tmp_path.iterdir())


def test_toy_model_names_and_help(toy, capsys) -> None:
    assert main(["train", "--dataset", "toyshapes", "--features", "f", "-o", "m",
                 "--model", "svm"]) == 2
    assert "--model: unknown 'svm'; choose from lr, knn, rf" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["features", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "toyshapes (generated toy shapes)" in out and "toyshapes: 48" in out
