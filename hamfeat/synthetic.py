"""A synthetic feature table with the real table's layout, for tests and examples (not data of
any data set, and not evaluation)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hamfeat.datasets.ham10000 import CLASSES
from hamfeat.models import FAMILY_NAMES
from hamfeat.tables import features_version

__all__ = ["make_synthetic_table"]


def make_synthetic_table(
    n_lesions: int = 300,
    *,
    seed: int = 0,
    n_per_family: int = 6,
    max_images_per_lesion: int = 3,
    signal: float = 1.0,
    lesion_effect: float = 1.0,
    nan_fraction: float = 0.01,
) -> pd.DataFrame:
    """Generate a feature table with the real table's layout (for tests and examples).

    Classes follow HAM10000's imbalance; each lesion has 1 to ``max_images_per_lesion`` images
    that share a lesion-specific offset (as near-duplicate images of one lesion do), so an
    image-level split is optimistic on it, as on the real data.

    Parameters
    ----------
    n_lesions : int
    seed : int
    n_per_family : int
        Feature columns per family (plus the colour columns of the seed baseline).
    max_images_per_lesion : int
    signal : float
        Class separation of the features.
    lesion_effect : float
        Spread of the per-lesion offset shared by a lesion's images.
    nan_fraction : float
        Fraction of feature values set to NaN.

    Returns
    -------
    pandas.DataFrame
        Sorted by ``image_id``, with ``attrs["hamfeat"]`` set.

    Examples
    --------
    >>> t = make_synthetic_table(50)
    >>> sorted(set(t["dx"])) == sorted(set(t["dx"]) & set(CLASSES))
    True
    """
    rng = np.random.default_rng(seed)
    prior = np.array([0.033, 0.051, 0.11, 0.011, 0.111, 0.669, 0.015])
    prior = prior / prior.sum()
    k = len(CLASSES)
    # every class gets at least 6 lesions so that stratified 5-fold CV (and SMOTE) work on
    # small tables
    base = np.repeat(np.arange(k), 6)
    lesion_cls = np.concatenate([base, rng.choice(k, size=max(0, n_lesions - len(base)), p=prior)])
    rng.shuffle(lesion_cls)
    n_img = rng.integers(1, max_images_per_lesion + 1, size=len(lesion_cls))
    seed_cols = [f"color_rgb_{c}_mean" for c in "rgb"] + [f"color_hsv_{c}_mean" for c in "hsv"]
    seed_cols += [f"color_hsv_h_hist{i:02d}" for i in range(4)]
    cols = list(seed_cols)
    from hamfeat.features import FAMILIES

    for fam in FAMILY_NAMES:  # real, declared names (features are selected by name)
        cols += [n for n in FAMILIES[fam].names() if n not in seed_cols][:n_per_family]
    centres = rng.normal(0.0, signal, size=(k, len(cols)))
    rows, feats = [], []
    img = 0
    for les, (c, m) in enumerate(zip(lesion_cls, n_img, strict=True)):
        offset = rng.normal(0.0, lesion_effect, size=len(cols))
        for _ in range(m):
            feats.append(centres[c] + offset + rng.normal(0.0, 1.0, size=len(cols)))
            rows.append(
                {
                    "image_id": f"ISIC_{img:07d}",
                    "lesion_id": f"HAM_{les:07d}",
                    "dx": CLASSES[c],
                    "dx_type": "histo",
                    "age": float(rng.integers(5, 17) * 5) if rng.random() > 0.01 else np.nan,
                    "sex": ["male", "female", "unknown"][int(rng.integers(0, 3))],
                    "localization": ["back", "face", "trunk", "lower extremity"][
                        int(rng.integers(0, 4))
                    ],
                    "mask_source": "given",
                    "mask_method": "given",
                }
            )
            img += 1
    X = np.asarray(feats)
    X[rng.random(X.shape) < nan_fraction] = np.nan
    table = pd.concat([pd.DataFrame(rows), pd.DataFrame(X, columns=cols)], axis=1)
    table = table.sort_values("image_id").reset_index(drop=True)
    table.attrs["hamfeat"] = {
        "config": {
            "families": list(FAMILY_NAMES),
            "color_constancy": False,
            "hair_removal": False,
            "long_side": 256,
            "features_version": features_version(),
            "synthetic": True,
        },
        "use_masks": True,
    }
    return table
