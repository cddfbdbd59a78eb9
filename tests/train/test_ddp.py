"""Training under torchrun: 2 CPU processes (gloo) stay identical replicas, and a distilled rank
reads the teacher's output for the cuts it has seen from memory."""
from __future__ import annotations

import os
import re
import subprocess
import sys

from distill.testing import tiny_training_config
from tests.conftest import REPO_ROOT


def run_two_processes(config, *extra: str) -> None:
    """local/train.py under distill.launch, 2 one-thread gloo processes, with every value of
    ``config`` given on the command line."""
    overrides = []
    for section, values in config.to_dict().items():
        for key, value in values.items():
            overrides += ["--set", f"{section}.{key}={value}"]
    # distill.launch is torchrun with a fix for torch 1.13 on Python 3.11 (see its docstring).
    cmd = [sys.executable, "-m", "distill.launch", "--standalone", "--nproc_per_node=2", str(REPO_ROOT / "local" / "train.py"),
           *overrides, *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


def test_two_process_gloo_replicas_stay_identical(tiny_data_dir, tmp_path):
    run_two_processes(tiny_training_config(tiny_data_dir, tmp_path / "exp", ["train.num_epochs=2"]), "--max-batches", "3")
    checksums, first_losses = {}, {}
    for rank in (0, 1):
        log = (tmp_path / "exp" / "log" / f"train-rank{rank}.log").read_text()
        assert "world size 2" in log
        assert re.search(r"batch 3: loss", log), log[-2000:]
        first_losses[rank] = re.search(r"batch 1: loss (\S+)", log).group(1)
        checksums[rank] = re.findall(r"Training done at batch \d+; parameter checksum (\S+)", log)[-1]
    # Each rank trained on its own share of the data (different losses), yet the
    # gradients were averaged, so the replicas are identical.
    assert first_losses[0] != first_losses[1]
    assert checksums[0] == checksums[1]
    # Only rank 0 writes checkpoints and metrics.
    assert (tmp_path / "exp" / "metrics.tsv").is_file()


def test_a_distilled_rank_reads_the_cuts_it_has_seen_from_memory(tiny_data_dir, tiny_teacher_exp, tmp_path):
    """kd.cache_teacher under DDP: the sampler deals the cuts out to the ranks afresh every
    epoch, so in epoch 2 a rank has seen about half of its cuts; those come from memory and
    the teacher runs on the others only (a batch is not all-or-nothing)."""
    student = ["model.encoder_dim=16", "model.dim_feedforward=32", "model.decoder_dim=16", "model.joiner_dim=16",
               f"kd.teacher_exp_dir={tiny_teacher_exp}", "train.num_epochs=2", "loss.model_warm_step=0",
               "data.spec_augment=false"]
    run_two_processes(tiny_training_config(tiny_data_dir, tmp_path / "exp", student))
    for rank in (0, 1):
        log = (tmp_path / "exp" / "log" / f"train-rank{rank}.log").read_text()
        first = re.search(r"Teacher cache after epoch 1: (\d+) cuts, \S+ GiB; (\d+) cuts read from memory, (\d+) through", log)
        second = re.search(r"Teacher cache after epoch 2: (\d+) cuts, \S+ GiB; (\d+) cuts read from memory, (\d+) through", log)
        assert first and second, log[-2000:]
        seen, hits, misses = (int(v) for v in first.groups())
        assert hits == 0 and misses == seen > 0
        seen_2, hits_2, misses_2 = (int(v) for v in second.groups())
        assert hits_2 > 0 and misses_2 > misses  # epoch 2: part from memory, the newly dealt cuts through the teacher
        assert seen_2 == misses_2  # every cut the teacher ran on is kept
