"""A small unidirectional LSTM encoder for "RNN" student transducers.

Layout::

    Conv2dSubsampling (by 4) -> Dropout -> LSTM (num_layers, hidden encoder_dim)
        -> Dropout -> Linear(encoder_dim, encoder_dim)

The front end is the teacher's :class:`~distill.models.subsampling.Conv2dSubsampling`, so
student and teacher share the frame rate and the output lengths
(:func:`~distill.models.subsampling.subsampled_lengths`), which frame-level distillation
needs. The LSTM runs on packed sequences: it never reads padding frames, so an utterance's
output does not depend on the padding of its batch, and no time is spent on padding.
"""
from __future__ import annotations

import logging
from typing import Tuple

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from distill.models.subsampling import Conv2dSubsampling, check_encoder_inputs, subsampled_lengths
from distill.models.transducer import Encoder


class LstmEncoder(Encoder):
    """Conv2dSubsampling (by 4) -> unidirectional multi-layer LSTM -> Linear.

    The LSTM's hidden size is ``encoder_dim`` (no LSTM projection); the final linear layer
    maps the (tanh-bounded) LSTM output to an unconstrained ``encoder_dim`` vector.
    Outputs at padding frames (``t >= encoder_out_lens[n]``) are ``output(0)``, the
    output layer applied to zeros.
    """

    def __init__(
        self,
        num_features: int = 80,
        encoder_dim: int = 256,
        num_layers: int = 3,
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
            LSTM hidden size and output dimension.
          num_layers:
            Number of stacked LSTM layers (>= 1).
          dropout:
            Dropout probability on the LSTM input, between LSTM layers and on the LSTM
            output.
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
        self.num_features = num_features
        self.output_dim = encoder_dim
        self.subsampling = Conv2dSubsampling(
            num_features, encoder_dim, channels=subsampling_channels, feature_norm=feature_norm,
            first_channels=subsampling_first_channels,
        )
        self.input_dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(
            input_size=encoder_dim,
            hidden_size=encoder_dim,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.output_dropout = nn.Dropout(dropout)
        self.output = nn.Linear(encoder_dim, encoder_dim)
        logging.debug(f"LstmEncoder: {num_layers} layers, dim {encoder_dim}")

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
        # pack_padded_sequence wants the lengths on the CPU.
        packed = pack_padded_sequence(x, lens.cpu(), batch_first=True, enforce_sorted=False)
        packed_out, _ = self.lstm(packed)
        x, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=x.size(1))
        return self.output(self.output_dropout(x)), lens
