#!/usr/bin/env python3
"""Stage 0 of the LibriSpeech recipe: locate the corpus under --dl-dir, download it when it
is missing and the network allows, or (--demo) synthesize the offline demo corpus.

Usage:
  local/get_librispeech.py --corpus-dir download/LibriSpeech --parts train-clean-100 dev-clean dev-other test-clean test-other
  local/get_librispeech.py --corpus-dir download/LibriSpeech --demo --demo-size tiny --seed 13
A download (lhotse's) goes into the folder above --corpus-dir, which must be named LibriSpeech.
"""
import argparse
import dataclasses
from pathlib import Path

from distill.data.corpora import run_stage0, stage0_parser
from distill.data.librispeech import locate_librispeech
from distill.synth.librispeech_demo import ALL_PARTS, CONDITIONS, DemoCorpusConfig, generate_demo_corpus


def main() -> None:
    parser = stage0_parser(
        __doc__, "the LibriSpeech folder (<dl-dir>/LibriSpeech)",
        "default: about 7.5 h of training audio; tiny: about 3 min",
    )
    parser.add_argument("--demo-train-minutes", type=float, default=None,
                        help="override the demo corpus's training audio (minutes)")
    parser.add_argument("--demo-natural-share", type=float, default=None,
                        help="share of the demo corpus's training sentences read by natural-sounding "
                             "voices (default: an even deal over the speakers)")
    parser.add_argument("--demo-extra-train-voices", nargs="+", default=None, metavar="ENGINE:NAME",
                        help="more training voices for the demo corpus, e.g. piper:joe (default: none)")
    args = parser.parse_args()
    if args.corpus_dir.name != "LibriSpeech":
        parser.error(f"--corpus-dir {args.corpus_dir}: LibriSpeech's layout (and lhotse's download) "
                     "puts the corpus in a folder named LibriSpeech")
    if args.demo_extra_train_voices:
        try:  # a bad or held-out voice: a usage error, before anything is synthesized
            DemoCorpusConfig(extra_train_voices=tuple(args.demo_extra_train_voices))
        except ValueError as err:
            parser.error(f"--demo-extra-train-voices: {err}")
    if args.demo and not set(args.parts) <= set(ALL_PARTS):
        parser.error(f"--parts {' '.join(args.parts)}: the demo corpus has the parts {' '.join(ALL_PARTS)}")
    run_stage0(lambda: get_corpus(args))


def get_corpus(args: argparse.Namespace) -> Path:
    """Synthesize the demo corpus, or locate (and download) LibriSpeech."""
    dl_dir = args.corpus_dir.parent
    if args.demo:
        config = DemoCorpusConfig.tiny(args.seed) if args.demo_size == "tiny" else DemoCorpusConfig(seed=args.seed)
        if args.demo_train_minutes is not None:
            config.train_minutes = args.demo_train_minutes
        if args.demo_natural_share is not None:
            config.natural_share = args.demo_natural_share
        if args.demo_extra_train_voices:
            config = dataclasses.replace(config, extra_train_voices=tuple(args.demo_extra_train_voices))
        # The held-out conditions the recipe asks for (its --dev-parts/--test-parts).
        conditions = tuple(c for c, parts in CONDITIONS.items() if set(parts) & set(args.parts))
        config = dataclasses.replace(config, conditions=conditions or config.conditions)
        return generate_demo_corpus(dl_dir, config, num_jobs=args.num_jobs)
    return locate_librispeech(dl_dir, args.parts, download=not args.no_download)


if __name__ == "__main__":
    main()
