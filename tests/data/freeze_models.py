"""Write ``model_params.json``: every model's parameters and fitted probabilities, frozen.

Run once with the code to freeze (it was run on main before the models became a registry):

    PYTHONPATH=<checkout> python tests/data/freeze_models.py

``tests/models/test_model_registry.py`` compares today's :func:`hamfeat.models.make_model`
with it: the same ``get_params(deep=True)`` for every name, and the same probabilities on a
small synthetic table. Estimators are recorded by class name only (a class may move to another
module without changing the model).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("model_params.json")
#: The synthetic table the probabilities are computed on (small: every default model fits
#: in a few seconds).
TABLE = {"n_lesions": 40, "seed": 7, "n_per_family": 3}


def describe(value):
    """A JSON value for one parameter (estimators and functions by name)."""
    if hasattr(value, "get_params") and not isinstance(value, type):
        return {"__estimator__": type(value).__name__}
    if callable(value) and hasattr(value, "__name__"):
        return {"__callable__": value.__name__}
    if isinstance(value, (list, tuple)):
        return [describe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): describe(v) for k, v in sorted(value.items())}
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return {"__float__": "nan"}  # NaN != NaN: compared as text
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return {"__repr__": repr(value)}


def params_of(estimator) -> dict:
    return {k: describe(v) for k, v in sorted(estimator.get_params(deep=True).items())}


def main() -> None:
    from hamfeat._warnings import capture
    from hamfeat.models import MODEL_NAMES, make_model, make_multilabel_model
    from hamfeat.synthetic import make_synthetic_table

    table = make_synthetic_table(TABLE["n_lesions"], seed=TABLE["seed"],
                                 n_per_family=TABLE["n_per_family"])
    y = table["dx"].to_numpy()
    out = {"table": TABLE, "single": {}, "proba": {}, "multilabel": {}}
    for name in MODEL_NAMES:
        model = make_model(name)
        out["single"][name] = params_of(model)
        with capture():
            proba = model.fit(table, y).predict_proba(table)
        out["proba"][name] = [[float(p).hex() for p in row] for row in proba]
    for name in (*MODEL_NAMES, "patchkm"):
        out["multilabel"][name] = params_of(make_multilabel_model(name))
    OUT.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"{OUT}: {len(out['single'])} models")


if __name__ == "__main__":
    main()
