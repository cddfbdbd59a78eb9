"""TIMIT: locate the corpus, check it, and make lhotse manifests whose text is the phone sequence.

TIMIT is licensed (LDC93S1): it is never downloaded. The manifests come from lhotse's own
``prepare_timit``, which reads ``<corpus_dir>/data/{TRAIN,TEST}/<DR>/<SPK>/<UTT>.WAV`` with
the ``.PHN``, ``.WRD`` and ``.TXT`` files beside each, splits TEST into lhotse's DEV and TEST
speaker lists (the usual 50-speaker dev set and 24-speaker core test set), and folds the 61
phones of ``.PHN`` to 48 or 39 (``q`` is dropped). lhotse keeps the phones as an alignment
and the sentence as text; a phone recognizer is trained on the phones, so each supervision's
text becomes its phone sequence, with repeated ``sil`` merged (a closure followed by a pause
folds to ``sil sil``).

Two conventions of Kaldi's TIMIT recipe are kept: the dialect sentences (SA1, SA2), read
by every speaker, are dropped; and 39 phones is the scoring default.

lhotse silently skips a WAV whose annotation files are missing; the corpus is checked first
and every missing or unreadable file is reported by name.
"""
from __future__ import annotations

import argparse

import logging
from pathlib import Path
from typing import Dict, List, Sequence

from lhotse import RecordingSet, SupervisionSet

from distill.data.errors import CorpusError
from distill.data.audio_integrity import check_audio
from distill.data.corpora import Corpus, register
from distill.data.errors import CorpusProblem
from distill.data.manifests import manifest_paths
from distill.data.manifests import write_manifests
from distill.utils.done_marker import INPUTS_KEY, is_done, mark_done, tree_fingerprint
from distill.utils.io import atomic_write_text

PARTS = ("TRAIN", "DEV", "TEST")
PHONE_SET_SIZES = (60, 48, 39)
ANNOTATION_SUFFIXES = (".PHN", ".WRD", ".TXT")
SILENCE = "sil"


def locate_timit(corpus_dir: Path) -> Path:
    """Check that TIMIT is where the recipe expects it; it is never downloaded.

    Args:
      corpus_dir:
        The directory holding ``data/TRAIN`` and ``data/TEST`` (lhotse's layout).
    Returns:
      ``corpus_dir``.
    Raises:
      CorpusError: naming where the corpus must go, and the demo option.
    """
    corpus_dir = Path(corpus_dir)
    missing = [d for d in ("TRAIN", "TEST") if not (corpus_dir / "data" / d).is_dir()]
    if not missing:
        return corpus_dir
    hint = ""
    if all((corpus_dir / d).is_dir() for d in missing):
        hint = (f"\nIt has {', '.join(missing)} directly: lhotse expects them one level down, e.g. "
                f"mkdir {corpus_dir}/data && mv {corpus_dir}/TRAIN {corpus_dir}/TEST {corpus_dir}/data/")
    raise CorpusError(
        f"TIMIT not found: {', '.join(str(corpus_dir / 'data' / d) for d in missing)} missing.\n"
        f"TIMIT is licensed by the LDC (LDC93S1) and is never downloaded: put your copy so that "
        f"{corpus_dir}/data/TRAIN/DR1/<SPEAKER>/<UTT>.WAV (with .PHN, .WRD, .TXT beside it) exists, "
        f"pass its location with --corpus-dir, or run with --demo true for the synthesized "
        f"TIMIT-layout demo corpus.{hint}"
    )


def check_timit(corpus_dir: Path) -> None:
    """Raise ``CorpusError`` listing every WAV without its annotations, and unreadable audio.

    Args:
      corpus_dir:
        The TIMIT directory (with ``data/TRAIN`` and ``data/TEST``).
    """
    locate_timit(corpus_dir)
    problems: List[CorpusProblem] = []
    for part in ("TRAIN", "TEST"):
        wavs = sorted((Path(corpus_dir) / "data" / part).glob("*/*/*.WAV"))
        if not wavs:
            problems.append(CorpusProblem(Path(corpus_dir) / "data" / part, "no <DR>/<SPEAKER>/<UTT>.WAV files below it"))
        for wav in wavs:
            for suffix in ANNOTATION_SUFFIXES:
                if not wav.with_suffix(suffix).is_file():
                    problems.append(CorpusProblem(wav.with_suffix(suffix), f"missing: {wav.name} has no {suffix} annotation"))
            problems.extend(check_audio(wav))
    if problems:
        shown = "\n  ".join(str(p) for p in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise CorpusError(f"{len(problems)} problem(s) in {corpus_dir}:\n  {shown}{more}")


def phone_inventory(num_phones: int) -> List[str]:
    """The phone set of lhotse's folding: TIMIT's own 61 symbols for 60 (lhotse's name for the
    unfolded set), else the 48 or 39 folded phones (``q`` folds to nothing)."""
    from lhotse.recipes.timit import get_phonemes

    folding = get_phonemes(48)  # its keys are TIMIT's symbols (plus lhotse's own "sil")
    if num_phones == 60:
        return sorted(set(folding) - {SILENCE})
    return sorted(set(get_phonemes(num_phones).values()) - {""})


def phone_text(phones: Sequence[str]) -> str:
    """The phone sequence as a transcript: folded-away phones ('') dropped, repeated sil merged."""
    out: List[str] = []
    for phone in phones:
        if not phone or (phone == SILENCE and out and out[-1] == SILENCE):
            continue
        out.append(phone)
    return " ".join(out)


def with_phone_text(supervisions: SupervisionSet) -> SupervisionSet:
    """Supervisions whose text is their (folded) phone alignment; SA sentences dropped."""
    segments = []
    for sup in supervisions:
        if sup.id.split("-")[-1].upper().startswith("SA"):
            continue
        phones = [item.symbol for item in (sup.alignment or {}).get("phone", [])]
        segments.append(sup.transform_text(lambda _: phone_text(phones)))
    return SupervisionSet.from_segments(segments)


def prepare_timit_manifests(
    corpus_dir: Path, parts: Sequence[str], output_dir: Path, num_jobs: int = 2, num_phones: int = 39
) -> Dict[str, Dict[str, Path]]:
    """Check the corpus, then write phone-level lhotse manifests of TRAIN, DEV and TEST.

    Args:
      corpus_dir:
        The TIMIT directory (with ``data/TRAIN``, ``data/TEST``).
      parts:
        A subset of ``TRAIN DEV TEST``.
      output_dir:
        Receives ``timit_{recordings,supervisions}_<part>.jsonl.gz``.
      num_jobs:
        Processes for lhotse's preparation.
      num_phones:
        The phone set: 60 (TIMIT's own symbols, unfolded), 48 (the usual training set) or
        39 (Lee and Hon's folding, the usual scoring set).
    Returns:
      ``{part: {"recordings": path, "supervisions": path}}``. The phone set is written to
      ``timit_phones.txt`` beside them, for the phone lang dir (stage 3): its tokens are the
      whole set, also phones that the training part happens not to contain.
    """
    from lhotse.recipes import prepare_timit

    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise CorpusError(f"Unknown TIMIT parts {unknown}: the parts are {' '.join(PARTS)}")
    num_phones = int(num_phones)
    if num_phones not in PHONE_SET_SIZES:
        raise ValueError(f"num_phones must be one of {PHONE_SET_SIZES}, got {num_phones}")
    settings = {"corpus_dir": str(Path(corpus_dir).resolve()), "parts": list(parts), "num_phones": num_phones,
                INPUTS_KEY: tree_fingerprint(Path(corpus_dir)) if Path(corpus_dir).is_dir() else None}
    paths = {p: manifest_paths(output_dir, "timit", p) for p in parts}
    if is_done(output_dir, "manifests", settings):
        logging.info(f"Manifests already in {output_dir}: skipping")
        return paths
    check_timit(Path(corpus_dir))
    # output_dir=None: lhotse would write non-atomically; we write the files ourselves.
    manifests = prepare_timit(corpus_dir, output_dir=None, num_phones=num_phones, num_jobs=num_jobs)
    for part in parts:
        recordings: RecordingSet = manifests[part]["recordings"]
        supervisions = with_phone_text(manifests[part]["supervisions"])
        if len(supervisions) == 0:
            raise CorpusError(f"TIMIT part {part} has no utterances in {corpus_dir} (its speakers: lhotse's lists)")
        write_manifests(recordings, supervisions, paths[part])
    atomic_write_text(Path(output_dir) / "timit_phones.txt", "".join(f"{p}\n" for p in phone_inventory(num_phones)))
    mark_done(output_dir, "manifests", settings)
    return paths


# ---------------------------------------------------------------------------------------
# Stage 0 (local/get_corpus.py --corpus timit)


def check_stage0_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.demo and args.corpus_dir.name != "TIMIT":
        parser.error(f"--corpus-dir {args.corpus_dir}: the demo corpus is written to a folder named TIMIT")


def get_timit(args: argparse.Namespace) -> Path:
    """Stage 0: synthesize the TIMIT-layout demo corpus, or check that TIMIT is at
    --corpus-dir (it is licensed and never downloaded)."""
    from distill.synth.timit_demo import TimitDemoConfig, generate_timit_demo

    if args.demo:
        config = TimitDemoConfig.tiny(args.seed) if args.demo_size == "tiny" else TimitDemoConfig(seed=args.seed)
        return generate_timit_demo(args.corpus_dir.parent, config, num_jobs=args.num_jobs)
    return locate_timit(args.corpus_dir)


register(Corpus(
    name="timit", prepare=prepare_timit_manifests, get=get_timit,
    corpus_dir_help="the TIMIT folder (holding data/TRAIN, data/TEST); TIMIT is never downloaded",
    demo_help="default: about 1 h of training audio; tiny: about 2 min",
    check_arguments=check_stage0_arguments,
))
