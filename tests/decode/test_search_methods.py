"""Search methods: greedy, modified beam search, fast beam search (trivial graph and LG).

* On toy models (random weights, 3-token vocabulary) with beams wide enough to keep every
  hypothesis, fast beam search's lattice and modified beam search hold the same
  hypotheses with the same scores, for the stateless, the LSTM and a GRU predictor (the
  last two with a history at least as long as any hypothesis, so the truncation is exact).
* Batched results equal per-utterance results, with pruning that bites.
* On tiny models that have learned two training utterances, every method returns them
  (the LSTM model with the default, truncated history), LG decoding included.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import k2
import pytest
import torch

from distill.data.manifests import load_cuts
from distill.decode.beam_search import modified_beam_search, modified_beam_search_nbest
from distill.decode.context_cache import ProjectedContextCache, predictor_outputs_for_contexts
from distill.decode.fast_beam_search import (
    DEFAULT_LSTM_CONTEXT_SIZE,
    fast_beam_search,
    fast_beam_search_nbest_LG,
    fast_beam_search_one_best,
    sequence_scores,
    trivial_graph,
)
from distill.decode.greedy import greedy_search
from distill.lang.graph import LG_NAME, load_fsa
from distill.lang.lexicon import WORD_DISAMBIG, WORDS_NAME, read_symbol_table
from distill.lang.tokenizer import Tokenizer, load_tokenizer
from distill.models.config import ModelConfig
from distill.models.joiner import Joiner
from distill.models.registry import build_transducer
from distill.models.transducer import Transducer, add_sos_and_pad
from distill.testing import DEVICES, GRUPredictor

#: Frames of the toy utterances (a hypothesis has at most one token per frame).
TOY_LENS = [6, 4, 5]
#: Wide enough to prune nothing on the toy models: 3 tokens and 6 frames give
#: sum(3**k, k <= 6) = 1093 token sequences.
WIDE = dict(beam=1.0e4, max_states=100000, max_contexts=100000)


pytestmark = pytest.mark.usefixtures("one_cpu_thread")  # tiny models: one thread (tests/conftest.py)


# ----------------------------------------------------------------------------- toy models


def toy_model(predictor: str, vocab_size: int, device: torch.device, seed: int = 0) -> Transducer:
    """A random transducer with a small vocabulary (blank = 0), in eval mode.

    Args:
      predictor:
        "stateless" (context 2), "lstm", or "gru" (a recurrent predictor that only
        implements the Predictor interface, from tests/models/test_greedy.py).
      vocab_size:
        Symbols, blank included.
      device:
        Where the model lives.
      seed:
        Seed of the weights.
    """
    torch.manual_seed(seed)
    config = ModelConfig(
        encoder="lstm", num_features=20, encoder_dim=16, num_encoder_layers=1, subsampling_channels=8,
        decoder="stateless" if predictor == "stateless" else "lstm", decoder_dim=16, joiner_dim=16,
        vocab_size=vocab_size, dropout=0.0,
    )
    model = build_transducer(config)
    if predictor == "gru":
        model = Transducer(model.encoder, GRUPredictor(vocab_size, 16), Joiner(16, 16, 16, vocab_size))
    return model.to(device).eval()


def toy_encoder_out(lens: List[int], device: torch.device, seed: int = 1) -> Tuple[torch.Tensor, torch.Tensor]:
    """Random encoder outputs (scaled up, so the joiner's distributions are not flat)."""
    gen = torch.Generator().manual_seed(seed)
    enc = 3.0 * torch.randn(len(lens), max(lens), 16, generator=gen)
    return enc.to(device), torch.tensor(lens, device=device)


def step_by_step_output(model: Transducer, tokens: List[int]) -> torch.Tensor:
    """The predictor output after the start symbol and ``tokens``, read one by one."""
    predictor, device = model.decoder, next(model.parameters()).device
    state = predictor.init_state(1, device)
    for symbol in [model.blank_id] + tokens:
        out, state = predictor.step(torch.tensor([symbol], device=device), state)
    return out[0]


@pytest.mark.parametrize("predictor", ["stateless", "lstm", "gru"])
def test_predictor_outputs_for_contexts(predictor: str) -> None:
    model = toy_model(predictor, vocab_size=6, device=torch.device("cpu"))
    # The stateless predictor is exact for contexts of its context_size; the others read the
    # whole context, left padding with blank meaning the start of the utterance.
    length = 2 if predictor == "stateless" else 4
    hyps = [[], [3], [5, 1], [2, 2, 4], [1, 2, 3, 4], [4, 4, 4, 4, 5]]
    contexts = torch.tensor([[0] * (length - len(h[-length:])) + h[-length:] for h in hyps], dtype=torch.int32)
    with torch.no_grad():
        got = predictor_outputs_for_contexts(model.decoder, contexts)
        for row, hyp in zip(got, hyps):
            # Longer hypotheses are cut to their last `length` tokens (exact for stateless).
            expected = step_by_step_output(model, hyp[-length:])
            torch.testing.assert_close(row, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("predictor", ["stateless", "lstm"])
def test_context_cache_returns_what_the_predictor_computes(predictor: str) -> None:
    model = toy_model(predictor, vocab_size=6, device=torch.device("cpu"))
    cache = ProjectedContextCache(model, history=3, device=torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)
    calls = []
    original = cache.predictor.forward

    def counting_forward(y: torch.Tensor) -> torch.Tensor:
        calls.append(y.size(0))
        return original(y)

    cache.predictor.forward = counting_forward  # count the rows the predictor is run on
    seen = set()
    with torch.no_grad():
        # Frames of contexts (blank-padded on the left) that overlap, as consecutive k2
        # frames do, with repeats within a frame.
        for frame in range(6):
            tokens = torch.randint(1, 6, (7, 3), generator=gen, dtype=torch.int32)
            num_tokens = torch.randint(0, 4, (7, 1), generator=gen)
            contexts = torch.where(torch.arange(3) >= 3 - num_tokens, tokens, torch.zeros_like(tokens))
            contexts[0] = contexts[1]
            got = cache(contexts)
            new = {tuple(row) for row in contexts.tolist()} - seen
            assert calls == ([len(new)] if new else [])  # each distinct context computed once
            expected = model.joiner.decoder_proj(predictor_outputs_for_contexts(model.decoder, contexts))
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
            calls.clear()
            seen |= new
            assert cache(contexts[2:5]).shape == (3, 16) and not calls  # all cached now


@pytest.mark.parametrize("device", DEVICES, ids=str)
@pytest.mark.parametrize("predictor", ["stateless", "lstm", "gru"])
def test_fast_beam_search_agrees_with_modified_beam_search(predictor: str, device: torch.device) -> None:
    model = toy_model(predictor, vocab_size=4, device=device)
    enc, lens = toy_encoder_out(TOY_LENS, device)
    # Beam wider than the number of hypotheses: modified beam search is exhaustive and its
    # scores are the exact sequence log-probabilities.
    nbest = modified_beam_search_nbest(model, enc, lens, beam=100000)
    assert [len(h) for h in nbest] == [sum(3**k for k in range(t + 1)) for t in TOY_LENS]
    for hyps in nbest:  # all alignments of all sequences: probability 1
        assert abs(torch.tensor([s for _, s in hyps]).logsumexp(0).item()) < 1e-5

    # History as long as any hypothesis: exact for the recurrent predictors too.
    lattice = fast_beam_search(model, trivial_graph(model, device), enc, lens, lstm_context_size=max(TOY_LENS), **WIDE)
    assert lattice.get_tot_scores(use_double_scores=True, log_semiring=True).abs().max().item() < 1e-5
    seqs = [tokens for hyps in nbest for tokens, _ in hyps]
    utt = torch.tensor([i for i, hyps in enumerate(nbest) for _ in hyps], dtype=torch.int32, device=device)
    expected = torch.tensor([score for hyps in nbest for _, score in hyps], dtype=torch.float64)
    # The same hypotheses with the same scores (log-sum over their paths in the lattice).
    torch.testing.assert_close(sequence_scores(lattice, seqs, utt).cpu(), expected, rtol=0, atol=2e-5)

    # And the same 1-best under each method's criterion: the lattice's best single path,
    # the beam's best total probability.
    viterbi = sequence_scores(lattice, seqs, utt, log_semiring=False).tolist()
    best_path = [max((v, s) for v, s, u in zip(viterbi, seqs, utt.tolist()) if u == i)[1] for i in range(len(nbest))]
    graph = trivial_graph(model, device)
    assert fast_beam_search_one_best(model, graph, enc, lens, lstm_context_size=max(TOY_LENS), **WIDE) == best_path
    best_total = [max(hyps, key=lambda h: h[1])[0] for hyps in nbest]
    assert modified_beam_search(model, enc, lens, beam=100000, length_norm=False) == best_total


def _one_best_pruned(model: Transducer, enc: torch.Tensor, lens: torch.Tensor) -> List[List[int]]:
    graph = trivial_graph(model, enc.device)
    return fast_beam_search_one_best(model, graph, enc, lens, beam=3.0, max_states=6, max_contexts=3)


SEARCHES: Dict[str, Callable[[Transducer, torch.Tensor, torch.Tensor], List[List[int]]]] = {
    "modified_beam_search": lambda model, enc, lens: modified_beam_search(model, enc, lens, beam=3),
    "fast_beam_search": _one_best_pruned,
}


@pytest.mark.parametrize("device", DEVICES, ids=str)
@pytest.mark.parametrize("predictor", ["stateless", "lstm"])
@pytest.mark.parametrize("search", sorted(SEARCHES))
def test_batched_equals_single(search: str, predictor: str, device: torch.device) -> None:
    model = toy_model(predictor, vocab_size=8, device=device, seed=2)
    enc, lens = toy_encoder_out([12, 3, 9, 1, 7], device, seed=3)
    batched = SEARCHES[search](model, enc, lens)
    single = [SEARCHES[search](model, enc[i : i + 1, :n], lens[i : i + 1])[0] for i, n in enumerate(lens.tolist())]
    assert batched == single
    assert all(0 < s < 8 for hyp in batched for s in hyp)
    assert sum(map(len, batched)) > 0


def test_history_too_long_for_k2_is_refused() -> None:
    model = toy_model("lstm", vocab_size=500, device=torch.device("cpu"))
    enc, lens = toy_encoder_out([3], torch.device("cpu"))
    with pytest.raises(ValueError, match="lstm_context_size"):
        fast_beam_search_one_best(model, trivial_graph(model), enc, lens, lstm_context_size=8)


# ----------------------------------------------------------------------------- learned utterances


@dataclass
class Learned:
    """Tiny models that have learned two training utterances, and those utterances.

    Attributes:
      models:
        By predictor type ("stateless", "lstm"), in eval mode.
      x:
        Features of shape (2, T, 80).
      x_lens:
        Frames per utterance, shape (2,).
      texts:
        The two transcripts.
      tokenizer:
        The BPE model of the lang dir.
      lang_dir:
        The tiny lang dir (``LG.pt``, ``words.txt``).
    """

    models: Dict[str, Transducer]
    x: torch.Tensor
    x_lens: torch.Tensor
    texts: List[str]
    tokenizer: Tokenizer
    lang_dir: Path


def learn_utterances(
    model: Transducer, x: torch.Tensor, x_lens: torch.Tensor, refs: List[List[int]], steps: int
) -> None:
    """Train ``model`` to output ``refs`` with one fixed alignment: token ``k`` of ``U`` at
    frame ``(k + 1/2) T / U``, blank elsewhere; cross-entropy of the joiner at the T lattice
    nodes of that path (at most one token per frame, the topology the searches use).

    Why not the RNN-T loss: on two utterances it spreads each token's probability over
    many frames for a long time (measured: after 1000 steps, loss 0.05 per utterance, greedy
    search still dropped the last tokens), while one sharp alignment is learned in a few
    hundred steps, with the encoder (a conformer, whose absolute positions can place the
    tokens) telling the utterances apart.
    """
    _, sos_y, _ = add_sos_and_pad(k2.RaggedTensor(refs), model.blank_id)
    with torch.no_grad():
        _, enc_lens = model.encoder(x, x_lens)
    num_frames = int(enc_lens.max())
    targets = torch.full((len(refs), num_frames), -100, dtype=torch.int64)  # -100: ignored
    position = torch.zeros((len(refs), num_frames), dtype=torch.int64)  # tokens before each frame
    for i, ref in enumerate(refs):
        n = int(enc_lens[i])
        targets[i, :n] = model.blank_id
        for k, token in enumerate(ref):
            t = int((k + 0.5) * n / len(ref))
            targets[i, t] = token
            position[i, t + 1 :] += 1
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        enc, _ = model.encoder(x, x_lens)
        dec = model.decoder(sos_y)  # (N, U + 1, decoder_dim)
        dec = torch.gather(dec, 1, position.unsqueeze(-1).expand(-1, -1, dec.size(-1)))  # (N, T, decoder_dim)
        logits = model.joiner(enc, dec)  # (N, T, V)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


@pytest.fixture(scope="module")
def learned(tiny_data_dir: Path) -> Learned:
    """Two tiny conformer transducers (stateless and LSTM predictor) that have learned the
    two shortest training utterances of the tiny corpus (a few seconds)."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    lang_dir = tiny_data_dir / "lang_bpe_100"
    tokenizer = load_tokenizer(lang_dir)
    cuts = load_cuts(tiny_data_dir / "fbank" / "librispeech_cuts_train-clean-100.jsonl.gz")
    cuts = sorted(cuts, key=lambda c: (c.duration, c.id))[:2]
    texts = [c.supervisions[0].text for c in cuts]
    feats = [torch.from_numpy(c.load_features()) for c in cuts]
    x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
    x_lens = torch.tensor([f.size(0) for f in feats])
    all_frames = torch.cat(feats)
    models = {}
    for predictor in ("stateless", "lstm"):
        torch.manual_seed(0)
        config = ModelConfig(
            encoder="conformer", encoder_dim=32, num_encoder_layers=1, nhead=2, dim_feedforward=64,
            cnn_module_kernel=3, subsampling_channels=8, decoder=predictor, decoder_dim=32, joiner_dim=32,
            dropout=0.0, vocab_size=tokenizer.get_piece_size(),
        )
        model = build_transducer(config)
        model.set_feature_stats(all_frames.mean(0), all_frames.std(0))
        learn_utterances(model, x, x_lens, tokenizer.encode(texts, out_type=int), steps=600)
        models[predictor] = model
    torch.set_num_threads(saved)
    return Learned(models, x, x_lens, texts, tokenizer, lang_dir)


@pytest.mark.parametrize("predictor", ["stateless", "lstm"])
def test_every_method_returns_the_learned_utterances(learned: Learned, predictor: str) -> None:
    model = learned.models[predictor]
    words = read_symbol_table(learned.lang_dir / WORDS_NAME)
    id_to_word = {i: w for w, i in words.items()}
    LG = load_fsa(learned.lang_dir / LG_NAME)
    with torch.no_grad():
        enc, lens = model.encode(learned.x, learned.x_lens)
    # The LSTM hypotheses (12 and 13 tokens) are longer than the default history: the
    # truncated predictor history of fast beam search still finds them.
    assert min(len(ids) for ids in learned.tokenizer.encode(learned.texts)) > DEFAULT_LSTM_CONTEXT_SIZE
    token_results = {
        "greedy": greedy_search(model, enc, lens),
        "modified_beam_search": modified_beam_search(model, enc, lens, beam=4),
        "fast_beam_search": fast_beam_search_one_best(model, trivial_graph(model), enc, lens, 4.0, 64, 8),
    }
    for method, hyps in token_results.items():
        assert [learned.tokenizer.decode(h) for h in hyps] == learned.texts, method
    for scale in (1.0, 0.01):
        word_ids = fast_beam_search_nbest_LG(
            model, LG, enc, lens, beam=20.0, max_states=64, max_contexts=8, num_paths=50, nbest_scale=0.5,
            ngram_lm_scale=scale,
        )
        assert [" ".join(id_to_word[w] for w in ws) for ws in word_ids] == learned.texts, scale


def test_nbest_LG_gives_word_ids_on_unseen_utterances(learned: Learned, tiny_data_dir: Path) -> None:
    model = learned.models["stateless"]
    words = read_symbol_table(learned.lang_dir / WORDS_NAME)
    LG = load_fsa(learned.lang_dir / LG_NAME)
    scores_before = LG.scores.clone()
    cuts = load_cuts(tiny_data_dir / "fbank" / "librispeech_cuts_test-clean.jsonl.gz")
    cuts = sorted(cuts, key=lambda c: c.id)[:4]
    n = len(cuts)
    feats = [torch.from_numpy(c.load_features()) for c in cuts]
    x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
    with torch.no_grad():
        enc, lens = model.encode(x, torch.tensor([f.size(0) for f in feats]))
    kwargs = dict(beam=20.0, max_states=64, max_contexts=8, num_paths=50, nbest_scale=0.5, ngram_lm_scale=0.5)
    word_ids = fast_beam_search_nbest_LG(model, LG, enc, lens, **kwargs)
    assert len(word_ids) == n
    # Real words only: not <eps> (0) and not #0, <s>, </s> (the ids from #0 on).
    assert all(0 < w < words[WORD_DISAMBIG] for ws in word_ids for w in ws)
    assert any(word_ids)
    single = [fast_beam_search_nbest_LG(model, LG, enc[i : i + 1], lens[i : i + 1], **kwargs)[0] for i in range(n)]
    assert single == word_ids
    assert torch.equal(LG.scores, scores_before)  # ngram_lm_scale scales a copy
