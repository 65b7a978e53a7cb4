"""Model pipelines on the feature table: a registry of models, the decision rule, persistence.

Every model is a :class:`sklearn.pipeline.Pipeline` that takes the feature table itself and
selects its own columns by feature family (:mod:`hamfeat.models.selection`), so
cross-validation never leaks. The last step is a :class:`PriorCorrectedClassifier`
(:mod:`hamfeat.models.decision`), whose ``predict`` takes the arg-max of ``p / prior**alpha``.

Models are registered as :class:`ModelSpec` entries (:mod:`hamfeat.models.registry`; the
built-in ones in :mod:`hamfeat.models.builders`) and built by :func:`make_model` or
:func:`make_multilabel_model` (:mod:`hamfeat.models.factory`); :func:`fit_reporting`
(:mod:`hamfeat.models.fitting`) fits with progress lines. Models are saved with
:mod:`skops.io` (never pickle) by :func:`save_model` and read back by :func:`load_model`
(:mod:`hamfeat.models.persistence`), which refuses any type outside an explicit allow-list.

    >>> import numpy as np
    >>> rule = apply_decision_rule(np.array([[0.6, 0.4]]), np.array([0.9, 0.1]), alpha=1.0)
    >>> rule.tolist()
    [1]
    >>> "rf" in model_names(task="multiclass")
    True
"""

from __future__ import annotations

from hamfeat.models.builders import (
    CXR_ENSEMBLE,
    ENSEMBLE_MEMBERS,
    MLP_SEEDS,
    MULTILABEL_FAMILIES,
    PATCHKM_C,
    PATCHKM_ENCODER,
    PIXEL_FAMILY,
)
from hamfeat.models.decision import (
    DEFAULT_ALPHA,
    PriorCorrectedClassifier,
    apply_decision_rule,
)
from hamfeat.models.factory import (
    make_model,
    make_multilabel_model,
    missing_families,
    model_families,
)
from hamfeat.models.fitting import _fit_voting as _fit_voting  # used by tests
from hamfeat.models.fitting import fit_reporting
from hamfeat.models.persistence import (
    LEGACY_TYPE_PATHS,
    MODEL_FORMAT,
    MODEL_FORMAT_VERSION,
    LoadedModel,
    drop_training_state,
    load_model,
    save_model,
)
from hamfeat.models.persistence import (
    _is_trusted_type as _is_trusted_type,  # used by tests
)
from hamfeat.models.registry import (
    MULTICLASS,
    MULTILABEL,
    BuildContext,
    ModelSpec,
    get_model_spec,
    model_names,
    register_model,
    task_params,
)
from hamfeat.models.selection import (
    FAMILY_NAMES,
    GRAY_FAMILY_NAMES,
    METADATA_CATEGORICAL,
    METADATA_NUMERIC,
    SEED_FEATURE_PATTERN,
    FeatureSelector,
    family_of,
    feature_columns,
    model_feature_names,
    note_undeclared,
    undeclared_feature_like,
)

#: Names of the built-in single-label models, as :func:`make_model` knows them
#: (``model_names(task="multiclass")`` when this package was imported; call that function to
#: see models registered later).
MODEL_NAMES: tuple[str, ...] = model_names(MULTICLASS)

__all__ = [
    "CXR_ENSEMBLE",
    "DEFAULT_ALPHA",
    "ENSEMBLE_MEMBERS",
    "FAMILY_NAMES",
    "GRAY_FAMILY_NAMES",
    "LEGACY_TYPE_PATHS",
    "METADATA_CATEGORICAL",
    "METADATA_NUMERIC",
    "MLP_SEEDS",
    "MODEL_FORMAT",
    "MODEL_FORMAT_VERSION",
    "MODEL_NAMES",
    "MULTICLASS",
    "MULTILABEL",
    "MULTILABEL_FAMILIES",
    "PATCHKM_C",
    "PATCHKM_ENCODER",
    "PIXEL_FAMILY",
    "SEED_FEATURE_PATTERN",
    "BuildContext",
    "FeatureSelector",
    "LoadedModel",
    "ModelSpec",
    "PriorCorrectedClassifier",
    "apply_decision_rule",
    "drop_training_state",
    "family_of",
    "feature_columns",
    "fit_reporting",
    "get_model_spec",
    "load_model",
    "make_model",
    "make_multilabel_model",
    "missing_families",
    "model_families",
    "model_feature_names",
    "model_names",
    "note_undeclared",
    "register_model",
    "save_model",
    "task_params",
    "undeclared_feature_like",
]
