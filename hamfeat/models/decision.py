"""The decision rule: arg-max of the probabilities divided by the class priors to a power.

The last step of every model pipeline is a :class:`PriorCorrectedClassifier`, whose
``predict`` takes the arg-max of ``p / prior**alpha`` (``alpha=0``: plain arg-max,
``alpha=1``: full prior correction), with the priors learned from the training labels.

    >>> import numpy as np
    >>> rule = apply_decision_rule(np.array([[0.6, 0.4]]), np.array([0.9, 0.1]), alpha=1.0)
    >>> rule.tolist()
    [1]
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted

__all__ = ["DEFAULT_ALPHA", "PriorCorrectedClassifier", "apply_decision_rule"]

#: Default exponent of the decision rule ``argmax p / prior**alpha`` for
#: :func:`hamfeat.models.make_model`.
DEFAULT_ALPHA = 0.5


def apply_decision_rule(proba: np.ndarray, prior: np.ndarray, alpha: float) -> np.ndarray:
    """Column index of ``argmax(proba / prior**alpha)`` per row.

    Parameters
    ----------
    proba : numpy.ndarray of shape (n_samples, n_classes)
        Class probabilities.
    prior : numpy.ndarray of shape (n_classes,) or (n_samples, n_classes)
        Class priors (training-label frequencies), per row if 2-D.
    alpha : float
        0 is the plain arg-max, 0.5 divides by the square root of the priors, 1 is the full
        prior correction.

    Returns
    -------
    numpy.ndarray of int
    """
    proba = np.asarray(proba, dtype=np.float64)
    prior = np.clip(np.asarray(prior, dtype=np.float64), 1e-12, None)
    return np.argmax(proba / prior**alpha, axis=1)


class PriorCorrectedClassifier(ClassifierMixin, BaseEstimator):
    """A classifier whose decision divides the probabilities by the class priors to a power.

    ``predict`` returns ``classes_[argmax(p / class_prior_**alpha)]``; ``predict_proba`` returns
    the wrapped estimator's probabilities unchanged (so AUC and calibration are untouched).

    Parameters
    ----------
    estimator : classifier with ``predict_proba``, optional
        Defaults to a :class:`~sklearn.linear_model.LogisticRegression`.
    alpha : float, default 0.0
        Exponent of the prior correction, ``>= 0``.

    Attributes
    ----------
    estimator_ : classifier
        The fitted clone of ``estimator``.
    classes_ : numpy.ndarray
    class_prior_ : numpy.ndarray
        Frequencies of ``classes_`` in the labels given to ``fit`` (before any resampling done
        inside ``estimator``).
    n_features_in_ : int
    """

    def __init__(self, estimator=None, alpha=0.0):
        self.estimator = estimator
        self.alpha = alpha

    def fit(self, X, y, **fit_params):
        """Fit the wrapped estimator and learn the class priors from ``y``.

        Parameters
        ----------
        X : array-like or DataFrame
        y : array-like of shape (n_samples,)
        **fit_params
            Passed to the wrapped estimator's ``fit``.

        Returns
        -------
        self
        """
        return self._fit_with(X, y, lambda est, X, y: est.fit(X, y, **fit_params))

    def _fit_with(self, X, y, fit):
        """:meth:`fit`, the wrapped estimator's clone fitted by ``fit(est, X, y)``."""
        alpha = float(self.alpha)
        if not np.isfinite(alpha) or alpha < 0:
            raise ValueError(f"alpha must be a finite number >= 0, got {self.alpha!r}")
        est = self._default_estimator()
        y_arr = np.asarray(y)
        if y_arr.ndim != 1:
            from sklearn.utils.validation import column_or_1d

            y_arr = column_or_1d(y_arr, warn=True)
        from sklearn.utils.multiclass import check_classification_targets

        check_classification_targets(y_arr)
        self.estimator_ = fit(est, X, y_arr)
        self.classes_ = np.asarray(self.estimator_.classes_)
        counts = np.array([np.sum(y_arr == c) for c in self.classes_], dtype=np.float64)
        self.class_prior_ = counts / counts.sum()
        if hasattr(self.estimator_, "n_features_in_"):
            self.n_features_in_ = self.estimator_.n_features_in_
        if hasattr(self.estimator_, "feature_names_in_"):
            self.feature_names_in_ = self.estimator_.feature_names_in_
        return self

    def _default_estimator(self):
        if self.estimator is None:
            from sklearn.linear_model import LogisticRegression

            return LogisticRegression(max_iter=1000)
        return clone(self.estimator)

    def predict_proba(self, X):
        """Class probabilities of the wrapped estimator (columns in ``classes_`` order).

        Returns
        -------
        numpy.ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(X)

    def predict(self, X):
        """Predicted class: arg-max of ``predict_proba(X) / class_prior_**alpha``.

        Returns
        -------
        numpy.ndarray of shape (n_samples,)
        """
        proba = self.predict_proba(X)
        return self.classes_[apply_decision_rule(proba, self.class_prior_, float(self.alpha))]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        try:
            inner = self._default_estimator().__sklearn_tags__()
            tags.input_tags.allow_nan = inner.input_tags.allow_nan
            tags.input_tags.sparse = inner.input_tags.sparse
        except AttributeError:  # pragma: no cover - third-party estimators without tags
            pass
        return tags
