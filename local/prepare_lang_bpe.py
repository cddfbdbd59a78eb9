#!/usr/bin/env python3
"""Stage 3: the BPE lang dir: sentencepiece BPE model, k2 lexicon (L, L_disambig), a
Kneser-Ney word n-gram LM (ARPA and G) and the LG decoding graph, from the training
transcripts. Skips when the lang dir is complete with the same settings.

Usage:
  local/prepare_lang_bpe.py \
      --supervisions data/manifests/librispeech_supervisions_train-clean-100.jsonl.gz \
      --lang-dir data/lang_bpe_500 --vocab-size 500 --lm-order 3

Outputs (in --lang-dir): transcript_words.txt, bpe.model, tokens.txt, words.txt,
lexicon.txt, lexicon_disambig.txt, L.pt, L_disambig.pt, lm_<n>gram.arpa,
G_<n>_gram.fst.txt, LG.pt. A model's vocabulary size is that of bpe.model
(sp.get_piece_size()): tokens.txt also lists the disambiguation tokens #0, #1, ...
"""
import argparse
import logging
import sys
from pathlib import Path

from distill.lang.prepare_lang import prepare_lang_bpe
from distill.utils.done_marker import SettingsChangedError
from distill.utils.logging_setup import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--supervisions", type=Path, required=True,
                        help="lhotse supervision manifest of the training part (or a .txt of transcripts)")
    parser.add_argument("--lang-dir", type=Path, required=True)
    parser.add_argument("--vocab-size", type=int, required=True, help="number of BPE pieces")
    parser.add_argument("--lm-order", type=int, default=3, help="order of the word n-gram LM")
    args = parser.parse_args()
    setup_logging()
    try:
        prepare_lang_bpe(args.supervisions, args.lang_dir, args.vocab_size, lm_order=args.lm_order)
    except (FileNotFoundError, ValueError, SettingsChangedError) as err:
        logging.error(str(err))
        sys.exit(1)


if __name__ == "__main__":
    main()
