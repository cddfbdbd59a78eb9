#!/usr/bin/env python3
"""Stage 0 of the TIMIT recipe: check that TIMIT is under --corpus-dir (it is licensed and never
downloaded), or (--demo) synthesize the offline TIMIT-layout demo corpus there.

Usage:
  local/get_timit.py --corpus-dir /data/TIMIT            # holds data/TRAIN, data/TEST
  local/get_timit.py --corpus-dir download/TIMIT --demo --demo-size tiny --seed 13
"""
import argparse
from pathlib import Path

from distill.data.corpora import run_stage0, stage0_parser
from distill.data.timit import locate_timit
from distill.synth.timit_demo import TimitDemoConfig, generate_timit_demo


def main() -> None:
    parser = stage0_parser(
        __doc__, "the TIMIT folder (holding data/TRAIN, data/TEST); TIMIT is never downloaded",
        "default: about 1 h of training audio; tiny: about 2 min",
    )
    args = parser.parse_args()
    if args.demo and args.corpus_dir.name != "TIMIT":
        parser.error(f"--corpus-dir {args.corpus_dir}: the demo corpus is written to a folder named TIMIT")
    run_stage0(lambda: get_corpus(args))


def get_corpus(args: argparse.Namespace) -> Path:
    """Synthesize the TIMIT-layout demo corpus, or check that TIMIT is there."""
    if args.demo:
        config = TimitDemoConfig.tiny(args.seed) if args.demo_size == "tiny" else TimitDemoConfig(seed=args.seed)
        return generate_timit_demo(args.corpus_dir.parent, config, num_jobs=args.num_jobs)
    return locate_timit(args.corpus_dir)


if __name__ == "__main__":
    main()
