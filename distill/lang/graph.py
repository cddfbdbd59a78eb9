"""Compiling the LG decoding graph of the lang dir (stage 3).

LG maps BPE token ids (``labels``) to word ids (``aux_labels``, a ragged tensor: an arc
carries zero or more words) and holds the n-gram LM scores. It is built from
``L_disambig.pt`` and ``G_<n>_gram.fst.txt``:

  1. arc-sort L_disambig and G; compose them (L's words matched against G's input);
     G's back-off arcs have ``#0`` on their input, matched by L_disambig's ``#0:#0``
     self-loop, so the back-off stays visible as token ``#0`` while determinizing;
  2. connect and determinize (the disambiguation tokens make this possible);
  3. replace the disambiguation tokens (ids >= that of token ``#0``) by epsilon (0), and
     the non-words (ids >= that of word ``#0``: ``#0``, ``<s>``, ``</s>``) in the
     aux labels by 0;
  4. remove epsilons, connect, drop the 0s from the aux labels, arc-sort.

The result is saved as ``LG.pt`` (``Fsa.as_dict()``); load it with
``k2.Fsa.from_dict(torch.load(path))``.
"""
from __future__ import annotations

import logging
from pathlib import Path

import k2
import torch

from distill.lang.bpe import TOKENS_NAME
from distill.lang.lexicon import L_DISAMBIG_NAME, WORD_DISAMBIG, WORDS_NAME, read_symbol_table
from distill.utils.io import Pathlike, atomic_save_torch

LG_NAME = "LG.pt"


def load_fsa(path: Pathlike) -> k2.Fsa:
    """Load an FSA saved with ``atomic_save_torch(fsa.as_dict(), path)``.

    Args:
      path:
        A ``.pt`` file such as ``L.pt`` or ``LG.pt``.
    Returns:
      The FSA, on CPU.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"FSA file {path} not found: run the lang stage (stage 3)")
    return k2.Fsa.from_dict(torch.load(path, map_location="cpu"))


def _describe(fsa: k2.Fsa) -> str:
    return f"{fsa.shape[0]} states, {fsa.num_arcs} arcs"


def compile_lg(
    L_disambig: k2.Fsa,
    G: k2.Fsa,
    first_token_disambig_id: int,
    first_word_disambig_id: int,
) -> k2.Fsa:
    """Compose, determinize and clean up L_disambig o G.

    Args:
      L_disambig:
        The lexicon transducer with disambiguation tokens and the ``#0:#0`` self-loop.
      G:
        The LM transducer (``labels``: input words with ``#0`` on back-off arcs,
        ``aux_labels``: output words).
      first_token_disambig_id:
        The id of token ``#0``; all tokens from it on are disambiguation tokens.
      first_word_disambig_id:
        The id of word ``#0``; all words from it on (``#0``, ``<s>``, ``</s>``) are removed.
    Returns:
      LG, arc-sorted, with ragged ``aux_labels`` and no disambiguation symbols.
    """
    L_disambig = k2.arc_sort(L_disambig)
    G = k2.arc_sort(G)

    logging.info(f"Composing L_disambig ({_describe(L_disambig)}) and G ({_describe(G)})")
    LG = k2.compose(L_disambig, G)
    logging.info(f"LG after composition: {_describe(LG)}")
    LG = k2.connect(LG)
    logging.info(f"LG after connect: {_describe(LG)}")

    logging.info("Determinizing LG")
    LG = k2.determinize(LG)
    LG = k2.connect(LG)
    logging.info(f"LG after determinize and connect: {_describe(LG)}")

    labels = LG.labels.clone()
    labels[labels >= first_token_disambig_id] = 0
    LG.labels = labels
    if isinstance(LG.aux_labels, k2.RaggedTensor):
        aux_values = LG.aux_labels.values
        aux_values[aux_values >= first_word_disambig_id] = 0
    else:
        aux = LG.aux_labels.clone()
        aux[aux >= first_word_disambig_id] = 0
        LG.aux_labels = aux

    LG = k2.remove_epsilon(LG)
    logging.info(f"LG after removing epsilons: {_describe(LG)}")
    LG = k2.connect(LG)
    if isinstance(LG.aux_labels, k2.RaggedTensor):
        LG.aux_labels = LG.aux_labels.remove_values_eq(0)
    LG = k2.arc_sort(LG)
    logging.info(f"LG: {_describe(LG)}")
    return LG


def prepare_lg(lang_dir: Pathlike, g_fst_file: Pathlike) -> Path:
    """Build ``<lang_dir>/LG.pt`` from ``L_disambig.pt``, the G text file and the tables.

    Args:
      lang_dir:
        The lang dir with ``L_disambig.pt``, ``tokens.txt`` and ``words.txt``.
      g_fst_file:
        G in OpenFst text form (``G_<n>_gram.fst.txt``).
    Returns:
      The path of ``LG.pt``.
    """
    lang_dir = Path(lang_dir)
    token2id = read_symbol_table(lang_dir / TOKENS_NAME)
    word2id = read_symbol_table(lang_dir / WORDS_NAME)
    L_disambig = load_fsa(lang_dir / L_DISAMBIG_NAME)
    G = k2.Fsa.from_openfst(Path(g_fst_file).read_text(encoding="utf-8"), acceptor=False)
    LG = compile_lg(
        L_disambig,
        G,
        first_token_disambig_id=token2id[WORD_DISAMBIG],
        first_word_disambig_id=word2id[WORD_DISAMBIG],
    )
    out = lang_dir / LG_NAME
    atomic_save_torch(LG.as_dict(), out)
    logging.info(f"Wrote {out}")
    return out
