"""utils/parse_options.sh behaves as Kaldi's does."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

SCRIPT = """#!/usr/bin/env bash
set -euo pipefail
stage=0
stop_stage=100
use_demo=false
dl_dir=download
help_message="Usage: $0 [options] <arg>"
. {root}/utils/parse_options.sh
echo "stage=$stage stop_stage=$stop_stage use_demo=$use_demo dl_dir=$dl_dir rest=$*"
"""


@pytest.fixture
def script(tmp_path) -> Path:
    path = tmp_path / "s.sh"
    path.write_text(SCRIPT.format(root=REPO_ROOT))
    return path


def run(script: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True)


def test_sets_variables_both_forms(script):
    out = run(script, "--stop-stage", "3", "--stage=2", "--dl-dir", "/x y", "a", "b")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "stage=2 stop_stage=3 use_demo=false dl_dir=/x y rest=a b"


def test_unknown_option_is_an_error(script):
    out = run(script, "--no-such-thing", "1")
    assert out.returncode != 0 and "invalid option --no-such-thing" in out.stderr


def test_booleans_take_true_or_false(script):
    assert run(script, "--use-demo", "true").stdout.startswith("stage=0 stop_stage=100 use_demo=true")
    out = run(script, "--use-demo", "yes")
    assert out.returncode != 0 and "true or false" in out.stderr


def test_missing_value(script):
    out = run(script, "--stage")
    assert out.returncode != 0 and "needs a value" in out.stderr


def test_help_lists_options(script):
    out = run(script, "--help")
    assert out.returncode == 0
    assert "Usage:" in out.stdout and "--stop-stage 100" in out.stdout and "--use-demo false" in out.stdout


def test_config_file(script, tmp_path):
    conf = tmp_path / "opts.conf"
    conf.write_text("stage=4\n")
    assert "stage=4 " in run(script, "--config", str(conf)).stdout
