"""Emission timing: greedy search's frames and the offsets between two models' emissions."""
from __future__ import annotations

import subprocess
import sys

import torch

from distill.decode.emission_timing import emission_offsets
from distill.decode.greedy import greedy_search, greedy_search_timed
from distill.testing import tiny_student
from tests.conftest import REPO_ROOT


def test_offsets_of_matched_tokens():
    reference = [(5, 2), (7, 4), (9, 8), (3, 10)]
    hyp = [(5, 3), (8, 4), (9, 10), (3, 11), (4, 12)]  # 7 became 8 (unmatched), 4 is extra
    assert emission_offsets(reference, hyp) == [1, 2, 1]
    assert emission_offsets(reference, reference) == [0, 0, 0, 0]
    assert emission_offsets(reference, []) == []


def test_timed_greedy_search_gives_the_frames_of_greedy_search():
    model = tiny_student(torch.device("cpu"), "lstm", seed=5).eval()
    x = torch.randn(2, 50, 20)
    x_lens = torch.tensor([50, 33])
    with torch.no_grad():
        encoder_out, encoder_out_lens = model.encode(x, x_lens)
    timed = greedy_search_timed(model, encoder_out, encoder_out_lens, max_sym_per_frame=2)
    assert [[token for token, _ in h] for h in timed] == greedy_search(model, encoder_out, encoder_out_lens, 2)
    for hyp, n in zip(timed, encoder_out_lens.tolist()):
        frames = [t for _, t in hyp]
        assert frames == sorted(frames) and all(0 <= t < n for t in frames)
        assert all(frames.count(t) <= 2 for t in frames)


def test_emission_timing_command_help():
    out = subprocess.run([sys.executable, str(REPO_ROOT / "local" / "emission_timing.py"), "--help"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "--reference" in out.stdout, out.stderr
