"""The one-way import order (.importlinter) holds, and the checker would see a broken one."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from _paths import ROOT


def _lint_imports() -> str:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(exe).exists():
        pytest.skip("import-linter is not installed (pip install 'hamfeat[dev]')")
    return exe


def test_import_contracts_are_kept() -> None:
    r = subprocess.run([_lint_imports(), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout


def test_a_reversed_layer_is_reported(tmp_path: Path) -> None:
    """The same checker on a contract the package breaks (features above the CLI) fails."""
    cfg = tmp_path / "reversed.ini"
    cfg.write_text(
        "[importlinter]\nroot_package = hamfeat\n\n"
        "[importlinter:contract:rev]\nname = reversed\ntype = layers\n"
        "layers =\n    hamfeat.features\n    hamfeat.cli\n"
    )
    r = subprocess.run([_lint_imports(), str(cfg), "--no-cache"], cwd=ROOT, capture_output=True,
                       text=True)
    assert r.returncode != 0 and "BROKEN" in r.stdout, r.stdout[-2000:]
