#!/usr/bin/env python3
"""Stage 1: lhotse manifests of a corpus's parts, through lhotse's own preparation, checked
before anything is written.

Usage:
  local/prepare_manifests.py --corpus librispeech --corpus-dir download/LibriSpeech \
      --parts train-clean-100 dev-clean test-clean --output-dir data/manifests
"""
import argparse
import logging
import sys
from pathlib import Path

from distill.data.corpora import CORPORA, check_options
from distill.data.errors import CorpusError
from distill.utils.logging_setup import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", choices=sorted(CORPORA), required=True)
    parser.add_argument("--corpus-dir", type=Path, required=True)
    parser.add_argument("--parts", nargs="+", required=True)
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--num-jobs", type=int, default=2)
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting of the corpus's preparation, e.g. num_phones=48 for timit (repeatable)")
    args = parser.parse_args()
    setup_logging()
    options = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--option {item!r}: expected KEY=VALUE")
        options[key] = value
    try:
        check_options(args.corpus, options)
        CORPORA[args.corpus].prepare(args.corpus_dir, args.parts, args.output_dir, args.num_jobs, **options)
    except (CorpusError, ValueError) as err:
        logging.error(str(err))
        sys.exit(1)


if __name__ == "__main__":
    main()
