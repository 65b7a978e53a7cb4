"""The data set registry (:mod:`hamfeat.datasets`): specs drive the CLI's ``--dataset`` choices,
its option checks, the folder search and the feature presets."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from _paths import ROOT
from hamfeat.cli import DEFAULT_REPORT_DIR, DEFAULT_REPORT_DIR_CXR14, main
from hamfeat.datasets import (
    DEFAULT_DATASET,
    MULTICLASS,
    MULTILABEL,
    dataset_names,
    get_dataset,
    register_dataset,
    registered_datasets,
)
from hamfeat.datasets.discovery import find_data_dir
from hamfeat.errors import DatasetError


def test_builtin_specs() -> None:
    assert dataset_names()[:2] == ("ham10000", "cxr14") and DEFAULT_DATASET == "ham10000"
    ham, cxr = get_dataset("ham10000"), get_dataset("cxr14")
    assert (ham.task, ham.label_column, ham.group_column) == (MULTICLASS, "dx", "lesion_id")
    assert (cxr.task, cxr.label_column, cxr.group_column) == (
        MULTILABEL, "finding_labels", "patient_id")
    assert list(registered_datasets())[:2] == ["ham10000", "cxr14"]
    assert (ham.report_dir, cxr.report_dir) == (DEFAULT_REPORT_DIR, DEFAULT_REPORT_DIR_CXR14)
    assert not ham.tag_tables and cxr.tag_tables


def test_specs_agree_with_the_modules_they_name() -> None:
    """Specs declare names as strings; they must be the libraries' own."""
    from hamfeat.datasets.cxr14 import CXR_LONG_SIDE, FINDINGS
    from hamfeat.datasets.ham10000 import CLASSES, MASK_DIRS
    from hamfeat.models import MODEL_NAMES
    from hamfeat.models_multilabel import CXR_MODELS, PATCHKM
    from hamfeat.pipeline import CANONICAL_LONG_SIDE

    ham, cxr = get_dataset("ham10000"), get_dataset("cxr14")
    assert ham.classes == CLASSES and cxr.classes == FINDINGS
    assert ham.features.long_side == CANONICAL_LONG_SIDE and ham.features.mask_dirs == MASK_DIRS
    assert cxr.features.long_side == CXR_LONG_SIDE and cxr.features.region == "whole"
    assert cxr.models == CXR_MODELS == cxr.cv_models and cxr.default_model == PATCHKM
    assert ham.models is None and ham.default_model in MODEL_NAMES


def test_unknown_name_and_duplicate_registration() -> None:
    with pytest.raises(DatasetError, match=r"unknown data set 'nope'; choose from ham10000, cxr14"):
        get_dataset("nope")
    ham = get_dataset("ham10000")
    assert register_dataset(ham) is ham  # the same spec again (a re-imported module): fine
    with pytest.raises(ValueError, match="'ham10000' is already registered"):
        register_dataset(dataclasses.replace(ham, description="another"))
    assert get_dataset("ham10000") is ham
    with pytest.raises(ValueError, match="task must be"):
        dataclasses.replace(ham, name="x", task="regression")


@pytest.mark.parametrize("command", [
    ["data"], ["features", "-o", "f.parquet"], ["train", "--features", "f", "-o", "m"],
    ["cv", "--features", "f"], ["score", "dir"],
])
def test_cli_unknown_dataset_is_usage_error(command, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*command, "--dataset", "nope"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'nope'" in err and "'ham10000'" in err and "'cxr14'" in err


def test_cli_cxr14_refusal_message_unchanged(capsys, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["features", "-o", "f.parquet", "--masks", "auto", "--color-constancy"]
    assert main([*argv, "--dataset", "cxr14"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "hamfeat features: error: --masks, --color-constancy only apply to dermoscopy "
        "(HAM10000), not --dataset cxr14"
    ]
    assert main(["cv", "--features", "f", "--html", "--dataset", "cxr14"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "hamfeat cv: error: --html only applies to dermoscopy (HAM10000), not --dataset cxr14"
    ]


def test_one_folder_search_for_every_data_set(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name, env, label in (("ham10000", "HAMFEAT_DATA", "HAM10000"),
                             ("cxr14", "HAMFEAT_CXR14_DATA", "ChestX-ray14")):
        spec = get_dataset(name)
        monkeypatch.delenv(env, raising=False)
        with pytest.raises(DatasetError, match=rf"no {label} data found \(tried "
                           rf"{spec.candidates[0]}, {spec.candidates[1]}\); "):
            find_data_dir(name)
        (tmp_path / name).mkdir()
        monkeypatch.setenv(env, str(tmp_path / name))
        assert find_data_dir(name) == tmp_path / name
        with pytest.raises(DatasetError, match=r"missing: data folder not found; .*--data DIR"):
            find_data_dir(spec, tmp_path / "missing")


def _features_args(**kw) -> argparse.Namespace:
    base = {"families": None, "long_side": None, "color_constancy": False,
            "hair_removal": False, "segmenter": None}
    return argparse.Namespace(**{**base, **kw})


def test_feature_presets_give_the_configurations_of_before() -> None:
    """The presets build exactly the configurations the CLI built by hand before the registry."""
    from hamfeat._cli_datasets import feature_config
    from hamfeat.datasets.cxr14 import cxr_config
    from hamfeat.pipeline import FeatureConfig

    ham, cxr = get_dataset("ham10000"), get_dataset("cxr14")
    assert feature_config(ham, _features_args()) == FeatureConfig()
    got = feature_config(ham, _features_args(long_side=200, color_constancy=True,
                                             families="color,shape"))
    assert got == FeatureConfig(families=("color", "shape"), color_constancy=True, long_side=200)
    assert feature_config(cxr, _features_args()) == cxr_config()
    assert feature_config(cxr, _features_args(long_side=128, families="grayhist")) == cxr_config(
        128, ("grayhist",))
    assert feature_config(cxr, _features_args()).as_dict() == cxr_config().as_dict()


def test_parsing_imports_no_data_set_module() -> None:
    """``--dataset`` choices come from the registry without importing pandas or a data set."""
    code = ("import sys; from hamfeat.cli import build_parser; build_parser().parse_args("
            "['data', '--dataset', 'cxr14']); "
            "print(sorted(m for m in sys.modules "
            "if m.startswith(('pandas', 'hamfeat.datasets.'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT).stdout
    assert out.strip() == "['hamfeat.datasets._registry']"
