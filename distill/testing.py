"""Helpers for the project's tests (as lhotse has ``lhotse.testing``): tiny models, tiny
experiment configs on the tiny demo corpus, a test predictor, and running on one thread.

The tiny corpora themselves are pytest fixtures in ``tests/conftest.py`` (synthesized once
per test session); the ``one_cpu_thread`` fixture there wraps :func:`one_thread`.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator, List, Sequence, Tuple

import torch
from torch import nn

from distill.models.config import ModelConfig
from distill.models.decoder import Predictor
from distill.models.registry import build_transducer
from distill.models.transducer import Transducer
from distill.train.config import ExperimentConfig, load_config

#: Devices the model tests run on: the CPU, and the first GPU where there is one.
DEVICES: List[torch.device] = [torch.device("cpu")] + ([torch.device("cuda", 0)] if torch.cuda.is_available() else [])


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread inside the block. Tiny models run fastest on one thread; with 2
    shared cores, more threads can spin and slow a test down by orders of magnitude when the
    other core is busy."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


# ---------------------------------------------------------------------------------------
# Tiny models


def tiny_model_config(**kwargs) -> ModelConfig:
    """A model config small enough for unit tests on 2 CPU cores (20 features, vocabulary 8)."""
    values = dict(num_features=20, encoder_dim=32, num_encoder_layers=2, nhead=2, dim_feedforward=64,
                  cnn_module_kernel=3, decoder_dim=32, context_size=2, joiner_dim=32, dropout=0.0, vocab_size=8)
    values.update(kwargs)
    return ModelConfig(**values)


def tiny_model(device: torch.device, seed: int = 0, **kwargs) -> Transducer:
    """A tiny teacher-like transducer (:func:`tiny_model_config`) on ``device``."""
    torch.manual_seed(seed)
    return build_transducer(tiny_model_config(**kwargs)).to(device)


def tiny_student(device: torch.device, encoder: str, seed: int = 0, **kwargs) -> Transducer:
    """A tiny student transducer (``encoder`` encoder, LSTM predictor) on ``device``."""
    values = dict(encoder=encoder, decoder="lstm", subsampling_channels=8, tdnn_dilations=(1, 2, 3))
    values.update(kwargs)
    torch.manual_seed(seed)
    return build_transducer(tiny_model_config(**values)).to(device)


class GRUPredictor(Predictor):
    """A recurrent predictor with state (N, H), to check that the searches use only the
    Predictor interface."""

    def __init__(self, vocab_size: int, dim: int, blank_id: int = 0) -> None:
        super().__init__()
        self.vocab_size, self.blank_id, self.output_dim = vocab_size, blank_id, dim
        self.embedding = nn.Embedding(vocab_size, dim)
        self.cell = nn.GRUCell(dim, dim)

    def forward(self, y: torch.Tensor, need_pad: bool = True) -> torch.Tensor:
        h = self.init_state(y.size(0), y.device)
        outs = []
        for u in range(y.size(1)):
            out, h = self.step(y[:, u], h)
            outs.append(out)
        return torch.stack(outs, dim=1)

    def init_state(self, batch_size: int, device: torch.device) -> torch.Tensor:
        return torch.zeros(batch_size, self.output_dim, device=device)

    def step(self, tokens: torch.Tensor, state: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        h = self.cell(self.embedding(tokens), state)
        return h, h

    def merge_states(self, mask: torch.Tensor, new_state: torch.Tensor, old_state: torch.Tensor) -> torch.Tensor:
        return torch.where(mask.unsqueeze(1), new_state, old_state)

    def select_state(self, state: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return state.index_select(0, index)


# ---------------------------------------------------------------------------------------
# Tiny experiments on the tiny demo corpus

#: Overrides that make the teacher config a model of a few ten-thousand parameters.
TINY_MODEL = [
    "model.encoder_dim=32", "model.nhead=2", "model.num_encoder_layers=1", "model.dim_feedforward=64",
    "model.cnn_module_kernel=3", "model.subsampling_channels=8", "model.decoder_dim=32", "model.joiner_dim=32",
    "model.dropout=0.1",
]


def tiny_training_config(data: Path, exp_dir: Path, extra: Sequence[str] = ()) -> ExperimentConfig:
    """An experiment on the tiny corpus's stage 1-3 outputs (``data``: fbank/, lang_bpe_100/)
    that trains in seconds; ``extra`` are more ``section.key=value`` overrides."""
    overrides = TINY_MODEL + [
        f"data.train_cuts={data / 'fbank' / 'librispeech_cuts_train-clean-100.jsonl.gz'}",
        f"data.valid_cuts={data / 'fbank' / 'librispeech_cuts_dev-clean.jsonl.gz'}",
        f"data.lang_dir={data / 'lang_bpe_100'}",
        "data.max_duration=25", "data.num_buckets=2",
        "optim.base_lr=0.005", "optim.warmup_batches=2",
        "loss.model_warm_step=4",
        f"train.exp_dir={exp_dir}", "train.log_interval=1", "train.save_every_n=0", "train.num_epochs=1",
        "train.device=cpu",
    ]
    return load_config([], overrides + list(extra))


#: A recipe's ``conf/`` for the tiny TIMIT-layout corpus: a few thousand parameters each (the
#: recipe tests check that the stages connect, not accuracy).
TINY_LOOP = """
loss: {model_warm_step: 4}
data: {max_duration: 25, num_buckets: 2}
optim: {base_lr: 0.005, warmup_batches: 2}
train: {num_epochs: 2, log_interval: 1, save_every_n: 0, device: cpu, average_period: 1}
"""
TINY_RECIPE_CONFIGS = {
    "teacher.yaml": "model: {encoder_dim: 32, nhead: 2, num_encoder_layers: 1, dim_feedforward: 64, "
                    "cnn_module_kernel: 3, subsampling_channels: 8, decoder_dim: 32, joiner_dim: 32}" + TINY_LOOP,
    "student_rnn.yaml": "model: {encoder: lstm, encoder_dim: 16, num_encoder_layers: 1, dim_feedforward: 32, "
                        "subsampling_channels: 8, decoder: lstm, decoder_dim: 16, joiner_dim: 16}" + TINY_LOOP,
}
