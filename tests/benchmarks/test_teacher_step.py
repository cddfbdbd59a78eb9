"""benchmarks/teacher_step.py times both models in both precisions and prints its ratio line."""
from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_teacher_step_benchmark_prints_frames_per_second_against_icefall():
    cmd = [sys.executable, str(REPO_ROOT / "benchmarks" / "teacher_step.py"), "--repeats", "1", "--threads", "1",
           "--batch", "2", "--frames", "120", "--tokens", "8"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "| icefall pruned_transducer_stateless2 6 x 256 (reference) | float32 | 11.5 M |" in out.stdout
    # Our Conformer at icefall's shape has about icefall's size.
    params = re.search(r"\| icefall shape \| float32 \| (\d+\.\d+) M \|", out.stdout)
    assert params and 10.5 < float(params.group(1)) < 12.5, out.stdout
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("RATIOS frames/s over icefall's 1286:"), last
    ratios = re.findall(r"(icefall shape|our teacher) (float32|bfloat16) (\d+\.\d+)x", last)
    assert [(m, p) for m, p, _ in ratios] == [("icefall shape", "float32"), ("icefall shape", "bfloat16"),
                                              ("our teacher", "float32"), ("our teacher", "bfloat16")], last
    assert all(float(r) > 0 for _, _, r in ratios)
