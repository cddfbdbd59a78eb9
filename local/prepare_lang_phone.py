#!/usr/bin/env python3
"""Stage 3 for phone units: the phone lang dir: phone inventory (phones.txt, <blk>=0), identity
lexicon (each phone is a "word" pronounced as itself; L, L_disambig), a Kneser-Ney phone
n-gram LM (ARPA and G, via kaldilm) and the LG decoding graph, from the training part's phone
transcripts. Skips when the lang dir is complete with the same settings.

Usage:
  local/prepare_lang_phone.py --supervisions data/manifests/timit_supervisions_TRAIN.jsonl.gz \
      --lang-dir data/lang_phone --lm-order 2 --phone-set data/manifests/timit_phones.txt
"""
import argparse
import logging
import sys
from pathlib import Path

from distill.lang.prepare_lang import prepare_lang_phone
from distill.utils.done_marker import SettingsChangedError
from distill.utils.logging_setup import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--supervisions", type=Path, required=True,
                        help="supervision manifest of the training part, texts are phone sequences (or a .txt)")
    parser.add_argument("--lang-dir", type=Path, required=True)
    parser.add_argument("--lm-order", type=int, default=2, help="order of the phone n-gram LM")
    parser.add_argument("--phone-set", type=Path, help="the corpus's phone set, one per line (default: the training phones)")
    args = parser.parse_args()
    setup_logging()
    try:
        prepare_lang_phone(args.supervisions, args.lang_dir, lm_order=args.lm_order, phone_set_file=args.phone_set)
    except (FileNotFoundError, ValueError, SettingsChangedError) as err:
        logging.error(str(err))
        sys.exit(1)


if __name__ == "__main__":
    main()
