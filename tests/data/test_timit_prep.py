"""TIMIT stage 0/1: locating the corpus, checking it, phone-level manifests (lhotse's TIMIT
preparation), on a small hand-written corpus in TIMIT's layout."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import numpy as np
import pytest
import soundfile
from lhotse import load_manifest

from distill.data.errors import CorpusError
from distill.data.corpora.timit import check_timit, locate_timit, phone_text, prepare_timit_manifests
from tests.conftest import REPO_ROOT

RATE = 16000
# (start, end, phone) in samples: TIMIT's 61-phone symbols, with a closure, a glottal stop
# (q, folded away) and an inner pause.
PHN: List[Tuple[int, int, str]] = [
    (0, 2000, "h#"), (2000, 3000, "dh"), (3000, 4000, "ax"), (4000, 4600, "kcl"), (4600, 5000, "k"),
    (5000, 6000, "ae"), (6000, 6400, "q"), (6400, 7000, "tcl"), (7000, 7400, "pau"), (7400, 8000, "s"),
    (8000, 9000, "ix"), (9000, 9600, "ng"), (9600, 16000, "h#"),
]
EXPECTED_39 = "sil dh ah sil k ae sil s ih ng sil"
# Speakers: lhotse's dev list has FADG0, its core-test list FDHC0; the training one is invented.
UTTERANCES = [("TRAIN", "DR1", "MABC0", "SX1"), ("TRAIN", "DR1", "MABC0", "SA1"), ("TRAIN", "DR2", "FXYZ0", "SI2"),
              ("TEST", "DR1", "FADG0", "SX3"), ("TEST", "DR4", "FDHC0", "SX4")]


def write_utterance(corpus: Path, part: str, region: str, speaker: str, utt: str) -> Path:
    folder = corpus / "data" / part / region / speaker
    folder.mkdir(parents=True, exist_ok=True)
    wav = folder / f"{utt}.WAV"
    tone = 0.1 * np.sin(2 * np.pi * 220 * np.arange(RATE) / RATE)
    soundfile.write(str(wav), tone.astype(np.float32), RATE, subtype="PCM_16")
    wav.with_suffix(".PHN").write_text("".join(f"{s} {e} {p}\n" for s, e, p in PHN))
    wav.with_suffix(".WRD").write_text("2000 4000 the\n4600 7000 cat\n7400 9600 sing\n")
    wav.with_suffix(".TXT").write_text("0 16000 The cat, sing.\n")
    return wav


@pytest.fixture
def corpus(tmp_path) -> Path:
    root = tmp_path / "TIMIT"
    for utt in UTTERANCES:
        write_utterance(root, *utt)
    return root


def test_phone_text_drops_folded_phones_and_merges_silence():
    assert phone_text(["sil", "sil", "dh", "", "ah", "sil", "sil"]) == "sil dh ah sil"


def test_missing_corpus_says_where_to_put_it(tmp_path):
    with pytest.raises(CorpusError) as err:
        locate_timit(tmp_path / "TIMIT")
    msg = str(err.value)
    assert "never downloaded" in msg and str(tmp_path / "TIMIT" / "data" / "TRAIN") in msg and "--demo" in msg


def test_ldc_layout_gets_a_hint(tmp_path):
    (tmp_path / "TIMIT" / "TRAIN").mkdir(parents=True)
    (tmp_path / "TIMIT" / "TEST").mkdir()
    with pytest.raises(CorpusError, match="mkdir .*/data"):
        locate_timit(tmp_path / "TIMIT")


def test_missing_annotation_and_bad_audio_are_named(corpus):
    phn = corpus / "data" / "TRAIN" / "DR2" / "FXYZ0" / "SI2.PHN"
    phn.unlink()
    bad_wav = corpus / "data" / "TEST" / "DR1" / "FADG0" / "SX3.WAV"
    bad_wav.write_bytes(b"not audio")
    with pytest.raises(CorpusError) as err:
        check_timit(corpus)
    msg = str(err.value)
    assert "2 problem(s)" in msg and str(phn) in msg and str(bad_wav) in msg and "unreadable" in msg


def test_manifests_hold_folded_phone_sequences(corpus, tmp_path):
    out = tmp_path / "manifests"
    paths = prepare_timit_manifests(corpus, ["TRAIN", "DEV", "TEST"], out, num_jobs=1, num_phones=39)
    sups = {part: load_manifest(paths[part]["supervisions"]) for part in paths}
    assert sorted(s.id for s in sups["TRAIN"]) == ["FXYZ0-SI2", "MABC0-SX1"]  # SA1 dropped
    assert [s.id for s in sups["DEV"]] == ["FADG0-SX3"] and [s.id for s in sups["TEST"]] == ["FDHC0-SX4"]
    assert {s.text for part in sups.values() for s in part} == {EXPECTED_39}
    phone_set = (out / "timit_phones.txt").read_text().split()
    assert len(phone_set) == 39 and set(EXPECTED_39.split()) <= set(phone_set) and "q" not in phone_set
    recs = load_manifest(paths["TRAIN"]["recordings"])
    assert sorted(r.id for r in recs) == ["FXYZ0-SI2", "MABC0-SX1"]
    # Done-marker: a rerun with the same settings is skipped; another phone set is refused.
    mtime = paths["TRAIN"]["supervisions"].stat().st_mtime_ns
    prepare_timit_manifests(corpus, ["TRAIN", "DEV", "TEST"], out, num_jobs=1, num_phones=39)
    assert paths["TRAIN"]["supervisions"].stat().st_mtime_ns == mtime
    with pytest.raises(Exception, match="settings"):
        prepare_timit_manifests(corpus, ["TRAIN", "DEV", "TEST"], out, num_jobs=1, num_phones=48)


def test_48_phones_keep_closures_apart(corpus, tmp_path):
    paths = prepare_timit_manifests(corpus, ["TRAIN"], tmp_path / "m48", num_jobs=1, num_phones=48)
    texts = {s.text for s in load_manifest(paths["TRAIN"]["supervisions"])}
    assert texts == {"sil dh ax cl k ae cl sil s ix ng sil"}
    assert len((tmp_path / "m48" / "timit_phones.txt").read_text().split()) == 48


def test_stage_1_script_passes_the_phone_set_and_names_bad_options(corpus, tmp_path):
    script = [sys.executable, str(REPO_ROOT / "local" / "prepare_manifests.py"), "--corpus", "timit",
              "--corpus-dir", str(corpus), "--parts", "TRAIN", "--num-jobs", "1"]
    out = subprocess.run(script + ["--output-dir", str(tmp_path / "a"), "--option", "num_phones=60"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    sups = load_manifest(tmp_path / "a" / "timit_supervisions_TRAIN.jsonl.gz")
    assert next(iter(sups)).text.startswith("h# dh ax kcl k ae q")
    bad = subprocess.run(script + ["--output-dir", str(tmp_path / "b"), "--option", "num_phones=50"],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "num_phones must be one of" in bad.stderr
    typo = subprocess.run(script + ["--output-dir", str(tmp_path / "c"), "--option", "phones=39"],
                          capture_output=True, text=True)
    assert typo.returncode == 1 and "phones" in typo.stderr
