"""Batch extraction: cache, resume, errors, atomic writes, jobs, and the features command."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import make_ham_folder
from hamfeat.datasets.ham10000 import load_dataset
from hamfeat.errors import OutputError
from hamfeat.extract import extract_dataset, extract_table, write_table_atomic
from hamfeat.features import feature_names
from hamfeat.pipeline import FeatureConfig

CONFIG = FeatureConfig(families=("color", "shape"))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return make_ham_folder(tmp_path / "HAM10000", 8, size=(90, 120))


def test_table_layout_and_cache(folder: Path, tmp_path: Path) -> None:
    table = load_dataset(folder).table
    cache = tmp_path / "cache"
    first = extract_table(table, CONFIG, jobs=1, cache_dir=cache)
    assert first.n_computed == 8 and first.n_cached == 0 and not first.problems
    t = first.table
    assert list(t.columns[:9]) == [
        "image_id",
        "lesion_id",
        "dx",
        "dx_type",
        "age",
        "sex",
        "localization",
        "mask_source",
        "mask_method",
    ]
    assert list(t.columns[9:]) == CONFIG.feature_names()
    assert (t["mask_source"] == "given").all()
    second = extract_table(table, CONFIG, jobs=1, cache_dir=cache)
    assert second.n_computed == 0 and second.n_cached == 8
    pd.testing.assert_frame_equal(first.table, second.table)
    # a changed image is recomputed, the others come from the cache
    img = Path(table["image_path"].iat[3])
    data = bytearray(img.read_bytes())
    data[-20] ^= 0xFF
    img.write_bytes(bytes(data))
    third = extract_table(table, CONFIG, jobs=1, cache_dir=cache)
    assert third.n_computed == 1 and third.n_cached == 7
    # another configuration has its own cache
    other = extract_table(table, FeatureConfig(families=("shape",)), jobs=1, cache_dir=cache)
    assert other.n_computed == 8


def test_jobs_and_order_do_not_change_results(folder: Path) -> None:
    table = load_dataset(folder).table
    a = extract_table(table, CONFIG, jobs=1, cache_dir=False).table
    b = extract_table(table.iloc[::-1], CONFIG, jobs=2, cache_dir=False).table
    pd.testing.assert_frame_equal(a, b)
    assert (
        a[CONFIG.feature_names()].to_numpy().tobytes()
        == b[CONFIG.feature_names()].to_numpy().tobytes()
    )


def test_bad_images_listed_rest_completes(folder: Path, tmp_path: Path) -> None:
    table = load_dataset(folder).table
    p_corrupt = Path(table["image_path"].iat[1])
    data = p_corrupt.read_bytes()
    p_corrupt.write_bytes(data[: len(data) * 2 // 3])  # truncated
    Path(table["image_path"].iat[2]).unlink()  # vanished after listing
    res = extract_table(table, CONFIG, jobs=2, cache_dir=tmp_path / "c")
    errors = [p for p in res.problems if p.severity == "error"]
    assert {Path(p.path).name for p in errors} == {
        p_corrupt.name,
        Path(table["image_path"].iat[2]).name,
    }
    assert any("truncated" in p.message for p in errors)
    assert any("file not found" in p.message for p in errors)
    assert len(res.table) == 6


def test_extract_dataset_writes_table_and_errors(folder: Path, tmp_path: Path) -> None:
    csv = folder / "HAM10000_metadata.csv"
    csv.write_text(csv.read_text() + "HAM_X,ISIC_0000999,nv,histo,1,male,back\n")
    out = tmp_path / "out" / "features.parquet"
    with pytest.raises(OutputError, match="does not exist"):  # refused before any work
        extract_dataset(folder, out, CONFIG, jobs=1, cache_dir=False)
    out.parent.mkdir()
    res = extract_dataset(folder, out, CONFIG, jobs=1, cache_dir=False)
    table = pd.read_parquet(out)
    assert len(table) == 8
    assert table.attrs["hamfeat"]["config"]["families"] == ["color", "shape"]
    errors = pd.read_csv(out.with_name("features.errors.csv"))
    assert list(errors.columns) == ["path", "severity", "message"]
    assert errors["message"].str.contains("no image file for ISIC_0000999").any()
    assert len(res.problems) == len(errors)
    # use_masks=False: every image is segmented automatically
    auto = extract_dataset(
        folder, tmp_path / "auto.parquet", CONFIG, use_masks=False, cache_dir=False
    )
    assert (auto.table["mask_source"] == "auto").all()
    assert not list(out.parent.glob("*.tmp"))


def test_atomic_write_leaves_old_file_on_failure(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "t.parquet"
    write_table_atomic(pd.DataFrame({"a": [1.0]}), path)

    def broken(self, fh, **kw):
        fh.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", broken)
    with pytest.raises(OutputError, match=r"t\.parquet: cannot write \(No space left on device\)"):
        write_table_atomic(pd.DataFrame({"a": [2.0]}), path)
    monkeypatch.undo()
    assert pd.read_parquet(path)["a"].tolist() == [1.0]
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]


def test_unwritable_cache_does_not_stop_extraction(folder: Path, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root ignores directory permissions")
    cache = tmp_path / "ro"
    cache.mkdir()
    res = extract_table(load_dataset(folder).table, CONFIG, jobs=1, cache_dir=cache)
    assert len(res.table) == 8


def test_cli_features_end_to_end(folder: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "f.parquet"
    env = {**os.environ, "HAMFEAT_CACHE_DIR": str(tmp_path / "cache")}
    cmd = [
        sys.executable,
        "-m",
        "hamfeat",
        "features",
        "--data",
        str(folder),
        "-o",
        str(out),
        "--families",
        "shape",
        "--jobs",
        "1",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "8 images" in proc.stderr and "8 computed" in proc.stderr
    assert pd.read_parquet(out).shape == (8, 9 + len(feature_names(["shape"])))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert "0 computed, 8 from cache" in proc.stderr
    # a broken image: exit 1, named on stderr, the rest written
    shutil.copy(folder / "HAM10000_metadata.csv", tmp_path / "meta.bak")
    bad = next((folder / "HAM10000_images_part_1").glob("*.jpg"))
    bad.write_bytes(b"garbage")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 1
    assert bad.name in proc.stderr
    assert len(pd.read_parquet(out)) == 7
    assert np.isfinite(pd.read_parquet(out).iloc[:, 9:].to_numpy()).all()


def test_real_images_bit_identical_across_jobs_and_order(ham_dir: Path) -> None:
    """Real HAM10000 images: --jobs 1 and --jobs 2, files in either order, same bits."""
    table = load_dataset(ham_dir).table.iloc[::400].reset_index(drop=True)  # 26 images
    for masks in ("given", "auto"):
        t = table if masks == "given" else table.assign(mask_path=None)
        a = extract_table(t, jobs=1, cache_dir=False).table
        b = extract_table(t.iloc[::-1], jobs=2, cache_dir=False).table
        pd.testing.assert_frame_equal(a, b)
        cols = a.columns[9:]
        assert a[cols].to_numpy().tobytes() == b[cols].to_numpy().tobytes(), masks
        assert (a["mask_source"] == masks).all()


@pytest.mark.parametrize(
    ("errno_", "reason"), [(13, "Permission denied"), (28, "No space left on device")]
)
def test_cli_unwritable_output_is_one_line_and_keeps_the_work(
    folder: Path, tmp_path: Path, monkeypatch, capsys, errno_: int, reason: str
) -> None:
    """A read-only output folder or a full disk: exit 3, one line naming the file, and the
    features already computed stay in the cache (the rerun computes nothing)."""
    from hamfeat import extract
    from hamfeat.cli import main

    monkeypatch.setenv("HAMFEAT_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "out" / "f.parquet"
    out.parent.mkdir()
    real_replace = os.replace

    def failing_replace(src, dst):
        if str(dst) == str(out):
            raise OSError(errno_, reason)
        return real_replace(src, dst)

    monkeypatch.setattr(extract.os, "replace", failing_replace)
    argv = ["features", "--data", str(folder), "-o", str(out), "--families", "shape", "--jobs", "1"]
    assert main(argv) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"hamfeat features: error: {out}: cannot write ({reason})"
    assert not out.exists() and not list(out.parent.glob("*.tmp"))
    monkeypatch.setattr(extract.os, "replace", real_replace)
    assert main(argv) == 0
    assert "0 computed, 8 from cache" in capsys.readouterr().err
