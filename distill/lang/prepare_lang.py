"""Stage 3: the BPE lang dir, from the training transcripts to LG.

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

Models must take their output size from ``bpe.model`` (``sp.get_piece_size()``, see
:func:`distill.lang.bpe.vocab_size_of`), never from the line count of ``tokens.txt``.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Union

from distill.lang.bpe import prepare_bpe
from distill.lang.graph import prepare_lg
from distill.lang.lexicon import WORDS_NAME, prepare_lexicon
from distill.lang.ngram import prepare_lm
from distill.utils.done_marker import is_done, mark_done
from distill.utils.io import atomic_write_text

Pathlike = Union[str, Path]

STAGE_NAME = "lang_bpe"
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
    lang_dir = Path(lang_dir)
    source = Path(supervisions_or_text_file)
    settings = {
        "input": str(source.resolve()),
        "vocab_size": vocab_size,
        "lm_order": lm_order,
        "format_version": FORMAT_VERSION,
    }
    if is_done(lang_dir, STAGE_NAME, settings):
        logging.info(f"{lang_dir} is complete (done-marker present); skipping")
        return lang_dir
    if vocab_size < 4:
        raise ValueError(f"vocab_size must be at least 4, got {vocab_size}")
    if lm_order < 1:
        raise ValueError(f"lm_order must be at least 1, got {lm_order}")

    texts = read_transcripts(source)
    transcript_file = lang_dir / TRANSCRIPT_NAME
    atomic_write_text(transcript_file, "".join(f"{t}\n" for t in texts))
    logging.info(f"Wrote {len(texts)} transcripts from {source} to {transcript_file}")

    sp = prepare_bpe(transcript_file, lang_dir, vocab_size)
    prepare_lexicon(sp, transcript_file, lang_dir)
    g_file = prepare_lm(transcript_file, lang_dir, lang_dir / WORDS_NAME, lm_order)
    prepare_lg(lang_dir, g_file)

    mark_done(lang_dir, STAGE_NAME, settings)
    logging.info(f"Lang dir {lang_dir} is ready")
    return lang_dir
