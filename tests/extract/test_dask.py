"""The Dask backend: same table and cache as one machine, bit for bit; a worker killed mid-run.

The cluster tests start a ``LocalCluster`` of 2 single-threaded worker processes on the loopback
interface and extract a real subset of HAM10000 (skipped when the data or Dask is absent).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import make_ham_folder
from hamfeat import _dask
from hamfeat.cli import main
from hamfeat.datasets.ham10000 import load_dataset
from hamfeat.extract import _Cache, extract_dataset, extract_table
from hamfeat.pipeline import FeatureConfig

CONFIG = FeatureConfig()
N_PER_CLASS = 14  # 98 real images, 7 chunks


def _local_cluster():
    distributed = pytest.importorskip("distributed", reason="Dask is not installed (hamfeat[dask])")
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",
    )
    return cluster, distributed.Client(cluster)


@pytest.fixture(scope="module")
def cluster():
    cluster, client = _local_cluster()
    yield cluster.scheduler_address, client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def subset(ham_dir: Path, tmp_path_factory) -> Path:
    """Real images of every class, linked (not copied) into a HAM10000-layout folder."""
    root = tmp_path_factory.mktemp("dask") / "data"
    meta = pd.read_csv(ham_dir / "HAM10000_metadata.csv")
    pick = meta.groupby("dx").head(N_PER_CLASS)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for image_id in pick["image_id"]:
        (root / "images" / f"{image_id}.jpg").symlink_to(ham_dir / "images" / f"{image_id}.jpg")
        name = f"{image_id}_segmentation.png"
        (root / "masks" / name).symlink_to(ham_dir / "masks" / name)
    pick.to_csv(root / "HAM10000_metadata.csv", index=False)
    return root


@pytest.fixture(scope="module")
def reference(subset: Path, tmp_path_factory) -> dict:
    """The single-machine table (one process) and its cache."""
    tmp = tmp_path_factory.mktemp("ref")
    res = extract_dataset(subset, tmp / "f.parquet", CONFIG, jobs=1, cache_dir=tmp / "cache")
    assert len(res.table) == 7 * N_PER_CLASS
    return {"result": res, "cache": tmp / "cache", "table_path": tmp / "f.parquet"}


def _assert_same(res, reference: dict, cache_dir: Path) -> None:
    """Bit-for-bit equal table and cache entries; exactly one row per image."""
    ref = reference["result"]
    table = res.table
    assert len(table) == len(ref.table) and table["image_id"].is_unique
    pd.testing.assert_frame_equal(table, ref.table)
    names = CONFIG.feature_names()
    assert table[names].to_numpy().tobytes() == ref.table[names].to_numpy().tobytes()
    assert res.problems == ref.problems
    mine = _Cache(cache_dir, CONFIG, names).entries
    theirs = _Cache(reference["cache"], CONFIG, names).entries
    assert mine.keys() == theirs.keys()
    for key, (values, *meta) in theirs.items():
        assert mine[key][0].tobytes() == values.tobytes()
        assert list(mine[key][1:]) == meta


def test_cluster_table_and_cache_equal_one_machine(cluster, subset, reference, tmp_path, capsys):
    address, _ = cluster
    table = load_dataset(subset).table.iloc[::-1]  # another order: same table
    res = extract_table(table, CONFIG, scheduler=address, cache_dir=tmp_path / "c", progress=False)
    assert res.n_computed == len(table) and res.n_cached == 0
    _assert_same(res, reference, tmp_path / "c")
    if sys.platform.startswith("linux"):  # the workers' malloc no longer mmaps every image
        assert all(cluster[1].run(_dask._tune_malloc).values())
    err = capsys.readouterr().err
    assert f"Dask scheduler {address}, 2 worker(s); dashboard: http://127.0.0.1:" in err
    # everything cached: the cluster is not even contacted
    again = extract_table(table, CONFIG, scheduler=address, cache_dir=tmp_path / "c")
    assert again.n_cached == len(table) and again.n_computed == 0
    assert "Dask" not in capsys.readouterr().err
    pd.testing.assert_frame_equal(again.table, res.table)


def _slow_workers(seconds: float):
    """A function for ``client.run``: each image takes ``seconds`` longer on that worker."""

    def patch():
        import time

        import hamfeat.extract

        original = hamfeat.extract.extract_file

        def slow(*args, **kwargs):
            time.sleep(seconds)
            return original(*args, **kwargs)

        hamfeat.extract.extract_file = slow

    return patch


def test_worker_killed_mid_run_loses_and_duplicates_nothing(
    subset, reference, tmp_path, monkeypatch
):
    cluster, client = _local_cluster()
    try:
        client.run(_slow_workers(0.05))  # ~1 s per chunk: the run lasts well past the kill
        pids = client.run(os.getpid)
        first_result = threading.Event()
        finished = threading.Event()
        original_add = _Cache.add

        def add(self, *args, **kwargs):
            first_result.set()
            return original_add(self, *args, **kwargs)

        monkeypatch.setattr(_Cache, "add", add)
        killed: dict = {}

        def killer():
            if not first_result.wait(120):
                return
            for _ in range(200):  # the worker running a chunk of this run, right now
                busy = {
                    w: keys
                    for w, keys in client.processing().items()
                    if any(str(k).startswith("hamfeat-chunk-") for k in keys)
                }
                if busy:
                    worker = sorted(busy)[0]
                    killed.update(worker=worker, keys=busy[worker], finished=finished.is_set())
                    os.kill(pids[worker], signal.SIGKILL)
                    return
                time.sleep(0.01)

        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        table = load_dataset(subset).table
        res = extract_table(
            table, CONFIG, scheduler=cluster.scheduler_address, cache_dir=tmp_path / "c"
        )
        finished.set()
        thread.join(10)
        assert killed and not killed["finished"], f"no worker was killed mid-run: {killed}"
        with pytest.raises(ProcessLookupError):
            os.kill(pids[killed["worker"]], 0)
        assert res.n_computed == len(table)
        _assert_same(res, reference, tmp_path / "c")
    finally:
        client.close()
        cluster.close()


def test_worker_with_another_setup_is_refused(cluster, tmp_path, monkeypatch):
    address, _ = cluster
    table = load_dataset(make_ham_folder(tmp_path / "HAM", 2)).table
    monkeypatch.setattr(_dask, "fingerprint", lambda: ("hamfeat 0.0-other",))
    with pytest.raises(_dask.DaskError, match=r"another setup.*install the same hamfeat"):
        extract_table(table, CONFIG, scheduler=address, cache_dir=False)


def test_cli_features_and_score_on_dask(cluster, subset, reference, tmp_path, capsys):
    address, _ = cluster
    # features on a local cluster started by the command itself, and in one process
    folder = make_ham_folder(tmp_path / "HAM", 8, size=(90, 120))
    args = ["features", "--data", str(folder), "--no-cache", "-o"]
    code = main([*args, str(tmp_path / "dask.parquet"), "--backend", "dask", "--jobs", "2"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "Dask local cluster, 2 worker(s); dashboard: http://127.0.0.1:" in err
    assert main([*args, str(tmp_path / "one.parquet"), "--jobs", "1"]) == 0
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "dask.parquet"), pd.read_parquet(tmp_path / "one.parquet")
    )

    # score: a model, then the same CSV from one process and from the cluster
    model = tmp_path / "m.skops"
    feats = str(reference["table_path"])
    assert main(["train", "--features", feats, "-o", str(model), "--model", "knn"]) == 0
    images = tmp_path / "images"
    images.mkdir()
    for p in sorted((subset / "images").iterdir())[::5]:
        (images / p.name).symlink_to(p.resolve())
    common = ["score", str(images), "--model", str(model), "--masks", str(subset / "masks")]
    assert main([*common, "--jobs", "1", "-o", str(tmp_path / "one.csv")]) == 0
    assert main([*common, "--scheduler", address, "-o", str(tmp_path / "dask.csv")]) == 0
    one, many = (tmp_path / "one.csv").read_text(), (tmp_path / "dask.csv").read_text()
    assert one == many and len(one.splitlines()) == 1 + len(list(images.iterdir()))
    assert f"Dask scheduler {address}" in capsys.readouterr().err


def test_unreachable_scheduler_is_one_line_exit_3(ham_folder, tmp_path, monkeypatch, capsys):
    pytest.importorskip("distributed", reason="Dask is not installed (hamfeat[dask])")
    monkeypatch.setattr(_dask, "CONNECT_TIMEOUT", 2)
    out = tmp_path / "f.parquet"
    args = ["features", "--data", str(ham_folder), "-o", str(out), "--no-cache"]
    assert main([*args, "--scheduler", "tcp://127.0.0.1:1"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "tcp://127.0.0.1:1: cannot connect to the Dask scheduler" in err[0]
    assert not out.exists()


def test_without_dask_the_flags_say_how_to_install(ham_folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    assert not _dask.available()
    out = tmp_path / "f.parquet"
    for args in (
        ["features", "--data", str(ham_folder), "-o", str(out), "--backend", "dask"],
        ["score", str(ham_folder), "--scheduler", "tcp://127.0.0.1:8786"],
    ):
        assert main(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err
        assert "needs Dask, which is not installed: pip install 'hamfeat[dask]'" in err[0]
    assert not out.exists()
    table = load_dataset(ham_folder).table
    with pytest.raises(_dask.DaskError, match=r"pip install 'hamfeat\[dask\]'"):
        extract_table(table, CONFIG, backend="dask", cache_dir=False)
    # the default backend does not need Dask
    assert len(extract_table(table, CONFIG, jobs=1, cache_dir=False).table) == len(table)


def test_scheduler_with_joblib_backend_is_a_usage_error(ham_folder, tmp_path, capsys):
    out = tmp_path / "f.parquet"
    args = ["features", "--data", str(ham_folder), "-o", str(out)]
    assert main([*args, "--backend", "joblib", "--scheduler", "tcp://127.0.0.1:8786"]) == 2
    assert capsys.readouterr().err.strip() == (
        "hamfeat features: error: --scheduler needs --backend dask"
    )
    with pytest.raises(ValueError, match="backend"):
        extract_table(load_dataset(ham_folder).table, CONFIG, backend="spark")


def test_task_checks_the_setup_then_runs_the_one_code_path(ham_folder) -> None:
    from functools import partial

    from hamfeat.extract import _work

    table = load_dataset(ham_folder).table
    pairs = zip(table["image_path"], table["mask_path"], strict=True)
    items = [(i, p, m) for i, (p, m) in enumerate(pairs)]
    work = partial(_work, config=CONFIG)  # what extract_table gives every backend
    status, results = _dask._task(items, work, _dask.fingerprint())
    assert status == "ok" and len(results) == len(items)
    for got, want in zip(results, _work(items, CONFIG), strict=True):
        assert got[0] == want[0] and got[1].tobytes() == want[1].tobytes()
    other = tuple(f"{f} (other)" for f in _dask.fingerprint())
    status, message = _dask._task(items, work, other)
    assert status == "mismatch" and "(client: hamfeat" in message
    assert list(_dask.run_chunks(work, [])) == []  # nothing to do: no cluster is started


def test_dask_backend_does_not_import_extraction() -> None:
    """The Dask module is given the worker function; it imports nothing of hamfeat.extract."""
    import ast

    tree = ast.parse(Path(_dask.__file__).read_text())
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    } | {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    assert not any(m and m.startswith(("hamfeat.extract", "hamfeat.backends")) for m in imported)
