"""Batched modified beam search for transducers, through the :class:`Predictor` interface.

"Modified" beam search (icefall's name) limits each frame to at most one non-blank symbol,
so every hypothesis advances exactly one frame per step and hypotheses of all utterances
can be expanded together:

1. each hypothesis ``h`` (with log-probability ``s_h``) is joined with the current frame,
   giving ``s_h + log p(v | h, t)`` for every symbol ``v``;
2. per utterance, the ``beam`` best (hypothesis, symbol) pairs are kept;
3. blank keeps the token sequence, a non-blank symbol appends itself; pairs that end up
   with the same token sequence (e.g. ``[a, b]`` + blank and ``[a]`` + ``b``) are one
   hypothesis, whose log-probability is the log-add of theirs.

The predictor state of a hypothesis depends only on its token sequence, so merged
hypotheses share it and the search needs nothing from the predictor beyond ``init_state``,
``step``, ``select_state`` and ``merge_states``: the stateless and the LSTM predictor are
searched exactly alike. Each utterance stops at its own last frame and never competes with
the others for the beam, so the result for an utterance equals decoding it alone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Tuple

import torch

from distill.models.decoder import Predictor, State
from distill.models.transducer import Transducer

#: A token sequence and its log-probability (log-added over its alignments).
ScoredHyp = Tuple[List[int], float]


@dataclass
class _Beam:
    """The live hypotheses of all unfinished utterances, grouped by utterance.

    Attributes:
      utts:
        Utterance index of each hypothesis, non-decreasing (hypotheses of an utterance are
        contiguous).
      tokens:
        Token sequence of each hypothesis.
      scores:
        Float64 tensor of shape (H,), the log-probabilities.
      state:
        Predictor state for the H hypotheses.
      dec_proj:
        Tensor of shape (H, joiner_dim): ``joiner.decoder_proj`` of the predictor output.
    """

    utts: List[int]
    tokens: List[Tuple[int, ...]]
    scores: torch.Tensor
    state: State
    dec_proj: torch.Tensor

    def select(self, index: List[int], predictor: Predictor) -> "_Beam":
        """The hypotheses at ``index`` (a list of positions), in that order."""
        idx = torch.tensor(index, dtype=torch.int64, device=self.scores.device)
        return _Beam(
            utts=[self.utts[i] for i in index],
            tokens=[self.tokens[i] for i in index],
            scores=self.scores.index_select(0, idx),
            state=predictor.select_state(self.state, idx),
            dec_proj=self.dec_proj.index_select(0, idx),
        )


def _log_add(a: float, b: float) -> float:
    """``log(exp(a) + exp(b))`` without overflow."""
    hi, lo = (a, b) if a >= b else (b, a)
    return hi + math.log1p(math.exp(lo - hi)) if lo > -math.inf else hi


def _best_expansions(
    log_probs: torch.Tensor, utts: List[int], beam: int
) -> Tuple[List[int], List[int], List[float]]:
    """The ``beam`` best (hypothesis, symbol) pairs of each utterance.

    Args:
      log_probs:
        A tensor of shape (H, V): hypothesis score plus symbol log-probability.
      utts:
        Utterance of each hypothesis, non-decreasing.
      beam:
        Pairs kept per utterance.
    Returns:
      ``(parents, symbols, scores)``: for each kept pair, the index of its hypothesis in
      [0, H), its symbol and its score; grouped by utterance, best first within one.
    """
    device = log_probs.device
    num_hyps, vocab_size = log_probs.shape
    utt_ids = torch.tensor(utts, dtype=torch.int64, device=device)
    counts = torch.unique_consecutive(utt_ids, return_counts=True)[1]  # (R,) hyps per utterance
    starts = torch.cumsum(counts, 0) - counts
    row = torch.repeat_interleave(torch.arange(counts.numel(), device=device), counts)  # (H,)
    slot = torch.arange(num_hyps, device=device) - starts[row]
    # One row per utterance, so that a single topk ranks each utterance's pairs separately;
    # padding is -inf and is dropped below by its slot, not by its value.
    max_hyps = int(counts.max())
    padded = log_probs.new_full((counts.numel(), max_hyps, vocab_size), -math.inf)
    padded[row, slot] = log_probs
    k = min(beam, max_hyps * vocab_size)
    top_scores, top_index = padded.view(counts.numel(), -1).topk(k, dim=1)  # (R, k), sorted
    top_slot = torch.div(top_index, vocab_size, rounding_mode="floor")
    valid = top_slot < counts.unsqueeze(1)
    parents = (starts.unsqueeze(1) + top_slot)[valid]
    symbols = (top_index % vocab_size)[valid]
    return parents.tolist(), symbols.tolist(), top_scores[valid].tolist()


def _expand(beam_state: _Beam, model: Transducer, frame_proj: torch.Tensor, beam: int) -> _Beam:
    """One frame of modified beam search.

    Args:
      beam_state:
        The live hypotheses.
      model:
        The transducer.
      frame_proj:
        Tensor of shape (H, joiner_dim): ``joiner.encoder_proj`` of the current frame of
        each hypothesis's utterance.
      beam:
        Pairs kept per utterance.
    Returns:
      The hypotheses after this frame, merged by token sequence.
    """
    predictor, joiner, blank_id = model.decoder, model.joiner, model.blank_id
    logits = joiner(frame_proj, beam_state.dec_proj, project_input=False)  # (H, V)
    log_probs = logits.log_softmax(dim=-1).to(torch.float64) + beam_state.scores.unsqueeze(1)
    parents, symbols, scores = _best_expansions(log_probs, beam_state.utts, beam)

    # Merge pairs that give the same token sequence of the same utterance.
    position: Dict[Tuple[int, Tuple[int, ...]], int] = {}
    kept_parents: List[int] = []
    kept_symbols: List[int] = []
    kept_scores: List[float] = []
    tokens: List[Tuple[int, ...]] = []
    for parent, symbol, score in zip(parents, symbols, scores):
        seq = beam_state.tokens[parent] if symbol == blank_id else beam_state.tokens[parent] + (symbol,)
        key = (beam_state.utts[parent], seq)
        if key in position:
            i = position[key]
            kept_scores[i] = _log_add(kept_scores[i], score)
            continue
        position[key] = len(tokens)
        kept_parents.append(parent)
        kept_symbols.append(symbol)
        kept_scores.append(score)
        tokens.append(seq)

    new = beam_state.select(kept_parents, predictor)
    new.tokens = tokens
    new.scores = torch.tensor(kept_scores, dtype=torch.float64, device=new.scores.device)
    symbol_t = torch.tensor(kept_symbols, dtype=torch.int64, device=new.scores.device)
    emitted = symbol_t != blank_id
    if bool(emitted.any()):
        # The predictor reads the symbol only where one was emitted; rows that took blank
        # are stepped too (to keep one batched call) and then restored by merge_states.
        out, stepped = predictor.step(symbol_t, new.state)
        new.state = predictor.merge_states(emitted, stepped, new.state)
        new.dec_proj = torch.where(emitted.unsqueeze(1), joiner.decoder_proj(out), new.dec_proj)
    return new


@torch.no_grad()
def modified_beam_search_nbest(
    model: Transducer,
    encoder_out: torch.Tensor,
    encoder_out_lens: torch.Tensor,
    beam: int = 4,
) -> List[List[ScoredHyp]]:
    """Modified beam search over a batch, returning the final beam of each utterance.

    Args:
      model:
        The transducer (its ``decoder`` implements the Predictor interface); put it in
        eval mode first.
      encoder_out:
        A tensor of shape (N, T, encoder_dim), from :meth:`Transducer.encode`.
      encoder_out_lens:
        A 1-D integer tensor of shape (N,): valid frames per utterance (frames past it
        are ignored).
      beam:
        Number of (hypothesis, symbol) pairs kept per utterance and frame (>= 1); merging
        may leave fewer hypotheses.
    Returns:
      For each of the N utterances, its hypotheses as ``(token ids, log-probability)``,
      best first. The log-probability is summed over the alignments the search kept, so
      with a beam wide enough to keep every hypothesis it is the exact log-probability of
      the token sequence under the model (with at most one symbol per frame).
    """
    if beam < 1:
        raise ValueError(f"beam must be >= 1, got {beam}")
    if encoder_out.ndim != 3 or encoder_out_lens.shape != (encoder_out.size(0),):
        raise ValueError(f"Bad shapes: encoder_out {tuple(encoder_out.shape)}, lens {tuple(encoder_out_lens.shape)}")
    predictor, joiner = model.decoder, model.joiner
    device = encoder_out.device
    n = encoder_out.size(0)
    if n == 0:
        return []
    lens = encoder_out_lens.clamp(max=encoder_out.size(1)).tolist()
    enc_proj = joiner.encoder_proj(encoder_out)  # (N, T, joiner_dim)

    state = predictor.init_state(n, device)
    dec_out, state = predictor.step(torch.full((n,), model.blank_id, dtype=torch.int64, device=device), state)
    live = _Beam(
        utts=list(range(n)),
        tokens=[()] * n,
        scores=torch.zeros(n, dtype=torch.float64, device=device),
        state=state,
        dec_proj=joiner.decoder_proj(dec_out),
    )
    finished: List[List[ScoredHyp]] = [[] for _ in range(n)]
    for t in range(max(lens)):
        ended = [i for i, u in enumerate(live.utts) if lens[u] <= t]
        if ended:
            _collect(live, ended, finished)
            live = live.select([i for i, u in enumerate(live.utts) if lens[u] > t], predictor)
        frame_proj = enc_proj[torch.tensor(live.utts, dtype=torch.int64, device=device), t]  # (H, joiner_dim)
        live = _expand(live, model, frame_proj, beam)
    _collect(live, list(range(len(live.utts))), finished)
    return [sorted(hyps, key=lambda h: -h[1]) for hyps in finished]


def _collect(live: _Beam, index: List[int], finished: List[List[ScoredHyp]]) -> None:
    """Move the hypotheses at ``index`` of ``live`` into ``finished`` (by utterance)."""
    scores = live.scores.tolist()
    for i in index:
        finished[live.utts[i]].append((list(live.tokens[i]), scores[i]))


def modified_beam_search(
    model: Transducer,
    encoder_out: torch.Tensor,
    encoder_out_lens: torch.Tensor,
    beam: int = 4,
    length_norm: bool = True,
) -> List[List[int]]:
    """icefall's modified beam search (at most one non-blank symbol per frame), batched.

    See the module docstring for the search; the result of an utterance equals decoding it
    alone.

    Args:
      model:
        The transducer (its ``decoder`` implements the Predictor interface); put it in
        eval mode first.
      encoder_out:
        A tensor of shape (N, T, encoder_dim), from :meth:`Transducer.encode`.
      encoder_out_lens:
        A 1-D integer tensor of shape (N,): valid frames per utterance.
      beam:
        Number of (hypothesis, symbol) pairs kept per utterance and frame (>= 1).
      length_norm:
        Choose the final hypothesis by log-probability divided by its length, as icefall
        does (which counts the start context too: here the length is the number of
        tokens plus one, for the start symbol), instead of by log-probability; it offsets
        the bias of summed log-probabilities towards short hypotheses.
    Returns:
      The decoded token ids (blanks removed) of each utterance, a list of N lists.
    """
    nbest = modified_beam_search_nbest(model, encoder_out, encoder_out_lens, beam)

    def rank(hyp: ScoredHyp) -> float:
        return hyp[1] / (len(hyp[0]) + 1) if length_norm else hyp[1]

    return [max(hyps, key=rank)[0] for hyps in nbest]
