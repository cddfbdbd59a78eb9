"""Kaldi data directories: import (plain paths, pipes, segments, reco2dur), every fault named
with its file, line and id, export, the round trip, manifest preparation and the CLI."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import pytest
import soundfile
from lhotse import SupervisionSet, load_manifest
from lhotse.utils import fastcopy

from distill.data.errors import CorpusError
from distill.data.kaldi_dir import export_kaldi_data_dir, import_kaldi_data_dir, prepare_kaldi_manifests
from tests.conftest import REPO_ROOT

SR = 16000
Tables = Dict[str, List[str]]


@pytest.fixture(scope="module")
def audio(tmp_path_factory) -> Path:
    """1-second tones: a.wav, b.wav, c.flac (16 kHz), low.wav (8 kHz) and a garbage .wav."""
    d = tmp_path_factory.mktemp("audio")
    t = np.arange(SR) / SR
    for name, freq in (("a.wav", 440), ("b.wav", 660), ("c.flac", 330)):
        soundfile.write(str(d / name), 0.3 * np.sin(2 * np.pi * freq * t), SR, subtype="PCM_16")
    soundfile.write(str(d / "low.wav"), np.zeros(8000), 8000, subtype="PCM_16")
    (d / "garbage.wav").write_bytes(b"not a riff header at all" * 10)
    whole = (d / "a.wav").read_bytes()
    (d / "half.wav").write_bytes(whole[: len(whole) // 2])  # an interrupted copy
    return d


def write_dir(d: Path, tables: Tables) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for name, lines in tables.items():
        (d / name).write_text("".join(line + "\n" for line in lines))
    return d


def segmented(audio: Path, reco2dur: bool = False) -> Tables:
    """recA (a plain path) holds two utterances, recB (a sox pipe of the FLAC) one."""
    tables = {
        "wav.scp": [f"recA {audio / 'a.wav'}", f"recB sox {audio / 'c.flac'} -t wav - |"],
        "segments": ["spkA-u1 recA 0.00 0.40", "spkA-u2 recA 0.50 1.00", "spkB-u3 recB 0.10 0.90"],
        "text": ["spkA-u1 HELLO WORLD", "spkA-u2 GOOD MORNING", "spkB-u3 THE END"],
        "utt2spk": ["spkA-u1 spkA", "spkA-u2 spkA", "spkB-u3 spkB"],
    }
    if reco2dur:
        tables["reco2dur"] = ["recA 1.0", "recB 1.0"]
    return tables


def whole(audio: Path, reco2dur: bool = False) -> Tables:
    """No segments: each recording is one utterance with the recording's id."""
    tables = {
        "wav.scp": [f"rec1 {audio / 'a.wav'}", f"rec2 sox {audio / 'c.flac'} -t wav - |"],
        "text": ["rec1 HELLO WORLD", "rec2\tGOOD"],  # a tab separates too
        "utt2spk": ["rec1 spk1", "rec2 spk2"],
    }
    if reco2dur:
        tables["reco2dur"] = ["rec1 1.0", "rec2 1.0"]
    return tables


def read_audio(path: Path) -> np.ndarray:
    return soundfile.read(str(path), dtype="float32")[0]


# --------------------------------------------------------------------------- clean imports


@pytest.mark.parametrize("reco2dur", [False, True])
def test_import_whole_recordings(audio, tmp_path, reco2dur):
    recs, sups = import_kaldi_data_dir(write_dir(tmp_path / "d", whole(audio, reco2dur)))
    assert sorted(recs.ids) == ["rec1", "rec2"]
    assert recs["rec1"].sources[0].type == "file" and recs["rec1"].sources[0].source == str(audio / "a.wav")
    assert recs["rec2"].sources[0].type == "command"
    assert recs["rec2"].sources[0].source == f"sox {audio / 'c.flac'} -t wav -"
    # lhotse makes one supervision per recording: same id, start 0, the recording's length.
    got = {s.id: (s.recording_id, s.start, s.duration, s.text, s.speaker) for s in sups}
    assert got == {"rec1": ("rec1", 0.0, 1.0, "HELLO WORLD", "spk1"), "rec2": ("rec2", 0.0, 1.0, "GOOD", "spk2")}
    assert all(r.num_samples == SR and r.duration == 1.0 for r in recs)
    np.testing.assert_allclose(recs["rec2"].load_audio()[0], read_audio(audio / "c.flac"), atol=1e-4)


@pytest.mark.parametrize("reco2dur", [False, True])
def test_import_segments(audio, tmp_path, reco2dur):
    recs, sups = import_kaldi_data_dir(write_dir(tmp_path / "d", segmented(audio, reco2dur)), num_jobs=2)
    got = {s.id: (s.recording_id, s.start, s.duration, s.text, s.speaker) for s in sups}
    assert got == {
        "spkA-u1": ("recA", 0.0, 0.4, "HELLO WORLD", "spkA"),
        "spkA-u2": ("recA", 0.5, 0.5, "GOOD MORNING", "spkA"),
        "spkB-u3": ("recB", 0.1, 0.8, "THE END", "spkB"),
    }
    assert sorted(recs.ids) == ["recA", "recB"] and all(r.duration == 1.0 for r in recs)
    # The audio of a segment of a file, and of a segment of a pipe.
    for sup_id, source in (("spkA-u2", "a.wav"), ("spkB-u3", "c.flac")):
        s = sups[sup_id]
        cut = recs[s.recording_id].to_cut().truncate(offset=s.start, duration=s.duration)
        expected = read_audio(audio / source)[round(s.start * SR):round(s.end * SR)]
        np.testing.assert_allclose(cut.load_audio()[0], expected, atol=1e-4)


def test_segment_just_past_the_end_is_trimmed(audio, tmp_path):
    tables = segmented(audio)
    tables["segments"][1] = "spkA-u2 recA 0.50 1.005"  # within the 0.01 s tolerance
    _, sups = import_kaldi_data_dir(write_dir(tmp_path / "d", tables))
    assert sups["spkA-u2"].end == pytest.approx(1.0)


def test_byte_order_and_end_minus_one(audio, tmp_path):
    """C-locale order ('Z' < '_' < 'a', which a UTF-8 locale's sort orders otherwise) is
    accepted, and an end of -1 runs to the end of the recording, as in Kaldi."""
    tables = {
        "wav.scp": [f"Rec {audio / 'a.wav'}", f"rec {audio / 'b.wav'}"],
        "segments": ["Rec-1 Rec 0.2 -1", "Rec_2 Rec 0 0.2", "rec-1 rec 0 1"],
        "text": ["Rec-1 A", "Rec_2 B", "rec-1 C"],
        "utt2spk": ["Rec-1 S", "Rec_2 S", "rec-1 s"],
    }
    _, sups = import_kaldi_data_dir(write_dir(tmp_path / "d", tables))
    assert sups["Rec-1"].duration == pytest.approx(0.8)


# --------------------------------------------------------------------------- faults


def expect_problem(d: Path, file: str, line: Optional[int], utt_id: Optional[str], words: str) -> str:
    with pytest.raises(CorpusError) as err:
        import_kaldi_data_dir(d)
    msg = str(err.value)
    where = f"{d / file}:{line}" if line is not None else str(d / file)
    assert where in msg, msg
    problem_line = next(part for part in msg.splitlines() if where in part)
    if utt_id is not None:
        assert f"'{utt_id}'" in problem_line, msg
    assert words in problem_line, msg
    return msg


def set_line(name: str, index: int, value: str) -> Callable[[Tables, Path], None]:
    def edit(tables: Tables, audio: Path) -> None:
        tables[name][index] = value.format(audio=audio)
    return edit


def append(name: str, value: str) -> Callable[[Tables, Path], None]:
    return lambda tables, audio: tables[name].append(value)


def delete_line(name: str, index: int) -> Callable[[Tables, Path], None]:
    return lambda tables, audio: tables[name].pop(index)


def swap_first_lines(name: str) -> Callable[[Tables, Path], None]:
    def edit(tables: Tables, audio: Path) -> None:
        tables[name][0], tables[name][1] = tables[name][1], tables[name][0]
    return edit


def add_reco2dur(rec_a: str, rec_b: str) -> Callable[[Tables, Path], None]:
    return lambda tables, audio: tables.__setitem__("reco2dur", [f"recA {rec_a}", f"recB {rec_b}"])


# (edit of the clean segmented dir, file, line, id named, words in the message)
FAULTS = {
    "too few fields": (set_line("utt2spk", 1, "spkA-u2"), "utt2spk", 2, "spkA-u2", "too few fields"),
    "segments 3 fields": (set_line("segments", 0, "spkA-u1 recA 0.00"), "segments", 1, "spkA-u1", "too few fields"),
    "segments 5 fields": (set_line("segments", 0, "spkA-u1 recA 0.00 0.40 1"), "segments", 1, "spkA-u1", "too many fields"),
    "not a number": (set_line("segments", 1, "spkA-u2 recA 0.5 end"), "segments", 2, "spkA-u2", "numbers"),
    "negative start": (set_line("segments", 0, "spkA-u1 recA -0.1 0.4"), "segments", 1, "spkA-u1", "negative start"),
    "end before start": (set_line("segments", 2, "spkB-u3 recB 0.9 0.1"), "segments", 3, "spkB-u3", "not after start"),
    "unsorted": (swap_first_lines("text"), "text", 2, "spkA-u1", "LC_ALL=C sort -k1,1"),
    "unsorted wav.scp": (swap_first_lines("wav.scp"), "wav.scp", 2, "recA", "LC_ALL=C sort -k1,1"),
    "duplicate": (append("utt2spk", "spkB-u3 spkB"), "utt2spk", 4, "spkB-u3", "duplicate"),
    "blank line": (set_line("utt2spk", 1, ""), "utt2spk", 2, None, "empty line"),
    "text utt not in segments": (append("text", "spkB-u4 MORE"), "text", 4, "spkB-u4", "not in"),
    "segment's recording unknown": (set_line("segments", 2, "spkB-u3 recC 0.1 0.9"), "segments", 3, "recC", "not in"),
    "utt2spk utt not in text": (delete_line("text", 2), "utt2spk", 3, "spkB-u3", "not in"),
    "text utt not in utt2spk": (delete_line("utt2spk", 0), "text", 1, "spkA-u1", "utt2spk"),
    "empty text": (set_line("text", 1, "spkA-u2"), "text", 2, "spkA-u2", "empty text"),
    "past end (audio of a path)": (set_line("segments", 1, "spkA-u2 recA 0.5 1.2"), "segments", 2, "spkA-u2", "past the end"),
    "past end (audio of a pipe)": (set_line("segments", 2, "spkB-u3 recB 0.1 1.05"), "segments", 3, "spkB-u3", "past the end"),
    "past end (reco2dur)": (add_reco2dur("1.0", "0.5"), "segments", 3, "spkB-u3", "reco2dur"),
    "missing audio": (set_line("wav.scp", 0, "recA {audio}/nope.wav"), "wav.scp", 1, "recA", "does not exist"),
    "unreadable audio": (set_line("wav.scp", 0, "recA {audio}/garbage.wav"), "wav.scp", 1, "recA", "unreadable"),
    "failing pipe": (set_line("wav.scp", 1, "recB sox {audio}/nope.flac -t wav - |"), "wav.scp", 2, "recB", "command failed"),
    "pipe writing no audio": (set_line("wav.scp", 1, "recB echo hello |"), "wav.scp", 2, "recB", "not audio"),
    "sample rate": (set_line("wav.scp", 0, "recA {audio}/low.wav"), "wav.scp", 1, "recA", "8000 Hz"),
    "truncated wav": (set_line("wav.scp", 0, "recA {audio}/half.wav"), "wav.scp", 1, "recA", "truncated WAV"),
    "stale reco2dur": (add_reco2dur("2.0", "1.0"), "reco2dur", 1, "recA", "the audio lasts"),
    "reco2dur incomplete": (lambda t, a: t.__setitem__("reco2dur", ["recA 1.0"]), "wav.scp", 2, "recB", "reco2dur"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_names_file_line_and_id(audio, tmp_path, fault):
    edit, file, line, utt_id, words = FAULTS[fault]
    tables = segmented(audio)
    edit(tables, audio)
    expect_problem(write_dir(tmp_path / "d", tables), file, line, utt_id, words)


def test_without_segments_text_needs_recordings(audio, tmp_path):
    tables = whole(audio)
    tables["text"].append("rec3 MORE WORDS")
    tables["utt2spk"].append("rec3 spk3")
    expect_problem(write_dir(tmp_path / "d", tables), "text", 3, "rec3", "wav.scp")
    tables = whole(audio)
    tables["wav.scp"].append(f"rec3 {audio / 'b.wav'}")
    expect_problem(write_dir(tmp_path / "e", tables), "wav.scp", 3, "rec3", "not in")


def test_table_and_audio_faults_in_one_report(audio, tmp_path):
    tables = segmented(audio)
    tables["text"][1] = "spkA-u2"
    tables["wav.scp"][1] = f"recB {audio / 'nope.flac'}"
    d = write_dir(tmp_path / "d", tables)
    msg = expect_problem(d, "text", 2, "spkA-u2", "empty text")
    assert f"{d / 'wav.scp'}:2" in msg and msg.startswith("2 problem(s)")


@pytest.mark.parametrize("name", ["wav.scp", "text", "utt2spk"])
def test_missing_required_file(audio, tmp_path, name):
    tables = segmented(audio)
    del tables[name]
    expect_problem(write_dir(tmp_path / "d", tables), name, None, None, "missing")


def test_every_problem_listed_then_counted(audio, tmp_path):
    ids = [f"rec{i:02d}" for i in range(25)]
    tables = {
        "wav.scp": [f"{i} {audio / 'a.wav'}" for i in ids],
        "text": ids,  # no words anywhere
        "utt2spk": [f"{i} spk" for i in ids],
    }
    d = write_dir(tmp_path / "d", tables)
    with pytest.raises(CorpusError) as err:
        import_kaldi_data_dir(d)
    msg = str(err.value)
    assert msg.startswith(f"25 problem(s) in {d}")
    assert f"{d / 'text'}:20" in msg and f"{d / 'text'}:21" not in msg
    assert "... and 5 more" in msg


# --------------------------------------------------------------------------- export and round trip


def recording_view(recs):
    return {r.id: ([(s.type, s.source) for s in r.sources], r.duration, r.num_samples, r.sampling_rate) for r in recs}


def supervision_view(sups):
    return {s.id: (s.recording_id, s.start, s.duration, s.text, s.speaker) for s in sups}


def kaldi_keys(path: Path) -> List[bytes]:
    return [line.split()[0] for line in path.read_bytes().splitlines()]


@pytest.mark.parametrize("layout", [segmented, whole])
def test_round_trip(audio, tmp_path, layout):
    recs, sups = import_kaldi_data_dir(write_dir(tmp_path / "d", layout(audio)))
    out = tmp_path / "exported"
    export_kaldi_data_dir(recs, sups, out)
    names = {p.name for p in out.iterdir()}
    assert {"wav.scp", "text", "utt2spk", "spk2utt", "reco2dur"} <= names
    assert ("segments" in names) == (layout is segmented)  # only when needed
    for name in names:  # sorted in byte order, as Kaldi wants
        assert kaldi_keys(out / name) == sorted(kaldi_keys(out / name)), name
    assert not list(tmp_path.glob(".exported.*"))  # the temporary sibling is gone
    recs2, sups2 = import_kaldi_data_dir(out)
    assert recording_view(recs2) == recording_view(recs)
    assert supervision_view(sups2) == supervision_view(sups)


def test_export_spk2utt_and_flac_as_sox_pipe(audio, tmp_path):
    tables = segmented(audio)
    tables["wav.scp"][1] = f"recB {audio / 'c.flac'}"  # lhotse reads a FLAC path; Kaldi does not
    recs, sups = import_kaldi_data_dir(write_dir(tmp_path / "d", tables))
    out = tmp_path / "exported"
    export_kaldi_data_dir(recs, sups, out)
    assert (out / "spk2utt").read_text() == "spkA spkA-u1 spkA-u2\nspkB spkB-u3\n"
    assert f"recB sox {audio / 'c.flac'} -t wav -b 16 - |" in (out / "wav.scp").read_text()
    recs2, sups2 = import_kaldi_data_dir(out)
    assert recs2["recB"].sources[0].type == "command"
    np.testing.assert_allclose(recs2["recB"].load_audio(), recs["recB"].load_audio(), atol=1e-4)
    assert supervision_view(sups2) == supervision_view(sups)


def test_export_replaces_only_a_kaldi_dir(audio, tmp_path):
    recs, sups = import_kaldi_data_dir(write_dir(tmp_path / "d", whole(audio)))
    out = tmp_path / "exported"
    write_dir(out, {"wav.scp": ["old x"], "stale_file": ["x"]})
    export_kaldi_data_dir(recs, sups, out)
    assert not (out / "stale_file").exists() and "rec1" in (out / "wav.scp").read_text()
    other = write_dir(tmp_path / "home", {"notes.txt": ["keep me"]})
    with pytest.raises(ValueError, match="not a Kaldi data directory"):
        export_kaldi_data_dir(recs, sups, other)
    assert (other / "notes.txt").is_file() and not (other / "wav.scp").exists()


def test_export_refuses_what_kaldi_cannot_hold(audio, tmp_path):
    recs, sups = import_kaldi_data_dir(write_dir(tmp_path / "d", whole(audio)))
    bad = SupervisionSet.from_segments(fastcopy(s, text=None) if s.id == "rec1" else s for s in sups)
    with pytest.raises(ValueError, match="supervision 'rec1': no text"):
        export_kaldi_data_dir(recs, bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- preparation and CLI


def make_corpus(audio: Path, root: Path) -> Path:
    write_dir(root / "dev", segmented(audio))
    write_dir(root / "test", whole(audio, reco2dur=True))
    return root


def test_prepare_writes_and_skips(audio, tmp_path):
    corpus = make_corpus(audio, tmp_path / "corpus")
    out = tmp_path / "manifests"
    paths = prepare_kaldi_manifests(corpus, ["dev", "test"], out, num_jobs="1", prefix="mine", sampling_rate="16000")
    assert paths["dev"]["supervisions"] == out / "mine_supervisions_dev.jsonl.gz"
    assert len(load_manifest(paths["dev"]["supervisions"])) == 3
    assert sorted(load_manifest(paths["test"]["recordings"]).ids) == ["rec1", "rec2"]
    assert (out / ".manifests.done").is_file()
    mtime = paths["dev"]["recordings"].stat().st_mtime_ns
    prepare_kaldi_manifests(corpus, ["dev", "test"], out, prefix="mine", sampling_rate=16000)
    assert paths["dev"]["recordings"].stat().st_mtime_ns == mtime
    with pytest.raises(ValueError, match="whole number of Hz"):
        prepare_kaldi_manifests(corpus, ["dev"], tmp_path / "m2", sampling_rate="16k")


def test_prepare_lists_every_part_and_writes_nothing(audio, tmp_path):
    corpus = make_corpus(audio, tmp_path / "corpus")
    (corpus / "test" / "utt2spk").unlink()
    out = tmp_path / "manifests"
    with pytest.raises(CorpusError) as err:
        prepare_kaldi_manifests(corpus, ["dev", "test", "train"], out)
    msg = str(err.value)
    assert str(corpus / "test" / "utt2spk") in msg and str(corpus / "train") in msg
    assert not out.exists() or not list(out.glob("*.jsonl.gz")) and not list(out.glob(".*.done"))


def test_cli_exports(audio, tmp_path):
    corpus = make_corpus(audio, tmp_path / "corpus")
    manifests = tmp_path / "manifests"
    prepare_kaldi_manifests(corpus, ["dev"], manifests)
    script = [sys.executable, str(REPO_ROOT / "local" / "export_kaldi.py"), "--manifest-dir", str(manifests), "--prefix", "kaldi"]
    done = subprocess.run(script + ["--part", "dev", "--out-dir", str(tmp_path / "kaldi" / "dev")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert kaldi_keys(tmp_path / "kaldi" / "dev" / "segments") == [b"spkA-u1", b"spkA-u2", b"spkB-u3"]
    missing = subprocess.run(script + ["--part", "nope", "--out-dir", str(tmp_path / "x")], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and "kaldi_recordings_nope.jsonl.gz" in missing.stderr
