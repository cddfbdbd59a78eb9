"""Errors of the data stages."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class CorpusError(RuntimeError):
    """The corpus on disk is missing or has faults; the message names the files and the fix."""


@dataclass
class CorpusProblem:
    """One problem of a corpus: the file (or ``file:line``) and what is wrong with it."""

    path: Path
    what: str

    def __str__(self) -> str:
        return f"{self.path}: {self.what}"
