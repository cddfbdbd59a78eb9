"""Stage 3: BPE model, lexicon, disambiguation symbols and the L transducers."""
from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import List

import k2
import pytest
import torch

from distill.lang.bpe import load_bpe_model, prepare_bpe, train_bpe_model, vocab_size_of
from distill.lang.lexicon import (
    add_disambig_symbols,
    prepare_lexicon,
    read_lexicon,
    read_symbol_table,
)

WORDS = ("THE THEY THEM THEN THERE A AN AND ANY CAT CATS DOG DOGS SAT ON MAT RAN FAST "
         "SLOW BIG SMALL RED BLUE HOUSE TREE SUN DON'T 1984 IT ITS").split()


def make_corpus(path: Path, num_sentences: int = 30, seed: int = 3) -> List[str]:
    """Write ``num_sentences`` short random upper-case sentences, one per line."""
    rng = random.Random(seed)
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8))) for _ in range(num_sentences)]
    # Make sure every word occurs.
    lines.append(" ".join(WORDS))
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return lines


@pytest.fixture(scope="module")
def lang_dir(tmp_path_factory) -> Path:
    lang = tmp_path_factory.mktemp("lang")
    make_corpus(lang / "transcript_words.txt")
    sp = prepare_bpe(lang / "transcript_words.txt", lang, vocab_size=45)
    prepare_lexicon(sp, lang / "transcript_words.txt", lang)
    return lang


def _fsa_is_valid(fsa: k2.Fsa) -> bool:
    return bool(fsa.properties & k2.fsa_properties.VALID)


def test_special_token_ids(lang_dir):
    sp = load_bpe_model(lang_dir / "bpe.model")
    assert sp.piece_to_id("<blk>") == 0
    assert sp.piece_to_id("<sos/eos>") == 1
    assert sp.piece_to_id("<unk>") == 2
    num_pieces = vocab_size_of(lang_dir / "bpe.model")
    assert num_pieces == sp.get_piece_size() == 45

    tokens = read_symbol_table(lang_dir / "tokens.txt")
    assert tokens["<blk>"] == 0
    assert sorted(tokens.values()) == list(range(len(tokens)))
    for i in range(num_pieces):
        assert tokens[sp.id_to_piece(i)] == i
    # The disambiguation tokens follow the real ones.
    disambig = sorted((i, s) for s, i in tokens.items() if i >= num_pieces)
    assert [s for _, s in disambig] == [f"#{k}" for k in range(len(disambig))]
    assert len(disambig) >= 1


def test_tiny_corpus_with_too_large_vocab(tmp_path, caplog):
    make_corpus(tmp_path / "text.txt")
    with caplog.at_level(logging.WARNING):
        sp = train_bpe_model(tmp_path / "text.txt", tmp_path / "bpe.model", vocab_size=5000)
    assert 4 < sp.get_piece_size() < 5000
    assert sp.piece_to_id("<blk>") == 0
    assert (tmp_path / "bpe.model").is_file()
    assert "requested 5000" in caplog.text
    assert not list(tmp_path.glob(".*.tmp*"))


def test_word_table_and_lexicon_round_trip(lang_dir):
    sp = load_bpe_model(lang_dir / "bpe.model")
    words = read_symbol_table(lang_dir / "words.txt")
    by_id = [w for w, _ in sorted(words.items(), key=lambda kv: kv[1])]
    assert by_id[0] == "<eps>"
    assert by_id[-3:] == ["#0", "<s>", "</s>"]
    assert by_id[1:-3] == sorted(set(WORDS))
    assert sorted(words.values()) == list(range(len(words)))

    lexicon = read_lexicon(lang_dir / "lexicon.txt")
    assert [w for w, _ in lexicon] == sorted(set(WORDS))
    for word, pieces in lexicon:
        assert sp.decode(pieces) == word
        assert pieces == sp.encode(word, out_type=str)


def test_add_disambig_symbols_prefix_and_duplicates():
    lexicon = [
        ("A", ["a"]),
        ("AB", ["a", "b"]),
        ("ABC", ["a", "b", "c"]),
        ("B", ["b"]),
        ("BB", ["b"]),
        ("C", ["c", "d"]),
    ]
    result, max_disambig = add_disambig_symbols(lexicon)
    assert result == [
        ("A", ["a", "#1"]),
        ("AB", ["a", "b", "#1"]),
        ("ABC", ["a", "b", "c"]),
        ("B", ["b", "#1"]),
        ("BB", ["b", "#2"]),
        ("C", ["c", "d"]),
    ]
    assert max_disambig == 2
    assert add_disambig_symbols([("X", ["x"]), ("Y", ["y"])]) == ([("X", ["x"]), ("Y", ["y"])], 0)


def test_lexicon_disambig_is_prefix_free(lang_dir):
    plain = read_lexicon(lang_dir / "lexicon.txt")
    disambig = read_lexicon(lang_dir / "lexicon_disambig.txt")
    assert [w for w, _ in plain] == [w for w, _ in disambig]
    prons = [tuple(p) for _, p in disambig]
    assert len(set(prons)) == len(prons)
    prefixes = {p[:i] for p in prons for i in range(1, len(p))}
    assert not prefixes & set(prons)
    # The corpus has words whose BPE segmentation is a prefix of another's (e.g. THE / THEY).
    plain_prons = {tuple(p) for _, p in plain}
    plain_prefixes = {p[:i] for p in plain_prons for i in range(1, len(p))}
    assert plain_prefixes & plain_prons, "test corpus lost its prefix case"
    for (word, p), (_, d) in zip(plain, disambig):
        if tuple(p) in plain_prefixes:
            assert d[:-1] == p and d[-1].startswith("#") and d[-1] != "#0", word
        else:
            assert d == p


def _words_of(L: k2.Fsa, token_ids: List[int]) -> List[int]:
    """Compose a linear token sequence with L; the word ids along the best path."""
    linear = k2.linear_fsa(token_ids)
    linear.aux_labels = linear.labels.clone()
    composed = k2.compose(linear, k2.arc_sort(L))
    assert composed.num_arcs > 0, f"L does not accept {token_ids}"
    best = k2.shortest_path(k2.create_fsa_vec([composed]), use_double_scores=True)
    aux = best.aux_labels
    return [int(a) for a in aux.tolist() if a > 0]


def test_L_and_L_disambig(lang_dir):
    tokens = read_symbol_table(lang_dir / "tokens.txt")
    words = read_symbol_table(lang_dir / "words.txt")
    L = k2.Fsa.from_dict(torch.load(lang_dir / "L.pt"))
    L_disambig = k2.Fsa.from_dict(torch.load(lang_dir / "L_disambig.pt"))
    assert _fsa_is_valid(L) and _fsa_is_valid(L_disambig)
    # L has no disambiguation tokens; L_disambig has, and the #0:#0 self-loop.
    assert int(L.labels.max()) < tokens["#0"]
    loops = (L_disambig.labels == tokens["#0"]) & (L_disambig.aux_labels == words["#0"])
    assert int(loops.sum()) == 1

    for (word, pron), (_, pron_d) in zip(read_lexicon(lang_dir / "lexicon.txt"),
                                        read_lexicon(lang_dir / "lexicon_disambig.txt")):
        assert _words_of(L, [tokens[t] for t in pron]) == [words[word]]
        assert _words_of(L_disambig, [tokens[t] for t in pron_d]) == [words[word]]

    sequence = ["CAT", "SAT", "ON", "THE", "MAT"]
    lexicon = dict(read_lexicon(lang_dir / "lexicon.txt"))
    token_ids = [tokens[t] for w in sequence for t in lexicon[w]]
    assert _words_of(L, token_ids) == [words[w] for w in sequence]


def test_vocab_size_below_the_characters_of_the_text_is_explained(tmp_path):
    """Lowercase, digits and Unicode beside the upper-case words: 30 pieces cannot hold the
    characters; the error names the text, the characters and the way out (no sentencepiece
    traceback), and writes no model."""
    (tmp_path / "text.txt").write_text("THE CAT SAT the quick brown fox jumps over a lazy dog 42 BR\u00d6D\n"
                                       "A DOG \U0001F600 RAN\n" * 20)
    with pytest.raises(ValueError, match=r"--vocab-size 30 is too small for the text of .*text.txt: its \d+ distinct "
                                         r"characters .* need at least \d+\. Raise --vocab-size, or normalize"):
        train_bpe_model(tmp_path / "text.txt", tmp_path / "bpe.model", vocab_size=30)
    assert not (tmp_path / "bpe.model").exists()
