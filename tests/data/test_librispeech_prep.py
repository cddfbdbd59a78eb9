"""Stages 0-1 on LibriSpeech's layout: locating the corpus, manifests, and bad input."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from lhotse import load_manifest

from distill.data.errors import CorpusError
from distill.data.corpora.librispeech import locate_librispeech, prepare_librispeech_manifests

REPO_ROOT = Path(__file__).resolve().parents[2]
PARTS = ["train-clean-100", "dev-clean", "dev-other", "test-clean", "test-other"]


def test_manifests_match_corpus(corpus_copy, tmp_path):
    out = tmp_path / "manifests"
    paths = prepare_librispeech_manifests(corpus_copy, PARTS, out)
    for part in PARTS:
        sups = load_manifest(paths[part]["supervisions"])
        recs = load_manifest(paths[part]["recordings"])
        n_lines = sum(len(t.read_text().splitlines()) for t in (corpus_copy / part).rglob("*.trans.txt"))
        assert len(sups) == len(recs) == n_lines
        assert all(r.sampling_rate == 16000 for r in recs)
        assert all(s.text and s.speaker == s.id.split("-")[0] for s in sups)
    # Rerun: skipped (files untouched).
    mtime = paths["dev-clean"]["recordings"].stat().st_mtime_ns
    prepare_librispeech_manifests(corpus_copy, PARTS, out)
    assert paths["dev-clean"]["recordings"].stat().st_mtime_ns == mtime


def test_missing_corpus_names_both_ways_out(tmp_path):
    with pytest.raises(CorpusError) as err:
        locate_librispeech(tmp_path, PARTS, download=False)
    assert str(tmp_path / "LibriSpeech") in str(err.value)
    assert "--demo true" in str(err.value)


def assert_fails_naming(corpus, tmp_path, name_in_message):
    out = tmp_path / "manifests"
    with pytest.raises(CorpusError) as err:
        prepare_librispeech_manifests(corpus, PARTS, out)
    assert name_in_message in str(err.value), str(err.value)
    # Nothing a rerun would trust was written.
    assert not out.exists() or not list(out.glob("*.jsonl.gz")) and not list(out.glob(".*.done"))
    return str(err.value)


def test_missing_and_empty_corpus_dir(tmp_path):
    assert_fails_naming(tmp_path / "nowhere", tmp_path, str(tmp_path / "nowhere"))
    empty = tmp_path / "empty"
    empty.mkdir()
    msg = assert_fails_naming(empty, tmp_path, str(empty))
    assert "empty" in msg


def test_empty_transcript_line(corpus_copy, tmp_path):
    trans = next((corpus_copy / "dev-clean").rglob("*.trans.txt"))
    utt = trans.read_text().split()[0]
    trans.write_text(trans.read_text() + f"{utt[:-4]}0099\n")
    msg = assert_fails_naming(corpus_copy, tmp_path, f"{trans}:")
    assert "empty transcript" in msg


def test_unreadable_audio(corpus_copy, tmp_path):
    flac = next((corpus_copy / "test-clean").rglob("*.flac"))
    flac.write_bytes(b"this is not audio")
    msg = assert_fails_naming(corpus_copy, tmp_path, str(flac))
    assert "unreadable" in msg


def test_empty_audio(corpus_copy, tmp_path):
    flac = next((corpus_copy / "train-clean-100").rglob("*.flac"))
    flac.write_bytes(b"")  # e.g. an interrupted copy
    msg = assert_fails_naming(corpus_copy, tmp_path, str(flac))
    assert "empty audio" in msg


def test_wrong_sample_rate(corpus_copy, tmp_path):
    flac = next((corpus_copy / "dev-clean").rglob("*.flac"))
    soundfile.write(str(flac), np.zeros(8000, dtype=np.int16), 8000, format="FLAC")
    msg = assert_fails_naming(corpus_copy, tmp_path, str(flac))
    assert "8000" in msg and "resample" in msg


def test_missing_audio_file(corpus_copy, tmp_path):
    flac = next((corpus_copy / "dev-clean").rglob("*.flac"))
    flac.unlink()
    assert_fails_naming(corpus_copy, tmp_path, str(flac))


def test_truncated_flac_is_found_in_stage_1(corpus_copy, tmp_path):
    """The header of a FLAC cut short still promises every sample: stage 1 decodes its end."""
    flac = next((corpus_copy / "test-clean").rglob("*.flac"))
    data = flac.read_bytes()
    flac.write_bytes(data[: len(data) // 2])
    msg = assert_fails_naming(corpus_copy, tmp_path, str(flac))
    assert "truncated or damaged audio" in msg


def test_stereo_audio_is_refused_in_stage_1(corpus_copy, tmp_path):
    flac = next((corpus_copy / "dev-clean").rglob("*.flac"))
    mono, rate = soundfile.read(str(flac))
    soundfile.write(str(flac), np.stack([mono, mono], axis=1), rate, format="FLAC")
    msg = assert_fails_naming(corpus_copy, tmp_path, str(flac))
    assert "2 channels" in msg and "sox in.flac -c 1" in msg


def test_non_utf8_transcript_names_file_and_line(corpus_copy, tmp_path):
    trans = next((corpus_copy / "dev-clean").rglob("*.trans.txt"))
    lines = trans.read_bytes().splitlines(keepends=True)
    lines[-1] = lines[-1].rstrip(b"\n") + " BR\u00d6D\n".encode("latin1")
    trans.write_bytes(b"".join(lines))
    msg = assert_fails_naming(corpus_copy, tmp_path, f"{trans}:{len(lines)}")
    assert "not UTF-8 (byte 0xd6)" in msg and "iconv" in msg


def _add_words(corpus_copy, part, words):
    trans = next((corpus_copy / part).rglob("*.trans.txt"))
    lines = trans.read_text(encoding="utf-8").splitlines()
    utt_id, text = lines[0].split(maxsplit=1)
    lines[0] = f"{utt_id} {text} {words}"
    trans.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return trans, utt_id, text


def test_text_outside_the_normalization_is_reported_with_file_and_line(corpus_copy, tmp_path):
    trans, utt_id, _ = _add_words(corpus_copy, "dev-clean", "he 42 BR\u00d6D \U0001F600")
    with pytest.raises(CorpusError) as err:
        prepare_librispeech_manifests(corpus_copy, PARTS, tmp_path / "out")
    msg = str(err.value)
    assert f"{trans}:1" in msg and "outside the librispeech normalization" in msg
    assert "'he' x1" in msg and "'42' x1" in msg and "--text-oov map" in msg and "--text-oov drop" in msg
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.jsonl.gz"))


def test_text_oov_map_and_drop(corpus_copy, tmp_path, caplog):
    import logging

    trans, utt_id, text = _add_words(corpus_copy, "dev-clean", "he BR\u00d6D 42")
    with caplog.at_level(logging.WARNING):
        paths = prepare_librispeech_manifests(corpus_copy, PARTS, tmp_path / "mapped", text_oov="map")
    sups = load_manifest(paths["dev-clean"]["supervisions"])
    assert sups[utt_id].text == f"{text} HE BROD"
    assert "'he'->'HE' x1" in caplog.text and "'42'->'' x1" in caplog.text
    paths = prepare_librispeech_manifests(corpus_copy, PARTS, tmp_path / "dropped", text_oov="drop")
    sups = load_manifest(paths["dev-clean"]["supervisions"])
    recs = load_manifest(paths["dev-clean"]["recordings"])
    assert utt_id not in {s.id for s in sups} and utt_id not in {r.id for r in recs}
    assert "Dropped those 1 utterance(s)" in caplog.text


def run_get_corpus(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO_ROOT / "local" / "get_corpus.py"), "--corpus", "librispeech", *args],
                          capture_output=True, text=True, cwd=REPO_ROOT)


def test_heldout_minutes_enlarge_the_heldout_parts_and_keep_training(tiny_corpus_dl_dir, tmp_path):
    dl_dir = tmp_path / "dl"
    shutil.copytree(tiny_corpus_dl_dir, dl_dir)
    corpus = dl_dir / "LibriSpeech"
    before = {part: sorted(p.name for p in (corpus / part).rglob("*.flac")) for part in ("train-clean-100", "test-clean")}
    parts = ["train-clean-100", "dev-clean", "test-clean", "dev-other", "test-other"]
    common = ["--corpus-dir", str(corpus), "--parts", *parts, "--demo", "--demo-size", "tiny", "--seed", "7"]
    refused = run_get_corpus(*common, "--demo-heldout-minutes", "0")
    assert refused.returncode == 2 and "--demo-heldout-minutes 0.0: give a positive number" in refused.stderr
    changed = run_get_corpus(*common, "--demo-heldout-minutes", "1.2")
    assert changed.returncode == 1 and ".demo_corpus.done" in changed.stderr  # the refusal names the marker
    (corpus / ".demo_corpus.done").unlink()
    made = run_get_corpus(*common, "--demo-heldout-minutes", "1.2")
    assert made.returncode == 0, made.stderr
    after = {part: sorted(p.name for p in (corpus / part).rglob("*.flac")) for part in before}
    assert after["train-clean-100"] == before["train-clean-100"]
    assert len(after["test-clean"]) >= 2 * len(before["test-clean"])
