"""A word n-gram LM for the lang dir (stage 3): interpolated modified Kneser-Ney, ARPA, G.

kaldilm only converts ARPA to an FST, so the LM is estimated here:

  - sentences are padded with ``<s>`` and ``</s>``; the vocabulary is closed (the words of
    the training transcripts plus ``</s>``), so there is no ``<unk>``;
  - the highest order uses raw counts, lower orders the Kneser-Ney continuation counts
    (the number of distinct words seen before the n-gram), except n-grams starting with
    ``<s>``, which keep their raw counts since nothing can precede ``<s>``;
  - orders >= 2 are discounted with the three modified Kneser-Ney discounts (Chen &
    Goodman) estimated from count-of-counts; when the count-of-counts do not support
    them (tiny corpora), a single discount ``n1 / (n1 + 2 n2)`` (or 0.5) is used;
  - unigrams are the continuation counts normalized, without discounting;
  - every order is interpolated with the next lower one, and the interpolation weight
    ``gamma(h)`` is written as the back-off weight of ``h``, so that for any history the
    probabilities computed through the back-off sum to one.

The ARPA file is then converted with kaldilm into the OpenFst text form of G with ``#0``
on the back-off arcs, using the lang dir's ``words.txt``.
"""
from __future__ import annotations

import logging
import math
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from distill.utils.io import Pathlike, atomic_write_text

NGram = Tuple[str, ...]

BOS = "<s>"
EOS = "</s>"
# log10 probability ARPA files give to <s>, which is never predicted.
BOS_LOG10_PROB = -99.0


def arpa_file_name(order: int) -> str:
    """The ARPA file name in the lang dir for an LM of ``order``."""
    return f"lm_{order}gram.arpa"


def g_fst_file_name(order: int) -> str:
    """The G file name (OpenFst text) in the lang dir for an LM of ``order``."""
    return f"G_{order}_gram.fst.txt"


class NGramLM:
    """A back-off n-gram LM as stored in an ARPA file.

    Args:
      log10_probs:
        ``log10_probs[k][ngram]`` for n-grams of order ``k + 1`` (tuples of words).
      log10_bows:
        Back-off weights (log10) of the n-grams that have one; absent means 0.
    """

    def __init__(
        self,
        log10_probs: List[Dict[NGram, float]],
        log10_bows: Dict[NGram, float],
    ) -> None:
        self.log10_probs = log10_probs
        self.log10_bows = log10_bows

    @property
    def order(self) -> int:
        """The highest order."""
        return len(self.log10_probs)

    @property
    def vocab(self) -> List[str]:
        """The words the LM can predict: all unigrams except ``<s>``."""
        return sorted(ng[0] for ng in self.log10_probs[0] if ng[0] != BOS)

    def log10_prob(self, history: Sequence[str], word: str) -> float:
        """``log10 P(word | history)`` through the back-off.

        Args:
          history:
            The preceding words (only the last ``order - 1`` are used).
          word:
            The predicted word; must be in the vocabulary.
        Returns:
          The log10 probability.
        """
        history = tuple(history)[max(0, len(history) - (self.order - 1)):]
        bow = 0.0
        while True:
            ngram = history + (word,)
            prob = self.log10_probs[len(ngram) - 1].get(ngram)
            if prob is not None:
                return bow + prob
            if not history:
                raise KeyError(f"Word {word!r} is not in the LM's vocabulary")
            bow += self.log10_bows.get(history, 0.0)
            history = history[1:]

    def write_arpa(self, path: Pathlike) -> None:
        """Write the LM as an ARPA file, atomically.

        Args:
          path:
            The output file.
        """
        lines = ["", "\\data\\"]
        lines += [f"ngram {k + 1}={len(table)}" for k, table in enumerate(self.log10_probs)]
        for k, table in enumerate(self.log10_probs):
            lines += ["", f"\\{k + 1}-grams:"]
            for ngram in sorted(table):
                fields = [f"{table[ngram]:.7f}", " ".join(ngram)]
                if ngram in self.log10_bows:
                    fields.append(f"{self.log10_bows[ngram]:.7f}")
                lines.append("\t".join(fields))
        lines += ["", "\\end\\", ""]
        atomic_write_text(path, "\n".join(lines))


def read_arpa(path: Pathlike) -> NGramLM:
    """Read an ARPA file.

    Args:
      path:
        The ARPA file.
    Returns:
      The LM.
    """
    log10_probs: List[Dict[NGram, float]] = []
    log10_bows: Dict[NGram, float] = {}
    order = 0
    with Path(path).open(encoding="utf-8") as f:
        for num, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("ngram ") or line == "\\data\\":
                continue
            if line == "\\end\\":
                break
            if line.startswith("\\") and line.endswith("-grams:"):
                order = int(line[1:-len("-grams:")])
                while len(log10_probs) < order:
                    log10_probs.append({})
                continue
            fields = line.split()
            if order == 0 or len(fields) not in (order + 1, order + 2):
                raise ValueError(f"{path}:{num}: malformed ARPA line {raw!r}")
            ngram = tuple(fields[1:order + 1])
            log10_probs[order - 1][ngram] = float(fields[0])
            if len(fields) == order + 2:
                log10_bows[ngram] = float(fields[-1])
    if not log10_probs:
        raise ValueError(f"{path} has no n-grams")
    return NGramLM(log10_probs, log10_bows)


def read_sentences(transcript_file: Pathlike) -> List[List[str]]:
    """The non-empty lines of a transcript file, as word lists.

    Args:
      transcript_file:
        One utterance per line.
    Returns:
      The sentences.
    """
    with Path(transcript_file).open(encoding="utf-8") as f:
        return [line.split() for line in f if line.strip()]


def _discounts(adjusted: Dict[NGram, int], order: int) -> Tuple[float, float, float]:
    """The modified Kneser-Ney discounts ``(D1, D2, D3+)`` for one order.

    Args:
      adjusted:
        The order's adjusted counts.
      order:
        The order (for the log message).
    Returns:
      The discounts for n-grams seen once, twice and three or more times, each in
      ``(0, count)``.
    """
    n = [0] * 5
    for c in adjusted.values():
        if c <= 4:
            n[c] += 1
    if all(n[i] > 0 for i in range(1, 5)):
        y = n[1] / (n[1] + 2 * n[2])
        d = (1 - 2 * y * n[2] / n[1], 2 - 3 * y * n[3] / n[2], 3 - 4 * y * n[4] / n[3])
        if all(0 < d[i] < i + 1 for i in range(3)):
            return d
    single = n[1] / (n[1] + 2 * n[2]) if n[1] > 0 and n[2] > 0 else 0.5
    logging.info(
        f"{order}-grams: count-of-counts {n[1:]} do not support modified Kneser-Ney "
        f"discounts; using a single discount {single:.4f}"
    )
    return (single, single, single)


def train_kneser_ney(sentences: Iterable[Sequence[str]], order: int = 3) -> NGramLM:
    """Estimate an interpolated modified Kneser-Ney LM.

    Args:
      sentences:
        Word sequences (without ``<s>``/``</s>``); empty ones are ignored.
      order:
        The n-gram order (1 or more).
    Returns:
      The LM in back-off form. If the text has no n-grams of some order (all sentences
      too short), the LM stops at the highest order it has, with a warning.
    """
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    raw: List[Dict[NGram, int]] = [defaultdict(int) for _ in range(order)]
    num_sentences = 0
    for sentence in sentences:
        if not sentence:
            continue
        if BOS in sentence or EOS in sentence:
            raise ValueError(f"Sentence contains {BOS} or {EOS}: {' '.join(sentence)}")
        num_sentences += 1
        padded = (BOS,) + tuple(sentence) + (EOS,)
        for k in range(1, order + 1):
            for i in range(len(padded) - k + 1):
                raw[k - 1][padded[i:i + k]] += 1
    if num_sentences == 0:
        raise ValueError("No non-empty sentences to train an n-gram LM on")
    while not raw[-1]:
        raw.pop()
    if len(raw) < order:
        logging.warning(f"The text has no n-grams above order {len(raw)}; the LM has order {len(raw)}")
    order = len(raw)

    # Adjusted counts: raw for the highest order and for n-grams starting with <s>,
    # continuation counts otherwise.
    adjusted: List[Dict[NGram, int]] = [dict() for _ in range(order)]
    adjusted[order - 1] = dict(raw[order - 1])
    for k in range(order - 1, 0, -1):  # k: 0-based index of the lower order
        continuation: Dict[NGram, int] = defaultdict(int)
        for ngram in raw[k]:
            continuation[ngram[1:]] += 1
        for ngram, count in raw[k - 1].items():
            adjusted[k - 1][ngram] = count if ngram[0] == BOS else continuation[ngram]

    # Unigrams: continuation counts normalized; <s> is never predicted.
    probs: List[Dict[NGram, float]] = [dict() for _ in range(order)]
    unigrams = {ng: c for ng, c in adjusted[0].items() if ng[0] != BOS}
    total = sum(unigrams.values())
    for ngram, count in unigrams.items():
        probs[0][ngram] = count / total

    bows: Dict[NGram, float] = {}
    for k in range(1, order):
        d = _discounts(adjusted[k], k + 1)
        totals: Dict[NGram, float] = defaultdict(float)
        discounted_mass: Dict[NGram, float] = defaultdict(float)
        for ngram, count in adjusted[k].items():
            history = ngram[:-1]
            totals[history] += count
            discounted_mass[history] += d[min(count, 3) - 1]
        for history, total in totals.items():
            bows[history] = discounted_mass[history] / total
        for ngram, count in adjusted[k].items():
            history = ngram[:-1]
            lower = probs[k - 1][ngram[1:]]
            probs[k][ngram] = (count - d[min(count, 3) - 1]) / totals[history] + bows[history] * lower

    log10_probs = [{ng: math.log10(p) for ng, p in table.items()} for table in probs]
    log10_probs[0][(BOS,)] = BOS_LOG10_PROB
    log10_bows = {h: math.log10(b) for h, b in bows.items()}
    logging.info(
        f"Kneser-Ney {order}-gram LM from {num_sentences} sentences: "
        + ", ".join(f"{len(t)} {k + 1}-grams" for k, t in enumerate(log10_probs))
    )
    return NGramLM(log10_probs, log10_bows)


def arpa_to_g_fst_text(arpa_file: Pathlike, words_file: Pathlike, order: Optional[int] = None) -> str:
    """Convert an ARPA LM into G, the OpenFst text form kaldilm prints.

    Back-off arcs carry ``#0`` on their input side; ``<s>`` and ``</s>`` become epsilons
    and final weights.

    Args:
      arpa_file:
        The ARPA file.
      words_file:
        The word symbol table (``words.txt``, must contain ``#0``, ``<s>``, ``</s>`` and
        every word of the LM).
      order:
        Use n-grams up to this order; None for all.
    Returns:
      The FST text: ``src dest ilabel olabel weight`` lines (integer labels, weights as
      negated natural logs), which ``k2.Fsa.from_openfst(text, acceptor=False)`` reads.
    """
    import kaldilm

    text = kaldilm.arpa2fst(
        input_arpa=str(arpa_file),
        disambig_symbol="#0",
        read_symbol_table=str(words_file),
        max_order=-1 if order is None else order,
    )
    if not text.strip():
        raise RuntimeError(f"kaldilm produced an empty G from {arpa_file} with {words_file}")
    return text


def prepare_lm(transcript_file: Pathlike, lang_dir: Pathlike, words_file: Pathlike, order: int = 3) -> Path:
    """Train the word LM on the transcripts, write its ARPA file and G (FST text).

    Args:
      transcript_file:
        Training transcripts, one utterance per line.
      lang_dir:
        Where to write ``lm_<order>gram.arpa`` and ``G_<order>_gram.fst.txt``.
      words_file:
        The word table (``words.txt``).
      order:
        The n-gram order.
    Returns:
      The path of ``G_<order>_gram.fst.txt``.
    """
    lang_dir = Path(lang_dir)
    lm = train_kneser_ney(read_sentences(transcript_file), order)
    arpa = lang_dir / arpa_file_name(order)
    lm.write_arpa(arpa)
    g_path = lang_dir / g_fst_file_name(order)
    text = arpa_to_g_fst_text(arpa, words_file, order)
    atomic_write_text(g_path, text)
    logging.info(f"Wrote {arpa} and {g_path} ({text.count(chr(10))} lines)")
    return g_path
