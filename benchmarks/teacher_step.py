#!/usr/bin/env python3
"""Training speed of our teacher against icefall's, in input frames per second, measured in one run.

The reference: icefall's ``pruned_transducer_stateless2`` (Conformer, 6 layers x 256, 11.5 M
parameters with BPE 500) runs 1,286 input frames per second on this machine kind (2 cores,
2 threads), for a whole training step: forward, simple + pruned RNN-T loss, backward, and its
Eve optimizer + Eden scheduler step, on a batch of 8 utterances x 400 frames with 20 tokens each
(measured by the issue that asked for this benchmark; icefall itself is not installed here, so
the figure is printed, not re-measured).

This script times the same step with our code at that shape and size ("icefall shape": our
Conformer with 6 layers x 256, feed-forward 1024, 4 heads, convolution kernel 31, decoder and
joiner 512, BPE 500, no CTC head, dropout 0.1, our front end with 16 and 128 channels: 11.1 M
parameters), and our default teacher
(``conf/teacher.yaml``) on the same batch, with our whole training step: forward, the losses
with their final weights, backward, gradient clipping, AdamW and the Eden schedule, as
``distill/train/trainer.py`` runs them, in each precision asked for (``float32``; ``bfloat16``:
autocast, ``train.precision``, see distill/train/precision.py).

Usage:
  python benchmarks/teacher_step.py [--threads 2] [--repeats 5] [--precisions float32,bfloat16]
Prints a table and, last, one line of frames-per-second ratios against icefall's figure.
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Dict, List

import k2
import torch

from distill.models.config import LossConfig, ModelConfig
from distill.models.registry import build_transducer
from distill.models.transducer import combine_losses, num_params
from distill.train.config import load_config, recipe_config_files
from distill.train.precision import autocast, prepare_cpu_for
from distill.train.schedule import WarmupEden

CONF = Path(__file__).resolve().parents[1] / "egs" / "librispeech" / "ASR" / "conf"
#: icefall pruned_transducer_stateless2, 6 x 256, on 2 cores of this machine kind (see above).
ICEFALL_FRAMES_PER_SECOND = 1286.0
VOCAB = 500

#: Our Conformer at icefall's shape (its convolution kernel, its decoder and joiner width).
ICEFALL_SHAPE = dict(
    encoder_dim=256, num_encoder_layers=6, nhead=4, dim_feedforward=1024, cnn_module_kernel=31,
    subsampling_first_channels=16, subsampling_channels=128, decoder_dim=512, joiner_dim=512, aux_ctc=False, dropout=0.1,
    positional_encoding="absolute",
)


def configs() -> Dict[str, tuple]:
    """name -> (model config, loss config) of each model timed."""
    teacher = load_config(recipe_config_files(CONF, "teacher"))
    teacher.model.vocab_size = VOCAB
    icefall_model = dataclasses.replace(teacher.model, **ICEFALL_SHAPE)
    icefall_loss = dataclasses.replace(teacher.loss, ctc_scale=0.0, ctc_warm_step=0)
    return {"icefall shape": (icefall_model, icefall_loss), "our teacher": (teacher.model, teacher.loss)}


def time_step(model_config: ModelConfig, loss_config: LossConfig, precision: str, batch: int, frames: int,
              tokens: int, repeats: int) -> Dict[str, float]:
    """Best wall time of one whole training step over ``repeats`` (after one warm-up step)."""
    torch.manual_seed(0)
    model = build_transducer(model_config)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98), weight_decay=1e-3)
    scheduler = WarmupEden(optimizer, 1e-3, warmup_batches=50, lr_batches=5000, lr_epochs=3)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, frames, model_config.num_features, generator=g)
    x_lens = torch.full((batch,), frames, dtype=torch.int64)
    y = k2.RaggedTensor(torch.randint(1, model_config.vocab_size, (batch, tokens), generator=g).tolist())
    # Past every warm-up, so the step is the steady-state one.
    batch_idx = loss_config.ctc_warm_step + 10 * max(loss_config.model_warm_step, 1)

    def step() -> None:
        scheduler.step(batch_idx, 1.0)
        with autocast(torch.device("cpu"), precision):
            out = model(x, x_lens, y, loss_config, warmup=1.0)
        loss = combine_losses(out, loss_config, batch_idx)
        optimizer.zero_grad(set_to_none=True)
        (loss / int(out.encoder_out_lens.sum())).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()

    step()  # warm-up (allocations, oneDNN primitives)
    times: List[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {"params": num_params(model), "seconds": min(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--precisions", default="float32,bfloat16", help="comma-separated: float32, bfloat16")
    parser.add_argument("--models", default="icefall shape,our teacher", help="comma-separated: icefall shape, our teacher")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--tokens", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    precisions = args.precisions.split(",")
    for precision in precisions:
        prepare_cpu_for(precision)
    chosen = args.models.split(",")
    unknown = [m for m in chosen if m not in configs()]
    if unknown:
        parser.error(f"--models: unknown {unknown}; known: {list(configs())}")
    rows = []
    for name in chosen:
        model_config, loss_config = configs()[name]
        for precision in precisions:
            r = time_step(model_config, loss_config, precision, args.batch, args.frames, args.tokens, args.repeats)
            rows.append((name, precision, r["params"], r["seconds"], args.batch * args.frames / r["seconds"]))
    print(f"one training step (forward, losses, backward, clipping, AdamW + Eden), {args.batch} x {args.frames} "
          f"frames, {args.tokens} tokens, vocabulary {VOCAB}, {args.threads} thread(s), best of {args.repeats}")
    print("| model | precision | params | s/step | input frames/s | vs icefall's 1,286 |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    print(f"| icefall pruned_transducer_stateless2 6 x 256 (reference) | float32 | 11.5 M | "
          f"{8 * 400 / ICEFALL_FRAMES_PER_SECOND:.3f} | {ICEFALL_FRAMES_PER_SECOND:.0f} | 1.00x |")
    for name, precision, params, seconds, fps in rows:
        print(f"| {name} | {precision} | {params / 1e6:.2f} M | {seconds:.3f} | {fps:.0f} | "
              f"{fps / ICEFALL_FRAMES_PER_SECOND:.2f}x |")
    ratios = ", ".join(f"{name} {precision} {fps / ICEFALL_FRAMES_PER_SECOND:.2f}x" for name, precision, _, _, fps in rows)
    print(f"RATIOS frames/s over icefall's {ICEFALL_FRAMES_PER_SECOND:.0f}: {ratios}")


if __name__ == "__main__":
    main()
