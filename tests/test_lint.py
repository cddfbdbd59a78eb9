"""The project passes its own linter: ruff with the rules of pyproject.toml (pyflakes, the
non-style pycodestyle errors, import order). shellcheck is tests/recipes/test_shellcheck.py."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT


def ruff_command() -> list:
    beside = Path(sys.executable).parent / "ruff"  # the venv's, installed from requirements.txt
    return [str(beside)] if beside.is_file() else [shutil.which("ruff") or "ruff"]


def test_ruff_finds_nothing():
    out = subprocess.run([*ruff_command(), "check", "--no-cache", "."], cwd=REPO_ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout[-5000:] + out.stderr[-2000:]
