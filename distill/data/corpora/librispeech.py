"""LibriSpeech: locate (or download) the corpus, check it, and make lhotse manifests.

The manifests come from lhotse's own ``prepare_librispeech``; the demo corpus goes through
exactly the same code. lhotse itself stops with a bare ``ValueError`` on an empty transcript
line and lists unreadable audio in a traceback, so the corpus is checked first and every
fault is reported with the file (and line) to fix.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence

import soundfile

from distill.data.audio_integrity import check_audio

from distill.data.corpora import Corpus, register
from distill.data.errors import CorpusError, CorpusProblem
from distill.data.text_policy import TEXT_OOV_ACTIONS, apply_text_policy, policy_of
from distill.data.manifests import manifest_paths, write_manifests
from distill.utils.audio import SAMPLE_RATE
from distill.utils.done_marker import INPUTS_KEY, is_done, mark_done, tree_fingerprint



def locate_librispeech(dl_dir: Path, parts: Sequence[str], download: bool = True) -> Path:
    """Find LibriSpeech under ``dl_dir`` (``dl_dir/LibriSpeech/<part>``), downloading if allowed.

    Args:
      dl_dir:
        The download directory.
      parts:
        The parts needed, e.g. ``["train-clean-100", "dev-clean", "test-clean"]``.
      download:
        Try lhotse's ``download_librispeech`` for missing parts.
    Returns:
      The corpus directory, ``dl_dir/LibriSpeech``.
    Raises:
      CorpusError: parts are missing and cannot be downloaded; the message names both
        ways out (place the corpus there, or synthesize the demo corpus).
    """
    corpus_dir = Path(dl_dir) / "LibriSpeech"
    missing = [p for p in parts if not (corpus_dir / p).is_dir()]
    if not missing:
        return corpus_dir
    reason = "downloading was disabled"
    if download:
        try:
            from lhotse.recipes import download_librispeech

            logging.info(f"Downloading LibriSpeech parts {missing} into {dl_dir}")
            download_librispeech(target_dir=dl_dir, dataset_parts=missing)
            missing = [p for p in parts if not (corpus_dir / p).is_dir()]
            if not missing:
                return corpus_dir
            reason = "the download finished without them"
        except Exception as err:  # network errors come in many types
            reason = f"the download failed ({type(err).__name__}: {err})"
    raise CorpusError(
        f"LibriSpeech parts {', '.join(missing)} are not under {corpus_dir} and {reason}.\n"
        f"Either put the corpus there ({corpus_dir}/<part>/<spk>/<chapter>/...), "
        f"or run the recipe with --demo true to synthesize the offline demo corpus instead."
    )


def check_librispeech_part(part_dir: Path) -> List[CorpusProblem]:
    """Check one part directory: transcripts well formed, audio present, readable, 16 kHz.

    Args:
      part_dir:
        e.g. ``.../LibriSpeech/dev-clean``.
    Returns:
      Every problem found (empty when the part is fine).
    """
    problems: List[CorpusProblem] = []
    if not part_dir.is_dir():
        return [CorpusProblem(part_dir, "the part directory does not exist")]
    trans_files = sorted(part_dir.rglob("*.trans.txt"))
    if not trans_files:
        return [CorpusProblem(part_dir, "no *.trans.txt transcript files below it (empty or wrong directory?)")]
    for trans in trans_files:
        raw = trans.read_bytes()
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as err:
            number = raw[: err.start].count(b"\n") + 1
            problems.append(CorpusProblem(Path(f"{trans}:{number}"), f"not UTF-8 (byte 0x{raw[err.start]:02x}); convert "
                                          f"the file, e.g. iconv -f latin1 -t utf-8 {trans.name}"))
            continue
        with open(trans, encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                fields = line.strip().split(maxsplit=1)
                where = Path(f"{trans}:{number}")
                if len(fields) < 2:
                    problems.append(CorpusProblem(where, "empty transcript line (an utterance id needs its text; delete the line or add the text)"))
                    continue
                utt_id = fields[0]
                audio = trans.parent / f"{utt_id}.flac"
                problems.extend(check_audio(audio))
    return problems


def check_corpus(corpus_dir: Path, parts: Sequence[str]) -> None:
    """Raise ``CorpusError`` listing every problem in the given parts of the corpus."""
    if not corpus_dir.is_dir():
        raise CorpusError(f"Corpus directory {corpus_dir} does not exist; run stage 0 first")
    if not any(corpus_dir.iterdir()):
        raise CorpusError(f"Corpus directory {corpus_dir} is empty; run stage 0 first")
    problems = [p for part in parts for p in check_librispeech_part(corpus_dir / part)]
    if problems:
        shown = "\n  ".join(str(p) for p in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise CorpusError(f"{len(problems)} problem(s) in {corpus_dir}:\n  {shown}{more}")


def prepare_librispeech_manifests(
    corpus_dir: Path, parts: Sequence[str], output_dir: Path, num_jobs: int = 2,
    text_norm: str = "librispeech", text_oov: str = "refuse",
) -> Dict[str, Dict[str, Path]]:
    """Check the corpus, then write lhotse manifests of each part with lhotse's preparation.

    Args:
      corpus_dir:
        ``.../LibriSpeech``.
      parts:
        Part names (lhotse's LibriSpeech names).
      output_dir:
        Receives ``librispeech_{recordings,supervisions}_<part>.jsonl.gz``.
      num_jobs:
        Threads for lhotse's preparation.
      text_norm:
        The transcripts' normalization (:data:`distill.data.text_policy.TEXT_POLICIES`;
        ``none``: unchecked).
      text_oov:
        What to do with words outside it: ``refuse``, ``map`` or ``drop``
        (:func:`distill.data.text_policy.apply_text_policy`).
    Returns:
      ``{part: {"recordings": path, "supervisions": path}}``.
    """
    from lhotse.recipes import prepare_librispeech

    policy = policy_of(text_norm)
    if text_oov not in TEXT_OOV_ACTIONS:
        raise ValueError(f"text_oov must be one of {', '.join(TEXT_OOV_ACTIONS)}, got {text_oov!r}")

    settings = {"corpus_dir": str(Path(corpus_dir).resolve()), "parts": list(parts), "text_norm": text_norm,
                "text_oov": text_oov,
                INPUTS_KEY: {p: tree_fingerprint(Path(corpus_dir) / p) for p in parts if (Path(corpus_dir) / p).is_dir()}}
    paths = {p: manifest_paths(output_dir, "librispeech", p) for p in parts}
    if is_done(output_dir, "manifests", settings):
        logging.info(f"Manifests already in {output_dir}: skipping")
        return paths
    check_corpus(Path(corpus_dir), parts)
    # output_dir=None: lhotse would write non-atomically; we write the files ourselves.
    manifests = prepare_librispeech(corpus_dir, dataset_parts=list(parts), output_dir=None, num_jobs=num_jobs)
    prepared = {}
    for part in parts:  # every part checked before any is written
        recordings, supervisions = manifests[part]["recordings"], manifests[part]["supervisions"]
        if policy is not None:
            supervisions = apply_text_policy(supervisions, policy, text_oov,
                                             lambda sid, p=part: transcript_line(Path(corpus_dir) / p, sid), part)
            kept = {s.recording_id for s in supervisions}
            recordings = recordings.filter(lambda r: r.id in kept)
        prepared[part] = (recordings, supervisions)
    for part, (recordings, supervisions) in prepared.items():
        write_manifests(recordings, supervisions, paths[part])
    mark_done(output_dir, "manifests", settings)
    return paths


def transcript_line(part_dir: Path, utt_id: str) -> str:
    """``file:line`` of utterance ``utt_id``'s transcript (``spk-chapter-utt``) in a part."""
    speaker, chapter = utt_id.split("-")[:2]
    trans = part_dir / speaker / chapter / f"{speaker}-{chapter}.trans.txt"
    if trans.is_file():
        for number, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), start=1):
            if line.split(maxsplit=1)[:1] == [utt_id]:
                return f"{trans}:{number}"
    return f"{trans} ({utt_id})"


# ---------------------------------------------------------------------------------------
# Stage 0 (local/get_corpus.py --corpus librispeech)


def add_stage0_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--demo-train-minutes", type=float, default=None,
                        help="override the demo corpus's training audio (minutes)")
    parser.add_argument("--demo-heldout-minutes", type=float, default=None,
                        help="override the audio of each of the demo corpus's held-out parts (minutes; "
                             "default 8): larger parts measure smaller differences, the training part unchanged")
    parser.add_argument("--demo-natural-share", type=float, default=None,
                        help="share of the demo corpus's training sentences read by natural-sounding "
                             "voices (default: an even deal over the speakers)")
    parser.add_argument("--demo-extra-train-voices", nargs="+", default=None, metavar="ENGINE:NAME",
                        help="more training voices for the demo corpus, e.g. piper:joe (default: none)")


def check_stage0_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    from distill.synth.librispeech_demo import ALL_PARTS, DemoCorpusConfig

    if args.corpus_dir.name != "LibriSpeech":
        parser.error(f"--corpus-dir {args.corpus_dir}: LibriSpeech's layout (and lhotse's download) "
                     "puts the corpus in a folder named LibriSpeech")
    if args.demo_extra_train_voices:
        try:  # a bad or held-out voice: a usage error, before anything is synthesized
            DemoCorpusConfig(extra_train_voices=tuple(args.demo_extra_train_voices))
        except ValueError as err:
            parser.error(f"--demo-extra-train-voices: {err}")
    for option, minutes in (("--demo-train-minutes", args.demo_train_minutes), ("--demo-heldout-minutes", args.demo_heldout_minutes)):
        if minutes is not None and minutes <= 0:
            parser.error(f"{option} {minutes}: give a positive number of minutes")
    if args.demo and not set(args.parts) <= set(ALL_PARTS):
        parser.error(f"--parts {' '.join(args.parts)}: the demo corpus has the parts {' '.join(ALL_PARTS)}")


def get_librispeech(args: argparse.Namespace) -> Path:
    """Stage 0: synthesize the demo corpus, or locate (and download) LibriSpeech. A download
    (lhotse's) goes into the folder above --corpus-dir, which must be named LibriSpeech."""
    from distill.synth.librispeech_demo import CONDITIONS, DemoCorpusConfig, generate_demo_corpus

    dl_dir = args.corpus_dir.parent
    if args.demo:
        config = DemoCorpusConfig.tiny(args.seed) if args.demo_size == "tiny" else DemoCorpusConfig(seed=args.seed)
        if args.demo_train_minutes is not None:
            config.train_minutes = args.demo_train_minutes
        if args.demo_heldout_minutes is not None:
            config.dev_minutes = config.test_minutes = args.demo_heldout_minutes
        if args.demo_natural_share is not None:
            config.natural_share = args.demo_natural_share
        if args.demo_extra_train_voices:
            config = dataclasses.replace(config, extra_train_voices=tuple(args.demo_extra_train_voices))
        # The held-out conditions the recipe asks for (its --dev-parts/--test-parts).
        conditions = tuple(c for c, parts in CONDITIONS.items() if set(parts) & set(args.parts))
        config = dataclasses.replace(config, conditions=conditions or config.conditions)
        return generate_demo_corpus(dl_dir, config, num_jobs=args.num_jobs)
    return locate_librispeech(dl_dir, args.parts, download=not args.no_download)


register(Corpus(
    name="librispeech", prepare=prepare_librispeech_manifests, get=get_librispeech,
    corpus_dir_help="the LibriSpeech folder (<dl-dir>/LibriSpeech)",
    demo_help="default: about 7.5 h of training audio; tiny: about 3 min",
    add_arguments=add_stage0_arguments, check_arguments=check_stage0_arguments,
))
