#!/usr/bin/env python3
"""Decode cut sets with a trained transducer (greedy search) and print/write the WER.

Usage:
  local/decode.py --exp-dir exp/teacher --epoch 10 --avg 3 --lang-dir data/lang_bpe_500 \
      --cuts data/fbank/librispeech_cuts_test-clean.jsonl.gz
Writes <exp-dir>/greedy/recogs-<part>-epoch-<E>-avg-<A>.txt and wer-....txt.
"""
import argparse
import logging
from pathlib import Path

import torch

from distill.data.manifests import load_cuts
from distill.decode.decode_cuts import decode_cuts
from distill.train.checkpoint import last_epoch, load_averaged_model
from distill.decode.scoring import word_errors
from distill.models.transducer import num_params
from distill.train.data import load_bpe
from distill.utils.io import atomic_write_text
from distill.utils.logging_setup import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp-dir", type=Path, required=True)
    parser.add_argument("--epoch", type=int, required=True, help="0: the last epoch in --exp-dir")
    parser.add_argument("--avg", type=int, default=1)
    parser.add_argument("--lang-dir", type=Path, required=True)
    parser.add_argument("--cuts", type=Path, nargs="+", required=True)
    parser.add_argument("--max-duration", type=float, default=300.0)
    args = parser.parse_args()
    setup_logging(args.exp_dir / "log" / "decode.log")

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    sp = load_bpe(args.lang_dir)
    epoch = args.epoch or last_epoch(args.exp_dir)
    model = load_averaged_model(args.exp_dir, epoch, args.avg, device)
    out_dir = args.exp_dir / "greedy"
    for path in args.cuts:
        part = path.name.replace(".jsonl.gz", "").split("_cuts_")[-1]
        results, elapsed = decode_cuts(model, load_cuts(path), sp, args.max_duration)
        stats = word_errors([(ref, hyp) for _, ref, hyp in results])
        tag = f"{part}-epoch-{epoch}-avg-{args.avg}"
        atomic_write_text(out_dir / f"recogs-{tag}.txt", "".join(f"{i}:\tref={r}\n{i}:\thyp={h}\n" for i, r, h in results))
        atomic_write_text(out_dir / f"wer-{tag}.txt", f"{stats}\n")
        logging.info(f"{part}: greedy {stats} ({num_params(model):,} params, {elapsed:.1f} s)")


if __name__ == "__main__":
    main()
