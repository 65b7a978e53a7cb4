"""Feature families and their registry.

Each family is a :class:`~hamfeat.features.base.Family` with a fixed list of self-describing
feature names, all starting with the family's name. Families are enabled or disabled by name::

    >>> from hamfeat.features import DEFAULT_FAMILIES, feature_names
    >>> DEFAULT_FAMILIES  # doctest: +NORMALIZE_WHITESPACE
    ('color', 'skin', 'variegation', 'zone', 'hetero', 'border', 'glcm', 'lbp', 'wavelet',
     'structure', 'shape', 'whole')
    >>> feature_names(["shape"])[:3]
    ['shape_area_frac', 'shape_perimeter_rel', 'shape_circularity']

Bump :data:`FEATURES_VERSION` whenever a change alters any feature value: it is part of the
cache key and of every saved model, so stale caches and mismatched models are never used.
"""

from __future__ import annotations

from collections.abc import Iterable

from hamfeat.features.base import Context, Family
from hamfeat.features.color import ColorFamily, SkinFamily, VariegationFamily
from hamfeat.features.gray import GRAY_FAMILIES
from hamfeat.features.regional import BorderFamily, HeterogeneityFamily, ZoneFamily
from hamfeat.features.shape import ShapeFamily
from hamfeat.features.structure import StructureFamily
from hamfeat.features.texture import GlcmFamily, LbpFamily, WaveletFamily
from hamfeat.features.whole import WholeFamily

__all__ = [
    "DEFAULT_FAMILIES",
    "FAMILIES",
    "FEATURES_VERSION",
    "GRAY_FAMILY_NAMES",
    "Context",
    "Family",
    "feature_names",
    "get_families",
]

#: Version of the feature definitions; part of every cache key and model file.
FEATURES_VERSION = 3
# 2: analysis window (bbox + 16 px); LBP P=8 at every radius
# 3: families zone, hetero, border, structure added
# (family whole added at version 3: new names only, no existing value changed)

#: Every family, by name, in output order.
FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        ColorFamily(),
        SkinFamily(),
        VariegationFamily(),
        ZoneFamily(),
        HeterogeneityFamily(),
        BorderFamily(),
        GlcmFamily(),
        LbpFamily(),
        WaveletFamily(),
        StructureFamily(),
        ShapeFamily(),
        WholeFamily(),
        *GRAY_FAMILIES,
    )
}

#: The grayscale families for radiographs (:mod:`hamfeat.features.gray`); never defaults.
GRAY_FAMILY_NAMES: tuple[str, ...] = tuple(f.name for f in GRAY_FAMILIES)

#: Families computed when none are named: every dermoscopy family (all but the grayscale ones).
DEFAULT_FAMILIES: tuple[str, ...] = tuple(n for n in FAMILIES if n not in GRAY_FAMILY_NAMES)


def get_families(names: Iterable[str] | None = None) -> list[Family]:
    """Return the named families in registry order.

    Parameters
    ----------
    names : iterable of str, optional
        Family names; ``None`` means :data:`DEFAULT_FAMILIES`.

    Returns
    -------
    list of Family

    Raises
    ------
    ValueError
        For an unknown or repeated name, or an empty selection.
    """
    if names is None:
        names = DEFAULT_FAMILIES
    if isinstance(names, str):
        names = [names]
    names = list(names)
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        raise ValueError(
            f"unknown feature family {', '.join(map(repr, unknown))}; known: {', '.join(FAMILIES)}"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"feature family named twice in {names}")
    if not names:
        raise ValueError("no feature family selected")
    return [FAMILIES[n] for n in FAMILIES if n in names]


def feature_names(names: Iterable[str] | None = None) -> list[str]:
    """All feature names of the named families, in output order."""
    return [n for fam in get_families(names) for n in fam.names()]
