#!/usr/bin/env python3
"""Export a part's lhotse manifests (stage 1's output) as a Kaldi data directory: wav.scp, text,
utt2spk, spk2utt, reco2dur, utt2dur and segments (when recordings hold several utterances),
sorted as Kaldi wants, written beside --out-dir and renamed into place.

Usage:
  local/export_kaldi.py --manifest-dir data/manifests --prefix librispeech --part dev-clean \
      --out-dir data/kaldi/dev-clean
"""
import argparse
import logging
import sys
from pathlib import Path

from distill.data.kaldi_dir import export_manifests
from distill.utils.logging_setup import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest-dir", type=Path, required=True, help="holds <prefix>_{recordings,supervisions}_<part>.jsonl.gz")
    parser.add_argument("--prefix", required=True, help="the manifests' prefix, e.g. librispeech, timit, kaldi")
    parser.add_argument("--part", required=True)
    parser.add_argument("--out-dir", type=Path, required=True, help="the Kaldi data directory to (re)create")
    args = parser.parse_args()
    setup_logging()
    try:
        export_manifests(args.manifest_dir, args.prefix, args.part, args.out_dir)
    except (FileNotFoundError, ValueError) as err:
        logging.error(str(err))
        sys.exit(1)


if __name__ == "__main__":
    main()
