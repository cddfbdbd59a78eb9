"""A running average of the model's weights, kept during training (icefall's ``model_avg``).

Averaging the last epoch checkpoints (``--avg N``) averages N points of the trajectory.
Keeping a running mean of the weights, sampled every ``train.average_period`` batches, averages
many more: the mean over any span of epochs then follows from the running means saved in the
epoch checkpoints at both ends of the span (``--use-averaged-model``),

    mean over snapshots n_s+1 .. n_e = (n_e * avg_e - n_s * avg_s) / (n_e - n_s),

where ``avg_k`` is the running mean of the first ``n_k`` snapshots. icefall derives the counts
from batch indices (``batch_idx_train / average_period``); this module counts the snapshots
themselves, so the formula is exact whatever the epoch lengths.

The mean is kept in float64 on the CPU: one more copy of the model, updated in place, which
costs nothing next to a training step for models of this size.
"""
from __future__ import annotations

from typing import Dict, Optional

import torch

#: Checkpoint keys: the running mean's state dict, and how many snapshots it holds.
AVERAGE_KEY = "model_avg"
COUNT_KEY = "model_avg_count"


class RunningAverage:
    """The running mean of a model's floating-point weights and buffers.

    Args:
      period:
        Batches between snapshots (``train.average_period``); the mean is updated after the
        optimizer step of every batch whose 1-based index is a multiple of it.
    """

    def __init__(self, period: int) -> None:
        if period < 1:
            raise ValueError(f"train.average_period must be >= 1 to keep a running average, got {period}")
        self.period = period
        self.count = 0
        self.mean: Dict[str, torch.Tensor] = {}

    def maybe_update(self, model: torch.nn.Module, batch_idx_train: int) -> None:
        """Add a snapshot of ``model`` when ``batch_idx_train`` (batches done) is a multiple of the period."""
        if batch_idx_train % self.period == 0:
            self.update(model)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Add one snapshot of ``model``'s weights to the mean."""
        self.count += 1
        weight = 1.0 / self.count
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            value = tensor.detach().to("cpu", torch.float64)
            if name not in self.mean:
                self.mean[name] = value.clone()
            else:
                # mean_n = mean_{n-1} + (x_n - mean_{n-1}) / n
                self.mean[name].add_(value - self.mean[name], alpha=weight)

    def state_dict(self) -> Dict[str, object]:
        return {AVERAGE_KEY: self.mean, COUNT_KEY: self.count}

    def load_state_dict(self, state: Dict[str, object]) -> None:
        self.mean = {name: t.to(torch.float64) for name, t in state[AVERAGE_KEY].items()}
        self.count = int(state[COUNT_KEY])


def window_average(
    end: Dict[str, object], start: Optional[Dict[str, object]], source: str
) -> Dict[str, torch.Tensor]:
    """The model averaged over the snapshots taken after checkpoint ``start`` up to ``end``.

    Args:
      end:
        The checkpoint dict at the end of the span (it must hold a running average).
      start:
        The checkpoint dict at its start, or None for the start of training.
      source:
        Names the checkpoints in errors.
    Returns:
      A state dict like ``end["model"]``: floating-point entries averaged and cast back to their
      dtype, the others (integer buffers) taken from ``end``.
    """
    for checkpoint, which in ((end, "last"), (start, "first")):
        if checkpoint is not None and AVERAGE_KEY not in checkpoint:
            raise ValueError(
                f"{source}: the {which} checkpoint holds no running average (trained with train.average_period 0, "
                "or before it existed); decode without --use-averaged-model"
            )
    n_end = int(end[COUNT_KEY])
    n_start = int(start[COUNT_KEY]) if start is not None else 0
    if n_end <= n_start:
        raise ValueError(
            f"{source}: no running-average snapshot between the checkpoints ({n_start} before, {n_end} after); "
            "average more epochs (--avg) or train with a smaller train.average_period"
        )
    averaged = {}
    for name, tensor in end["model"].items():
        if not tensor.is_floating_point():
            averaged[name] = tensor
            continue
        total = end[AVERAGE_KEY][name].double() * n_end
        if start is not None:
            total = total - start[AVERAGE_KEY][name].double() * n_start
        averaged[name] = (total / (n_end - n_start)).to(tensor.dtype)
    return averaged
