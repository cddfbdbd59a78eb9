"""Training under torchrun: 2 CPU processes (gloo) stay identical replicas."""
from __future__ import annotations

import os
import re
import subprocess
import sys

from distill.testing import tiny_training_config
from tests.conftest import REPO_ROOT


def test_two_process_gloo_replicas_stay_identical(tiny_data_dir, tmp_path):
    config = tiny_training_config(tiny_data_dir, tmp_path / "exp", ["train.num_epochs=2"])
    overrides = []
    for section, values in config.to_dict().items():
        for key, value in values.items():
            overrides += ["--set", f"{section}.{key}={value}"]
    # distill.launch is torchrun with a fix for torch 1.13 on Python 3.11 (see its docstring).
    cmd = [sys.executable, "-m", "distill.launch", "--standalone", "--nproc_per_node=2", str(REPO_ROOT / "local" / "train.py"),
           *overrides, "--max-batches", "3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
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
