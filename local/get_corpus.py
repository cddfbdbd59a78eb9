#!/usr/bin/env python3
"""Stage 0 of every recipe: get the corpus NAME (a module of distill/data/corpora/) into
--corpus-dir: locate it, download it where its licence allows and the network does, or
(--demo) synthesize its offline demo corpus there.

Usage:
  local/get_corpus.py --corpus librispeech --corpus-dir download/LibriSpeech --parts train-clean-100 dev-clean
  local/get_corpus.py --corpus timit --corpus-dir download/TIMIT --parts TRAIN DEV TEST --demo --demo-size tiny
  local/get_corpus.py --corpus kaldi --corpus-dir /data/mycorpus/data --parts train dev test
The corpus's own options (e.g. librispeech's --demo-natural-share) are listed by
`local/get_corpus.py --corpus NAME --help`.
"""
import argparse
import sys

from distill.data.corpora import CORPORA, corpus_named, run_stage0, stage0_parser


def main() -> None:
    # The corpus first: its module adds its own options to the parser.
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--corpus")
    name = first.parse_known_args()[0].corpus
    if name not in CORPORA:
        print(f"{sys.argv[0]}: --corpus NAME is required, one of: {', '.join(sorted(CORPORA))} (got {name!r})",
              file=sys.stderr)
        sys.exit(2)
    corpus = corpus_named(name)
    parser = stage0_parser(__doc__, corpus.corpus_dir_help, corpus.demo_help)
    parser.add_argument("--corpus", choices=sorted(CORPORA), required=True)
    if corpus.add_arguments:
        corpus.add_arguments(parser)
    args = parser.parse_args()
    if corpus.check_arguments:
        corpus.check_arguments(parser, args)
    run_stage0(lambda: corpus.get(args))


if __name__ == "__main__":
    main()
