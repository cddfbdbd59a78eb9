"""Text normalization in LibriSpeech's manner, for transcripts of synthesized speech.

LibriSpeech transcripts are upper-case words made of letters and apostrophes, with no
punctuation. The demo corpus must also say exactly what its transcript says, so sentences
whose spoken form a synthesizer would expand unpredictably (digits, abbreviations, symbols)
are rejected rather than guessed at.
"""
from __future__ import annotations

import re
from typing import Optional

# A word as the synthesizers read it: letters, with inner apostrophes or hyphens.
_WORD = re.compile(r"^[A-Za-z]+(?:['-][A-Za-z]+)*$")
# Punctuation that may lead or trail a word; the synthesizers only pause on it.
_STRIP = "\"'`.,;:!?()[]"


def normalize_transcript(text: str, min_words: int = 1, max_words: int = 1000) -> Optional[str]:
    """Normalize ``text`` to a LibriSpeech-style transcript, or None if it is unsuitable.

    Args:
      text:
        A sentence as written (mixed case, punctuation).
      min_words:
        Sentences with fewer words are rejected.
      max_words:
        Sentences with more words are rejected.
    Returns:
      Upper-case words separated by single spaces (hyphenated words split in two, as
      LibriSpeech does), or None when the sentence holds digits, abbreviations ("e.g.",
      "U.S."), stray symbols or single letters other than "A"/"I" that a synthesizer
      might spell out.
    """
    words = []
    for raw in text.split():
        token = raw.strip(_STRIP)
        if not token:
            if any(c.isalnum() for c in raw):
                return None
            continue
        if not _WORD.match(token):
            return None
        if len(token) == 1 and token.upper() not in ("A", "I"):
            return None
        words.extend(part.upper() for part in token.split("-"))
    if not min_words <= len(words) <= max_words:
        return None
    return " ".join(words)


def speakable(text: str) -> str:
    """The form of ``text`` given to a synthesizer: all-capital words (KJV's "LORD")
    title-cased, so that no synthesizer spells them out letter by letter."""
    return " ".join(w.capitalize() if len(w) > 1 and w.isupper() else w for w in text.split())
