"""Scoring of recognition results with kaldialign, in icefall's manner.

* Error rates: WER over words, CER over characters. The CER follows icefall's
  ``write_error_stats(..., compute_CER=True)`` and ESPnet's ``ErrorCalculator``: spaces are
  removed before the characters are aligned (``keep_spaces=True`` counts them as symbols).
* Token precision, recall and F1 from one alignment per utterance (hits, substitutions,
  deletions, insertions).
* Per-utterance files as icefall writes them: ``recogs-<tag>.txt`` and ``errs-<tag>.txt``.
* A markdown results table and the real-time factor.

Every file is written atomically (:mod:`distill.utils.io`).
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import kaldialign

from distill.utils.io import Pathlike, atomic_write_text

#: The symbol shown for a missing word in alignments, as icefall shows it.
ERR = "*"
# The epsilon given to kaldialign: an empty string is never a word of ``str.split()`` nor a
# character of a string, so a literal "*" in a transcript is never taken for a gap.
_EPS = ""

#: A scored utterance: ``(utterance id, reference, hypothesis)``, transcripts as strings.
Result = Tuple[str, str, str]


@dataclass
class ErrorStats:
    """Edit-distance counts summed over utterances.

    A "word" here is whatever unit was aligned: words for the WER, characters for the CER.
    """

    ref_words: int = 0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    hits: int = 0

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def hyp_words(self) -> int:
        """Tokens in the hypotheses: every one is a hit, a substitution or an insertion."""
        return self.hits + self.substitutions + self.insertions

    @property
    def wer(self) -> float:
        """Errors per reference word, in percent (an empty reference counts as one word, so
        that insertions into it still show)."""
        return 100.0 * self.errors / max(self.ref_words, 1)

    @property
    def precision(self) -> float:
        """``hits / (hits + sub + ins)``, a fraction; 1.0 when no token was hypothesized
        (0/0: nothing false was produced)."""
        return _ratio(self.hits, self.hyp_words)

    @property
    def recall(self) -> float:
        """``hits / (hits + sub + del)``, a fraction; 1.0 when the references are empty
        (0/0: nothing was missed)."""
        return _ratio(self.hits, self.hits + self.substitutions + self.deletions)

    @property
    def f1(self) -> float:
        """The harmonic mean of precision and recall; 1.0 for empty reference and
        hypothesis, 0.0 when either is 0."""
        p, r = self.precision, self.recall
        return 0.0 if p + r == 0.0 else 2.0 * p * r / (p + r)

    def __add__(self, other: "ErrorStats") -> "ErrorStats":
        return ErrorStats(
            self.ref_words + other.ref_words,
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
            self.hits + other.hits,
        )

    def __str__(self) -> str:
        return self.summary()

    def summary(self, name: str = "WER") -> str:
        """One line, e.g. ``WER 12.50% [5 / 40, 1 ins, 2 del, 2 sub]`` (``name``: PER for phones)."""
        return (
            f"{name} {self.wer:.2f}% [{self.errors} / {self.ref_words}, {self.insertions} ins, "
            f"{self.deletions} del, {self.substitutions} sub]"
        )


def _ratio(num: int, den: int) -> float:
    return 1.0 if den == 0 else num / den


def align_tokens(ref: Sequence[str], hyp: Sequence[str]) -> List[Tuple[str, str]]:
    """One minimum-edit alignment of two token sequences, with :data:`ERR` for gaps.

    Args:
      ref:
        Reference tokens.
      hyp:
        Hypothesis tokens.
    Returns:
      ``[(ref token or ERR, hyp token or ERR), ...]``: a pair with ERR on the left is an
      insertion, on the right a deletion, two different tokens a substitution.
    """
    return [(r or ERR, h or ERR) for r, h in _align(ref, hyp)]


def _align(ref: Sequence[str], hyp: Sequence[str]) -> List[Tuple[str, str]]:
    """:func:`kaldialign.align` with ``_EPS`` (falsy) marking gaps."""
    return kaldialign.align(list(ref), list(hyp), _EPS)


def _count(ref: Sequence[str], hyp: Sequence[str]) -> ErrorStats:
    """The counts of one utterance, read off :func:`kaldialign.align`."""
    stats = ErrorStats(ref_words=len(ref))
    for r, h in _align(ref, hyp):
        if r == _EPS:
            stats.insertions += 1
        elif h == _EPS:
            stats.deletions += 1
        elif r != h:
            stats.substitutions += 1
        else:
            stats.hits += 1
    return stats


def token_errors(pairs: Iterable[Tuple[Sequence[str], Sequence[str]]]) -> ErrorStats:
    """Sum the edit-distance counts of ``(reference tokens, hypothesis tokens)`` pairs.

    Args:
      pairs:
        Token sequences (words, characters, BPE pieces...), any number of utterances.
    """
    total = ErrorStats()
    for ref, hyp in pairs:
        total = total + _count(ref, hyp)
    return total


def word_errors(pairs: Sequence[Tuple[str, str]]) -> ErrorStats:
    """Sum the word-level edit distances of ``(reference, hypothesis)`` pairs.

    Args:
      pairs:
        Transcripts as strings of space-separated words.
    """
    return token_errors((ref.split(), hyp.split()) for ref, hyp in pairs)


def to_chars(text: str, keep_spaces: bool = False) -> List[str]:
    """The characters of ``text`` for the CER.

    Args:
      text:
        A transcript.
      keep_spaces:
        False (icefall and ESPnet): words are joined without spaces. True: one space
        between words counts as a character.
    """
    words = text.split()
    return list(" ".join(words) if keep_spaces else "".join(words))


def char_errors(pairs: Sequence[Tuple[str, str]], keep_spaces: bool = False) -> ErrorStats:
    """Sum the character-level edit distances of ``(reference, hypothesis)`` pairs.

    ``ref_words`` of the result counts reference characters and ``wer`` is the CER.

    Args:
      pairs:
        Transcripts as strings.
      keep_spaces:
        See :func:`to_chars`; False by default.
    """
    return token_errors((to_chars(ref, keep_spaces), to_chars(hyp, keep_spaces)) for ref, hyp in pairs)


def recogs_text(results: Iterable[Result]) -> str:
    """The text of icefall's ``recogs-<tag>.txt``: per utterance (sorted by id) the lines
    ``<id>:\\tref=['W1', 'W2']`` and ``<id>:\\thyp=[...]`` (the word lists as Python prints
    them, as icefall's ``store_transcripts`` does)."""
    lines = []
    for utt_id, ref, hyp in sorted(results):
        lines.append(f"{utt_id}:\tref={ref.split()}\n")
        lines.append(f"{utt_id}:\thyp={hyp.split()}\n")
    return "".join(lines)


def write_recogs(path: Pathlike, results: Iterable[Result]) -> None:
    """Write :func:`recogs_text` to ``path`` atomically."""
    atomic_write_text(path, recogs_text(results))


def _merged_alignment(pairs: List[Tuple[str, str]]) -> List[Tuple[str, str]]:
    """Join each run of adjacent errors of a raw alignment (gaps ``_EPS``) into one
    ``(ref words, hyp words)`` pair (gaps dropped; an all-gap side shows as ERR), as icefall
    prints per-utterance details."""
    merged: List[Tuple[str, str]] = []
    run_ref: List[str] = []
    run_hyp: List[str] = []

    def flush() -> None:
        if run_ref or run_hyp:
            merged.append((" ".join(run_ref) or ERR, " ".join(run_hyp) or ERR))
            run_ref.clear()
            run_hyp.clear()

    for r, h in pairs:
        if r == h:
            flush()
            merged.append((r, h))
            continue
        if r != _EPS:
            run_ref.append(r)
        if h != _EPS:
            run_hyp.append(h)
    flush()
    return merged


def error_stats_text(
    results: Iterable[Result], char_level: bool = False, keep_spaces: bool = False
) -> Tuple[str, ErrorStats]:
    """The text of icefall's ``errs-<tag>.txt`` and the summed counts.

    Sections: the overall ``%WER`` (``%CER`` with ``char_level``) and error counts;
    ``PER-UTT DETAILS`` (each utterance's alignment, ``(ref->hyp)`` around errors, ``*`` for
    a gap); ``SUBSTITUTIONS``, ``DELETIONS`` and ``INSERTIONS`` most frequent first; and
    ``PER-WORD STATS`` (``word corr tot_errs count_in_ref count_in_hyp``), most errors first.
    Ties are broken alphabetically.

    Args:
      results:
        ``(utterance id, reference, hypothesis)`` triples; written sorted by id.
      char_level:
        Align characters (see :func:`to_chars`) instead of words.
      keep_spaces:
        With ``char_level``: count spaces as characters.
    Returns:
      ``(text, stats)``.
    """
    tokens = (lambda s: to_chars(s, keep_spaces)) if char_level else str.split
    aligned = [(utt_id, _align(tokens(ref), tokens(hyp))) for utt_id, ref, hyp in sorted(results)]

    subs: Dict[Tuple[str, str], int] = defaultdict(int)
    dels: Dict[str, int] = defaultdict(int)
    ins: Dict[str, int] = defaultdict(int)
    # Per word: [correct, substituted as ref, substituted as hyp, inserted, deleted].
    words: Dict[str, List[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    stats = ErrorStats()
    for _, pairs in aligned:
        for r, h in pairs:
            if r == _EPS:
                ins[h] += 1
                words[h][3] += 1
                stats.insertions += 1
            elif h == _EPS:
                dels[r] += 1
                words[r][4] += 1
                stats.deletions += 1
            elif r != h:
                subs[(r, h)] += 1
                words[r][1] += 1
                words[h][2] += 1
                stats.substitutions += 1
            else:
                words[r][0] += 1
                stats.hits += 1
            if r != _EPS:
                stats.ref_words += 1

    unit = "characters" if char_level else "words"
    lines = [
        f"%{'CER' if char_level else 'WER'} = {stats.wer:.2f}",
        f"Errors: {stats.insertions} insertions, {stats.deletions} deletions, {stats.substitutions} "
        f"substitutions, over {stats.ref_words} reference {unit} ({stats.hits} correct)",
        "Search below for sections starting with PER-UTT DETAILS:, SUBSTITUTIONS:, DELETIONS:, "
        "INSERTIONS:, PER-WORD STATS:",
        "",
        "PER-UTT DETAILS: corr or (ref->hyp)  ",
    ]
    for utt_id, pairs in aligned:
        shown = (r if r == h else f"({r}->{h})" for r, h in _merged_alignment(pairs))
        lines.append(f"{utt_id}:\t" + " ".join(shown))
    lines += ["", "SUBSTITUTIONS: count ref -> hyp"]
    lines += [f"{n}   {r} -> {h}" for (r, h), n in _most_frequent(subs)]
    lines += ["", "DELETIONS: count ref"]
    lines += [f"{n}   {r}" for r, n in _most_frequent(dels)]
    lines += ["", "INSERTIONS: count hyp"]
    lines += [f"{n}   {h}" for h, n in _most_frequent(ins)]
    lines += ["", "PER-WORD STATS: word  corr tot_errs count_in_ref count_in_hyp"]
    for word, (corr, ref_sub, hyp_sub, n_ins, n_del) in sorted(words.items(), key=lambda kv: (-sum(kv[1][1:]), kv[0])):
        errs = ref_sub + hyp_sub + n_ins + n_del
        lines.append(f"{word}   {corr} {errs} {corr + ref_sub + n_del} {corr + hyp_sub + n_ins}")
    return "\n".join(lines) + "\n", stats


def _most_frequent(counts: Dict) -> List[Tuple]:
    """``(key, count)`` items, highest count first, then by key."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def write_error_stats(
    path: Pathlike, results: Iterable[Result], char_level: bool = False, keep_spaces: bool = False
) -> ErrorStats:
    """Write :func:`error_stats_text` to ``path`` atomically; return the summed counts."""
    text, stats = error_stats_text(results, char_level, keep_spaces)
    atomic_write_text(path, text)
    return stats


def save_results(out_dir: Pathlike, tag: str, results: Sequence[Result]) -> ErrorStats:
    """Write ``recogs-<tag>.txt`` and ``errs-<tag>.txt`` (word level) into ``out_dir``.

    Args:
      out_dir:
        Destination directory (created if needed).
      tag:
        Names the files, e.g. ``"test-clean-greedy-epoch-30-avg-10"``.
      results:
        ``(utterance id, reference, hypothesis)`` triples.
    Returns:
      The word-level counts.
    """
    out_dir = Path(out_dir)
    write_recogs(out_dir / f"recogs-{tag}.txt", results)
    return write_error_stats(out_dir / f"errs-{tag}.txt", results)


def speaker_of(utt_id: str) -> str:
    """The speaker of an utterance id that begins with it, as LibriSpeech's ``<spk>-<chapter>-<n>``
    and Kaldi's recommended ids do: the part before the first ``-`` (or ``_``)."""
    return re.split(r"[-_]", utt_id, maxsplit=1)[0]


def speaker_error_rates_text(results: Iterable[Result], name: str = "WER") -> str:
    """One line per speaker (:func:`speaker_of`), worst first, then the overall line: on a
    corpus with few held-out speakers, which voices fail matters more than the mean.

    Args:
      results:
        ``(utterance id, reference, hypothesis)`` triples.
      name:
        What the error rate is called (``PER`` for phones).
    """
    by_speaker: Dict[str, List[Tuple[str, str]]] = defaultdict(list)
    for utt_id, ref, hyp in results:
        by_speaker[speaker_of(utt_id)].append((ref, hyp))
    rows = [(word_errors(pairs), spk, len(pairs)) for spk, pairs in by_speaker.items()]
    rows.sort(key=lambda row: (-row[0].wer, row[1]))
    lines = [f"{spk}\t{n} utts\t{stats.summary(name)}" for stats, spk, n in rows]
    total = sum((stats for stats, _, _ in rows), ErrorStats())
    lines.append(f"all\t{sum(n for _, _, n in rows)} utts\t{total.summary(name)}")
    return "\n".join(lines) + "\n"


def real_time_factor(decode_seconds: float, audio_seconds: float) -> float:
    """Seconds spent decoding per second of audio (below 1: faster than real time).

    Args:
      decode_seconds:
        Wall-clock time of the decoding (>= 0).
      audio_seconds:
        Duration of the decoded audio (> 0).
    """
    if audio_seconds <= 0:
        raise ValueError(f"audio_seconds must be positive, got {audio_seconds}")
    if decode_seconds < 0:
        raise ValueError(f"decode_seconds must be >= 0, got {decode_seconds}")
    return decode_seconds / audio_seconds


@dataclass
class ResultRow:
    """One line of a results table. Metrics left as None show as ``-``.

    Attributes:
      model:
        Model name, e.g. ``"teacher"`` or ``"student_rnn_kd"``.
      params:
        Number of parameters.
      method:
        Decoding method, e.g. ``"greedy"``.
      wer / cer:
        Error rates in percent.
      f1:
        Word F1 as a fraction in [0, 1].
      rtf:
        Real-time factor (:func:`real_time_factor`).
    """

    model: str
    params: int
    method: str
    wer: Optional[float] = None
    cer: Optional[float] = None
    f1: Optional[float] = None
    rtf: Optional[float] = None


def format_params(n: int) -> str:
    """A parameter count for reading: ``"12.35 M"``, ``"45.6 k"`` or the plain number."""
    if n >= 1_000_000:
        return f"{n / 1e6:.2f} M"
    if n >= 1_000:
        return f"{n / 1e3:.1f} k"
    return str(n)


def _cell(value: Optional[float], spec: str) -> str:
    return "-" if value is None else format(value, spec)


def results_table(rows: Iterable[ResultRow], error_name: str = "WER") -> str:
    """A markdown table of results, one line per row in the given order.

    Columns: model, params, method, WER (%) (``error_name``: PER for phone units), CER (%)
    with two decimals (left out when no row has one, as for phones), F1 with three, RTF
    with three.
    """
    rows = list(rows)
    with_cer = any(row.cer is not None for row in rows)
    header = ["model", "params", "method", f"{error_name} (%)"] + (["CER (%)"] if with_cer else []) + ["F1", "RTF"]
    align = ["---", "---:", "---"] + ["---:"] * (len(header) - 3)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    for row in rows:
        cells = [row.model, format_params(row.params), row.method, _cell(row.wer, ".2f")]
        cells += [_cell(row.cer, ".2f")] if with_cer else []
        cells += [_cell(row.f1, ".3f"), _cell(row.rtf, ".3f")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def side_by_side_table(tables: Mapping[str, Sequence[ResultRow]], error_name: str = "WER") -> str:
    """One markdown table of the error rates of several parts, a column per part: how a model
    and method do on each condition (dev/test, clean/other) at a glance.

    Args:
      tables:
        Part name -> its rows; the columns follow the mapping's order. Rows are matched by
        (model, method); a row missing from a part shows ``-`` there.
      error_name:
        What the error rate is called (each part's column says ``<part> <error_name> (%)``).
    Returns:
      Columns: model, params, method, then one per part; rows in first-seen order.
    """
    parts = list(tables)
    keys: Dict[Tuple[str, str], ResultRow] = {}
    rates: Dict[Tuple[str, str, str], Optional[float]] = {}
    for part, rows in tables.items():
        for row in rows:
            keys.setdefault((row.model, row.method), row)
            rates[(row.model, row.method, part)] = row.wer
    header = ["model", "params", "method", *(f"{part} {error_name} (%)" for part in parts)]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---", "---:", "---"] + ["---:"] * len(parts)) + " |"]
    for (model, method), row in keys.items():
        cells = [model, format_params(row.params), method]
        cells += [_cell(rates.get((model, method, part)), ".2f") for part in parts]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


#: The suffix stage 5 gives a student run trained with an explicit seed (``..._seed42``).
_SEED_SUFFIX = re.compile(r"_seed\d+$")


def mean_over_seeds(rows: Iterable[ResultRow]) -> List[ResultRow]:
    """One row per model and method, averaged over the runs that differ only in their seed.

    Runs are grouped by model name without its ``_seed<N>`` suffix (the names stage 5 gives)
    and by method; only groups of two or more runs are returned, in first-seen order, named
    ``"<model> (mean of <n> seeds)"``. A metric is the group's mean, or None when any run
    lacks it (a mean over fewer runs would not compare). The parameter count is the group's
    first (seeds do not change it).
    """
    groups: Dict[Tuple[str, str], List[ResultRow]] = defaultdict(list)
    for row in rows:
        groups[(_SEED_SUFFIX.sub("", row.model), row.method)].append(row)

    def mean(values: List[Optional[float]]) -> Optional[float]:
        return None if any(v is None for v in values) else sum(values) / len(values)  # type: ignore[arg-type]

    means = []
    for (model, method), group in groups.items():
        if len(group) < 2:
            continue
        means.append(
            ResultRow(
                model=f"{model} (mean of {len(group)} seeds)",
                params=group[0].params,
                method=method,
                wer=mean([r.wer for r in group]),
                cer=mean([r.cer for r in group]),
                f1=mean([r.f1 for r in group]),
                rtf=mean([r.rtf for r in group]),
            )
        )
    return means
