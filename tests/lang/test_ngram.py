"""Stage 3: the Kneser-Ney n-gram LM, its ARPA file and the G transducer from kaldilm."""
from __future__ import annotations

import math
import random
from typing import List

import k2
import pytest

from distill.lang.lexicon import make_word_table, write_symbol_table
from distill.lang.ngram import NGramLM, arpa_to_g_fst_text, read_arpa, train_kneser_ney

WORDS = "THE THEY CAT DOG SAT ON MAT A AN AND RAN FAST BIG SMALL RED HOUSE SUN".split()


def tiny_corpus(num_sentences: int = 30, seed: int = 5) -> List[List[str]]:
    rng = random.Random(seed)
    return [[rng.choice(WORDS) for _ in range(rng.randint(1, 7))] for _ in range(num_sentences)]


def _histories(lm: NGramLM) -> List[tuple]:
    """Every history the LM stores, plus the empty one and a few unseen ones."""
    hists = {()}
    for k in range(lm.order - 1):
        hists.update(ng for ng in lm.log10_probs[k] if ng[-1] != "</s>")
    hists.update([("SUN", "SUN"), ("<s>", "SUN"), ("MAT", "MAT", "MAT")])
    return sorted(hists)


def _max_normalization_error(lm: NGramLM) -> float:
    vocab = lm.vocab
    assert "<s>" not in vocab and "</s>" in vocab
    return max(
        abs(sum(10 ** lm.log10_prob(h, w) for w in vocab) - 1.0) for h in _histories(lm)
    )


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_arpa_probabilities_normalize_tiny_corpus(order, tmp_path):
    lm = train_kneser_ney(tiny_corpus(), order)
    lm.write_arpa(tmp_path / "lm.arpa")
    reread = read_arpa(tmp_path / "lm.arpa")
    assert reread.order == order
    assert _max_normalization_error(reread) < 1e-4


def test_modified_kneser_ney_discounts_normalize(tmp_path, caplog):
    # Zipf-distributed words: count-of-counts that support the three modified KN discounts.
    rng = random.Random(11)
    vocab = [f"W{i}" for i in range(200)]
    weights = [1.0 / (rank + 1) for rank in range(len(vocab))]
    sentences = [rng.choices(vocab, weights=weights, k=rng.randint(1, 10)) for _ in range(500)]
    with caplog.at_level("INFO"):
        lm = train_kneser_ney(sentences, 3)
    assert "single discount" not in caplog.text
    lm.write_arpa(tmp_path / "lm.arpa")
    assert _max_normalization_error(read_arpa(tmp_path / "lm.arpa")) < 1e-4


def test_kneser_ney_unigrams_are_continuation_counts():
    # Bigrams: <s> A, A B, B </s>, <s> B, B </s>. Words seen before: A {<s>}, B {A, <s>},
    # </s> {B}: unigram probabilities 1/4, 2/4, 1/4.
    lm = train_kneser_ney([["A", "B"], ["B"]], order=2)
    assert math.isclose(10 ** lm.log10_probs[0][("A",)], 0.25)
    assert math.isclose(10 ** lm.log10_probs[0][("B",)], 0.5)
    assert math.isclose(10 ** lm.log10_probs[0][("</s>",)], 0.25)
    assert lm.log10_probs[0][("<s>",)] == -99.0
    # P(B | A): the only bigram after A, discounted, plus the back-off mass times P(B).
    p = 10 ** lm.log10_prob(["A"], "B")
    assert 0.5 < p < 1.0
    assert math.isclose(sum(10 ** lm.log10_prob(["A"], w) for w in lm.vocab), 1.0, abs_tol=1e-9)


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        train_kneser_ney([[], []], 3)
    with pytest.raises(ValueError):
        train_kneser_ney([["A", "<s>"]], 3)


def test_g_from_kaldilm(tmp_path):
    sentences = tiny_corpus()
    lm = train_kneser_ney(sentences, 3)
    lm.write_arpa(tmp_path / "lm.arpa")
    words = make_word_table(sorted({w for s in sentences for w in s}))
    write_symbol_table(words, tmp_path / "words.txt")

    text = arpa_to_g_fst_text(tmp_path / "lm.arpa", tmp_path / "words.txt", order=3)
    G = k2.Fsa.from_openfst(text, acceptor=False)
    assert G.properties & k2.fsa_properties.VALID
    backoff = G.labels == words["#0"]
    assert int(backoff.sum()) > 0
    # #0 is on the input side of the back-off arcs only; <s>/</s> never appear as labels.
    assert bool((G.aux_labels[backoff] == 0).all())
    assert int(G.aux_labels.max()) < words["#0"]
    for sym in ("<s>", "</s>"):
        assert not bool((G.labels == words[sym]).any())
