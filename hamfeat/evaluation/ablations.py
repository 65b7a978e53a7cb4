"""The ablation study of ``hamfeat cv`` (dermoscopy): one model with the imbalance measures,
each feature family left out, the metadata variant, and the same model on the tables with
automatic masks and with the other colour-constancy setting, all on the first seed's splits.

It stays in the library (not in ``benchmarks/``) because ``hamfeat cv`` runs it by default
and its ``--auto-features``, ``--cc-features`` and ``--no-ablations`` options feed it: its
results are part of what ``hamfeat cv`` writes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hamfeat.datasets.ham10000 import CLASSES
from hamfeat.evaluation.metrics import evaluate_oof
from hamfeat.evaluation.oof import oof_predictions
from hamfeat.evaluation.results import Ablations, OtherTable, Summary
from hamfeat.evaluation.splits import Split, grouped_splits
from hamfeat.models import FAMILY_NAMES, feature_columns, make_model
from hamfeat.tables import load_table, table_config, table_hash

__all__ = ["ablation_variants", "labels_of", "run_ablations"]


def labels_of(table: pd.DataFrame, classes: Sequence[str] = CLASSES) -> np.ndarray:
    """The class index (into ``classes``, default HAM10000's) of each row's ``dx``.

    Returns
    -------
    numpy.ndarray of int
    """
    order = list(classes)
    return np.array([order.index(c) for c in table["dx"].astype(str)])


def ablation_variants(table: pd.DataFrame, mk: Callable[..., Any], model: str) -> dict[str, Any]:
    """The ablation plan: the unfitted variants of ``model`` fitted on the main table.

    Parameters
    ----------
    table : pandas.DataFrame
    mk : callable
        ``mk(**params)`` -> the unfitted model with those extra parameters.
    model : str

    Returns
    -------
    dict of str to estimator
        ``default``, the imbalance variants, ``without_<family>`` for each family present,
        ``with_metadata``.
    """
    # imbalance measures (same model): class weights, resampling; the decision rule is the
    # alpha axis of each variant's curve
    variants: dict[str, Any] = {"default": mk()}
    if model in ("knn", "knn_seed"):
        variants["over"] = mk(resample="over")
    else:
        variants["no_class_weight"] = mk(class_weight=None)
        variants["over_no_class_weight"] = mk(class_weight=None, resample="over")
        variants["smote_no_class_weight"] = mk(class_weight=None, resample="smote")
    for fam in FAMILY_NAMES:
        if feature_columns(table.columns, (fam,)):
            variants[f"without_{fam}"] = mk(exclude=(fam,))
    variants["with_metadata"] = mk(metadata=True)
    return variants


def _other_table(path, label, table, mk, seed, n_splits, n_jobs, notes) -> OtherTable | None:
    """The default variant on another table (its own rows and splits, same seed)."""
    if path is None or not Path(path).is_file():
        why = "no table given" if path is None else f"{path} absent"
        notes.append(f"{label} ablation skipped: {why}")
        return None
    t = load_table(path)
    yt, gt = labels_of(t), t["lesion_id"].astype(str).to_numpy()
    sp = grouped_splits(yt, gt, n_splits=n_splits, seeds=(seed,))
    o = oof_predictions({"default": mk()}, t, sp, n_jobs=n_jobs)["default"]
    # and the same images of the main table, for a like-for-like comparison
    common = table["image_id"].isin(set(t["image_id"]))
    return OtherTable(str(path), table_hash(t), len(t), int(common.sum()), table_config(t),
                      evaluate_oof(o, yt, gt).summary)


def run_ablations(
    table: pd.DataFrame,
    y: np.ndarray,
    groups: np.ndarray,
    splits: Sequence[Split],
    model: str,
    model_params: Mapping[str, Mapping[str, Any]],
    random_state: int,
    n_jobs: int | None,
    auto_path: str | PathLike[str] | None,
    cc_path: str | PathLike[str] | None,
    notes: list[str],
    say: Callable[[str], None],
    n_splits: int,
) -> Ablations:
    """Imbalance study, leave-one-family-out, masks, colour constancy and metadata.

    Parameters
    ----------
    table : pandas.DataFrame
        The main table.
    y, groups : numpy.ndarray
        Class index and lesion id per image.
    splits : sequence of Split
        The first seed's splits.
    model : str
        The ablation model.
    model_params : mapping
        Extra :func:`~hamfeat.models.make_model` arguments per model.
    random_state : int
    n_jobs : int, optional
    auto_path, cc_path : path-like, optional
        The tables with automatic masks / the other colour-constancy setting.
    notes : list of str
        The report's notes (a skipped table is noted there).
    say : callable
        Progress lines.
    n_splits : int

    Returns
    -------
    Ablations
    """
    base_params = dict(model_params.get(model, {}))

    def mk(**kw):
        p = {**base_params, **kw}
        return make_model(model, random_state=random_state, **p)

    variants = ablation_variants(table, mk, model)
    say(f"ablations: {len(variants)} variants of {model}")
    oofs = oof_predictions(variants, table, splits, n_jobs=n_jobs)
    res: dict[str, Summary] = {k: evaluate_oof(o, y, groups).summary for k, o in oofs.items()}
    fams_present = [k[len("without_"):] for k in variants if k.startswith("without_")]
    seed = splits[0].seed
    say("ablations: other tables")
    auto = _other_table(auto_path, "automatic masks", table, mk, seed, n_splits, n_jobs, notes)
    # the main table's colour-constancy setting, and the same model on the other one
    main_cc = "on" if table_config(table).get("color_constancy") else "off"
    other_cc = "off" if main_cc == "on" else "on"
    other = _other_table(cc_path, f"colour constancy {other_cc}", table, mk, seed, n_splits,
                         n_jobs, notes)
    if other and bool(other.config.get("color_constancy")) == (main_cc == "on"):
        notes.append(
            f"colour-constancy ablation: {cc_path} has the same setting ({main_cc}) as the "
            "main table, so it measures nothing"
        )
    return Ablations(
        model=model,
        seed=seed,
        params=base_params,
        imbalance={
            k: res[k] for k in variants if k == "default" or "class_weight" in k or k == "over"
        },
        families={"all": res["default"], **{f: res[f"without_{f}"] for f in fams_present}},
        metadata={"image_only": res["default"], "with_metadata": res["with_metadata"]},
        masks_given=res["default"],
        masks_auto=auto,
        cc_main=main_cc,
        cc_other=other,
        fit_seconds={k: o.fit_seconds for k, o in oofs.items()},
    )
