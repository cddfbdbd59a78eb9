"""An offline, deterministic demo corpus in TIMIT's on-disk layout, synthesized with flite.

Why: TIMIT is licensed and cannot be downloaded here, yet a TIMIT recipe needs real audio with
time-aligned phone and word transcriptions on disk. ``flite`` is the one synthesizer that
reports the phones it spoke with their end times (``-psdur``), so the ``.PHN`` files agree
exactly with what is heard: flite's own lexicon and letter-to-sound rules chose the phones,
and its duration model placed them. Sentences are real public-domain English (the King James
Bible and WordNet's examples, :mod:`distill.synth.sentences`), 4 to 14 words long.

Layout written (what lhotse's ``prepare_timit(<out_dir>/TIMIT)`` reads)::

    <out_dir>/TIMIT/data/TRAIN/DR<n>/<SPK>/<UTT>.WAV   16 kHz, 16-bit mono RIFF WAV
    <out_dir>/TIMIT/data/TRAIN/DR<n>/<SPK>/<UTT>.PHN   "<start> <end> <phone>" in samples
    <out_dir>/TIMIT/data/TRAIN/DR<n>/<SPK>/<UTT>.WRD   "<start> <end> <word>" in samples
    <out_dir>/TIMIT/data/TRAIN/DR<n>/<SPK>/<UTT>.TXT   "0 <num_samples> <Sentence text.>"
    <out_dir>/TIMIT/data/TEST/DR<n>/<SPK>/...           dev and test speakers
    <out_dir>/TIMIT/SPEAKERS.TXT                        speaker -> sex, part, minutes, voice

lhotse splits ``data/TEST`` into its DEV and TEST parts by speaker folder name (its
``get_speakers()`` lists), so dev speakers are named from its dev list and test speakers from
its test list; training speakers get invented ids in TIMIT's style (sex, three letters taken
from the voice's name, a digit: ``MKAL0``, ``FSLT3``) that are in neither list.

Speakers: flite has only four 16-kHz voices (``kal16``, ``awb``, ``rms``: male; ``slt``:
female; the 8-kHz ``kal`` is left out, it has no energy above 4 kHz). A speaker is a voice
plus a sox pitch shift and tempo factor. Unlike the LibriSpeech demo corpus, every voice
appears in every part, as four voices cannot be split three ways: what dev and test hold out
are the (pitch, tempo) combinations, none of which is used in training. So this corpus
measures generalization to new pitch/tempo variants of known voices, not to unknown voices.

Everything is decided up front from the seed (the "plan", which also runs flite's text
analysis to check each sentence), then synthesized in parallel; each file is written
atomically, the WAV last, and an utterance whose four files exist is skipped, so an
interrupted run resumes. A done-marker holding the settings makes a rerun do nothing.
"""
from __future__ import annotations

import functools
import logging
import random
import re
import subprocess
import tempfile
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import soundfile

from distill.data.text_norm import normalize_transcript, speakable
from distill.synth.render import check_tools, run_checked, run_parallel, sox_command
from distill.synth.sentences import source_sentences
from distill.synth.voices import Speaker, Voice
from distill.utils.audio import SAMPLE_RATE
from distill.utils.done_marker import is_done, mark_done
from distill.utils.io import atomic_path, atomic_write_text

CORPUS_NAME = "TIMIT"
MARKER_NAME = "timit_demo"

# lhotse's part names, and the folder under data/ that holds each part on disk.
TRAIN_PART = "TRAIN"
DEV_PART = "DEV"
TEST_PART = "TEST"
PART_FOLDERS: Dict[str, str] = {TRAIN_PART: "TRAIN", DEV_PART: "TEST", TEST_PART: "TEST"}
NUM_REGIONS = 8  # TIMIT's dialect regions DR1..DR8; here they only spread speakers out.

# The voice used for the per-word phone counts. Not flite's default voice: that is the
# 8-kHz ``kal``, whose older lexicon has no ``ah`` (it said ``aa`` where the four 16-kHz
# voices said ``ah`` in 300 of 300 sentences checked); the 16-kHz voices agreed on every
# phone of another 300. kal16 is a diphone voice, the fastest of them (~13 ms per call).
WORD_COUNT_VOICE = "kal16"

# TIMIT's 61 phone symbols (its PHONCODE.DOC): what a .PHN file may hold.
TIMIT_PHONES = frozenset(
    "aa ae ah ao aw ax ax-h axr ay b bcl ch d dcl dh dx eh el em en eng epi er ey f g gcl h# "
    "hh hv ih ix iy jh k kcl l m n ng nx ow oy p pau pcl q r s sh t tcl th uh uw ux v w y z "
    "zh".split()
)

# flite phone -> TIMIT symbol. flite's CMU phone set is lower-case ARPAbet, which TIMIT's
# symbols extend, so every phone maps to the TIMIT symbol of the same name. Decisions:
#  - Stops (b d g p t k) stay one segment, written as the release symbol: flite gives one
#    segment per stop, and splitting it into TIMIT's closure + release (bcl b) would invent
#    a boundary; TIMIT's 39-phone folding would also turn each closure into an inner "sil".
#  - TIMIT's allophones (ix, ux, axr, hv, dx, nx, q, el, em, en, eng, ax-h, epi) do not occur:
#    flite's lexicon writes ih, uw, er, hh, t/d, n, ... instead, and those are what it spoke.
#  - pau is flite's silence: the first and last ones become h# (with the sox padding), an
#    inner one (a phrase break at a comma) stays pau, as in TIMIT.
#  - flite's phone set also declares axr, dx, el, em, en, nx and hv; none appeared in 600
#    sentences (the 16-kHz voices emitted exactly the 39 CMU phones, ax and pau), but they are
#    TIMIT symbols too, so they are mapped rather than made errors. Anything else (flite's
#    "brth", "h#") is unknown: an error naming the sentence.
FLITE_TO_TIMIT: Dict[str, str] = {
    **{p: p for p in (
        "aa ae ah ao aw ax ay b ch d dh eh er ey f g hh ih iy jh k l m n ng ow oy p r s sh t "
        "th uh uw v w y z zh".split()
    )},
    **{p: p for p in "axr dx el em en nx hv".split()},
    "pau": "pau",
}
FLITE_SILENCE = "pau"

# Source of each sentence -> TIMIT utterance-id prefix and first number. In TIMIT, SX marks
# the MIT "compact" sentences and SI the TI "diverse" ones (numbered from 3 and 453); here SX
# marks WordNet's examples and SI the Bible's verses. Numbers are unique over the corpus.
ID_PREFIXES: Dict[str, Tuple[str, int]] = {"wordnet": ("SX", 3), "bible": ("SI", 453)}


# flite's four 16-kHz voices; a voice's sex is the first letter of every speaker id made from
# it, and the first three letters of its name (upper case) make the invented training ids.
VOICES: Tuple[Voice, ...] = (
    Voice("flite", "kal16", "M"),
    Voice("flite", "awb", "M"),
    Voice("flite", "rms", "M"),
    Voice("flite", "slt", "F"),
)

# (pitch shift in cents, tempo factor) applied with sox; each makes another speaker of every
# voice. Dev and test use combinations (and even pitch and tempo values) that training never
# uses, so they measure generalization to unheard variants. Pitch shifts stay within
# +-350 cents: demo_corpus.py measured that larger upward shifts hurt training.
TRAIN_VARIANTS: Tuple[Tuple[int, float], ...] = (
    (0, 1.0), (-250, 0.92), (250, 1.08), (-120, 1.12), (350, 0.88), (150, 0.96),
)
DEV_VARIANTS: Tuple[Tuple[int, float], ...] = ((100, 1.04), (-200, 0.95))
TEST_VARIANTS: Tuple[Tuple[int, float], ...] = ((-60, 0.9), (200, 1.1))

# Leading/trailing silence added by sox, in seconds (drawn per utterance, 10 ms steps).
LEAD_PAD = (0.10, 0.35)
TRAIL_PAD = (0.10, 0.40)


@dataclass
class TimitDemoConfig:
    """How big the TIMIT demo corpus is and how it is drawn.

    Attributes:
      seed: the random seed; the same seed and sizes give the same corpus.
      train_minutes / dev_minutes / test_minutes: audio per part (approximate: the plan
        knows each sentence's synthesized length, so parts overshoot by under a sentence).
      min_words / max_words: sentence length limits (TIMIT's sentences are short).
    """

    seed: int = 13
    train_minutes: float = 60.0
    dev_minutes: float = 5.0
    test_minutes: float = 5.0
    min_words: int = 4
    max_words: int = 14

    @classmethod
    def tiny(cls, seed: int = 13) -> "TimitDemoConfig":
        """A corpus of about two minutes (1.5 min training, 0.4 min dev and test each)."""
        return cls(seed=seed, train_minutes=1.5, dev_minutes=0.4, test_minutes=0.4)


@dataclass(frozen=True)
class TimitSpeaker(Speaker):
    """A speaker of the TIMIT demo (:class:`~distill.synth.voices.Speaker`, whose ``id`` is
    TIMIT-style, upper case: ``MKAL0``, ``FADG0``, the speaker's folder name, and whose
    ``part`` is lhotse's ``TRAIN``, ``DEV`` or ``TEST``).

    Attributes:
      region: the dialect-region folder (``DR1`` .. ``DR8``).
    """

    region: str = "DR1"

    @property
    def sex(self) -> str:
        return self.voice.sex

    def folder(self, corpus_root: Path) -> Path:
        return corpus_root / "data" / PART_FOLDERS[self.part] / self.region / self.id


# A flite phone segment: (flite phone, end time in seconds of flite's own output).
Segment = Tuple[str, float]


@dataclass(frozen=True)
class Utterance:
    """One planned utterance: everything needed to write its four files.

    Attributes:
      id: TIMIT-style utterance id (``SX123``, ``SI1234``), unique in the corpus.
      speaker: who says it.
      text: the sentence as written in .TXT and as read by flite (``She said so.``).
      words: the lower-case words of ``text``, as written in .WRD.
      word_phones: the number of flite phones of each word (same length as ``words``).
      segments: what flite's text analysis gave for ``text`` with the speaker's voice, at
        tempo 1 and without padding: (phone, end seconds), from the first pau to the last.
      pad: (leading, trailing) silence in seconds added by sox.
    """

    id: str
    speaker: TimitSpeaker
    text: str
    words: Tuple[str, ...]
    word_phones: Tuple[int, ...]
    segments: Tuple[Segment, ...]
    pad: Tuple[float, float]

    def wav_path(self, corpus_root: Path) -> Path:
        return self.speaker.folder(corpus_root) / f"{self.id}.WAV"

    @property
    def seconds(self) -> float:
        """The length of the final audio (sox's tempo change scales flite's length exactly)."""
        return self.segments[-1][1] / self.speaker.tempo + self.pad[0] + self.pad[1]


@dataclass(frozen=True)
class CorpusPlan:
    """The whole corpus as decided from the seed.

    Attributes:
      utterances: every utterance, in plan order (train, then dev, then test).
      dropped: sentences left out because flite's phones did not split into their words.
    """

    utterances: Tuple[Utterance, ...]
    dropped: Tuple[str, ...]


# ----------------------------------------------------------------------------- speakers


def heldout_names() -> Tuple[List[str], List[str]]:
    """lhotse's (dev, test) speaker lists, upper case as TIMIT's folders are."""
    # Imported here: lhotse is heavy to import and only the speaker lists are needed.
    from lhotse.recipes.timit import get_speakers

    dev, test = get_speakers()
    return [s.upper() for s in dev], [s.upper() for s in test]


def make_speakers() -> List[TimitSpeaker]:
    """Every speaker of the corpus: each voice with each part's variants.

    Returns:
      Training speakers (invented ids ``<sex><letters><variant index>``), then dev and
      test speakers, named in order from lhotse's lists with the voice's sex.
    """
    dev_names, test_names = heldout_names()
    speakers: List[TimitSpeaker] = []
    for part, variants in ((TRAIN_PART, TRAIN_VARIANTS), (DEV_PART, DEV_VARIANTS), (TEST_PART, TEST_VARIANTS)):
        # Names by sex, consumed in list order so that they are fixed, not seed-dependent.
        names = {DEV_PART: dev_names, TEST_PART: test_names}.get(part, [])
        pools = {sex: iter([n for n in names if n[0] == sex]) for sex in "MF"}
        # Variant-major order: the round-robin deal then reaches every voice early, so that
        # even a tiny part holds all four.
        for index, (pitch, tempo) in enumerate(variants):
            for voice in VOICES:
                if part == TRAIN_PART:
                    spk_id = f"{voice.sex}{voice.name[:3].upper()}{index}"
                    if spk_id in dev_names or spk_id in test_names:
                        raise ValueError(f"Invented training speaker {spk_id} is a real TIMIT test speaker")
                else:
                    spk_id = next(pools[voice.sex])
                region = f"DR{1 + len([s for s in speakers if s.part == part]) % NUM_REGIONS}"
                speakers.append(TimitSpeaker(spk_id, part, voice, pitch, tempo, region=region))
    return speakers


def speaker_plan() -> List[str]:
    """The speakers as text, recorded in the done-marker so that a change to the voices or
    variants (not only to the sizes) makes a rerun refuse the old corpus."""
    return [
        f"{s.id} {s.part} {s.region} {s.voice.name} {s.pitch_cents:+d} {s.tempo}" for s in make_speakers()
    ]


# ----------------------------------------------------------------------------- sentences


def timit_text(text: str) -> str:
    """The written (and spoken) form of a source sentence, in TIMIT's manner.

    Args:
      text: a source sentence (``the LORD said: go-between``).
    Returns:
      One sentence starting with a capital and ending with ``.``, ``?`` or ``!``; all-capital
      words title-cased (``speakable``), hyphens between words turned into spaces (flite reads
      both halves anyway, and .WRD lists them as two words, as text_norm splits them).
    """
    text = speakable(text)
    text = re.sub(r"(?<=[A-Za-z])-(?=[A-Za-z])", " ", text)
    text = " ".join(text.split()).rstrip(",;:")
    if text[-1] not in ".?!":
        text += "."
    return text[0].upper() + text[1:]


def is_single_sentence(text: str) -> bool:
    """True when ``text`` holds one sentence and none of the quotes or brackets that a
    TIMIT prompt does not have (a ``.``, ``?`` or ``!`` may only end it)."""
    if re.search(r"[.?!]\s+\S", text.strip()):
        return False
    return not any(c in text for c in '"`()[]{}')


@functools.lru_cache(maxsize=4)
def usable_sentences(min_words: int, max_words: int) -> Tuple[Tuple[str, str], ...]:
    """All usable sentences in source order as (source, TIMIT text), deduplicated (cached:
    reading the Bible takes seconds).

    Returns:
      (``"bible"`` or ``"wordnet"``, text as :func:`timit_text` writes it), for single
      sentences of ``min_words``..``max_words`` words that ``normalize_transcript`` accepts
      (no digits, abbreviations, symbols).
    """
    seen = set()
    sentences: List[Tuple[str, str]] = []
    for source, raw in source_sentences():
        if not is_single_sentence(raw) or normalize_transcript(raw, min_words, max_words) is None:
            continue
        text = timit_text(raw)
        if text.lower() not in seen:
            seen.add(text.lower())
            sentences.append((source, text))
    return tuple(sentences)


def sentence_pool(config: TimitDemoConfig) -> List[Tuple[str, str]]:
    """The usable sentences (:func:`usable_sentences`) shuffled by the seed."""
    pool = list(usable_sentences(config.min_words, config.max_words))
    random.Random(config.seed).shuffle(pool)
    return pool


def text_words(text: str) -> Tuple[str, ...]:
    """The lower-case words of a TIMIT text, as .WRD lists them (``"Don't go."`` ->
    ``("don't", "go")``)."""
    normalized = normalize_transcript(text)
    if normalized is None:
        raise ValueError(f"Not a speakable sentence: {text!r}")
    return tuple(normalized.lower().split())


# ----------------------------------------------------------------------------- flite


def parse_psdur(output: str, text: str) -> Tuple[Segment, ...]:
    """Parse flite's ``-psdur`` output.

    Args:
      output: flite's stdout, ``pau:0.220 dh:0.254 ax:0.304 ...`` (end times, seconds).
      text: the sentence, for error messages.
    Returns:
      ((phone, end seconds), ...), end times strictly increasing.
    """
    segments = []
    for token in output.split():
        phone, sep, end = token.rpartition(":")
        if not sep or not phone:
            raise ValueError(f"Unexpected flite -psdur output {token!r} for {text!r}")
        segments.append((phone, float(end)))
    if not segments:
        raise ValueError(f"flite gave no phones for {text!r}")
    return tuple(segments)


def run_flite(args: Sequence[str], what: str) -> str:
    """Run flite with ``args``; return its stdout, or fail naming ``what`` was synthesized."""
    result = subprocess.run(["flite", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"flite failed on {what!r}: flite {' '.join(args)}\n{result.stderr.strip()[-2000:]}")
    return result.stdout


@functools.lru_cache(maxsize=None)
def sentence_segments(voice: str, text: str) -> Tuple[Segment, ...]:
    """flite's phone segments for ``text`` with ``voice``, without keeping the audio
    (cached: the plan asks again for the same seed)."""
    return parse_psdur(run_flite(["-voice", voice, "-t", text, "-psdur", "-o", "none"], text), text)


@functools.lru_cache(maxsize=None)
def word_phone_count(word: str) -> int:
    """How many phones flite says for ``word`` alone (its pau's left out; cached per word)."""
    phones = run_flite(["-voice", WORD_COUNT_VOICE, "-t", word, "-ps", "-o", "none"], word).split()
    return sum(1 for p in phones if p != FLITE_SILENCE)


def timit_symbol(phone: str, text: str) -> str:
    """The TIMIT symbol of a flite phone; an unknown phone is an error naming the sentence."""
    try:
        return FLITE_TO_TIMIT[phone]
    except KeyError:
        raise ValueError(
            f"flite phone {phone!r} (in {text!r}) has no TIMIT symbol: add it to FLITE_TO_TIMIT"
        ) from None


def word_phone_counts(text: str, segments: Sequence[Segment]) -> Optional[Tuple[int, ...]]:
    """Each word's number of phones, or None when they do not add up to the sentence's.

    Args:
      text: the sentence.
      segments: flite's segments for it (every phone is checked to have a TIMIT symbol).
    Returns:
      A count per word of :func:`text_words`, summing to the sentence's non-pau phones, or
      None (the words cannot be placed on the phones: the sentence is dropped).
    """
    spoken = [p for p, _ in segments if timit_symbol(p, text) != "pau"]
    counts = tuple(word_phone_count(w) for w in text_words(text))
    if sum(counts) != len(spoken) or 0 in counts:
        return None
    return counts


# ----------------------------------------------------------------------------- the plan


def utterance_pad(seed: int, speaker: TimitSpeaker, utt_id: str) -> Tuple[float, float]:
    """Leading and trailing silence (seconds, 10 ms steps so that sox's ``pad`` argument and
    the .PHN times agree exactly), drawn from the seed per utterance."""
    rng = random.Random(f"{seed}-{speaker.id}-{utt_id}")
    return round(rng.uniform(*LEAD_PAD), 2), round(rng.uniform(*TRAIL_PAD), 2)


def plan_corpus(config: TimitDemoConfig) -> CorpusPlan:
    """Decide every utterance (speaker, id, sentence, padding) from the seed.

    Sentences are taken in the seeded pool order and dealt round-robin to each part's
    speakers until the part's minutes are reached; a sentence whose per-word phone counts do
    not add up (see :func:`word_phone_counts`) is dropped and the speaker takes the next one.
    No sentence is used twice.
    """
    pool = iter(sentence_pool(config))
    speakers = make_speakers()
    next_number = {prefix: first for prefix, first in ID_PREFIXES.values()}
    utterances: List[Utterance] = []
    dropped: List[str] = []
    part_minutes = {TRAIN_PART: config.train_minutes, DEV_PART: config.dev_minutes, TEST_PART: config.test_minutes}
    for part, minutes in part_minutes.items():
        part_speakers = [s for s in speakers if s.part == part]
        budget = minutes * 60.0
        turn = 0
        # Round-robin over speakers so that every speaker gets a similar share.
        while budget > 0:
            speaker = part_speakers[turn % len(part_speakers)]
            source, text = next_sentence(pool)
            segments = sentence_segments(speaker.voice.name, text)
            counts = word_phone_counts(text, segments)
            if counts is None:
                dropped.append(text)
                continue
            prefix, _ = ID_PREFIXES[source]
            utt_id = f"{prefix}{next_number[prefix]}"
            next_number[prefix] += 1
            pad = utterance_pad(config.seed, speaker, utt_id)
            utt = Utterance(utt_id, speaker, text, text_words(text), counts, segments, pad)
            utterances.append(utt)
            budget -= utt.seconds
            turn += 1
    if dropped:
        logging.info(f"Dropped {len(dropped)} sentences whose flite phones do not split into their words")
    return CorpusPlan(tuple(utterances), tuple(dropped))


def next_sentence(pool: Iterator[Tuple[str, str]]) -> Tuple[str, str]:
    try:
        return next(pool)
    except StopIteration:
        raise ValueError("The sentence pool is exhausted: ask for a smaller TIMIT demo corpus") from None


# ----------------------------------------------------------------------------- transcriptions

# A transcription row: (start sample, end sample, label), as in .PHN and .WRD files.
Row = Tuple[int, int, str]


def phone_rows(utt: Utterance, num_samples: int) -> List[Row]:
    """The .PHN rows of an utterance whose audio has ``num_samples`` samples.

    flite's end times are divided by the tempo factor, shifted by the leading pad, rounded to
    samples and clamped to the file. The leading silence (sox pad plus flite's first pau) and
    the trailing one become ``h#``; runs of inner pau's become one ``pau``.

    Returns:
      Contiguous rows from 0 to ``num_samples``, each at least one sample long, first and
      last ``h#``. Raises ValueError when the times do not allow that.
    """
    lead, tempo = utt.pad[0], utt.speaker.tempo
    # Clamping matters for kal16: its audio ends ~0.12 s before the end time it reports for
    # the final pau (measured), which is why the trailing h# ends at the file's end instead.
    labelled = [
        (timit_symbol(p, utt.text), min(num_samples, round((end / tempo + lead) * SAMPLE_RATE)))
        for p, end in utt.segments
    ]
    spoken = [i for i, (label, _) in enumerate(labelled) if label != "pau"]
    if not spoken:
        raise ValueError(f"{utt.id}: flite spoke no phones for {utt.text!r}")
    first, last = spoken[0], spoken[-1]
    # The leading h# ends where the first spoken phone starts: after flite's pau, or at
    # the pad when flite began without one.
    lead_end = labelled[first - 1][1] if first > 0 else round(lead * SAMPLE_RATE)
    rows: List[Row] = [(0, lead_end, "h#")]
    for label, end in labelled[first:last + 1]:
        if label == "pau" and rows[-1][2] == "pau":
            rows[-1] = (rows[-1][0], end, "pau")  # merge a run of pau's
        else:
            rows.append((rows[-1][1], end, label))
    rows.append((rows[-1][1], num_samples, "h#"))
    for start, end, label in rows:
        if end <= start:
            raise ValueError(
                f"{utt.id}: phone {label!r} at samples {start}-{end} is empty (file of "
                f"{num_samples} samples; {utt.text!r})"
            )
    return rows


def word_rows(utt: Utterance, phones: Sequence[Row]) -> List[Row]:
    """The .WRD rows: each word spans its phones (``utt.word_phones`` of them, in order,
    skipping ``h#``/``pau``), from its first phone's start to its last phone's end."""
    spoken = [row for row in phones if row[2] not in ("h#", "pau")]
    if len(spoken) != sum(utt.word_phones):
        raise ValueError(f"{utt.id}: {len(spoken)} phones but the words need {sum(utt.word_phones)}")
    rows: List[Row] = []
    index = 0
    for word, count in zip(utt.words, utt.word_phones):
        rows.append((spoken[index][0], spoken[index + count - 1][1], word))
        index += count
    return rows


def format_rows(rows: Sequence[Row]) -> str:
    return "".join(f"{start} {end} {label}\n" for start, end, label in rows)


# ----------------------------------------------------------------------------- synthesis


def is_complete(utt: Utterance, corpus_root: Path) -> bool:
    """True when all four files of ``utt`` exist (each is written atomically, the WAV last)."""
    wav = utt.wav_path(corpus_root)
    return all(wav.with_suffix(s).is_file() for s in (".PHN", ".WRD", ".TXT", ".WAV"))


def synthesize(utt: Utterance, corpus_root: Path) -> int:
    """Write one utterance's .PHN, .WRD, .TXT and .WAV (skipped when complete).

    Returns:
      The WAV's number of samples.
    """
    wav = utt.wav_path(corpus_root)
    if is_complete(utt, corpus_root):
        return soundfile.info(str(wav)).frames
    wav.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="timit-tts-") as tmp:
        raw = Path(tmp) / "raw.wav"
        args = ["-voice", utt.speaker.voice.name, "-t", utt.text, "-psdur", "-o", str(raw)]
        segments = parse_psdur(run_flite(args, utt.text), utt.text)
        if segments != utt.segments:
            # The plan's segments came from the same voice and text: flite is deterministic.
            raise RuntimeError(f"{utt.id}: flite's phones differ from the plan's for {utt.text!r}")
        # The WAV goes in place last: the transcriptions need its length, and a WAV on
        # disk then means the utterance is complete.
        with atomic_path(wav) as tmp_wav:
            # The type is explicit: the atomic temporary file ends in .tmp.WAV.
            run_checked(sox_command(raw, tmp_wav, utt.speaker, utt.pad, file_type="wav"), utt.id)
            num_samples = soundfile.info(str(tmp_wav)).frames
            phones = phone_rows(utt, num_samples)
            atomic_write_text(wav.with_suffix(".PHN"), format_rows(phones))
            atomic_write_text(wav.with_suffix(".WRD"), format_rows(word_rows(utt, phones)))
            atomic_write_text(wav.with_suffix(".TXT"), f"0 {num_samples} {utt.text}\n")
    return num_samples


def speakers_table(utterances: Sequence[Utterance], samples: Dict[str, int]) -> str:
    """SPEAKERS.TXT: one line per speaker with its sex, region, lhotse part, minutes of audio
    and how it was made.

    Args:
      utterances: the plan's utterances.
      samples: utterance id (unique in the corpus) -> WAV samples.
    """
    minutes: Dict[TimitSpeaker, float] = defaultdict(float)
    for utt in utterances:
        minutes[utt.speaker] += samples[utt.id] / SAMPLE_RATE / 60.0
    lines = ["; ID   SEX DR  PART  MINUTES  VOICE (flite voice, sox pitch cents, tempo)"]
    for spk in minutes:  # plan order: train, dev, test
        lines.append(
            f"{spk.id:<6} {spk.sex}  {spk.region} {spk.part:<5} {minutes[spk]:7.2f}  "
            f"flite:{spk.voice.name} pitch={spk.pitch_cents:+d} tempo={spk.tempo}"
        )
    return "\n".join(lines) + "\n"


def check_flite() -> None:
    """Fail early, naming the Debian packages, when flite, its voices or sox are missing."""
    check_tools({"flite": "flite", "sox": "sox"}, "TIMIT demo corpus")
    listed = subprocess.run(["flite", "-lv"], capture_output=True, text=True).stdout.split()
    absent = [v.name for v in VOICES if v.name not in listed]
    if absent:
        raise FileNotFoundError(f"This flite lacks the voices {', '.join(absent)} (Debian's flite has them)")


def generate_timit_demo(out_dir: Path, config: Optional[TimitDemoConfig] = None, num_jobs: int = 2) -> Path:
    """Synthesize the TIMIT demo corpus under ``out_dir/TIMIT`` and return that directory.

    Args:
      out_dir:
        The download directory; the corpus goes to ``out_dir/TIMIT`` (the directory to give
        lhotse's ``prepare_timit``).
      config:
        Sizes and seed; the default is about an hour of training audio.
      num_jobs:
        Utterances synthesized in parallel.
    Returns:
      The corpus root (``out_dir/TIMIT``). A completed corpus with the same settings is not
      made again; one with other settings raises ``SettingsChangedError``.
    """
    config = config or TimitDemoConfig()
    corpus_root = Path(out_dir) / CORPUS_NAME
    # The generator name predates the move to distill/synth: kept, so that corpora made before it stay valid.
    settings = {"generator": "distill.data.timit_demo", **asdict(config), "speakers": speaker_plan()}
    if is_done(corpus_root, MARKER_NAME, settings):
        logging.info(f"TIMIT demo corpus already complete in {corpus_root}: skipping")
        return corpus_root
    check_flite()
    plan = plan_corpus(config)
    utterances = plan.utterances
    logging.info(
        f"Synthesizing {len(utterances)} utterances into {corpus_root} with {num_jobs} jobs "
        f"(seed {config.seed}; train/dev/test about {config.train_minutes}/"
        f"{config.dev_minutes}/{config.test_minutes} min; {len(plan.dropped)} sentences dropped)"
    )
    lengths = run_parallel(lambda u: synthesize(u, corpus_root), utterances, num_jobs)
    samples = {utt.id: num_samples for utt, num_samples in zip(utterances, lengths)}
    atomic_write_text(corpus_root / "SPEAKERS.TXT", speakers_table(utterances, samples))
    for part in (TRAIN_PART, DEV_PART, TEST_PART):
        part_utts = [u for u in utterances if u.speaker.part == part]
        seconds = sum(samples[u.id] for u in part_utts) / SAMPLE_RATE
        logging.info(f"  {part}: {len(part_utts)} utterances, {seconds / 60:.1f} min")
    mark_done(corpus_root, MARKER_NAME, settings)
    return corpus_root
