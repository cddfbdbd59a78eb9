"""Predictors (the "decoder" of a transducer) and the interface the search code uses.

Every predictor implements :class:`Predictor`:

* training: ``forward(sos_y_padded)`` on whole label sequences prefixed with blank;
* decoding: ``init_state`` then ``step`` one symbol at a time, plus ``merge_states`` /
  ``select_state`` to keep per-utterance (or per-hypothesis) states in a batch.

Decoding starts with::

    state = predictor.init_state(N, device)
    out, state = predictor.step(torch.full((N,), blank_id), state)

which gives the output for the blank (start-of-sequence) context, identical to position 0
of ``forward(sos_y_padded)``; after emitting symbols ``a``, ``b``, calling ``step`` with
``a`` and then ``b`` gives position 2 of ``forward`` on ``[blank, a, b, ...]``.
"""
from __future__ import annotations

import abc
from typing import Any, Tuple

import torch
import torch.nn.functional as F
from torch import nn

#: A predictor's decoding state (a tensor, or a tuple of tensors for an LSTM).
State = Any


class Predictor(nn.Module, metaclass=abc.ABCMeta):
    """Interface of transducer predictors.

    Attributes:
      vocab_size:
        Number of output symbols, blank included.
      blank_id:
        Id of the blank symbol (also the start-of-sequence symbol).
      output_dim:
        Dimension of the predictor output (``decoder_dim``).
    """

    vocab_size: int
    blank_id: int
    output_dim: int

    @abc.abstractmethod
    def forward(self, y: torch.Tensor, need_pad: bool = True) -> torch.Tensor:
        """Training-time output for whole sequences.

        Args:
          y:
            An int64 tensor of shape (N, U): label sequences with blank prepended
            (``sos_y_padded``), padded with blank.
          need_pad:
            True for training: the output has one frame per input symbol. Predictors with
            a finite context may accept False, meaning ``y`` already holds the full left
            context (see :class:`StatelessDecoder`).
        Returns:
          A tensor of shape (N, U, output_dim).
        """

    @abc.abstractmethod
    def init_state(self, batch_size: int, device: torch.device) -> State:
        """The state before any symbol (not even the start blank) has been read.

        Args:
          batch_size:
            Number of utterances N.
          device:
            Device of the state tensors.
        """

    @abc.abstractmethod
    def step(self, tokens: torch.Tensor, state: State) -> Tuple[torch.Tensor, State]:
        """Read one symbol per utterance.

        Args:
          tokens:
            An int64 tensor of shape (N,), the symbols to read.
          state:
            The current state (from :meth:`init_state` or a previous :meth:`step`).
        Returns:
          A tuple ``(out, new_state)``, with ``out`` of shape (N, output_dim): the output
          for the context ending with ``tokens``.
        """

    @abc.abstractmethod
    def merge_states(self, mask: torch.Tensor, new_state: State, old_state: State) -> State:
        """Take ``new_state`` where ``mask`` is True and ``old_state`` elsewhere.

        Args:
          mask:
            A bool tensor of shape (N,).
          new_state:
            A state for N utterances.
          old_state:
            A state for N utterances.
        Returns:
          The merged state for N utterances.
        """

    @abc.abstractmethod
    def select_state(self, state: State, index: torch.Tensor) -> State:
        """Gather states by index (e.g. to reorder or duplicate hypotheses in beam search).

        Args:
          state:
            A state for N utterances.
          index:
            An int64 tensor of shape (M,) with entries in [0, N).
        Returns:
          A state for M utterances.
        """


class StatelessDecoder(Predictor):
    """The stateless predictor: an embedding, then a depthwise 1-D convolution over the
    last ``context_size`` symbols (no padding) and a ReLU.

    Its decoding state is the last ``context_size`` symbols, a tensor of shape
    (N, context_size), initially all blank.
    """

    def __init__(self, vocab_size: int, decoder_dim: int, blank_id: int = 0, context_size: int = 2) -> None:
        """
        Args:
          vocab_size:
            Number of symbols, blank included.
          decoder_dim:
            Embedding (and output) dimension.
          blank_id:
            Id of blank; its embedding is the zero vector (``padding_idx``).
          context_size:
            Number of symbols the output depends on (1 = bigram-like: only the last symbol).
        """
        super().__init__()
        if context_size < 1:
            raise ValueError(f"context_size must be >= 1, got {context_size}")
        self.vocab_size = vocab_size
        self.blank_id = blank_id
        self.output_dim = decoder_dim
        self.context_size = context_size
        self.embedding = nn.Embedding(vocab_size, decoder_dim, padding_idx=blank_id)
        self.conv = (
            nn.Conv1d(decoder_dim, decoder_dim, kernel_size=context_size, groups=decoder_dim, bias=False)
            if context_size > 1
            else None
        )

    def forward(self, y: torch.Tensor, need_pad: bool = True) -> torch.Tensor:
        """
        Args:
          y:
            An int64 tensor of shape (N, U) with symbols in [0, vocab_size): for training,
            ``sos_y_padded`` (blank, then the labels, padded with blank).
          need_pad:
            If True, ``context_size - 1`` blanks are (implicitly) prepended so the output
            has U frames. If False, ``y`` holds the full left context and the output has
            ``U - context_size + 1`` frames (U must be >= context_size).
        Returns:
          A tensor of shape (N, U, decoder_dim) if ``need_pad`` else
          (N, U - context_size + 1, decoder_dim).
        """
        emb = self.embedding(y)  # (N, U, D)
        if self.conv is not None:
            emb = emb.transpose(1, 2)  # (N, D, U)
            if need_pad:
                # Blank's embedding is zero, so zero padding == blank left context.
                emb = F.pad(emb, (self.context_size - 1, 0))
            elif y.size(1) < self.context_size:
                raise ValueError(f"need_pad=False needs U >= context_size={self.context_size}, got U={y.size(1)}")
            emb = self.conv(emb).transpose(1, 2)
        return F.relu(emb)

    def init_state(self, batch_size: int, device: torch.device) -> torch.Tensor:
        """
        Args:
          batch_size:
            Number of utterances N.
          device:
            Device of the state.
        Returns:
          An int64 tensor of shape (N, context_size) filled with blank.
        """
        return torch.full((batch_size, self.context_size), self.blank_id, dtype=torch.int64, device=device)

    def step(self, tokens: torch.Tensor, state: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
          tokens:
            An int64 tensor of shape (N,).
          state:
            An int64 tensor of shape (N, context_size), the previous symbols.
        Returns:
          A tuple ``(out, new_state)``: ``out`` of shape (N, decoder_dim), ``new_state`` the
          last ``context_size`` symbols, ``tokens`` included, of shape (N, context_size).
        """
        new_state = torch.cat([state[:, 1:], tokens.to(state.dtype).unsqueeze(1)], dim=1)
        out = self.forward(new_state, need_pad=False)  # (N, 1, D)
        return out.squeeze(1), new_state

    def merge_states(self, mask: torch.Tensor, new_state: torch.Tensor, old_state: torch.Tensor) -> torch.Tensor:
        """
        Args:
          mask:
            A bool tensor of shape (N,).
          new_state:
            An int64 tensor of shape (N, context_size).
          old_state:
            An int64 tensor of shape (N, context_size).
        Returns:
          An int64 tensor of shape (N, context_size).
        """
        return torch.where(mask.unsqueeze(1), new_state, old_state)

    def select_state(self, state: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """
        Args:
          state:
            An int64 tensor of shape (N, context_size).
          index:
            An int64 tensor of shape (M,).
        Returns:
          An int64 tensor of shape (M, context_size).
        """
        return state.index_select(0, index)
