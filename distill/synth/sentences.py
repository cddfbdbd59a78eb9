"""Sentences for the demo corpora, and how a part's sentences are dealt to its speakers.

Sources are public-domain English that Debian packages ship: the King James Bible
(``bible-kjv``) and WordNet's example sentences (``wordnet-base``). Each corpus normalizes
them its own way (LibriSpeech's upper-case transcripts, TIMIT's written prompts); what is
shared is where they come from, the closed vocabulary, and the dealing of sentences to
speakers within a part's time budget.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Sequence, Set, Tuple, TypeVar

BIBLE_COMMAND = ["bible", "gen1:1-rev22:21"]
WORDNET_DIR = Path("/usr/share/wordnet")

T = TypeVar("T")


def bible_verses() -> Iterator[str]:
    """Yield the King James Bible's verses (``bible-kjv``), one string each."""
    if shutil.which(BIBLE_COMMAND[0]) is None:
        raise FileNotFoundError(
            "The 'bible' command (Debian package bible-kjv) is missing: run tools/install.sh "
            "or apt-get install bible-kjv"
        )
    text = subprocess.run(BIBLE_COMMAND, capture_output=True, text=True, check=True).stdout
    verse: List[str] = []
    for line in text.splitlines():
        match = re.match(r"^\s+\d+\s+(.*)$", line)
        if match:  # a new verse starts: "  12 And God said ..."
            if verse:
                yield " ".join(verse)
            verse = [match.group(1)]
        elif line.strip() and verse and not re.match(r"^[1-3]?\s?[A-Z][a-z]+.* \d+$", line.strip()):
            verse.append(line.strip())  # a wrapped continuation line
        else:  # blank line or a chapter heading ("Genesis 2")
            if verse:
                yield " ".join(verse)
            verse = []
    if verse:
        yield " ".join(verse)


def wordnet_examples(wordnet_dir: Path = WORDNET_DIR) -> Iterator[str]:
    """Yield WordNet's example sentences (the quoted parts of glosses, ``wordnet-base``)."""
    files = [wordnet_dir / f"data.{pos}" for pos in ("noun", "verb", "adj", "adv")]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(
            f"WordNet data files missing: {', '.join(missing)}: run tools/install.sh or "
            "apt-get install wordnet-base"
        )
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  ") or "|" not in line:
                    continue  # licence header
                gloss = line.split("|", 1)[1]
                yield from re.findall(r'"([^"]+)"', gloss)


def source_sentences() -> Iterator[Tuple[str, str]]:
    """Every source sentence as ``(source, text)``, source ``"bible"`` or ``"wordnet"``, in a
    fixed order (the Bible's, then WordNet's)."""
    for source, texts in (("bible", bible_verses()), ("wordnet", wordnet_examples())):
        for text in texts:
            yield source, text


def closed_vocabulary(transcripts: Sequence[str], size: int) -> Set[str]:
    """The ``size`` most frequent words of ``transcripts`` (ties broken alphabetically, so the
    set does not depend on the order of the sentences)."""
    counts: Dict[str, int] = defaultdict(int)
    for transcript in transcripts:
        for word in transcript.split():
            counts[word] += 1
    ranked = sorted(counts, key=lambda w: (-counts[w], w))
    return set(ranked[:size])


def round_robin(speakers: Sequence[T], count: int) -> List[T]:
    """Who reads each of ``count`` sentences when every speaker takes a turn in order."""
    return [speakers[i % len(speakers)] for i in range(count)]


def weighted_turns(speakers: Sequence[T], count: int, weight: Callable[[T], float]) -> List[T]:
    """Who reads each of ``count`` sentences when speaker ``s`` should get ``weight(s)`` of the
    turns (weights summing to 1): nginx's smooth weighted round-robin, which spreads each
    speaker's turns evenly over the sequence, so that any prefix is balanced too."""
    weights = [weight(s) for s in speakers]
    current = [0.0] * len(speakers)
    turns = []
    for _ in range(count):
        current = [c + w for c, w in zip(current, weights)]
        pick = max(range(len(speakers)), key=lambda i: current[i])
        current[pick] -= 1.0
        turns.append(speakers[pick])
    return turns


def sentences_in_budget(seconds_of: Callable[[int], float], seconds: float, available: int) -> int:
    """How many sentences fill a part's ``seconds`` of audio.

    Args:
      seconds_of: the (estimated) length of the part's ``i``-th sentence as its reader says it.
      seconds: the part's budget.
      available: sentences left in the pool.
    Returns:
      The smallest count whose lengths reach ``seconds`` (a part overshoots by under a sentence).
    Raises:
      ValueError: the pool runs out first.
    """
    count = 0
    while seconds > 0:
        if count >= available:
            raise ValueError("The sentence pool is exhausted: ask for a smaller demo corpus")
        seconds -= seconds_of(count)
        count += 1
    return count
