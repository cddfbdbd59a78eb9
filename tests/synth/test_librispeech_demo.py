"""The synthesized LibriSpeech demo corpus: layout, transcripts, audio, determinism, the clean
and other conditions (disjoint speakers and sentences, the voices each may use)."""
from __future__ import annotations

import dataclasses
import hashlib
import math
import shutil
from pathlib import Path

import pytest
import soundfile

from distill.data.text_norm import normalize_transcript, speakable
from distill.synth.librispeech_demo import (
    ALL_PARTS,
    CLEAN_VARIANTS,
    CONDITIONS,
    DEV_CLEAN,
    DEV_OTHER,
    OTHER_VOICES,
    TEST_CLEAN,
    TEST_OTHER,
    TRAIN_PART,
    TRAIN_VARIANTS,
    TRAIN_VOICES,
    DemoCorpusConfig,
    estimated_seconds,
    generate_demo_corpus,
    plan_corpus,
    remove_stale_files,
    sentence_pool,
    train_variants,
    voice_plan,
    write_transcripts,
)
from distill.synth.sentences import closed_vocabulary
from distill.synth.voices import is_natural

PARTS = ALL_PARTS
HELDOUT = (DEV_CLEAN, TEST_CLEAN, DEV_OTHER, TEST_OTHER)


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
    speakers_txt = (corpus / "SPEAKERS.TXT").read_text()
    for part in PARTS:
        assert f"| {part:<16}|" in speakers_txt


def by_part(plan, what):
    return {part: {what(u) for u in plan if u.speaker.part == part} for part in PARTS}


def test_parts_have_disjoint_speakers_and_sentences():
    plan = plan_corpus(DemoCorpusConfig(train_minutes=20.0, dev_minutes=2.0, test_minutes=2.0))
    speakers = by_part(plan, lambda u: u.speaker.id)
    texts = by_part(plan, lambda u: u.transcript)
    for i, a in enumerate(PARTS):
        assert speakers[a] and texts[a], a
        for b in PARTS[i + 1:]:
            assert not speakers[a] & speakers[b], (a, b)
            assert not texts[a] & texts[b], (a, b)
    assert len({u.id for u in plan}) == len(plan)


def test_clean_speakers_are_new_variants_of_training_voices():
    plan = plan_corpus(DemoCorpusConfig(train_minutes=20.0, dev_minutes=8.0, test_minutes=8.0))
    train = {(u.speaker.voice, u.speaker.variant) for u in plan if u.speaker.part == TRAIN_PART}
    train_voices = {voice for voice, _ in train}
    for part in (DEV_CLEAN, TEST_CLEAN):
        clean = {(u.speaker.voice, u.speaker.variant) for u in plan if u.speaker.part == part}
        assert {voice for voice, _ in clean} == set(TRAIN_VOICES)  # every training voice, 8 min suffice
        assert {voice for voice, _ in clean} <= train_voices
        assert not clean & train  # no (voice, variant) of training
        assert {variant for _, variant in clean} == set(CLEAN_VARIANTS[part])
    assert not set(CLEAN_VARIANTS[DEV_CLEAN]) & set(CLEAN_VARIANTS[TEST_CLEAN])


@pytest.mark.parametrize("part", [DEV_CLEAN, TEST_CLEAN])
def test_clean_variants_stay_away_from_speed_perturbed_training_speakers(part):
    """Stage 2's 0.9x/1.1x copies move a training speaker's pitch and tempo together; a clean
    speaker must not be one of them: >= 60 cents or >= 4% tempo from every such variant."""
    for voice in TRAIN_VOICES:
        for pitch, tempo in CLEAN_VARIANTS[part]:
            for train_pitch, train_tempo in train_variants(voice):
                for speed in (0.9, 1.0, 1.1):
                    near_pitch = abs(pitch - (train_pitch + 1200 * math.log2(speed))) < 60
                    near_tempo = abs(tempo / (train_tempo * speed) - 1) < 0.04
                    assert not (near_pitch and near_tempo), (voice, (pitch, tempo), (train_pitch, train_tempo), speed)


def test_other_voices_are_never_heard_in_training():
    def accent_and_variant(name: str):
        accent, _, variant = name.partition("+")
        return accent, variant

    train = [accent_and_variant(v.name) for v in TRAIN_VOICES if v.engine == "espeak"]
    for part in (DEV_OTHER, TEST_OTHER):
        for voice in OTHER_VOICES[part]:
            assert voice not in TRAIN_VOICES
            if voice.engine == "espeak":
                accent, variant = accent_and_variant(voice.name)
                assert all(accent != a and variant != v for a, v in train), voice
    assert not set(OTHER_VOICES[DEV_OTHER]) & set(OTHER_VOICES[TEST_OTHER])
    plan = voice_plan()
    assert len(plan[TRAIN_PART]) == 66 and len(plan[DEV_CLEAN]) == len(plan[TEST_CLEAN]) == len(TRAIN_VOICES)
    assert len(plan[DEV_OTHER]) == len(plan[TEST_OTHER]) == 4


def test_conditions_choose_the_parts_and_keep_the_others_unchanged():
    small = dict(train_minutes=20.0, dev_minutes=2.0, test_minutes=2.0)
    both = plan_corpus(DemoCorpusConfig(**small))
    other = plan_corpus(DemoCorpusConfig(**small, conditions=("other",)))
    assert {u.speaker.part for u in other} == {TRAIN_PART, DEV_OTHER, TEST_OTHER}
    # Training and the other condition come first from the pool: the same with or without clean.
    assert [(u.id, u.transcript) for u in other] == [(u.id, u.transcript) for u in both if u.speaker.part in
                                                     (TRAIN_PART, DEV_OTHER, TEST_OTHER)]
    assert DemoCorpusConfig(conditions=("clean",)).parts == (TRAIN_PART, DEV_CLEAN, TEST_CLEAN)
    assert set(CONDITIONS) == {"clean", "other"}
    with pytest.raises(ValueError, match="conditions"):
        DemoCorpusConfig(conditions=("noisy",))


def test_lhotse_reads_every_part_as_librispeech(tiny_corpus_dl_dir, tmp_path):
    """lhotse's own prepare_librispeech reads the folder: five parts, the planned speakers."""
    from lhotse.recipes import prepare_librispeech

    corpus = tiny_corpus_dl_dir / "LibriSpeech"
    manifests = prepare_librispeech(corpus, dataset_parts=list(PARTS), output_dir=None)
    assert set(manifests) == set(PARTS)
    plan = plan_corpus(DemoCorpusConfig.tiny(seed=7))
    for part in PARTS:
        sups = manifests[part]["supervisions"]
        planned = {u.id: u for u in plan if u.speaker.part == part}
        assert {s.id for s in sups} == set(planned)
        for sup in sups:
            assert sup.text == planned[sup.id].transcript and sup.speaker == planned[sup.id].speaker.id


def test_stale_files_of_another_plan_are_removed_and_a_foreign_corpus_is_refused(tmp_path):
    config = DemoCorpusConfig.tiny(seed=3)
    plan = plan_corpus(config)
    root = tmp_path / "LibriSpeech"
    stale = root / DEV_CLEAN / "2000" / "10" / "2000-10-0000.flac"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    with pytest.raises(ValueError, match="another --dl-dir"):
        remove_stale_files(root, plan, PARTS)  # not made by the generator: nothing deleted
    assert stale.is_file()
    (root / ".demo_corpus.started").write_text("{}")
    write_transcripts(root, plan)
    kept = plan[0].flac_path(root)
    kept.write_bytes(b"planned")
    assert remove_stale_files(root, plan, PARTS) == 1
    assert not stale.exists() and kept.is_file()


def test_audio_at_a_planned_path_is_kept_only_when_it_holds_the_planned_sentence(tmp_path):
    """Utterance ids number each speaker's sentences, so other sizes move sentences between
    ids: a file at a planned path is stale unless its trans.txt line is the plan's sentence."""
    small = plan_corpus(DemoCorpusConfig.tiny(seed=3))
    larger = plan_corpus(dataclasses.replace(DemoCorpusConfig.tiny(seed=3), dev_minutes=0.8))
    root = tmp_path / "LibriSpeech"
    (root / TEST_OTHER).mkdir(parents=True)
    (root / ".demo_corpus.started").write_text("{}")
    write_transcripts(root, small)
    for utt in small:
        utt.flac_path(root).write_bytes(b"audio")
    text = {u.id: u.transcript for u in larger}
    moved = [u for u in small if u.id in text and text[u.id] != u.transcript]
    same = [u for u in small if text.get(u.id) == u.transcript]
    assert moved and same and any(u.speaker.part == TEST_OTHER for u in moved)
    remove_stale_files(root, larger, PARTS)
    assert not any(u.flac_path(root).exists() for u in moved)
    assert all(u.flac_path(root).is_file() for u in same)
    # Another seed or voice plan: the same sentence sounds different, so nothing is kept.
    remove_stale_files(root, larger, PARTS, rendered_otherwise=True)
    assert not any(u.flac_path(root).exists() for u in same)


def test_a_corpus_made_again_with_other_sizes_equals_a_fresh_one(tmp_path, tiny_corpus_dl_dir):
    """Larger held-out parts over an existing corpus (its done marker removed, as the
    SettingsChangedError says) give the very corpus a fresh run makes."""
    larger = dataclasses.replace(DemoCorpusConfig.tiny(seed=7), dev_minutes=0.8, test_minutes=0.8)  # the fixture's seed
    reused = tmp_path / "reused"
    shutil.copytree(tiny_corpus_dl_dir, reused)
    (reused / "LibriSpeech" / ".demo_corpus.done").unlink()
    before = {p: p.stat().st_mtime_ns for p in (reused / "LibriSpeech").rglob("*.flac")}
    generate_demo_corpus(reused, larger, num_jobs=2)
    untouched = [p for p, mtime in before.items() if p.is_file() and p.stat().st_mtime_ns == mtime]
    assert any(TRAIN_PART in str(p) for p in untouched) and len(untouched) < len(before)  # reused, and not all
    generate_demo_corpus(tmp_path / "fresh", larger, num_jobs=2)
    assert corpus_digest(reused / "LibriSpeech") == corpus_digest(tmp_path / "fresh" / "LibriSpeech")


def corpus_digest(root: Path) -> dict:
    return {
        str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file() and p.suffix in (".flac", ".txt")
    }


def test_same_seed_same_corpus(tmp_path, tiny_corpus_dl_dir):
    generate_demo_corpus(tmp_path, DemoCorpusConfig.tiny(seed=7), num_jobs=1)
    assert corpus_digest(tmp_path / "LibriSpeech") == corpus_digest(tiny_corpus_dl_dir / "LibriSpeech")


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
    # The held-out parts are the same utterances; training holds the same sentences.
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
    for part in HELDOUT:
        assert [(u.id, u.transcript) for u in base if u.speaker.part == part] == \
            [(u.id, u.transcript) for u in extra if u.speaker.part == part]
    assert sorted(u.transcript for u in base if u.speaker.part == TRAIN_PART) == \
        sorted(u.transcript for u in extra if u.speaker.part == TRAIN_PART)
    plan = voice_plan(DemoCorpusConfig(extra_train_voices=("piper:joe",)))
    assert any(v.startswith("piper:joe") for v in plan[TRAIN_PART]) and plan != voice_plan()
    for bad, message in (("flite:rms", "held-out voice"), ("flite:awb", "repeat"), ("piper:nobody", "Unknown piper"),
                         ("mbrola:us1", "engine:name")):
        with pytest.raises(ValueError, match=message):
            DemoCorpusConfig(extra_train_voices=(bad,))
