#!/usr/bin/env python3
"""Time of one teacher training step (forward, pruned RNN-T loss, backward, optimizer step)
for the default teacher and for the same Conformer scaled to icefall's published LibriSpeech
model sizes, measured in one run on this machine.

icefall's sizes, for orientation (egs/librispeech/ASR/RESULTS.md there): zipformer small
23.3 M, medium 65.55 M, large 148.4 M parameters; those are Zipformers, these are Conformers
of about the same parameter count, so the times say what a step of such a size costs here,
not what icefall's models cost.

The batch: 8 utterances of 4 s (32 s of audio, the default ``data.max_duration``), 25 BPE
tokens each, vocabulary 500.

Usage:
  python benchmarks/teacher_step.py [--threads 2] [--repeats 3] [--sizes default,23M,65M]
Prints a table and, at the end, one line of time ratios against the default teacher.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Dict, List

import k2
import torch

from distill.models.config import ModelConfig
from distill.models.registry import build_transducer
from distill.models.transducer import combine_losses, num_params
from distill.train.config import load_config

CONF = Path(__file__).resolve().parents[1] / "egs" / "librispeech" / "ASR" / "conf" / "teacher.yaml"
VOCAB = 500
BATCH, FRAMES, TOKENS = 8, 400, 25

#: Conformer shapes of about icefall's parameter counts (layers, width, feed-forward, heads).
SCALED: Dict[str, Dict[str, int]] = {
    "23M": {"num_encoder_layers": 12, "encoder_dim": 272, "dim_feedforward": 1088, "nhead": 4},
    "65M": {"num_encoder_layers": 16, "encoder_dim": 408, "dim_feedforward": 1632, "nhead": 8},
    "148M": {"num_encoder_layers": 18, "encoder_dim": 584, "dim_feedforward": 2336, "nhead": 8},
}


def model_config(size: str) -> ModelConfig:
    config = load_config([CONF])
    config.model.vocab_size = VOCAB
    for key, value in SCALED.get(size, {}).items():
        setattr(config.model, key, value)
    if size != "default":
        config.model.decoder_dim = config.model.joiner_dim = 512
    return config


def time_steps(size: str, repeats: int) -> Dict[str, float]:
    config = model_config(size)
    torch.manual_seed(0)
    model = build_transducer(config.model)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH, FRAMES, 80, generator=g)
    x_lens = torch.full((BATCH,), FRAMES, dtype=torch.int64)
    y = k2.RaggedTensor(torch.randint(1, VOCAB, (BATCH, TOKENS), generator=g).tolist())
    # Past every warm-up, so the step is the steady-state one (transducer + CTC).
    batch_idx = config.loss.ctc_warm_step + 10 * max(config.loss.model_warm_step, 1)

    def step() -> None:
        out = model(x, x_lens, y, config.loss, warmup=1.0)
        loss = combine_losses(out, config.loss, batch_idx)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()  # warm-up (allocations)
    times: List[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {"params": num_params(model), "seconds": min(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", default="default,23M,65M", help="comma-separated: default, 23M, 65M, 148M")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {size: time_steps(size, args.repeats) for size in args.sizes.split(",")}
    print(f"one training step, {BATCH} x {FRAMES / 100:.0f} s utterances, {args.threads} thread(s), best of {args.repeats}")
    print("| model | params | s/step | audio s per s |")
    print("| --- | ---: | ---: | ---: |")
    for size, r in results.items():
        print(f"| conformer {size} | {r['params'] / 1e6:.2f} M | {r['seconds']:.2f} | {BATCH * FRAMES / 100 / r['seconds']:.1f} |")
    base = results.get("default")
    if base:
        ratios = ", ".join(f"{size}/default {r['seconds'] / base['seconds']:.1f}x" for size, r in results.items() if size != "default")
        print(f"RATIOS step time: {ratios}")


if __name__ == "__main__":
    main()
