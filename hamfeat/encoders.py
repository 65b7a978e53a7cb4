"""Learned feature encoders: scikit-learn transformers whose features are fitted on training data.

Unlike a feature family (:mod:`hamfeat.features`), which describes one image on its own, an
encoder learns its features from the images it is fitted on, so it is a step of a model
pipeline and, in cross-validation, sees only the training folds.

:class:`PatchKMeansEncoder` is the single-layer network of Coates, Lee and Ng ("An analysis of
single-layer networks in unsupervised feature learning", AISTATS 2011): normalised, whitened
image patches are clustered with k-means and every image is described by its pooled "triangle"
activations against the centroids. Its input is a grid of pixels, for example the ``graypix``
family of :mod:`hamfeat.features.gray`.

This module imports only NumPy and scikit-learn.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["PatchKMeansEncoder"]


def _bounds(n: int, parts: int) -> np.ndarray:
    """``parts + 1`` band edges ``floor(i * n / parts)`` splitting ``range(n)`` near-equally."""
    return (np.arange(parts + 1, dtype=np.int64) * n) // parts


class PatchKMeansEncoder(TransformerMixin, BaseEstimator):
    """Pooled k-means patch activations (Coates, Lee and Ng 2011) of images given as pixel rows.

    Each row of ``X`` is one image, flattened row-major (``image_shape``, square by default).
    :meth:`fit` samples ``patches_per_image`` random ``patch_size`` x ``patch_size`` patches
    from every image, normalises each patch (minus its mean, over
    ``sqrt(variance + norm_eps)``), ZCA-whitens them (eigenvalues plus ``whiten_eps``) and clusters
    them with :class:`~sklearn.cluster.MiniBatchKMeans` (``n_clusters`` centroids).
    :meth:`transform` takes every patch of an image (stride 1), computes its distances
    ``d_k`` to the centroids and the triangle activation ``max(0, mean_k(d) - d_k)``, and averages
    the activations over a ``pool`` x ``pool`` grid of the patch positions (cell edges
    ``floor(i * n / pool)`` along each axis of ``n`` positions): ``n_clusters * pool**2``
    features.

    Parameters
    ----------
    n_clusters : int
        Number of centroids (features per pooling cell).
    patch_size : int
        Side of the square patches, in pixels.
    pool : int
        The patch positions are pooled on a ``pool`` x ``pool`` grid.
    patches_per_image : int
        Patches sampled from each training image for the dictionary.
    norm_eps, whiten_eps : float
        Regularisers of the patch normalisation and of the whitening.
    image_shape : tuple of int, optional
        ``(height, width)`` of the images; default: square, from the number of columns.
    batch_size : int
        Images encoded at a time (bounds memory).
    random_state : int
        Seed of the patch sampling and of k-means.

    Attributes
    ----------
    image_shape_ : tuple of int
    mean_ : numpy.ndarray of shape (patch_size**2,)
        Mean of the normalised training patches.
    whitening_ : numpy.ndarray of shape (patch_size**2, patch_size**2)
        ZCA whitening matrix.
    cluster_centers_ : numpy.ndarray of shape (n_clusters, patch_size**2)
        Centroids in the whitened space.
    n_features_in_ : int

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(20, 16 * 16))
    >>> enc = PatchKMeansEncoder(n_clusters=5, patch_size=4, pool=2, patches_per_image=10)
    >>> enc.fit_transform(X).shape
    (20, 20)
    >>> enc.get_feature_names_out()[:2].tolist()
    ['patchkm_r0c0_k000', 'patchkm_r0c0_k001']
    """

    def __init__(
        self,
        n_clusters: int = 100,
        patch_size: int = 6,
        pool: int = 4,
        patches_per_image: int = 100,
        norm_eps: float = 0.01,
        whiten_eps: float = 0.1,
        image_shape: tuple[int, int] | None = None,
        batch_size: int = 50,
        random_state: int = 0,
    ) -> None:
        self.n_clusters = n_clusters
        self.patch_size = patch_size
        self.pool = pool
        self.patches_per_image = patches_per_image
        self.norm_eps = norm_eps
        self.whiten_eps = whiten_eps
        self.image_shape = image_shape
        self.batch_size = batch_size
        self.random_state = random_state

    # ------------------------------------------------------------------ helpers
    def _shape(self, n_features: int) -> tuple[int, int]:
        if self.image_shape is not None:
            h, w = (int(v) for v in self.image_shape)
            if h * w != n_features:
                raise ValueError(
                    f"image_shape {h}x{w} does not match {n_features} columns per row"
                )
            return h, w
        side = math.isqrt(n_features)
        if side * side != n_features:
            raise ValueError(
                f"{n_features} columns per row is not a square image; pass image_shape"
            )
        return side, side

    def _patches(self, images: np.ndarray) -> np.ndarray:
        """Normalised patches, shape ``(n, h', w', p*p)``."""
        p = int(self.patch_size)
        win = sliding_window_view(images, (p, p), axis=(1, 2))
        P = win.reshape(*win.shape[:3], p * p)
        P = P - P.mean(axis=-1, keepdims=True)
        return P / np.sqrt(P.var(axis=-1, keepdims=True) + float(self.norm_eps))

    def _check_params(self, shape: tuple[int, int]) -> None:
        p = int(self.patch_size)
        if p < 2 or p > min(shape):
            raise ValueError(f"patch_size {p} must be 2..{min(shape)} for {shape} images")
        positions = (shape[0] - p + 1) * (shape[1] - p + 1)
        if not 1 <= int(self.pool) <= min(shape[0] - p + 1, shape[1] - p + 1):
            raise ValueError(f"pool {self.pool} must be 1..{min(shape) - p + 1}")
        if not 1 <= int(self.patches_per_image) <= positions:
            raise ValueError(f"patches_per_image must be 1..{positions}")
        if int(self.n_clusters) < 1:
            raise ValueError("n_clusters must be >= 1")

    # ------------------------------------------------------------------ API
    def fit(self, X: Any, y: Any = None) -> PatchKMeansEncoder:
        """Learn the patch normalisation, the whitening and the centroids from ``X``.

        Parameters
        ----------
        X : array-like of shape (n_images, height * width)
            Finite pixel values (impute missing ones before this step).
        y : ignored

        Returns
        -------
        self
        """
        from sklearn.cluster import MiniBatchKMeans

        X = validate_data(self, X, dtype=np.float64, reset=True)
        shape = self._shape(X.shape[1])
        self._check_params(shape)
        n = X.shape[0]
        if n * int(self.patches_per_image) < int(self.n_clusters):
            raise ValueError(
                f"{n} images x {self.patches_per_image} patches is fewer than "
                f"{self.n_clusters} clusters"
            )
        rng = np.random.default_rng(int(self.random_state))
        P = self._patches(X.reshape(n, *shape))
        h, w, d = P.shape[1:]
        picks = np.stack(
            [rng.choice(h * w, int(self.patches_per_image), replace=False) for _ in range(n)]
        )
        sample = np.take_along_axis(P.reshape(n, h * w, d), picks[:, :, None], axis=1)
        sample = sample.reshape(-1, d)
        self.mean_ = sample.mean(axis=0)
        eigval, eigvec = np.linalg.eigh(np.cov(sample, rowvar=False))
        self.whitening_ = (eigvec / np.sqrt(np.maximum(eigval, 0.0) + float(self.whiten_eps))) @ (
            eigvec.T
        )
        km = MiniBatchKMeans(
            n_clusters=int(self.n_clusters),
            batch_size=2048,
            n_init=3,
            random_state=int(self.random_state),
        )
        km.fit((sample - self.mean_) @ self.whitening_)
        self.cluster_centers_ = km.cluster_centers_
        self.image_shape_ = shape
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Pooled triangle activations.

        Parameters
        ----------
        X : array-like of shape (n_images, height * width)

        Returns
        -------
        numpy.ndarray of shape (n_images, n_clusters * pool**2)
            Cell-major: all clusters of cell ``r0c0``, then of ``r0c1``, ...
        """
        check_is_fitted(self, "cluster_centers_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        C = self.cluster_centers_
        c2 = (C * C).sum(axis=1)
        g = int(self.pool)
        out = []
        for start in range(0, X.shape[0], max(1, int(self.batch_size))):
            imgs = X[start : start + max(1, int(self.batch_size))].reshape(-1, *self.image_shape_)
            P = self._patches(imgs)
            n, h, w, d = P.shape
            Z = (P.reshape(-1, d) - self.mean_) @ self.whitening_
            dist = np.sqrt(np.maximum((Z * Z).sum(axis=1)[:, None] - 2.0 * Z @ C.T + c2, 0.0))
            act = np.maximum(0.0, dist.mean(axis=1, keepdims=True) - dist).reshape(n, h, w, -1)
            rb, cb = _bounds(h, g), _bounds(w, g)
            cells = [
                act[:, rb[i] : rb[i + 1], cb[j] : cb[j + 1]].mean(axis=(1, 2))
                for i in range(g)
                for j in range(g)
            ]
            out.append(np.concatenate(cells, axis=1))
        if not out:
            return np.zeros((0, int(self.n_clusters) * g * g))
        return np.concatenate(out, axis=0)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """``patchkm_r<i>c<j>_k<kkk>``: cluster ``k``'s mean activation in pooling cell (i, j).

        Returns
        -------
        numpy.ndarray of str
        """
        check_is_fitted(self, "cluster_centers_")
        g, k = int(self.pool), int(self.n_clusters)
        return np.array(
            [f"patchkm_r{i}c{j}_k{c:03d}" for i in range(g) for j in range(g) for c in range(k)],
            dtype=object,
        )
