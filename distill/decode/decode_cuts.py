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
from distill.models.config import ModelConfig
from distill.models.registry import build_transducer
from distill.models.transducer import Transducer
from distill.train import checkpoint as ckpt
from distill.train.data import batch_to_model_inputs


def last_epoch(exp_dir: Path) -> int:
    """The highest N of ``epoch-N.pt`` in ``exp_dir``."""
    epochs = [int(p.stem.split("-")[1]) for p in Path(exp_dir).glob("epoch-*.pt") if p.stem.split("-")[1].isdigit()]
    if not epochs:
        raise FileNotFoundError(f"No epoch-N.pt checkpoints in {exp_dir}: train first")
    return max(epochs)


def load_model(exp_dir: Path, epoch: int, avg: int = 1, device: Optional[torch.device] = None) -> Transducer:
    """The model of ``exp_dir`` averaged over epochs ``epoch-avg+1 .. epoch``, in eval mode."""
    device = device or torch.device("cpu")
    config = ckpt.load_checkpoint(ckpt.epoch_checkpoint(exp_dir, epoch))["config"]
    model = build_transducer(ModelConfig(**config["model"]))
    model.load_state_dict(ckpt.averaged_epochs_state(exp_dir, epoch, avg))
    return model.to(device).eval()


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
