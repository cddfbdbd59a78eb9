"""Decoding methods by name: each turns encoder output into words, for any transducer.

Methods (names as icefall spells them):

* ``greedy_search``: :func:`distill.decode.greedy.greedy_search`;
* ``modified_beam_search``: :func:`distill.decode.beam_search.modified_beam_search`
  (``beam_size``);
* ``fast_beam_search``: k2 decoding streams over a trivial graph, best path
  (``beam``, ``max_states``, ``max_contexts``);
* ``fast_beam_search_nbest_LG``: the same over the stage-3 ``LG.pt`` with its own pruning
  (``lg_beam``, ``lg_max_states``, ``lg_max_contexts``), n-best word sequences rescored
  (``ngram_lm_scale``, ``num_paths``, ``nbest_scale``); words come from LG's aux_labels
  and ``words.txt``, not from the BPE model.

The two k2 methods prune differently by default, as icefall's results do: the trivial
graph with icefall's narrow setting (beam 4, 4 contexts, 8 states), LG with its wide one
(beam 20, 8 contexts, 64 states). Chosen on the demo dev part (``RESULTS.md``): the narrow
setting changed trivial-graph WERs by under 1% absolute (the students' went down) and made
decoding 1.4x (teacher) to 2.4x (students) faster, but cost LG 20% absolute: LG's n-gram
scores spread the hypotheses over many more states.

The LSTM predictor's history in the k2 methods is truncated to ``lstm_context_size`` tokens
(see :mod:`distill.decode.fast_beam_search`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

import k2
import torch

from distill.decode.beam_search import modified_beam_search
from distill.decode.fast_beam_search import (
    DEFAULT_LSTM_CONTEXT_SIZE,
    fast_beam_search_nbest_LG,
    fast_beam_search_one_best,
    trivial_graph,
)
from distill.decode.greedy import greedy_search
from distill.lang.tokenizer import Tokenizer
from distill.models.transducer import Transducer

METHODS = ("greedy_search", "modified_beam_search", "fast_beam_search", "fast_beam_search_nbest_LG")
#: Other names accepted for a method (``greedy``: what ``local/transcribe.py`` called it).
METHOD_ALIASES = {"greedy": "greedy_search"}

#: ``fn(encoder_out (N, T, C), encoder_out_lens (N,)) -> words of each utterance``.
WordDecoder = Callable[[torch.Tensor, torch.Tensor], List[List[str]]]


@dataclass
class SearchOptions:
    """Options of the decoding methods (each method reads the ones it needs).

    Attributes:
      beam_size: hypotheses kept per frame by modified beam search.
      beam / max_states / max_contexts: fast_beam_search pruning (log-prob beam, states and
        distinct predictor contexts kept per utterance and frame).
      lg_beam / lg_max_states / lg_max_contexts: the same for fast_beam_search_nbest_LG.
      ngram_lm_scale: weight of LG's n-gram scores in fast_beam_search_nbest_LG.
      num_paths / nbest_scale: paths sampled from the LG lattice, and the scale of the
        lattice scores when sampling.
      lstm_context_size: predictor history of the k2 methods for an LSTM predictor.
    """

    beam_size: int = 4
    beam: float = 4.0
    max_states: int = 8
    max_contexts: int = 4
    lg_beam: float = 20.0
    lg_max_states: int = 64
    lg_max_contexts: int = 8
    ngram_lm_scale: float = 0.01
    num_paths: int = 200
    nbest_scale: float = 0.5
    lstm_context_size: int = DEFAULT_LSTM_CONTEXT_SIZE


#: The methods whose result is token ids, ``fn(model, encoder_out, encoder_out_lens, options)``
#: (the k2 methods are built per model and lang dir by :func:`make_word_decoder`).
TOKEN_SEARCHES: Dict[str, Callable[[Transducer, torch.Tensor, torch.Tensor, SearchOptions], List[List[int]]]] = {
    "greedy_search": lambda model, enc, lens, options: greedy_search(model, enc, lens),
    "modified_beam_search": lambda model, enc, lens, options: modified_beam_search(model, enc, lens, beam=options.beam_size),
}


def resolve_method(name: str) -> str:
    """The registered name of method ``name`` (an alias is mapped); ``ValueError`` naming the
    methods when it is unknown."""
    name = METHOD_ALIASES.get(name, name)
    if name not in METHODS:
        raise ValueError(f"Unknown decoding method {name!r}; choose one of {', '.join(METHODS)}")
    return name


def method_tag(method: str, options: SearchOptions) -> str:
    """A file-name tag with the method and the options that change its result."""
    if method == "modified_beam_search":
        return f"{method}_beam_size_{options.beam_size}"
    if method == "fast_beam_search":
        return f"{method}_beam_{options.beam:g}_max_contexts_{options.max_contexts}_max_states_{options.max_states}"
    if method == "fast_beam_search_nbest_LG":
        return (
            f"{method}_beam_{options.lg_beam:g}_max_contexts_{options.lg_max_contexts}"
            f"_max_states_{options.lg_max_states}_num_paths_{options.num_paths}_nbest_scale_{options.nbest_scale:g}_ngram_lm_scale_{options.ngram_lm_scale:g}"
        )
    return method


def load_LG(lang_dir: Path, device: torch.device) -> k2.Fsa:
    """``lang_dir/LG.pt`` (stage 3) on ``device``."""
    path = Path(lang_dir) / "LG.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run stage 3 (the lang dir) of the recipe first")
    return k2.Fsa.from_dict(torch.load(path, map_location=device))


def make_word_decoder(
    method: str,
    model: Transducer,
    tokenizer: Tokenizer,
    lang_dir: Optional[Path],
    options: SearchOptions,
) -> WordDecoder:
    """The decoding function of ``method`` for ``model``: encoder output -> words.

    Args:
      method: one of :data:`METHODS` (or an alias of :data:`METHOD_ALIASES`).
      model: the transducer (eval mode).
      tokenizer: the tokenizer the transducer was trained with (BPE model or phone inventory).
      lang_dir: the lang dir (``LG.pt`` and ``words.txt`` for the LG method; None for the others).
      options: the search options.
    """
    method = resolve_method(method)
    device = next(model.parameters()).device

    def from_tokens(token_ids: List[List[int]]) -> List[List[str]]:
        return [tokenizer.decode(ids).split() for ids in token_ids]

    if method in TOKEN_SEARCHES:
        search = TOKEN_SEARCHES[method]
        return lambda enc, lens: from_tokens(search(model, enc, lens, options))
    if method == "fast_beam_search":
        graph = trivial_graph(model, device)
        return lambda enc, lens: from_tokens(
            fast_beam_search_one_best(
                model, graph, enc, lens, options.beam, options.max_states, options.max_contexts, options.lstm_context_size
            )
        )
    if lang_dir is None:
        raise ValueError(f"{method} decodes with the lang dir's LG.pt and words.txt: pass the lang dir")
    LG = load_LG(lang_dir, device)
    words = k2.SymbolTable.from_file(str(Path(lang_dir) / "words.txt"))

    def lg_decode(enc: torch.Tensor, lens: torch.Tensor) -> List[List[str]]:
        word_ids = fast_beam_search_nbest_LG(
            model, LG, enc, lens, options.lg_beam, options.lg_max_states, options.lg_max_contexts,
            options.num_paths, options.nbest_scale, options.ngram_lm_scale, options.lstm_context_size,
        )
        return [[words[i] for i in ids] for ids in word_ids]

    return lg_decode
