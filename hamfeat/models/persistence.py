"""Safe persistence of fitted models: :func:`save_model`, :func:`load_model`, the allow-list.

Models are saved with :mod:`skops.io` (never pickle) together with the hamfeat version, the
feature-definition version, the feature names and configuration, the classes and a hash of the
training table; :func:`load_model` refuses any file that holds a type outside an explicit
allow-list, is not a skops file, or does not match the features it is meant for.
"""

from __future__ import annotations

import importlib
import json
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from hamfeat._version import __version__
from hamfeat.errors import ModelError, OutputError

__all__ = [
    "LEGACY_TYPE_PATHS",
    "MODEL_FORMAT",
    "MODEL_FORMAT_VERSION",
    "LoadedModel",
    "drop_training_state",
    "load_model",
    "save_model",
]

MODEL_FORMAT = "hamfeat-model"
MODEL_FORMAT_VERSION = 1

#: Type names (as skops reports them) that are trusted beyond skops's own defaults.
_TRUSTED_EXACT: frozenset[str] = frozenset(
    {
        "builtins.dict",
        "builtins.list",
        "builtins.tuple",
        "builtins.slice",
        "builtins.NoneType",
        "builtins.type",
        "numpy.dtype",
        "numpy.ndarray",
        "numpy.random.RandomState",
        "numpy.random.mtrand.RandomState",
        "numpy.random._mt19937.MT19937",
        "numpy.random._generator.Generator",
        "numpy.random._pcg64.PCG64",
        "collections.OrderedDict",
        "collections.defaultdict",
        "functools.partial",
    }
    | {f"numpy.{t}" for t in ("float64", "float32", "int64", "int32", "bool_", "str_", "object_")}
    | {f"numpy.dtypes.{t}DType" for t in ("Float64", "Float32", "Int64", "Int32", "Bool")}
    | {"numpy.dtypes.ObjectDType", "numpy.dtypes.StrDType"}
)
#: Packages whose classes (never functions) are trusted, under any module path that holds them.
_TRUSTED_CLASS_MODULES: tuple[str, ...] = ("sklearn.", "imblearn.")
#: hamfeat's modules whose own classes are trusted: only at the path where the class is
#: defined (``type.__module__``, what skops records), never a name merely imported there.
_TRUSTED_HAMFEAT_MODULES: tuple[str, ...] = (
    "hamfeat.models.selection",
    "hamfeat.models.decision",
    "hamfeat.encoders",
    "hamfeat.novelty",
)
#: Where files written before :mod:`hamfeat.models` became a package name its classes (skops
#: records ``type.__module__``, then ``hamfeat.models``), mapped to where they are defined now.
#: These are the only old paths accepted; an old file loads because :mod:`hamfeat.models`
#: still exports each of these names, and the trust check requires the old name to resolve to
#: exactly the class it maps to (tests/models/test_model_registry.py checks both).
LEGACY_TYPE_PATHS: dict[str, str] = {
    "hamfeat.models.FeatureSelector": "hamfeat.models.selection.FeatureSelector",
    "hamfeat.models.PriorCorrectedClassifier": "hamfeat.models.decision.PriorCorrectedClassifier",
}
#: Functions referenced by trusted estimators' defaults.
_TRUSTED_FUNCTIONS: frozenset[str] = frozenset(
    {
        "sklearn.feature_selection._univariate_selection.f_classif",
        "sklearn.metrics._scorer._passthrough_scorer",
    }
)


def _resolve(name: str) -> Any:
    """The object at a dotted path (``module.attr``), or None."""
    module, _, attr = name.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError):
        return None


def _is_trusted_type(name: str) -> bool:
    """Whether a type name from a skops file is on the allow-list (see the lists above)."""
    if name in _TRUSTED_EXACT or name in _TRUSTED_FUNCTIONS:
        return True
    if name in LEGACY_TYPE_PATHS:  # an old path: the very class it maps to, nothing else
        obj = _resolve(name)
        return obj is not None and obj is _resolve(LEGACY_TYPE_PATHS[name]) and _is_trusted_type(
            LEGACY_TYPE_PATHS[name]
        )
    if name.startswith("hamfeat."):
        if not any(name.startswith(m + ".") for m in _TRUSTED_HAMFEAT_MODULES):
            return False
        obj = _resolve(name)
        return isinstance(obj, type) and f"{obj.__module__}.{obj.__qualname__}" == name
    if not any(name.startswith(m) for m in _TRUSTED_CLASS_MODULES):
        return False
    return isinstance(_resolve(name), type)


@dataclass
class LoadedModel:
    """A model read back by :func:`load_model`.

    Attributes
    ----------
    estimator : sklearn estimator
        The fitted pipeline; it takes the feature table (a DataFrame) as input.
    feature_names : list of str
        The table columns the model reads.
    config : dict
        The feature configuration of the training table (``table.attrs["hamfeat"]["config"]``).
    classes : list of str
        Class order of ``predict_proba``'s columns.
    hamfeat_version : str
        hamfeat's version that saved the file.
    features_version : int
        The feature-definition version of the training table.
    training_table_hash : str
    extra : dict
        Anything else stored by :func:`save_model` (e.g. CV scores, alpha).
    path : str
    novelty : hamfeat.novelty.NoveltyDetector or None
        The novelty detector fitted on the training table (None in files written before it).
    """

    estimator: Any
    feature_names: list[str]
    config: dict
    classes: list[str]
    hamfeat_version: str
    features_version: int
    training_table_hash: str
    extra: dict = field(default_factory=dict)
    path: str = ""
    novelty: Any = None
    #: Training-set statistics for explanations (:func:`hamfeat.explain.training_stats`);
    #: ``None`` for a model saved without them (any model saved before they existed).
    training_stats: dict | None = None

    def predict_proba(self, table: pd.DataFrame) -> pd.DataFrame:
        """Class probabilities for each row of a feature table.

        Parameters
        ----------
        table : pandas.DataFrame
            Must hold every column of :attr:`feature_names`.

        Returns
        -------
        pandas.DataFrame
            One column per class (:attr:`classes` order), same index as ``table``.
        """
        missing = [c for c in self.feature_names if c not in table.columns]
        if missing:
            raise ModelError(
                self.path,
                f"the table lacks {len(missing)} of the model's feature columns, "
                f"e.g. {', '.join(missing[:3])}",
            )
        proba = self.estimator.predict_proba(table)
        return pd.DataFrame(proba, index=table.index, columns=list(self.classes))

    def predict(self, table: pd.DataFrame) -> np.ndarray:
        """Predicted class per row (the model's decision rule, see
        :class:`~hamfeat.models.PriorCorrectedClassifier`).

        Returns
        -------
        numpy.ndarray of str
        """
        return np.asarray(self.estimator.predict(table))


def _jsonable(obj: Any) -> Any:
    """Normalise a JSON-like value (tuples -> lists, numpy scalars -> Python)."""
    return json.loads(json.dumps(obj, sort_keys=True, default=_json_default))


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    if isinstance(o, PathLike):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


#: Attributes of a fitted MLPClassifier that only training reads: the optimiser's moment
#: estimates and the early-stopping copy of the weights (``coefs_`` already holds the best).
_MLP_TRAINING_STATE = ("_optimizer", "_best_coefs", "_best_intercepts")


def drop_training_state(estimator: Any) -> Any:
    """Remove what only further training would read from a fitted model, in place.

    Today: the Adam moments and the early-stopping weight copy of every
    :class:`~sklearn.neural_network.MLPClassifier` inside ``estimator`` (pipelines, voting
    ensembles and wrappers are searched). They are about three copies of the network's weights;
    predictions do not change (``predict_proba`` reads ``coefs_`` and ``intercepts_`` only), but
    ``partial_fit`` and ``warm_start`` can no longer continue from the saved state.
    :func:`save_model` calls it.

    Parameters
    ----------
    estimator : object
        A fitted estimator.

    Returns
    -------
    object
        ``estimator`` itself.
    """
    from sklearn.neural_network import MLPClassifier

    seen: set[int] = set()

    def walk(obj: Any) -> None:
        if id(obj) in seen or obj is None:
            return
        seen.add(id(obj))
        if isinstance(obj, MLPClassifier):
            for name in _MLP_TRAINING_STATE:
                obj.__dict__.pop(name, None)
            return
        if isinstance(obj, (list, tuple)):
            for item in obj:
                walk(item)
            return
        if isinstance(obj, BaseEstimator):
            for value in vars(obj).values():
                if isinstance(value, (BaseEstimator, list, tuple)):
                    walk(value)

    walk(estimator)
    return estimator


def save_model(
    model: Any,
    path: str | PathLike[str],
    *,
    feature_names: Sequence[str],
    feature_config: Mapping[str, Any],
    classes: Sequence[str],
    training_table_hash: str,
    extra: Mapping[str, Any] | None = None,
    novelty: Any = None,
    training_stats: Mapping[str, Any] | None = None,
) -> Path:
    """Save a fitted model with :mod:`skops.io`, with what is needed to check it on load.

    Parameters
    ----------
    model : fitted estimator
    path : path-like
        Destination (conventionally ``*.skops``), written by :func:`hamfeat._io.write_output`
        (atomic for a regular file; its folder must exist).
    feature_names : sequence of str
        The table columns the model reads.
    feature_config : mapping
        The training table's feature configuration (must hold ``features_version``, else the
        current :data:`hamfeat.features.FEATURES_VERSION` is recorded).
    classes : sequence of str
        Class order of the model's probabilities.
    training_table_hash : str
        A hash of the training table (see :func:`hamfeat.tables.table_hash`).
    extra : mapping, optional
        JSON-like extras (CV scores, alpha, ...).
    novelty : hamfeat.novelty.NoveltyDetector, optional
        A fitted novelty detector, saved beside the model (``hamfeat score``'s ``novel`` flag).
    training_stats : mapping, optional
        Per-class quantiles and medians of the training features, for explanations
        (:func:`hamfeat.explain.training_stats`: lists, strings and NumPy arrays only). Left
        out of the file when ``None``, so files without it are as before.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    ModelError
        When the model cannot be written (e.g. it holds an object skops cannot save).
    """
    import skops.io as sio

    path = Path(path)
    drop_training_state(model)
    config = _jsonable(dict(feature_config))
    features_version = config.get("features_version")
    if features_version is None:
        features_version = _current_features_version()
    payload = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "hamfeat_version": __version__,
        "features_version": int(features_version),
        "feature_names": [str(c) for c in feature_names],
        "feature_config": config,
        "classes": [str(c) for c in classes],
        "training_table_hash": str(training_table_hash),
        "extra": _jsonable(dict(extra or {})),
        "estimator": model,
    }
    if training_stats is not None:
        payload["training_stats"] = dict(training_stats)
    if novelty is not None:
        payload["novelty"] = novelty
    from hamfeat._io import write_output

    try:  # the shared writer: atomic for a regular file, written through to a device or FIFO
        write_output(
            path, lambda fh: sio.dump(payload, fh, compression=zipfile.ZIP_DEFLATED), binary=True
        )
    except OutputError:
        raise
    except Exception as exc:
        raise ModelError(path, f"cannot save the model: {type(exc).__name__}: {exc}") from exc
    return path


def _current_features_version() -> int:
    from hamfeat.features import FEATURES_VERSION

    return int(FEATURES_VERSION)


def load_model(
    path: str | PathLike[str],
    *,
    expected_feature_names: Iterable[str] | None = None,
    expected_config: Mapping[str, Any] | None = None,
) -> LoadedModel:
    """Load a model saved by :func:`save_model`, refusing anything unexpected.

    The file's types are listed with :func:`skops.io.get_untrusted_types` and checked against
    an explicit allow-list (skops's defaults, classes of scikit-learn, imbalanced-learn and
    :mod:`hamfeat.models`, a few numpy and builtin types); nothing is constructed before that.
    Files written before :mod:`hamfeat.models` became a package name two of its classes by
    their old paths: those load through :data:`LEGACY_TYPE_PATHS`.

    Parameters
    ----------
    path : path-like
    expected_feature_names : iterable of str, optional
        The feature columns available (e.g. of the table to predict on); every feature the
        model reads must be among them.
    expected_config : mapping, optional
        The feature configuration the model must have been trained with (compared as JSON).

    Returns
    -------
    LoadedModel

    Raises
    ------
    ModelError
        ``"<path>: <reason>"`` for a missing or non-skops file, a file holding an untrusted
        type, a file that is not a hamfeat model, another ``FEATURES_VERSION``, feature names or
        a configuration that do not match.
    """
    path = Path(path)
    payload = _read_payload(path)
    names, config = _check_payload(path, payload, expected_feature_names, expected_config)
    return LoadedModel(
        estimator=payload["estimator"],
        feature_names=names,
        config=config,
        classes=[str(c) for c in payload["classes"]],
        hamfeat_version=str(payload.get("hamfeat_version", "")),
        features_version=int(payload["features_version"]),
        training_table_hash=str(payload.get("training_table_hash", "")),
        extra=dict(payload.get("extra") or {}),
        training_stats=payload.get("training_stats"),
        path=str(path),
        novelty=payload.get("novelty"),
    )


def _read_payload(path: Path) -> dict:
    """The header dict of a skops model file, after the allow-list check (:func:`load_model`)."""
    import skops.io as sio

    if not path.is_file():
        raise ModelError(path, "model file not found")
    if not zipfile.is_zipfile(path):
        raise ModelError(path, "not a skops model file (not a zip archive)")
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:
        raise ModelError(
            path, f"not a readable skops model file ({type(exc).__name__}: {exc})"
        ) from exc
    refused = sorted(t for t in untrusted if not _is_trusted_type(t))
    if refused:
        raise ModelError(
            path,
            f"refusing to load: untrusted type(s) in the file: {', '.join(refused[:5])}"
            + (f" and {len(refused) - 5} more" if len(refused) > 5 else ""),
        )
    try:
        payload = sio.load(path, trusted=list(untrusted))
    except Exception as exc:
        raise ModelError(path, f"cannot load the model ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise ModelError(path, "not a hamfeat model file (no hamfeat header)")
    if payload.get("format_version") != MODEL_FORMAT_VERSION:
        raise ModelError(
            path,
            f"model file format {payload.get('format_version')!r} is not supported "
            f"(this hamfeat reads {MODEL_FORMAT_VERSION})",
        )
    required = ("estimator", "feature_names", "feature_config", "classes", "features_version")
    lacking = [k for k in required if k not in payload]
    if lacking:
        raise ModelError(path, f"model file lacks {', '.join(lacking)}")
    return payload


def _check_payload(
    path: Path,
    payload: dict,
    expected_feature_names: Iterable[str] | None,
    expected_config: Mapping[str, Any] | None,
) -> tuple[list[str], dict]:
    """The model's feature names and configuration, checked against the expected ones."""
    current = _current_features_version()
    if int(payload["features_version"]) != current:
        raise ModelError(
            path,
            f"model was trained on features version {payload['features_version']}, this "
            f"hamfeat computes version {current}: retrain the model",
        )
    names = [str(c) for c in payload["feature_names"]]
    if expected_feature_names is not None:
        available = {str(c) for c in expected_feature_names}
        missing = [c for c in names if c not in available]
        if missing:
            raise ModelError(
                path,
                f"feature names do not match: {len(missing)} of the model's {len(names)} "
                f"features are missing, e.g. {', '.join(missing[:3])}",
            )
    config = payload["feature_config"]
    if expected_config is not None:
        want = _jsonable(dict(expected_config))
        if want != config:
            diff = sorted(
                k for k in set(want) | set(config) if want.get(k, "<absent>") != config.get(k)
            )
            raise ModelError(
                path,
                "feature configuration does not match the model's "
                f"(differs in: {', '.join(diff[:5])})",
            )
    return names, config
