"""The synthesized TIMIT demo corpus: layout, .PHN/.WRD/.TXT files, lhotse's reader,
determinism and resuming."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import soundfile

from distill.synth.sentences import BIBLE_COMMAND, WORDNET_DIR
from distill.synth.timit_demo import (
    DEV_PART,
    DEV_VARIANTS,
    FLITE_TO_TIMIT,
    TEST_PART,
    TEST_VARIANTS,
    TIMIT_PHONES,
    TRAIN_PART,
    TRAIN_VARIANTS,
    VOICES,
    TimitDemoConfig,
    TimitSpeaker,
    Utterance,
    generate_timit_demo,
    heldout_names,
    make_speakers,
    phone_rows,
    plan_corpus,
    timit_symbol,
    timit_text,
    word_phone_counts,
    word_rows,
)
from distill.utils.done_marker import SettingsChangedError

pytestmark = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in ("flite", "sox", BIBLE_COMMAND[0]))
    or not WORDNET_DIR.is_dir(),
    reason="the TIMIT demo corpus needs flite, sox, bible-kjv and wordnet-base",
)

PUNCTUATION = "\"'`.,;:!?()[]"


@pytest.fixture(scope="module")
def timit_dl_dir(tmp_path_factory) -> Path:
    """A download dir holding ``TIMIT/`` with the tiny corpus (seed 13). Read-only: copy it
    before changing anything."""
    dl_dir = tmp_path_factory.mktemp("timit_dl")
    generate_timit_demo(dl_dir, TimitDemoConfig.tiny(), num_jobs=2)
    return dl_dir


def wav_files(corpus: Path) -> list:
    return sorted((corpus / "data").rglob("*.WAV"))


def read_rows(path: Path) -> list:
    rows = []
    for line in path.read_text().splitlines():
        start, end, label = line.split(" ")
        rows.append((int(start), int(end), label))
    return rows


def test_layout_and_audio(timit_dl_dir):
    corpus = timit_dl_dir / "TIMIT"
    wavs = wav_files(corpus)
    assert wavs
    assert {w.relative_to(corpus / "data").parts[0] for w in wavs} == {"TRAIN", "TEST"}
    names = set(f.name for f in (corpus / "data").rglob("*") if f.is_file())
    assert all(Path(n).suffix in (".WAV", ".PHN", ".WRD", ".TXT") for n in names)
    for wav in wavs:
        part, region, speaker, name = wav.relative_to(corpus / "data").parts
        assert re.fullmatch(r"DR[1-8]", region), wav
        assert re.fullmatch(r"[MF][A-Z]{3}\d", speaker), wav
        assert re.fullmatch(r"S[XI]\d+\.WAV", name), wav
        for suffix in (".PHN", ".WRD", ".TXT"):
            assert wav.with_suffix(suffix).is_file(), wav
        info = soundfile.info(str(wav))
        assert (info.format, info.subtype) == ("WAV", "PCM_16")
        assert info.samplerate == 16000 and info.channels == 1
        assert 0.5 < info.duration < 15.0
    speakers_txt = (corpus / "SPEAKERS.TXT").read_text().splitlines()
    listed = {line.split()[0] for line in speakers_txt if not line.startswith(";")}
    assert listed == {w.parent.name for w in wavs}
    assert not list(corpus.rglob("*.tmp*"))  # no leftovers of atomic writes


def test_phn_files(timit_dl_dir):
    from lhotse.recipes.timit import get_phonemes

    # lhotse's 61 -> 48 table lists TIMIT's symbols (plus its own "sil").
    assert TIMIT_PHONES == set(get_phonemes(48)) - {"sil"}
    assert set(FLITE_TO_TIMIT.values()) <= TIMIT_PHONES
    for wav in wav_files(timit_dl_dir / "TIMIT"):
        num_samples = soundfile.info(str(wav)).frames
        rows = read_rows(wav.with_suffix(".PHN"))
        assert rows[0][0] == 0 and rows[-1][1] == num_samples, wav
        assert rows[0][2] == "h#" and rows[-1][2] == "h#", wav
        assert all(label != "h#" for _, _, label in rows[1:-1]), wav
        for (start, end, label), nxt in zip(rows, rows[1:] + [None]):
            assert 0 <= start < end <= num_samples, (wav, start, end)
            assert label in TIMIT_PHONES, (wav, label)
            if nxt is not None:
                assert nxt[0] == end, wav  # contiguous
                assert not (label == "pau" and nxt[2] == "pau"), wav  # runs merged
        txt = wav.with_suffix(".TXT").read_text()
        assert txt.endswith("\n") and txt.count("\n") == 1
        assert txt.split(" ", 2)[:2] == ["0", str(num_samples)], wav


def test_wrd_files_match_txt_and_phones(timit_dl_dir):
    for wav in wav_files(timit_dl_dir / "TIMIT"):
        text = wav.with_suffix(".TXT").read_text().rstrip("\n").split(" ", 2)[2]
        assert text[0].isupper() and text[-1] in ".?!", text
        assert not re.search(r"\d", text)
        expected = [w.strip(PUNCTUATION).lower() for w in text.split()]
        words = read_rows(wav.with_suffix(".WRD"))
        assert [w for _, _, w in words] == [w for w in expected if w], wav
        phones = read_rows(wav.with_suffix(".PHN"))
        speech_start, speech_end = phones[0][1], phones[-1][0]
        boundaries = {s for s, _, _ in phones} | {e for _, e, _ in phones}
        previous_end = speech_start
        for start, end, word in words:
            assert word == word.lower()
            assert previous_end <= start < end <= speech_end, (wav, word)
            assert start in boundaries and end in boundaries, (wav, word)
            previous_end = end
        assert words[0][0] == speech_start and words[-1][1] == speech_end, wav


def test_lhotse_prepare_timit(timit_dl_dir):
    from lhotse.recipes.timit import prepare_timit

    corpus = timit_dl_dir / "TIMIT"
    manifests = prepare_timit(corpus, num_phones=39)
    dev_names, test_names = heldout_names()
    total = 0
    for part in (TRAIN_PART, DEV_PART, TEST_PART):
        supervisions = manifests[part]["supervisions"]
        assert len(manifests[part]["recordings"]) == len(supervisions) > 0, part
        total += len(supervisions)
        for sup in supervisions:
            assert sup.alignment["phone"] and sup.alignment["word"]
            assert sup.text == " ".join(sup.text.split())
            if part == DEV_PART:
                assert sup.speaker in dev_names
            elif part == TEST_PART:
                assert sup.speaker in test_names
    assert total == len(wav_files(corpus))


def test_speakers():
    speakers = make_speakers()
    dev_names, test_names = heldout_names()
    assert len({s.id for s in speakers}) == len(speakers)
    sex = {v.name: v.sex for v in VOICES}
    for spk in speakers:
        assert spk.id[0] == sex[spk.voice.name], spk
        if spk.part == TRAIN_PART:
            assert spk.id not in dev_names and spk.id not in test_names
        else:
            assert spk.id in (dev_names if spk.part == DEV_PART else test_names)
    # Held-out parts use pitch/tempo combinations never used in training, or in each other.
    variants = [set(TRAIN_VARIANTS), set(DEV_VARIANTS), set(TEST_VARIANTS)]
    assert not variants[0] & variants[1] and not variants[0] & variants[2] and not variants[1] & variants[2]
    for part, wanted in zip((TRAIN_PART, DEV_PART, TEST_PART), variants):
        assert {(s.pitch_cents, s.tempo) for s in speakers if s.part == part} == wanted


def test_plan_is_deterministic():
    plan = plan_corpus(TimitDemoConfig.tiny())
    assert plan == plan_corpus(TimitDemoConfig.tiny())
    other = plan_corpus(TimitDemoConfig.tiny(seed=14))
    assert [u.text for u in other.utterances] != [u.text for u in plan.utterances]
    ids = [(u.speaker.id, u.id) for u in plan.utterances]
    assert len(set(ids)) == len(ids)
    parts = {
        part: {u.text for u in plan.utterances if u.speaker.part == part} for part in (TRAIN_PART, DEV_PART, TEST_PART)
    }
    assert not parts[TRAIN_PART] & (parts[DEV_PART] | parts[TEST_PART])
    assert {u.speaker.voice.name for u in plan.utterances if u.speaker.part == DEV_PART} == {v.name for v in VOICES}
    for utt in plan.utterances:
        assert 4 <= len(utt.words) <= 14 and len(utt.word_phones) == len(utt.words)


def test_rerun_skips_resumes_and_refuses_other_settings(timit_dl_dir, tmp_path):
    original = timit_dl_dir / "TIMIT"
    victim = wav_files(original)[0]
    mtime = victim.stat().st_mtime_ns
    assert generate_timit_demo(timit_dl_dir, TimitDemoConfig.tiny()) == original  # done marker
    assert victim.stat().st_mtime_ns == mtime
    with pytest.raises(SettingsChangedError):
        generate_timit_demo(timit_dl_dir, TimitDemoConfig.tiny(seed=14))

    # An interrupted run (marker and some files gone) resumes and remakes the same files.
    copy = tmp_path / "TIMIT"
    shutil.copytree(original, copy)
    (copy / ".timit_demo.done").unlink()
    lost = copy / victim.relative_to(original)
    lost.unlink()
    lost.with_suffix(".PHN").unlink()
    generate_timit_demo(tmp_path, TimitDemoConfig.tiny())
    for suffix in (".WAV", ".PHN", ".WRD", ".TXT"):
        assert lost.with_suffix(suffix).read_bytes() == victim.with_suffix(suffix).read_bytes()
    assert (copy / ".timit_demo.done").is_file()


def fake_utterance(segments, tempo=1.0, pad=(0.1, 0.2), words=("hi", "there"), counts=(2, 3)) -> Utterance:
    speaker = TimitSpeaker("MKAL0", TRAIN_PART, VOICES[0], 0, tempo, region="DR1")
    return Utterance("SX3", speaker, "Hi, there.", words, counts, tuple(segments), pad)


def test_phone_and_word_rows():
    segments = [
        ("pau", 0.2), ("hh", 0.3), ("ay", 0.5), ("pau", 0.6), ("pau", 0.7),
        ("dh", 0.8), ("eh", 0.9), ("r", 1.0), ("pau", 1.3),
    ]
    utt = fake_utterance(segments, tempo=2.0, pad=(0.1, 0.2))
    # Times: end / 2 + 0.1 s, in samples at 16 kHz; the file ends before flite's last pau.
    rows = phone_rows(utt, num_samples=10000)
    assert rows == [
        (0, 3200, "h#"), (3200, 4000, "hh"), (4000, 5600, "ay"), (5600, 7200, "pau"),
        (7200, 8000, "dh"), (8000, 8800, "eh"), (8800, 9600, "r"), (9600, 10000, "h#"),
    ]
    assert word_rows(utt, rows) == [(3200, 5600, "hi"), (7200, 9600, "there")]
    with pytest.raises(ValueError, match="empty"):
        phone_rows(utt, num_samples=9600)  # no room left for the trailing h#


def test_unknown_phone_and_mismatched_words():
    assert timit_symbol("ax", "x") == "ax"
    with pytest.raises(ValueError, match="Hi, there"):
        timit_symbol("brth", "Hi, there.")
    with pytest.raises(ValueError, match="brth"):
        word_phone_counts("Hi there.", [("pau", 0.1), ("brth", 0.2), ("pau", 0.3)])
    # flite says "hi there" in five phones; four cannot be split into the words: dropped.
    four = [("pau", 0.1), ("hh", 0.2), ("ay", 0.3), ("dh", 0.4), ("eh", 0.5), ("pau", 0.6)]
    assert word_phone_counts("Hi there.", four) is None
    assert word_phone_counts("Hi there.", four[:-1] + [("r", 0.55), ("pau", 0.6)]) == (2, 3)


def test_timit_text():
    assert timit_text("she doesn't want a well-known LORD,") == "She doesn't want a well known Lord."
    assert timit_text("Who is he?") == "Who is he?"
