"""Kaldi data directories: check one, import it into lhotse manifests, export manifests back.

A Kaldi data directory (https://kaldi-asr.org/doc/data_prep.html) holds plain-text tables,
one entry a line, the id first and the fields separated by whitespace::

    wav.scp     <recording-id> <path>             a WAV file, or any file soundfile reads
                <recording-id> <command> |        a shell command writing a WAV file to stdout
    text        <utterance-id> <word> <word> ...
    utt2spk     <utterance-id> <speaker-id>
    segments    <utterance-id> <recording-id> <start-s> <end-s>     (optional; end -1 = to the end)
    reco2dur    <recording-id> <duration-s>                         (optional)
    spk2gender  <speaker-id> <m|f>,  utt2lang  <utterance-id> <language>   (optional)

Without ``segments`` every utterance is a whole recording and has the recording's id. Every
table is sorted by its first field in byte order (``LC_ALL=C sort -k1,1``) and has unique
ids; ``text``, ``utt2spk`` (and ``segments``) list the same utterances. Relative paths in
``wav.scp`` are relative to the directory the command runs in, as in Kaldi.

lhotse's own loader (``lhotse.kaldi.load_kaldi_data_dir``) builds the manifests, but it checks
almost nothing: a missing transcript is a ``KeyError``, a missing ``utt2spk`` line an
``AssertionError``, a blank line a ``ValueError`` from ``dict()``, an unreadable recording is
dropped with a warning (an error only past 20% of them), and segments past the end of their
recording are trimmed silently later. So the directory is checked first and every fault is
reported with its ``<file>:<line>``, the id and the fix (:func:`check_kaldi_data_dir`).

How durations are found: from ``reco2dur`` when present (trusted for piped commands, which are
then not run; plain paths are still opened and must agree within 0.01 s); otherwise from the
audio: the header (soundfile) for paths, and for commands by running them and reading the WAV
they write (soundfile), which also catches commands that fail. lhotse would measure the
commands again itself, with ``kaldi_native_io``, and floor the durations to whole
milliseconds (so ``num_samples`` disagrees with the audio); instead it is given a normalized
copy of the checked tables with a ``reco2dur`` of the exact durations measured here, so each
command runs once and ``num_samples`` is exact.
"""
from __future__ import annotations

import io
import logging
import math
import os
import shlex
import shutil
import subprocess
import tempfile
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import soundfile

from distill.data.audio_integrity import truncation_problem
from lhotse import RecordingSet, SupervisionSet
from lhotse.qa import fix_manifests, validate_recordings_and_supervisions
from lhotse.utils import fastcopy

from distill.data.errors import CorpusError
from distill.data.errors import CorpusProblem
from distill.data.manifests import manifest_paths
from distill.data.manifests import write_manifests
from distill.utils.audio import SAMPLE_RATE
from distill.utils.done_marker import INPUTS_KEY, is_done, mark_done, tree_fingerprint

REQUIRED_FILES = ("wav.scp", "text", "utt2spk")
OPTIONAL_FILES = ("segments", "reco2dur", "spk2gender", "utt2lang")
# The format of each table (for messages) and its allowed number of fields, the id included.
# `text` allows the id alone so that the empty-text check, not the field count, reports it.
FORMATS: Dict[str, Tuple[str, int, Optional[int]]] = {
    "wav.scp": ("<recording-id> <path>  or  <recording-id> <command> |", 2, None),
    "text": ("<utterance-id> <word> ...", 1, None),
    "utt2spk": ("<utterance-id> <speaker-id>", 2, 2),
    "segments": ("<utterance-id> <recording-id> <start-seconds> <end-seconds>", 4, 4),
    "reco2dur": ("<recording-id> <duration-seconds>", 2, 2),
    "spk2gender": ("<speaker-id> <gender>", 2, 2),
    "utt2lang": ("<utterance-id> <language>", 2, 2),
}
# How far a segment may run past the end of its recording (rounding in segment times or in
# reco2dur); lhotse's fix_manifests trims such a segment to the recording.
END_TOLERANCE = 0.01
SORT_FIX = "LC_ALL=C sort -k1,1"
MAX_SHOWN = 20


# --------------------------------------------------------------------------- reading tables


@dataclass(frozen=True)
class Entry:
    """One line of a Kaldi table: its number, the id and the rest of the line."""

    line: int
    key: str
    rest: str  # everything after the id, outer whitespace stripped (a command keeps its inner spacing)

    @property
    def fields(self) -> List[str]:
        return self.rest.split()


def at(path: Path, line: int) -> Path:
    """``<path>:<line>``, the way problems name a line (as librispeech.py does)."""
    return Path(f"{path}:{line}")


def read_table(path: Path) -> Tuple[List[Entry], List[CorpusProblem]]:
    """Read a Kaldi table into entries; blank and non-UTF-8 lines are problems, not entries.

    Args:
      path:
        The table file.
    Returns:
      The entries in file order, and the problems found while reading.
    """
    entries: List[Entry] = []
    problems: List[CorpusProblem] = []
    # Bytes first: a bad byte is then reported on its line instead of aborting the whole file.
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError as err:
            problems.append(CorpusProblem(at(path, number), f"not valid UTF-8 ({err.reason} at byte {err.start}); convert the file, e.g. iconv -t UTF-8"))
            continue
        if not line:
            problems.append(CorpusProblem(at(path, number), "empty line; delete it (Kaldi tables have one entry a line)"))
            continue
        # Any whitespace (a tab too) ends the id, as in Kaldi and in lhotse's str.split.
        parts = line.split(maxsplit=1)
        entries.append(Entry(number, parts[0], parts[1] if len(parts) > 1 else ""))
    return entries, problems


# --------------------------------------------------------------------------- per-table checks


def check_field_count(path: Path, entries: Sequence[Entry], fmt: str, min_fields: int, max_fields: Optional[int]) -> List[CorpusProblem]:
    """Lines with too few or too many fields (the id counts as one)."""
    problems = []
    for e in entries:
        n = 1 + len(e.fields)
        if n < min_fields:
            problems.append(CorpusProblem(at(path, e.line), f"'{e.key}': too few fields ({n}); the format is '{fmt}'"))
        elif max_fields is not None and n > max_fields:
            problems.append(CorpusProblem(at(path, e.line), f"'{e.key}': too many fields ({n}); the format is '{fmt}'"))
    return problems


def well_formed(entries: Sequence[Entry], min_fields: int, max_fields: Optional[int]) -> List[Entry]:
    """The entries whose field count is right (the value checks look only at these)."""
    return [e for e in entries if min_fields <= 1 + len(e.fields) and (max_fields is None or 1 + len(e.fields) <= max_fields)]


def check_sorted(path: Path, entries: Sequence[Entry]) -> List[CorpusProblem]:
    """One problem for a table not sorted by id in byte order, naming its first unsorted line.

    Python compares ``str`` by code point, which is the byte order of UTF-8, i.e. C-locale order.
    """
    unsorted = [(a, b) for a, b in zip(entries, entries[1:]) if b.key < a.key]
    if not unsorted:
        return []
    before, after = unsorted[0]
    more = f" (and {len(unsorted) - 1} more unsorted lines)" if len(unsorted) > 1 else ""
    return [CorpusProblem(
        at(path, after.line),
        f"not sorted: '{after.key}' comes after '{before.key}' (line {before.line}){more}; Kaldi wants "
        f"every table sorted by its first field in byte order: {SORT_FIX} -o {path} {path}",
    )]


def check_unique(path: Path, entries: Sequence[Entry]) -> List[CorpusProblem]:
    """Ids listed more than once."""
    first: Dict[str, int] = {}
    problems = []
    for e in entries:
        if e.key in first:
            problems.append(CorpusProblem(at(path, e.line), f"duplicate id '{e.key}' (first on line {first[e.key]}); keep one of the lines"))
        else:
            first[e.key] = e.line
    return problems


def check_text_not_empty(path: Path, entries: Sequence[Entry]) -> List[CorpusProblem]:
    """Utterances without words."""
    return [
        CorpusProblem(at(path, e.line), f"empty text for utterance '{e.key}'; add its words or remove the utterance (from text, utt2spk and segments)")
        for e in entries if not e.rest
    ]


def parse_seconds(value: str) -> Optional[float]:
    """A finite number of seconds, or None."""
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) else None


def check_segment_times(path: Path, entries: Sequence[Entry]) -> List[CorpusProblem]:
    """Start and end are numbers, start >= 0, end > start (or end = -1: to the recording's end)."""
    problems = []
    for e in entries:
        _, start_s, end_s = e.fields
        start, end = parse_seconds(start_s), parse_seconds(end_s)
        where = at(path, e.line)
        if start is None or end is None:
            problems.append(CorpusProblem(where, f"segment '{e.key}': start and end must be numbers of seconds, got '{start_s}' '{end_s}'"))
        elif start < 0:
            problems.append(CorpusProblem(where, f"segment '{e.key}': negative start {start_s}; times are seconds from the start of the recording"))
        elif end != -1 and end <= start:
            problems.append(CorpusProblem(where, f"segment '{e.key}': end {end_s} is not after start {start_s}; fix the times or remove the segment"))
    return problems


def check_durations(path: Path, entries: Sequence[Entry]) -> List[CorpusProblem]:
    """``reco2dur`` values are positive numbers."""
    return [
        CorpusProblem(at(path, e.line), f"recording '{e.key}': duration '{e.rest}' is not a positive number of seconds; fix it or delete reco2dur (it is then measured)")
        for e in entries if (parse_seconds(e.rest) or 0.0) <= 0
    ]


# --------------------------------------------------------------------------- cross-table checks


def check_ids_in(path: Path, entries: Iterable[Entry], other: Path, other_ids: Iterable[str], what: str, why: str = "") -> List[CorpusProblem]:
    """Entries of ``path`` whose id is missing from ``other`` (whose ids are ``other_ids``)."""
    known = set(other_ids)
    return [
        CorpusProblem(at(path, e.line), f"{what} '{e.key}' is not in {other}{why}; add it there or remove this line")
        for e in entries if e.key not in known
    ]


def check_segment_recordings(path: Path, entries: Sequence[Entry], wav_scp: Path, recording_ids: Iterable[str]) -> List[CorpusProblem]:
    """Segments whose recording is not in ``wav.scp``."""
    known = set(recording_ids)
    return [
        CorpusProblem(at(path, e.line), f"segment '{e.key}': recording '{e.fields[0]}' is not in {wav_scp}; add it there or remove the segment")
        for e in entries if e.fields[0] not in known
    ]


def check_speakers_in(utt2spk: Path, entries: Sequence[Entry], spk2gender: Path, speakers: Iterable[str]) -> List[CorpusProblem]:
    """Speakers of ``utt2spk`` missing from ``spk2gender`` (each reported once)."""
    known, seen, problems = set(speakers), set(), []
    for e in entries:
        if e.rest not in known and e.rest not in seen:
            seen.add(e.rest)
            problems.append(CorpusProblem(at(utt2spk, e.line), f"speaker '{e.rest}' of utterance '{e.key}' is not in {spk2gender}; add it there or delete spk2gender"))
    return problems


# --------------------------------------------------------------------------- audio


@dataclass(frozen=True)
class AudioInfo:
    """What the checks need to know of a recording's audio."""

    num_samples: int
    sampling_rate: int
    num_channels: int

    @property
    def duration(self) -> float:
        return self.num_samples / self.sampling_rate


def is_command(source: str) -> bool:
    """A ``wav.scp`` value ending in ``|`` is a command writing the audio to stdout."""
    return source.endswith("|")


def probe_file(path: Path) -> Union[AudioInfo, str]:
    """The audio file's info from its header, or why it cannot be read."""
    if not path.is_file():
        return f"audio file {path} does not exist (relative paths are relative to the directory you run from)"
    if path.stat().st_size == 0:
        return f"audio file {path} is empty (0 bytes)"
    try:
        info = soundfile.info(str(path))
    except Exception as err:  # soundfile raises RuntimeError/LibsndfileError variants
        return f"audio file {path} is unreadable ({err})"
    truncated = truncation_problem(path)
    if truncated:
        return f"audio file {path}: {truncated}"
    return AudioInfo(info.frames, info.samplerate, info.channels)


def probe_command(command: str) -> Union[AudioInfo, str]:
    """Run a ``wav.scp`` command (without its ``|``) and read the WAV it writes; or say why not.

    Run by ``/bin/sh`` as Kaldi's popen does, stdin closed so that a command waiting for input
    fails instead of hanging. The output is held in memory (about 115 MB an hour at 16 kHz).
    """
    try:
        proc = subprocess.run(command, shell=True, stdin=subprocess.DEVNULL, capture_output=True)
    except OSError as err:
        return f"command could not be run ({err})"
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
        return f"command failed (exit status {proc.returncode}: {tail[0]})"
    try:
        # A pipe cannot be rewound to fix the WAV header (sox warns so); libsndfile then takes
        # the length from the data, so the count is right either way.
        info = soundfile.info(io.BytesIO(proc.stdout))
    except Exception as err:
        return f"command output is not audio ({err}); it must write a WAV file to stdout, e.g. 'sox in.flac -t wav - |'"
    return AudioInfo(info.frames, info.samplerate, info.channels)


def probe_recordings(entries: Sequence[Entry], run_commands: bool, num_jobs: int) -> Dict[str, Union[AudioInfo, str]]:
    """Probe every plain path (always) and every command (when ``run_commands``), in threads.

    Threads suffice: soundfile and the commands' processes run outside the GIL.
    """
    def probe(e: Entry) -> Union[AudioInfo, str]:
        return probe_command(e.rest[:-1]) if is_command(e.rest) else probe_file(Path(e.rest))

    todo = [e for e in entries if run_commands or not is_command(e.rest)]
    with ThreadPoolExecutor(max_workers=max(1, num_jobs)) as pool:
        return dict(zip((e.key for e in todo), pool.map(probe, todo)))


def check_audio(path: Path, entries: Sequence[Entry], probed: Dict[str, Union[AudioInfo, str]], sampling_rate: int) -> List[CorpusProblem]:
    """Recordings that cannot be read, are empty, not mono, or not at ``sampling_rate``."""
    problems = []
    for e in entries:
        info = probed.get(e.key)
        if info is None:  # a command not run (reco2dur given)
            continue
        where = at(path, e.line)
        if isinstance(info, str):
            problems.append(CorpusProblem(where, f"recording '{e.key}': {info}; fix the entry or remove the recording"))
        elif info.num_samples == 0:
            problems.append(CorpusProblem(where, f"recording '{e.key}': no samples; re-create the audio or remove the recording"))
        elif info.sampling_rate != sampling_rate:
            problems.append(CorpusProblem(
                where,
                f"recording '{e.key}': sample rate {info.sampling_rate} Hz, expected {sampling_rate}; resample it "
                f"(e.g. a pipe 'sox in.wav -r {sampling_rate} -t wav - |' in wav.scp): the features are {sampling_rate} Hz fbank",
            ))
        elif info.num_channels != 1:
            problems.append(CorpusProblem(
                where,
                f"recording '{e.key}': {info.num_channels} channels; a Kaldi recording has one: pick one with a pipe, "
                f"e.g. 'sox in.wav -t wav - remix 1 |'",
            ))
    return problems


def check_reco2dur_matches_audio(
    path: Path, entries: Sequence[Entry], durations: Dict[str, float], probed: Dict[str, Union[AudioInfo, str]]
) -> List[CorpusProblem]:
    """``reco2dur`` values (``durations``, as parsed) that disagree with the audio (a stale file)."""
    problems = []
    for e in entries:
        info, duration = probed.get(e.key), durations.get(e.key)
        if isinstance(info, AudioInfo) and info.num_samples and duration is not None and abs(duration - info.duration) > END_TOLERANCE:
            problems.append(CorpusProblem(
                at(path, e.line),
                f"recording '{e.key}': reco2dur says {e.rest} s but the audio lasts {info.duration:.3f} s; "
                f"fix it or delete reco2dur (it is then measured)",
            ))
    return problems


def check_segments_in_recordings(path: Path, entries: Sequence[Entry], durations: Dict[str, float], source: str) -> List[CorpusProblem]:
    """Segments that end more than ``END_TOLERANCE`` past the end of their recording."""
    problems = []
    for e in entries:
        rec, _, end_s = e.fields
        end, duration = parse_seconds(end_s), durations.get(rec)
        if end is not None and duration is not None and end != -1 and end > duration + END_TOLERANCE:
            problems.append(CorpusProblem(
                at(path, e.line),
                f"segment '{e.key}' ends at {end_s} s, past the end of recording '{rec}' ({duration:.3f} s, from {source}); "
                f"fix its times or the recording",
            ))
    return problems


# --------------------------------------------------------------------------- the whole directory


@dataclass
class KaldiDir:
    """A data directory's tables as read, and the recordings' durations once checked."""

    path: Path
    tables: Dict[str, List[Entry]] = field(default_factory=dict)  # only the files present
    durations: Dict[str, float] = field(default_factory=dict)

    def file(self, name: str) -> Path:
        return self.path / name

    def ids(self, name: str) -> List[str]:
        return [e.key for e in self.tables.get(name, [])]


def inspect_kaldi_dir(data_dir: Path, sampling_rate: int = SAMPLE_RATE, num_jobs: int = 1) -> Tuple[KaldiDir, List[CorpusProblem]]:
    """Read and check a data directory; return it with every problem found.

    Args:
      data_dir:
        The Kaldi data directory.
      sampling_rate:
        The sample rate every recording must have.
      num_jobs:
        Threads probing audio.
    Returns:
      The tables (and durations, when there are no problems) and the problems.
    """
    data_dir = Path(data_dir)
    kdir = KaldiDir(data_dir)
    if not data_dir.is_dir():
        return kdir, [CorpusProblem(data_dir, f"the Kaldi data directory does not exist (it needs {', '.join(REQUIRED_FILES)})")]
    problems = [
        CorpusProblem(data_dir / name, "required file is missing (Kaldi's validate_data_dir.sh wants it too)")
        for name in REQUIRED_FILES if not (data_dir / name).is_file()
    ]
    for name in REQUIRED_FILES + OPTIONAL_FILES:
        if (data_dir / name).is_file():
            problems += read_and_check_table(kdir, name)
    problems += check_cross_references(kdir)
    if "wav.scp" in kdir.tables:  # also after other faults, so that one run lists them all
        problems += measure_and_check_audio(kdir, sampling_rate, num_jobs)
    return kdir, problems


def read_and_check_table(kdir: KaldiDir, name: str) -> List[CorpusProblem]:
    """Read one table into ``kdir`` and check its own lines (format, order, uniqueness, values)."""
    path = kdir.file(name)
    entries, problems = read_table(path)
    if not entries and not problems:
        problems.append(CorpusProblem(path, "the file is empty; fill it or remove it (if optional)"))
    fmt, lo, hi = FORMATS[name]
    problems += check_field_count(path, entries, fmt, lo, hi)
    problems += check_sorted(path, entries)
    problems += check_unique(path, entries)
    good = well_formed(entries, lo, hi)
    if name == "text":
        problems += check_text_not_empty(path, good)
    elif name == "segments":
        problems += check_segment_times(path, good)
    elif name == "reco2dur":
        problems += check_durations(path, good)
    kdir.tables[name] = entries
    return problems


def check_cross_references(kdir: KaldiDir) -> List[CorpusProblem]:
    """Tables that do not list the same utterances, recordings or speakers.

    ``text`` is the hub: every other utterance list is compared with it, so a missing
    utterance is reported once, on the line that names it.
    """
    t = kdir.tables
    f = kdir.file
    problems: List[CorpusProblem] = []
    if "text" in t and "utt2spk" in t:
        problems += check_ids_in(f("text"), t["text"], f("utt2spk"), kdir.ids("utt2spk"), "utterance")
        problems += check_ids_in(f("utt2spk"), t["utt2spk"], f("text"), kdir.ids("text"), "utterance")
    if "segments" in t:
        segments = well_formed(t["segments"], 4, 4)
        if "text" in t:
            problems += check_ids_in(f("text"), t["text"], f("segments"), kdir.ids("segments"), "utterance")
            problems += check_ids_in(f("segments"), segments, f("text"), kdir.ids("text"), "segment")
        if "wav.scp" in t:
            problems += check_segment_recordings(f("segments"), segments, f("wav.scp"), kdir.ids("wav.scp"))
    elif "text" in t and "wav.scp" in t:
        why = " (without a segments file each utterance is a whole recording, with its id)"
        problems += check_ids_in(f("text"), t["text"], f("wav.scp"), kdir.ids("wav.scp"), "utterance", why)
        problems += check_ids_in(f("wav.scp"), t["wav.scp"], f("text"), kdir.ids("text"), "recording", why)
    if "reco2dur" in t and "wav.scp" in t:
        problems += check_ids_in(f("reco2dur"), t["reco2dur"], f("wav.scp"), kdir.ids("wav.scp"), "recording")
        problems += check_ids_in(f("wav.scp"), t["wav.scp"], f("reco2dur"), kdir.ids("reco2dur"), "recording")
    if "spk2gender" in t and "utt2spk" in t:
        problems += check_speakers_in(f("utt2spk"), well_formed(t["utt2spk"], 2, 2), f("spk2gender"), kdir.ids("spk2gender"))
    if "utt2lang" in t and "text" in t:
        problems += check_ids_in(f("text"), t["text"], f("utt2lang"), kdir.ids("utt2lang"), "utterance")
    return problems


def measure_and_check_audio(kdir: KaldiDir, sampling_rate: int, num_jobs: int) -> List[CorpusProblem]:
    """Probe the audio, check it, fill ``kdir.durations`` and check the segments against them."""
    wav_scp, reco2dur = well_formed(kdir.tables["wav.scp"], 2, None), kdir.tables.get("reco2dur")
    probed = probe_recordings(wav_scp, run_commands=reco2dur is None, num_jobs=num_jobs)
    problems = check_audio(kdir.file("wav.scp"), wav_scp, probed, sampling_rate)
    if reco2dur is not None:
        # Only the values that parsed; the others are reported by check_durations already.
        parsed = {e.key: parse_seconds(e.rest) for e in well_formed(reco2dur, 2, 2)}
        kdir.durations = {key: d for key, d in parsed.items() if d is not None and d > 0}
        problems += check_reco2dur_matches_audio(kdir.file("reco2dur"), reco2dur, kdir.durations, probed)
        source = str(kdir.file("reco2dur"))
    else:
        kdir.durations = {k: info.duration for k, info in probed.items() if isinstance(info, AudioInfo)}
        source = "the audio"
    if "segments" in kdir.tables:
        segments = well_formed(kdir.tables["segments"], 4, 4)
        problems += check_segments_in_recordings(kdir.file("segments"), segments, kdir.durations, source)
    return problems


def raise_problems(where: Path, problems: Sequence[CorpusProblem]) -> None:
    """Raise ``CorpusError`` listing the problems (the first 20, then a count)."""
    if problems:
        shown = "\n  ".join(str(p) for p in problems[:MAX_SHOWN])
        more = f"\n  ... and {len(problems) - MAX_SHOWN} more" if len(problems) > MAX_SHOWN else ""
        raise CorpusError(f"{len(problems)} problem(s) in {where}:\n  {shown}{more}")


def locate_kaldi_dirs(corpus_dir: Path, parts: Sequence[str]) -> None:
    """Stage 0: raise ``CorpusError`` naming each part's missing required Kaldi file."""
    missing = [Path(corpus_dir) / p / name for p in parts for name in REQUIRED_FILES if not (Path(corpus_dir) / p / name).is_file()]
    if missing:
        shown = "\n  ".join(str(m) for m in missing)
        raise CorpusError(
            f"Kaldi data directories incomplete under {corpus_dir}:\n  {shown}\n"
            f"Pass --corpus-dir with one Kaldi data dir per part ({', '.join(parts)}), each holding "
            f"{', '.join(REQUIRED_FILES)} (and segments if the recordings hold several utterances)."
        )


def check_kaldi_data_dir(data_dir: Path, sampling_rate: int = SAMPLE_RATE, num_jobs: int = 1) -> List[CorpusProblem]:
    """Every problem of a Kaldi data directory (empty when it imports cleanly)."""
    return inspect_kaldi_dir(data_dir, sampling_rate, num_jobs)[1]


# --------------------------------------------------------------------------- import


def import_kaldi_data_dir(data_dir: Path, sampling_rate: int = SAMPLE_RATE, num_jobs: int = 1) -> Tuple[RecordingSet, SupervisionSet]:
    """Check a Kaldi data directory and convert it to lhotse manifests.

    Args:
      data_dir:
        Holds ``wav.scp``, ``text``, ``utt2spk`` and optionally ``segments``, ``reco2dur``,
        ``spk2gender``, ``utt2lang`` (formats in the module docstring).
      sampling_rate:
        The sample rate of every recording (checked against the audio).
      num_jobs:
        Threads probing the audio.
    Returns:
      Recordings (one channel each; ``command`` sources for piped entries) and supervisions
      (with text and speaker; without ``segments``, one per recording with its id, start 0
      and the recording's duration), fixed and validated with lhotse's QA. Recordings that
      no segment uses are dropped, as Kaldi's ``fix_data_dir.sh`` does.
    Raises:
      CorpusError: listing every problem, each with its ``<file>:<line>`` and the fix.
    """
    kdir, problems = inspect_kaldi_dir(data_dir, sampling_rate, num_jobs)
    raise_problems(Path(data_dir), problems)
    return build_manifests(kdir, sampling_rate)


def build_manifests(kdir: KaldiDir, sampling_rate: int) -> Tuple[RecordingSet, SupervisionSet]:
    """lhotse's manifests of a checked directory (see :func:`import_kaldi_data_dir`)."""
    from lhotse.kaldi import load_kaldi_data_dir

    with tempfile.TemporaryDirectory(prefix="kaldi-import-") as stage:
        stage_tables(kdir, Path(stage))
        recordings, supervisions, _ = load_kaldi_data_dir(stage, sampling_rate=sampling_rate, use_reco2dur=True)
    recordings = strip_command_sources(recordings)
    missing = [s.id for s in supervisions if not s.text or not s.speaker]
    if missing:  # the checks should make this impossible; never hand on such supervisions
        raise CorpusError(f"{kdir.path}: lhotse made supervisions without text or speaker: {', '.join(missing[:MAX_SHOWN])}")
    # Drops recordings without segments (as Kaldi's fix_data_dir.sh does) and trims segments
    # within END_TOLERANCE of the end; anything worse was reported by the checks.
    recordings, supervisions = fix_manifests(recordings, supervisions)
    validate_recordings_and_supervisions(recordings, supervisions)
    return recordings.to_eager(), supervisions.to_eager()


def stage_tables(kdir: KaldiDir, stage: Path) -> None:
    """Write what lhotse reads: the checked tables, one space between fields, and ``reco2dur``.

    lhotse splits ``text`` lines on a space only when there are segments (an id and one word
    separated by a tab would become one key), and it would re-measure every command; the
    normalized copy leaves it nothing to misread. ``wav.scp`` values are copied verbatim, so
    relative paths keep their meaning (relative to the working directory, not the data dir).
    """
    for name, entries in kdir.tables.items():
        if name == "reco2dur":
            continue
        with open(stage / name, "w", encoding="utf-8") as out:
            for e in entries:
                out.write(f"{e.key} {' '.join(e.fields) if name == 'segments' else e.rest}\n")
    with open(stage / "reco2dur", "w", encoding="utf-8") as out:
        for key in kdir.ids("wav.scp"):
            out.write(f"{key} {kdir.durations[key]!r}\n")


def strip_command_sources(recordings: RecordingSet) -> RecordingSet:
    """Drop the space lhotse keeps before a command's ``|``.

    lhotse's source is the value minus its last character; export appends `` |``, so without
    this a command would gain a space at every import/export round.
    """
    def strip(rec):
        sources = [fastcopy(s, source=s.source.rstrip()) if s.type == "command" else s for s in rec.sources]
        return fastcopy(rec, sources=sources)

    return RecordingSet.from_recordings(strip(r) for r in recordings)


def prepare_kaldi_manifests(
    corpus_dir: Path,
    parts: Sequence[str],
    output_dir: Path,
    num_jobs: int = 2,
    prefix: str = "kaldi",
    sampling_rate: Union[str, int] = SAMPLE_RATE,
) -> Dict[str, Dict[str, Path]]:
    """Check each part's Kaldi data directory, then write its lhotse manifests.

    Args:
      corpus_dir:
        Holds one Kaldi data directory per part: ``corpus_dir/<part>/wav.scp``, ...
      parts:
        Part names (the directories' names).
      output_dir:
        Receives ``<prefix>_{recordings,supervisions}_<part>.jsonl.gz`` (atomically) and the
        done-marker ``.manifests.done``.
      num_jobs:
        Threads probing audio.
      prefix:
        The manifests' name prefix.
      sampling_rate:
        The recordings' sample rate (a string from ``--prepare-opts`` is converted).
    Returns:
      ``{part: {"recordings": path, "supervisions": path}}``.
    Raises:
      CorpusError: the problems of every part at once; nothing is written then.
    """
    try:
        sampling_rate = int(sampling_rate)
    except ValueError:
        raise ValueError(f"sampling_rate must be a whole number of Hz, got {sampling_rate!r}") from None
    num_jobs = int(num_jobs)
    corpus_dir = Path(corpus_dir)
    settings = {"corpus_dir": str(corpus_dir.resolve()), "parts": list(parts), "prefix": prefix, "sampling_rate": sampling_rate,
                # the tables of each part (the audio they name is checked when the stage runs)
                INPUTS_KEY: {p: tree_fingerprint(corpus_dir / p) for p in parts if (corpus_dir / p).is_dir()}}
    paths = {p: manifest_paths(output_dir, prefix, p) for p in parts}
    if is_done(output_dir, "manifests", settings):
        logging.info(f"Manifests already in {output_dir}: skipping")
        return paths
    if not corpus_dir.is_dir():
        raise CorpusError(f"Corpus directory {corpus_dir} does not exist; run stage 0 first")
    # Check every part before writing any, so that one error lists all that is to fix.
    inspected = {p: inspect_kaldi_dir(corpus_dir / p, sampling_rate, num_jobs) for p in parts}
    raise_problems(corpus_dir, [problem for _, problems in inspected.values() for problem in problems])
    for part, (kdir, _) in inspected.items():
        recordings, supervisions = build_manifests(kdir, sampling_rate)
        write_manifests(recordings, supervisions, paths[part])
    mark_done(output_dir, "manifests", settings)
    return paths


# --------------------------------------------------------------------------- export


def check_exportable(recordings: RecordingSet, supervisions: SupervisionSet) -> List[str]:
    """What a Kaldi data directory cannot hold (lhotse would write it wrongly or fail late).

    lhotse writes ``None`` for a missing text or speaker, ignores a recording's transforms
    (speed perturbation) in the command it writes, and splits multi-channel recordings into
    ids of its own; ids with whitespace would break every table.
    """
    problems = []
    for r in recordings:
        if any(c.isspace() for c in r.id):
            problems.append(f"recording '{r.id}': whitespace in the id")
        if len(r.sources) != 1 or r.num_channels != 1:
            problems.append(f"recording '{r.id}': {len(r.sources)} source(s), {r.num_channels} channel(s); Kaldi recordings have one of each")
        elif r.sources[0].type not in ("file", "command"):
            problems.append(f"recording '{r.id}': '{r.sources[0].type}' audio source; Kaldi reads files and commands only")
        if r.transforms:
            problems.append(f"recording '{r.id}': has transforms (e.g. speed perturbation), which wav.scp cannot express; export the original recordings")
    for s in supervisions:
        if not s.text or not s.text.strip() or "\n" in s.text:
            problems.append(f"supervision '{s.id}': no text (or a line break in it)")
        if not s.speaker or any(c.isspace() for c in s.speaker):
            problems.append(f"supervision '{s.id}': no speaker, or whitespace in it")
        if any(c.isspace() for c in s.id):
            problems.append(f"supervision '{s.id}': whitespace in the id")
    return problems


def kaldi_readable(recordings: RecordingSet) -> RecordingSet:
    """Make every source something Kaldi reads: 16-bit PCM ``.wav`` files stay paths, other
    files become ``sox <path> -t wav -b 16 - |`` commands (16-bit PCM is what Kaldi's WAV
    reader is made for; deeper audio is reduced, with sox's dither).

    Kaldi reads only WAV itself. lhotse pipes other files through ``ffmpeg ... -map_channel``,
    but ffmpeg is not part of this project's set-up and ``-map_channel`` is gone from ffmpeg 7;
    sox is (and reads FLAC and NIST SPHERE, e.g. TIMIT's ``.WAV``).
    """
    def convert(rec):
        src = rec.sources[0]
        if src.type != "file":
            return rec
        try:
            info = soundfile.info(src.source)
        except Exception as err:  # moved or deleted audio: keep the path, so Kaldi names it too
            logging.warning(f"recording '{rec.id}': {src.source} is unreadable ({err}); exported as it is")
            return rec
        if src.source.endswith(".wav") and info.format == "WAV" and info.subtype == "PCM_16":
            return rec
        command = f"sox {shlex.quote(src.source)} -t wav -b 16 -"
        return fastcopy(rec, sources=[fastcopy(src, type="command", source=command)])

    return RecordingSet.from_recordings(convert(r) for r in recordings)


def needs_segments(recordings: RecordingSet, supervisions: SupervisionSet) -> bool:
    """False when each recording is exactly one utterance with its id: Kaldi then has no
    ``segments`` file (and an import gives back the same supervisions)."""
    by_recording = defaultdict(list)
    for s in supervisions:
        by_recording[s.recording_id].append(s)
    if set(by_recording) != set(recordings.ids):
        return True
    for r in recordings:
        (s, *others) = by_recording[r.id]
        if others or s.id != r.id or s.start != 0 or abs(s.duration - r.duration) > 0.5 / r.sampling_rate:
            return True
    return False


def write_kaldi_extras(out_dir: Path, supervisions: SupervisionSet) -> None:
    """``spk2utt`` (lhotse writes none) and ``spk2gender`` (lhotse writes ``utt2gender``,
    which Kaldi does not use and lhotse's own import does not read)."""
    spk2utt: Dict[str, List[str]] = defaultdict(list)
    genders: Dict[str, set] = defaultdict(set)
    for s in supervisions:
        spk2utt[s.speaker].append(s.id)
        genders[s.speaker].add(s.gender)
    with open(out_dir / "spk2utt", "w", encoding="utf-8") as out:
        for spk in sorted(spk2utt):
            out.write(f"{spk} {' '.join(sorted(spk2utt[spk]))}\n")
    if all(len(g) == 1 and None not in g for g in genders.values()):
        with open(out_dir / "spk2gender", "w", encoding="utf-8") as out:
            for spk in sorted(genders):
                out.write(f"{spk} {next(iter(genders[spk]))}\n")
    # Kaldi's validate_data_dir.sh also wants the utterances in the same order when sorted by
    # speaker, which holds when utterance ids start with their speaker id; the ids are kept as
    # they are (renaming them would break the round trip), so only say so.
    by_speaker = [u for spk in sorted(spk2utt) for u in sorted(spk2utt[spk])]
    if by_speaker != sorted(by_speaker):
        logging.warning(f"{out_dir}: utterance ids do not start with their speaker ids; some Kaldi scripts (validate_data_dir.sh) will complain")


def replace_dir(new: Path, target: Path) -> None:
    """Put the finished directory ``new`` at ``target``, replacing an earlier export.

    Renames only, so ``target`` is either absent or complete. A directory that is neither
    empty nor a Kaldi data directory is never replaced (it is probably the wrong path).
    """
    if target.exists():
        if not target.is_dir() or (any(target.iterdir()) and not (target / "wav.scp").is_file()):
            raise ValueError(f"{target} exists and is not a Kaldi data directory: not replacing it; remove it or choose another directory")
        old = new.with_name(new.name + ".old")
        os.rename(target, old)
        try:
            os.rename(new, target)
        except OSError:
            os.rename(old, target)  # put the earlier export back rather than lose it
            raise
        shutil.rmtree(old)
    else:
        os.rename(new, target)


def export_kaldi_data_dir(recordings: RecordingSet, supervisions: SupervisionSet, out_dir: Path) -> None:
    """Write recordings and supervisions as a Kaldi data directory, with lhotse's ``export_to_kaldi``.

    Writes ``wav.scp``, ``text``, ``utt2spk``, ``spk2utt``, ``reco2dur``, ``utt2dur``,
    ``segments`` (unless each recording is one whole utterance with its id), and
    ``utt2lang``/``utt2gender``/``spk2gender`` when every supervision has them; every table
    sorted by id in byte order. The directory is written beside ``out_dir`` and renamed into
    place, so a crash never leaves a half-written one there.

    Args:
      recordings:
        Single-channel recordings with one file or command source each, no transforms.
      supervisions:
        Supervisions of these recordings, each with text and speaker.
      out_dir:
        The data directory to (re)create.
    Raises:
      ValueError: the manifests hold something Kaldi cannot (each listed).
    """
    from lhotse.kaldi import export_to_kaldi

    out_dir = Path(out_dir)
    problems = check_exportable(recordings, supervisions)
    if problems:
        more = f"\n  ... and {len(problems) - MAX_SHOWN} more" if len(problems) > MAX_SHOWN else ""
        raise ValueError(f"{len(problems)} problem(s) exporting to {out_dir}:\n  " + "\n  ".join(problems[:MAX_SHOWN]) + more)
    recordings = kaldi_readable(recordings)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        # Python sorts str by code point, the byte order of UTF-8: lhotse's sorted() is C order.
        export_to_kaldi(recordings, supervisions, tmp)
        if not needs_segments(recordings, supervisions):
            (tmp / "segments").unlink()
        write_kaldi_extras(tmp, supervisions)
        replace_dir(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    logging.info(f"Wrote a Kaldi data directory of {len(supervisions)} utterances to {out_dir}")


def export_manifests(manifest_dir: Path, prefix: str, part: str, out_dir: Path) -> None:
    """Export the manifests ``<prefix>_{recordings,supervisions}_<part>.jsonl.gz`` of
    ``manifest_dir`` as the Kaldi data directory ``out_dir``."""
    paths = manifest_paths(manifest_dir, prefix, part)
    for path in paths.values():
        if not path.is_file():
            raise FileNotFoundError(f"Manifest {path} not found: run the manifest stage (stage 1) first, or check --prefix/--part")
    export_kaldi_data_dir(RecordingSet.from_file(paths["recordings"]), SupervisionSet.from_file(paths["supervisions"]), out_dir)
