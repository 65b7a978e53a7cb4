"""Cross-validation splits: lesion-grouped (or patient-grouped) stratified K-fold, the leaky
image-level K-fold of the seed baseline, and the leak check."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

__all__ = ["Split", "check_grouped", "grouped_splits", "image_splits", "patient_splits"]


@dataclass(frozen=True)
class Split:
    """One train/test split of a cross-validation.

    Attributes
    ----------
    seed : int
        Shuffling seed of the repetition.
    fold : int
    train : numpy.ndarray
        Row positions of the training images.
    test : numpy.ndarray
        Row positions of the test images.
    """

    seed: int
    fold: int
    train: np.ndarray
    test: np.ndarray


def grouped_splits(
    y: Sequence[Any],
    groups: Sequence[Any],
    *,
    n_splits: int = 5,
    seeds: Iterable[int] = (0,),
) -> list[Split]:
    """Lesion-grouped stratified K-fold, repeated over seeds.

    Parameters
    ----------
    y : sequence
        Labels, one per image.
    groups : sequence
        Lesion id per image; a lesion's images always fall on the same side.
    n_splits : int
    seeds : iterable of int
        One repetition per seed (``StratifiedGroupKFold(shuffle=True, random_state=seed)``).

    Returns
    -------
    list of Split
    """
    y = np.asarray(y)
    groups = np.asarray(groups)
    out = []
    for seed in seeds:
        cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=int(seed))
        for fold, (tr, te) in enumerate(cv.split(np.zeros(len(y)), y, groups)):
            out.append(Split(int(seed), fold, tr, te))
    return out


def image_splits(
    y: Sequence[Any], *, n_splits: int = 5, seeds: Iterable[int] = (0,)
) -> list[Split]:
    """Image-level stratified K-fold (leaks lesions across folds; for the seed baseline only).

    Parameters
    ----------
    y : sequence
    n_splits : int
    seeds : iterable of int

    Returns
    -------
    list of Split
    """
    y = np.asarray(y)
    out = []
    for seed in seeds:
        cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=int(seed))
        for fold, (tr, te) in enumerate(cv.split(np.zeros(len(y)), y)):
            out.append(Split(int(seed), fold, tr, te))
    return out


def check_grouped(splits: Iterable[Split], groups: Sequence[Any]) -> int:
    """Count the groups found on both sides of some split (0 for a leak-free CV).

    Parameters
    ----------
    splits : iterable of Split
    groups : sequence

    Returns
    -------
    int
        The number of (split, group) pairs with images on both sides.
    """
    groups = np.asarray(groups)
    leaks = 0
    for s in splits:
        leaks += len(set(groups[s.train]) & set(groups[s.test]))
    return leaks


# --------------------------------------------------------------------------------------------

def patient_splits(
    y: Sequence[int], groups: Sequence[Any], *, n_splits: int = 5, seed: int = 0
) -> list[Split]:
    """Patient-grouped K-fold, stratified on a 0/1 label (``abnormal``).

    Returns
    -------
    list of Split
        Every image is in exactly one test fold; no group is on both sides of a split.
    """
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=int(seed))
    y = np.asarray(y)
    return [
        Split(int(seed), fold, tr, te)
        for fold, (tr, te) in enumerate(cv.split(np.zeros(len(y)), y, np.asarray(groups)))
    ]
