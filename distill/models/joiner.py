"""The transducer joiner: ``output_linear(tanh(encoder_proj(enc) + decoder_proj(dec)))``."""
from __future__ import annotations

import torch
from torch import nn


class Joiner(nn.Module):
    """Combines encoder and predictor outputs into logits over the vocabulary.

    For the pruned loss, project first (``encoder_proj`` / ``decoder_proj``), prune the
    projected tensors with ``k2.do_rnnt_pruning``, then call ``forward`` with
    ``project_input=False``.
    """

    def __init__(self, encoder_dim: int, decoder_dim: int, joiner_dim: int, vocab_size: int) -> None:
        """
        Args:
          encoder_dim:
            Dimension of the encoder output.
          decoder_dim:
            Dimension of the predictor output.
          joiner_dim:
            Dimension of the joint hidden space.
          vocab_size:
            Number of output symbols, blank included.
        """
        super().__init__()
        self.encoder_proj = nn.Linear(encoder_dim, joiner_dim)
        self.decoder_proj = nn.Linear(decoder_dim, joiner_dim)
        self.output_linear = nn.Linear(joiner_dim, vocab_size)

    def forward(self, encoder_out: torch.Tensor, decoder_out: torch.Tensor, project_input: bool = True) -> torch.Tensor:
        """
        Args:
          encoder_out:
            A tensor of shape (..., encoder_dim), or (..., joiner_dim) if not
            ``project_input``; e.g. (N, T, s_range, joiner_dim) after pruning, or
            (N, T, 1, encoder_dim) for the full lattice.
          decoder_out:
            A tensor of shape (..., decoder_dim), or (..., joiner_dim) if not
            ``project_input``, whose leading dimensions broadcast with ``encoder_out``'s;
            e.g. (N, T, s_range, joiner_dim) or (N, 1, U + 1, decoder_dim).
          project_input:
            Whether to apply ``encoder_proj`` and ``decoder_proj`` first.
        Returns:
          Logits of shape (broadcast leading dims..., vocab_size).
        """
        if project_input:
            encoder_out = self.encoder_proj(encoder_out)
            decoder_out = self.decoder_proj(decoder_out)
        return self.output_linear(torch.tanh(encoder_out + decoder_out))
