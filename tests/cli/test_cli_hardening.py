"""Issue #18 (hardening), through the real command line in a subprocess.

1. ``-v`` after the command; 2. ``--help`` complete (registries' names, defaults, --strict);
3. no raw scikit-learn warnings from ``train``/``cv``; 4. ``--masks DIR`` says how many
matched; 5. ``cv`` refuses tables its lesion-grouped folds cannot split; 6. progress lines.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import shutil
import struct
import subprocess
import sys
import termios
import warnings
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from _paths import ROOT
from conftest import make_ham_folder
from hamfeat.cli import build_parser

COMMANDS = ("data", "features", "train-segmenter", "train", "cv", "score", "evaluate", "explain")


class _Warns(ClassifierMixin, BaseEstimator):
    """A classifier whose fit warns (for the worker-warning test)."""

    def fit(self, X, y):
        warnings.warn("odd fit\nsecond line", RuntimeWarning, stacklevel=1)
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        return np.full((len(X), len(self.classes_)), 1 / len(self.classes_))


def run(*args: str, env: dict | None = None, timeout: int = 300, **kw):
    """``python -m hamfeat ARGS`` with this checkout first on the path."""
    full = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "hamfeat", *args], capture_output=True, text=True,
        timeout=timeout, env=full, **kw,
    )


def own_lines_only(stderr: str, command: str) -> None:
    """Every stderr line is one of hamfeat's own (no raw warning, no traceback)."""
    bad = [ln for ln in stderr.splitlines()
           if not (ln.startswith(f"hamfeat {command}: ") or ln.startswith("hamfeat: WARNING: "))]
    assert not bad, stderr


@pytest.fixture
def cache_env(tmp_path: Path) -> dict:
    return {"HAMFEAT_CACHE_DIR": str(tmp_path / "cache")}


def small_table(tmp_path: Path, rows: dict[str, int] | None = None, n_lesions: int = 40,
                name: str = "t.parquet") -> Path:
    """A synthetic feature table (the real layout), optionally cut to ``rows`` per class."""
    from hamfeat.synthetic import make_synthetic_table

    t = make_synthetic_table(n_lesions, seed=1 if rows is None else 2)
    if rows is not None:
        parts = [t[t["dx"] == c].head(n) for c, n in rows.items()]
        attrs, t = t.attrs, pd.concat(parts)
        t.attrs = attrs
    path = tmp_path / name
    t.to_parquet(path)
    return path


# ---------------------------------------------------------------- 1. -v after the command
@pytest.mark.parametrize("command", COMMANDS)
def test_verbose_is_accepted_after_every_command(command: str) -> None:
    p = run(command, "-v", "--help")
    assert p.returncode == 0, p.stderr
    assert "-v, --verbose" in p.stdout
    parser = build_parser()
    required = {
        "features": ["-o", "x.parquet"], "train-segmenter": ["-o", "s.skops"],
        "train": ["--features", "t", "-o", "m"], "cv": ["--features", "t"],
        "score": ["d"], "evaluate": ["--truth", "t.csv"], "explain": ["i.jpg"],
    }.get(command, [])
    assert parser.parse_args([command, *required, "-v"]).verbose is True
    assert parser.parse_args(["-v", command, *required]).verbose is True
    assert parser.parse_args([command, *required, "--verbose"]).verbose is True
    assert parser.parse_args([command, *required]).verbose is False


def test_features_dash_v_after_the_command_lists_the_warnings(tmp_path, cache_env) -> None:
    root = make_ham_folder(tmp_path / "H", 6)
    mask = root / "HAM10000_segmentations_lesion_tschandl" / "ISIC_0000001_segmentation.png"
    cv2.imwrite(str(mask), np.zeros((10, 10), np.uint8))  # another size than its image
    base = ["--data", str(root), "-o", str(tmp_path / "f.parquet")]
    quiet = run("features", *base, env=cache_env)
    after = run("features", *base, "-v", env=cache_env)
    before = run("-v", "features", *base, env=cache_env)
    assert quiet.returncode == after.returncode == before.returncode == 0, after.stderr
    assert "-v lists warnings" in quiet.stderr and "mask ignored" not in quiet.stderr
    for p in (after, before):
        warned = [ln for ln in p.stderr.splitlines() if "mask ignored" in ln]
        assert len(warned) == 1 and str(mask) in warned[0], p.stderr
        assert "-v lists warnings" not in p.stderr


# ------------------------------------------------------------------- 2. --help is complete
def _help(command: str) -> str:
    p = run(command, "--help")
    assert p.returncode == 0, p.stderr
    return " ".join(p.stdout.split())


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_and_positional_has_help_and_its_default(command: str) -> None:
    import argparse

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    p = sub.choices[command]
    text = _help(command)
    formatter = p._get_formatter()
    for action in p._actions:
        if action.help == "==SUPPRESS==":
            continue  # test-only options (train-segmenter --limit, --max-iter)
        shown = formatter._expand_help(action) if action.help else ""
        name = action.option_strings[-1] if action.option_strings else action.metavar
        assert shown.strip() and len(shown) > 12, f"{command} {name}: no help"
        assert " ".join(shown.split()) in text, f"{command} {name}: help not shown"
        default = action.default
        if default not in (None, False, "==SUPPRESS==") and action.dest != "help":
            assert "default" in shown, f"{command} {name}: default {default!r} not shown"
    if command in ("features", "train", "score", "evaluate", "train-segmenter"):
        assert "--jobs N" in text and "0 = all cores" in text


def test_help_lists_the_registries_names() -> None:
    from hamfeat.evaluation.cv import MAIN_MODELS
    from hamfeat.features import DEFAULT_FAMILIES, GRAY_FAMILY_NAMES
    from hamfeat.models import MODEL_NAMES
    from hamfeat.models_multilabel import CXR_MODELS

    features, train, cv = _help("features"), _help("train"), _help("cv")
    assert f"comma-separated: {', '.join(DEFAULT_FAMILIES)}" in features
    assert f"(grayscale): {', '.join(GRAY_FAMILY_NAMES)}" in features
    assert f"comma-separated: {', '.join(DEFAULT_FAMILIES)}" in train
    assert not any(g in train for g in GRAY_FAMILY_NAMES)  # train --families: dermoscopy only
    assert f"{', '.join(MODEL_NAMES)} (default: ensemble)" in train
    assert f"cxr14: {', '.join(CXR_MODELS)} (default: patchkm)" in train
    assert f"{', '.join(MODEL_NAMES)} (default: {','.join(MAIN_MODELS)})" in cv
    assert f"cxr14: {', '.join(CXR_MODELS)} (default: all)" in cv
    for command, positional in (("score", "DIR"), ("explain", "IMAGE"), ("evaluate", "IMAGES")):
        assert re.search(rf"positional arguments: {positional} \w+", _help(command))


def test_strict_help_says_what_it_does(ham_folder: Path) -> None:
    text = _help("data")
    assert "first problem" not in text.replace("not only the first", "")
    assert "every problem is still listed" in text and "exit 3" in text
    csv = ham_folder / "HAM10000_metadata.csv"
    csv.write_text(csv.read_text() + "HAM_8,ISIC_0000123,nv,histo,1,male,back\n"
                   + "HAM_9,ISIC_0000124,nv,histo,1,male,back\n")
    p = run("data", "--data", str(ham_folder), "--strict")
    assert p.returncode == 3  # and, as the help says, every problem listed, not the first
    assert "ISIC_0000123" in p.stderr and "ISIC_0000124" in p.stderr


# ------------------------------------------------ 3. no raw library warnings (train, cv)
@pytest.mark.parametrize("model", ["lr", "ensemble", "svm"])
def test_train_on_a_small_table_prints_no_raw_warning(model: str, tmp_path: Path) -> None:
    """94 rows: QuantileTransformer(n_quantiles=200) and the svm's 3-fold calibration on
    classes of 10-16 images used to print scikit-learn UserWarnings (two lines each)."""
    table = small_table(tmp_path)
    p = run("train", "--features", str(table), "-o", str(tmp_path / "m.skops"), "--model",
            model, "--jobs", "2")
    assert p.returncode == 0, p.stderr
    assert "Warning" not in p.stderr and "warnings.warn" not in p.stderr, p.stderr
    own_lines_only(p.stderr, "train")


def test_cv_on_a_small_table_prints_no_raw_warning(tmp_path: Path) -> None:
    table = small_table(tmp_path)
    p = run("cv", "--features", str(table), "--report-dir", str(tmp_path / "r"), "--models",
            "lr,svm,ensemble", "--no-ablations")
    assert p.returncode == 0, p.stderr
    assert "Warning" not in p.stderr and "warnings.warn" not in p.stderr, p.stderr
    own_lines_only(p.stderr, "cv")
    assert (tmp_path / "r" / "cv_report.md").is_file()


def test_other_warnings_become_one_line_of_the_logger(caplog) -> None:
    from hamfeat._warnings import capture

    with caplog.at_level("WARNING", logger="hamfeat"), capture("train"):
        warnings.warn("n_quantiles (200) is greater than the total number of samples (9). "
                      "n_quantiles is set to n_samples.", UserWarning, stacklevel=1)
        warnings.warn("The least populated class in y has only 2 members, which is less "
                      "than n_splits=3.", UserWarning, stacklevel=1)
        for _ in range(3):
            warnings.warn("lbfgs failed to converge\nIncrease the number of iterations.",
                          RuntimeWarning, stacklevel=1)
    assert [r.getMessage() for r in caplog.records] == [
        "train: RuntimeWarning: lbfgs failed to converge"
    ]


def test_a_member_warning_in_a_worker_is_one_logger_line(caplog) -> None:
    """A warning raised while a member is fitted in a worker process reaches the parent's
    logger as one line, not the worker's raw stderr."""
    from sklearn.ensemble import VotingClassifier

    from hamfeat.models import _fit_voting

    x = np.random.default_rng(0).normal(size=(60, 3))
    y = np.repeat([0, 1], 30)
    vc = VotingClassifier([("odd", _Warns()), ("odd2", _Warns())], voting="soft", n_jobs=2)
    with caplog.at_level("WARNING", logger="hamfeat"):
        _fit_voting(vc, x, y, lambda msg: None)
    got = sorted(r.getMessage() for r in caplog.records)
    assert got == ["train: odd2: RuntimeWarning: odd fit", "train: odd: RuntimeWarning: odd fit"]


def test_model_parameters_are_unchanged() -> None:
    """Silencing is not re-parametrising: n_quantiles stays 200 (the 10015-row models)."""
    from hamfeat.models import make_model

    for name in ("lr", "mlp"):
        params = make_model(name).get_params()
        assert [v for k, v in params.items() if k.endswith("n_quantiles")] == [200]


# ------------------------------------------------------------ 4. --masks DIR is counted
@pytest.fixture
def ham_with_masks(tmp_path: Path) -> dict:
    root = make_ham_folder(tmp_path / "H", 14)
    given = root / "HAM10000_segmentations_lesion_tschandl"
    some = tmp_path / "some_masks"
    some.mkdir()
    for m in sorted(given.iterdir())[:5]:
        shutil.copy(m, some / m.name)
    wrong = tmp_path / "wrong_names"
    wrong.mkdir()
    for m in sorted(given.iterdir())[:3]:  # ISIC_..._mask.png: not the expected naming
        shutil.copy(m, wrong / m.name.replace("_segmentation", "_mask"))
    flat = tmp_path / "images"
    flat.mkdir()
    for img in root.glob("HAM10000_images_part_*/*.jpg"):
        shutil.copy(img, flat / img.name)
    return {"root": root, "given": given, "some": some, "wrong": wrong, "flat": flat}


def test_features_masks_dir_says_how_many_matched(ham_with_masks, tmp_path, cache_env) -> None:
    d = ham_with_masks
    out = tmp_path / "f.parquet"
    base = ["features", "--data", str(d["root"]), "-o", str(out), "--jobs", "1"]
    p = run(*base, "--masks", str(d["some"]), env=cache_env)
    assert p.returncode == 0, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if "masks:" in ln]
    assert lines == [
        f"hamfeat features: masks: 5 of 14 images have a mask in {d['some']}; "
        "9 get an automatic mask"
    ], p.stderr
    assert (pd.read_parquet(out)["mask_source"] == "given").sum() == 5

    p = run(*base, env=cache_env)  # the data set's own mask folder
    assert f"masks: 14 of 14 images have a mask in {d['given']}; 0 get" in p.stderr, p.stderr

    p = run(*base, "--masks", str(d["wrong"]), env=cache_env)
    assert p.returncode == 0, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if "masks:" in ln]
    assert len(lines) == 1 and lines[0].startswith("hamfeat features: warning: masks: none of "
                                                   "the 14 images has a mask in"), p.stderr
    assert "<image_id>_segmentation.png" in lines[0] and str(d["wrong"]) in lines[0]
    assert (pd.read_parquet(out)["mask_source"] == "given").sum() == 0

    p = run(*base, "--masks", "auto", env=cache_env)
    assert "masks:" not in p.stderr

    p = run(*base, "--masks", str(tmp_path / "nowhere"), env=cache_env)
    assert p.returncode == 3 and "masks folder not found" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_score_and_evaluate_masks_dir_say_how_many_matched(
    ham_with_masks, tmp_path, cache_env
) -> None:
    d = ham_with_masks
    table, model = tmp_path / "f.parquet", tmp_path / "m.skops"
    assert run("features", "--data", str(d["root"]), "-o", str(table), "--masks", "auto",
               env=cache_env).returncode == 0
    p = run("train", "--features", str(table), "-o", str(model), "--model", "knn")
    assert p.returncode == 3 and "--model knn: 14; it needs at least 15" in p.stderr  # k = 15
    p = run("train", "--features", str(table), "-o", str(model), "--model", "lr")
    assert p.returncode == 0, p.stderr
    score = ["score", str(d["flat"]), "--model", str(model), "-o", str(tmp_path / "s.csv")]
    p = run(*score, "--masks", str(d["some"]), env=cache_env)
    assert p.returncode == 0, p.stderr
    assert (f"hamfeat score: masks: 5 of 14 images have a mask in {d['some']}; 9 get an "
            "automatic mask") in p.stderr.splitlines(), p.stderr
    p = run(*score, "--masks", str(d["wrong"]), env=cache_env)
    assert p.returncode == 0, p.stderr
    assert "hamfeat score: warning: masks: none of the 14 images has a mask in" in p.stderr
    p = run(*score, env=cache_env)
    assert "masks:" not in p.stderr
    p = run("evaluate", str(d["flat"]), "--truth", str(d["root"] / "HAM10000_metadata.csv"),
            "--model", str(model), "--masks", str(d["some"]), "--report-dir",
            str(tmp_path / "ev"), "--no-plots", env=cache_env)
    assert p.returncode == 0, p.stderr
    assert "hamfeat evaluate: masks: 5 of 14 images have a mask in" in p.stderr


# --------------------------------------------- 5. cv refuses what its folds cannot split
@pytest.mark.parametrize(
    ("rows", "models", "said"),
    [
        # a class of 3 lesions (4 classes with plenty)
        ({"nv": 40, "bkl": 20, "mel": 20, "df": 3}, "lr", "df 3 lesions"),
        # the same class as the only short one among 7
        ({"nv": 40, "bkl": 20, "mel": 20, "bcc": 12, "akiec": 12, "vasc": 1, "df": 8},
         "lr", "vasc 1 lesion;"),
        # fewer lesions than folds in all
        ({"nv": 2, "mel": 2}, "lr", "4 lesion(s), fewer than the 5 folds"),
        # one class
        ({"nv": 30}, "lr", "1 class(es) (nv)"),
        # enough lesions, but too few images for the model, as train says
        ({"nv": 40, "bkl": 20, "mel": 6}, "lr,mlp", "too few images for --models mlp: mel 6"),
        # 5 lesions of each of 3 classes: 12 images in a training fold, knn asks for 15
        ({"nv": 5, "bkl": 5, "mel": 5}, "knn", "--models knn: 15, so about 12 in a training"),
    ],
)
def test_cv_refuses_too_few_lesions_before_fitting(rows, models, said, tmp_path) -> None:
    """One line naming the table, the class, its count and the folds; exit 3, as train."""
    from hamfeat.synthetic import make_synthetic_table

    t = make_synthetic_table(400, seed=2)
    t = t.drop_duplicates("lesion_id")  # one image per lesion: images = lesions
    parts = [t[t["dx"] == c].head(n) for c, n in rows.items()]
    assert all(len(x) == n for x, n in zip(parts, rows.values(), strict=True))
    sub = pd.concat(parts)
    sub.attrs = t.attrs
    path = tmp_path / "small.parquet"
    sub.to_parquet(path)
    p = run("cv", "--features", str(path), "--report-dir", str(tmp_path / "r"), "--models",
            models, "--no-ablations")
    assert p.returncode == 3, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and said in lines[0] and str(path) in lines[0], lines
    assert lines[0].startswith("hamfeat cv: error: ")
    if "lesion" in said and "fewer" not in said:
        assert "5-fold" in lines[0] and "at least 5" in lines[0]
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("rows", "model", "said"),
    [
        # svm calibrates on a stratified 3-fold split: a class of 2 images was a traceback
        ({"nv": 60, "bcc": 12, "mel": 2}, "svm", "--model svm: mel 2; every class present "
         "needs at least 3"),
        # knn asks for 15 neighbours when scoring: a 14-image model failed in `score`
        ({"nv": 7, "bcc": 7}, "knn", "--model knn: 14; it needs at least 15"),
        ({"nv": 2, "bcc": 2}, "knn_seed", "--model knn_seed: 4; it needs at least 5"),
    ],
)
def test_train_refuses_tables_too_small_for_the_model(rows, model, said, tmp_path) -> None:
    path = small_table(tmp_path, rows, n_lesions=200)
    p = run("train", "--features", str(path), "-o", str(tmp_path / "m.skops"), "--model", model)
    assert p.returncode == 3, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and said in lines[0] and str(path) in lines[0], lines
    assert not (tmp_path / "m.skops").exists()


# ----------------------------------------------------------------------- 6. progress
PROGRESS = re.compile(r"^hamfeat features: (\d+)/(\d+) images, \d+ s$")


def test_features_prints_progress_lines_into_a_log(tmp_path, cache_env) -> None:
    root = make_ham_folder(tmp_path / "H", 40)
    env = {**cache_env, "HAMFEAT_PROGRESS_SECONDS": "0"}
    log = tmp_path / "features.log"
    with open(log, "w") as fh:  # stderr a file, as `hamfeat features ... 2> log`
        p = subprocess.run(
            [sys.executable, "-m", "hamfeat", "features", "--data", str(root), "-o",
             str(tmp_path / "f.parquet"), "--jobs", "1"],
            stderr=fh, stdout=subprocess.PIPE, timeout=300,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        )
    text = log.read_text()
    assert p.returncode == 0, text
    done = [PROGRESS.match(ln) for ln in text.splitlines()]
    counts = [int(m.group(1)) for m in done if m]
    assert counts == [16, 32, 40], text  # one line per chunk of 16 with a 0 s interval
    assert all(int(m.group(2)) == 40 for m in done if m)
    assert "\r" not in text and "img/s" not in text  # no bar in a log
    # the default interval (5 s): a run this short prints none
    p = run("features", "--data", str(root), "-o", str(tmp_path / "g.parquet"), "--no-cache",
            "--jobs", "1", env=cache_env)
    assert p.returncode == 0 and not any(PROGRESS.match(x) for x in p.stderr.splitlines())


def test_features_keeps_its_bar_on_a_terminal(tmp_path, cache_env) -> None:
    root = make_ham_folder(tmp_path / "H", 20)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 100 columns
    try:
        p = subprocess.Popen(
            [sys.executable, "-m", "hamfeat", "features", "--data", str(root), "-o",
             str(tmp_path / "f.parquet"), "--jobs", "1"],
            stderr=slave, stdout=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT), **cache_env,
                 "HAMFEAT_PROGRESS_SECONDS": "0"},
        )
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        assert p.wait(timeout=300) == 0
    finally:
        os.close(master)
    text = b"".join(chunks).decode(errors="replace")
    assert "20/20" in text and "img" in text, text  # tqdm's bar
    assert not any(PROGRESS.match(ln.strip()) for ln in text.splitlines()), text


def test_train_says_when_it_starts_and_when_each_member_is_fitted(tmp_path) -> None:
    table = small_table(tmp_path, n_lesions=120)
    n = len(pd.read_parquet(table))
    p = run("train", "--features", str(table), "-o", str(tmp_path / "m.skops"), "--jobs", "2")
    assert p.returncode == 0, p.stderr
    lines = p.stderr.strip().splitlines()
    assert lines[0] == f"hamfeat train: fitting ensemble on {n} images (members hgb, mlp, 2 " \
        "processes)", lines
    members = [ln for ln in lines if re.match(r"hamfeat train: member (hgb|mlp) fitted "
                                              r"\([12] of 2, \d+ s\)$", ln)]
    assert len(members) == 2 and {m.split()[3] for m in members} == {"hgb", "mlp"}, lines
    assert re.match(r"hamfeat train: ensemble fitted in \d+ s", lines[3]), lines
    assert lines[-1].startswith("hamfeat train: model ensemble written to")
    p = run("train", "--features", str(table), "-o", str(tmp_path / "lr.skops"), "--model", "lr")
    assert p.returncode == 0 and p.stderr.startswith(f"hamfeat train: fitting lr on {n} images")


@pytest.mark.parametrize("jobs", [1, 2])
def test_fitting_member_by_member_is_the_same_model(jobs: int) -> None:
    """The reporting fit gives the same probabilities, bit for bit, as a plain fit."""
    from hamfeat.models import fit_reporting, make_model
    from hamfeat.synthetic import make_synthetic_table

    t = make_synthetic_table(120, seed=3)
    y = t["dx"].astype(str).to_numpy()
    plain = make_model("ensemble", n_jobs=jobs, alpha=0.7).fit(t, y)
    said: list[str] = []
    reporting = fit_reporting(make_model("ensemble", n_jobs=jobs, alpha=0.7), t, y, said.append)
    assert len(said) == 2
    assert np.array_equal(plain.predict_proba(t), reporting.predict_proba(t))
    assert (plain.predict(t) == reporting.predict(t)).all()
    a, b = plain.steps[-1][1].estimator_, reporting.steps[-1][1].estimator_
    assert sorted(vars(a)) == sorted(vars(b)) and list(a.named_estimators_) == ["hgb", "mlp"]
    assert list(b.named_estimators_) == ["hgb", "mlp"]
