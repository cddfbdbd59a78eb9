#!/usr/bin/env python3
"""Stage 2: 80-dim fbank features (kaldifeat through lhotse) stored with lilcom chunky
storage, with optional 0.9/1.1 speed perturbation of the training part.

Usage:
  local/compute_fbank.py --manifest-dir data/manifests --prefix librispeech \
      --parts train-clean-100 dev-clean test-clean --output-dir data/fbank \
      --speed-perturb-parts train-clean-100
"""
import argparse
from pathlib import Path

from distill.data.features import EXTRACTORS, compute_fbank
from distill.utils.logging_setup import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest-dir", type=Path, required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--parts", nargs="+", required=True)
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--speed-perturb-parts", nargs="*", default=[])
    parser.add_argument("--extractor", choices=EXTRACTORS, default="kaldifeat")
    parser.add_argument("--num-jobs", type=int, default=1)
    args = parser.parse_args()
    setup_logging()
    compute_fbank(args.manifest_dir, args.prefix, args.parts, args.output_dir,
                  speed_perturb_parts=args.speed_perturb_parts, extractor_name=args.extractor,
                  num_jobs=args.num_jobs)


if __name__ == "__main__":
    main()
