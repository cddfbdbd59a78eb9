"""The registry of corpus preparations: corpus name -> function writing its manifests.

A preparation takes ``(corpus_dir, parts, output_dir, num_jobs)``, checks the corpus, writes
``<name>_{recordings,supervisions}_<part>.jsonl.gz`` atomically into ``output_dir`` and
returns their paths. A new corpus adds one entry here (see docs/new_corpus.md).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, Sequence

from distill.data.librispeech import prepare_librispeech_manifests

Preparer = Callable[[Path, Sequence[str], Path, int], Dict[str, Dict[str, Path]]]

PREPARERS: Dict[str, Preparer] = {
    "librispeech": prepare_librispeech_manifests,
}
