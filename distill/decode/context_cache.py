"""Predictor outputs of k2 decoding contexts, each computed once per search.

k2's RNN-T decoding streams ask, at every frame, for the joiner's log-probabilities in each
live *context* (the last ``history`` tokens of a hypothesis, left-padded with blank). Most
frames emit blank, so nearly all of a frame's contexts were already asked for at the frame
before: recomputing the predictor for them each frame made the LSTM predictor most of the
time of ``fast_beam_search`` for the students (measured: 3.1 s of 6.7 s on 200 demo
utterances). :class:`ProjectedContextCache` computes the projected predictor output
(``joiner.decoder_proj(predictor(...))``) of a context the first time it is seen and looks
it up afterwards, all in tensor operations: a context is a number in base ``vocab_size``
(exact in int64 for the histories :mod:`distill.decode.fast_beam_search` allows), kept in a
sorted key tensor that ``torch.searchsorted`` searches.
"""
from __future__ import annotations

import torch

from distill.models.decoder import Predictor
from distill.models.transducer import Transducer


def predictor_outputs_for_contexts(predictor: Predictor, contexts: torch.Tensor) -> torch.Tensor:
    """Predictor outputs for a batch of k2 contexts, for any predictor.

    A context holds the last L tokens of a hypothesis, left-padded with blank when the
    hypothesis is shorter (blank never occurs inside a hypothesis). Each row ``[blank,
    ..., blank, y_1, ..., y_k]`` becomes the training-time input ``[blank, y_1, ..., y_k]``
    (padded on the right, which does not change earlier outputs) and the output at
    position ``k`` is taken: the output after reading the start symbol and the ``k`` tokens.

    Args:
      predictor:
        A predictor (stateless: exact for L >= its context_size; LSTM: the truncated
        history of :mod:`distill.decode.fast_beam_search`).
      contexts:
        An integer tensor of shape (M, L), as from ``RnntDecodingStreams.get_contexts``.
    Returns:
      A tensor of shape (M, output_dim).
    """
    if contexts.ndim != 2:
        raise ValueError(f"contexts must have shape (M, L), got {tuple(contexts.shape)}")
    contexts = contexts.to(torch.int64)
    m, length = contexts.shape
    blank_id = predictor.blank_id
    num_tokens = (contexts != blank_id).sum(dim=1)  # (M,)
    # Left-align: position j takes the context's column j + (L - k), or padding past k.
    cols = torch.arange(length, device=contexts.device).unsqueeze(0)  # (1, L)
    src = (cols + (length - num_tokens).unsqueeze(1)).clamp(max=length - 1)
    aligned = torch.where(cols < num_tokens.unsqueeze(1), contexts.gather(1, src), torch.full_like(contexts, blank_id))
    start = torch.full((m, 1), blank_id, dtype=torch.int64, device=contexts.device)
    out = predictor(torch.cat([start, aligned], dim=1))  # (M, L + 1, output_dim)
    return out[torch.arange(m, device=out.device), num_tokens]


class ProjectedContextCache:
    """``joiner.decoder_proj`` of the predictor output of each context, computed once.

    Valid for one model in eval mode (outputs depend only on the context and the weights).
    Memory grows with the number of distinct contexts seen, so make one per search call.
    """

    def __init__(self, model: Transducer, history: int, device: torch.device) -> None:
        """
        Args:
          model:
            The transducer, in eval mode.
          history:
            Context length L (k2's ``decoder_history_len``); ``vocab_size ** L`` must be
            exact in int64.
          device:
            Device of the contexts and of the cached outputs.
        """
        self.predictor = model.decoder
        self.decoder_proj = model.joiner.decoder_proj
        # Context (c_1 .. c_L) -> key sum_j c_j * V ** (L - j): distinct contexts, distinct keys.
        self.place_values = model.vocab_size ** torch.arange(history - 1, -1, -1, dtype=torch.int64, device=device)
        self.keys = torch.empty(0, dtype=torch.int64, device=device)  # sorted
        self.rows = torch.empty(0, dtype=torch.int64, device=device)  # row in values of each key
        self.values = torch.empty(
            0, self.decoder_proj.out_features, dtype=self.decoder_proj.weight.dtype, device=device
        )  # append-only, grown by doubling
        self.size = 0

    def __call__(self, contexts: torch.Tensor) -> torch.Tensor:
        """Projected predictor outputs of ``contexts`` (M, L) integer: shape (M, joiner_dim)."""
        keys = (contexts.to(torch.int64) * self.place_values).sum(dim=1)
        unique, inverse = torch.unique(keys, return_inverse=True)
        found = self._find(unique)
        if not bool(found.all()):
            # Any row of a key will do (equal keys are equal contexts).
            row_of_unique = torch.empty_like(unique).scatter_(0, inverse, torch.arange(keys.numel(), device=keys.device))
            missing = ~found
            new_values = self.decoder_proj(predictor_outputs_for_contexts(self.predictor, contexts[row_of_unique[missing]]))
            self._insert(unique[missing], new_values)
        pos = torch.searchsorted(self.keys, unique)
        return self.values[self.rows[pos][inverse]]  # one gather of M rows

    def _find(self, keys: torch.Tensor) -> torch.Tensor:
        """Which of the sorted ``keys`` are cached (boolean, same shape)."""
        if self.keys.numel() == 0:
            return torch.zeros_like(keys, dtype=torch.bool)
        pos = torch.searchsorted(self.keys, keys).clamp(max=self.keys.numel() - 1)
        return self.keys[pos] == keys

    def _insert(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Add new keys (not cached yet) and their values."""
        n = keys.numel()
        if self.size + n > self.values.size(0):
            grown = self.values.new_empty(max(2 * self.values.size(0), self.size + n, 64), self.values.size(1))
            grown[: self.size] = self.values[: self.size]
            self.values = grown
        self.values[self.size : self.size + n] = values
        rows = torch.arange(self.size, self.size + n, device=keys.device)
        self.size += n
        self.keys, order = torch.sort(torch.cat([self.keys, keys]))
        self.rows = torch.cat([self.rows, rows])[order]
