"""A small unidirectional LSTM encoder for "RNN" student transducers.

Layout::

    Conv2dSubsampling (by 4) -> Dropout -> [Lookahead] -> num_layers x LstmBlock -> LayerNorm -> Linear

with each :class:`LstmBlock` two pre-norm residual branches::

    x = x + Dropout(LSTM(LayerNorm(x)))            # unidirectional, optional projection
    x = x + Dropout(FeedForward(LayerNorm(x)))     # Linear -> ReLU -> Dropout -> Linear

Why residual blocks and not a plain stacked ``nn.LSTM``: at initialization, the plain 3 x 144
stack this project had shrank the input-dependent part of its output layer by layer (about 2%
of its output energy was left), and the gradient reaching the convolutional front end was 37x
smaller than the TDNN student's; trained alone, it never left the blank-only plateau
(egs/librispeech/ASR/RESULTS.md, issue 23). The residual path carries the front end's output
(and the gradient back to it) unchanged, the norms keep every branch's input at unit scale,
and the feed-forward branch adds per-frame depth cheaply, the layout of icefall's LSTM
transducers (an LSTM with projection, a feed-forward block and a norm per layer). icefall
also bypasses layers early in training; with pre-norm residual blocks that was not needed
here (``test_lstm_student_passes_input_and_gradient_at_init`` in tests/models/test_students.py
guards the property).

The encoder is causal: the LSTMs read frames left to right and the norms and feed-forward
blocks are per frame, so an utterance's outputs at valid frames never depend on the padding
after it (padding frames are zeroed before the final norm, so their outputs are fixed). Its
LSTM states can be carried from one chunk of frames to the next
(:meth:`LstmEncoder.run_layers`), which is what streaming needs; the front end, a
convolution over 7 input frames, is the part that needs look-ahead (3 frames of 10 ms).

With ``lookahead_frames`` R > 0, a :class:`Lookahead` layer between the front end and the
LSTMs gives frame t the front end's frames t..t+R (DeepSpeech 2's "lookahead convolution",
as a residual linear layer): R x 40 ms more latency, a fixed amount, so the encoder still
streams with carried state (a chunk of ``4 (n + R) + 3`` feature frames gives ``n`` frames,
the next chunk starting ``4 n`` frames later). The future past an utterance's last frame is
``4 R`` frames of :data:`LOOKAHEAD_PAD_FEATURE` (what digital silence gives), in training,
offline decoding and at the end of a stream alike, so streaming equals offline exactly.

The front end is the teacher's :class:`~distill.models.subsampling.Conv2dSubsampling`, so
student and teacher share the frame rate and the output lengths
(:func:`~distill.models.subsampling.subsampled_lengths`), which frame-level distillation
needs.
"""
from __future__ import annotations

import logging
import math
from typing import List, Optional, Tuple

import torch
from torch import nn

from distill.models.conformer import make_pad_mask
from distill.models.layers import LayerNorm
from distill.models.subsampling import (
    SUBSAMPLING_FACTOR,
    Conv2dSubsampling,
    check_encoder_inputs,
    subsampled_lengths,
)
from distill.models.transducer import Encoder

#: The feature value of the frames that :class:`Lookahead` reads past an utterance's end: the
#: log-mel energy of digital silence in Kaldi's fbank (kaldifeat and kaldi-native-fbank floor
#: each mel energy at the float epsilon before the log), so a runtime that flushes a stream
#: with zero samples, as sherpa-onnx does, feeds frames close to it.
LOOKAHEAD_PAD_FEATURE = math.log(torch.finfo(torch.float32).eps)

#: The recurrent state of one LSTM layer: ``(h, c)``, of shapes (1, N, out) and (1, N, hidden).
LstmState = Tuple[torch.Tensor, torch.Tensor]


class LstmBlock(nn.Module):
    """One layer of the encoder: a pre-norm residual LSTM branch, then a pre-norm residual
    feed-forward branch (see the module docstring)."""

    def __init__(self, dim: int, hidden_dim: int, ff_dim: int, dropout: float) -> None:
        """
        Args:
          dim:
            Input and output dimension (the residual stream).
          hidden_dim:
            LSTM cell size; when larger than ``dim`` the LSTM projects its output down to
            ``dim`` (``proj_size``), as icefall's LSTM transducers do.
          ff_dim:
            Hidden size of the feed-forward branch (0: no feed-forward branch).
          dropout:
            Dropout probability on each branch's output (and inside the feed-forward one).
        """
        super().__init__()
        if hidden_dim < dim:
            raise ValueError(f"LSTM hidden_dim ({hidden_dim}) must be >= the encoder dim ({dim})")
        self.lstm_norm = LayerNorm(dim)
        self.lstm = nn.LSTM(dim, hidden_dim, batch_first=True, proj_size=dim if hidden_dim > dim else 0)
        self.ff: Optional[nn.Module] = None
        if ff_dim > 0:
            self.ff_norm = LayerNorm(dim)
            self.ff = nn.Sequential(nn.Linear(dim, ff_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ff_dim, dim))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, state: Optional[LstmState] = None) -> Tuple[torch.Tensor, LstmState]:
        """
        Args:
          x:
            A tensor of shape (N, T, dim).
          state:
            The LSTM state after the previous chunk, or None at the start of the utterances.
        Returns:
          ``(output, state)``: a tensor of shape (N, T, dim) and the LSTM state after the
          last frame.
        """
        y, state = self.lstm(self.lstm_norm(x), state)
        x = x + self.dropout(y)
        if self.ff is not None:
            x = x + self.dropout(self.ff(self.ff_norm(x)))
        return x, state


class Lookahead(nn.Module):
    """``y[t] = x[t] + W [x[t]; x[t+1]; ...; x[t+R]]``: each frame reads the ``R`` frames after
    it, a residual linear layer over stacked frames (DeepSpeech 2's lookahead convolution,
    full rather than per-channel, so the LSTMs can tell the present from the future). Stacked
    frames and a Linear rather than a Conv1d: dynamic int8 quantization makes a Linear an
    integer matrix product in both onnxruntime and torch."""

    def __init__(self, dim: int, frames: int) -> None:
        super().__init__()
        if frames < 1:
            raise ValueError(f"Lookahead needs frames >= 1, got {frames}")
        self.frames = frames
        self.linear = nn.Linear((frames + 1) * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
          x:
            A tensor of shape (N, T + R, dim).
        Returns:
          A tensor of shape (N, T, dim): the first T frames, each with its R successors read.
        """
        num_frames = x.size(1) - self.frames
        taps = torch.cat([x[:, k:k + num_frames] for k in range(self.frames + 1)], dim=2)
        return x[:, :num_frames] + self.linear(taps)


def pad_for_lookahead(x: torch.Tensor, x_lens: torch.Tensor, frames: int) -> torch.Tensor:
    """``x`` with ``frames`` more frames, and every frame past each utterance's length, set to
    :data:`LOOKAHEAD_PAD_FEATURE`: the future that :class:`Lookahead` reads after an
    utterance's end, the same in a padded batch as at the end of a stream.

    Args:
      x:
        Features of shape (N, T, F).
      x_lens:
        Valid frames per utterance, shape (N,).
      frames:
        Feature frames to add (``4 R`` for R encoder frames of look-ahead).
    Returns:
      A tensor of shape (N, T + frames, F).
    """
    x = torch.cat([x, x.new_zeros(x.size(0), frames, x.size(2))], dim=1)
    past_end = torch.arange(x.size(1), device=x.device)[None, :] >= x_lens.to(x.device)[:, None]
    return x.masked_fill(past_end.unsqueeze(2), LOOKAHEAD_PAD_FEATURE)


class LstmEncoder(Encoder):
    """Conv2dSubsampling (by 4) -> residual unidirectional LSTM blocks -> LayerNorm -> Linear;
    see the module docstring."""

    def __init__(
        self,
        num_features: int = 80,
        encoder_dim: int = 256,
        num_layers: int = 3,
        hidden_dim: int = 0,
        ff_dim: int = 0,
        dropout: float = 0.1,
        subsampling_channels: int = 0,
        subsampling_first_channels: int = 0,
        feature_norm: str = "global",
        lookahead_frames: int = 0,
    ) -> None:
        """
        Args:
          num_features:
            Input feature dimension.
          encoder_dim:
            Dimension of the residual stream and of the output.
          num_layers:
            Number of :class:`LstmBlock` layers (>= 1).
          hidden_dim:
            LSTM cell size (0: ``encoder_dim``, no projection).
          ff_dim:
            Hidden size of each block's feed-forward branch (0: none).
          dropout:
            Dropout probability (after the front end and on every branch).
          subsampling_channels:
            Channels of the convolutional front end (0: ``encoder_dim``).
          subsampling_first_channels:
            Channels of the front end's first convolution (0: ``subsampling_channels``).
          feature_norm:
            Input feature normalization of the front end, ``global`` or ``utterance`` (see
            :class:`~distill.models.subsampling.Conv2dSubsampling`).
          lookahead_frames:
            Encoder frames (40 ms each) of look-ahead before the LSTMs (0: none; see
            :class:`Lookahead`).
        """
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if lookahead_frames < 0:
            raise ValueError(f"lookahead_frames must be >= 0, got {lookahead_frames}")
        self.num_features = num_features
        self.output_dim = encoder_dim
        self.subsampling = Conv2dSubsampling(
            num_features, encoder_dim, channels=subsampling_channels, feature_norm=feature_norm,
            first_channels=subsampling_first_channels,
        )
        self.input_dropout = nn.Dropout(dropout)
        self.lookahead_frames = lookahead_frames
        self.lookahead: Optional[Lookahead] = Lookahead(encoder_dim, lookahead_frames) if lookahead_frames else None
        hidden_dim = hidden_dim or encoder_dim
        self.layers = nn.ModuleList(LstmBlock(encoder_dim, hidden_dim, ff_dim, dropout) for _ in range(num_layers))
        self.norm = LayerNorm(encoder_dim)
        self.output = nn.Linear(encoder_dim, encoder_dim)
        logging.debug(f"LstmEncoder: {num_layers} residual LSTM blocks, dim {encoder_dim}, cell {hidden_dim}, ff {ff_dim}, "
                      f"look-ahead {lookahead_frames} frames")

    def front_end(self, x: torch.Tensor, x_lens: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The front end and the look-ahead: ``4 (n + R) + 3`` feature frames (R =
        ``lookahead_frames``) -> ``n`` frames for the LSTMs.

        Args:
          x:
            Features of shape (N, T, num_features), already padded for the look-ahead
            (:func:`pad_for_lookahead`) when R > 0.
          x_lens:
            Valid frames per utterance (used by ``feature_norm="utterance"`` only).
        Returns:
          A tensor of shape (N, subsampled_lengths(T) - R, encoder_dim).
        """
        x = self.input_dropout(self.subsampling(x, x_lens))
        return x if self.lookahead is None else self.lookahead(x)

    def run_layers(
        self, x: torch.Tensor, states: Optional[List[LstmState]] = None
    ) -> Tuple[torch.Tensor, List[LstmState]]:
        """The LSTM blocks on a chunk of subsampled frames, carrying their states.

        Running an utterance in chunks, passing each call's returned states to the next,
        gives the same output as running it whole (a unidirectional model: what streaming
        decoding relies on).

        Args:
          x:
            The front end's output, shape (N, T', encoder_dim).
          states:
            One state per layer from the previous chunk, or None at the start.
        Returns:
          ``(x, states)``: the last block's output, shape (N, T', encoder_dim), and the
          states after the chunk's last frame.
        """
        new_states: List[LstmState] = []
        for i, layer in enumerate(self.layers):
            x, state = layer(x, None if states is None else states[i])
            new_states.append(state)
        return x, new_states

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
            unused: the residual blocks need no layer warm-up.
        Returns:
          A tuple ``(encoder_out, encoder_out_lens)``:

            - encoder_out: a tensor of shape (N, T', encoder_dim), with
              ``T' = subsampled_lengths(T)``; frames past an utterance's length are padding.
            - encoder_out_lens: a 1-D int64 tensor of shape (N,),
              ``subsampled_lengths(x_lens)``.
        """
        check_encoder_inputs(x, x_lens)
        if self.lookahead_frames:
            x = pad_for_lookahead(x, x_lens, SUBSAMPLING_FACTOR * self.lookahead_frames)
        x = self.front_end(x, x_lens)  # (N, T', encoder_dim)
        lens = subsampled_lengths(x_lens.to(device=x.device, dtype=torch.int64))
        # No packing: the LSTMs are causal, so valid frames never read the padding after them,
        # and on CPUs a padded batch (the bucketing sampler keeps padding small) runs faster
        # than a packed one. Padding frames are zeroed so that their outputs are fixed.
        x, _ = self.run_layers(x)
        x = x.masked_fill(make_pad_mask(lens, x.size(1)).unsqueeze(2), 0.0)
        return self.output(self.norm(x)), lens
