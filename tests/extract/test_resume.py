"""Kill ``hamfeat features`` with SIGKILL at random points; the rerun completes the job."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

N_IMAGES = 160


@pytest.fixture(scope="module")
def real_subset(ham_dir: Path, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("resume") / "data"
    (root / "images").mkdir(parents=True)
    meta = pd.read_csv(ham_dir / "HAM10000_metadata.csv").sort_values("image_id")
    meta = meta.iloc[:: len(meta) // N_IMAGES].head(N_IMAGES)
    for image_id in meta["image_id"]:
        (root / "images" / f"{image_id}.jpg").symlink_to(ham_dir / "images" / f"{image_id}.jpg")
    meta.to_csv(root / "HAM10000_metadata.csv", index=False)
    return root


def features(data: Path, out: Path, cache: Path) -> subprocess.Popen:
    env = {**os.environ, "HAMFEAT_CACHE_DIR": str(cache), "HAMFEAT_FLUSH_SECONDS": "0"}
    cmd = [
        sys.executable,
        "-m",
        "hamfeat",
        "features",
        "--data",
        str(data),
        "-o",
        str(out),
        "--jobs",
        "1",
        "--masks",
        "auto",
    ]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted(real_subset: Path, tmp_path: Path) -> None:
    ref_out = tmp_path / "ref.parquet"
    p = features(real_subset, ref_out, tmp_path / "ref_cache")
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    reference = pd.read_parquet(ref_out)

    out, cache = tmp_path / "out" / "features.parquet", tmp_path / "cache"
    out.parent.mkdir()  # hamfeat creates no output folder (issue #18)
    rng = random.Random(1234)
    computed_before = 0
    for _ in range(5):
        before = len(list(cache.rglob("part-*.parquet")))
        p = features(real_subset, out, cache)
        # wait until this run has flushed something (start-up time varies with machine load),
        # then kill it at a random moment shortly after
        deadline = time.monotonic() + 300
        while (
            len(list(cache.rglob("part-*.parquet"))) <= before
            and p.poll() is None
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.4))
        p.send_signal(signal.SIGKILL)
        p.wait()
        # never a partial table where the finished one is expected
        if out.exists():
            pd.read_parquet(out)
        parts = list(cache.rglob("part-*.parquet"))
        for part in parts:
            pd.read_parquet(part)  # every flushed part is complete
        computed_before = max(computed_before, sum(len(pd.read_parquet(q)) for q in parts))
    assert computed_before > 0, "no progress was flushed before the kills: test too fast"
    p = features(real_subset, out, cache)
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    # the rerun computed only what was missing
    line = next(ln for ln in err.splitlines() if "computed" in ln)
    n_computed = int(line.split("(")[1].split(" computed")[0])
    assert n_computed < N_IMAGES
    final = pd.read_parquet(out)
    pd.testing.assert_frame_equal(final, reference)
    cols = final.columns[9:]
    assert final[cols].to_numpy().tobytes() == reference[cols].to_numpy().tobytes()
