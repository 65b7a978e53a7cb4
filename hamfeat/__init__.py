"""hamfeat: fast, honest hand-crafted features and classical models for dermoscopy.

The public API, importable from here; each name is loaded on first use, so ``import hamfeat``
loads no feature, model or evaluation code::

    from hamfeat import FeatureExtractor, load_dataset, make_model, load_model

================================  =========================================================
features                          :class:`FeatureExtractor`, :class:`FeatureConfig`,
                                  :func:`extract_file`, :func:`compute_features`,
                                  :func:`feature_names`, :func:`extract_dataset`,
                                  :func:`extract_table`
data sets                         :func:`load_dataset`, :func:`load_cxr14`
models                            :func:`make_model`, :func:`make_multilabel_model`,
                                  :func:`register_model`, :func:`model_names`,
                                  :func:`save_model`, :func:`load_model`
backends                          :func:`register_backend`
evaluation, training, scoring     :func:`cross_validate`, :func:`run_cv`,
                                  :func:`cross_validate_multilabel`, :func:`run_cv_multilabel`,
                                  :func:`train`, :func:`train_multilabel`,
                                  :func:`score_folder`
================================  =========================================================
"""

from __future__ import annotations

import importlib
from typing import Any

from hamfeat._version import __version__

#: Public name -> (module, attribute).
_API: dict[str, tuple[str, str]] = {
    "FeatureExtractor": ("hamfeat.pipeline", "FeatureExtractor"),
    "FeatureConfig": ("hamfeat.pipeline", "FeatureConfig"),
    "extract_file": ("hamfeat.pipeline", "extract_file"),
    "compute_features": ("hamfeat.pipeline", "compute_features"),
    "feature_names": ("hamfeat.features", "feature_names"),
    "extract_dataset": ("hamfeat.extract", "extract_dataset"),
    "extract_table": ("hamfeat.extract", "extract_table"),
    "load_dataset": ("hamfeat.datasets.ham10000", "load_dataset"),
    "load_cxr14": ("hamfeat.datasets.cxr14", "load_cxr14"),
    "make_model": ("hamfeat.models", "make_model"),
    "make_multilabel_model": ("hamfeat.models", "make_multilabel_model"),
    "register_model": ("hamfeat.models", "register_model"),
    "model_names": ("hamfeat.models", "model_names"),
    "save_model": ("hamfeat.models", "save_model"),
    "load_model": ("hamfeat.models", "load_model"),
    "register_backend": ("hamfeat.backends", "register_backend"),
    "cross_validate": ("hamfeat.evaluation.cv", "cross_validate"),
    "run_cv": ("hamfeat.evaluation.cv", "run_cv"),
    "cross_validate_multilabel": ("hamfeat.evaluation.multilabel", "cross_validate_multilabel"),
    "run_cv_multilabel": ("hamfeat.evaluation.multilabel", "run_cv_multilabel"),
    "train": ("hamfeat.training", "train"),
    "train_multilabel": ("hamfeat.training", "train_multilabel"),
    "score_folder": ("hamfeat.score", "score_folder"),
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'hamfeat' has no attribute {name!r}")
    module, attr = _API[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
