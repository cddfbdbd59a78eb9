"""An LSTM predictor (the classic RNN-T "prediction network") for student transducers.

Layout::

    Embedding(vocab_size, decoder_dim, padding_idx=blank) -> Dropout
        -> LSTM(num_layers, hidden decoder_dim)

Blank is the start symbol, as for :class:`~distill.models.decoder.StatelessDecoder`: the
training input is ``sos_y_padded`` (blank, then the labels, padded with blank), and the
output at position ``u`` summarizes ``[blank, y_1, ..., y_u]``. Unlike the stateless
predictor the context is unbounded, so the decoding state is the LSTM state ``(h, c)``.
"""
from __future__ import annotations

import logging
from typing import Tuple

import torch
from torch import nn

from distill.models.decoder import Predictor

#: The decoding state of :class:`LstmPredictor`: ``(h, c)``, each of shape
#: (num_layers, N, decoder_dim).
LstmState = Tuple[torch.Tensor, torch.Tensor]


class LstmPredictor(Predictor):
    """Embedding -> Dropout -> multi-layer LSTM; implements :class:`Predictor`.

    The blank embedding is the zero vector (``padding_idx``), so the output for the
    start context comes from the LSTM biases alone. The state before any symbol is all
    zeros; reading the labels one by one with :meth:`step` reproduces :meth:`forward` at
    every position.
    """

    def __init__(
        self, vocab_size: int, decoder_dim: int, blank_id: int = 0, num_layers: int = 1, dropout: float = 0.1
    ) -> None:
        """
        Args:
          vocab_size:
            Number of symbols, blank included.
          decoder_dim:
            Embedding dimension, LSTM hidden size and output dimension.
          blank_id:
            Id of blank (the start symbol); its embedding is the zero vector.
          num_layers:
            Number of stacked LSTM layers (>= 1).
          dropout:
            Dropout probability on the embeddings and between LSTM layers.
        """
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.vocab_size = vocab_size
        self.blank_id = blank_id
        self.output_dim = decoder_dim
        self.num_layers = num_layers
        self.embedding = nn.Embedding(vocab_size, decoder_dim, padding_idx=blank_id)
        self.embedding_dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(
            input_size=decoder_dim,
            hidden_size=decoder_dim,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        logging.debug(f"LstmPredictor: {num_layers} layers, dim {decoder_dim}")

    def forward(self, y: torch.Tensor, need_pad: bool = True) -> torch.Tensor:
        """
        Args:
          y:
            An int64 tensor of shape (N, U) with symbols in [0, vocab_size): for training,
            ``sos_y_padded`` (blank, then the labels, padded with blank). The LSTM reads it
            from the initial (zero) state.
          need_pad:
            Accepted for the :class:`Predictor` interface and ignored: the left context of
            an LSTM is the whole sequence read so far, which is ``y`` itself, so there is
            never anything to pad and the output always has one frame per input symbol.
        Returns:
          A tensor of shape (N, U, decoder_dim); frame ``u`` depends only on ``y[:, :u + 1]``
          (padding after the labels does not change earlier frames).
        """
        if y.ndim != 2:
            raise ValueError(f"y must have shape (N, U), got {tuple(y.shape)}")
        emb = self.embedding_dropout(self.embedding(y))  # (N, U, D)
        out, _ = self.lstm(emb, self.init_state(y.size(0), y.device))
        return out

    def init_state(self, batch_size: int, device: torch.device) -> LstmState:
        """
        Args:
          batch_size:
            Number of utterances N.
          device:
            Device of the state.
        Returns:
          ``(h, c)``, zero tensors of shape (num_layers, N, decoder_dim) in the dtype of
          the parameters.
        """
        dtype = self.embedding.weight.dtype
        shape = (self.num_layers, batch_size, self.output_dim)
        return torch.zeros(shape, dtype=dtype, device=device), torch.zeros(shape, dtype=dtype, device=device)

    def step(self, tokens: torch.Tensor, state: LstmState) -> Tuple[torch.Tensor, LstmState]:
        """
        Args:
          tokens:
            An int64 tensor of shape (N,).
          state:
            ``(h, c)``, each of shape (num_layers, N, decoder_dim).
        Returns:
          A tuple ``(out, new_state)``: ``out`` of shape (N, decoder_dim), the output after
          reading ``tokens``, and the new ``(h, c)``.
        """
        emb = self.embedding_dropout(self.embedding(tokens.unsqueeze(1)))  # (N, 1, D)
        out, (h, c) = self.lstm(emb, state)
        return out.squeeze(1), (h, c)

    def merge_states(self, mask: torch.Tensor, new_state: LstmState, old_state: LstmState) -> LstmState:
        """
        Args:
          mask:
            A bool tensor of shape (N,).
          new_state:
            ``(h, c)``, each of shape (num_layers, N, decoder_dim).
          old_state:
            ``(h, c)``, each of shape (num_layers, N, decoder_dim).
        Returns:
          ``(h, c)``, taken from ``new_state`` where ``mask`` is True, else from
          ``old_state``.
        """
        m = mask.view(1, -1, 1)
        return (
            torch.where(m, new_state[0], old_state[0]),
            torch.where(m, new_state[1], old_state[1]),
        )

    def select_state(self, state: LstmState, index: torch.Tensor) -> LstmState:
        """
        Args:
          state:
            ``(h, c)``, each of shape (num_layers, N, decoder_dim).
          index:
            An int64 tensor of shape (M,) with entries in [0, N).
        Returns:
          ``(h, c)``, each of shape (num_layers, M, decoder_dim).
        """
        return state[0].index_select(1, index), state[1].index_select(1, index)
