"""The registry of corpus preparations: corpus name -> function writing its manifests.

A preparation takes ``(corpus_dir, parts, output_dir, num_jobs, **options)``, checks the
corpus, writes ``<name>_{recordings,supervisions}_<part>.jsonl.gz`` atomically into
``output_dir`` and returns their paths. ``options`` are the corpus's own settings, given as
``key=value`` strings by the recipe (``--prepare-opts "num_phones=48"`` for TIMIT). A new
corpus adds one entry here (see docs/new_corpus.md).
"""
from __future__ import annotations

import argparse
import inspect
import logging
import sys
from pathlib import Path
from typing import Callable, Dict, Mapping

from distill.data.kaldi_dir import prepare_kaldi_manifests
from distill.data.librispeech import prepare_librispeech_manifests
from distill.data.errors import CorpusError
from distill.data.timit import prepare_timit_manifests
from distill.utils.logging_setup import setup_logging

Preparer = Callable[..., Dict[str, Dict[str, Path]]]

PREPARERS: Dict[str, Preparer] = {
    "kaldi": prepare_kaldi_manifests,  # any corpus given as Kaldi data dirs, one per part
    "librispeech": prepare_librispeech_manifests,
    "timit": prepare_timit_manifests,
}


def stage0_parser(description: str, corpus_dir_help: str, demo_help: str) -> argparse.ArgumentParser:
    """The arguments every ``local/get_<corpus>.py`` (stage 0) takes from ``local/asr.sh``:
    ``--corpus-dir --parts --no-download --demo --demo-size --seed --num-jobs``."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus-dir", type=Path, required=True, help=corpus_dir_help)
    parser.add_argument("--parts", nargs="+", required=True)
    parser.add_argument("--no-download", action="store_true", help="never try the network")
    parser.add_argument("--demo", action="store_true", help="synthesize the corpus's offline demo corpus instead")
    parser.add_argument("--demo-size", choices=["default", "tiny"], default="default", help=demo_help)
    parser.add_argument("--seed", type=int, default=13, help="of the demo corpus")
    parser.add_argument("--num-jobs", type=int, default=2)
    return parser


def run_stage0(get_corpus: Callable[[], Path]) -> None:
    """Run a stage-0 script's work: a ``CorpusError`` is logged and exits with status 1."""
    setup_logging()
    try:
        corpus = get_corpus()
    except CorpusError as err:
        logging.error(str(err))
        sys.exit(1)
    logging.info(f"Corpus ready: {corpus}")


def check_options(corpus: str, options: Mapping[str, str]) -> None:
    """Raise ``ValueError`` naming any option that ``corpus``'s preparation does not take."""
    parameters = inspect.signature(PREPARERS[corpus]).parameters
    fixed = ("corpus_dir", "parts", "output_dir", "num_jobs")
    known = [name for name in parameters if name not in fixed]
    unknown = [key for key in options if key not in known]
    if unknown:
        raise ValueError(f"Corpus {corpus} has no preparation option {', '.join(unknown)} (it takes: {', '.join(known) or 'none'})")
