"""``hamfeat explain`` and ``hamfeat score --html`` in a subprocess, on generated images."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from _html_data import generated, run  # noqa: F401 - fixture
from conftest import synthetic_lesion, write_mask
from hamfeat.explain import ExplainedImage, explain_rows
from hamfeat.models import load_model
from hamfeat.render import render_score_page


def test_explain_prints_the_facts(generated):  # noqa: F811
    img = generated["images"][0]
    p = run("explain", str(img), "--model", str(generated["model"]), env=generated["env"])
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert out.startswith(f"{img}: predicted ")
    for text in (
        "probabilities:",
        "p_malignant",
        "Why ",
        "Feature families",
        "ABCD summary:",
        "Asymmetry",
        "Border",
        "Colours",
        "Dermoscopic structures",
        "Lesion size",
        "no physical scale",
        "160x120 image",
    ):
        assert text in out, text
    # the listed features are real feature names with a percentile in each class
    rows = re.findall(
        r"^  ([a-z]+_[a-z0-9_]+)\s+\S+\s+([\d.]+|n/a)\s+([\d.]+|n/a)\s+([+-][\d.]+)$", out, re.M
    )
    assert rows and all(r[1] != "n/a" for r in rows)
    # the same prediction as `hamfeat score`
    s = run(
        "score", str(generated["folder"]), "--model", str(generated["model"]), env=generated["env"]
    )
    table = pd.read_csv(__import__("io").StringIO(s.stdout))
    pred = table.set_index("path").loc[str(img), "prediction"]
    assert f"predicted {pred} " in out.splitlines()[0]


def test_explain_bad_input_and_usage(generated, tmp_path):  # noqa: F811
    m = str(generated["model"])
    bad = generated["folder"] / "corrupt.jpg"
    p = run("explain", str(bad), "--model", m, env=generated["env"])
    assert p.returncode == 3 and "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0], p.stderr
    p = run("explain", str(tmp_path / "none.jpg"), "--model", m, env=generated["env"])
    assert p.returncode == 3 and "none.jpg" in p.stderr
    p = run("explain", str(bad), "--model", str(tmp_path / "no.skops"), env=generated["env"])
    assert p.returncode == 3 and "no.skops" in p.stderr
    p = run("explain", str(generated["images"][0]), "--model", m, "--top", "0")
    assert p.returncode == 2 and "--top" in p.stderr
    p = run("explain")
    assert p.returncode == 2


def test_explain_with_given_mask(generated, tmp_path):  # noqa: F811
    _, mask = synthetic_lesion(120, 160, seed=100)
    mpath = write_mask(tmp_path / "m.png", mask)
    args = ("explain", str(generated["images"][0]), "--model", str(generated["model"]))
    p = run(*args, "--mask", str(mpath), env=generated["env"])
    assert p.returncode == 0, p.stderr
    assert "mask: given" in p.stdout
    # a mask that cannot be used: a warning naming it, automatic segmentation, exit 0
    (tmp_path / "bad.png").write_bytes(b"nope")
    p = run(*args, "--mask", str(tmp_path / "bad.png"), env=generated["env"])
    assert p.returncode == 0 and "bad.png" in p.stderr and "mask: auto" in p.stdout


def test_score_html_page(generated, tmp_path):  # noqa: F811
    page, csv = tmp_path / "page.html", tmp_path / "s.csv"
    p = run(
        "score",
        str(generated["folder"]),
        "--model",
        str(generated["model"]),
        "-o",
        str(csv),
        "--html",
        str(page),
        env=generated["env"],
    )
    assert p.returncode == 1, p.stderr  # one corrupt file
    html = page.read_text()
    table = pd.read_csv(csv)
    n_ok = int(table["error"].isna().sum())
    assert n_ok == 5
    assert html.count('<img src="data:image/jpeg;base64,') == n_ok
    assert 'src="http' not in html and "href=" not in html  # nothing to fetch
    # a file name with HTML in it is shown, never interpreted
    assert "<img src=x onerror" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;&amp;.jpg" in html
    assert "corrupt.jpg" in html and "Images that could not be scored (1)" in html
    for pred in table["prediction"].dropna():
        assert f'<span class="pred">{pred}</span>' in html
    assert html.count("ABCD summary") == n_ok
    assert "no physical scale" in html
    # family view only
    p = run(
        "score",
        str(generated["folder"]),
        "--model",
        str(generated["model"]),
        "-o",
        str(csv),
        "--html",
        str(tmp_path / "fam.html"),
        "--html-explain",
        "families",
        env=generated["env"],
    )
    assert p.returncode == 1
    assert "per feature family only" in (tmp_path / "fam.html").read_text()
    # usage: --html is for dermoscopy; an unwritable page is a one-line error
    p = run("score", str(generated["folder"]), "--dataset", "cxr14", "--html", str(page))
    assert p.returncode == 2 and "--html" in p.stderr
    p = run(
        "score",
        str(generated["folder"]),
        "--model",
        str(generated["model"]),
        "-o",
        str(csv),
        "--html",
        str(tmp_path / "no" / "dir" / "p.html"),
        env=generated["env"],
    )
    assert p.returncode == 3 and "p.html" in p.stderr and "Traceback" not in p.stderr


def test_flags_column_is_shown_when_present(generated):  # noqa: F811
    model = load_model(generated["model"])
    feats = pd.read_parquet(generated["root"] / "features.parquet").head(2)
    exps = explain_rows(model, feats)
    rows = [
        {
            "path": f"/x/{i}.jpg",
            "image_id": i,
            "prediction": e.predicted,
            "p_nv": e.proba["nv"],
            "p_malignant": e.p_malignant,
            "mask_source": "auto",
            "error": None,
            "flags": flag,
        }
        for i, e, flag in zip(feats["image_id"], exps, ["low_quality", None], strict=True)
    ]
    table = pd.DataFrame(rows)
    items = [ExplainedImage(r, e) for r, e in zip(rows, exps, strict=True)]
    html = render_score_page(items, table=table, model_path=Path("m.skops"))
    assert html.count('<span class="flags"') == 1 and "low_quality" in html
    bare = [
        ExplainedImage({k: v for k, v in r.items() if k != "flags"}, e)
        for r, e in zip(rows, exps, strict=True)
    ]
    html = render_score_page(bare, table=table.drop(columns="flags"), model_path="m")
    assert '<span class="flags"' not in html
