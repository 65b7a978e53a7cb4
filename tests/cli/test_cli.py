"""The command line's surface: help, version, the data command, usage errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hamfeat.cli import main

COMMANDS = ("data", "features", "train", "cv", "score")


def test_help_lists_every_command(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for cmd in COMMANDS:
        assert f"    {cmd}" in out
    for cmd in COMMANDS:
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        assert "usage: hamfeat " + cmd in capsys.readouterr().out


def test_python_dash_m_and_console_script() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hamfeat", "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout.startswith("hamfeat ")
    script = Path(sys.executable).parent / "hamfeat"
    if script.exists():  # installed by pip as a console script
        proc = subprocess.run([str(script), "--help"], capture_output=True, text=True)
        assert proc.returncode == 0 and "score" in proc.stdout


def test_data_command(ham_folder: Path, capsys) -> None:
    assert main(["data", "--data", str(ham_folder)]) == 0
    out = capsys.readouterr().out
    assert "6 images, 3 lesions, 6 masks" in out
    csv = ham_folder / "HAM10000_metadata.csv"
    csv.write_text(csv.read_text() + "HAM_9,ISIC_0000123,nv,histo,1,male,back\n")
    assert main(["data", "--data", str(ham_folder)]) == 1  # a problem, rest fine
    assert "no image file for ISIC_0000123" in capsys.readouterr().err
    assert main(["data", "--data", str(ham_folder), "--strict"]) == 3
    assert main(["data", "--data", str(ham_folder / "missing")]) == 3


def test_usage_errors_exit_2(capsys) -> None:
    for argv in ([], ["nope"], ["features"], ["score"], ["features", "-o", "x", "--jobs", "two"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2, argv


@pytest.fixture(scope="module")
def small_table(tmp_path_factory) -> Path:
    from hamfeat.synthetic import make_synthetic_table

    path = tmp_path_factory.mktemp("tbl") / "t.parquet"
    make_synthetic_table(40, seed=1).to_parquet(path)
    return path


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["train", "--features", "{t}", "-o", "{o}/m.skops", "--model", "bogus"], "ensemble"),
        (["train", "--features", "{t}", "-o", "{o}/m.skops", "--families", "colr"], "color"),
        (["train", "--features", "{t}", "-o", "{o}/m.skops", "--families", "graylbp"], "whole"),
        (["train", "--features", "{t}", "-o", "{o}/m.skops", "--jobs", "-2"], "--jobs"),
        (["train", "--dataset", "cxr14", "--features", "{t}", "-o", "{o}/m.skops", "--model",
          "mlp"], "patchkm"),
        (["features", "-o", "{o}/f.parquet", "--families", "glcm,colr"], "structure"),
        (["features", "-o", "{o}/f.parquet", "--long-side", "10"], "at least 32"),
        (["features", "-o", "{o}/f.parquet", "--long-side", "0"], "at least 32"),
        (["features", "-o", "{o}/f.parquet", "--jobs", "-3"], "all cores"),
        (["cv", "--features", "{t}", "--seeds", "1,x", "--report-dir", "{o}/r"], "1,2"),
        (["cv", "--features", "{t}", "--models", "foo", "--report-dir", "{o}/r"], "mlp"),
        (["cv", "--dataset", "cxr14", "--features", "{t}", "--models", "hgb"], "patchkm"),
    ],
)
def test_bad_option_values_are_one_line_exit_2(argv, names, small_table, tmp_path) -> None:
    """A bad value is exit 2 and one line naming the valid choices, before any work."""
    argv = [a.format(t=small_table, o=tmp_path) for a in argv]
    proc = subprocess.run(
        [sys.executable, "-m", "hamfeat", *argv], capture_output=True, text=True, timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"hamfeat {argv[0]}: error:") and names in last, last
    assert not (tmp_path / "m.skops").exists() and not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("rows", "model", "said"),
    [
        ({"nv": 4, "mel": 1}, "ensemble", "mel 1"),  # 5 rows
        ({"nv": 30}, "lr", "1 class(es) (nv)"),  # one class
        ({"nv": 40, "bcc": 12, "mel": 1}, "ensemble", "mel 1"),  # a class of one image
        ({"nv": 40, "bcc": 12, "mel": 1}, "lr", "mel 1"),
        ({c: 11 for c in ("nv", "mel", "bcc", "bkl", "akiec", "df", "vasc")} | {"df": 3},
         "mlp", "df 3"),
    ],
)
def test_train_refuses_small_or_lopsided_tables_before_fitting(
    rows, model, said, tmp_path
) -> None:
    """One line naming the class, its count and the minimum; exit 3; no model written."""
    import pandas as pd

    from hamfeat.synthetic import make_synthetic_table

    t = make_synthetic_table(200, seed=2)
    parts = [t[t["dx"] == c].head(n) for c, n in rows.items()]
    assert all(len(p) == n for p, n in zip(parts, rows.values(), strict=True))
    sub = pd.concat(parts)
    sub.attrs = t.attrs
    path = tmp_path / "small.parquet"
    sub.to_parquet(path)
    proc = subprocess.run(
        [sys.executable, "-m", "hamfeat", "train", "--features", str(path), "-o",
         str(tmp_path / "m.skops"), "--model", model],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and said in lines[0] and str(path) in lines[0], lines
    assert not (tmp_path / "m.skops").exists()
