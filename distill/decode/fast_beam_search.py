"""Fast beam search: transducer decoding with a k2 graph (``k2.RnntDecodingStreams``).

k2 advances one stream per utterance through a decoding graph, one frame at a time, with
at most one non-blank symbol per frame; at each frame it asks for the joiner's
log-probabilities in each distinct *context* (graph state aside, a hypothesis is known to
k2 only by its last ``decoder_history_len`` tokens, padded on the left with blank at the
start of the utterance), prunes with ``beam`` / ``max_states`` / ``max_contexts``, and at
the end returns a lattice whose arcs carry the graph's labels (tokens; 0 on blank arcs)
and its attributes (e.g. the word ids of an LG graph as ``aux_labels``). Two graphs:

* the trivial graph (:func:`trivial_graph`, every token anywhere, no scores): free-running
  decoding; :func:`fast_beam_search_one_best` takes the best path;
* LG (``data/lang_bpe_*/LG.pt`` from :mod:`distill.lang.graph`: token labels, word
  aux_labels, n-gram scores, disambiguation symbols removed, epsilon-free, arc-sorted, as
  k2's RNN-T decoding needs): :func:`fast_beam_search_nbest_LG` samples paths from the
  lattice, scores each distinct word sequence by the log-sum of its paths, and returns the
  best one, as icefall's ``fast_beam_search_nbest_LG`` does.

The predictor state problem. Keying hypotheses on the last few tokens is exact for the
stateless predictor, whose output depends on its last ``context_size`` tokens only (that is
its ``decoder_history_len``). The LSTM predictor depends on the whole history, which k2
does not keep. Our approach is a truncated history: decode with ``decoder_history_len =
lstm_context_size`` and compute the predictor output of a context as the LSTM's output
after reading, from its initial state, the start symbol (blank) and then the context's
tokens. A hypothesis shorter than the context is therefore scored exactly (its context is
its whole history, the left padding is the start of the utterance), and a longer one as if
the utterance had begun ``lstm_context_size`` tokens ago; hypotheses that share their last
``lstm_context_size`` tokens (and graph state) are merged, which is what makes the search
finite. The start symbol is read first because the LSTM only ever saw sequences beginning
with it in training. :func:`~distill.decode.context_cache.predictor_outputs_for_contexts`
does this for any :class:`~distill.models.decoder.Predictor` through its training-time
``forward`` (for the stateless predictor it gives exactly icefall's ``decoder(contexts,
need_pad=False)``), and
:class:`~distill.decode.context_cache.ProjectedContextCache` runs it once per distinct
context and search (most frames emit blank, so most contexts recur frame after frame).
With ``lstm_context_size`` at least as large as the longest hypothesis the search is exact
for the LSTM too (tested against modified beam search). Longer contexts cost more joiner
and predictor evaluations (more distinct contexts, each a longer LSTM run) and merge fewer
hypotheses, and k2 bounds them: it numbers a state ``context * num_graph_states +
graph_state`` in int64 with the context in base ``vocab_size``, so ``vocab_size **
history * num_graph_states`` must stay below 2**63 (checked; see
:data:`DEFAULT_LSTM_CONTEXT_SIZE`).

Batches. k2 prunes each stream on its own. Past its last frame, an utterance's stream is
given log-probability 0 for blank and nothing else, so padding frames change nothing; and
since k2 (1.23.4) leaves the arcs of the last frame handed to ``format_output`` out of the
lattice, every utterance gets one such frame more than it has. The lattice of an utterance
thus covers exactly its frames and equals the lattice of decoding it alone (tested).
Measured otherwise: formatting the ``lens`` frames after decoding all frames, as icefall
does, loses each utterance's last frame, and with tight pruning (``max_states=6,
max_contexts=3``) gave lattices with no final state (empty results); giving padding frames
their real log-probabilities made batched results differ from per-utterance ones.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Union

import k2
import torch

from distill.decode.context_cache import ProjectedContextCache
from distill.models.decoder import Predictor, StatelessDecoder
from distill.models.transducer import Transducer

#: Default tokens of history for predictors without a finite context (the LSTM predictor).
#: k2 numbers states by ``vocab_size ** history * num_graph_states`` in int64: with 500
#: BPE tokens and an LG of millions of states, 4 is about the longest history that fits.
DEFAULT_LSTM_CONTEXT_SIZE = 4


def trivial_graph(model: Transducer, device: Optional[Union[str, torch.device]] = None) -> k2.Fsa:
    """The trivial decoding graph of ``model``: one state looping on every non-blank token.

    Args:
      model:
        The transducer; its tokens are ``1 .. vocab_size - 1`` (blank is 0).
      device:
        Device of the graph (that of the encoder output when decoding); CPU if None.
    Returns:
      ``k2.trivial_graph(vocab_size - 1)``, whose labels (and aux_labels) are token ids.
    """
    return k2.trivial_graph(model.vocab_size - 1, device=device)


def scale_graph_scores(graph: k2.Fsa, scale: float) -> k2.Fsa:
    """A copy of ``graph`` with its scores multiplied by ``scale`` (e.g. the n-gram LM weight
    of LG). The input is left unchanged: setting ``scores`` writes into a k2 FSA's arcs."""
    scaled = graph.clone()
    scaled.scores = graph.scores * scale
    return scaled


def decoder_history_len(predictor: Predictor, lstm_context_size: int = DEFAULT_LSTM_CONTEXT_SIZE) -> int:
    """Tokens of history k2 keeps per hypothesis for ``predictor``.

    Args:
      predictor:
        The transducer's predictor.
      lstm_context_size:
        Used for predictors without a finite context (see the module docstring).
    Returns:
      ``predictor.context_size`` for the stateless predictor (exact), else
      ``lstm_context_size``.
    """
    if isinstance(predictor, StatelessDecoder):
        return predictor.context_size
    if lstm_context_size < 1:
        raise ValueError(f"lstm_context_size must be >= 1, got {lstm_context_size}")
    return lstm_context_size


@torch.no_grad()
def fast_beam_search(
    model: Transducer,
    decoding_graph: k2.Fsa,
    encoder_out: torch.Tensor,
    encoder_out_lens: torch.Tensor,
    beam: float,
    max_states: int,
    max_contexts: int,
    lstm_context_size: int = DEFAULT_LSTM_CONTEXT_SIZE,
) -> k2.Fsa:
    """Decode a batch with k2's RNN-T decoding streams and return the lattice.

    Args:
      model:
        The transducer, in eval mode; blank must be 0 (k2's RNN-T decoding assumes it).
      decoding_graph:
        An epsilon-free graph with token ids as labels (trivial graph or LG), on the device
        of ``encoder_out``.
      encoder_out:
        A tensor of shape (N, T, encoder_dim), from :meth:`Transducer.encode`, N >= 1.
      encoder_out_lens:
        A 1-D integer tensor of shape (N,): valid frames per utterance.
      beam:
        Log-probability beam: states scoring below the frame's best minus ``beam`` are
        pruned (per utterance).
      max_states:
        Most states kept per utterance and frame.
      max_contexts:
        Most distinct contexts kept per utterance and frame.
      lstm_context_size:
        History length for predictors without a finite context (see the module docstring).
    Returns:
      An FsaVec lattice with axes [utt][state][arc]: labels are tokens (0 on blank arcs),
      scores are graph score plus log-probability, and the graph's attributes (e.g. word
      ``aux_labels``) are carried along. Utterances are pruned independently, so each
      lattice equals that of decoding the utterance alone.
    """
    if encoder_out.ndim != 3 or encoder_out_lens.shape != (encoder_out.size(0),) or encoder_out.size(0) == 0:
        raise ValueError(f"Bad shapes: encoder_out {tuple(encoder_out.shape)}, lens {tuple(encoder_out_lens.shape)}")
    if model.blank_id != 0:
        raise ValueError(f"k2's RNN-T decoding needs blank id 0, the model has {model.blank_id}")
    if decoding_graph.device != encoder_out.device:
        raise ValueError(f"decoding_graph is on {decoding_graph.device}, encoder_out on {encoder_out.device}")
    joiner = model.joiner
    config = k2.RnntDecodingConfig(
        vocab_size=model.vocab_size,
        decoder_history_len=decoder_history_len(model.decoder, lstm_context_size),
        beam=beam,
        max_states=max_states,
        max_contexts=max_contexts,
    )
    _check_state_ids_fit(model.vocab_size, config.decoder_history_len, decoding_graph.shape[0])
    n = encoder_out.size(0)
    streams = k2.RnntDecodingStreams([k2.RnntDecodingStream(decoding_graph) for _ in range(n)], config)
    lens = encoder_out_lens.clamp(min=0, max=encoder_out.size(1)).to(encoder_out.device)
    enc_proj = joiner.encoder_proj(encoder_out)  # (N, T, joiner_dim)
    predictor_proj = ProjectedContextCache(model, config.decoder_history_len, encoder_out.device)
    # One frame more than the longest utterance, and blank only past each utterance's end
    # (see "Batches" in the module docstring; measured with k2 1.23.4: a lattice formatted
    # with n frames holds n - 1 frames of arcs, and the pruning on the n-th changes it).
    for t in range(int(lens.max()) + 1):
        shape, contexts = streams.get_contexts()  # contexts: (M, history)
        utt_of_context = shape.row_ids(1).to(torch.int64)
        # Blank only, at log-probability 0; the others far below any beam but finite, to
        # keep k2's arithmetic clean.
        log_probs = torch.full((contexts.size(0), model.vocab_size), -1.0e30, device=encoder_out.device)
        log_probs[:, model.blank_id] = 0.0
        live = lens[utt_of_context] > t  # (M,)
        if bool(live.any()):
            frame = enc_proj[utt_of_context[live], t]  # (M', joiner_dim)
            logits = joiner(frame, predictor_proj(contexts[live]), project_input=False)  # (M', V)
            log_probs[live] = logits.float().log_softmax(dim=-1)
        streams.advance(log_probs)
    streams.terminate_and_flush_to_streams()
    return streams.format_output([int(x) + 1 for x in lens.tolist()])


def _check_state_ids_fit(vocab_size: int, history: int, num_graph_states: int) -> None:
    """Refuse settings whose k2 state ids overflow.

    k2 numbers a decoding state ``context * num_graph_states + graph_state``, the context
    written in base ``vocab_size`` with ``history`` digits, in int64, and computes the
    powers of ``vocab_size`` in double precision: both must be exact.
    """
    contexts = vocab_size**history
    if contexts > 2**53 or contexts * num_graph_states >= 2**63:
        raise ValueError(
            f"decoder history of {history} tokens is too long for vocab_size {vocab_size} and a graph "
            f"of {num_graph_states} states (k2's state ids would overflow): use a smaller lstm_context_size"
        )


def _best_path_tokens(lattice: k2.Fsa) -> List[List[int]]:
    """Non-blank labels of the best path of each lattice (empty for an empty lattice)."""
    best = k2.shortest_path(lattice, use_double_scores=True)
    labels = k2.RaggedTensor(best.arcs.shape().remove_axis(1), best.labels.contiguous())  # [utt][arc]
    return labels.remove_values_leq(0).tolist()


def fast_beam_search_one_best(
    model: Transducer,
    decoding_graph: k2.Fsa,
    encoder_out: torch.Tensor,
    encoder_out_lens: torch.Tensor,
    beam: float = 4.0,
    max_states: int = 8,
    max_contexts: int = 4,
    lstm_context_size: int = DEFAULT_LSTM_CONTEXT_SIZE,
) -> List[List[int]]:
    """Fast beam search, then the best path of each lattice (default pruning: icefall's
    narrow setting for the trivial graph, see :mod:`distill.decode.methods`).

    Args:
      model:
        The transducer, in eval mode; blank must be 0.
      decoding_graph:
        Usually :func:`trivial_graph`; on the device of ``encoder_out``.
      encoder_out:
        A tensor of shape (N, T, encoder_dim), from :meth:`Transducer.encode`.
      encoder_out_lens:
        A 1-D integer tensor of shape (N,): valid frames per utterance.
      beam:
        Log-probability beam of :func:`fast_beam_search`.
      max_states:
        Most states kept per utterance and frame.
      max_contexts:
        Most distinct contexts kept per utterance and frame.
      lstm_context_size:
        History length for predictors without a finite context (see the module docstring).
    Returns:
      The token ids (blanks removed) of each utterance's best path, a list of N lists
      (empty where the lattice has no path to a final state).
    """
    if encoder_out.size(0) == 0:
        return []
    lattice = fast_beam_search(
        model, decoding_graph, encoder_out, encoder_out_lens, beam, max_states, max_contexts, lstm_context_size
    )
    return _best_path_tokens(lattice)


def sequence_scores(
    lattice: k2.Fsa, sequences: Sequence[Sequence[int]], utt_of_sequence: torch.Tensor, log_semiring: bool = True
) -> torch.Tensor:
    """Scores of output-label sequences in lattices: the log-sum (or max) over the paths of
    a lattice whose non-zero ``aux_labels`` spell the sequence.

    Args:
      lattice:
        An FsaVec with axes [utt][state][arc] and ``aux_labels`` (a tensor or a ragged
        tensor; 0 is epsilon): e.g. word ids for an LG lattice, token ids for a trivial
        graph's lattice.
      sequences:
        The S label sequences (no zeros).
      utt_of_sequence:
        An int32 tensor of shape (S,) on the lattice's device: the lattice of each sequence.
      log_semiring:
        True: log-sum over paths (the sequence's total probability); False: the best path.
    Returns:
      A float64 tensor of shape (S,); -inf for a sequence with no path.
    """
    # Invert so that the sequence labels are the arc labels; then blank arcs and arcs without
    # an output label are epsilons, which the self-loops of the linear FSAs absorb.
    inv = k2.arc_sort(k2.invert(lattice))
    linear = k2.linear_fsa_with_self_loops(k2.linear_fsa([list(s) for s in sequences], device=lattice.device))
    paths = k2.intersect_device(inv, linear, b_to_a_map=utt_of_sequence.to(torch.int32), sorted_match_a=True)
    paths = k2.top_sort(k2.connect(paths))
    return paths.get_tot_scores(use_double_scores=True, log_semiring=log_semiring)


def _sampled_sequences(lattice: k2.Fsa, num_paths: int, nbest_scale: float) -> k2.RaggedTensor:
    """Distinct output-label sequences of ``num_paths`` paths sampled from each lattice.

    Args:
      lattice:
        An FsaVec with ``aux_labels`` (tensor or ragged).
      num_paths:
        Paths sampled per lattice (``k2.random_paths``, deterministic).
      nbest_scale:
        Scale of the lattice scores while sampling; below 1 flattens the distribution and
        gives more distinct sequences.
    Returns:
      A ragged tensor [utt][seq][label] of distinct sequences (no zeros).
    """
    sampling = lattice.clone()
    sampling.scores = lattice.scores * nbest_scale
    paths = k2.random_paths(sampling, use_double_scores=True, num_paths=num_paths)  # [utt][path][arc]
    if isinstance(lattice.aux_labels, torch.Tensor):
        labels = k2.ragged.index(lattice.aux_labels, paths)  # [utt][path][arc] -> label
    else:
        labels = lattice.aux_labels.index(paths).remove_axis(2)  # [utt][path][arc][word] -> [utt][path][word]
    unique, _, _ = labels.remove_values_leq(0).unique(need_num_repeats=False, need_new2old_indexes=False)
    return unique


@torch.no_grad()
def fast_beam_search_nbest_LG(
    model: Transducer,
    LG: k2.Fsa,
    encoder_out: torch.Tensor,
    encoder_out_lens: torch.Tensor,
    beam: float = 20.0,
    max_states: int = 64,
    max_contexts: int = 8,
    num_paths: int = 200,
    nbest_scale: float = 0.5,
    ngram_lm_scale: float = 1.0,
    lstm_context_size: int = DEFAULT_LSTM_CONTEXT_SIZE,
) -> List[List[int]]:
    """Fast beam search with LG, then n-best rescoring of word sequences (icefall's
    ``fast_beam_search_nbest_LG``).

    1. decode with LG into a lattice (token labels, word aux_labels);
    2. sample ``num_paths`` paths per lattice from its scores times ``nbest_scale`` and keep
       the distinct word sequences;
    3. score each sequence by the log-sum of all lattice paths carrying it (LM and
       transducer scores; log semiring, as icefall does, since one word sequence has many
       token alignments);
    4. return the best sequence of each utterance.

    Args:
      model:
        The transducer, in eval mode; blank must be 0.
      LG:
        The LG graph of the lang dir (``k2.Fsa.from_dict(torch.load("LG.pt"))``), on the
        device of ``encoder_out``; its vocabulary must be the model's.
      encoder_out:
        A tensor of shape (N, T, encoder_dim), from :meth:`Transducer.encode`.
      encoder_out_lens:
        A 1-D integer tensor of shape (N,): valid frames per utterance.
      beam:
        Log-probability beam of :func:`fast_beam_search`.
      max_states:
        Most states kept per utterance and frame.
      max_contexts:
        Most distinct contexts kept per utterance and frame.
      num_paths:
        Paths sampled per utterance.
      nbest_scale:
        Scale of the lattice scores while sampling (smaller: more distinct sequences).
      ngram_lm_scale:
        Weight of LG's n-gram scores (icefall's ``--ngram-lm-scale``, 0.01 by default
        there). A value other than 1 decodes with a scaled copy of LG made by this call;
        to decode many batches, scale once with :func:`scale_graph_scores` and pass 1.0.
      lstm_context_size:
        History length for predictors without a finite context (see the module docstring).
    Returns:
      The word ids of each utterance's best sequence (ids of the lang dir's ``words.txt``),
      a list of N lists; empty where the lattice has no path to a final state of LG.
    """
    n = encoder_out.size(0)
    if n == 0:
        return []
    if num_paths < 1:
        raise ValueError(f"num_paths must be >= 1, got {num_paths}")
    graph = LG if ngram_lm_scale == 1.0 else scale_graph_scores(LG, ngram_lm_scale)
    lattice = fast_beam_search(
        model, graph, encoder_out, encoder_out_lens, beam, max_states, max_contexts, lstm_context_size
    )
    candidates = _sampled_sequences(lattice, num_paths, nbest_scale)  # [utt][seq][word]
    seqs = candidates.remove_axis(0).tolist()
    utt_of_seq = candidates.shape.row_ids(1)
    results: List[List[int]] = [[] for _ in range(n)]
    if not seqs:
        return results
    scores = sequence_scores(lattice, seqs, utt_of_seq, log_semiring=True).tolist()
    best = [-float("inf")] * n
    for seq, utt, score in zip(seqs, utt_of_seq.tolist(), scores):
        if score > best[utt]:
            best[utt], results[utt] = score, seq
    return results
