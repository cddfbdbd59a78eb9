"""Small building blocks shared by the encoders."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class LayerNorm(nn.LayerNorm):
    """``nn.LayerNorm`` computed in float32 whatever the input's precision.

    Under bfloat16 autocast (``train.precision``) the linear layers before a norm give
    bfloat16, and torch 1.13's CPU ``layer_norm`` refuses a bfloat16 input with float32
    weights; normalizing in float32 is also what mixed precision wants (the mean and variance
    need the mantissa). The output is float32; the next linear layer casts it again. Its
    parameters and state-dict keys are ``nn.LayerNorm``'s.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.float(), self.normalized_shape, self.weight, self.bias, self.eps)
