"""benchmarks/bench_gap_dev.py: its options, usage errors and a run on a generated table."""

from __future__ import annotations

import json
import sys

import pytest

from _paths import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_gap_dev as bg

from hamfeat.synthetic import make_synthetic_table


def test_parse_variants_reads_literals() -> None:
    v = bg.parse_variants(
        "lrb=lr:C=0.3;class_weight=None,mlp2=mlp:hidden_layer_sizes=(64, 32);resample='over'"
    )
    assert v["lrb"][:2] == ("lr", {"C": 0.3, "class_weight": None})
    assert v["mlp2"][:2] == ("mlp", {"hidden_layer_sizes": (64, 32), "resample": "over"})
    # the cache tag follows the settings
    assert v["lrb"][2] != bg.parse_variants("lrb=lr:C=0.1")["lrb"][2]
    assert bg.parse_variants("") == {}


@pytest.mark.parametrize(
    "spec", ["lrb", "lrb=lr", "=lr:C=1", "lrb=lr:C", "lrb=lr:C=abc(", "m=mlp:alpha=0.1",
             "m=mlp:random_state=3"],
)
def test_parse_variants_rejects_bad_text(spec: str) -> None:
    with pytest.raises(ValueError, match="--variant"):
        bg.parse_variants(spec)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--members", "nosuch"], "--members: unknown member"),
        (["--variant", "x=nosuch:C=1", "--members", "x"], "--variant: unknown base model"),
        (["--variant", "x=lr"], "--variant: expected"),
        (["--seeds", "0,1"], "seed 0"),
    ],
)
def test_usage_errors_exit_2_before_loading(argv, message, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        bg.main(["--tables", f"a={tmp_path / 'missing.parquet'}",
                 "--report", str(tmp_path / "r.md"), *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_variant_is_fitted_cached_and_reported(tmp_path) -> None:
    table = make_synthetic_table(160, seed=3)
    table.to_parquet(tmp_path / "t.parquet")
    argv = ["--tables", f"t={tmp_path / 't.parquet'}", "--members", "lr,lrsoft",
            "--variant", "lrsoft=lr:C=0.001", "--seeds", "1", "--jobs", "1",
            "--cache", str(tmp_path / "oof"), "--report", str(tmp_path / "r.md")]
    assert bg.main(argv) == 0
    res = json.loads((tmp_path / "r.json").read_text())
    assert {"t:lr", "t:lrsoft", "t:lr+t:lrsoft"} <= set(res["rows"])
    assert res["variants"]["lrsoft"] == {"base": "lr", "options": {"C": 0.001}}
    # a much weaker regularisation constant gives other probabilities, so other rows
    assert res["rows"]["t:lr"]["auc"] != res["rows"]["t:lrsoft"]["auc"]
    assert "`lrsoft` = `lr`" in (tmp_path / "r.md").read_text()
    cached = sorted(p.name for p in (tmp_path / "oof").iterdir())
    assert len(cached) == 2 and any(n.startswith("t_lrsoft-") for n in cached)
    # a re-run reuses the cache (the same numbers), a changed variant fits anew
    assert bg.main(argv) == 0
    assert json.loads((tmp_path / "r.json").read_text())["rows"] == res["rows"]
    argv[argv.index("lrsoft=lr:C=0.001")] = "lrsoft=lr:C=0.01"
    assert bg.main(argv) == 0
    assert len(list((tmp_path / "oof").iterdir())) == 3
