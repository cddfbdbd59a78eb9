"""Training a sentencepiece BPE model for the lang dir (stage 3).

The model follows icefall's conventions, which the rest of the recipe relies on:

  - ``<blk>`` (the CTC/transducer blank) has id 0,
  - ``<sos/eos>`` has id 1,
  - ``<unk>`` has id 2,
  - there are no separate BOS/EOS pieces.

The vocabulary size a model must use is ``sp.get_piece_size()`` of ``bpe.model``
(see :func:`vocab_size_of`), **not** the number of lines of ``tokens.txt``: the lexicon
stage appends the disambiguation tokens ``#0``, ``#1``, ... after the real tokens there.
"""
from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import List, Tuple

import sentencepiece as spm

from distill.utils.io import Pathlike, atomic_path, atomic_write_text

BLANK = "<blk>"
SOS_EOS = "<sos/eos>"
UNK = "<unk>"
BPE_MODEL_NAME = "bpe.model"
TOKENS_NAME = "tokens.txt"



def train_bpe_model(
    transcript_file: Pathlike,
    model_file: Pathlike,
    vocab_size: int,
) -> spm.SentencePieceProcessor:
    """Train a sentencepiece BPE model on a text file and write it atomically.

    On a tiny corpus the requested vocabulary can be larger than the number of pieces the
    text allows; the limit is then treated as a soft one (sentencepiece's
    ``hard_vocab_limit=False``) and a warning reports the size actually obtained.

    Args:
      transcript_file:
        Text to train on: one utterance per line, words separated by spaces.
      model_file:
        Where to write the model (e.g. ``data/lang_bpe_500/bpe.model``).
      vocab_size:
        The requested number of pieces, including ``<blk>``, ``<sos/eos>`` and ``<unk>``.
    Returns:
      The trained model, loaded.
    """
    transcript_file = Path(transcript_file)
    if vocab_size < 4:
        raise ValueError(f"vocab_size must be at least 4 (3 special pieces + 1), got {vocab_size}")
    if not transcript_file.is_file():
        raise FileNotFoundError(f"BPE training text {transcript_file} not found")

    writer = io.BytesIO()
    logging.info(f"Training a BPE model of {vocab_size} pieces on {transcript_file}")
    # Every character of the text needs a piece of its own (character_coverage 1.0), plus the
    # 3 special ones: say so before sentencepiece stops with "Vocabulary size is smaller
    # than required_chars".
    chars = sorted({c for c in transcript_file.read_text(encoding="utf-8") if not c.isspace()})
    if vocab_size < len(chars) + 3:
        raise ValueError(
            f"--vocab-size {vocab_size} is too small for the text of {transcript_file}: its {len(chars)} distinct "
            f"characters ({''.join(chars[:60])}{'...' if len(chars) > 60 else ''}) and 3 special pieces need at least "
            f"{len(chars) + 3}. Raise --vocab-size, or normalize the transcripts (stage 1 lists characters outside "
            "the recipe's normalization)")
    spm.SentencePieceTrainer.train(
        input=str(transcript_file),
        model_writer=writer,
        vocab_size=vocab_size,
        model_type="bpe",
        character_coverage=1.0,
        input_sentence_size=100_000_000,
        shuffle_input_sentence=True,
        split_digits=True,
        user_defined_symbols=[BLANK, SOS_EOS],
        unk_id=2,
        bos_id=-1,
        eos_id=-1,
        hard_vocab_limit=False,
        minloglevel=1,
    )
    proto = writer.getvalue()
    sp = spm.SentencePieceProcessor(model_proto=proto)
    _check_special_ids(sp, transcript_file)
    if sp.get_piece_size() < vocab_size:
        logging.warning(
            f"The text in {transcript_file} only supports {sp.get_piece_size()} BPE pieces; "
            f"the model has {sp.get_piece_size()} instead of the requested {vocab_size}. "
            f"Models must take their vocabulary size from {model_file} (sp.get_piece_size())."
        )
    with atomic_path(model_file) as tmp:
        tmp.write_bytes(proto)
    logging.info(f"Wrote {model_file} ({sp.get_piece_size()} pieces)")
    return sp


def _check_special_ids(sp: spm.SentencePieceProcessor, source: Path) -> None:
    """Raise when the special pieces are not at ids 0, 1, 2."""
    for want_id, piece in enumerate((BLANK, SOS_EOS, UNK)):
        got = sp.piece_to_id(piece)
        if got != want_id:
            raise RuntimeError(
                f"BPE model trained on {source} has {piece} at id {got}, expected {want_id}"
            )


def load_bpe_model(model_file: Pathlike) -> spm.SentencePieceProcessor:
    """Load a sentencepiece model.

    Args:
      model_file:
        Path to ``bpe.model``.
    Returns:
      The loaded model.
    """
    model_file = Path(model_file)
    if not model_file.is_file():
        raise FileNotFoundError(f"BPE model {model_file} not found: run the lang stage (stage 3)")
    return spm.SentencePieceProcessor(model_file=str(model_file))


def vocab_size_of(model_file: Pathlike) -> int:
    """The vocabulary size a model must use: the number of BPE pieces.

    Args:
      model_file:
        Path to ``bpe.model``.
    Returns:
      ``sp.get_piece_size()``, which excludes the disambiguation tokens of ``tokens.txt``.
    """
    return load_bpe_model(model_file).get_piece_size()


def bpe_token_table(sp: spm.SentencePieceProcessor) -> List[Tuple[str, int]]:
    """The model's pieces with their ids, ``0 .. V-1``.

    Args:
      sp:
        A loaded sentencepiece model.
    Returns:
      ``[(piece, id), ...]`` in id order.
    """
    return [(sp.id_to_piece(i), i) for i in range(sp.get_piece_size())]


def write_tokens(entries: List[Tuple[str, int]], tokens_file: Pathlike) -> None:
    """Write a k2/Kaldi symbol table (``<symbol> <id>`` per line) atomically.

    Args:
      entries:
        ``[(symbol, id), ...]``; written in the given order.
      tokens_file:
        The output path.
    """
    atomic_write_text(tokens_file, "".join(f"{sym} {idx}\n" for sym, idx in entries))


def prepare_bpe(transcript_file: Pathlike, lang_dir: Pathlike, vocab_size: int) -> spm.SentencePieceProcessor:
    """Train ``<lang_dir>/bpe.model`` and write ``<lang_dir>/tokens.txt`` (ids ``0 .. V-1``).

    The lexicon stage later rewrites ``tokens.txt`` with the disambiguation tokens
    ``#0``, ``#1``, ... appended after id ``V-1``.

    Args:
      transcript_file:
        Training transcripts, one utterance per line.
      lang_dir:
        The lang dir to write into.
      vocab_size:
        The requested number of BPE pieces.
    Returns:
      The trained model, loaded.
    """
    lang_dir = Path(lang_dir)
    sp = train_bpe_model(transcript_file, lang_dir / BPE_MODEL_NAME, vocab_size)
    write_tokens(bpe_token_table(sp), lang_dir / TOKENS_NAME)
    return sp
