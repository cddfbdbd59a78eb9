"""The phone lang dir: phone tokenizer, identity lexicon, phone bigram LM and LG."""
from __future__ import annotations

import math

import k2
import pytest
import torch

from distill.lang.lexicon import read_lexicon, read_symbol_table
from distill.lang.ngram import read_arpa
from distill.lang.prepare_lang import prepare_lang_phone
from distill.lang.tokenizer import PhoneTokenizer, load_tokenizer
from distill.utils.done_marker import SettingsChangedError

TEXTS = [
    "sil dh ah k ae t s ae t sil",
    "sil ah k ae t sil",
    "sil dh ah m ae t sil",
    "sil k ae t s sil ae t sil",
    "sil m ae t s sil",
]


@pytest.fixture(scope="module")
def phone_lang(tmp_path_factory):
    root = tmp_path_factory.mktemp("phone_lang")
    text_file = root / "train.txt"
    text_file.write_text("".join(t + "\n" for t in TEXTS))
    lang_dir = prepare_lang_phone(text_file, root / "lang_phone", lm_order=2)
    return text_file, lang_dir


def test_tokenizer_round_trip_and_errors(tmp_path):
    tok = PhoneTokenizer(["ae", "k", "sil", "t"])
    assert tok.get_piece_size() == 5 and tok.piece_to_id("<blk>") == 0
    ids = tok.encode("sil k ae t sil")
    assert ids == [3, 2, 1, 4, 3]
    assert tok.decode(ids) == "sil k ae t sil"
    assert tok.decode(torch.tensor(ids).tolist() + [0]) == "sil k ae t sil"  # blank dropped
    assert tok.encode(["k ae", "t"], out_type=str) == [["k", "ae"], ["t"]]
    with pytest.raises(ValueError, match="zh"):
        tok.encode("k zh t")
    with pytest.raises(ValueError, match="Duplicate"):
        PhoneTokenizer(["k", "k"])
    tok.save(tmp_path / "phones.txt")
    assert PhoneTokenizer.load(tmp_path / "phones.txt").pieces == tok.pieces
    (tmp_path / "bad.txt").write_text("k 0\nae 1\n")
    with pytest.raises(ValueError, match="<blk> 0"):
        PhoneTokenizer.load(tmp_path / "bad.txt")


def test_load_tokenizer_needs_a_lang_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="stage 3"):
        load_tokenizer(tmp_path)


def test_phone_lang_dir_files_and_identity_lexicon(phone_lang):
    _, lang_dir = phone_lang
    for name in ("phones.txt", "tokens.txt", "words.txt", "lexicon.txt", "L.pt", "L_disambig.pt",
                 "lm_2gram.arpa", "G_2_gram.fst.txt", "LG.pt", ".lang_phone.done"):
        assert (lang_dir / name).is_file(), name
    assert not (lang_dir / "bpe.model").exists()
    tok = load_tokenizer(lang_dir)
    assert isinstance(tok, PhoneTokenizer)
    phones = sorted({p for t in TEXTS for p in t.split()})
    assert tok.pieces == ["<blk>", *phones]
    tokens = read_symbol_table(lang_dir / "tokens.txt")
    assert [p for p, i in sorted(tokens.items(), key=lambda kv: kv[1]) if not p.startswith("#")] == tok.pieces
    assert tokens["#0"] == tok.get_piece_size()
    assert read_lexicon(lang_dir / "lexicon.txt") == [(p, [p]) for p in phones]


def test_lg_decodes_phone_sequences_with_bigram_scores(phone_lang):
    _, lang_dir = phone_lang
    tok = load_tokenizer(lang_dir)
    words = read_symbol_table(lang_dir / "words.txt")
    id2word = {i: w for w, i in words.items()}
    lm = read_arpa(lang_dir / "lm_2gram.arpa")
    LG = k2.Fsa.from_dict(torch.load(lang_dir / "LG.pt"))
    assert LG.properties & k2.fsa_properties.VALID
    assert int(LG.labels.max()) < tok.get_piece_size()
    for text in TEXTS:
        lattice = k2.connect(k2.intersect(LG, k2.linear_fsa(tok.encode(text))))
        assert lattice.num_arcs > 0, text
        best = k2.shortest_path(k2.create_fsa_vec([lattice]), use_double_scores=True)
        word_ids = [int(w) for w in best.aux_labels.values.tolist() if w > 0]
        assert " ".join(id2word[i] for i in word_ids) == text
        score = float(best.get_tot_scores(use_double_scores=True, log_semiring=False)[0])
        history, log10_prob = ["<s>"], 0.0
        for phone in text.split() + ["</s>"]:
            log10_prob += lm.log10_prob(history, phone)
            history.append(phone)
        assert score == pytest.approx(log10_prob * math.log(10), abs=1e-3)


def test_rerun_skips_and_changed_order_is_refused(phone_lang, caplog):
    text_file, lang_dir = phone_lang
    mtime = (lang_dir / "LG.pt").stat().st_mtime_ns
    with caplog.at_level("INFO"):
        prepare_lang_phone(text_file, lang_dir, lm_order=2)
    assert "skipping" in caplog.text and (lang_dir / "LG.pt").stat().st_mtime_ns == mtime
    with pytest.raises(SettingsChangedError):
        prepare_lang_phone(text_file, lang_dir, lm_order=3)


def test_phone_set_file_gives_every_phone_a_token(phone_lang, tmp_path):
    text_file, _ = phone_lang
    phone_set = tmp_path / "phones.txt"
    phone_set.write_text("ae ah dh k m s sil t zh\n")  # zh: in no training transcript
    lang_dir = prepare_lang_phone(text_file, tmp_path / "lang", lm_order=2, phone_set_file=phone_set)
    assert load_tokenizer(lang_dir).encode("sil zh sil") == [7, 9, 7]
    phone_set.write_text("ae ah dh k m s t\n")  # lacks sil
    with pytest.raises(ValueError, match="lacks: sil"):
        prepare_lang_phone(text_file, tmp_path / "lang2", lm_order=2, phone_set_file=phone_set)
