#!/usr/bin/env python3
"""Stage 0 of the TIMIT recipe: check that TIMIT is under --corpus-dir (it is licensed and never
downloaded), or (--demo) synthesize the offline TIMIT-layout demo corpus there.

Usage:
  local/get_timit.py --corpus-dir /data/TIMIT            # holds data/TRAIN, data/TEST
  local/get_timit.py --corpus-dir download/TIMIT --demo --demo-size tiny --seed 13
"""
import argparse
import logging
import sys
from pathlib import Path

from distill.data.errors import CorpusError
from distill.data.timit import locate_timit
from distill.data.timit_demo import TimitDemoConfig, generate_timit_demo
from distill.utils.logging_setup import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus-dir", type=Path, required=True, help="the TIMIT folder (holding data/TRAIN, data/TEST)")
    parser.add_argument("--parts", nargs="+", default=["TRAIN", "DEV", "TEST"], help="(all come from data/TRAIN and data/TEST)")
    parser.add_argument("--no-download", action="store_true", help="accepted for the shared stage 0; TIMIT is never downloaded")
    parser.add_argument("--demo", action="store_true", help="synthesize the offline TIMIT-layout demo corpus")
    parser.add_argument("--demo-size", choices=["default", "tiny"], default="default",
                        help="default: about 1 h of training audio; tiny: about 2 min")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--num-jobs", type=int, default=2)
    args = parser.parse_args()
    setup_logging()
    try:
        if args.demo:
            if args.corpus_dir.name != "TIMIT":
                parser.error(f"--corpus-dir {args.corpus_dir}: the demo corpus is written to a folder named TIMIT")
            config = TimitDemoConfig.tiny(args.seed) if args.demo_size == "tiny" else TimitDemoConfig(seed=args.seed)
            corpus = generate_timit_demo(args.corpus_dir.parent, config, num_jobs=args.num_jobs)
        else:
            corpus = locate_timit(args.corpus_dir)
    except CorpusError as err:
        logging.error(str(err))
        sys.exit(1)
    logging.info(f"Corpus ready: {corpus}")


if __name__ == "__main__":
    main()
