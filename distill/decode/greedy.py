"""Batched greedy search for transducers, through the :class:`Predictor` interface."""
from __future__ import annotations

from typing import List, Tuple

import torch

from distill.models.transducer import Transducer


def greedy_search(
    model: Transducer,
    encoder_out: torch.Tensor,
    encoder_out_lens: torch.Tensor,
    max_sym_per_frame: int = 1,
) -> List[List[int]]:
    """Greedy search over a batch: the symbols of :func:`greedy_search_timed`, without their frames."""
    timed = greedy_search_timed(model, encoder_out, encoder_out_lens, max_sym_per_frame)
    return [[token for token, _ in hyp] for hyp in timed]


@torch.no_grad()
def greedy_search_timed(
    model: Transducer,
    encoder_out: torch.Tensor,
    encoder_out_lens: torch.Tensor,
    max_sym_per_frame: int = 1,
) -> List[List[Tuple[int, int]]]:
    """Greedy search over a batch; each utterance stops at its own last frame.

    At each frame, the most likely symbol is taken; on a non-blank, the predictor reads
    it and (up to ``max_sym_per_frame`` symbols) the same frame is tried again, on a blank
    the search moves to the next frame. Utterances are independent: the result for one
    utterance equals greedy search on it alone.

    Args:
      model:
        The transducer (its ``decoder`` implements the Predictor interface).
      encoder_out:
        A tensor of shape (N, T, encoder_dim), from :meth:`Transducer.encode`.
      encoder_out_lens:
        A 1-D integer tensor of shape (N,): valid frames per utterance (frames past it
        are ignored).
      max_sym_per_frame:
        Most non-blank symbols emitted per frame (>= 1).
    Returns:
      For each of the N utterances, its decoded symbols (blanks removed) as ``(symbol id,
      frame)`` pairs: the encoder frame at which each was emitted (its timing).
    """
    if max_sym_per_frame < 1:
        raise ValueError(f"max_sym_per_frame must be >= 1, got {max_sym_per_frame}")
    if encoder_out.ndim != 3 or encoder_out_lens.shape != (encoder_out.size(0),):
        raise ValueError(f"Bad shapes: encoder_out {tuple(encoder_out.shape)}, lens {tuple(encoder_out_lens.shape)}")
    predictor = model.decoder
    joiner = model.joiner
    blank_id = model.blank_id
    device = encoder_out.device
    n = encoder_out.size(0)
    lens = encoder_out_lens.to(device)
    hyps: List[List[Tuple[int, int]]] = [[] for _ in range(n)]
    if n == 0:
        return hyps

    enc_proj = joiner.encoder_proj(encoder_out)  # (N, T, joiner_dim)
    state = predictor.init_state(n, device)
    blanks = torch.full((n,), blank_id, dtype=torch.int64, device=device)
    dec_out, state = predictor.step(blanks, state)
    dec_proj = joiner.decoder_proj(dec_out)  # (N, joiner_dim)

    num_frames = min(int(lens.max()), encoder_out.size(1))
    for t in range(num_frames):
        active = lens > t  # (N,)
        for _ in range(max_sym_per_frame):
            logits = joiner(enc_proj[:, t], dec_proj, project_input=False)  # (N, vocab_size)
            tokens = logits.argmax(dim=-1)
            emit = active & (tokens != blank_id)
            if not bool(emit.any()):
                break
            for i in emit.nonzero(as_tuple=True)[0].tolist():
                hyps[i].append((int(tokens[i]), t))
            new_out, new_state = predictor.step(tokens, state)
            state = predictor.merge_states(emit, new_state, state)
            dec_proj = torch.where(emit.unsqueeze(1), joiner.decoder_proj(new_out), dec_proj)
            # An utterance that emitted blank moves on; only emitters retry this frame.
            active = emit
    return hyps
