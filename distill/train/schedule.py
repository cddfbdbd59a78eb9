"""Learning-rate schedule: linear warm-up, then icefall's "Eden" decay.

    lr = base_lr * warm * ((b^2 + B^2) / B^2)^-0.25 * ((e^2 + E^2) / E^2)^-0.25

with b the batch index, e the (fractional) epoch, B = ``lr_batches``, E = ``lr_epochs`` and
``warm`` rising linearly from 0 to 1 over ``warmup_batches``. Chosen because it needs no
knowledge of the total number of steps (so resuming and changing ``num_epochs`` are safe) and
decays gently in both batches and epochs, which trains small transducers well with AdamW.
"""
from __future__ import annotations

from typing import Dict

import torch


class WarmupEden:
    """Sets the optimizer's learning rate from the batch index and epoch.

    Args:
      optimizer:
        Its param groups' ``lr`` are overwritten at each :meth:`step`.
      base_lr:
        The peak learning rate.
      warmup_batches / lr_batches / lr_epochs:
        See the module docstring.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, base_lr: float, warmup_batches: int, lr_batches: int, lr_epochs: float) -> None:
        self.optimizer = optimizer
        self.base_lr = base_lr
        self.warmup_batches = warmup_batches
        self.lr_batches = lr_batches
        self.lr_epochs = lr_epochs
        self.batch = 0
        self.epoch = 0.0
        self.step(0, 0.0)

    def lr_at(self, batch: int, epoch: float) -> float:
        warm = min(1.0, (batch + 1) / self.warmup_batches) if self.warmup_batches > 0 else 1.0
        batch_factor = ((batch**2 + self.lr_batches**2) / self.lr_batches**2) ** -0.25
        epoch_factor = ((epoch**2 + self.lr_epochs**2) / self.lr_epochs**2) ** -0.25
        return self.base_lr * warm * batch_factor * epoch_factor

    def step(self, batch: int, epoch: float) -> float:
        """Set and return the learning rate for ``batch`` in (fractional) ``epoch``."""
        self.batch, self.epoch = batch, epoch
        lr = self.lr_at(batch, epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def state_dict(self) -> Dict[str, float]:
        return {"batch": self.batch, "epoch": self.epoch}

    def load_state_dict(self, state: Dict[str, float]) -> None:
        self.step(int(state["batch"]), float(state["epoch"]))
