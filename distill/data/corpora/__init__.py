"""The corpora: one module each in this package, registering itself here.

A corpus module (``librispeech.py``, ``timit.py``, ``kaldi.py``; docs/new_corpus.md says how
to write one) holds its two steps and registers a :class:`Corpus`:

* stage 0, ``get(args)``: locate the corpus at ``--corpus-dir`` (download it where its licence
  allows and the network does), or, with ``--demo``, synthesize its offline demo corpus;
  ``add_arguments(parser)`` adds the corpus's own stage-0 options and ``check_arguments``
  refuses bad ones before anything is done (``local/get_corpus.py --corpus NAME`` runs it);
* stage 1, ``prepare(corpus_dir, parts, output_dir, num_jobs, **options)``: check the corpus,
  write ``<name>_{recordings,supervisions}_<part>.jsonl.gz`` atomically into ``output_dir`` and
  return their paths; ``options`` are the corpus's own settings, ``key=value`` strings from
  the recipe (``--prepare-opts "num_phones=48"`` for TIMIT; ``local/prepare_manifests.py``).
"""
from __future__ import annotations

import argparse
import inspect
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Mapping, Optional

from distill.data.errors import CorpusError
from distill.utils.logging_setup import setup_logging

Preparer = Callable[..., Dict[str, Dict[str, Path]]]


@dataclass(frozen=True)
class Corpus:
    """A corpus's steps (see the module docstring)."""

    name: str
    prepare: Preparer
    get: Callable[[argparse.Namespace], Path]
    corpus_dir_help: str
    demo_help: str
    add_arguments: Optional[Callable[[argparse.ArgumentParser], None]] = None
    check_arguments: Optional[Callable[[argparse.ArgumentParser, argparse.Namespace], None]] = None


#: Every registered corpus, by name.
CORPORA: Dict[str, Corpus] = {}


def register(corpus: Corpus) -> Corpus:
    """Add ``corpus`` to :data:`CORPORA` (each corpus module calls it once)."""
    if corpus.name in CORPORA:
        raise ValueError(f"Corpus {corpus.name!r} is registered twice")
    CORPORA[corpus.name] = corpus
    return corpus


def corpus_named(name: str) -> Corpus:
    if name not in CORPORA:
        raise ValueError(f"Unknown corpus {name!r}; the corpora are: {', '.join(sorted(CORPORA))} "
                         "(a new one is a module in distill/data/corpora/, docs/new_corpus.md)")
    return CORPORA[name]


def stage0_parser(description: str, corpus_dir_help: str, demo_help: str) -> argparse.ArgumentParser:
    """The arguments every corpus's stage 0 takes from ``local/asr.sh``:
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
    """Run a stage-0 step: a ``CorpusError`` is logged and exits with status 1."""
    setup_logging()
    try:
        corpus = get_corpus()
    except CorpusError as err:
        logging.error(str(err))
        sys.exit(1)
    logging.info(f"Corpus ready: {corpus}")


def check_options(corpus: str, options: Mapping[str, str]) -> None:
    """Raise ``ValueError`` naming any option that ``corpus``'s preparation does not take."""
    parameters = inspect.signature(corpus_named(corpus).prepare).parameters
    fixed = ("corpus_dir", "parts", "output_dir", "num_jobs")
    known = [name for name in parameters if name not in fixed]
    unknown = [key for key in options if key not in known]
    if unknown:
        raise ValueError(f"Corpus {corpus} has no preparation option {', '.join(unknown)} (it takes: {', '.join(known) or 'none'})")


# The corpus modules register themselves on import (after the registry above exists).
from distill.data.corpora import kaldi, librispeech, timit  # noqa: E402,F401
