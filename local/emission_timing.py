#!/usr/bin/env python3
"""How much later (or earlier) models emit their tokens than a reference model.

Greedy search with the frame of each emission, on the cuts given, for the reference (e.g.
the teacher) and each model; tokens both emitted are matched and their frame offsets
averaged (distill/decode/emission_timing.py). A causal student that lags the teacher by d
frames is a case for ``--set kd.teacher_delay=d`` (RESULTS.md).

Usage:
  local/emission_timing.py --reference exp/teacher --exp-dirs exp/student_rnn_alone exp/student_dnn_alone \\
      --cuts data/fbank/librispeech_cuts_dev-clean.jsonl.gz [--max-cuts 100]
Prints one markdown table: model, matched tokens, mean and median offset in frames and ms.
"""
from __future__ import annotations

import argparse
import logging
import statistics
from pathlib import Path
from typing import Dict, List

import torch

from distill.data.manifests import load_cuts
from distill.decode.emission_timing import emission_offsets
from distill.decode.greedy import greedy_search_timed
from distill.models.subsampling import SUBSAMPLING_FACTOR
from distill.train.checkpoint import last_epoch, load_averaged_model

FRAME_SHIFT_MS = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, required=True, help="the reference model's exp dir (its last epoch)")
    parser.add_argument("--exp-dirs", type=Path, nargs="+", required=True, help="models to compare (their last epochs)")
    parser.add_argument("--cuts", type=Path, required=True, help="a cut manifest with features")
    parser.add_argument("--max-cuts", type=int, default=100, help="the first N cuts (default 100)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    torch.set_num_threads(1)
    cuts = load_cuts(args.cuts).subset(first=args.max_cuts).to_eager()
    names = [args.reference] + list(args.exp_dirs)
    models = {d: load_averaged_model(d, last_epoch(d), 1).eval() for d in names}
    offsets: Dict[Path, List[int]] = {d: [] for d in args.exp_dirs}
    for cut in cuts:
        x = torch.from_numpy(cut.load_features()).unsqueeze(0)
        x_lens = torch.tensor([x.size(1)])
        timed = {}
        for d, model in models.items():
            encoder_out, encoder_out_lens = model.encode(x, x_lens)
            timed[d] = greedy_search_timed(model, encoder_out, encoder_out_lens)[0]
        for d in args.exp_dirs:
            offsets[d].extend(emission_offsets(timed[args.reference], timed[d]))
    frame_ms = FRAME_SHIFT_MS * SUBSAMPLING_FACTOR
    print(f"Emission timing against {args.reference} on {len(cuts)} cuts of {args.cuts.name} "
          f"(greedy search; positive: later; 1 frame = {frame_ms} ms)\n")
    print("| model | matched tokens | mean offset (frames) | median offset (frames) | mean offset (ms) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for d, values in offsets.items():
        if not values:
            print(f"| {d} | 0 | - | - | - |")
            continue
        mean = statistics.fmean(values)
        print(f"| {d} | {len(values)} | {mean:.2f} | {statistics.median(values):.1f} | {mean * frame_ms:.0f} |")


if __name__ == "__main__":
    main()
