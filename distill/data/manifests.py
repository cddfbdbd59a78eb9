"""Writing and reading lhotse manifests safely."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict

from lhotse import CutSet, RecordingSet, SupervisionSet
from lhotse.qa import fix_manifests, validate_recordings_and_supervisions

from distill.utils.io import atomic_path


def write_manifests(
    recordings: RecordingSet, supervisions: SupervisionSet, paths: Dict[str, Path]
) -> None:
    """Validate a part's recordings/supervisions and write both atomically.

    Args:
      recordings:
        The part's recordings.
      supervisions:
        The part's supervisions.
      paths:
        ``{"recordings": path, "supervisions": path}`` (``.jsonl.gz``).
    """
    recordings, supervisions = fix_manifests(recordings, supervisions)
    validate_recordings_and_supervisions(recordings, supervisions)
    if len(supervisions) == 0:
        raise ValueError(f"No usable utterances for {paths['supervisions']}")
    for kind, manifest in (("recordings", recordings), ("supervisions", supervisions)):
        with atomic_path(paths[kind]) as tmp:
            manifest.to_file(tmp)
    logging.info(
        f"Wrote {len(recordings)} recordings, {len(supervisions)} supervisions -> {paths['supervisions'].parent}"
    )


def save_cuts(cuts: CutSet, path: Path) -> None:
    """Write a cut manifest atomically (the suffix picks gzip)."""
    with atomic_path(path) as tmp:
        cuts.to_file(tmp)


def load_cuts(path: Path) -> CutSet:
    """Load a cut manifest lazily, with an error that names the stage to run when it is missing."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"Cut manifest {path} not found: run the feature stage (stage 2) first")
    return CutSet.from_jsonl_lazy(path)
