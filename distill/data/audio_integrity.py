"""Is an audio file whole? Checks that a header-only probe misses.

A file cut short (an interrupted copy or download) still has a valid header: for FLAC the
header promises all the samples and only decoding the end finds them missing; for WAV,
libsndfile quietly shortens the length to the bytes present, so the file reads as a shorter
recording of the same utterance, and its full transcript then trains on half the audio. Both
checks are cheap: a seek to the last sample (FLAC and other compressed formats) and a
comparison of the RIFF ``data`` chunk's declared size with the bytes present (WAV).
"""
from __future__ import annotations

import struct
from pathlib import Path
from typing import List, Optional

import soundfile

from distill.data.errors import CorpusProblem
from distill.utils.audio import SAMPLE_RATE


def wav_missing_bytes(path: Path) -> int:
    """Bytes the RIFF/WAVE ``data`` chunk declares but the file does not hold (0 if whole or not a WAV)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        header = f.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return 0
        offset = 12
        while offset + 8 <= size:
            f.seek(offset)
            chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"data":
                if chunk_size == 0xFFFFFFFF:  # streamed WAV of unknown length (sox -t wav -)
                    return 0
                return max(0, offset + 8 + chunk_size - size)
            offset += 8 + chunk_size + (chunk_size & 1)
    return 0


def truncation_problem(path: Path) -> Optional[str]:
    """Why ``path`` is not a whole recording, or None when it is (or when it is unreadable:
    the caller's header probe reports that)."""
    missing = wav_missing_bytes(path)
    if missing:
        return (f"truncated WAV: its header declares {missing} more bytes of samples than the file holds (an "
                "interrupted copy?); copy it again, or remove it and its transcript line")
    try:
        with soundfile.SoundFile(str(path)) as f:
            if f.frames > 0:
                f.seek(f.frames - 1)
                if len(f.read(1)) != 1:
                    raise RuntimeError("the last sample cannot be read")
    except Exception as err:  # libsndfile's errors for a stream that ends early
        return (f"truncated or damaged audio: its header promises samples that cannot be decoded ({err}); copy it "
                "again, or remove it and its transcript line")
    return None


def check_audio(audio: Path) -> List[CorpusProblem]:
    """Problems with one audio file: missing, unreadable, empty, not 16 kHz, not mono, or cut short."""
    if not audio.is_file():
        return [CorpusProblem(audio, "audio file listed in the transcript is missing")]
    if audio.stat().st_size == 0:
        return [CorpusProblem(audio, "empty audio file (0 bytes); re-create or remove it and its transcript line")]
    try:
        info = soundfile.info(str(audio))
    except Exception as err:  # soundfile raises RuntimeError/LibsndfileError variants
        return [CorpusProblem(audio, f"unreadable audio ({err}); re-create or remove it and its transcript line")]
    if info.frames == 0:
        return [CorpusProblem(audio, "empty audio (0 samples); re-create or remove it and its transcript line")]
    if info.samplerate != SAMPLE_RATE:
        return [CorpusProblem(
            audio,
            f"sample rate {info.samplerate} Hz, expected {SAMPLE_RATE}; resample it "
            f"(e.g. sox in.flac -r {SAMPLE_RATE} out.flac)",
        )]
    if info.channels != 1:
        return [CorpusProblem(audio, f"{info.channels} channels; LibriSpeech audio is mono: mix it down "
                                     "(e.g. sox in.flac -c 1 out.flac)")]
    truncated = truncation_problem(audio)
    if truncated:
        return [CorpusProblem(audio, truncated)]
    return []
