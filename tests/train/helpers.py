"""A tiny experiment config on the tiny demo data, for training tests."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from distill.train.config import ExperimentConfig, load_config

TINY_MODEL = [
    "model.encoder_dim=32", "model.nhead=2", "model.num_encoder_layers=1", "model.dim_feedforward=64",
    "model.cnn_module_kernel=3", "model.subsampling_channels=8", "model.decoder_dim=32", "model.joiner_dim=32",
    "model.dropout=0.1",
]


def tiny_config(data: Path, exp_dir: Path, extra: Sequence[str] = ()) -> ExperimentConfig:
    """A model of a few ten-thousand parameters trained on the tiny corpus in seconds."""
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
