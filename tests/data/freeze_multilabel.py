"""Write ``multilabel_params.json``: the X-ray (one-vs-rest) models' parameters and fitted
probabilities, with default and non-default seeds, families, threads and parameter tables.

Run once with the code to freeze, naming its multi-label factory:

    PYTHONPATH=<checkout> python tests/data/freeze_multilabel.py \
        hamfeat.evaluate_multilabel:make_multilabel_model

It was run at commit e677030 (before the models became a registry, when the X-ray factory was
``hamfeat.evaluate_multilabel.make_multilabel_model``). ``tests/models/test_model_registry.py``
compares the registry's :func:`hamfeat.models.make_multilabel_model` with it: the same
``get_params(deep=True)`` (estimators by class name, as in ``freeze_models.py``) for every name
and variant, the same error for an unknown name, and bit for bit the same ``predict_proba`` on
the small generated multi-label table of :func:`multilabel_table`.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import warnings
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("multilabel_params.json")
#: The generated table (:func:`multilabel_table`).
TABLE = {"n_images": 40, "seed": 0}
#: Keyword arguments of the factory, by variant name.
VARIANTS: dict[str, dict] = {
    "default": {},
    "seed": {"random_state": 7},
    "families": {"families": ["grayhist", "graylbp", "grayhog"]},
    "seed_families": {"random_state": 11, "families": ["graygrid", "graythumb"]},
    # parameters only: with threads a forest's summed probabilities may differ in the last bit
    # from one run to the next, whatever the code
    "seed_families_threads": {"random_state": 11, "families": ["graygrid", "graythumb"],
                              "n_jobs": 2},
    "params_previous_lr": {"params": {"rf": {"n_estimators": 150, "min_samples_leaf": 5},
                                      "svm": {"C": 1.0}, "lr": {}}},
    "params_custom": {"random_state": 3,
                      "params": {"rf": {"n_estimators": 20}, "knn": {"n_neighbors": 3}}},
}
#: Variants whose probabilities are frozen too.
PROBA_VARIANTS = ("default", "seed_families", "params_custom")
#: Names the X-ray factory is asked for (every single-label model, and the learned patch model).
NAMES = ("ensemble", "hgb", "knn", "knn_seed", "lr", "mlp", "patchkm", "rf", "svm")
#: Names it must refuse.
UNKNOWN = ("x", "ENSEMBLE")


def multilabel_table():
    """A small table with every grayscale family's columns, and a 0/1 matrix of 3 labels.

    Returns
    -------
    X : pandas.DataFrame
    Y : numpy.ndarray of shape (n_images, 3)
    """
    import pandas as pd

    from hamfeat.features import FAMILIES, GRAY_FAMILY_NAMES

    n = TABLE["n_images"]
    rng = np.random.default_rng(TABLE["seed"])
    cols = {}
    for f in GRAY_FAMILY_NAMES:
        names = FAMILIES[f].names()
        vals = rng.uniform(0, 255.0 if f == "graypix" else 1.0, size=(n, len(names)))
        cols.update(zip(names, vals.T, strict=True))
    X = pd.DataFrame(cols)
    X.iloc[::7, 3] = np.nan  # a few missing values for the imputer
    s = X["grayhist_mean"].to_numpy() + 0.5 * X["graylbp_r1_u00"].to_numpy()
    Y = np.stack([
        (s > np.median(s)).astype(int),
        (X["grayglcm_d1_contrast_mean"].to_numpy() + rng.normal(0, 0.3, n) > 0.5).astype(int),
        (X["graypix_g64_r00c00"].to_numpy() > 128).astype(int),
    ], axis=1)
    return X, Y


def fit_proba(model, X, Y):
    """``predict_proba`` after fitting on the whole table (one thread), or the error's text."""
    from threadpoolctl import threadpool_limits

    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore")
        try:
            return np.asarray(model.fit(X, Y).predict_proba(X), dtype=np.float64)
        except ValueError as exc:  # knn_seed reads colour features, which X-rays lack
            return f"ValueError: {exc}"


def _params_of():
    spec = importlib.util.spec_from_file_location(
        "freeze_models", Path(__file__).with_name("freeze_models.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.params_of


def main(factory_path: str) -> None:
    mod, _, fn = factory_path.partition(":")
    factory = getattr(importlib.import_module(mod), fn)
    params_of = _params_of()
    X, Y = multilabel_table()
    out = {"factory": factory_path, "table": TABLE, "params": {}, "proba": {}, "unknown": {}}
    for bad in UNKNOWN:
        try:
            factory(bad)
        except ValueError as exc:
            out["unknown"][bad] = str(exc)
    for name in NAMES:
        for variant, kw in VARIANTS.items():
            key = f"{name}/{variant}"
            model = factory(name, **kw)
            out["params"][key] = params_of(model)
            if variant in PROBA_VARIANTS:
                proba = fit_proba(model, X, Y)
                out["proba"][key] = (
                    proba if isinstance(proba, str)
                    else [[float(p).hex() for p in row] for row in proba]
                )
    OUT.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"{OUT}: {len(out['params'])} parameter sets, {len(out['proba'])} probabilities")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "hamfeat.models:make_multilabel_model")
