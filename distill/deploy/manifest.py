"""``export.json``: what a runtime needs to know about an export folder, and its checks.

The exporter (:mod:`distill.export.exporter`) writes it last, after every graph was written
and checked; a folder without it is an unfinished export. It records the feature settings,
the vocabulary, the predictor, the streaming layout and a SHA-256 of every file, so that a
runtime can refuse a folder whose files do not belong together (a decoder from another
model, a tokens file of another lang dir) with a message that says which.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from distill.utils.io import Pathlike

MANIFEST_NAME = "export.json"
TOKENS_NAME = "tokens.txt"
FORMAT_VERSION = 1



class ExportFolderError(RuntimeError):
    """An export folder that cannot be used; the message names the file and the fix."""


def sha256_of(path: Path) -> str:
    """The hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_tokens(path: Path) -> List[str]:
    """The symbols of a sherpa-onnx ``tokens.txt`` (``symbol id`` per line, ids 0..V-1 in order)."""
    symbols: List[str] = []
    for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if len(fields) != 2 or not fields[1].isdigit() or int(fields[1]) != len(symbols):
            raise ExportFolderError(f"{path}:{line_number}: expected 'symbol {len(symbols)}', got {line!r}")
        symbols.append(fields[0])
    return symbols


def load_manifest(export_dir: Pathlike, verify_hashes: bool = True) -> Dict[str, Any]:
    """Read and check ``<export_dir>/export.json``.

    Checks: the manifest exists and has this format version; every file it names exists and,
    with ``verify_hashes``, has the SHA-256 recorded at export time; ``tokens.txt`` has
    ``vocab_size`` symbols.

    Raises:
      ExportFolderError: naming the file and the fix.
    """
    export_dir = Path(export_dir)
    path = export_dir / MANIFEST_NAME
    if not export_dir.is_dir():
        raise ExportFolderError(f"Export folder {export_dir} does not exist: run the recipe's stage 7 "
                                "(./run.sh --stage 7 --stop-stage 7) or local/export.py")
    if not path.is_file():
        raise ExportFolderError(f"{path} is missing: {export_dir} is not a finished export; rerun the export "
                                "(./run.sh --stage 7 --stop-stage 7)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ExportFolderError(f"{path} cannot be read ({err}): rerun the export") from err
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ExportFolderError(f"{path} has format version {manifest.get('format_version')}, this runtime "
                                f"reads {FORMAT_VERSION}: rerun the export with this version of the project")
    for name, digest in sorted(manifest.get("sha256", {}).items()):
        file = export_dir / name
        if not file.is_file():
            raise ExportFolderError(f"{file} is missing (named in {path}): rerun the export")
        if verify_hashes and sha256_of(file) != digest:
            raise ExportFolderError(
                f"{file} is not the file exported with the others in {export_dir} (its SHA-256 differs from "
                f"{path}): do not mix files of different exports; rerun the export")
    tokens = read_tokens(export_dir / TOKENS_NAME)
    if len(tokens) != manifest["vocab_size"]:
        raise ExportFolderError(f"{export_dir / TOKENS_NAME} has {len(tokens)} symbols but the model outputs "
                                f"{manifest['vocab_size']} ({path}): rerun the export with the model's lang dir")
    return manifest


def check_onnx_metadata(path: Path, metadata: Mapping[str, str], expected: Mapping[str, Any]) -> None:
    """Refuse an ONNX file whose metadata disagrees with the manifest (e.g. a decoder with
    another vocabulary size), naming the key and both values."""
    for key, value in expected.items():
        if key in metadata and str(metadata[key]) != str(value):
            raise ExportFolderError(f"{path} says {key}={metadata[key]} but {path.parent / MANIFEST_NAME} says "
                                    f"{value}: the files come from different exports; rerun the export")


def describe(manifest: Mapping[str, Any]) -> str:
    """A one-line summary for logs."""
    streaming: Optional[Mapping[str, Any]] = manifest.get("streaming")
    mode = f"streaming ({streaming['kind']})" if streaming else "offline only"
    return (f"{manifest['model_name']}: {manifest['encoder']} encoder, {manifest['predictor']} predictor, "
            f"vocab {manifest['vocab_size']}, {mode}")
