"""A training run killed (SIGKILL) at random points and resumed each time ends with the
parameters of an uninterrupted run, bit for bit (CPU, one thread).

Marked slow (about two minutes): ``bash tools/run_tests.sh -m slow tests/reliability``.
Resume restores the model, optimizer, scheduler, the sampler's position in the epoch and
every random-number generator (distill/train/trainer.py), so that a batch after a resume is
the batch the uninterrupted run saw, with the same dropout and SpecAugment draws.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import pytest
import torch

from tests.conftest import REPO_ROOT

SMOKE = REPO_ROOT / "egs" / "librispeech" / "ASR" / "conf" / "smoke"


def train_cmd(data: Path, exp: Path) -> List[str]:
    fbank = data / "fbank"
    return [sys.executable, str(REPO_ROOT / "local" / "train.py"), "--config", str(SMOKE / "common.yaml"), "--config", str(SMOKE / "teacher.yaml"),
            "--exp-dir", str(exp), "--train-cuts", str(fbank / "librispeech_cuts_train-clean-100.jsonl.gz"),
            "--valid-cuts", str(fbank / "librispeech_cuts_dev-clean.jsonl.gz"), "--lang-dir", str(data / "lang_bpe_100"),
            "--num-epochs", "3", "--resume", "--set", "train.save_every_n=4", "--set", "train.keep_last_k=3",
            "--set", "train.device=cpu", "--set", "data.num_workers=0"]


def batches_logged(exp: Path) -> int:
    log = exp / "log"
    if not log.is_dir():
        return 0
    return sum(f.read_text(errors="replace").count(" batch ") for f in log.glob("*.log*"))


@pytest.mark.slow
def test_three_kills_resume_to_the_same_parameters(tiny_data_dir, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    ref = subprocess.run(train_cmd(tiny_data_dir, tmp_path / "ref"), env=env, capture_output=True, text=True, timeout=900)
    assert ref.returncode == 0, ref.stderr[-3000:]
    total = batches_logged(tmp_path / "ref")
    rng = random.Random(1)
    kill_after = sorted(rng.sample(range(2, max(total - 1, 5)), 3))
    exp = tmp_path / "killed"
    kills = 0
    for target in kill_after:
        proc = subprocess.Popen(train_cmd(tiny_data_dir, exp), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while proc.poll() is None and batches_logged(exp) < target:
            time.sleep(0.05)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills == 3
    last = subprocess.run(train_cmd(tiny_data_dir, exp), env=env, capture_output=True, text=True, timeout=900)
    assert last.returncode == 0, last.stderr[-3000:]
    a = torch.load(tmp_path / "ref" / "epoch-3.pt", map_location="cpu")["model"]
    b = torch.load(exp / "epoch-3.pt", map_location="cpu")["model"]
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]} (kills after {kill_after} logged batches)"
