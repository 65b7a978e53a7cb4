"""The data sets hamfeat knows, as declared specs (:class:`DatasetSpec`) in one registry.

A spec says how to find and load a folder, the task (multi-class or multi-label), the label and
group columns, the classes, the feature preset, the model defaults and choices, the default
report folder and which command-line options apply. The command line builds ``--dataset``, its
help and its option checks from the registry; a new data set is one module that calls
:func:`register_dataset`.

Built in: :mod:`hamfeat.datasets.ham10000` (the default) and :mod:`hamfeat.datasets.cxr14`,
imported when first asked for (this package imports no computation). Shared discovery code
(:class:`~hamfeat.datasets.discovery.Dataset`, folder search and walking, image and mask
listing) is :mod:`hamfeat.datasets.discovery`.
"""

from __future__ import annotations

from typing import Any

from hamfeat.datasets._registry import (
    DEFAULT_DATASET,
    MULTICLASS,
    MULTILABEL,
    DatasetSpec,
    FeaturePreset,
    dataset_names,
    get_dataset,
    register_dataset,
    registered_datasets,
)

__all__ = [
    "DEFAULT_DATASET",
    "MULTICLASS",
    "MULTILABEL",
    "Dataset",
    "DatasetSpec",
    "FeaturePreset",
    "dataset_names",
    "find_data_dir",
    "get_dataset",
    "register_dataset",
    "registered_datasets",
]

_DISCOVERY = ("Dataset", "find_data_dir", "list_images", "masks_in_folder", "walk_folders")


def __getattr__(name: str) -> Any:  # the discovery names, without importing them up front
    if name in _DISCOVERY:
        from hamfeat.datasets import discovery

        return getattr(discovery, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
