"""An offline, deterministic demo corpus in LibriSpeech's layout, made with speech synthesizers.

Why: the real LibriSpeech cannot be downloaded here, yet every stage must run on real audio
files on disk. Debian's synthesizers (flite, festival, espeak-ng) work offline and sound
quite different from one another; sox pitch/tempo changes make several "speakers" of each
voice (:mod:`distill.synth.voices`). Sentences are real public-domain English (the King James
Bible and WordNet's example sentences, :mod:`distill.synth.sentences`), normalized as
LibriSpeech's transcripts are.

LibriSpeech's two conditions, each with a dev and a test part:

- ``dev-clean``, ``test-clean``: sentences never in training, read by held-out speakers made
  from the training voices with pitch/tempo variants (and so vocal-tract lengths) that no
  training speaker uses: new sentences, new speakers of familiar voices. This is what a
  synthesized corpus can support, and where settings are chosen (dev-clean).
- ``dev-other``, ``test-other``: sentences never in training, read by voices that no training
  speaker uses (other synthesizer voices, other accents): the hard condition, always
  reported, never tuned on.

Speakers and sentences are disjoint across all five parts (``train-clean-100`` and the four
above); SPEAKERS.TXT records each speaker's voice and variant.

Layout written (what lhotse's ``prepare_librispeech`` reads)::

    <out_dir>/LibriSpeech/<part>/<spk>/<chapter>/<spk>-<chapter>-<utt>.flac
    <out_dir>/LibriSpeech/<part>/<spk>/<chapter>/<spk>-<chapter>.trans.txt
    <out_dir>/LibriSpeech/SPEAKERS.TXT      (speaker id -> part, voice, pitch, tempo)

Everything is decided up front from the seed (the "plan"), then synthesized in parallel;
each file is written atomically and skipped when it exists, so an interrupted run resumes.
"""
from __future__ import annotations

import json
import logging
import random
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import soundfile

from distill.data.text_norm import normalize_transcript, speakable
from distill.synth.render import check_tools, piper_voice, render, run_parallel
from distill.synth.sentences import (
    closed_vocabulary,
    round_robin,
    sentences_in_budget,
    source_sentences,
    weighted_turns,
)
from distill.synth.voices import Speaker, Variant, Voice, is_natural, parse_voice_label
from distill.utils.done_marker import is_done, mark_done, marker_path
from distill.utils.io import atomic_write_json, atomic_write_text

TRAIN_PART = "train-clean-100"
DEV_CLEAN = "dev-clean"
TEST_CLEAN = "test-clean"
DEV_OTHER = "dev-other"
TEST_OTHER = "test-other"
#: The held-out parts of each condition: (dev part, test part).
CONDITIONS: Dict[str, Tuple[str, str]] = {"clean": (DEV_CLEAN, TEST_CLEAN), "other": (DEV_OTHER, TEST_OTHER)}
ALL_PARTS = (TRAIN_PART, DEV_CLEAN, TEST_CLEAN, DEV_OTHER, TEST_OTHER)

# The training voices. flite kal16 and festival kal_diphone are one speaker, and so are flite
# slt and festival slt-hts: each of those people is in one condition only.
# Why so many: with the nine of a first version (an hour of audio), models learned the
# training voices and stayed above 60% WER on every held-out one; variety of voices, more
# than hours of one voice, is what carries over to unseen speakers.
# Left out on purpose: flite's 8-kHz ``kal`` (no energy above 4 kHz) and pitch shifts above
# +450 cents. With them in training, a conformer's CTC warm-up stayed on the blank-only
# plateau for 1600+ batches; without them it left it after ~650 (measured, RESULTS.md).
TRAIN_VOICES: Tuple[Voice, ...] = (
    Voice("flite", "kal16", "M"),
    Voice("flite", "awb", "M"),
    Voice("festival", "ked_diphone", "M"),
    Voice("espeak", "en-us", "M"),
    Voice("espeak", "en+f3", "F"),
    Voice("espeak", "en-gb-x-rp+m3", "M"),
    Voice("espeak", "en-gb-scotland+f2", "F"),
    Voice("espeak", "en-us+m7", "M"),
    Voice("espeak", "en-gb+f4", "F"),
    Voice("espeak", "en-us+f5", "F"),
    Voice("espeak", "en-gb-x-gbclan+m1", "M"),
    Voice("espeak", "en-gb-x-gbcwmd+m4", "M"),
    Voice("espeak", "en-us+klatt2", "M"),
    Voice("espeak", "en-us+klatt4", "F"),
    Voice("espeak", "en-gb+m6", "M"),
    Voice("espeak", "en-us+belinda", "F"),
    Voice("espeak", "en-gb+steph", "F"),
    Voice("espeak", "en-us+Andy", "M"),
    Voice("espeak", "en-gb-x-rp+linda", "F"),
)
# The "other" condition's voices, none of them a training voice: the held-out espeak-ng
# voices use accents (en-029, en-us-nyc) and variants (f1, m2) that no training voice uses.
OTHER_VOICES: Dict[str, Tuple[Voice, ...]] = {
    DEV_OTHER: (Voice("flite", "rms", "M"), Voice("espeak", "en-029+f1", "F")),
    TEST_OTHER: (Voice("flite", "slt", "F"), Voice("espeak", "en-us-nyc+m2", "M")),
}
# The people behind held-out voices, under the labels of the other engines that voice them:
# an extra training voice must not be one of these (flite slt and festival slt-hts are slt).
HELDOUT_PEOPLE = {"festival:cmu_us_slt_arctic_hts"}

# Training variants: each makes another speaker of every training voice. The upward shifts
# of the male flite/festival voices stand in for the female voices those engines lack here;
# those few natural-sounding voices get more variants than the many espeak-ng ones.
TRAIN_VARIANTS: Tuple[Variant, ...] = (
    (0, 1.0), (-250, 0.92), (250, 1.08), (450, 0.97), (-120, 1.12), (350, 0.88),
)
TRAIN_ESPEAK_VARIANTS: Tuple[Variant, ...] = ((0, 1.0), (-200, 0.94), (300, 1.06))
# The clean condition's variants: the k-th training voice is read in dev-clean (test-clean)
# by one speaker with variant k mod 3 of its list. None is a training variant, and none is
# near one even after stage 2's speed perturbation (0.9x/1.1x moves pitch and tempo together):
# each differs from every such variant by >= 60 cents or >= 4% in tempo (tested).
CLEAN_VARIANTS: Dict[str, Tuple[Variant, ...]] = {
    DEV_CLEAN: ((120, 1.04), (-220, 0.98), (180, 0.95)),
    TEST_CLEAN: ((-60, 0.95), (170, 1.01), (-330, 1.05)),
}
# The other condition's variants (of voices never heard in training).
OTHER_VARIANTS: Tuple[Variant, ...] = ((0, 1.0), (200, 1.05))
# The first speaker id of each part (LibriSpeech ids are numbers).
FIRST_SPEAKER_ID: Dict[str, int] = {TRAIN_PART: 1000, DEV_OTHER: 2000, TEST_OTHER: 3000, DEV_CLEAN: 4000, TEST_CLEAN: 5000}


@dataclass
class DemoCorpusConfig:
    """How big the demo corpus is and how it is drawn.

    Attributes:
      seed: the random seed; the same seed and sizes give the same corpus.
      train_minutes: approximate training audio.
      dev_minutes / test_minutes: approximate audio of each condition's dev / test part.
      conditions: the held-out conditions to make, ``clean`` and/or ``other``.
      utts_per_chapter: utterances grouped under one chapter id.
      min_words / max_words: sentence length limits.
      vocabulary_size: keep only sentences whose every word is among the sentence pool's
        ``vocabulary_size`` most frequent words (a closed vocabulary, as in WSJ's 5k task);
        0 keeps every sentence. Why: over the whole pool (32,600 words), a test part's
        out-of-vocabulary rate against four hours of training text is 10-13%, several times
        LibriSpeech's (test-clean against train-clean-100: about 1-2%), and a transducer
        cannot spell most words it never heard. With 5,000 words and eight hours of
        training text it is about 1%.
      natural_share: the share of the training sentences read by natural-sounding voices
        (flite, festival, piper); the rest go to the espeak-ng voices. 0 deals the sentences
        evenly over the speakers (18 of the 66 are natural voices: 27% of the audio). Either
        way the training part holds the same sentences, and the held-out parts are unchanged:
        the share decides who reads a training sentence, not which part it is in.
      extra_train_voices: more training voices, as ``engine:name`` labels (e.g. ``piper:joe``),
        each with the variants of the natural voices (espeak-ng ones: their own variants).
        Empty (the default) is the corpus as measured in RESULTS.md. A voice of the other
        condition, or a person a held-out voice is made from, is refused. The clean parts'
        speakers are made from the fixed training voices only, so they do not change.
    """

    seed: int = 13
    train_minutes: float = 480.0
    dev_minutes: float = 8.0
    test_minutes: float = 8.0
    conditions: Tuple[str, ...] = ("clean", "other")
    utts_per_chapter: int = 20
    min_words: int = 4
    max_words: int = 24
    vocabulary_size: int = 5000
    natural_share: float = 0.0
    extra_train_voices: Tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 <= self.natural_share < 1.0:
            raise ValueError(f"natural_share must be in [0, 1), got {self.natural_share}")
        self.conditions = tuple(self.conditions)
        unknown = [c for c in self.conditions if c not in CONDITIONS]
        if unknown or not self.conditions:
            raise ValueError(f"conditions must be some of {sorted(CONDITIONS)}, got {list(self.conditions)}")
        self.extra_train_voices = tuple(self.extra_train_voices)
        train_voices(self)  # fails now, naming the voice, rather than after synthesis began

    @property
    def parts(self) -> Tuple[str, ...]:
        """The parts this config makes: training, then each condition's dev and test."""
        heldout = [part for condition in CONDITIONS if condition in self.conditions for part in CONDITIONS[condition]]
        return (TRAIN_PART, *heldout)

    @classmethod
    def tiny(cls, seed: int = 13) -> "DemoCorpusConfig":
        """A corpus of about three minutes, for tests and smoke runs."""
        return cls(seed=seed, train_minutes=1.5, dev_minutes=0.4, test_minutes=0.4, max_words=12)


@dataclass(frozen=True)
class Utterance:
    """One planned utterance.

    Attributes:
      id: ``<spk>-<chapter>-<utt>``, as LibriSpeech names them.
      speaker: who reads it.
      chapter: the chapter folder.
      transcript: the LibriSpeech-style transcript (upper case, no punctuation).
      spoken: the text given to the synthesizer (the source's case and punctuation).
    """

    id: str
    speaker: Speaker
    chapter: int
    transcript: str
    spoken: str

    def flac_path(self, corpus_root: Path) -> Path:
        return corpus_root / self.speaker.part / self.speaker.id / str(self.chapter) / f"{self.id}.flac"


# ----------------------------------------------------------------------------- sentences


def sentence_pool(config: DemoCorpusConfig) -> List[Tuple[str, str]]:
    """All usable sentences as (transcript, spoken text), deduplicated, restricted to the
    closed vocabulary (``config.vocabulary_size``) and shuffled by seed."""
    seen = set()
    pool = []
    for _, text in source_sentences():
        transcript = normalize_transcript(text, config.min_words, config.max_words)
        if transcript is None or transcript in seen:
            continue
        seen.add(transcript)
        pool.append((transcript, speakable(text)))
    if config.vocabulary_size > 0:
        vocabulary = closed_vocabulary([t for t, _ in pool], config.vocabulary_size)
        pool = [(t, s) for t, s in pool if all(w in vocabulary for w in t.split())]
    random.Random(config.seed).shuffle(pool)
    return pool


def estimated_seconds(transcript: str, tempo: float) -> float:
    """A rough duration of a synthesized sentence, for sizing the parts before synthesis."""
    return (0.55 + len(transcript.split()) / 3.0) / tempo


# ----------------------------------------------------------------------------- speakers


def train_voices(config: DemoCorpusConfig) -> Tuple[Voice, ...]:
    """The training part's voices: the fixed set plus ``config.extra_train_voices``."""
    heldout = {v.label for voices in OTHER_VOICES.values() for v in voices} | HELDOUT_PEOPLE
    extra = tuple(parse_voice_label(label) for label in config.extra_train_voices)
    for voice in extra:
        if voice.label in heldout:
            raise ValueError(f"Extra training voice {voice.label} is a held-out voice: the voices of training and the other condition must stay disjoint")
    labels = [v.label for v in TRAIN_VOICES + extra]
    if len(set(labels)) != len(labels):
        raise ValueError(f"Extra training voices repeat a training voice: {list(config.extra_train_voices)}")
    return TRAIN_VOICES + extra


def train_variants(voice: Voice) -> Tuple[Variant, ...]:
    """A training voice's variants: espeak-ng voices have fewer than the natural ones."""
    return TRAIN_ESPEAK_VARIANTS if voice.engine == "espeak" else TRAIN_VARIANTS


def part_speakers(part: str, config: Optional[DemoCorpusConfig] = None) -> List[Speaker]:
    """The speakers of ``part``, ids counting up from the part's first id.

    Training: every (training voice, variant). Clean parts: one speaker per fixed training
    voice, with the part's variants in turn. Other parts: every (held-out voice, variant).
    """
    if part == TRAIN_PART:
        voices = train_voices(config) if config else TRAIN_VOICES
        pairs = [(v, variant) for v in voices for variant in train_variants(v)]
    elif part in CLEAN_VARIANTS:
        variants = CLEAN_VARIANTS[part]
        pairs = [(v, variants[i % len(variants)]) for i, v in enumerate(TRAIN_VOICES)]
    elif part in OTHER_VOICES:
        pairs = [(v, variant) for v in OTHER_VOICES[part] for variant in OTHER_VARIANTS]
    else:
        raise ValueError(f"Unknown demo corpus part {part!r}")
    first = FIRST_SPEAKER_ID[part]
    return [Speaker(str(first + i), part, voice, pitch, tempo) for i, (voice, (pitch, tempo)) in enumerate(pairs)]


def voice_plan(config: Optional[DemoCorpusConfig] = None) -> Dict[str, List[str]]:
    """The voices and variants of each part, recorded with the corpus so that a change to
    them (not only to the sizes) makes a rerun refuse the old corpus rather than trust it."""
    parts = config.parts if config else DemoCorpusConfig().parts
    return {part: [s.describe() for s in part_speakers(part, config)] for part in parts}


# ----------------------------------------------------------------------------- the plan


def plan_corpus(config: DemoCorpusConfig) -> List[Utterance]:
    """Decide every utterance of the corpus (speaker, chapter, sentence) from the seed.

    Sentences are taken from the seeded pool in part order: training, dev-other, test-other,
    dev-clean, test-clean (training and the other condition thus keep the sentences of the
    corpus's earlier versions, which had no clean condition).
    """
    pool = sentence_pool(config)
    order = [TRAIN_PART, DEV_OTHER, TEST_OTHER, DEV_CLEAN, TEST_CLEAN]
    minutes = {TRAIN_PART: config.train_minutes, DEV_OTHER: config.dev_minutes, TEST_OTHER: config.test_minutes,
               DEV_CLEAN: config.dev_minutes, TEST_CLEAN: config.test_minutes}
    utterances: List[Utterance] = []
    next_sentence = 0
    for part in [p for p in order if p in config.parts]:
        speakers = part_speakers(part, config)
        # The sentence count comes from an even deal over the fixed voices, so that the natural
        # share and extra training voices change who reads the training sentences but never
        # which sentences the other parts get.
        fixed = part_speakers(part) if part == TRAIN_PART else speakers
        count = sentences_in_budget(
            lambda i: estimated_seconds(pool[next_sentence + i][0], fixed[i % len(fixed)].tempo),
            minutes[part] * 60.0,
            len(pool) - next_sentence,
        )
        if part == TRAIN_PART:
            readers = training_turns(speakers, count, config.natural_share)
        else:
            readers = round_robin(speakers, count)
        counts: Dict[str, int] = defaultdict(int)
        for speaker in readers:
            transcript, spoken = pool[next_sentence]
            next_sentence += 1
            index = counts[speaker.id]
            counts[speaker.id] += 1
            chapter = 10 + index // config.utts_per_chapter
            utt_id = f"{speaker.id}-{chapter}-{index % config.utts_per_chapter:04d}"
            utterances.append(Utterance(utt_id, speaker, chapter, transcript, spoken))
    return utterances


def training_turns(speakers: Sequence[Speaker], count: int, natural_share: float) -> List[Speaker]:
    """Who reads each training sentence: round-robin when ``natural_share`` is 0, else natural
    voices get ``natural_share`` of the turns, spread evenly (:func:`weighted_turns`)."""
    natural = [s for s in speakers if is_natural(s.voice)]
    if natural_share <= 0 or not natural or len(natural) == len(speakers):
        return round_robin(speakers, count)
    others = len(speakers) - len(natural)

    def weight(s: Speaker) -> float:
        return natural_share / len(natural) if is_natural(s.voice) else (1.0 - natural_share) / others

    return weighted_turns(speakers, count, weight)


# ----------------------------------------------------------------------------- synthesis


def utterance_pad(utt: Utterance, seed: int) -> Tuple[float, float]:
    """Leading/trailing silence as in read speech, drawn per utterance from the seed."""
    rng = random.Random(f"{seed}-{utt.id}")
    return rng.uniform(0.1, 0.4), rng.uniform(0.1, 0.5)


def synthesize(utt: Utterance, corpus_root: Path, seed: int) -> float:
    """Write one utterance's FLAC atomically (skipped if present); return its duration."""
    flac = utt.flac_path(corpus_root)
    if not flac.is_file():
        render(utt.speaker, utt.spoken, flac, utterance_pad(utt, seed), utt.id)
    return soundfile.info(str(flac)).duration


SPEAKERS_HEADER = "; ID | SEX | SUBSET | MINUTES | VOICE (engine:voice, pitch cents, tempo)"


def speakers_table(utterances: Sequence[Utterance], durations: Dict[str, float]) -> str:
    """SPEAKERS.TXT in LibriSpeech's manner, plus the voice each speaker was made with."""
    minutes: Dict[Speaker, float] = defaultdict(float)
    for utt in utterances:  # plan order: training, then the held-out parts
        minutes[utt.speaker] += durations[utt.id] / 60.0
    lines = [SPEAKERS_HEADER]
    for spk in minutes:
        lines.append(
            f"{spk.id:<5}| {spk.voice.sex} | {spk.part:<16}| {minutes[spk]:6.2f} | "
            f"{spk.voice.label} pitch={spk.pitch_cents:+d} tempo={spk.tempo}"
        )
    return "\n".join(lines) + "\n"


STARTED_MARKER = ".demo_corpus.started"


def recorded_transcripts(corpus_root: Path, parts: Sequence[str]) -> Dict[str, str]:
    """Utterance id -> transcript, as the ``*.trans.txt`` files under ``parts`` record them."""
    recorded: Dict[str, str] = {}
    for part in parts:
        for trans in sorted((corpus_root / part).rglob("*.trans.txt")):
            for line in trans.read_text(encoding="utf-8").splitlines():
                fields = line.split(maxsplit=1)
                if fields:
                    recorded[fields[0]] = fields[1] if len(fields) > 1 else ""
    return recorded


def remove_stale_files(corpus_root: Path, utterances: Sequence[Utterance], parts: Sequence[str],
                       rendered_otherwise: bool = False) -> int:
    """Delete audio and transcripts under ``parts`` that the plan does not hold (left by a
    demo corpus made with other settings), so that lhotse never reads them; returns how many.

    A planned path can hold another sentence than the plan's: utterance ids number each
    speaker's sentences, so a change of sizes moves sentences between ids. Audio is kept only
    when its ``trans.txt`` line is the plan's transcript (the generator writes those lines
    before it synthesizes), and none is kept when ``rendered_otherwise`` (an earlier seed or
    voice plan: other pauses or voices for the same sentence).

    Raises:
      ValueError: such files exist but ``corpus_root`` was not made by this generator (a real
        LibriSpeech, say): nothing is deleted, and the message says to use another folder.
    """
    wanted = {utt.flac_path(corpus_root): utt.transcript for utt in utterances}
    planned_transcripts = {flac.parent / f"{flac.parent.parent.name}-{flac.parent.name}.trans.txt" for flac in wanted}
    recorded = recorded_transcripts(corpus_root, parts)

    def is_stale(path: Path) -> bool:
        if path.suffix != ".flac":
            return path not in planned_transcripts  # a planned one is rewritten from the plan
        return path not in wanted or rendered_otherwise or recorded.get(path.stem) != wanted[path]

    stale = [
        path
        for part in parts
        for path in sorted((corpus_root / part).rglob("*"))
        if (path.suffix == ".flac" or path.name.endswith(".trans.txt")) and path.is_file() and is_stale(path)
    ]
    ours = (corpus_root / STARTED_MARKER).is_file() or marker_path(corpus_root, "demo_corpus").is_file() or (
        (corpus_root / "SPEAKERS.TXT").is_file() and SPEAKERS_HEADER in (corpus_root / "SPEAKERS.TXT").read_text()
    )
    if stale and not ours:
        raise ValueError(
            f"{corpus_root} holds a corpus that the demo generator did not make ({stale[0]} and "
            f"{len(stale) - 1} more files): give the demo corpus another --dl-dir"
        )
    for path in stale:
        path.unlink()
    return len(stale)


def rendered_otherwise(corpus_root: Path, settings: Dict) -> bool:
    """Whether the last synthesis begun in ``corpus_root`` used another seed or voice plan than
    ``settings`` (its audio then differs even where the sentence is the same)."""
    started = corpus_root / STARTED_MARKER
    if not started.is_file():
        return False
    try:
        previous = json.loads(started.read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return True  # unreadable: trust none of its audio
    return any(previous.get(key) != settings[key] for key in ("seed", "voices"))


def write_transcripts(corpus_root: Path, utterances: Sequence[Utterance]) -> None:
    """Write every chapter's ``trans.txt`` from the plan."""
    chapters: Dict[Path, List[Utterance]] = defaultdict(list)
    for utt in utterances:
        chapters[utt.flac_path(corpus_root).parent].append(utt)
    for chapter_dir, utts in chapters.items():
        spk, chapter = utts[0].speaker.id, utts[0].chapter
        atomic_write_text(
            chapter_dir / f"{spk}-{chapter}.trans.txt",
            "".join(f"{u.id} {u.transcript}\n" for u in utts),
        )


TOOLS = {"flite": "flite", "espeak-ng": "espeak-ng", "text2wave": "festival festvox-kdlpc16k",
         "sox": "sox libsox-fmt-all", "bible": "bible-kjv"}


def generate_demo_corpus(out_dir: Path, config: Optional[DemoCorpusConfig] = None, num_jobs: int = 2) -> Path:
    """Synthesize the demo corpus under ``out_dir/LibriSpeech`` and return that directory.

    Args:
      out_dir:
        The download directory (``--dl-dir``); the corpus goes to ``out_dir/LibriSpeech``.
      config:
        Sizes and seed; the default is about 7.5 hours of training audio.
      num_jobs:
        Utterances synthesized in parallel.
    Returns:
      The corpus root (``out_dir/LibriSpeech``). A completed corpus with the same settings
      is not made again; one with other settings raises ``SettingsChangedError`` (remove its
      marker to make the new one: audio that holds the new plan's sentence, made with the same
      seed and voices, is reused; everything else is removed and made again).
    """
    config = config or DemoCorpusConfig()
    corpus_root = Path(out_dir) / "LibriSpeech"
    settings = {"generator": "distill.synth.librispeech_demo", **asdict(config), "voices": voice_plan(config)}
    settings["conditions"] = list(config.conditions)
    # Options at their defaults are left out, so corpora made before they existed stay valid.
    if not config.natural_share:
        del settings["natural_share"]
    if not config.extra_train_voices:
        del settings["extra_train_voices"]
    else:
        settings["extra_train_voices"] = list(config.extra_train_voices)
    if is_done(corpus_root, "demo_corpus", settings):
        logging.info(f"Demo corpus already complete in {corpus_root}: skipping")
        return corpus_root
    check_tools(TOOLS, "demo corpus")
    for voice in train_voices(config):
        if voice.engine == "piper":
            piper_voice(voice.name)  # a missing package fails here, before synthesis starts
    utterances = plan_corpus(config)
    stale = remove_stale_files(corpus_root, utterances, ALL_PARTS, rendered_otherwise(corpus_root, settings))
    atomic_write_json(corpus_root / STARTED_MARKER, settings)
    # The transcripts first: they record what each audio file holds, so that a rerun with
    # other sizes keeps exactly the audio whose sentence has not moved (remove_stale_files).
    write_transcripts(corpus_root, utterances)
    if stale:
        logging.info(f"Removed {stale} files of an earlier corpus that the plan does not hold, or holds with another sentence")
    logging.info(
        f"Synthesizing {len(utterances)} utterances into {corpus_root} with {num_jobs} jobs "
        f"(seed {config.seed}; train about {config.train_minutes} min; each dev part about {config.dev_minutes} min, "
        f"each test part about {config.test_minutes} min: {', '.join(config.parts[1:])})"
    )
    lengths = run_parallel(lambda u: synthesize(u, corpus_root, config.seed), utterances, num_jobs)
    durations = {utt.id: seconds for utt, seconds in zip(utterances, lengths)}

    atomic_write_text(corpus_root / "SPEAKERS.TXT", speakers_table(utterances, durations))
    for part in config.parts:
        seconds = sum(durations[u.id] for u in utterances if u.speaker.part == part)
        count = sum(1 for u in utterances if u.speaker.part == part)
        speakers = len({u.speaker for u in utterances if u.speaker.part == part})
        logging.info(f"  {part}: {count} utterances, {speakers} speakers, {seconds / 60:.1f} min")
    mark_done(corpus_root, "demo_corpus", settings)
    return corpus_root
