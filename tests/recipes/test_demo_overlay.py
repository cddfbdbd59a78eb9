"""local/asr.sh with --demo true applies <conf-dir>/demo.yaml: its recipe section sets the
script's options (checked by name), --demo-config none turns it off."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

ASR_SH = REPO_ROOT / "local" / "asr.sh"


def run_stage_3(tmp_path: Path, conf: Path, *args: str) -> subprocess.CompletedProcess:
    """Stage 3 on a missing training part: it fails at once, after the overlay is applied."""
    cmd = ["bash", str(ASR_SH), "--corpus", "librispeech", "--corpus-dir", str(tmp_path / "corpus"),
           "--train-part", "train", "--dev-parts", "dev", "--test-parts", "test", "--data-dir", str(tmp_path / "data"),
           "--conf-dir", str(conf), "--stage", "3", "--stop-stage", "3", *args]
    # As a recipe's path.sh would: this Python first on PATH, the project importable.
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", PYTHONPATH=str(REPO_ROOT))
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)


def test_recipe_section_sets_options_and_none_turns_it_off(tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "demo.yaml").write_text("recipe:\n  vocab_size: 60\n  lm_order: 2\n")
    out = run_stage_3(tmp_path, conf, "--demo", "true", "--vocab-size", "500")
    log = out.stdout + out.stderr
    assert "demo.yaml sets --vocab-size 60 (was '500')" in log and "lang_bpe_60 (BPE 60, k2 lexicon, 2-gram" in log, log
    off = run_stage_3(tmp_path, conf, "--demo", "true", "--demo-config", "none", "--vocab-size", "500")
    assert "lang_bpe_500 (BPE 500, k2 lexicon, 3-gram" in off.stdout + off.stderr
    plain = run_stage_3(tmp_path, conf, "--vocab-size", "500")  # no --demo: no overlay
    assert "lang_bpe_500" in plain.stdout + plain.stderr


def test_unknown_recipe_option_and_missing_overlay_are_named(tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "demo.yaml").write_text("recipe:\n  vocab_sise: 60\n")
    out = run_stage_3(tmp_path, conf, "--demo", "true")
    assert out.returncode != 0 and "recipe: 'vocab_sise' is not an option of this script" in out.stderr
    (conf / "demo.yaml").write_text("recipe:\n  demo_config: other.yaml\n")
    out = run_stage_3(tmp_path, conf, "--demo", "true")
    assert out.returncode != 0 and "'demo_config' is not an option of this script, or is one" in out.stderr
    (conf / "demo.yaml").write_text("recipe:\n  vocab_size: 6 0\n")
    out = run_stage_3(tmp_path, conf, "--demo", "true")
    assert out.returncode != 0 and "recipe: vocab_size: '6 0' is not a single word" in out.stderr
    out = run_stage_3(tmp_path, conf, "--demo", "true", "--demo-config", str(tmp_path / "nowhere.yaml"))
    assert out.returncode != 0 and "nowhere.yaml does not exist" in out.stderr
