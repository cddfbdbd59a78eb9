"""Text to a 16-kHz mono file: a synthesizer reads the text, sox makes the speaker.

Every output is written atomically (a temporary file renamed into place), so a file on disk
is complete; corpora skip the files that exist, which makes an interrupted synthesis resume.
"""
from __future__ import annotations

import functools
import importlib
import shutil
import subprocess
import tempfile
import threading
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

from tqdm import tqdm

from distill.synth.voices import PIPER_VOICES, Speaker, Voice
from distill.utils.audio import SAMPLE_RATE
from distill.utils.io import atomic_path

T = TypeVar("T")
R = TypeVar("R")

#: Leading and trailing silence, in seconds, added by sox.
Pad = Tuple[float, float]


def check_tools(needed: Dict[str, str], corpus: str) -> None:
    """Fail early, naming the Debian packages, when a tool is missing.

    Args:
      needed: command -> the Debian package(s) that install it.
      corpus: the corpus's name, for the message.
    """
    missing = [pkg for tool, pkg in needed.items() if shutil.which(tool) is None]
    if missing:
        raise FileNotFoundError(
            f"The {corpus} needs Debian packages that are missing: {' '.join(missing)}. "
            "Run tools/install.sh (as root) or apt-get install them."
        )


def run_checked(cmd: List[str], what: str) -> str:
    """Run ``cmd``; return its stdout, or raise naming ``what`` was being made."""
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"Synthesizing {what} failed: {' '.join(cmd)}\n{result.stderr.strip()[-2000:]}")
    return result.stdout


def synthesizer_command(voice: Voice, text_file: Path, wav: Path) -> List[str]:
    """The command that reads ``text_file`` aloud with ``voice`` (not piper) into ``wav``."""
    if voice.engine == "flite":
        return ["flite", "-voice", voice.name, "-f", str(text_file), "-o", str(wav)]
    if voice.engine == "espeak":
        return ["espeak-ng", "-v", voice.name, "-f", str(text_file), "-w", str(wav)]
    if voice.engine == "festival":
        return ["text2wave", "-eval", f"(voice_{voice.name})", str(text_file), "-o", str(wav)]
    raise ValueError(f"Unknown synthesizer engine: {voice.engine}")


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


def read_aloud(voice: Voice, text: str, wav: Path, what: str) -> None:
    """Synthesize ``text`` with ``voice`` into ``wav`` (the engine's own rate and format)."""
    if voice.engine == "piper":
        piper_read(voice.name, text, wav)
        return
    text_file = wav.with_suffix(".txt")
    text_file.write_text(text + "\n")
    run_checked(synthesizer_command(voice, text_file, wav), what)


def sox_command(raw_wav: Path, out: Path, speaker: Speaker, pad: Pad, file_type: Optional[str] = None) -> List[str]:
    """Resample to 16 kHz mono 16-bit, apply the speaker's pitch and tempo, normalize the
    level, pad silence.

    Args:
      raw_wav: the synthesizer's output.
      out: the file to write.
      speaker: gives the pitch shift (cents) and tempo factor.
      pad: (leading, trailing) silence in seconds.
      file_type: sox's output type (``wav``: signed 16-bit RIFF); None: from ``out``'s suffix.
    """
    cmd = ["sox", "-D", str(raw_wav), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16"]
    if file_type == "wav":
        cmd += ["-e", "signed-integer"]
    if file_type:
        cmd += ["-t", file_type]
    cmd.append(str(out))
    if speaker.pitch_cents:
        cmd += ["pitch", str(speaker.pitch_cents)]
    if speaker.tempo != 1.0:
        cmd += ["tempo", "-s", str(speaker.tempo)]
    cmd += ["gain", "-n", "-3", "pad", f"{pad[0]:.2f}", f"{pad[1]:.2f}", "rate", str(SAMPLE_RATE)]
    return cmd


def render(speaker: Speaker, text: str, out: Path, pad: Pad, what: str) -> None:
    """Write ``text`` said by ``speaker`` to ``out`` (format from its suffix), atomically."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="demo-tts-") as tmp:
        raw = Path(tmp) / "raw.wav"
        read_aloud(speaker.voice, text, raw, what)
        with atomic_path(out) as tmp_out:
            run_checked(sox_command(raw, tmp_out, speaker, pad), what)


def run_parallel(fn: Callable[[T], R], items: Sequence[T], num_jobs: int, desc: str = "synthesizing") -> List[R]:
    """``[fn(item) for item in items]`` in ``num_jobs`` threads (the work is in subprocesses),
    with a progress bar."""
    with ThreadPoolExecutor(max(1, num_jobs)) as pool:
        return list(tqdm(pool.map(fn, items), total=len(items), desc=desc, unit="utt"))
