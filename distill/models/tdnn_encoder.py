"""A feed-forward TDNN encoder for "DNN" student transducers.

Layout::

    Conv2dSubsampling (by 4) -> Dropout -> num_layers x TdnnLayer -> LayerNorm -> Linear

with each :class:`TdnnLayer` a pre-norm residual block::

    x = x + Dropout(ReLU(Conv1d(zero_padding(LayerNorm(x)))))

The 1-D convolutions run over time with kernel ``kernel_size`` (odd) and "same" padding,
so the number of frames is kept; their dilations cycle through ``dilations`` (e.g. 1, 2, 3,
1, 2, 3, ...). With kernel ``k`` the receptive field grows by ``(k - 1) * d`` frames per
layer of dilation ``d`` (at 40 ms per frame after subsampling).

Normalization is LayerNorm (per frame), not BatchNorm, so an utterance's output never
depends on the rest of its batch. Padding frames are zeroed before every convolution; as
the convolution's own padding is zeros too, outputs at valid frames are the same whatever
the amount of padding after the utterance.
"""
from __future__ import annotations

import logging
from typing import Sequence, Tuple

import torch
from torch import nn

from distill.models.conformer import make_pad_mask
from distill.models.layers import LayerNorm
from distill.models.subsampling import Conv2dSubsampling, check_encoder_inputs, subsampled_lengths
from distill.models.transducer import Encoder


class TdnnLayer(nn.Module):
    """Pre-norm residual time-delay layer: LayerNorm -> zero padding frames -> Conv1d
    ("same" padding, dilated) -> ReLU -> Dropout, added to the input."""

    def __init__(self, dim: int, kernel_size: int, dilation: int, dropout: float) -> None:
        """
        Args:
          dim:
            Number of input and output channels.
          kernel_size:
            Kernel size of the convolution over time; must be odd.
          dilation:
            Dilation of the convolution (>= 1).
          dropout:
            Dropout probability on the block output.
        """
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
        if dilation < 1:
            raise ValueError(f"dilation must be >= 1, got {dilation}")
        self.norm = LayerNorm(dim)
        self.conv = nn.Conv1d(dim, dim, kernel_size, dilation=dilation, padding=dilation * (kernel_size - 1) // 2)
        self.activation = nn.ReLU()
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
        """
        Args:
          x:
            A tensor of shape (N, T, dim).
          padding_mask:
            A bool tensor of shape (N, T), True at padding frames (zeroed before the
            convolution).
        Returns:
          A tensor of shape (N, T, dim).
        """
        y = self.norm(x).masked_fill(padding_mask.unsqueeze(2), 0.0)
        y = self.conv(y.transpose(1, 2)).transpose(1, 2)  # (N, T, dim)
        return x + self.dropout(self.activation(y))


class TdnnEncoder(Encoder):
    """Conv2dSubsampling (by 4) -> a residual stack of dilated 1-D convolutions (TDNN) ->
    LayerNorm -> Linear; see the module docstring."""

    def __init__(
        self,
        num_features: int = 80,
        encoder_dim: int = 256,
        num_layers: int = 6,
        kernel_size: int = 3,
        dilations: Sequence[int] = (1, 2, 3),
        dropout: float = 0.1,
        subsampling_channels: int = 0,
        subsampling_first_channels: int = 0,
        feature_norm: str = "global",
    ) -> None:
        """
        Args:
          num_features:
            Input feature dimension.
          encoder_dim:
            Number of channels of the convolutions and output dimension.
          num_layers:
            Number of TDNN layers (>= 1).
          kernel_size:
            Kernel size of every convolution over time (odd).
          dilations:
            Layer ``i`` has dilation ``dilations[i % len(dilations)]`` (positive ints).
          dropout:
            Dropout probability (after subsampling and on each layer's output).
          subsampling_channels:
            Channels of the convolutional front end (0: ``encoder_dim``).
          subsampling_first_channels:
            Channels of the front end\'s first convolution (0: ``subsampling_channels``).
          feature_norm:
            Input feature normalization of the front end, ``global`` or ``utterance`` (see
            :class:`~distill.models.subsampling.Conv2dSubsampling`).
        """
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        dilations = list(dilations)
        if not dilations:
            raise ValueError("dilations must not be empty")
        self.num_features = num_features
        self.output_dim = encoder_dim
        self.dilations = [dilations[i % len(dilations)] for i in range(num_layers)]
        self.subsampling = Conv2dSubsampling(
            num_features, encoder_dim, channels=subsampling_channels, feature_norm=feature_norm,
            first_channels=subsampling_first_channels,
        )
        self.input_dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(TdnnLayer(encoder_dim, kernel_size, d, dropout) for d in self.dilations)
        self.norm = LayerNorm(encoder_dim)
        self.output = nn.Linear(encoder_dim, encoder_dim)
        context = sum((kernel_size - 1) // 2 * d for d in self.dilations)
        logging.debug(
            f"TdnnEncoder: {num_layers} layers, dim {encoder_dim}, kernel {kernel_size}, "
            f"dilations {self.dilations}, context +-{context} frames"
        )

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
            Model warm-up progress (see :class:`distill.models.transducer.Encoder`);
            unused: this shallow encoder needs no layer warm-up.
        Returns:
          A tuple ``(encoder_out, encoder_out_lens)``:

            - encoder_out: a tensor of shape (N, T', encoder_dim), with
              ``T' = subsampled_lengths(T)``; frames past an utterance's length are padding.
            - encoder_out_lens: a 1-D int64 tensor of shape (N,),
              ``subsampled_lengths(x_lens)``.
        """
        check_encoder_inputs(x, x_lens)
        x = self.input_dropout(self.subsampling(x, x_lens))  # (N, T', encoder_dim)
        lens = subsampled_lengths(x_lens.to(device=x.device, dtype=torch.int64))
        padding_mask = make_pad_mask(lens, x.size(1))
        for layer in self.layers:
            x = layer(x, padding_mask)
        return self.output(self.norm(x)), lens
