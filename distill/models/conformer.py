"""A compact Conformer encoder (Gulati et al., 2020) for transducer training.

Layout of each layer (pre-norm, macaron style)::

    x = x + 1/2 * FeedForward(x)
    x = x + MultiHeadSelfAttention(LayerNorm(x), key_padding_mask)
    x = x + ConvModule(LayerNorm(x), padding_mask)
    x = x + 1/2 * FeedForward(x)
    x = LayerNorm(x)

Positions are given by absolute sinusoidal encodings added after subsampling. The
convolution module normalizes with LayerNorm (not BatchNorm), so an utterance's output
never depends on the other utterances of its batch, in training as in evaluation.
Padding frames are masked out of attention (as keys) and zeroed before the depthwise
convolution, so outputs at valid frames do not depend on the amount of padding.
"""
from __future__ import annotations

import logging
import math
from typing import Tuple

import torch
from torch import nn

from distill.models.layers import LayerNorm
from distill.models.subsampling import Conv2dSubsampling, check_encoder_inputs, subsampled_lengths
from distill.models.transducer import Encoder


def make_pad_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """Mask of padding positions.

    Args:
      lengths:
        A 1-D integer tensor of shape (N,) with the valid lengths.
      max_len:
        The padded length T (>= ``lengths.max()``).
    Returns:
      A bool tensor of shape (N, T), True at padding positions (``t >= lengths[n]``).
    """
    positions = torch.arange(max_len, device=lengths.device)
    return positions.unsqueeze(0) >= lengths.unsqueeze(1)


def sinusoid_table(length: int, d_model: int, device: torch.device) -> torch.Tensor:
    """Sinusoidal position table of shape (length, d_model), float32, on ``device``: sin in the
    even columns, cos in the odd ones. Built of traceable operations only (the export computes
    it in the graph for the input's length: :class:`distill.export.wrappers.PositionsInGraph`)."""
    position = torch.arange(length, dtype=torch.float32, device=device).unsqueeze(1)
    frequencies = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / d_model))
    angles = position * frequencies  # (length, ceil(d_model / 2))
    pairs = d_model // 2
    table = torch.stack([torch.sin(angles[:, :pairs]), torch.cos(angles[:, :pairs])], dim=2).reshape(length, 2 * pairs)
    if d_model % 2:  # one more sin column than cos ones
        table = torch.cat([table, torch.sin(angles[:, pairs:])], dim=1)
    return table


class PositionalEncoding(nn.Module):
    """Add absolute sinusoidal position encodings, apply dropout.

    The input comes out of a LayerNorm (unit scale), so it is not scaled up by sqrt(d_model)
    as token embeddings are: that would leave the positions a negligible part of the sum.
    """

    def __init__(self, d_model: int, dropout: float, max_len: int = 2000) -> None:
        """
        Args:
          d_model:
            Model dimension.
          dropout:
            Dropout probability applied to the result.
          max_len:
            Initial number of positions precomputed (grown on demand).
        """
        super().__init__()
        self.d_model = d_model
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("pe", sinusoid_table(max_len, d_model, torch.device("cpu")), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
          x:
            A tensor of shape (N, T, d_model).
        Returns:
          A tensor of shape (N, T, d_model).
        """
        if x.size(1) > self.pe.size(0) or self.pe.device != x.device:
            self.pe = sinusoid_table(max(x.size(1), self.pe.size(0)), self.d_model, x.device)
        return self.dropout(x + self.pe[: x.size(1)].to(x.dtype))


class FeedForward(nn.Module):
    """LayerNorm -> Linear -> SiLU (Swish) -> Dropout -> Linear -> Dropout."""

    def __init__(self, d_model: int, dim_feedforward: int, dropout: float) -> None:
        """
        Args:
          d_model:
            Input and output dimension.
          dim_feedforward:
            Hidden dimension.
          dropout:
            Dropout probability.
        """
        super().__init__()
        self.net = nn.Sequential(
            LayerNorm(d_model),
            nn.Linear(d_model, dim_feedforward),
            nn.SiLU(),
            nn.Dropout(dropout),
            nn.Linear(dim_feedforward, d_model),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
          x:
            A tensor of shape (N, T, d_model).
        Returns:
          A tensor of shape (N, T, d_model).
        """
        return self.net(x)


class MultiHeadSelfAttention(nn.Module):
    """Scaled dot-product multi-head self-attention with a key padding mask."""

    def __init__(self, d_model: int, nhead: int, dropout: float) -> None:
        """
        Args:
          d_model:
            Model dimension; must be divisible by ``nhead``.
          nhead:
            Number of heads.
          dropout:
            Dropout probability on the attention weights.
        """
        super().__init__()
        if d_model % nhead != 0:
            raise ValueError(f"d_model ({d_model}) must be divisible by nhead ({nhead})")
        self.nhead = nhead
        self.head_dim = d_model // nhead
        self.in_proj = nn.Linear(d_model, 3 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.attn_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor) -> torch.Tensor:
        """
        Args:
          x:
            A tensor of shape (N, T, d_model).
          key_padding_mask:
            A bool tensor of shape (N, T), True at padding frames (they are not attended to).
            Every row must have at least one False entry.
        Returns:
          A tensor of shape (N, T, d_model).
        """
        n, t, d = x.shape
        # (N, T, 3 * d) -> 3 x (N, nhead, T, head_dim)
        q, k, v = self.in_proj(x).view(n, t, 3, self.nhead, self.head_dim).permute(2, 0, 3, 1, 4)
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.head_dim)  # (N, H, T, T)
        scores = scores.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
        # float32 softmax: under bfloat16 autocast the scores have an 8-bit mantissa.
        weights = self.attn_dropout(torch.softmax(scores.float(), dim=-1).to(v.dtype))
        out = torch.matmul(weights, v)  # (N, H, T, head_dim)
        return self.out_proj(out.transpose(1, 2).reshape(n, t, d))


class ConvModule(nn.Module):
    """Conformer convolution module: pointwise conv + GLU, depthwise conv, LayerNorm,
    SiLU, pointwise conv."""

    def __init__(self, d_model: int, kernel_size: int) -> None:
        """
        Args:
          d_model:
            Number of channels.
          kernel_size:
            Kernel size of the depthwise convolution; must be odd ("same" padding).
        """
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.pointwise_in = nn.Conv1d(d_model, 2 * d_model, kernel_size=1)
        self.glu = nn.GLU(dim=1)
        self.depthwise = nn.Conv1d(
            d_model, d_model, kernel_size=kernel_size, padding=(kernel_size - 1) // 2, groups=d_model
        )
        self.norm = LayerNorm(d_model)
        self.activation = nn.SiLU()
        self.pointwise_out = nn.Conv1d(d_model, d_model, kernel_size=1)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
        """
        Args:
          x:
            A tensor of shape (N, T, d_model).
          padding_mask:
            A bool tensor of shape (N, T), True at padding frames (zeroed before the
            depthwise convolution).
        Returns:
          A tensor of shape (N, T, d_model).
        """
        x = self.glu(self.pointwise_in(x.transpose(1, 2)))  # (N, d_model, T)
        x = x.masked_fill(padding_mask.unsqueeze(1), 0.0)
        x = self.depthwise(x).transpose(1, 2)  # (N, T, d_model)
        x = self.activation(self.norm(x)).transpose(1, 2)
        return self.pointwise_out(x).transpose(1, 2)


class ConformerLayer(nn.Module):
    """One macaron Conformer layer (see the module docstring)."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int, kernel_size: int, dropout: float) -> None:
        """
        Args:
          d_model:
            Model dimension.
          nhead:
            Number of attention heads.
          dim_feedforward:
            Hidden dimension of the two feed-forward modules.
          kernel_size:
            Depthwise convolution kernel size (odd).
          dropout:
            Dropout probability.
        """
        super().__init__()
        self.ff_macaron = FeedForward(d_model, dim_feedforward, dropout)
        self.norm_mha = LayerNorm(d_model)
        self.self_attn = MultiHeadSelfAttention(d_model, nhead, dropout)
        self.norm_conv = LayerNorm(d_model)
        self.conv = ConvModule(d_model, kernel_size)
        self.ff = FeedForward(d_model, dim_feedforward, dropout)
        self.norm_final = LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
        """
        Args:
          x:
            A tensor of shape (N, T, d_model).
          padding_mask:
            A bool tensor of shape (N, T), True at padding frames.
        Returns:
          A tensor of shape (N, T, d_model).
        """
        x = x + 0.5 * self.ff_macaron(x)
        x = x + self.dropout(self.self_attn(self.norm_mha(x), padding_mask))
        x = x + self.dropout(self.conv(self.norm_conv(x), padding_mask))
        x = x + 0.5 * self.ff(x)
        return self.norm_final(x)


class ConformerEncoder(Encoder):
    """Conv2dSubsampling (by 4) -> positional encoding -> ``num_layers`` Conformer layers."""

    def __init__(
        self,
        num_features: int = 80,
        encoder_dim: int = 256,
        num_layers: int = 6,
        nhead: int = 4,
        dim_feedforward: int = 1024,
        cnn_module_kernel: int = 15,
        dropout: float = 0.1,
        subsampling_channels: int = 0,
        subsampling_first_channels: int = 0,
        feature_norm: str = "global",
        positional_encoding: str = "absolute",
    ) -> None:
        """
        Args:
          num_features:
            Input feature dimension.
          encoder_dim:
            Model (and output) dimension.
          num_layers:
            Number of Conformer layers.
          nhead:
            Number of attention heads (divides ``encoder_dim``).
          dim_feedforward:
            Hidden dimension of the feed-forward modules.
          cnn_module_kernel:
            Depthwise convolution kernel size (odd).
          dropout:
            Dropout probability.
          subsampling_channels:
            Channels of the convolutional front end (0: ``encoder_dim``). On CPUs the
            front end dominates the step time at 256 channels; 64-128 cost little accuracy.
          subsampling_first_channels:
            Channels of the front end\'s first convolution (0: ``subsampling_channels``).
          feature_norm:
            Input feature normalization of the front end, ``global`` or ``utterance`` (see
            :class:`~distill.models.subsampling.Conv2dSubsampling`).
          positional_encoding:
            "absolute": sinusoids added after the front end; "none": only dropout there.
        """
        super().__init__()
        self.num_features = num_features
        self.output_dim = encoder_dim
        self.subsampling = Conv2dSubsampling(
            num_features, encoder_dim, channels=subsampling_channels, feature_norm=feature_norm,
            first_channels=subsampling_first_channels,
        )
        if positional_encoding == "absolute":
            self.pos_enc: nn.Module = PositionalEncoding(encoder_dim, dropout)
        elif positional_encoding == "none":
            self.pos_enc = nn.Dropout(dropout)
        else:
            raise ValueError(f"positional_encoding must be 'absolute' or 'none', got {positional_encoding!r}")
        self.layers = nn.ModuleList(
            ConformerLayer(encoder_dim, nhead, dim_feedforward, cnn_module_kernel, dropout) for _ in range(num_layers)
        )
        logging.debug(f"ConformerEncoder: {num_layers} layers, dim {encoder_dim}, {nhead} heads")

    def forward(self, x: torch.Tensor, x_lens: torch.Tensor, warmup: float = 1.0) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
          x:
            Input features of shape (N, T, num_features), T >= 7, padded after each
            utterance's end.
          x_lens:
            A 1-D integer tensor of shape (N,) with the numbers of valid frames
            (each in [7, T]).
          warmup:
            Training progress through the model warm-up, ``batch / model_warm_step``
            (1.0 or more: warmed up). While training and below 1, each layer's output is
            mixed with its input, ``alpha * layer(x) + (1 - alpha) * x`` with
            ``alpha = min(0.1 + warmup, 1)`` (icefall's conformer warm-up): the deep stack
            starts as a nearly shallow one, whose output still depends on the input. Without
            it, this encoder learns to ignore its input during the "blank only" phase at the
            start of training and stays there for thousands of batches.
        Returns:
          A tuple ``(encoder_out, encoder_out_lens)``:

            - encoder_out: a tensor of shape (N, T', encoder_dim), with
              ``T' = subsampled_lengths(T)``; frames past an utterance's length are padding.
            - encoder_out_lens: a 1-D int64 tensor of shape (N,),
              ``subsampled_lengths(x_lens)``.
        """
        check_encoder_inputs(x, x_lens)
        x = self.pos_enc(self.subsampling(x, x_lens))
        lens = subsampled_lengths(x_lens.to(device=x.device, dtype=torch.int64))
        padding_mask = make_pad_mask(lens, x.size(1))
        alpha = min(0.1 + warmup, 1.0) if self.training else 1.0
        for layer in self.layers:
            out = layer(x, padding_mask)
            x = out if alpha >= 1.0 else alpha * out + (1.0 - alpha) * x
        return x, lens
