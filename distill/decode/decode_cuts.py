"""Decode a cut set with a trained transducer and score it."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import List, Optional, Tuple

import sentencepiece as spm
import torch
from lhotse import CutSet
from lhotse.dataset import K2SpeechRecognitionDataset, SimpleCutSampler
from torch.utils.data import DataLoader

from distill.decode.greedy import greedy_search
from distill.models.transducer import Transducer
from distill.train.data import batch_to_model_inputs


def decode_cuts(
    model: Transducer,
    cuts: CutSet,
    sp: spm.SentencePieceProcessor,
    max_duration: float = 300.0,
) -> Tuple[List[Tuple[str, str, str]], float]:
    """Greedy-decode every cut.

    Args:
      model:
        A trained transducer (eval mode).
      cuts:
        Cuts with precomputed features and reference supervisions.
      sp:
        The BPE model the transducer was trained with.
      max_duration:
        Seconds of audio per decoding batch.
    Returns:
      ``([(cut id, reference, hypothesis), ...] sorted by id, elapsed seconds)``.
    """
    device = next(model.parameters()).device
    sampler = SimpleCutSampler(cuts, max_duration=max_duration, shuffle=False)
    loader = DataLoader(K2SpeechRecognitionDataset(return_cuts=True), sampler=sampler, batch_size=None)
    results = []
    start = time.time()
    with torch.no_grad():
        for batch in loader:
            x, x_lens, _, texts = batch_to_model_inputs(batch, sp, device)
            enc, enc_lens = model.encode(x, x_lens)
            hyps = greedy_search(model, enc, enc_lens)
            ids = [""] * x.size(0)
            for idx, cut in zip(batch["supervisions"]["sequence_idx"].tolist(), batch["supervisions"]["cut"]):
                ids[idx] = cut.id
            for cut_id, ref, hyp in zip(ids, texts, hyps):
                results.append((cut_id, ref, sp.decode(hyp)))
    elapsed = time.time() - start
    logging.info(f"Decoded {len(results)} cuts in {elapsed:.1f} s")
    return sorted(results), elapsed
