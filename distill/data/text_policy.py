"""Text normalization as a declared step of stage 1: what a corpus's transcripts may hold,
and what happens to the rest.

Each recipe declares its normalization (``TEXT_POLICIES``; LibriSpeech's: upper-case words
of letters and apostrophes). Stage 1 checks every transcript against it and reports what
falls outside (counts, examples, ``file:line``), then, by ``text_oov``:

* ``refuse`` (default): stop, with the report and the two ways on;
* ``map``: map each word into the policy (upper-case; accents folded to ASCII, Ö -> O;
  other characters removed; words left empty dropped), reporting every change counted;
* ``drop``: drop the utterances that hold anything outside, counted and named.

Never silently: text outside the unit set would otherwise go into words.txt and the BPE
model without a word of warning (lowercase ``he`` beside ``THE``, ``42``, emoji).
"""
from __future__ import annotations

import logging
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

from lhotse import SupervisionSet

from distill.data.errors import CorpusError

TEXT_OOV_ACTIONS = ("refuse", "map", "drop")


@dataclass(frozen=True)
class TextPolicy:
    """A normalization: ``word`` matches every allowed word; ``allowed_chars`` is the
    character class (regex) a word is mapped into."""

    name: str
    description: str
    word: re.Pattern
    allowed_chars: str

    def outside(self, text: str) -> List[str]:
        """The words of ``text`` that the policy does not allow."""
        return [w for w in text.split() if not self.word.fullmatch(w)]

    def map_word(self, word: str) -> str:
        """``word`` mapped into the policy ('' when nothing of it is left)."""
        folded = unicodedata.normalize("NFKD", word.upper()).encode("ascii", "ignore").decode("ascii")
        return re.sub(f"[^{self.allowed_chars}]", "", folded)


TEXT_POLICIES: Dict[str, TextPolicy] = {
    "librispeech": TextPolicy("librispeech", "upper-case words of letters A-Z and apostrophes (LibriSpeech's)",
                              re.compile(r"[A-Z']+"), "A-Z'"),
}


def apply_text_policy(
    supervisions: SupervisionSet,
    policy: TextPolicy,
    action: str,
    where: Callable[[str], str],
    part: str,
) -> SupervisionSet:
    """Check (and map or drop, by ``action``) the transcripts of one part.

    Args:
      supervisions:
        The part's supervisions.
      policy:
        The recipe's normalization.
      action:
        One of :data:`TEXT_OOV_ACTIONS`.
      where:
        Supervision id -> ``file:line`` of its transcript, for the report.
      part:
        The part's name, for the report.
    Returns:
      The supervisions to write (unchanged when everything is inside the policy).
    Raises:
      CorpusError: with ``refuse``, when anything is outside; the report says what and where.
    """
    if action not in TEXT_OOV_ACTIONS:
        raise ValueError(f"text_oov must be one of {TEXT_OOV_ACTIONS}, got {action!r}")
    offending: List[Tuple[str, List[str]]] = [(s.id, ws) for s in supervisions if (ws := policy.outside(s.text))]
    if not offending:
        return supervisions
    words = Counter(w for _, ws in offending for w in ws)
    examples = "; ".join(f"{where(sid)}: {' '.join(ws[:4])}" for sid, ws in offending[:5])
    summary = (f"{part}: {len(offending)} transcript(s) hold {sum(words.values())} word(s) outside the {policy.name} "
               f"normalization ({policy.description}); most frequent: "
               f"{', '.join(f'{w!r} x{n}' for w, n in words.most_common(8))}; e.g. {examples}")
    if action == "refuse":
        raise CorpusError(f"{summary}. Fix the transcripts, or rerun with --text-oov map (upper-case, accents folded, "
                          f"other characters removed) or --text-oov drop (those utterances left out)")
    if action == "drop":
        bad = {sid for sid, _ in offending}
        logging.warning(f"{summary}. Dropped those {len(bad)} utterance(s) (--text-oov drop)")
        return supervisions.filter(lambda s: s.id not in bad)
    mapped, changes = [], Counter()
    emptied: List[str] = []
    for s in supervisions:
        new_words: List[str] = []
        for w in s.text.split():
            m = w if policy.word.fullmatch(w) else policy.map_word(w)
            if m != w:
                changes[(w, m)] += 1
            if m:
                new_words.append(m)
        if not new_words:
            emptied.append(s.id)
            continue
        mapped.append(s if " ".join(new_words) == s.text else s.transform_text(lambda _t, t=" ".join(new_words): t))
    shown = ", ".join(f"{a!r}->{b!r} x{n}" for (a, b), n in changes.most_common(8))
    logging.warning(f"{summary}. Mapped (--text-oov map): {shown}"
                    + (f"; {len(emptied)} utterance(s) left with no word were dropped: {', '.join(emptied[:5])}"
                       if emptied else ""))
    return SupervisionSet.from_segments(mapped)


def policy_of(name: Optional[str]) -> Optional[TextPolicy]:
    """The policy called ``name`` ('' or 'none': no check)."""
    if not name or name == "none":
        return None
    if name not in TEXT_POLICIES:
        raise ValueError(f"Unknown text normalization {name!r}; known: {', '.join(sorted(TEXT_POLICIES))}, none")
    return TEXT_POLICIES[name]
