"""Done-markers: how a stage knows its outputs are complete and were made with these settings.

A stage writes ``<out_dir>/.<name>.done`` (JSON of the settings it ran with) as its very
last step, atomically. A rerun with the same settings skips; a rerun with different
settings is refused with a message naming the marker, rather than silently mixing outputs
made with different settings; ``--force``-style callers delete the marker first.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping

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
