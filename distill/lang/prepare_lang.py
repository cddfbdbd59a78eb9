"""Stage 3: the lang dir (BPE pieces or phones), from the training transcripts to LG.

:func:`prepare_lang_bpe` writes into ``lang_dir`` (e.g. ``data/lang_bpe_500``):

  ``transcript_words.txt``   the training transcripts, one utterance per line
  ``bpe.model``              the sentencepiece BPE model (``<blk>`` 0, ``<sos/eos>`` 1, ``<unk>`` 2)
  ``tokens.txt``             pieces ``0 .. V-1``, then ``#0``, ``#1``, ... (ids ``V ..``)
  ``words.txt``              ``<eps>`` 0, the words sorted, ``#0``, ``<s>``, ``</s>``
  ``lexicon.txt``            word -> BPE pieces
  ``lexicon_disambig.txt``   the same with disambiguation tokens
  ``L.pt``, ``L_disambig.pt`` k2 lexicon transducers (``Fsa.as_dict()``)
  ``lm_<n>gram.arpa``        the Kneser-Ney word LM
  ``G_<n>_gram.fst.txt``     the LM as an OpenFst text transducer (``#0`` on back-off arcs)
  ``LG.pt``                  the decoding graph (``Fsa.as_dict()``)
  ``.lang_bpe.done``         the done-marker, with the settings

:func:`prepare_lang_phone` writes the same files for phone units, with ``phones.txt``
(the phone inventory, see :mod:`distill.lang.tokenizer`) instead of ``bpe.model``.

Models must take their output size from ``bpe.model`` (``sp.get_piece_size()``, see
:func:`distill.lang.bpe.vocab_size_of`), never from the line count of ``tokens.txt``.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from distill.lang.bpe import prepare_bpe
from distill.lang.graph import prepare_lg
from distill.lang.lexicon import WORDS_NAME, prepare_lexicon
from distill.lang.ngram import prepare_lm
from distill.lang.tokenizer import BLANK, PHONES_NAME, PhoneTokenizer, Tokenizer
from distill.utils.done_marker import INPUTS_KEY, files_fingerprint, is_done, mark_done
from distill.utils.io import Pathlike, atomic_write_text

STAGE_NAME = "lang_bpe"
PHONE_STAGE_NAME = "lang_phone"
TRANSCRIPT_NAME = "transcript_words.txt"
# Bump when the outputs change in a way that makes old lang dirs unusable.
FORMAT_VERSION = 1


def read_transcripts(supervisions_or_text_file: Pathlike) -> List[str]:
    """The non-empty transcripts of a lhotse supervision manifest or a plain text file.

    Args:
      supervisions_or_text_file:
        A supervision manifest (``.jsonl.gz``, ``.jsonl``, ``.json``) or a text file
        (``.txt``, one utterance per line).
    Returns:
      The transcripts, white space normalized, empty ones dropped.
    Raises:
      FileNotFoundError: the file does not exist.
      ValueError: it holds no non-empty transcript.
    """
    path = Path(supervisions_or_text_file)
    if not path.is_file():
        raise FileNotFoundError(
            f"Training transcripts {path} not found: run the manifest stage (stage 1) first"
        )
    if path.suffix == ".txt":
        with path.open(encoding="utf-8") as f:
            texts = [" ".join(line.split()) for line in f]
    else:
        from lhotse import load_manifest, load_manifest_lazy

        lazy = path.name.endswith((".jsonl", ".jsonl.gz"))
        manifest = load_manifest_lazy(path) if lazy else load_manifest(path)
        if manifest is None:
            raise ValueError(f"{path} is not a lhotse manifest")
        texts = []
        for sup in manifest:
            text = getattr(sup, "text", None)
            if text is None and hasattr(sup, "supervisions"):
                raise ValueError(f"{path} is a cut manifest; pass the supervisions manifest")
            texts.append(" ".join((text or "").split()))
    texts = [t for t in texts if t]
    if not texts:
        raise ValueError(f"{path} has no non-empty transcripts")
    return texts


def prepare_lang_bpe(
    supervisions_or_text_file: Pathlike,
    lang_dir: Pathlike,
    vocab_size: int,
    lm_order: int = 3,
) -> Path:
    """Make the BPE lang dir: BPE model, lexicon, L, L_disambig, n-gram LM, G and LG.

    Skips when ``lang_dir`` was already completed with the same settings.

    Args:
      supervisions_or_text_file:
        The training part's lhotse supervision manifest (``*.jsonl.gz``), or a text file
        of transcripts (``.txt``).
      lang_dir:
        The output directory, e.g. ``data/lang_bpe_500``.
      vocab_size:
        The requested number of BPE pieces (a tiny text may give fewer: see ``bpe.model``).
      lm_order:
        The order of the word n-gram LM.
    Returns:
      ``lang_dir``.
    Raises:
      SettingsChangedError: ``lang_dir`` was completed with other settings.
      FileNotFoundError, ValueError: the input is missing or holds no transcripts.
    """
    if vocab_size < 4:
        raise ValueError(f"vocab_size must be at least 4, got {vocab_size}")
    return _prepare_lang(
        supervisions_or_text_file, lang_dir, lm_order, STAGE_NAME, {"vocab_size": vocab_size},
        lambda transcript_file: prepare_bpe(transcript_file, lang_dir, vocab_size),
    )


def prepare_lang_phone(
    supervisions_or_text_file: Pathlike, lang_dir: Pathlike, lm_order: int = 2, phone_set_file: Optional[Pathlike] = None
) -> Path:
    """Make the phone lang dir: phone inventory, identity lexicon, phone n-gram LM, G and LG.

    The transcripts are phone sequences (e.g. TIMIT's, folded to 39 phones by stage 1). The
    phones become the transducer's tokens (``<blk>`` 0, then the phones sorted, in
    ``phones.txt``); each phone is also a "word" of ``words.txt`` whose pronunciation is
    itself, so the n-gram LM over words is a phone LM and LG decodes phone sequences.
    Files: those of :func:`prepare_lang_bpe` with ``phones.txt`` instead of ``bpe.model``.

    Args:
      supervisions_or_text_file:
        The training part's supervision manifest (phone sequences as text) or a ``.txt``.
      lang_dir:
        The output directory, e.g. ``data/lang_phone``.
      lm_order:
        The order of the phone n-gram LM (a bigram is the usual TIMIT choice).
      phone_set_file:
        The corpus's phone set, one phone per line (stage 1 writes TIMIT's); without it the
        phones of the training transcripts. With it, dev and test phones that the training
        part lacks are still tokens, and a training phone outside the set is an error.
    Returns:
      ``lang_dir``.
    """

    def make_phones(transcript_file: Path) -> PhoneTokenizer:
        seen = {p for line in transcript_file.read_text(encoding="utf-8").splitlines() for p in line.split()}
        phones = sorted(seen)
        if phone_set_file is not None:
            phones = sorted(set(Path(phone_set_file).read_text(encoding="utf-8").split()))
            outside = sorted(seen - set(phones))
            if outside:
                raise ValueError(f"Training transcripts use phones that {phone_set_file} lacks: {' '.join(outside)}")
        tokenizer = PhoneTokenizer(phones)
        tokenizer.save(Path(lang_dir) / PHONES_NAME)
        logging.info(f"Phone inventory: {len(phones)} phones (+ {BLANK}) -> {Path(lang_dir) / PHONES_NAME}")
        return tokenizer

    if phone_set_file is not None and not Path(phone_set_file).is_file():
        raise FileNotFoundError(f"Phone set {phone_set_file} not found: run the manifest stage (stage 1) first")
    unit_settings = {"phone_set": str(Path(phone_set_file).resolve()) if phone_set_file else None}
    return _prepare_lang(supervisions_or_text_file, lang_dir, lm_order, PHONE_STAGE_NAME, unit_settings, make_phones)


def _prepare_lang(
    supervisions_or_text_file: Pathlike,
    lang_dir: Pathlike,
    lm_order: int,
    stage_name: str,
    unit_settings: Dict[str, Any],
    make_tokenizer: Callable[[Path], Tokenizer],
) -> Path:
    """The steps every lang dir shares, around the unit-specific ``make_tokenizer``.

    Writes the transcripts, makes the tokenizer from them, then the lexicon, L, L_disambig,
    the n-gram LM, G and LG; the done-marker (with the settings) comes last.
    """
    lang_dir = Path(lang_dir)
    source = Path(supervisions_or_text_file)
    settings = {"input": str(source.resolve()), **unit_settings, "lm_order": lm_order, "format_version": FORMAT_VERSION,
                INPUTS_KEY: files_fingerprint([source])}
    if is_done(lang_dir, stage_name, settings):
        logging.info(f"{lang_dir} is complete (done-marker present); skipping")
        return lang_dir
    if lm_order < 1:
        raise ValueError(f"lm_order must be at least 1, got {lm_order}")

    texts = read_transcripts(source)
    transcript_file = lang_dir / TRANSCRIPT_NAME
    atomic_write_text(transcript_file, "".join(f"{t}\n" for t in texts))
    logging.info(f"Wrote {len(texts)} transcripts from {source} to {transcript_file}")

    tokenizer = make_tokenizer(transcript_file)
    prepare_lexicon(tokenizer, transcript_file, lang_dir)
    g_file = prepare_lm(transcript_file, lang_dir, lang_dir / WORDS_NAME, lm_order)
    prepare_lg(lang_dir, g_file)

    mark_done(lang_dir, stage_name, settings)
    logging.info(f"Lang dir {lang_dir} is ready")
    return lang_dir
