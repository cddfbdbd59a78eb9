"""benchmarks/decode_speed.py runs on trained models and prints its line of RTF ratios."""
from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_decode_speed_benchmark_prints_ratios(tiny_teacher_exp, tiny_data_dir, tmp_path):
    # The tiny model under two names: a "teacher" and a "student".
    for name in ("teacher", "student_dnn_kd"):
        (tmp_path / name).symlink_to(tiny_teacher_exp, target_is_directory=True)
    cmd = [sys.executable, str(REPO_ROOT / "benchmarks" / "decode_speed.py"),
           "--exp-dirs", str(tmp_path / "teacher"), str(tmp_path / "student_dnn_kd"),
           "--lang-dir", str(tiny_data_dir / "lang_bpe_100"),
           "--cuts", str(tiny_data_dir / "fbank" / "librispeech_cuts_test-clean.jsonl.gz"),
           "--method", "greedy_search", "fast_beam_search", "--rounds", "1", "--threads", "1"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    last = out.stdout.strip().splitlines()[-1]
    ratios = re.findall(r"(\w+) teacher/student_dnn_kd (\d+\.\d+)", last)
    assert [method for method, _ in ratios] == ["greedy_search", "fast_beam_search"], last
    assert all(float(r) > 0 for _, r in ratios)
