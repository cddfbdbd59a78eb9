#!/usr/bin/env python3
"""Diagnostic: read a part's sentences again with demo-corpus voices of your choice.

With training voices, this measures "new sentences, known voices", to set beside the part's
own error rate ("new sentences, new voices"): how much of the held-out gap is the voices
(distill/synth/reread.py). Score the result with local/decode.py --cuts <out-dir>/cuts_reread.jsonl.gz.

Usage:
  local/demo_reread.py --cuts data/fbank/librispeech_cuts_dev-clean.jsonl.gz --out-dir exp/reread_dev \
      --every 2 --voices espeak:en-us flite:awb festival:ked_diphone flite:kal16
"""
import argparse
from pathlib import Path

from lhotse import load_manifest_lazy

from distill.synth.reread import reread_cuts
from distill.utils.logging_setup import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cuts", type=Path, required=True, help="the cut manifest whose sentences are read")
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--voices", nargs="+", required=True,
                        help="engine:name[,pitch_cents,tempo], e.g. espeak:en-us flite:awb,250,1.08")
    parser.add_argument("--every", type=int, default=1, help="keep every n-th cut")
    args = parser.parse_args()
    setup_logging()
    if not args.cuts.is_file():
        parser.error(f"--cuts {args.cuts}: no such file (stage 2 writes data/fbank/<prefix>_cuts_<part>.jsonl.gz)")
    try:
        out = reread_cuts(load_manifest_lazy(args.cuts), args.voices, args.out_dir, every=args.every)
    except ValueError as err:
        parser.error(str(err))
    print(out)


if __name__ == "__main__":
    main()
