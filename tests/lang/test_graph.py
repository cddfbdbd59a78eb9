"""Stage 3 end to end: prepare_lang_bpe from a supervision manifest, LG, skipping, errors."""
from __future__ import annotations

import math
import random
import subprocess
import sys
from pathlib import Path
from typing import List

import k2
import pytest
import torch
from lhotse import SupervisionSegment, SupervisionSet

from distill.lang.bpe import load_bpe_model
from distill.lang.lexicon import read_lexicon, read_symbol_table
from distill.lang.ngram import read_arpa
from distill.lang.prepare_lang import prepare_lang_bpe
from distill.utils.done_marker import SettingsChangedError

REPO_ROOT = Path(__file__).resolve().parents[2]
WORDS = ("THE THEY THEM THEN A AN AND CAT CATS DOG SAT ON MAT RAN FAST BIG SMALL RED "
         "HOUSE TREE SUN DON'T IT ITS").split()
VOCAB_SIZE = 40


def write_supervisions(path: Path, texts: List[str]) -> None:
    sups = [
        SupervisionSegment(id=f"utt{i}", recording_id=f"rec{i}", start=0.0, duration=1.0,
                           channel=0, text=text, language="English")
        for i, text in enumerate(texts)
    ]
    SupervisionSet.from_segments(sups).to_file(path)


def make_texts(num_sentences: int = 30, seed: int = 9) -> List[str]:
    rng = random.Random(seed)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 8))) for _ in range(num_sentences)]
    return texts + [" ".join(WORDS)]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("lang_e2e")
    texts = make_texts()
    # One empty supervision: it must be skipped.
    manifest = root / "supervisions_train.jsonl.gz"
    write_supervisions(manifest, texts + [""])
    lang_dir = prepare_lang_bpe(manifest, root / "lang_bpe_40", vocab_size=VOCAB_SIZE, lm_order=3)
    return manifest, lang_dir, texts


def test_lang_dir_files(prepared):
    _, lang_dir, texts = prepared
    for name in ("transcript_words.txt", "bpe.model", "tokens.txt", "words.txt", "lexicon.txt",
                 "lexicon_disambig.txt", "L.pt", "L_disambig.pt", "lm_3gram.arpa",
                 "G_3_gram.fst.txt", "LG.pt", ".lang_bpe.done"):
        assert (lang_dir / name).is_file(), name
    assert (lang_dir / "transcript_words.txt").read_text().splitlines() == texts
    assert not list(lang_dir.glob(".*.tmp*"))


def test_lg_is_clean_and_decodes_training_sentences(prepared):
    _, lang_dir, texts = prepared
    sp = load_bpe_model(lang_dir / "bpe.model")
    tokens = read_symbol_table(lang_dir / "tokens.txt")
    words = read_symbol_table(lang_dir / "words.txt")
    id2word = {i: w for w, i in words.items()}
    lexicon = dict(read_lexicon(lang_dir / "lexicon.txt"))
    lm = read_arpa(lang_dir / "lm_3gram.arpa")

    LG = k2.Fsa.from_dict(torch.load(lang_dir / "LG.pt"))
    assert LG.properties & k2.fsa_properties.VALID
    assert LG.properties & k2.fsa_properties.ARC_SORTED
    assert LG.num_arcs > 0
    # No disambiguation tokens, no #0/<s>/</s> and no 0s in the word labels.
    assert int(LG.labels.max()) < tokens["#0"] == sp.get_piece_size()
    assert isinstance(LG.aux_labels, k2.RaggedTensor)
    aux = LG.aux_labels.values
    assert int(aux.max()) < words["#0"]
    assert not bool((aux == 0).any())

    for text in texts[:5] + texts[-1:]:
        pieces = sp.encode(text, out_type=str)
        assert pieces == [p for w in text.split() for p in lexicon[w]]
        linear = k2.linear_fsa([sp.piece_to_id(p) for p in pieces])
        lattice = k2.intersect(LG, linear)
        assert lattice.num_arcs > 0, text
        best = k2.shortest_path(k2.create_fsa_vec([k2.connect(lattice)]), use_double_scores=True)
        word_ids = [int(w) for w in best.aux_labels.values.tolist() if w > 0]
        assert " ".join(id2word[i] for i in word_ids) == text
        # The path's score is the sentence's LM log-probability (natural log). The best
        # path could in principle prefer a back-off arc; on this corpus it does not.
        score = float(best.get_tot_scores(use_double_scores=True, log_semiring=False)[0])
        history, log10_prob = ["<s>"], 0.0
        for word in text.split() + ["</s>"]:
            log10_prob += lm.log10_prob(history, word)
            history.append(word)
        assert score == pytest.approx(log10_prob * math.log(10), abs=1e-3)


def test_rerun_skips_and_changed_settings_raise(prepared, caplog):
    manifest, lang_dir, _ = prepared
    lg_mtime = (lang_dir / "LG.pt").stat().st_mtime_ns
    with caplog.at_level("INFO"):
        assert prepare_lang_bpe(manifest, lang_dir, vocab_size=VOCAB_SIZE, lm_order=3) == lang_dir
    assert "skipping" in caplog.text
    assert (lang_dir / "LG.pt").stat().st_mtime_ns == lg_mtime
    with pytest.raises(SettingsChangedError):
        prepare_lang_bpe(manifest, lang_dir, vocab_size=VOCAB_SIZE + 10, lm_order=3)
    with pytest.raises(SettingsChangedError):
        prepare_lang_bpe(manifest, lang_dir, vocab_size=VOCAB_SIZE, lm_order=2)


def test_missing_or_empty_manifest(tmp_path):
    missing = tmp_path / "nope_supervisions.jsonl.gz"
    with pytest.raises(FileNotFoundError, match="nope_supervisions.jsonl.gz"):
        prepare_lang_bpe(missing, tmp_path / "lang", vocab_size=VOCAB_SIZE)
    empty = tmp_path / "empty_supervisions.jsonl.gz"
    write_supervisions(empty, ["", "  "])
    with pytest.raises(ValueError, match="empty_supervisions.jsonl.gz"):
        prepare_lang_bpe(empty, tmp_path / "lang", vocab_size=VOCAB_SIZE)
    assert not (tmp_path / "lang" / ".lang_bpe.done").exists()


def test_cli_reports_missing_manifest(tmp_path):
    missing = tmp_path / "absent.jsonl.gz"
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "local" / "prepare_lang_bpe.py"), "--supervisions", str(missing),
         "--lang-dir", str(tmp_path / "lang"), "--vocab-size", "50"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=120,
    )
    assert proc.returncode == 1
    assert "absent.jsonl.gz" in proc.stderr
