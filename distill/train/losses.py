"""The training objectives: the plain pruned RNN-T loss, and that loss plus lattice-aware
distillation from a frozen teacher.

Each is a function ``(model, inputs, batch_idx_train) -> (loss, metrics, frames)`` where
``inputs`` is ``(x, x_lens, y)``, ``(x, x_lens, y, x_clean)`` (``x_clean``: the features
before augmentation, for a teacher that sees them) or ``(x, x_lens, y, x_clean, cut_ids)``
(the ids of the batch's rows, for a teacher cache), ``loss`` is summed over the batch (the
trainer divides by ``frames``) and ``metrics`` holds floats summed over the batch, for logging.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple, Union

import torch

from distill.losses.ctc_kd import ctc_kd, require_ctc_head
from distill.losses.lattice_kd import (
    EncoderOutput,
    KdConfig,
    nbest_kd,
    nbest_targets,
    pruned_lattice_kd,
    teacher_encoder_forward,
    teacher_forward,
)
from distill.losses.teacher_cache import TeacherEncoderCache
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
        x, x_lens, y = inputs[:3]
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


def distillation_loss_fn(
    teacher: Transducer, loss_config: LossConfig, kd_config: KdConfig, cache: Optional[TeacherEncoderCache] = None
) -> LossFn:
    """The student's pruned RNN-T loss plus ``kd.scale`` times the lattice distillation loss
    (plus ``kd.nbest_scale`` times the sequence-level term when ``kd.nbest`` > 0, and
    ``kd.ctc_scale`` times the frame-level term on the CTC heads when that is > 0).

    The teacher runs first, in eval mode without gradient, on the features ``kd.teacher_input``
    names, its encoder output delayed by ``kd.teacher_delay`` frames; its prune ranges and occupancies define where and how much to distill, and with
    ``kd.bounds: teacher`` the student's own pruned loss uses its bounds too. During the
    student's CTC warm-up the lattice terms are left out unless ``kd.during_ctc_warmup``, the
    CTC-head term unless either that or ``kd.ctc_during_warmup``; the teacher runs only when
    some term needs it. With a ``cache`` (and the cut ids in ``inputs``), the teacher's
    encoder output of a batch whose cuts it has seen is read from memory
    (:mod:`distill.losses.teacher_cache`; the caller checks that its input cannot change).
    """

    if kd_config.ctc_scale > 0:
        require_ctc_head(teacher, f"teacher in {kd_config.teacher_exp_dir}")
    # The teacher's CTC loss is never used (and a teacher without a CTC head has none).
    teacher_loss_config = dataclasses.replace(loss_config, ctc_scale=0.0, ctc_warm_step=0)

    def compute(model: torch.nn.Module, inputs: Tuple, batch_idx_train: int):
        x, x_lens, y = inputs[:3]
        x_clean = inputs[3] if len(inputs) > 3 else x
        cut_ids = inputs[4] if len(inputs) > 4 else None
        lattice = kd_config.during_ctc_warmup or not loss_config.ctc_only(batch_idx_train)
        frame_level = kd_config.ctc_scale > 0 and (lattice or kd_config.ctc_during_warmup)
        teacher_x = x_clean if kd_config.teacher_input == "clean" else x
        teacher_out = None
        if lattice:
            teacher_out = teacher_forward(
                teacher, teacher_x, x_lens, y, teacher_loss_config, kd_config.teacher_delay, cut_ids, cache
            )
        elif frame_level:
            teacher_out = teacher_encoder_forward(teacher, teacher_x, x_lens, kd_config.teacher_delay, cut_ids, cache)
        shared = lattice and kd_config.bounds == "teacher"
        out = model(
            x, x_lens, y, loss_config, warmup=loss_config.warmup(batch_idx_train),
            prune_ranges=teacher_out.ranges if shared else None,
        )
        loss = combine_losses(out, loss_config, batch_idx_train)
        metrics = {**rnnt_metrics(out, loss_config), "kd_loss": 0.0}
        if teacher_out is not None:
            kd, kd_metrics = distillation_terms(teacher, teacher_out, unwrap(model), out, loss_config, kd_config, batch_idx_train)
            loss = loss + kd
            metrics.update(kd_metrics)
        return loss, metrics, int(out.encoder_out_lens.sum())

    return compute


def distillation_terms(
    teacher: Transducer,
    teacher_out: Union[TransducerLossOutput, EncoderOutput],
    student: Transducer,
    student_out: TransducerLossOutput,
    loss_config: LossConfig,
    kd_config: KdConfig,
    batch_idx_train: int,
) -> Tuple[torch.Tensor, Dict[str, float]]:
    """The distillation terms added to the student's own loss, weighted by their ``kd`` scales:
    the lattice term, and the sequence-level and CTC-head terms when enabled. Given the
    teacher's encoder output alone (an :class:`EncoderOutput`: the CTC warm-up with
    ``kd.ctc_during_warmup``), the CTC-head term alone.

    Returns:
      ``(total, metrics)``: the weighted sum, and each term unweighted (``kd_loss``,
      ``nbest_loss``, ``ctc_kd_loss``) for logging.
    """
    total = student_out.encoder_out.new_zeros(())
    metrics = {"kd_loss": 0.0}
    if isinstance(teacher_out, TransducerLossOutput):  # the teacher's lattice: the lattice terms
        kd = pruned_lattice_kd(teacher_out, student, student_out, kd_config)
        metrics["kd_loss"] = float(kd)
        total = total + kd_config.scale * kd
        if kd_config.nbest > 0:
            hyps, weights = nbest_targets(teacher, teacher_out, kd_config.nbest, kd_config.nbest_beam)
            seq = nbest_kd(student, student_out, hyps, weights, loss_config, batch_idx_train)
            metrics["nbest_loss"] = float(seq)
            total = total + kd_config.nbest_scale * seq
    if kd_config.ctc_scale > 0:
        frame_kd = ctc_kd(teacher, teacher_out, student, student_out, kd_config.temperature)
        metrics["ctc_kd_loss"] = float(frame_kd)
        total = total + kd_config.ctc_scale * frame_kd
    return total, metrics


def make_loss_fn(
    loss_config: LossConfig, kd_config: KdConfig, device: torch.device, cache: Optional[TeacherEncoderCache] = None
) -> LossFn:
    """Distillation when ``kd.teacher_exp_dir`` is set (from ``cache`` where it can), else
    the plain transducer loss."""
    if kd_config.enabled:
        return distillation_loss_fn(load_teacher(kd_config, device), loss_config, kd_config, cache)
    return transducer_loss_fn(loss_config)
