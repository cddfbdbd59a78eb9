"""Shared fixtures: a tiny synthesized demo corpus (made once per test session)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from distill.data.demo_corpus import DemoCorpusConfig, generate_demo_corpus

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_corpus_dl_dir(tmp_path_factory) -> Path:
    """A download dir holding ``LibriSpeech/`` with a tiny demo corpus. Do not modify it:
    copy it with :func:`copy_corpus` first."""
    dl_dir = tmp_path_factory.mktemp("demo_dl")
    generate_demo_corpus(dl_dir, DemoCorpusConfig.tiny(seed=7), num_jobs=2)
    return dl_dir


@pytest.fixture
def corpus_copy(tiny_corpus_dl_dir, tmp_path) -> Path:
    """A private, modifiable copy of the tiny corpus; returns its ``LibriSpeech`` dir."""
    dest = tmp_path / "dl" / "LibriSpeech"
    shutil.copytree(tiny_corpus_dl_dir / "LibriSpeech", dest)
    return dest
