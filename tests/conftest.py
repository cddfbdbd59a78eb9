"""Shared fixtures: a tiny synthesized demo corpus (made once per test session)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from distill.synth.librispeech_demo import ALL_PARTS, DemoCorpusConfig, generate_demo_corpus

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


@pytest.fixture(scope="session")
def tiny_data_dir(tiny_corpus_dl_dir, tmp_path_factory) -> Path:
    """Stages 1-3 run on the tiny corpus: ``manifests/``, ``fbank/`` and ``lang_bpe_100/``.
    Read-only for tests."""
    from distill.data.corpora.librispeech import prepare_librispeech_manifests
    from distill.data.features import compute_fbank
    from distill.lang.prepare_lang import prepare_lang_bpe

    data = tmp_path_factory.mktemp("tiny_data")
    parts = list(ALL_PARTS)
    prepare_librispeech_manifests(tiny_corpus_dl_dir / "LibriSpeech", parts, data / "manifests")
    compute_fbank(data / "manifests", "librispeech", parts, data / "fbank")
    prepare_lang_bpe(data / "manifests" / "librispeech_supervisions_train-clean-100.jsonl.gz", data / "lang_bpe_100", 100)
    return data


@pytest.fixture(scope="session")
def tiny_teacher_exp(tiny_data_dir, tmp_path_factory) -> Path:
    """A tiny transducer trained for 4 epochs on the tiny corpus (seconds). Read-only."""
    import torch

    from distill.testing import tiny_training_config
    from distill.train.trainer import Trainer

    exp = tmp_path_factory.mktemp("tiny_teacher")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    Trainer(tiny_training_config(tiny_data_dir, exp, ["train.num_epochs=4"])).train()
    torch.set_num_threads(threads)
    return exp


@pytest.fixture
def one_cpu_thread():
    """torch on one thread for the test (:func:`distill.testing.one_thread`); modules of tiny
    models use it for every test with ``pytestmark = pytest.mark.usefixtures("one_cpu_thread")``."""
    from distill.testing import one_thread

    with one_thread():
        yield
