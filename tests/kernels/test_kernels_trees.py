"""Reference tests for hamfeat._kernels.trees (vs scikit-learn's own HGB raw prediction)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from hamfeat._kernels.trees import complete_trees_raw
from hamfeat.segment_learned import complete_trees


def _data(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    X[:, 1] = np.round(X[:, 1])  # ties at thresholds
    y = X[:, 0] + 0.5 * X[:, 1] * X[:, 2] + rng.normal(0, 0.5, n) > 0
    return X, y


@pytest.mark.parametrize(
    ("max_depth", "max_leaf_nodes", "n_rows"),
    [(6, 31, 2001), (3, 8, 7), (None, 15, 1000), (2, 31, 5)],
)
def test_matches_sklearn_bit_for_bit(max_depth, max_leaf_nodes, n_rows):
    X, y = _data(3000, 6)
    m = HistGradientBoostingClassifier(
        max_iter=30, max_depth=max_depth, max_leaf_nodes=max_leaf_nodes, early_stopping=False,
        random_state=0,
    ).fit(X, y)
    feat, thr, leaf, base = complete_trees(m)
    Xt, _ = _data(n_rows, 6, seed=1)
    got = complete_trees_raw(Xt, feat, thr, leaf, float(base[0]))
    want = m._raw_predict(Xt).ravel()
    np.testing.assert_array_equal(got, want)
    # and the probabilities scikit-learn reports
    np.testing.assert_allclose(1 / (1 + np.exp(-got)), m.predict_proba(Xt)[:, 1], rtol=1e-12)


def test_padded_leaf_is_reached_from_every_side():
    # a depth-1 tree padded to depth 2: both children of the padded leaf hold its value
    X = np.array([[-1.0, 0.0], [2.0, 5.0], [2.0, -5.0]], np.float32)
    feat = np.array([[0, 0, 1]], np.int32)
    thr = np.array([[0.5, np.inf, 0.0]])
    leaf = np.array([[7.0, 7.0, 1.0, 2.0]])
    np.testing.assert_array_equal(complete_trees_raw(X, feat, thr, leaf, 0.0), [7.0, 2.0, 1.0])


def test_empty_input_and_no_tree():
    feat = np.zeros((0, 1), np.int32)
    out = complete_trees_raw(np.zeros((3, 2), np.float32), feat, np.zeros((0, 1)),
                             np.zeros((0, 2)), 0.25)
    np.testing.assert_array_equal(out, [0.25, 0.25, 0.25])
    feat = np.zeros((1, 1), np.int32)
    out = complete_trees_raw(np.zeros((0, 2), np.float32), feat, np.zeros((1, 1)),
                             np.zeros((1, 2)), 0.0)
    assert out.shape == (0,)


def test_bad_arguments():
    X = np.zeros((4, 2), np.float32)
    feat = np.zeros((1, 3), np.int32)
    thr = np.zeros((1, 3))
    leaf = np.zeros((1, 4))
    with pytest.raises(TypeError, match="X must have dtype float32"):
        complete_trees_raw(X.astype(np.float64), feat, thr, leaf, 0.0)
    with pytest.raises(ValueError, match="2\\*\\*D - 1"):
        complete_trees_raw(X, np.zeros((1, 2), np.int32), np.zeros((1, 2)), leaf, 0.0)
    with pytest.raises(ValueError, match="leaf must be"):
        complete_trees_raw(X, feat, thr, np.zeros((1, 3)), 0.0)
    with pytest.raises(ValueError, match="split features"):
        complete_trees_raw(X, feat + 2, thr, leaf, 0.0)
    with pytest.raises(ValueError, match="C-contiguous"):
        complete_trees_raw(np.asfortranarray(np.zeros((4, 3), np.float32)), feat, thr, leaf, 0.0)


def test_multiclass_refused():
    X, _ = _data(300, 3)
    y = np.arange(300) % 3
    m = HistGradientBoostingClassifier(max_iter=3).fit(X, y)
    with pytest.raises(ValueError, match="binary"):
        complete_trees(m)
