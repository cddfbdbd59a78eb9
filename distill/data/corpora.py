"""The registry of corpus preparations: corpus name -> function writing its manifests.

A preparation takes ``(corpus_dir, parts, output_dir, num_jobs, **options)``, checks the
corpus, writes ``<name>_{recordings,supervisions}_<part>.jsonl.gz`` atomically into
``output_dir`` and returns their paths. ``options`` are the corpus's own settings, given as
``key=value`` strings by the recipe (``--prepare-opts "num_phones=48"`` for TIMIT). A new
corpus adds one entry here (see docs/new_corpus.md).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict

from distill.data.kaldi_dir import prepare_kaldi_manifests
from distill.data.librispeech import prepare_librispeech_manifests
from distill.data.timit import prepare_timit_manifests

Preparer = Callable[..., Dict[str, Dict[str, Path]]]

PREPARERS: Dict[str, Preparer] = {
    "kaldi": prepare_kaldi_manifests,  # any corpus given as Kaldi data dirs, one per part
    "librispeech": prepare_librispeech_manifests,
    "timit": prepare_timit_manifests,
}
