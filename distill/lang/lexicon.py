"""The BPE lexicon of the lang dir (stage 3): word table, lexicon, disambiguation, L FSTs.

Files written into the lang dir by :func:`prepare_lexicon`:

  - ``words.txt``: ``<eps> 0``, the words of the transcripts sorted, then ``#0``, ``<s>``,
    ``</s>``. Ids at or above that of ``#0`` are not real words.
  - ``lexicon.txt``: ``WORD piece1 piece2 ...``, the word's BPE segmentation.
  - ``lexicon_disambig.txt``: the same with ``#1``, ``#2``, ... appended to pronunciations
    that are a prefix of another one or shared by several words.
  - ``tokens.txt``: the BPE pieces with ids ``0 .. V-1`` (``<blk>`` is 0), then the
    disambiguation tokens ``#0``, ``#1``, ... with ids ``V, V+1, ...``. A model's vocabulary
    size is ``V = sp.get_piece_size()`` of ``bpe.model``, not the line count of this file.
  - ``L.pt``, ``L_disambig.pt``: k2 transducers from tokens (``labels``) to words
    (``aux_labels``), saved with ``Fsa.as_dict()``; load them with
    ``k2.Fsa.from_dict(torch.load(path))``.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Tuple

import k2

from distill.lang.bpe import TOKENS_NAME, bpe_token_table, write_tokens
from distill.lang.tokenizer import Tokenizer
from distill.utils.io import Pathlike, atomic_save_torch, atomic_write_text

Lexicon = List[Tuple[str, List[str]]]

EPS = "<eps>"
WORD_DISAMBIG = "#0"
BOS = "<s>"
EOS = "</s>"
RESERVED_WORDS = (EPS, WORD_DISAMBIG, BOS, EOS)

WORDS_NAME = "words.txt"
LEXICON_NAME = "lexicon.txt"
LEXICON_DISAMBIG_NAME = "lexicon_disambig.txt"
L_NAME = "L.pt"
L_DISAMBIG_NAME = "L_disambig.pt"


def read_transcript_words(transcript_file: Pathlike) -> List[str]:
    """The distinct words of a transcript file, sorted.

    Args:
      transcript_file:
        One utterance per line, words separated by white space.
    Returns:
      The sorted list of distinct words.
    """
    transcript_file = Path(transcript_file)
    words = set()
    with transcript_file.open(encoding="utf-8") as f:
        for line in f:
            words.update(line.split())
    bad = sorted(w for w in words if w in RESERVED_WORDS)
    if bad:
        raise ValueError(f"{transcript_file} contains reserved symbol(s) {bad} as words")
    if not words:
        raise ValueError(f"{transcript_file} has no words")
    return sorted(words)


def make_word_table(words: Sequence[str]) -> Dict[str, int]:
    """The word symbol table: ``<eps>`` 0, the words in the given order, ``#0``, ``<s>``, ``</s>``.

    Args:
      words:
        The distinct real words (normally sorted).
    Returns:
      A dict from word to id.
    """
    table = {EPS: 0}
    for w in words:
        if w in table or w in RESERVED_WORDS:
            raise ValueError(f"Word {w!r} is duplicated or reserved")
        table[w] = len(table)
    for sym in (WORD_DISAMBIG, BOS, EOS):
        table[sym] = len(table)
    return table


def write_symbol_table(table: Dict[str, int], path: Pathlike) -> None:
    """Write a ``<symbol> <id>`` table sorted by id, atomically.

    Args:
      table:
        Symbol to id.
      path:
        The output file.
    """
    write_tokens(sorted(table.items(), key=lambda kv: kv[1]), path)


def read_symbol_table(path: Pathlike) -> Dict[str, int]:
    """Read a ``<symbol> <id>`` table.

    Args:
      path:
        A file such as ``words.txt`` or ``tokens.txt``.
    Returns:
      Symbol to id.
    """
    table: Dict[str, int] = {}
    with Path(path).open(encoding="utf-8") as f:
        for num, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2:
                raise ValueError(f"{path}:{num}: expected '<symbol> <id>', got {line!r}")
            table[fields[0]] = int(fields[1])
    return table


def generate_lexicon(tokenizer: Tokenizer, words: Iterable[str]) -> Lexicon:
    """Segment each word into tokens (BPE pieces; for phone units each word is one phone).

    A word that does not decode back to itself (sentencepiece's NFKC normalization can
    change some characters) is kept, with a warning.

    Args:
      tokenizer:
        The BPE model or the phone inventory.
      words:
        The words.
    Returns:
      ``[(word, [piece, ...]), ...]`` in the order of ``words``.
    """
    words = list(words)
    pieces_list = tokenizer.encode(words, out_type=str)
    lexicon: Lexicon = []
    for word, pieces in zip(words, pieces_list):
        if not pieces:
            raise ValueError(f"BPE model gives no pieces for word {word!r}")
        decoded = tokenizer.decode(pieces)
        if decoded != word:
            logging.warning(f"Word {word!r} decodes back from its BPE pieces as {decoded!r}")
        lexicon.append((word, list(pieces)))
    return lexicon


def add_disambig_symbols(lexicon: Lexicon) -> Tuple[Lexicon, int]:
    """Make the lexicon's pronunciations uniquely decodable with ``#1``, ``#2``, ...

    A pronunciation needs a disambiguation symbol when it is a proper prefix of another
    word's pronunciation, or when several words share it. Such words get ``#1``, ``#2``,
    ... appended, numbered per pronunciation in lexicon order, so that no two
    pronunciations are equal and none is a prefix of another. ``#0`` is reserved for the
    back-off arcs of G and never appears in the lexicon.

    Args:
      lexicon:
        ``[(word, [token, ...]), ...]``.
    Returns:
      A pair:
        - the lexicon with disambiguation symbols appended where needed,
        - the largest disambiguation index used (0 when none was needed), so the
          disambiguation tokens are ``#0 .. #max``.
    """
    count: Dict[Tuple[str, ...], int] = defaultdict(int)
    for _, pron in lexicon:
        count[tuple(pron)] += 1

    is_proper_prefix = set()
    for _, pron in lexicon:
        for end in range(1, len(pron)):
            is_proper_prefix.add(tuple(pron[:end]))

    last_used: Dict[Tuple[str, ...], int] = defaultdict(int)
    max_disambig = 0
    result: Lexicon = []
    for word, pron in lexicon:
        key = tuple(pron)
        if key in is_proper_prefix or count[key] > 1:
            last_used[key] += 1
            index = last_used[key]
            max_disambig = max(max_disambig, index)
            result.append((word, list(pron) + [f"#{index}"]))
        else:
            result.append((word, list(pron)))
    return result, max_disambig


def write_lexicon(lexicon: Lexicon, path: Pathlike) -> None:
    """Write ``WORD tok1 tok2 ...`` lines atomically.

    Args:
      lexicon:
        ``[(word, [token, ...]), ...]``.
      path:
        The output file.
    """
    atomic_write_text(path, "".join(f"{w} {' '.join(pron)}\n" for w, pron in lexicon))


def read_lexicon(path: Pathlike) -> Lexicon:
    """Read a lexicon written by :func:`write_lexicon`.

    Args:
      path:
        ``lexicon.txt`` or ``lexicon_disambig.txt``.
    Returns:
      ``[(word, [token, ...]), ...]``.
    """
    lexicon: Lexicon = []
    with Path(path).open(encoding="utf-8") as f:
        for num, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < 2:
                raise ValueError(f"{path}:{num}: word without pronunciation: {line!r}")
            lexicon.append((fields[0], fields[1:]))
    return lexicon


def lexicon_to_fst(
    lexicon: Lexicon,
    token2id: Dict[str, int],
    word2id: Dict[str, int],
    need_self_loops: bool = False,
) -> k2.Fsa:
    """Build the lexicon transducer L (tokens -> words), with no optional silence.

    State 0 is both the start and the loop state. A word ``w`` with pronunciation
    ``t1 .. tn`` is a path from state 0 back to state 0 whose first arc is ``t1:w`` and
    whose other arcs are ``ti:<eps>``. All scores are 0. The final state is reached from
    state 0 by the usual k2 arc with label -1.

    Args:
      lexicon:
        ``[(word, [token, ...]), ...]``; every word and token must be in the tables.
      token2id:
        Token symbol table (``tokens.txt``).
      word2id:
        Word symbol table (``words.txt``).
      need_self_loops:
        If True (for L_disambig), add the self-loop ``#0:#0`` on state 0, which passes
        G's back-off disambiguation symbol through the composition with G.
    Returns:
      The transducer: ``labels`` are token ids, ``aux_labels`` word ids.
    """
    loop_state = 0
    next_state = 1
    loop_arcs: List[Tuple[int, int, int, int]] = []
    other_arcs: List[Tuple[int, int, int, int]] = []
    for word, pron in lexicon:
        if not pron:
            raise ValueError(f"Word {word!r} has an empty pronunciation")
        try:
            word_id = word2id[word]
            token_ids = [token2id[t] for t in pron]
        except KeyError as e:
            raise ValueError(f"Lexicon entry {word} {' '.join(pron)}: unknown symbol {e}") from None
        src = loop_state
        for i, tok in enumerate(token_ids):
            dest = loop_state if i == len(token_ids) - 1 else next_state
            if dest != loop_state:
                next_state += 1
            arc = (src, dest, tok, word_id if i == 0 else 0)
            if src == loop_state:
                loop_arcs.append(arc)
            else:
                other_arcs.append(arc)
            src = dest

    if need_self_loops:
        loop_arcs.append((loop_state, loop_state, token2id[WORD_DISAMBIG], word2id[WORD_DISAMBIG]))

    final_state = next_state
    # k2 wants the arcs grouped by source state: state 0 (including its arc to the final
    # state) first, then the inner states, which have one arc each, in order.
    lines = [f"{s} {d} {lab} {aux} 0" for s, d, lab, aux in loop_arcs]
    lines.append(f"{loop_state} {final_state} -1 -1 0")
    lines.extend(f"{s} {d} {lab} {aux} 0" for s, d, lab, aux in sorted(other_arcs))
    lines.append(f"{final_state}")
    return k2.Fsa.from_str("\n".join(lines), acceptor=False)


def prepare_lexicon(
    tokenizer: Tokenizer,
    transcript_file: Pathlike,
    lang_dir: Pathlike,
) -> Tuple[Dict[str, int], Dict[str, int]]:
    """Write the word table, lexicons, extended token table and L FSTs into ``lang_dir``.

    Args:
      tokenizer:
        The tokenizer (``bpe.model`` or ``phones.txt`` of ``lang_dir``).
      transcript_file:
        The training transcripts: their words make the vocabulary.
      lang_dir:
        The lang dir.
    Returns:
      A pair ``(token2id, word2id)``, the tables written to ``tokens.txt`` and ``words.txt``.
    """
    lang_dir = Path(lang_dir)
    words = read_transcript_words(transcript_file)
    word2id = make_word_table(words)
    write_symbol_table(word2id, lang_dir / WORDS_NAME)

    lexicon = generate_lexicon(tokenizer, words)
    write_lexicon(lexicon, lang_dir / LEXICON_NAME)
    lexicon_disambig, max_disambig = add_disambig_symbols(lexicon)
    write_lexicon(lexicon_disambig, lang_dir / LEXICON_DISAMBIG_NAME)

    token2id = dict(bpe_token_table(tokenizer))
    num_pieces = len(token2id)
    for i in range(max_disambig + 1):
        sym = f"#{i}"
        if sym in token2id:
            raise ValueError(f"BPE piece {sym!r} clashes with a disambiguation token")
        token2id[sym] = num_pieces + i
    write_symbol_table(token2id, lang_dir / TOKENS_NAME)
    logging.info(
        f"Lexicon: {len(words)} words, {num_pieces} tokens, "
        f"disambiguation tokens #0..#{max_disambig} (ids {num_pieces}..{num_pieces + max_disambig})"
    )

    L = lexicon_to_fst(lexicon, token2id, word2id)
    L_disambig = lexicon_to_fst(lexicon_disambig, token2id, word2id, need_self_loops=True)
    atomic_save_torch(L.as_dict(), lang_dir / L_NAME)
    atomic_save_torch(L_disambig.as_dict(), lang_dir / L_DISAMBIG_NAME)
    logging.info(
        f"L: {L.shape[0]} states, {L.num_arcs} arcs; "
        f"L_disambig: {L_disambig.shape[0]} states, {L_disambig.num_arcs} arcs"
    )
    return token2id, word2id
