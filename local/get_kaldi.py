#!/usr/bin/env python3
"""Stage 0 for a corpus in Kaldi's format: check that --corpus-dir holds a Kaldi data
directory per part (<corpus-dir>/<part>/wav.scp, text, utt2spk, optional segments), or
(--demo) synthesize the Kaldi-format demo corpus there. Nothing is downloaded; stage 1
(distill.data.kaldi_dir) validates the directories in full.

Usage:
  local/get_kaldi.py --corpus-dir /data/mycorpus/data --parts train dev test
  local/get_kaldi.py --corpus-dir download/kaldi_demo/data --demo --demo-size tiny
"""
import argparse
from pathlib import Path

from distill.data.corpora import run_stage0, stage0_parser
from distill.data.kaldi_dir import locate_kaldi_dirs
from distill.synth.kaldi_demo import CORPUS_NAME, generate_kaldi_demo, small_config, tiny_config


def main() -> None:
    parser = stage0_parser(
        __doc__, "holds <part>/wav.scp, <part>/text, ... (nothing is downloaded)",
        "default: about 20 min of training audio; tiny: about 2 min",
    )
    args = parser.parse_args()
    if args.demo and args.corpus_dir.parts[-2:] != (CORPUS_NAME, "data"):
        parser.error(f"--corpus-dir {args.corpus_dir}: the demo corpus is written to <dir>/{CORPUS_NAME}/data")
    run_stage0(lambda: get_corpus(args))


def get_corpus(args: argparse.Namespace) -> Path:
    """Synthesize the Kaldi-format demo corpus if asked, then check the data dirs."""
    if args.demo:
        config = tiny_config(args.seed) if args.demo_size == "tiny" else small_config(args.seed)
        generate_kaldi_demo(args.corpus_dir.parent.parent, config, num_jobs=args.num_jobs)
    locate_kaldi_dirs(args.corpus_dir, args.parts)
    return args.corpus_dir


if __name__ == "__main__":
    main()
