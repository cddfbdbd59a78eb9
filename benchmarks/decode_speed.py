#!/usr/bin/env python3
"""Decoding speed of the students against the teacher, method by method, measured in one run.

Decodes one cut set with each model and method (as stage 6 does: features loaded, encoder,
search), in rounds that visit every model in turn, and keeps each model's fastest round: on a
shared, noisy machine the minimum is the least disturbed measurement, and taking the rounds
side by side exposes every model to the same conditions. Prints the real-time factor of each
model and method, and at the end one line of teacher/student RTF ratios.

Usage (from a recipe directory, after stages 4-6):
  python $DISTILL_ROOT/benchmarks/decode_speed.py --exp-dirs exp/teacher exp/student_dnn_kd \
      exp/student_rnn_kd --lang-dir data/lang_bpe_100 \
      --cuts data/fbank/librispeech_cuts_test-clean.jsonl.gz [--rounds 3] [--threads 2]
The first exp dir is the reference (the teacher); every model is decoded from its last epoch.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict, List

import torch

from distill.data.manifests import load_cuts
from distill.decode.decode_cuts import decode_cuts
from distill.decode.methods import METHODS, SearchOptions, make_word_decoder
from distill.decode.scoring import real_time_factor
from distill.lang.tokenizer import load_tokenizer
from distill.train.checkpoint import last_epoch, load_averaged_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp-dirs", type=Path, nargs="+", required=True, help="the teacher first, then students")
    parser.add_argument("--lang-dir", type=Path, required=True)
    parser.add_argument("--cuts", type=Path, required=True)
    parser.add_argument("--method", nargs="+", default=["greedy_search", "modified_beam_search", "fast_beam_search"],
                        choices=METHODS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if len(args.exp_dirs) < 2:
        raise SystemExit("--exp-dirs needs the teacher and at least one student")
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = load_tokenizer(args.lang_dir)
    cuts = load_cuts(args.cuts).to_eager()
    audio_seconds = sum(c.duration for c in cuts)
    models = {d.name: load_averaged_model(d, last_epoch(d), 1, device) for d in args.exp_dirs}
    options = SearchOptions()
    rtf: Dict[str, Dict[str, float]] = {}
    for method in args.method:
        decoders = {name: make_word_decoder(method, model, tokenizer, args.lang_dir, options) for name, model in models.items()}
        best = {name: float("inf") for name in models}
        for _ in range(args.rounds):
            for name, model in models.items():
                _, elapsed = decode_cuts(model, cuts, tokenizer, word_decoder=decoders[name])
                best[name] = min(best[name], real_time_factor(elapsed, audio_seconds))
        rtf[method] = best
        print(f"{method}: " + ", ".join(f"{name} RTF {value:.4f}" for name, value in best.items()), flush=True)
    teacher = args.exp_dirs[0].name
    ratios: List[str] = []
    for method, best in rtf.items():
        ratios += [f"{method} {teacher}/{name} {best[teacher] / best[name]:.2f}" for name in best if name != teacher]
    print(f"RTF ratios ({audio_seconds:.0f} s of audio, best of {args.rounds} rounds): " + "; ".join(ratios))


if __name__ == "__main__":
    main()
