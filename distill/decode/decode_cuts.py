"""Decode a cut set with a trained transducer and any decoding method."""
from __future__ import annotations

import logging
import time
from typing import List, Optional, Tuple

import torch
from lhotse import CutSet
from lhotse.dataset import K2SpeechRecognitionDataset, SimpleCutSampler
from torch.utils.data import DataLoader

from distill.decode.methods import SearchOptions, WordDecoder, make_word_decoder
from distill.lang.tokenizer import Tokenizer
from distill.models.subsampling import MIN_INPUT_FRAMES
from distill.models.transducer import Transducer
from distill.train.data import batch_to_model_inputs


def decode_cuts(
    model: Transducer,
    cuts: CutSet,
    tokenizer: Tokenizer,
    max_duration: float = 300.0,
    word_decoder: Optional[WordDecoder] = None,
) -> Tuple[List[Tuple[str, str, str]], float]:
    """Decode every cut (greedy search unless ``word_decoder`` is given).

    Args:
      model:
        A trained transducer (eval mode).
      cuts:
        Cuts with precomputed features and reference supervisions.
      tokenizer:
        The tokenizer the transducer was trained with (BPE model or phone inventory).
      max_duration:
        Seconds of audio per decoding batch.
      word_decoder:
        Encoder output -> words (see :func:`distill.decode.methods.make_word_decoder`).
    Returns:
      ``([(cut id, reference, hypothesis), ...] sorted by id, elapsed seconds)``; the
      elapsed time covers features loading, the encoder and the search (for the RTF).
      Cuts too short for the encoder (fewer than ``MIN_INPUT_FRAMES`` feature frames) get an
      empty hypothesis, so their words count as deletions, and are logged by id.
    """
    if word_decoder is None:
        word_decoder = make_word_decoder("greedy_search", model, tokenizer, None, SearchOptions())
    device = next(model.parameters()).device
    too_short = [c for c in cuts if (c.num_frames or 0) < MIN_INPUT_FRAMES]
    results = [(c.id, " ".join(s.text for s in c.supervisions), "") for c in too_short]
    if too_short:
        logging.warning(f"{len(too_short)} cut(s) are shorter than the {MIN_INPUT_FRAMES} frames the encoder needs and "
                        f"are scored as empty hypotheses: {', '.join(c.id for c in too_short[:10])}"
                        f"{' ...' if len(too_short) > 10 else ''}")
        short_ids = {c.id for c in too_short}
        cuts = cuts.filter(lambda c: c.id not in short_ids)
    # Batches of similar durations: less padding for the encoder, and fewer frames for the
    # searches that step through the longest utterance of a batch (measured on the demo
    # test part: 384 instead of 565 fast_beam_search frames).
    sampler = SimpleCutSampler(cuts.sort_by_duration(ascending=False), max_duration=max_duration, shuffle=False)
    loader = DataLoader(K2SpeechRecognitionDataset(return_cuts=True), sampler=sampler, batch_size=None)
    start = time.time()
    with torch.no_grad():
        for batch in loader:
            x, x_lens, _, texts = batch_to_model_inputs(batch, tokenizer, device)
            enc, enc_lens = model.encode(x, x_lens)
            hyps = word_decoder(enc, enc_lens)
            ids = [""] * x.size(0)
            for idx, cut in zip(batch["supervisions"]["sequence_idx"].tolist(), batch["supervisions"]["cut"]):
                ids[idx] = cut.id
            for cut_id, ref, hyp in zip(ids, texts, hyps):
                results.append((cut_id, ref, " ".join(hyp)))
    elapsed = time.time() - start
    logging.info(f"Decoded {len(results)} cuts in {elapsed:.1f} s")
    return sorted(results), elapsed
