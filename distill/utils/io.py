"""Atomic file output: a reader never sees a half-written file.

Every stage writes its outputs through these helpers: the data goes to a temporary file in
the destination directory (same filesystem), which is renamed over the target only once it
is complete. A crash leaves at most a stray ``.tmp`` file, never a truncated manifest or
checkpoint that a rerun would trust.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator, Union

Pathlike = Union[str, os.PathLike]


@contextlib.contextmanager
def atomic_path(target: Pathlike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it to ``target`` on success.

    Args:
      target:
        The final path.
      suffix:
        Suffix for the temporary file, for writers that infer the format from it
        (lhotse picks gzip from ``.jsonl.gz``). Defaults to the target's own suffixes.
    Yields:
      A path to write to. On an exception it is removed and ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = suffix or "".join(target.suffixes)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{suffix}", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates 0600 files; give the output the permissions a plain open() would.
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(target: Pathlike, text: str) -> None:
    """Write ``text`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(target: Pathlike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``target`` atomically."""
    atomic_write_text(target, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def atomic_save_torch(obj: Any, target: Pathlike) -> None:
    """``torch.save`` to ``target`` atomically."""
    import torch

    with atomic_path(target) as tmp:
        torch.save(obj, tmp)
