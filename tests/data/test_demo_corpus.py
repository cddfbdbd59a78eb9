"""The synthesized demo corpus: layout, transcripts, audio, determinism, disjoint voices."""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
import soundfile

from distill.data.demo_corpus import (
    DEV_PART,
    DEV_VOICES,
    TEST_PART,
    TEST_VOICES,
    TRAIN_PART,
    TRAIN_VARIANTS,
    TRAIN_VOICES,
    DemoCorpusConfig,
    closed_vocabulary,
    estimated_seconds,
    generate_demo_corpus,
    is_natural,
    plan_corpus,
    sentence_pool,
    voice_plan,
)
from distill.data.text_norm import normalize_transcript, speakable

PARTS = (TRAIN_PART, DEV_PART, TEST_PART)


def read_transcripts(corpus: Path, part: str) -> dict:
    out = {}
    for trans in (corpus / part).rglob("*.trans.txt"):
        for line in trans.read_text().splitlines():
            utt, text = line.split(maxsplit=1)
            out[utt] = (trans.parent, text)
    return out


def test_layout_and_audio(tiny_corpus_dl_dir):
    corpus = tiny_corpus_dl_dir / "LibriSpeech"
    for part in PARTS:
        transcripts = read_transcripts(corpus, part)
        assert transcripts, part
        for utt, (chapter_dir, text) in transcripts.items():
            spk, chapter, _ = utt.split("-")
            assert chapter_dir == corpus / part / spk / chapter
            assert text == text.upper() and text.replace("'", "").replace(" ", "").isalpha()
            info = soundfile.info(str(chapter_dir / f"{utt}.flac"))
            assert info.samplerate == 16000 and info.channels == 1
            assert 0.5 < info.duration < 20.0
    assert (corpus / "SPEAKERS.TXT").is_file()


def test_parts_have_disjoint_speakers_and_voices():
    plan = plan_corpus(DemoCorpusConfig.tiny())
    voices = {part: {u.speaker.voice for u in plan if u.speaker.part == part} for part in PARTS}
    speakers = {part: {u.speaker.id for u in plan if u.speaker.part == part} for part in PARTS}
    for a in PARTS:
        for b in PARTS:
            if a < b:
                assert not voices[a] & voices[b]
                assert not speakers[a] & speakers[b]
    # No sentence is spoken in two parts.
    texts = {part: {u.transcript for u in plan if u.speaker.part == part} for part in PARTS}
    assert not texts[TRAIN_PART] & texts[TEST_PART]


def test_heldout_espeak_voices_share_no_accent_or_variant_with_training():
    def accent_and_variant(name: str):
        accent, _, variant = name.partition("+")
        return accent, variant

    train = [accent_and_variant(v.name) for v in TRAIN_VOICES if v.engine == "espeak"]
    for voice in DEV_VOICES + TEST_VOICES:
        if voice.engine == "espeak":
            accent, variant = accent_and_variant(voice.name)
            assert all(accent != a and variant != v for a, v in train), voice
    # The default corpus has many more training speakers than held-out ones.
    plan = voice_plan()
    assert len(plan[TRAIN_PART]) == 66 and len(plan[DEV_PART]) == len(plan[TEST_PART]) == 4


def test_same_seed_same_corpus(tmp_path, tiny_corpus_dl_dir):
    generate_demo_corpus(tmp_path, DemoCorpusConfig.tiny(seed=7), num_jobs=1)

    def digest(root: Path) -> dict:
        return {
            str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.suffix in (".flac", ".txt")
        }

    assert digest(tmp_path / "LibriSpeech") == digest(tiny_corpus_dl_dir / "LibriSpeech")


def test_rerun_skips_and_resumes(tmp_path):
    config = DemoCorpusConfig.tiny(seed=3)
    corpus = generate_demo_corpus(tmp_path, config, num_jobs=2)
    victim = next(corpus.rglob("*.flac"))
    mtime = victim.stat().st_mtime_ns
    generate_demo_corpus(tmp_path, config, num_jobs=2)  # done: nothing rewritten
    assert victim.stat().st_mtime_ns == mtime
    # An interrupted run (marker and one file gone) resumes and restores the file.
    (corpus / ".demo_corpus.done").unlink()
    victim.unlink()
    generate_demo_corpus(tmp_path, config, num_jobs=2)
    assert victim.is_file()


def test_normalization():
    assert normalize_transcript("And God said, Let there be light: and there was light.") == (
        "AND GOD SAID LET THERE BE LIGHT AND THERE WAS LIGHT"
    )
    assert normalize_transcript("a well-known man's house") == "A WELL KNOWN MAN'S HOUSE"
    for bad in ("he paid 5 dollars", "the U.S. army", "e.g. this one", "see figure B here", "50% off"):
        assert normalize_transcript(bad) is None, bad
    assert normalize_transcript("one two", min_words=3) is None
    assert speakable("the LORD said") == "the Lord said"


def test_closed_vocabulary_keeps_the_most_frequent_words_order_independently():
    transcripts = ["A B C", "A B", "A D", "E"]
    assert closed_vocabulary(transcripts, 2) == {"A", "B"}
    assert closed_vocabulary(list(reversed(transcripts)), 3) == {"A", "B", "C"}  # ties: alphabetical


def test_every_planned_sentence_is_in_the_closed_vocabulary():
    config = DemoCorpusConfig.tiny()
    plan = plan_corpus(config)
    unrestricted = sentence_pool(dataclasses.replace(config, vocabulary_size=0))
    vocabulary = closed_vocabulary([t for t, _ in unrestricted], config.vocabulary_size)
    assert all(w in vocabulary for u in plan for w in u.transcript.split())
    # The restriction is real: the unrestricted pool has sentences outside the vocabulary.
    assert any(w not in vocabulary for t, _ in unrestricted for w in t.split())


def test_natural_share_changes_who_reads_training_sentences_and_nothing_else():
    config = DemoCorpusConfig(train_minutes=60.0, dev_minutes=2.0, test_minutes=2.0)
    even = plan_corpus(config)
    balanced = plan_corpus(dataclasses.replace(config, natural_share=0.6))

    def natural_audio_share(plan) -> float:
        train = [u for u in plan if u.speaker.part == TRAIN_PART]
        seconds = [estimated_seconds(u.transcript, u.speaker.tempo) for u in train]
        natural = [s for s, u in zip(seconds, train) if is_natural(u.speaker.voice)]
        return sum(natural) / sum(seconds)

    assert 0.2 < natural_audio_share(even) < 0.35  # 18 natural speakers of 66
    assert abs(natural_audio_share(balanced) - 0.6) < 0.03
    # Dev and test are the same utterances; training holds the same sentences.
    heldout = [(u.id, u.transcript, u.speaker) for u in even if u.speaker.part != TRAIN_PART]
    assert heldout == [(u.id, u.transcript, u.speaker) for u in balanced if u.speaker.part != TRAIN_PART]
    train_texts = sorted(u.transcript for u in even if u.speaker.part == TRAIN_PART)
    assert train_texts == sorted(u.transcript for u in balanced if u.speaker.part == TRAIN_PART)
    # Every training speaker still reads something, and utterance ids stay unique.
    assert {u.speaker for u in balanced if u.speaker.part == TRAIN_PART} == {
        u.speaker for u in even if u.speaker.part == TRAIN_PART
    }
    assert len({u.id for u in balanced}) == len(balanced)


def test_extra_train_voices_join_training_only_and_refuse_heldout_voices():
    small = dict(train_minutes=40.0, dev_minutes=2.0, test_minutes=2.0)  # planned only: nothing synthesized
    base = plan_corpus(DemoCorpusConfig(**small))
    extra = plan_corpus(DemoCorpusConfig(**small, extra_train_voices=("piper:joe",)))
    joe = [u for u in extra if u.speaker.voice.label == "piper:joe"]
    assert joe and {u.speaker.part for u in joe} == {TRAIN_PART}
    assert len({u.speaker.id for u in joe}) == len(TRAIN_VARIANTS)  # the natural voices' variants
    for part in ("dev-clean", "test-clean"):
        assert [(u.id, u.transcript) for u in base if u.speaker.part == part] == \
            [(u.id, u.transcript) for u in extra if u.speaker.part == part]
    assert sorted(u.transcript for u in base if u.speaker.part == TRAIN_PART) == \
        sorted(u.transcript for u in extra if u.speaker.part == TRAIN_PART)
    plan = voice_plan(DemoCorpusConfig(extra_train_voices=("piper:joe",)))
    assert any(v.startswith("piper:joe") for v in plan[TRAIN_PART]) and plan != voice_plan()
    for bad, message in (("flite:rms", "dev/test voice"), ("flite:awb", "repeat"), ("piper:nobody", "Unknown piper"),
                         ("mbrola:us1", "engine:name")):
        with pytest.raises(ValueError, match=message):
            DemoCorpusConfig(extra_train_voices=(bad,))
