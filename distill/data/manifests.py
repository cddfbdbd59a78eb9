"""Writing and reading lhotse manifests safely."""
from __future__ import annotations

import logging
import os
from functools import partial
from pathlib import Path
from typing import Dict

from lhotse import CutSet, RecordingSet, SupervisionSet
from lhotse.cut import Cut
from lhotse.utils import fastcopy
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


def features_relative_to(cut: Cut, base: str) -> Cut:
    """``cut`` with its feature archive named relative to ``base`` (the cut manifest's folder)
    when the archive lies there: the manifest then travels with its archives (a copied data
    dir reads its own features, not the original's)."""
    features = getattr(cut, "features", None)
    if features is None or not features.storage_path:
        return cut
    storage = Path(features.storage_path)
    if storage.parent.resolve() != Path(base).resolve():
        return cut
    return fastcopy(cut, features=fastcopy(features, storage_path=storage.name))


def features_resolved_against(cut: Cut, base: str) -> Cut:
    """Undo :func:`features_relative_to` when reading: a bare archive name is in ``base``."""
    features = getattr(cut, "features", None)
    if features is None or not features.storage_path or os.sep in features.storage_path:
        return cut
    return fastcopy(cut, features=fastcopy(features, storage_path=os.path.join(base, features.storage_path)))


def load_cuts(path: Path) -> CutSet:
    """Load a cut manifest lazily, its feature archives found beside it, with an error that
    names the stage to run when it is missing."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"Cut manifest {path} not found: run the feature stage (stage 2) first")
    return CutSet.from_jsonl_lazy(path).map(partial(features_resolved_against, base=str(Path(path).parent)))


def manifest_paths(output_dir: Path, prefix: str, part: str) -> Dict[str, Path]:
    """Where the recordings/supervisions manifests of ``part`` live."""
    return {
        kind: Path(output_dir) / f"{prefix}_{kind}_{part}.jsonl.gz"
        for kind in ("recordings", "supervisions")
    }
