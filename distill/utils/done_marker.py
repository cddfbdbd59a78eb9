"""Done-markers: how a stage knows its outputs are complete and were made with these settings.

A stage writes ``<out_dir>/.<name>.done`` (JSON of the settings it ran with) as its very
last step, atomically. A rerun with the same settings skips; a rerun with different
settings is refused with a message naming the marker, rather than silently mixing outputs
made with different settings; ``--force``-style callers delete the marker first.

The settings also hold an ``inputs`` entry, a fingerprint of what the stage read
(:func:`files_fingerprint`, :func:`tree_fingerprint`): when only the inputs changed (a
corpus redone, new transcripts), the marker is stale and the stage is simply redone, its
outputs replaced atomically, instead of skipping with outputs made from other inputs.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from distill.utils.io import atomic_write_json


class SettingsChangedError(RuntimeError):
    """A stage's outputs exist but were made with other settings."""


def marker_path(out_dir: Path, name: str) -> Path:
    return Path(out_dir) / f".{name}.done"


def _normalize(settings: Mapping[str, Any]) -> dict:
    # Round-trip through JSON so that tuples/Paths compare equal to what was stored.
    return json.loads(json.dumps(dict(settings), default=str, sort_keys=True))


def is_done(out_dir: Path, name: str, settings: Mapping[str, Any]) -> bool:
    """True when the stage ``name`` already completed in ``out_dir`` with ``settings``.

    Raises:
      SettingsChangedError: the marker exists but records different settings.
    """
    path = marker_path(out_dir, name)
    if not path.is_file():
        return False
    try:
        stored = json.loads(path.read_text())
    except json.JSONDecodeError:
        # Markers are written atomically, so this is a hand-edited file: do not trust it.
        logging.warning(f"Ignoring unreadable done-marker {path}")
        return False
    wanted = _normalize(settings)
    if stored != wanted and {k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k)} == {INPUTS_KEY}:
        logging.info(f"The inputs of stage '{name}' changed since {path} was written: redoing it")
        return False
    if stored != wanted:
        changed = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
        raise SettingsChangedError(
            f"{out_dir} was made by stage '{name}' with other settings (differs in: "
            f"{', '.join(changed)}). Remove {path} (and the outputs beside it) to redo it, "
            f"or choose another output directory."
        )
    return True


def mark_done(out_dir: Path, name: str, settings: Mapping[str, Any]) -> None:
    """Record that stage ``name`` completed in ``out_dir`` with ``settings``."""
    atomic_write_json(marker_path(out_dir, name), _normalize(settings))


#: The settings key that holds a stage's input fingerprint (a change there means: redo).
INPUTS_KEY = "inputs"


def files_fingerprint(paths: Iterable[Path]) -> str:
    """SHA-256 over the names and contents of small input files (manifests, transcripts)."""
    digest = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        digest.update(path.name.encode() + b"\0")
        if not path.is_file():
            digest.update(b"missing")
            continue
        data = path.read_bytes()
        if path.suffix == ".gz":  # the content, not gzip's header (it holds the time of writing)
            data = gzip.decompress(data)
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()[:16]


def tree_fingerprint(root: Path, suffixes: Iterable[str] = ()) -> str:
    """SHA-256 over the relative paths, sizes and modification times of the files below
    ``root`` (those ending in ``suffixes``, case-insensitive; all if empty): cheap enough for a
    whole corpus, and it changes when any file is added, removed, rewritten or touched."""
    wanted = tuple(s.lower() for s in suffixes)
    entries = []
    for directory, _, names in os.walk(root):
        for name in names:
            if wanted and not name.lower().endswith(wanted):
                continue
            path = Path(directory) / name
            st = path.stat()
            entries.append(f"{path.relative_to(root)}\t{st.st_size}\t{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(sorted(entries)).encode()).hexdigest()[:16]
