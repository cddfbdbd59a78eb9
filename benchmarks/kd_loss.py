#!/usr/bin/env python3
"""The lattice distillation loss on the pruned lattice vs. the full T x (U+1) lattice, and the
cost of distillation in a student training step, measured in one run.

For B=8 utterances of T=250 encoder frames (10 s of audio), V=500 and U in {25, 50, 100}:
  - time and peak memory of the distillation loss (forward + backward into the student's
    encoder/predictor outputs) on k2's pruned lattice (s_range=5) and on the full lattice;
  - one student training step at U=50 (``--student``, rnn or dnn, its config's kd settings): plain;
    with distillation, teacher forward included; with the teacher's encoder output from memory
    (``kd.cache_teacher``: its predictor, joiner and lattice still computed); and with the
    teacher's output given (the loss's own cost, which must stay at most 1.3x a plain step).
Peak memory is the growth of the process's peak RSS while the loss runs, measured in a fresh
subprocess per case (CPU), or ``torch.cuda.max_memory_allocated`` on CUDA.

Usage:
  python benchmarks/kd_loss.py [--device cpu] [--repeats 3] [--threads 2] [--batch 8] [--frames 250] [--student rnn]
Prints a table and, at the end, one line of ratios (tests/benchmarks/test_kd_loss.py runs it small).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import k2
import torch

from distill.losses.lattice_kd import KdConfig, full_lattice_kd, pruned_lattice_kd, teacher_forward
from distill.losses.teacher_cache import TeacherEncoderCache
from distill.models.config import LossConfig, ModelConfig
from distill.models.registry import build_transducer
from distill.models.transducer import combine_losses
from distill.train.config import load_config, recipe_config_files
from distill.train.losses import distillation_terms

CONF = Path(__file__).resolve().parents[1] / "egs" / "librispeech" / "ASR" / "conf"
B, T_FRAMES, V = 8, 250, 500


def build(name: str, device: torch.device):
    model_config: ModelConfig = load_config(recipe_config_files(CONF, name)).model
    model_config.vocab_size = V
    model_config.dropout = 0.0
    return build_transducer(model_config).to(device)


def make_batch(U: int, device: torch.device, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    num_input_frames = 4 * T_FRAMES + 3  # subsamples to T_FRAMES
    x = torch.randn(B, num_input_frames, 80, generator=g).to(device)
    x_lens = torch.full((B,), num_input_frames, dtype=torch.int64, device=device)
    labels = torch.randint(1, V, (B, U), generator=g).tolist()
    return x, x_lens, k2.RaggedTensor(labels).to(device)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def measure_loss(U: int, variant: str, device_name: str, repeats: int, threads: int) -> dict:
    """Time and peak memory of one loss variant (run in its own process on CPU)."""
    torch.set_num_threads(threads)
    device = torch.device(device_name)
    torch.manual_seed(0)
    teacher, student = build("teacher", device).eval(), build("student_rnn", device)
    x, x_lens, y = make_batch(U, device)
    loss_config, kd_config = LossConfig(prune_range=5), KdConfig(teacher_exp_dir="-", temperature=2.0)
    with torch.no_grad():
        t_out = teacher(x, x_lens, y, loss_config)
        s_out = student(x, x_lens, y, loss_config)
    # The loss's own cost: leaves standing in for the student's encoder and predictor outputs.
    s_out.encoder_out = s_out.encoder_out.detach().requires_grad_(True)
    s_out.decoder_out = s_out.decoder_out.detach().requires_grad_(True)

    def run() -> None:
        if variant == "pruned":
            loss = pruned_lattice_kd(t_out, student, s_out, kd_config)
        else:
            loss = full_lattice_kd(teacher, t_out, student, s_out, kd_config)
        loss.backward()
        s_out.encoder_out.grad = s_out.decoder_out.grad = None
        student.zero_grad(set_to_none=True)

    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = rss_bytes()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    run()  # warm-up; also the peak-memory measurement
    if device.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, peak_before) - base
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return {"time": min(times), "peak": max(peak, 0)}


def measure_steps(device_name: str, repeats: int, threads: int, student_name: str) -> dict:
    """One optimizer step of the student: plain, distilled, distilled with the teacher's
    encoder output cached, and distilled with the teacher's output precomputed (the
    distillation loss's own cost), U=50."""
    torch.set_num_threads(threads)
    device = torch.device(device_name)
    torch.manual_seed(0)
    teacher, student = build("teacher", device).eval(), build(f"student_{student_name}", device)
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-4)
    x, x_lens, y = make_batch(50, device)
    loss_config = LossConfig(prune_range=5, model_warm_step=0)
    kd_config = dataclasses.replace(load_config(recipe_config_files(CONF, f"student_{student_name}")).kd, teacher_exp_dir="-")
    with torch.no_grad():
        t_out_given = teacher(x, x_lens, y, loss_config)
    cut_ids = [f"cut{i}" for i in range(x.size(0))]
    cache = TeacherEncoderCache(1 << 34)
    teacher_forward(teacher, x, x_lens, y, loss_config, cut_ids=cut_ids, cache=cache)  # the first epoch

    def step(variant: str) -> None:
        t_out = None
        if variant == "kd":
            with torch.no_grad():
                t_out = teacher(x, x_lens, y, loss_config)
        elif variant == "kd_cached":
            t_out = teacher_forward(teacher, x, x_lens, y, loss_config, cut_ids=cut_ids, cache=cache)
        elif variant == "kd_loss":
            t_out = t_out_given
        shared = t_out is not None and kd_config.bounds == "teacher"
        out = student(x, x_lens, y, loss_config, prune_ranges=t_out.ranges if shared else None)
        loss = combine_losses(out, loss_config, 10_000)
        if t_out is not None:
            loss = loss + distillation_terms(teacher, t_out, student, out, loss_config, kd_config, 10_000)[0]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    result = {}
    for variant in ("plain", "kd", "kd_cached", "kd_loss"):
        step(variant)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            step(variant)
            times.append(time.perf_counter() - start)
        result[variant] = min(times)
    return result


def in_subprocess(args: list) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    global B, T_FRAMES
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--labels", type=int, nargs="+", default=[25, 50, 100])
    parser.add_argument("--batch", type=int, default=8, help="utterances per batch")
    parser.add_argument("--frames", type=int, default=250, help="encoder frames per utterance")
    parser.add_argument("--student", choices=["rnn", "dnn"], default="rnn", help="the student of the step measurement")
    parser.add_argument("--_case", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--_steps", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    B, T_FRAMES = args.batch, args.frames
    common = ["--device", args.device, "--repeats", str(args.repeats), "--threads", str(args.threads),
              "--batch", str(B), "--frames", str(T_FRAMES)]
    if args._case:
        print(json.dumps(measure_loss(int(args._case[0]), args._case[1], args.device, args.repeats, args.threads)))
        return
    if args._steps:
        print(json.dumps(measure_steps(args.device, args.repeats, args.threads, args.student)))
        return

    print(f"B={B} T={T_FRAMES} V={V} s_range=5 device={args.device} threads={args.threads} (best of {args.repeats})")
    print(f"{'U':>4} | {'pruned ms':>10} {'full ms':>10} {'time ratio':>10} | {'pruned MiB':>10} {'full MiB':>10} {'mem ratio':>9}")
    ratios = {}
    for U in args.labels:
        pruned = in_subprocess(["--_case", str(U), "pruned", *common])
        full = in_subprocess(["--_case", str(U), "full", *common])
        t_ratio = pruned["time"] / full["time"]
        m_ratio = pruned["peak"] / max(full["peak"], 1)
        ratios[U] = (t_ratio, m_ratio)
        print(f"{U:>4} | {pruned['time'] * 1e3:10.1f} {full['time'] * 1e3:10.1f} {t_ratio:10.3f} | "
              f"{pruned['peak'] / 2**20:10.1f} {full['peak'] / 2**20:10.1f} {m_ratio:9.3f}")
    steps = in_subprocess(["--_steps", "--student", args.student, *common])
    step_ratio = steps["kd"] / steps["plain"]
    cached_ratio = steps["kd_cached"] / steps["plain"]
    loss_ratio = steps["kd_loss"] / steps["plain"]
    print(f"{args.student.upper()} student step at U=50: plain {steps['plain'] * 1e3:.0f} ms; with distillation {steps['kd'] * 1e3:.0f} ms "
          f"(teacher forward included), {steps['kd_cached'] * 1e3:.0f} ms (the teacher's encoder output from memory, "
          f"kd.cache_teacher), {steps['kd_loss'] * 1e3:.0f} ms (teacher output given: the loss's own cost, "
          f"goal <= 1.3x plain)")
    parts = [f"U={U}: time {t:.3f} mem {m:.3f}" for U, (t, m) in ratios.items()]
    print("RATIOS pruned/full " + "; ".join(parts) + f" | kd-step/plain-step {step_ratio:.2f}"
          f" | kd-cached-step/plain-step {cached_ratio:.2f} | kd-loss-step/plain-step {loss_ratio:.2f}")


if __name__ == "__main__":
    main()
