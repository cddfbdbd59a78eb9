"""An offline demo corpus in Kaldi's data-directory format, for the worked example of adapting
a recipe to a new corpus (docs/new_corpus.md, egs/kaldi_demo/ASR).

It is the LibriSpeech demo corpus's speech (same sentences, voices and synthesis, see
:mod:`distill.synth.librispeech_demo`) laid out the way a Kaldi user's corpus usually is: long
recordings (one per speaker and chapter, the utterances joined with short pauses) cut into
utterances by a ``segments`` file, and ``wav.scp`` entries of both kinds, plain paths and
piped commands. Written::

    <out_dir>/kaldi_demo/audio/<spk>-<chapter>.flac      one recording per speaker/chapter
    <out_dir>/kaldi_demo/data/<part>/wav.scp             <rec> <path>  or  <rec> sox <path> -t wav - |
    <out_dir>/kaldi_demo/data/<part>/segments            <utt> <rec> <start> <end>
    <out_dir>/kaldi_demo/data/<part>/text                <utt> <WORDS>
    <out_dir>/kaldi_demo/data/<part>/utt2spk, spk2utt

with parts ``train``, ``dev`` and ``test`` (the LibriSpeech demo's training part and its "other"
condition: dev and test voices never heard in training), all
files sorted by their first field in byte order, as Kaldi requires. Every other recording's
``wav.scp`` entry is a ``sox ... |`` pipe, so both kinds are exercised.
"""
from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import soundfile

from distill.synth.librispeech_demo import (
    DEV_OTHER,
    TEST_OTHER,
    TOOLS,
    TRAIN_PART,
    DemoCorpusConfig,
    Utterance,
    plan_corpus,
    synthesize,
    voice_plan,
)
from distill.synth.render import check_tools, run_checked, run_parallel
from distill.utils.audio import SAMPLE_RATE
from distill.utils.done_marker import is_done, mark_done
from distill.utils.io import atomic_path, atomic_write_text

CORPUS_NAME = "kaldi_demo"
KALDI_PARTS = {TRAIN_PART: "train", DEV_OTHER: "dev", TEST_OTHER: "test"}
PAUSE_SECONDS = 0.3  # silence between the utterances of a recording


def small_config(seed: int = 13) -> DemoCorpusConfig:
    """The worked example's default size: about 20 minutes of training audio."""
    return DemoCorpusConfig(seed=seed, train_minutes=20.0, dev_minutes=3.0, test_minutes=3.0, conditions=("other",))


def tiny_config(seed: int = 13) -> DemoCorpusConfig:
    """About two minutes, for tests and smoke runs."""
    return dataclasses.replace(DemoCorpusConfig.tiny(seed), conditions=("other",))


def recording_id(utt: Utterance) -> str:
    return f"{utt.speaker.id}-{utt.chapter}"


def join_recording(pieces: List[Path], out: Path) -> List[Tuple[float, float]]:
    """Concatenate utterance files into one FLAC (with pauses); return each piece's (start, end)."""
    times, start = [], 0.0
    for piece in pieces:
        duration = soundfile.info(str(piece)).duration
        times.append((round(start, 3), round(start + duration, 3)))
        start += duration + PAUSE_SECONDS
    with tempfile.TemporaryDirectory(prefix="kaldi-demo-") as tmp:
        pause = Path(tmp) / "pause.flac"
        run_checked(["sox", "-n", "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(pause), "trim", "0", str(PAUSE_SECONDS)], out.name)
        inputs: List[str] = []
        for i, piece in enumerate(pieces):
            inputs += ([str(pause)] if i else []) + [str(piece)]
        with atomic_path(out) as tmp_out:
            run_checked(["sox", *inputs, "-t", "flac", str(tmp_out)], out.name)
    return times


def wav_scp_entry(rec_id: str, audio: Path, index: int) -> str:
    """A plain path for even recordings, a sox pipe for odd ones (Kaldi allows both)."""
    if index % 2 == 0:
        return f"{rec_id} {audio}"
    return f"{rec_id} sox {audio} -t wav - |"


def write_data_dir(part_dir: Path, entries: Dict[str, List[str]]) -> None:
    """Write each Kaldi file of a part, its lines sorted in byte order (``LC_ALL=C sort``)."""
    for name, lines in entries.items():
        ordered = sorted(lines, key=lambda line: line.split(maxsplit=1)[0].encode())
        atomic_write_text(part_dir / name, "".join(line + "\n" for line in ordered))


def generate_kaldi_demo(out_dir: Path, config: Optional[DemoCorpusConfig] = None, num_jobs: int = 2) -> Path:
    """Synthesize the Kaldi-format demo corpus under ``out_dir/kaldi_demo``; return ``.../data``.

    Args:
      out_dir:
        The download directory; the corpus goes to ``out_dir/kaldi_demo``.
      config:
        Sizes and seed (default :func:`small_config`; :func:`tiny_config` for tests); its
        conditions must be ``("other",)``: the Kaldi layout has one dev and one test part.
      num_jobs:
        Utterances synthesized in parallel.
    Returns:
      The directory holding the Kaldi data dirs ``train``, ``dev`` and ``test``. A completed
      corpus with the same settings is not made again.
    """
    config = config or small_config()
    if config.conditions != ("other",):
        raise ValueError(f"The Kaldi demo corpus has one held-out condition, conditions=('other',); got {config.conditions}")
    root = Path(out_dir) / CORPUS_NAME
    data_dir = root / "data"
    # The generator name predates the move to distill/synth: kept, so that corpora made before it stay valid.
    settings = {"generator": "distill.data.kaldi_demo", **asdict(config), "voices": voice_plan(config), "pause": PAUSE_SECONDS}
    if is_done(root, CORPUS_NAME, settings):
        logging.info(f"Kaldi demo corpus already complete in {root}: skipping")
        return data_dir
    check_tools(TOOLS, "Kaldi demo corpus")
    utterances = plan_corpus(config)
    scratch = root / "utterances"  # the synthesized utterances, joined into recordings below
    logging.info(f"Synthesizing {len(utterances)} utterances for the Kaldi-format demo corpus in {root}")
    run_parallel(lambda u: synthesize(u, scratch, config.seed), utterances, num_jobs)

    by_recording: Dict[str, List[Utterance]] = defaultdict(list)
    for utt in utterances:
        by_recording[recording_id(utt)].append(utt)
    entries: Dict[str, Dict[str, List[str]]] = {p: defaultdict(list) for p in KALDI_PARTS.values()}
    for index, (rec_id, utts) in enumerate(sorted(by_recording.items())):
        part = KALDI_PARTS[utts[0].speaker.part]
        audio = (root / "audio" / f"{rec_id}.flac").resolve()
        times = join_recording([u.flac_path(scratch) for u in utts], audio)
        entries[part]["wav.scp"].append(wav_scp_entry(rec_id, audio, index))
        for utt, (start, end) in zip(utts, times):
            entries[part]["segments"].append(f"{utt.id} {rec_id} {start:.3f} {end:.3f}")
            entries[part]["text"].append(f"{utt.id} {utt.transcript}")
            entries[part]["utt2spk"].append(f"{utt.id} {utt.speaker.id}")
    for part, files in entries.items():
        spk2utt: Dict[str, List[str]] = defaultdict(list)
        for line in files["utt2spk"]:
            utt_id, spk = line.split()
            spk2utt[spk].append(utt_id)
        files["spk2utt"] = [f"{spk} {' '.join(sorted(u))}" for spk, u in spk2utt.items()]
        write_data_dir(data_dir / part, files)
        logging.info(f"  {part}: {len(files['text'])} utterances in {len(files['wav.scp'])} recordings")
    mark_done(root, CORPUS_NAME, settings)
    shutil.rmtree(scratch)  # the recordings hold the audio now; kept until here so a rerun resumes
    return data_dir
