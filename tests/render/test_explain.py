"""Explanations: training statistics, percentiles, exact linear attributions, old models, ABCD."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hamfeat.explain import (
    QUANTILE_LEVELS,
    abcd_summary,
    explain_rows,
    percentile_of,
    training_stats,
)
from hamfeat.features import feature_names
from hamfeat.models import load_model, make_model, model_feature_names, save_model

CLASSES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
ABCD_NAMES = [
    "shape_area_frac",
    "shape_asymmetry_major",
    "shape_asymmetry_minor",
    "shape_convexity",
    "shape_radial_cv",
    "border_sector_cv",
    "zone_halves_major_deltae",
    "variegation_n_colors",
    "variegation_white_frac",
    "variegation_red_frac",
    "variegation_lightbrown_frac",
    "variegation_darkbrown_frac",
    "variegation_bluegray_frac",
    "variegation_black_frac",
    "structure_blackhat_s3_frac12",
    "structure_blackhat_s7_frac12",
    "structure_log_s1p5_dark_density",
    "structure_tophat_s7_frac12",
]


def _table(n: int = 420, seed: int = 0) -> pd.DataFrame:
    """A feature table whose classes differ in a few real-named features (plus noise)."""
    rng = np.random.default_rng(seed)
    names = [n for n in feature_names() if n.startswith(("color_lab", "glcm_d1"))][:12]
    names += ABCD_NAMES
    y = np.array([CLASSES[i % 7] for i in range(n)])
    y[: n // 2] = "nv"  # nv the majority, as in HAM10000
    X = rng.normal(size=(n, len(names)))
    shift = {c: i for i, c in enumerate(CLASSES)}
    X[:, 0] += np.array([shift[c] for c in y]) * 0.8
    X[:, 13] += (y == "mel") * 1.5
    t = pd.DataFrame(X, columns=names)
    t["shape_area_frac"] = rng.uniform(0.05, 0.6, n)
    t["shape_asymmetry_major"] = rng.uniform(0.0, 0.3, n)
    t["shape_asymmetry_minor"] = rng.uniform(0.0, 0.3, n)
    t["variegation_n_colors"] = rng.integers(1, 5, n).astype(float)
    for c in ABCD_NAMES:
        if c.startswith(("variegation_", "structure_")) and c.endswith(("frac", "frac12")):
            t[c] = rng.uniform(0, 0.4, n)
    t.loc[3, names[5]] = np.nan  # a missing value: imputed with the median, effect 0
    t.insert(0, "image_id", [f"ISIC_{i:07d}" for i in range(n)])
    t["dx"] = y
    return t


def _fit_save(tmp_path, table, name="lr", stats=True, **kw):
    est = make_model(name, **kw).fit(table, table["dx"].to_numpy())
    names = model_feature_names(est)
    path = save_model(
        est,
        tmp_path / f"{name}_{int(stats)}.skops",
        feature_names=names,
        feature_config={"features_version": _fv()},
        classes=[str(c) for c in est.classes_],
        training_table_hash="x",
        extra={"model": name},
        training_stats=training_stats(table, names, table["dx"]) if stats else None,
    )
    return load_model(path)


def _fv() -> int:
    from hamfeat.features import FEATURES_VERSION

    return int(FEATURES_VERSION)


def test_training_stats_quantiles_match_numpy():
    t = _table()
    names = [c for c in t.columns if c not in ("image_id", "dx")]
    st = training_stats(t, names, t["dx"])
    assert st["groups"] == [*sorted(CLASSES), "all"]
    assert st["quantiles"].shape == (8, len(QUANTILE_LEVELS), len(names))
    assert st["quantiles"].dtype == np.float32
    j = names.index("shape_asymmetry_major")
    mel = t.loc[t["dx"] == "mel", "shape_asymmetry_major"].to_numpy()
    want = np.quantile(mel, QUANTILE_LEVELS / 100)
    got = st["quantiles"][st["groups"].index("mel"), :, j]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(st["median"], np.nanmedian(t[names].to_numpy(), axis=0))
    assert st["counts"][-1] == len(t)
    # small: about 4 bytes x 8 groups x 41 levels per feature, not the table
    assert st["quantiles"].nbytes == 8 * 41 * 4 * len(names)


def test_percentile_of_interpolates_ties_and_bounds():
    levels = np.array([0.0, 25.0, 50.0, 75.0, 100.0])
    q = np.array([0.0, 1.0, 1.0, 1.0, 4.0])
    assert percentile_of(-1.0, q, levels) == 0.0
    assert percentile_of(5.0, q, levels) == 100.0
    assert percentile_of(0.5, q, levels) == 12.5
    assert percentile_of(1.0, q, levels) == 50.0  # middle of the tied run 25..75
    assert percentile_of(2.5, q, levels) == 87.5
    assert percentile_of(float("nan"), q, levels) is None
    # against an empirical distribution: close to the fraction below
    rng = np.random.default_rng(1)
    x = rng.normal(size=5000)
    qs = np.quantile(x, QUANTILE_LEVELS / 100)
    for v in (-1.0, 0.0, 0.7):
        assert abs(percentile_of(v, qs) - 100 * np.mean(x < v)) < 1.5


def test_lr_effects_are_exact_linear_contributions(tmp_path):
    t = _table()
    model = _fit_save(tmp_path, t, "lr")
    rows = t.iloc[:6]
    exps = explain_rows(model, rows, top=100)
    est = model.estimator
    clf = est[-1].estimator_  # Pipeline(scale=QuantileTransformer, clf=LogisticRegression)
    scaler, lr = clf.named_steps["scale"], clf.named_steps["clf"]
    kept = est.named_steps["drop_constant"].get_support()
    names = [n for n, k in zip(est.named_steps["select"].columns_, kept, strict=True) if k]
    med = est.named_steps["impute"].statistics_[kept]
    classes = list(model.classes)
    for (_, row), e in zip(rows.iterrows(), exps, strict=True):
        assert e.predicted == model.predict(rows.loc[[row.name]])[0]
        c, r = classes.index(e.predicted), classes.index(e.reference)
        x = row[names].to_numpy(float)
        x = np.where(np.isnan(x), med, x)
        z = scaler.transform(x[None, :])[0]
        # z of each feature at its median, all else equal (the transform is per feature)
        zm = scaler.transform(med[None, :])[0]
        want = (lr.coef_[c] - lr.coef_[r]) * (z - zm)
        got = {f.name: f.effect for f in e.toward + e.against}
        for j, name in enumerate(names):
            assert got.get(name, 0.0) == pytest.approx(want[j], abs=1e-8), name
        # additive: the effects sum to the shift from the all-median row
        assert sum(got.values()) == pytest.approx(e.total_shift, abs=1e-8)
        p = model.predict_proba(rows.loc[[row.name]]).to_numpy()[0]
        assert e.log_ratio == pytest.approx(np.log(p[c] / p[r]), abs=1e-9)
    assert any(f.name == t.columns[6] for f in exps[3].toward + exps[3].against) is False


def test_reference_is_nv_or_runner_up_and_order(tmp_path):
    t = _table()
    model = _fit_save(tmp_path, t, "rf", n_estimators=30)
    exps = explain_rows(model, t.iloc[:40], top=5)
    assert {e.predicted for e in exps} >= {"nv"}
    for e in exps:
        if e.predicted != "nv":
            assert e.reference == "nv"
        else:
            assert e.reference != "nv"
        assert all(f.effect > 0 for f in e.toward)
        assert all(f.effect < 0 for f in e.against)
        assert [f.effect for f in e.toward] == sorted((f.effect for f in e.toward), reverse=True)
        assert len(e.toward) <= 5
        assert {f.name for f in e.families} <= {
            "color",
            "glcm",
            "shape",
            "border",
            "zone",
            "variegation",
            "structure",
        }
        assert e.p_malignant == pytest.approx(sum(e.proba[c] for c in ("mel", "bcc", "akiec")))
    # deterministic: the same rows give the same explanation
    again = explain_rows(model, t.iloc[:40], top=5)
    assert [[(f.name, f.effect) for f in e.toward] for e in exps] == [
        [(f.name, f.effect) for f in e.toward] for e in again
    ]
    # families only: same family effects, no per-feature lists
    fam = explain_rows(model, t.iloc[:5], per_feature=False)
    for a, b in zip(fam, exps[:5], strict=True):
        assert not a.toward and not a.against
        assert [(f.name, round(f.effect, 12)) for f in a.families] == [
            (f.name, round(f.effect, 12)) for f in b.families
        ]


def test_old_model_without_stats_still_explains(tmp_path):
    t = _table()
    new = _fit_save(tmp_path, t, "lr", stats=True)
    old = _fit_save(tmp_path, t, "lr", stats=False)
    assert old.training_stats is None and new.training_stats is not None
    e_new, e_old = explain_rows(new, t.iloc[:3]), explain_rows(old, t.iloc[:3])
    for a, b in zip(e_new, e_old, strict=True):
        # medians from the imputer are the stored medians: identical effects
        assert [(f.name, pytest.approx(f.effect)) for f in a.toward] == [
            (f.name, f.effect) for f in b.toward
        ]
        assert a.has_stats and not b.has_stats
        assert all(f.pct_pred is not None for f in a.toward)
        assert all(f.pct_pred is None and f.pct_ref is None for f in b.toward)
        assert all(i.grade is None for i in b.abcd)


def test_abcd_summary_words_and_grades():
    t = _table()
    names = [c for c in t.columns if c not in ("image_id", "dx")]
    st = training_stats(t, names, t["dx"])
    v = dict.fromkeys(names, 0.0)
    v.update(
        shape_asymmetry_major=0.9,  # far beyond every training value: "marked"
        shape_asymmetry_minor=0.05,
        shape_convexity=0.8,
        variegation_n_colors=3.0,
        variegation_bluegray_frac=0.2,
        variegation_darkbrown_frac=0.5,
        variegation_white_frac=0.01,
        shape_area_frac=0.25,
    )
    items = {i.key: i for i in abcd_summary(v, stats=st, image_shape=(450, 600))}
    assert set(items) == {"A", "B", "C", "D", "size"}
    assert items["A"].grade == "marked"
    assert "90% of the lesion does not overlap its mirror image" in items["A"].text
    assert items["C"].text.startswith("3 of the 6 dermoscopic colours (dark brown 50%, blue-grey")
    assert "white" not in items["C"].text.split("includes")[0]  # 1% < the 5% presence rule
    assert "includes blue-grey" in items["C"].text
    assert "67,500 px" in items["size"].text and "600x450" in items["size"].text
    assert "no physical scale" in items["size"].text
    bare = {i.key: i for i in abcd_summary(v)}
    assert bare["A"].grade is None and "training nevi" not in bare["A"].text
    assert "% of the image" in bare["size"].text
    assert abcd_summary({}) == []


def test_train_stores_small_stats_and_old_files_load(tmp_path):
    """`hamfeat.training.train` writes the statistics; files without them keep loading."""
    from hamfeat.pipeline import FeatureConfig
    from hamfeat.training import train

    t = _table()
    cfg = FeatureConfig().as_dict()
    full = pd.DataFrame(
        {n: t[n] if n in t.columns else 0.0 for n in FeatureConfig().feature_names()}
    )
    full["image_id"], full["lesion_id"], full["dx"] = t["image_id"], t["image_id"], t["dx"]
    full.attrs["hamfeat"] = {"config": cfg}
    path = tmp_path / "t.parquet"
    full.to_parquet(path)
    m = load_model(train(path, tmp_path / "m.skops", model="lr"))
    st = m.training_stats
    assert st is not None and st["quantiles"].shape[2] == len(st["features"])
    # quantiles only (8 rows x 41 levels x float32 = 1.3 kB a feature), never the table
    assert st["quantiles"].nbytes <= 8 * 41 * 4 * len(st["features"]) < 2_000_000
