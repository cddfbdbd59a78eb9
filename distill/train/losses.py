"""The training objectives: the plain pruned RNN-T loss, and that loss plus lattice-aware
distillation from a frozen teacher.

Each is a function ``(model, (x, x_lens, y), batch_idx_train) -> (loss, metrics, frames)``
where ``loss`` is summed over the batch (the trainer divides by ``frames``) and ``metrics``
holds floats summed over the batch, for logging.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Callable, Dict, Tuple

import torch

from distill.losses.lattice_kd import KdConfig, pruned_lattice_kd
from distill.models.config import LossConfig
from distill.models.transducer import Transducer, TransducerLossOutput, combine_losses, num_params
from distill.train.checkpoint import last_epoch, load_averaged_model

LossFn = Callable[[torch.nn.Module, Tuple, int], Tuple[torch.Tensor, Dict[str, float], int]]


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DDP wrapper (or the model itself)."""
    return model.module if hasattr(model, "module") else model


def rnnt_metrics(out: TransducerLossOutput, loss_config: LossConfig) -> Dict[str, float]:
    """The summed loss terms of a transducer output, for logging."""
    metrics = {"simple_loss": float(out.simple_loss), "pruned_loss": float(out.pruned_loss)}
    if loss_config.uses_ctc:
        metrics["ctc_loss"] = float(out.ctc_loss)
    return metrics


def transducer_loss_fn(loss_config: LossConfig) -> LossFn:
    """The pruned RNN-T loss with its warm-up schedule (teacher; students alone)."""

    def compute(model: torch.nn.Module, inputs: Tuple, batch_idx_train: int):
        x, x_lens, y = inputs
        out = model(x, x_lens, y, loss_config, warmup=loss_config.warmup(batch_idx_train))
        loss = combine_losses(out, loss_config, batch_idx_train)
        metrics = rnnt_metrics(out, loss_config)
        return loss, metrics, int(out.encoder_out_lens.sum())

    return compute


def load_teacher(kd_config: KdConfig, device: torch.device) -> Transducer:
    """The frozen teacher: averaged checkpoint, eval mode, no gradients."""
    exp_dir = Path(kd_config.teacher_exp_dir)
    epoch = kd_config.teacher_epoch or last_epoch(exp_dir)
    teacher = load_averaged_model(exp_dir, epoch, kd_config.teacher_avg, device)
    for p in teacher.parameters():
        p.requires_grad_(False)
    logging.info(f"Teacher: {exp_dir} epoch {epoch} avg {kd_config.teacher_avg}, {num_params(teacher):,} parameters")
    return teacher


def distillation_loss_fn(teacher: Transducer, loss_config: LossConfig, kd_config: KdConfig) -> LossFn:
    """The student's pruned RNN-T loss plus ``kd.scale`` times the lattice distillation loss.

    The teacher sees the same (augmented) features as the student, runs in eval mode without
    gradient, and its prune ranges and occupancies define where and how much to distill.
    During the student's CTC warm-up the term is left out (and the teacher not run) unless
    ``kd.during_ctc_warmup``.
    """

    # The teacher's CTC loss is never used (and a teacher without a CTC head has none).
    teacher_loss_config = dataclasses.replace(loss_config, ctc_scale=0.0, ctc_warm_step=0)

    def compute(model: torch.nn.Module, inputs: Tuple, batch_idx_train: int):
        x, x_lens, y = inputs
        out = model(x, x_lens, y, loss_config, warmup=loss_config.warmup(batch_idx_train))
        loss = combine_losses(out, loss_config, batch_idx_train)
        metrics = {**rnnt_metrics(out, loss_config), "kd_loss": 0.0}
        if kd_config.during_ctc_warmup or not loss_config.ctc_only(batch_idx_train):
            with torch.no_grad():
                teacher_out = teacher(x, x_lens, y, teacher_loss_config)
            kd = pruned_lattice_kd(teacher_out, unwrap(model), out, kd_config)
            metrics["kd_loss"] = float(kd)
            loss = loss + kd_config.scale * kd
        return loss, metrics, int(out.encoder_out_lens.sum())

    return compute


def make_loss_fn(loss_config: LossConfig, kd_config: KdConfig, device: torch.device) -> LossFn:
    """Distillation when ``kd.teacher_exp_dir`` is set, else the plain transducer loss."""
    if kd_config.enabled:
        return distillation_loss_fn(load_teacher(kd_config, device), loss_config, kd_config)
    return transducer_loss_fn(loss_config)
