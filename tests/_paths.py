"""The folders the tests read, defined once: a test imports them instead of counting
``Path(__file__).parents``, so it may live at any depth under ``tests/``."""

from __future__ import annotations

import os
from pathlib import Path

#: ``tests/``
TESTS = Path(__file__).resolve().parent
#: The repository root (``Makefile``, ``.importlinter``, ``benchmarks/``).
ROOT = TESTS.parent
#: Frozen fixtures read by path (``tests/data/model_params.json``).
DATA = TESTS / "data"
#: Where the real data sets are by default: ``../shared/data`` beside the repository.
SHARED_DEFAULT = ROOT.parent / "shared" / "data"
#: The real data: ``$HAMFEAT_SHARED_DATA`` when set, else :data:`SHARED_DEFAULT`.
SHARED = Path(os.environ.get("HAMFEAT_SHARED_DATA") or SHARED_DEFAULT)
