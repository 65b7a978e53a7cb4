"""Feature selection by family: which table columns are features, and the selector step.

Every model pipeline starts with a :class:`FeatureSelector`, which picks its own columns of
the feature table by family (a column is a feature only if a family declares its name), so
the same pipeline can be fitted on a table with extra columns and cross-validation never
leaks.

    >>> family_of("glcm_d1_contrast_mean")
    'glcm'
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from os import PathLike

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from hamfeat.features import DEFAULT_FAMILIES
from hamfeat.features import GRAY_FAMILY_NAMES as _GRAY

__all__ = [
    "FAMILY_NAMES",
    "GRAY_FAMILY_NAMES",
    "METADATA_CATEGORICAL",
    "METADATA_NUMERIC",
    "SEED_FEATURE_PATTERN",
    "FeatureSelector",
    "family_of",
    "feature_columns",
    "model_feature_names",
    "note_undeclared",
    "undeclared_feature_like",
]

#: Feature families, by the first token of their column names: the registry's dermoscopy
#: families in registry order (:data:`hamfeat.features.DEFAULT_FAMILIES`).
FAMILY_NAMES: tuple[str, ...] = tuple(DEFAULT_FAMILIES)
#: Grayscale families of radiographs (:mod:`hamfeat.features.gray`): usable when named, never
#: part of the ``families=None`` default above.
GRAY_FAMILY_NAMES: tuple[str, ...] = tuple(_GRAY)
#: Simple colour features of the published KNN baseline: RGB/HSV means, spreads, HSV histograms.
SEED_FEATURE_PATTERN = r"^color_(rgb|hsv)_[a-z]+_(mean|std|hist\d+)$"
#: Metadata columns usable by the ``metadata=True`` variant (always reported apart).
METADATA_NUMERIC: tuple[str, ...] = ("age",)
METADATA_CATEGORICAL: tuple[str, ...] = ("sex", "localization")


def family_of(column: str) -> str:
    """Return the feature family of a column name: its first ``_``-separated token.

    Parameters
    ----------
    column : str

    Returns
    -------
    str

    Examples
    --------
    >>> family_of("glcm_d1_contrast_mean")
    'glcm'
    """
    return str(column).split("_", 1)[0]


def feature_columns(
    columns: Iterable[str],
    families: Iterable[str] | None = None,
    *,
    exclude: Iterable[str] = (),
    pattern: str | None = None,
) -> list[str]:
    """Pick the feature columns of some families, in table order.

    A column is a feature only if its name is one the family declares
    (:meth:`hamfeat.features.Family.names`), never because it starts with the family's name:
    ``skin_type`` or ``color_site_code`` in a table are metadata, not features (see
    :func:`undeclared_feature_like`).

    Parameters
    ----------
    columns : iterable of str
        The table's columns (non-feature columns such as ``dx`` are never picked).
    families : iterable of str, optional
        Family names (see :data:`FAMILY_NAMES`); ``None`` means all.
    exclude : iterable of str
        Families to leave out.
    pattern : str, optional
        A regular expression the column name must also match (``re.match``).

    Returns
    -------
    list of str

    Raises
    ------
    ValueError
        For an unknown family name.
    """
    fams = _check_families(families)
    excl = set(_check_families(exclude)) if exclude else set()
    declared = _declared_names(tuple(f for f in fams if f not in excl))
    rx = re.compile(pattern) if pattern else None
    return [c for c in map(str, columns) if c in declared and (rx is None or rx.match(c))]


def _declared_names(families: tuple[str, ...]) -> frozenset[str]:
    """Every feature name the given families declare (cached per family)."""
    out: set[str] = set()
    for f in families:
        if f not in _DECLARED:
            from hamfeat.features import FAMILIES

            _DECLARED[f] = frozenset(FAMILIES[f].names())
        out |= _DECLARED[f]
    return frozenset(out)


_DECLARED: dict[str, frozenset[str]] = {}


def undeclared_feature_like(columns: Iterable[str]) -> list[str]:
    """Columns that start like a family's features but are not declared feature names.

    Such columns (``skin_type``, ``color_site_code``, ...) are never used as features; callers
    mention them in a one-line note, because a user may have expected them to be.

    Parameters
    ----------
    columns : iterable of str

    Returns
    -------
    list of str
        In table order.
    """
    known = FAMILY_NAMES + GRAY_FAMILY_NAMES
    declared = _declared_names(known)
    return [c for c in map(str, columns) if family_of(c) in known and c not in declared]


def note_undeclared(columns: Iterable[str], where: str | PathLike[str] = "table") -> list[str]:
    """Log one warning line naming the :func:`undeclared_feature_like` columns, if any.

    Returns
    -------
    list of str
        Those columns.
    """
    import logging

    odd = undeclared_feature_like(columns)
    if odd:
        logging.getLogger("hamfeat").warning(
            "%s: %d column(s) look like features but are not declared feature names, "
            "ignored: %s%s",
            where,
            len(odd),
            ", ".join(odd[:5]),
            " ..." if len(odd) > 5 else "",
        )
    return odd


def _check_families(families: Iterable[str] | None) -> tuple[str, ...]:
    if families is None:
        return FAMILY_NAMES
    if isinstance(families, str):
        families = families.split(",")
    fams = tuple(str(f).strip() for f in families if str(f).strip())
    known = FAMILY_NAMES + GRAY_FAMILY_NAMES
    unknown = [f for f in fams if f not in known]
    if unknown:
        raise ValueError(
            f"unknown feature famil{'y' if len(unknown) == 1 else 'ies'} {unknown}; "
            f"known: {', '.join(known)}"
        )
    return fams


class FeatureSelector(TransformerMixin, BaseEstimator):
    """Select the feature columns of a table by family (and optionally add metadata).

    Parameters
    ----------
    families : tuple of str, optional
        Families to keep; ``None`` keeps every family of :data:`FAMILY_NAMES`.
    exclude : tuple of str
        Families to leave out.
    pattern : str, optional
        Keep only the columns whose name matches this regular expression.
    metadata : bool
        Append ``age`` (NaN when unknown) and one-hot ``sex`` and ``localization`` (categories
        learned in ``fit``).

    Attributes
    ----------
    columns_ : list of str
        The selected feature columns, in table order.
    categories_ : dict
        Metadata categories per column (empty unless ``metadata``).
    n_features_in_ : int
    feature_names_in_ : numpy.ndarray
        The columns of the table seen in ``fit`` (only for a DataFrame input).

    Notes
    -----
    A plain array input (no column names) keeps every column when no family, pattern or
    exclusion is given, and is refused otherwise.
    """

    def __init__(self, families=None, exclude=(), pattern=None, metadata=False):
        self.families = families
        self.exclude = exclude
        self.pattern = pattern
        self.metadata = metadata

    def fit(self, X, y=None):
        """Learn which columns to use.

        Parameters
        ----------
        X : pandas.DataFrame or array-like of shape (n_samples, n_columns)
        y : ignored

        Returns
        -------
        self
        """
        if isinstance(X, pd.DataFrame):
            cols = [str(c) for c in X.columns]
            self.feature_names_in_ = np.asarray(cols, dtype=object)
            self.columns_ = feature_columns(
                cols, self.families, exclude=self.exclude or (), pattern=self.pattern
            )
            if not self.columns_:
                raise ValueError(
                    "no feature column selected (families="
                    f"{self.families!r}, exclude={self.exclude!r}, pattern={self.pattern!r}) "
                    f"among {len(cols)} columns"
                )
            self.categories_ = {}
            if self.metadata:
                for c in METADATA_NUMERIC + METADATA_CATEGORICAL:
                    if c not in X.columns:
                        raise ValueError(f"metadata=True but the table has no {c!r} column")
                for c in METADATA_CATEGORICAL:
                    vals = X[c].astype("string").fillna("unknown")
                    self.categories_[c] = sorted(set(vals.tolist()))
            self.n_features_in_ = len(cols)
        else:
            if self.families is not None or self.exclude or self.pattern or self.metadata:
                raise ValueError(
                    "FeatureSelector with families, exclude, pattern or metadata needs a "
                    "DataFrame with named columns"
                )
            arr = _as_2d_float(X)
            self.columns_ = list(range(arr.shape[1]))
            self.categories_ = {}
            self.n_features_in_ = arr.shape[1]
        return self

    def transform(self, X):
        """Return the selected columns as a float array.

        Parameters
        ----------
        X : pandas.DataFrame or array-like

        Returns
        -------
        numpy.ndarray of shape (n_samples, n_selected)
        """
        check_is_fitted(self, "columns_")
        if hasattr(self, "feature_names_in_"):
            if not isinstance(X, pd.DataFrame):
                raise ValueError("this FeatureSelector was fitted on a DataFrame; give it one")
            missing = [c for c in self.columns_ if c not in X.columns]
            if missing:
                raise ValueError(
                    f"{len(missing)} feature column(s) missing from the table, e.g. "
                    f"{', '.join(missing[:5])}"
                )
            out = X[self.columns_].to_numpy(dtype=np.float64, na_value=np.nan)
            if self.metadata:
                parts = [out, X[list(METADATA_NUMERIC)].to_numpy(np.float64, na_value=np.nan)]
                for c, cats in self.categories_.items():
                    vals = X[c].astype("string").fillna("unknown").to_numpy(dtype=object)
                    parts.append((vals[:, None] == np.asarray(cats, dtype=object)).astype(float))
                out = np.hstack(parts)
            return out
        arr = _as_2d_float(X)
        if arr.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {arr.shape[1]} features, but FeatureSelector is expecting "
                f"{self.n_features_in_} features as input"
            )
        return arr

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns.

        Returns
        -------
        numpy.ndarray of str
        """
        check_is_fitted(self, "columns_")
        names = [str(c) if isinstance(c, str) else f"x{c}" for c in self.columns_]
        if self.metadata:
            names += list(METADATA_NUMERIC)
            names += [f"{c}={v}" for c, cats in self.categories_.items() for v in cats]
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


def _as_2d_float(X) -> np.ndarray:
    import inspect

    from sklearn.utils.validation import check_array

    kw = (
        "ensure_all_finite"
        if "ensure_all_finite" in inspect.signature(check_array).parameters
        else "force_all_finite"  # scikit-learn < 1.6
    )
    return check_array(X, dtype=np.float64, **{kw: "allow-nan"})


def model_feature_names(model) -> list[str]:
    """The table columns a fitted model reads (from its ``select`` step).

    Parameters
    ----------
    model : fitted Pipeline from :func:`make_model`

    Returns
    -------
    list of str
    """
    sel = model.named_steps["select"] if hasattr(model, "named_steps") else None
    if sel is None:
        raise ValueError("not a hamfeat model pipeline (no 'select' step)")
    check_is_fitted(sel, "columns_")
    names = [str(c) for c in sel.columns_]
    if sel.metadata:
        names += list(METADATA_NUMERIC) + list(METADATA_CATEGORICAL)
    return names

