"""Why did the model call this lesion what it called it? Per-image explanations (no rendering).

For one image's feature row and a trained model this module computes:

* **which named features moved the prediction** toward the predicted class and away from the
  reference class (``nv``, the common benign class; when the prediction *is* ``nv``, the
  runner-up class under the model's decision rule);
* **where each of those feature values sits** in the training distribution of the predicted
  class and of the reference class (a percentile);
* **an ABCD summary** (asymmetry, border, colours, dermoscopic structures, size) in plain words,
  from the shape, border, variegation, zone and structure features.

Attribution method: replacement by the training median
------------------------------------------------------
The score explained is the log-ratio ``s(x) = log(p_pred(x) / p_ref(x))`` of the model's
probabilities. The effect of feature ``j`` is ``s(x) - s(x with x_j := median_j)``, where
``median_j`` is the feature's training median, the same value the model's own imputer puts in
for a missing value ("what if this feature were typical, or unknown"). A positive effect moves
the image toward the predicted class and away from the reference. Why this method:

* **one method for every model** (the default soft-vote ensemble of hgb, svm, lr and mlp, and
  lr, rf, knn ...): it needs nothing but ``predict_proba``, so the explanation is of the
  prediction actually made, not of one ensemble member. Explaining only the linear member
  exactly would describe a quarter of the ensemble's vote;
* **exact for a linear model**: for ``lr`` (multinomial logistic regression on per-feature
  quantile-scaled values ``z``) ``s(x) = (w_pred - w_ref) . z(x) + b``, so the effect is exactly
  ``(w_pred,j - w_ref,j) * (z_j(x_j) - z_j(median_j))``, the coefficient times the scaled
  value's distance from the median, and the effects add up to ``s(x) - s(median row)``
  (``tests/render/test_explain.py`` checks both);
* **independent of the decision rule**: the prior correction ``p / prior**alpha`` adds a
  constant to the log-ratio, so the effects on the decision are the same;
* **deterministic and cheap**: one batched ``predict_proba`` of ``1 + n_features`` rows per
  image (no sampling, so the same image always gets the same explanation), or
  ``1 + n_families`` rows for the coarser family view (every feature of a family replaced at
  once).

Its limits, said plainly: it changes one feature at a time, so for a non-linear model the
effects do not add up to the total shift (reported beside them), and correlated features
share credit (a tree model that can read the same fact from ten colour columns loses little
when one of them is replaced); the family view is the remedy for the second.

What the model file must hold
-----------------------------
:func:`training_stats` (called by ``hamfeat train``) stores, per class and for all training
images, 41 quantiles (every 2.5 %) and the median of every feature the model reads: a few
hundred kB, not the table. A model saved before that has no such statistics: its
explanations still work (the medians are read from the model's imputer, the same numbers),
but percentiles are shown as unavailable and the ABCD summary gives values without
comparisons to the training lesions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hamfeat.models import family_of

__all__ = [
    "QUANTILE_LEVELS",
    "REFERENCE_CLASS",
    "ABCDItem",
    "Explanation",
    "FeatureEffect",
    "abcd_summary",
    "explain_rows",
    "percentile_of",
    "training_stats",
]

#: The class explanations are measured against ("away from nv").
REFERENCE_CLASS = "nv"
#: Percentile levels of the stored per-class training quantiles (every 2.5 %).
QUANTILE_LEVELS: np.ndarray = np.linspace(0.0, 100.0, 41)
#: Name of the all-images group in the stored statistics.
ALL = "all"
#: Version of the statistics' layout (``training_stats()["version"]``).
STATS_VERSION = 1
_EPS = 1e-12


# --------------------------------------------------------------------------------------------
# training statistics (stored in the model file)
# --------------------------------------------------------------------------------------------


def training_stats(
    table: pd.DataFrame, feature_names: Sequence[str], labels: Sequence[str]
) -> dict[str, Any]:
    """Per-class quantiles and medians of the training features, to store in a model file.

    Parameters
    ----------
    table : pandas.DataFrame
        The training table.
    feature_names : sequence of str
        The columns the model reads; non-numeric ones (metadata categories) are skipped.
    labels : sequence of str
        The training label of each row.

    Returns
    -------
    dict
        ``version``; ``features`` (list of str); ``groups`` (the classes, then ``"all"``);
        ``levels`` (:data:`QUANTILE_LEVELS`); ``quantiles``, ``float32`` array of shape
        ``(n_groups, n_levels, n_features)`` (NaN where a group has no value); ``median``,
        ``float64`` ``(n_features,)`` over all rows; ``counts``, rows per group.
    """
    names = [
        str(c)
        for c in feature_names
        if c in table.columns and pd.api.types.is_numeric_dtype(table[c])
    ]
    X = table[names].to_numpy(dtype=np.float64, na_value=np.nan)
    y = np.asarray([str(v) for v in labels], dtype=object)
    groups = sorted(set(y.tolist()))
    q = np.full((len(groups) + 1, len(QUANTILE_LEVELS), len(names)), np.nan, dtype=np.float32)
    counts = []
    for g, sel in enumerate([y == c for c in groups] + [np.ones(len(y), bool)]):
        counts.append(int(sel.sum()))
        sub = X[sel]
        ok = np.isfinite(sub).any(axis=0)
        if sub.shape[0] and ok.any():
            q[g][:, ok] = np.nanquantile(sub[:, ok], QUANTILE_LEVELS / 100.0, axis=0)
    med = np.full(len(names), np.nan)
    ok = np.isfinite(X).any(axis=0)
    med[ok] = np.nanmedian(X[:, ok], axis=0)
    return {
        "version": STATS_VERSION,
        "features": names,
        "groups": [*groups, ALL],
        "levels": QUANTILE_LEVELS.copy(),
        "quantiles": q,
        "median": med,
        "counts": counts,
    }


def percentile_of(value: float, quantiles: np.ndarray, levels: np.ndarray = QUANTILE_LEVELS):
    """The percentile of ``value`` in a distribution given by its quantiles.

    Linear between the stored quantiles; a value equal to a run of tied quantiles (e.g. an
    integer feature) gets the middle of that run; below the minimum 0, above the maximum 100.

    Parameters
    ----------
    value : float
    quantiles : numpy.ndarray
        Non-decreasing quantiles at ``levels``.
    levels : numpy.ndarray
        Percent levels, 0 to 100.

    Returns
    -------
    float or None
        ``None`` when the value or the distribution is missing.

    Examples
    --------
    >>> percentile_of(5.0, np.array([0.0, 10.0]), np.array([0.0, 100.0]))
    50.0
    """
    qs = np.asarray(quantiles, dtype=np.float64)
    if value is None or not np.isfinite(value) or not np.isfinite(qs).all():
        return None
    lo = int(np.searchsorted(qs, value, "left"))
    hi = int(np.searchsorted(qs, value, "right"))
    if lo < hi:  # equal to qs[lo:hi]
        return float((levels[lo] + levels[hi - 1]) / 2.0)
    if lo == 0:
        return 0.0
    if lo == len(qs):
        return 100.0
    x0, x1 = qs[lo - 1], qs[lo]
    t = (value - x0) / (x1 - x0)
    return float(levels[lo - 1] + t * (levels[lo] - levels[lo - 1]))


class _Stats:
    """Look-ups into a model's stored training statistics (or nothing, for an old model)."""

    def __init__(self, stats: Mapping[str, Any] | None) -> None:
        self.ok = bool(stats) and int(stats.get("version", 0)) == STATS_VERSION
        if self.ok:
            self.col = {n: i for i, n in enumerate(stats["features"])}
            self.group = {g: i for i, g in enumerate(stats["groups"])}
            self.q = np.asarray(stats["quantiles"], dtype=np.float64)
            self.levels = np.asarray(stats["levels"], dtype=np.float64)
            self.median = np.asarray(stats["median"], dtype=np.float64)

    def pct(self, name: str, value: float, group: str) -> float | None:
        if not self.ok or name not in self.col or group not in self.group:
            return None
        return percentile_of(value, self.q[self.group[group], :, self.col[name]], self.levels)


# --------------------------------------------------------------------------------------------
# explanations
# --------------------------------------------------------------------------------------------


@dataclass
class FeatureEffect:
    """One feature's part in one prediction.

    Attributes
    ----------
    name : str
        Feature (or, in the family view, family) name.
    family : str
    value : float
        The image's value (NaN: missing, so imputed with the median: effect 0).
    median : float
        The training median it is compared with.
    effect : float
        ``s(x) - s(x with this feature at its median)``, ``s = log(p_pred / p_ref)``:
        positive moves toward the predicted class and away from the reference.
    pct_pred, pct_ref : float or None
        Percentile of :attr:`value` among the training images of the predicted / the
        reference class (``None`` without stored statistics, and in the family view).
    """

    name: str
    family: str
    value: float
    median: float
    effect: float
    pct_pred: float | None = None
    pct_ref: float | None = None


@dataclass
class ABCDItem:
    """One line of the ABCD summary.

    Attributes
    ----------
    key : str
        ``"A"``, ``"B"``, ``"C"``, ``"D"`` (dermoscopic structures) or ``"size"``.
    title : str
        E.g. ``"Asymmetry"``.
    text : str
        The finding in plain words.
    grade : str or None
        A short word (``"marked"``, ``"typical of nevi"``, ...) or None when no comparison was
        possible.
    features : dict
        The feature values behind the sentence.
    """

    key: str
    title: str
    text: str
    grade: str | None = None
    features: dict[str, float] = field(default_factory=dict)


@dataclass
class Explanation:
    """Everything shown about one image's prediction.

    Attributes
    ----------
    image_id : str
    predicted : str
        The model's prediction (its decision rule).
    reference : str
        The class the log-ratio is measured against (``nv``, or the runner-up if ``nv`` was
        predicted).
    proba : dict of str to float
        The model's class probabilities.
    p_malignant : float or None
        ``p_mel + p_bcc + p_akiec`` (HAM10000 models).
    log_ratio : float
        ``s(x) = log(p_pred / p_ref)``.
    total_shift : float
        ``s(x) - s(every feature at its median)``: what the one-at-a-time effects are part of
        (they add up to it exactly for a linear model).
    toward : list of FeatureEffect
        The features with the largest positive effects, largest first.
    against : list of FeatureEffect
        The largest negative effects (pulling toward the reference), most negative first.
    families : list of FeatureEffect
        Family view: effect of setting every feature of a family to its median, largest first.
    abcd : list of ABCDItem
    has_stats : bool
        Whether the model stores training distributions (else no percentiles).
    method : str
        One line naming the attribution method.
    """

    image_id: str
    predicted: str
    reference: str
    proba: dict[str, float]
    p_malignant: float | None
    log_ratio: float
    total_shift: float
    toward: list[FeatureEffect]
    against: list[FeatureEffect]
    families: list[FeatureEffect]
    abcd: list[ABCDItem]
    has_stats: bool
    method: str


METHOD = (
    "effect = change of log(p_pred / p_ref) when the feature is set to its training median "
    "(exact linear contributions for a linear model)"
)


def _last_step(estimator):
    return estimator[-1] if hasattr(estimator, "steps") else estimator


def _decision_weights(estimator, proba: np.ndarray) -> np.ndarray:
    """``p / prior**alpha`` of the model's decision rule (argmax = the model's prediction)."""
    last = _last_step(estimator)
    prior = getattr(last, "class_prior_", None)
    alpha = float(getattr(last, "alpha", 0.0) or 0.0)
    if prior is None or alpha == 0.0:
        return proba
    return proba / np.clip(np.asarray(prior, dtype=np.float64), _EPS, None) ** alpha


def _medians(model, names: list[str], stats: _Stats) -> np.ndarray:
    """Training medians of ``names``: stored statistics, else the model's median imputer."""
    if stats.ok:
        return np.array([stats.median[stats.col[n]] if n in stats.col else np.nan for n in names])
    est = model.estimator
    sel = est.named_steps.get("select") if hasattr(est, "named_steps") else None
    imp = est.named_steps.get("impute") if hasattr(est, "named_steps") else None
    if sel is None or imp is None or not hasattr(imp, "statistics_"):
        return np.full(len(names), np.nan)
    out_names = [str(c) for c in sel.get_feature_names_out()]
    lookup = dict(zip(out_names, np.asarray(imp.statistics_, dtype=np.float64), strict=False))
    return np.array([lookup.get(n, np.nan) for n in names])


def explain_rows(
    model,
    table: pd.DataFrame,
    *,
    top: int = 5,
    image_shapes: Sequence[tuple[int, int] | None] | None = None,
    per_feature: bool = True,
    chunk: int = 8,
) -> list[Explanation]:
    """Explain the model's prediction for each row of a feature table.

    Parameters
    ----------
    model : hamfeat.models.LoadedModel
        A single-label (HAM10000) model from :func:`hamfeat.models.load_model`.
    table : pandas.DataFrame
        Feature rows (e.g. ``hamfeat features`` output or the features of a scored folder),
        with an ``image_id`` column if there is one.
    top : int
        How many features to list toward (and against) the prediction.
    image_shapes : sequence of (height, width) or None, optional
        Each image's size in pixels, for the lesion size of the ABCD summary.
    per_feature : bool
        Compute the effect of every feature (``2 + n_features + n_families`` predictions per
        image); ``False``: the family view only (``2 + n_families``), many times cheaper for
        a model with a slow ``predict_proba`` (the ensemble's SVM); ``toward``/``against``
        are then empty.
    chunk : int
        Images per ``predict_proba`` call.

    Returns
    -------
    list of Explanation
        One per row, in order.

    Raises
    ------
    ValueError
        For a model without a reference class ``nv``-style single-label output.
    """
    classes = [str(c) for c in model.classes]
    if len(classes) < 2 or model.extra.get("task") == "multilabel":
        raise ValueError(f"{model.path}: explanations need a single-label (multi-class) model")
    stats = _Stats(model.training_stats)
    names = [
        n
        for n in model.feature_names
        if n in table.columns and pd.api.types.is_numeric_dtype(table[n])
    ]
    med = _medians(model, names, stats)
    usable = np.isfinite(med)
    names = [n for n, u in zip(names, usable, strict=True) if u]
    med = med[usable]
    fams = list(dict.fromkeys(family_of(n) for n in names))
    fam_idx = [np.array([i for i, n in enumerate(names) if family_of(n) == f]) for f in fams]
    n_feat = len(names) if per_feature else 0
    n_var = 2 + n_feat + len(fams)  # x, all-at-median, one per feature, one per family
    shapes = list(image_shapes) if image_shapes is not None else [None] * len(table)
    out: list[Explanation] = []
    for start in range(0, len(table), max(1, int(chunk))):
        rows = table.iloc[start : start + max(1, int(chunk))]
        X = rows[names].to_numpy(dtype=np.float64, na_value=np.nan)
        blocks = []
        for x in X:
            b = np.repeat(x[None, :], n_var, axis=0)
            b[1] = med
            if n_feat:
                b[2 + np.arange(n_feat), np.arange(n_feat)] = med
            for k, idx in enumerate(fam_idx):
                b[2 + n_feat + k, idx] = med[idx]
            blocks.append(b)
        big = pd.DataFrame(np.vstack(blocks), columns=names)
        extra_cols = [c for c in model.feature_names if c not in names and c in rows.columns]
        for c in extra_cols:  # metadata etc.: kept at the image's own value
            big[c] = np.repeat(rows[c].to_numpy(), n_var)
        proba = np.asarray(model.estimator.predict_proba(big), dtype=np.float64)
        for r in range(len(rows)):
            p = proba[r * n_var : (r + 1) * n_var]
            out.append(
                _one(
                    model,
                    rows.iloc[r],
                    names,
                    med,
                    fams,
                    X[r],
                    p,
                    classes,
                    stats,
                    top,
                    shapes[start + r],
                    n_feat,
                )
            )
    return out


def _one(model, row, names, med, fams, x, p, classes, stats, top, shape, n) -> Explanation:
    w = _decision_weights(model.estimator, p[:1])[0]
    pred = int(np.argmax(w))
    if classes[pred] != REFERENCE_CLASS and REFERENCE_CLASS in classes:
        ref = classes.index(REFERENCE_CLASS)
    else:
        order = np.argsort(-w, kind="stable")
        ref = int(order[1])
    lp = np.log(np.clip(p, _EPS, None))
    s = lp[:, pred] - lp[:, ref]
    s0 = float(s[0])
    feat_eff = s0 - s[2 : 2 + n]
    fam_eff = s0 - s[2 + n :]
    cp, cr = classes[pred], classes[ref]
    effects = [
        FeatureEffect(
            name,
            family_of(name),
            float(x[j]),
            float(med[j]),
            float(feat_eff[j]),
            stats.pct(name, x[j], cp),
            stats.pct(name, x[j], cr),
        )
        for j, name in enumerate(names[:n])
    ]
    toward = sorted((e for e in effects if e.effect > 0), key=lambda e: -e.effect)[:top]
    against = sorted((e for e in effects if e.effect < 0), key=lambda e: e.effect)[:top]
    families = sorted(
        (FeatureEffect(f, f, math.nan, math.nan, float(fam_eff[k])) for k, f in enumerate(fams)),
        key=lambda e: -e.effect,
    )
    proba = {c: float(v) for c, v in zip(classes, p[0], strict=True)}
    mal = [c for c in ("mel", "bcc", "akiec") if c in proba]
    values = {n: float(v) for n, v in zip(names, x, strict=True)}
    return Explanation(
        image_id=str(row.get("image_id", "")) if hasattr(row, "get") else "",
        predicted=cp,
        reference=cr,
        proba=proba,
        p_malignant=float(sum(proba[c] for c in mal)) if mal else None,
        log_ratio=s0,
        total_shift=float(s0 - s[1]),
        toward=toward,
        against=against,
        families=families,
        abcd=abcd_summary(values, stats=model.training_stats, image_shape=shape),
        has_stats=stats.ok,
        method=METHOD,
    )


# --------------------------------------------------------------------------------------------
# ABCD summary
# --------------------------------------------------------------------------------------------

_COLOUR_WORDS = {
    "white": "white",
    "red": "red",
    "lightbrown": "light brown",
    "darkbrown": "dark brown",
    "bluegray": "blue-grey",
    "black": "black",
}


def _nth(pct: float) -> str:
    """``83.2`` -> ``"83rd"``."""
    n = round(float(pct))
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _grade(pct: float | None, *, high_is_more: bool = True) -> str | None:
    """A word for a percentile among training nevi (``None`` without statistics)."""
    if pct is None:
        return None
    p = pct if high_is_more else 100.0 - pct
    if p >= 90:
        return "marked"
    if p >= 75:
        return "more than most nevi"
    return "within the range of most nevi"


def _pct_words(pct: float | None, what: str, group: str = "training nevi") -> str:
    if pct is None:
        return ""
    return f"; {what} than {pct:.0f}% of {group}"


def abcd_summary(
    values: Mapping[str, float],
    *,
    stats: Mapping[str, Any] | None = None,
    image_shape: tuple[int, int] | None = None,
) -> list[ABCDItem]:
    """An ABCD summary of a lesion in plain words, from its named features.

    Parameters
    ----------
    values : mapping of str to float
        The image's features (missing names are skipped: an item needs its features).
    stats : mapping, optional
        A model's stored training statistics (:func:`training_stats`): grades and percentiles
        are relative to the training nevi (``nv``) and, for structures, to all training
        lesions. Without them only the values are given.
    image_shape : (height, width), optional
        The image's size, for the lesion size in pixels.

    Returns
    -------
    list of ABCDItem
        Asymmetry, Border, Colours, Dermoscopic structures, size (whichever can be said).

    Notes
    -----
    The grades are comparisons with the training lesions, not clinical thresholds:
    "marked" means beyond 90 % of the training nevi. HAM10000 has no physical scale (no
    millimetres per pixel), so the size is in pixels and the "D = diameter > 6 mm" rule of the
    clinical ABCD cannot be applied.
    """
    st = _Stats(stats)
    v = {k: float(x) for k, x in values.items() if x is not None and np.isfinite(x)}
    items: list[ABCDItem] = []

    def pct_nv(name: str) -> float | None:
        return st.pct(name, v[name], REFERENCE_CLASS) if name in v else None

    # A: asymmetry of the outline about the principal axes, and of colour between the halves
    if "shape_asymmetry_major" in v and "shape_asymmetry_minor" in v:
        a1, a2 = v["shape_asymmetry_major"], v["shape_asymmetry_minor"]
        worst = "shape_asymmetry_major" if a1 >= a2 else "shape_asymmetry_minor"
        pct = pct_nv(worst)
        text = (
            f"{100 * a1:.0f}% of the lesion does not overlap its mirror image about the long "
            f"axis, {100 * a2:.0f}% about the short axis" + _pct_words(pct, "more asymmetric")
        )
        feats = {"shape_asymmetry_major": a1, "shape_asymmetry_minor": a2}
        if "zone_halves_major_deltae" in v:
            de = v["zone_halves_major_deltae"]
            feats["zone_halves_major_deltae"] = de
            text += f"; colour difference between the two halves ΔE {de:.1f}"
        items.append(ABCDItem("A", "Asymmetry", text, _grade(pct), feats))

    # B: border irregularity (outline) and sharpness (how abruptly the pigment stops)
    if "shape_convexity" in v:
        cvx = v["shape_convexity"]
        pct = pct_nv("shape_convexity")
        text = f"outline convexity {cvx:.2f} (1 = smooth; lower = more notched)" + _pct_words(
            None if pct is None else 100 - pct, "more irregular"
        )
        feats = {"shape_convexity": cvx}
        if "shape_radial_cv" in v:
            feats["shape_radial_cv"] = v["shape_radial_cv"]
            text += f"; radius varies by {100 * v['shape_radial_cv']:.0f}% around the border"
        if "border_sector_cv" in v:
            feats["border_sector_cv"] = v["border_sector_cv"]
            pct_s = pct_nv("border_sector_cv")
            text += (
                f"; edge sharpness varies between sectors by {100 * v['border_sector_cv']:.0f}%"
                + ("" if pct_s is None else f" ({_nth(pct_s)} percentile of nevi)")
            )
        items.append(ABCDItem("B", "Border", text, _grade(pct, high_is_more=False), feats))

    # C: the six dermoscopic colours
    if "variegation_n_colors" in v:
        from hamfeat.features.color import COLOUR_PRESENT_FRACTION

        present = [
            (word, v[f"variegation_{key}_frac"])
            for key, word in _COLOUR_WORDS.items()
            if v.get(f"variegation_{key}_frac", 0.0) >= COLOUR_PRESENT_FRACTION
        ]
        present.sort(key=lambda t: -t[1])
        n = round(v["variegation_n_colors"])
        listing = ", ".join(f"{w} {100 * f:.0f}%" for w, f in present)
        pct = pct_nv("variegation_n_colors")
        text = (
            f"{n} of the 6 dermoscopic colours"
            + (f" ({listing} of the lesion)" if listing else "")
            + f"; a colour counts when it covers at least {100 * COLOUR_PRESENT_FRACTION:.0f}%"
            + _pct_words(pct, "more colours")
        )
        worrying = [w for w, _ in present if w in ("blue-grey", "black", "white", "red")]
        if worrying:
            text += f"; includes {', '.join(worrying)}"
        feats = {"variegation_n_colors": v["variegation_n_colors"]}
        feats.update(
            {
                f"variegation_{k}_frac": v[f"variegation_{k}_frac"]
                for k in _COLOUR_WORDS
                if f"variegation_{k}_frac" in v
            }
        )
        items.append(ABCDItem("C", "Colours", text, _grade(pct), feats))

    # D: dermoscopic structures, against all training lesions
    structures = [
        ("structure_blackhat_s3_frac12", "thin dark lines (pigment network)", "area"),
        ("structure_blackhat_s7_frac12", "dark lines and dots up to 7 px", "area"),
        ("structure_log_s1p5_dark_density", "dark dots and globules", "density"),
        ("structure_tophat_s7_frac12", "bright structures (white lines, regression)", "area"),
    ]
    parts, shown, feats = [], [], {}
    for name, words, kind in structures:
        if name not in v:
            continue
        feats[name] = v[name]
        pct = st.pct(name, v[name], ALL)
        amount = (
            f"{100 * v[name]:.1f}% of the interior"
            if kind == "area"
            else f"{v[name]:.2f} per 100 px"
        )
        if pct is None:
            parts.append(f"{words}: {amount}")
            continue
        if pct >= 75:
            label = "prominent" if pct >= 90 else "present"
            shown.append(words)
            parts.append(f"{words} {label} ({amount}, {_nth(pct)} percentile of training lesions)")
    if feats:
        if st.ok:
            text = (
                "; ".join(parts)
                if parts
                else "no structure above the 75th percentile of the training lesions"
            )
            grade = "present" if shown else "not prominent"
        else:
            text, grade = "; ".join(parts), None
        items.append(ABCDItem("D", "Dermoscopic structures", text, grade, feats))

    # size, in pixels only
    if "shape_area_frac" in v:
        af = v["shape_area_frac"]
        feats = {"shape_area_frac": af}
        if image_shape is not None:
            h, w = int(image_shape[0]), int(image_shape[1])
            area = af * h * w
            diam = math.sqrt(4.0 * area / math.pi)
            text = (
                f"{area:,.0f} px (equivalent diameter {diam:.0f} px) in a {w}x{h} image, "
                f"{100 * af:.0f}% of it"
            )
        else:
            text = f"{100 * af:.0f}% of the image"
        text += "; HAM10000 has no physical scale (no mm per pixel), so no diameter in mm"
        items.append(ABCDItem("size", "Lesion size", text, None, feats))
    return items


# --------------------------------------------------------------------------------------------
# files and scored folders
# --------------------------------------------------------------------------------------------


@dataclass
class ExplainedImage:
    """One image of a scored folder, with what a page shows about it.

    Attributes
    ----------
    row : dict
        Its row of the score table (``path, image_id, prediction, p_<class>, p_malignant,
        mask_source, error`` and any other column, e.g. ``flags``).
    explanation : Explanation or None
        ``None`` for a failed image.
    view : hamfeat.pipeline.PreparedImage or None
        The canonical image and the mask its features used (``None`` if it failed).
    shape : (int, int) or None
        The image's own ``(height, width)``.
    """

    row: dict
    explanation: Explanation | None = None
    view: Any = None
    shape: tuple[int, int] | None = None


def _model_config(model):
    from hamfeat.score import _config_from_model

    return _config_from_model(model)


def explain_file(
    model,
    image_path,
    mask_path=None,
    *,
    top: int = 5,
    per_feature: bool = True,
) -> ExplainedImage:
    """Compute one image's features with the model's configuration and explain them.

    Parameters
    ----------
    model : hamfeat.models.LoadedModel
    image_path : path-like
    mask_path : path-like, optional
        Its lesion mask (default: automatic segmentation, as ``hamfeat score``).
    top : int
    per_feature : bool
        See :func:`explain_rows`.

    Returns
    -------
    ExplainedImage
        ``row`` holds ``path``, ``image_id``, ``prediction``, ``mask_source`` and ``warnings``.

    Raises
    ------
    ImageError
        When the image cannot be used (one line naming the file).
    """
    from pathlib import Path

    from hamfeat.pipeline import extract_file, prepare_file

    config = _model_config(model)
    # the features exactly as `hamfeat score` computes them, and the view they saw (the same
    # deterministic steps, run again: a few ms)
    feats = extract_file(image_path, mask_path, config)
    view, shape = prepare_file(image_path, mask_path, config)
    row = pd.DataFrame([feats.values], columns=config.feature_names())
    row.insert(0, "image_id", Path(image_path).stem)
    exp = explain_rows(model, row, top=top, image_shapes=[shape], per_feature=per_feature)[0]
    info = {
        "path": str(image_path),
        "image_id": Path(image_path).stem,
        "prediction": exp.predicted,
        "mask_source": feats.mask_source,
        "warnings": list(dict.fromkeys(view.warnings + feats.warnings)),
    }
    return ExplainedImage(info, exp, view, shape)


def explain_scored(result, *, top: int = 5, per_feature: bool = True, chunk: int = 8):
    """Explain every scored image of a :class:`hamfeat.score.ScoreResult`, lazily.

    Parameters
    ----------
    result : hamfeat.score.ScoreResult
        From :func:`hamfeat.score.score_folder` (it carries the feature rows and the model).
    top : int
    per_feature : bool
        See :func:`explain_rows`.
    chunk : int
        Images explained per batch.

    Yields
    ------
    ExplainedImage
        In the order of the score table's image rows; failed images with ``row["error"]``
        and no explanation. An image whose view cannot be re-read (e.g. deleted since it was
        scored) keeps its explanation and has ``view=None``.
    """
    from hamfeat.errors import HamfeatError
    from hamfeat.pipeline import prepare_file

    model = result.model
    images = result.images()
    feats = result.features if result.features is not None else pd.DataFrame()
    by_path = {p: i for i, p in enumerate(feats["path"])} if "path" in feats else {}
    config = _model_config(model)
    rows = [{k: _plain(v) for k, v in r.items()} for r in images.to_dict("records")]
    for start in range(0, len(rows), max(1, chunk)):
        batch = rows[start : start + max(1, chunk)]
        ok = [r for r in batch if not r.get("error") and r["path"] in by_path]
        views, shapes = {}, {}
        for r in ok:
            mpath = feats.iloc[by_path[r["path"]]].get("mask_path")
            try:
                views[r["path"]], shapes[r["path"]] = prepare_file(r["path"], mpath, config)
            except HamfeatError:
                views[r["path"]], shapes[r["path"]] = None, None
        exps = {}
        if ok:
            sub = feats.iloc[[by_path[r["path"]] for r in ok]]
            for r, e in zip(
                ok,
                explain_rows(
                    model,
                    sub,
                    top=top,
                    image_shapes=[shapes[r["path"]] for r in ok],
                    per_feature=per_feature,
                    chunk=chunk,
                ),
                strict=True,
            ):
                exps[r["path"]] = e
        for r in batch:
            p = r["path"]
            yield ExplainedImage(r, exps.get(p), views.get(p), shapes.get(p))


def _plain(v):
    """A table cell as a plain Python value (NaN/NA -> None)."""
    if v is None:
        return None
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        return v
    return v.item() if isinstance(v, np.generic) else v
