"""80-dim log-mel filterbank features with kaldifeat (through lhotse), stored with lilcom.

Training, decoding and the transcribe command all make features through
:func:`make_extractor`, so they see exactly the same front end.
"""
from __future__ import annotations

import logging
import re
import time
import uuid
from functools import partial
from pathlib import Path
from typing import Dict, Sequence

import torch
from lhotse import CutSet, LilcomChunkyWriter, load_manifest
from lhotse.features.base import FeatureExtractor

from distill.data.manifests import features_relative_to, save_cuts
from distill.utils.audio import SAMPLE_RATE
from distill.utils.done_marker import INPUTS_KEY, files_fingerprint, is_done, mark_done

NUM_MEL_BINS = 80
EXTRACTORS = ("kaldifeat", "lhotse")


def make_extractor(name: str = "kaldifeat", device: str = "cpu") -> FeatureExtractor:
    """The fbank extractor: ``"kaldifeat"`` (lhotse's KaldifeatFbank) or ``"lhotse"`` (Fbank).

    Args:
      name:
        Which implementation; kaldifeat is the default and what the recipes use.
      device:
        Where kaldifeat computes ("cpu" or "cuda").
    """
    if name == "kaldifeat":
        from lhotse import KaldifeatFbank, KaldifeatFbankConfig
        from lhotse.features.kaldifeat import KaldifeatMelOptions

        try:
            import kaldifeat  # noqa: F401  (lhotse imports it lazily; fail here, clearly)
        except ImportError as err:
            raise ImportError(
                "kaldifeat is not installed: run tools/install.sh (it compiles and caches it), "
                "or pass --extractor lhotse"
            ) from err
        config = KaldifeatFbankConfig(mel_opts=KaldifeatMelOptions(num_bins=NUM_MEL_BINS), device=device)
        return KaldifeatFbank(config)
    if name == "lhotse":
        from lhotse import Fbank, FbankConfig

        return Fbank(FbankConfig(num_mel_bins=NUM_MEL_BINS, device=device))
    raise ValueError(f"Unknown feature extractor {name!r}; choose one of {EXTRACTORS}")




def check_sampling_rates(recordings, manifest: Path) -> None:
    """Refuse recordings that are not at :data:`SAMPLE_RATE`, naming them and the fix
    (lhotse's extractor would stop with a bare assertion in the middle of the part)."""
    wrong = [r for r in recordings if r.sampling_rate != SAMPLE_RATE]
    if wrong:
        shown = ", ".join(f"{r.id} ({r.sampling_rate} Hz)" for r in wrong[:5]) + (" ..." if len(wrong) > 5 else "")
        raise ValueError(
            f"{manifest}: {len(wrong)} recording(s) are not at {SAMPLE_RATE} Hz: {shown}. The features are "
            f"{SAMPLE_RATE} Hz fbank: resample the audio (in a Kaldi wav.scp, a pipe such as "
            f"'sox in.wav -r {SAMPLE_RATE} -t wav - |') and rerun stage 1")


def remove_stale_archives(output_dir: Path, prefix: str, part: str, keep: str) -> None:
    """Delete the feature archives of ``part`` other than ``keep`` (earlier runs' and killed
    runs'), once the cut manifest pointing into ``keep`` has been written."""
    pattern = re.compile(rf"{re.escape(prefix)}_feats_{re.escape(part)}(\.[0-9a-f]{{8}})?\.lca")
    for path in Path(output_dir).iterdir():
        if pattern.fullmatch(path.name) and path.name != f"{keep}.lca":
            path.unlink()
            logging.info(f"Removed the stale feature archive {path}")


def cuts_path(output_dir: Path, prefix: str, part: str) -> Path:
    return Path(output_dir) / f"{prefix}_cuts_{part}.jsonl.gz"


def compute_fbank(
    manifest_dir: Path,
    prefix: str,
    parts: Sequence[str],
    output_dir: Path,
    speed_perturb_parts: Sequence[str] = (),
    extractor_name: str = "kaldifeat",
    num_jobs: int = 1,
) -> Dict[str, Path]:
    """Compute and store fbank features for each part; write ``<prefix>_cuts_<part>.jsonl.gz``.

    Args:
      manifest_dir:
        Holds ``<prefix>_{recordings,supervisions}_<part>.jsonl.gz`` (stage 1).
      prefix:
        Manifest prefix, e.g. ``"librispeech"``.
      parts:
        Parts to process.
      output_dir:
        Receives the cut manifests and the lilcom feature archives ``<prefix>_feats_<part>.lca``.
      speed_perturb_parts:
        Parts (normally the training part) that also get 0.9x and 1.1x speed-perturbed copies.
      extractor_name:
        ``"kaldifeat"`` or ``"lhotse"``; recorded in the done-marker and each cut's features.
      num_jobs:
        Worker processes for extraction.
    Returns:
      ``{part: cut manifest path}``.
    """
    output_dir = Path(output_dir)
    paths = {part: cuts_path(output_dir, prefix, part) for part in parts}
    settings = {
        "parts": list(parts),
        "speed_perturb_parts": list(speed_perturb_parts),
        "extractor": extractor_name,
        "num_mel_bins": NUM_MEL_BINS,
        INPUTS_KEY: files_fingerprint(Path(manifest_dir) / f"{prefix}_{kind}_{part}.jsonl.gz"
                                      for part in parts for kind in ("recordings", "supervisions")),
    }
    if is_done(output_dir, "fbank", settings):
        logging.info(f"Features already in {output_dir}: skipping")
        return paths
    extractor = make_extractor(extractor_name)
    output_dir.mkdir(parents=True, exist_ok=True)
    logging.info(f"Feature extractor: {type(extractor).__name__} ({extractor_name}), {NUM_MEL_BINS} bins")
    # Extraction parallelizes over processes; keep each one to one thread.
    torch.set_num_threads(1)
    for part in parts:
        recordings_path = Path(manifest_dir) / f"{prefix}_recordings_{part}.jsonl.gz"
        recordings = load_manifest(recordings_path)
        check_sampling_rates(recordings, recordings_path)
        supervisions = load_manifest(Path(manifest_dir) / f"{prefix}_supervisions_{part}.jsonl.gz")
        cuts = CutSet.from_manifests(recordings=recordings, supervisions=supervisions)
        if part in speed_perturb_parts:
            cuts = cuts + cuts.perturb_speed(0.9) + cuts.perturb_speed(1.1)
        start = time.time()
        # A new archive under a new name: the cut manifest of a previous run keeps pointing
        # into its own, untouched archive until the new manifest replaces it (atomically),
        # so a redo killed half-way leaves the old features whole and trusted by nothing new.
        archive = f"{prefix}_feats_{part}.{uuid.uuid4().hex[:8]}"
        cuts = cuts.compute_and_store_features(
            extractor=extractor,
            storage_path=output_dir / archive,
            num_jobs=num_jobs,
            storage_type=LilcomChunkyWriter,
        )
        elapsed = time.time() - start
        audio_seconds = sum(c.duration for c in cuts)
        # Archives named relative to the manifest (load_cuts finds them beside it).
        save_cuts(cuts.map(partial(features_relative_to, base=str(output_dir))), paths[part])
        remove_stale_archives(output_dir, prefix, part, keep=archive)
        logging.info(
            f"{part}: {len(cuts)} cuts, {audio_seconds / 3600:.2f} h of audio in {elapsed:.1f} s "
            f"({audio_seconds / max(elapsed, 1e-9):.0f} s of audio per second) with {extractor_name}"
        )
    mark_done(output_dir, "fbank", settings)
    return paths
