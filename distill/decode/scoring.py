"""Word error rate with kaldialign, in icefall's manner."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Tuple

import kaldialign


@dataclass
class ErrorStats:
    """Edit-distance counts summed over utterances."""

    ref_words: int = 0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float:
        """Errors per reference word, in percent."""
        return 100.0 * self.errors / max(self.ref_words, 1)

    def __str__(self) -> str:
        return (
            f"WER {self.wer:.2f}% [{self.errors} / {self.ref_words}, {self.insertions} ins, "
            f"{self.deletions} del, {self.substitutions} sub]"
        )


def word_errors(pairs: Sequence[Tuple[str, str]]) -> ErrorStats:
    """Sum the word-level edit distances of ``(reference, hypothesis)`` pairs.

    Args:
      pairs:
        Transcripts as strings of space-separated words.
    """
    stats = ErrorStats()
    for ref, hyp in pairs:
        counts = kaldialign.edit_distance(ref.split(), hyp.split())
        stats.ref_words += len(ref.split())
        stats.substitutions += counts["sub"]
        stats.deletions += counts["del"]
        stats.insertions += counts["ins"]
    return stats
