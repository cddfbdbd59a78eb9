#!/usr/bin/env python3
"""Feature-extraction speed: kaldifeat (lhotse's KaldifeatFbank) next to lhotse's own Fbank,
on the same cuts, measured in one run (the machine is noisy: compare the ratio).

Audio is loaded once, before timing; each extractor then computes 80-dim fbank for every
cut, alternating between the two for ``--rounds`` rounds; the best round of each counts.

Usage (after stage 1):
  python benchmarks/fbank_speed.py --manifest-dir egs/librispeech/ASR/data/manifests \
      --prefix librispeech --part dev-clean
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from lhotse import CutSet, load_manifest

from distill.data.features import make_extractor


def time_extractor(extractor, audios, sampling_rate: int) -> tuple[float, list]:
    start = time.perf_counter()
    feats = [extractor.extract(a, sampling_rate) for a in audios]
    return time.perf_counter() - start, feats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest-dir", type=Path, required=True)
    parser.add_argument("--prefix", default="librispeech")
    parser.add_argument("--part", default="dev-clean")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 = as in stage 2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    recordings = load_manifest(args.manifest_dir / f"{args.prefix}_recordings_{args.part}.jsonl.gz")
    supervisions = load_manifest(args.manifest_dir / f"{args.prefix}_supervisions_{args.part}.jsonl.gz")
    cuts = CutSet.from_manifests(recordings=recordings, supervisions=supervisions)
    audios = [c.load_audio() for c in cuts]
    seconds = sum(a.shape[-1] for a in audios) / 16000
    extractors = {"kaldifeat": make_extractor("kaldifeat"), "lhotse-Fbank": make_extractor("lhotse")}
    best = {name: float("inf") for name in extractors}
    feats = {}
    for _ in range(args.rounds):
        for name, extractor in extractors.items():
            elapsed, feats[name] = time_extractor(extractor, audios, 16000)
            best[name] = min(best[name], elapsed)
    diff = max(
        float(np.abs(np.asarray(a)[: len(b)] - np.asarray(b)[: len(a)]).max())
        for a, b in zip(feats["kaldifeat"], feats["lhotse-Fbank"])
    )
    print(f"{len(cuts)} cuts, {seconds:.1f} s of audio, {args.threads} thread(s), best of {args.rounds} rounds")
    for name in extractors:
        print(f"  {name:13s} {best[name]:7.2f} s  {seconds / best[name]:8.0f} s of audio per second")
    print(f"  max |kaldifeat - lhotse Fbank| = {diff:.3g} (log-mel)")
    print(f"RATIO kaldifeat speed / lhotse Fbank speed = {best['lhotse-Fbank'] / best['kaldifeat']:.2f}")


if __name__ == "__main__":
    main()
