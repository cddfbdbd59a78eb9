"""The shell scripts pass shellcheck (skipped where shellcheck is not installed)."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import REPO_ROOT


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_shell_scripts_are_clean():
    scripts = sorted(
        str(p.relative_to(REPO_ROOT))
        for pattern in ("tools/*.sh", "local/*.sh", "utils/*.sh", "egs/*/*/*.sh", ".ci/run")
        for p in REPO_ROOT.glob(pattern)
    )
    out = subprocess.run(["shellcheck", "-x", *scripts], cwd=REPO_ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout
