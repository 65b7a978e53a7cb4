"""Tests of hamfeat.backends: one interface, a registry, extraction through any backend."""

from __future__ import annotations

from functools import partial

import pandas as pd
import pytest

from hamfeat import backends
from hamfeat.backends import (
    DEFAULT_BACKEND,
    Backend,
    backend_names,
    get_backend,
    register_backend,
    scheduler_backend,
)
from hamfeat.datasets.ham10000 import load_dataset
from hamfeat.extract import extract_table
from hamfeat.pipeline import FeatureConfig


def _square(x: int) -> int:
    return x * x


def test_registry_lists_the_built_in_backends() -> None:
    assert backend_names() == ("joblib", "dask") and DEFAULT_BACKEND == "joblib"
    assert scheduler_backend().name == "dask"
    assert get_backend("dask").install_hint == "pip install 'hamfeat[dask]'"
    with pytest.raises(ValueError, match=r"^backend must be 'joblib' or 'dask', not 'spark'$"):
        get_backend("spark")


@pytest.mark.parametrize("jobs", [1, 2])
def test_local_backend_yields_every_result_once(jobs: int) -> None:
    got = list(get_backend("joblib").run(partial(_square), list(range(7)), jobs=jobs))
    assert sorted(got) == [i * i for i in range(7)]


@pytest.fixture()
def recording():
    """A backend registered for one test: runs here and records what it was given."""
    calls = []

    def run(work, items, *, jobs, scheduler=None, announce=True):
        calls.append((work, list(items), jobs, scheduler))
        for item in reversed(list(items)):  # any order must give the same table
            yield work(item)

    backend = register_backend(Backend("recording", "records its calls", run))
    yield calls
    del backends._BACKENDS[backend.name]


def test_extract_table_runs_on_a_registered_backend(recording, ham_folder, tmp_path) -> None:
    table = load_dataset(ham_folder).table
    config = FeatureConfig()
    mine = extract_table(table, config, backend="recording", cache_dir=False, progress=False)
    ref = extract_table(table, config, jobs=1, cache_dir=False, progress=False)
    pd.testing.assert_frame_equal(mine.table, ref.table)
    assert mine.problems == ref.problems
    (work, items, _jobs, scheduler), = recording
    assert isinstance(work, partial) and work.keywords == {"config": config}
    assert sum(len(chunk) for chunk in items) == len(table) and scheduler is None
