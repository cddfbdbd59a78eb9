"""The frozen teacher's encoder output per training cut, kept in memory after its first use.

Distillation runs the teacher on every batch, and its encoder is most of that cost (40-50% of
a distilled student step on the demo, RESULTS.md). When the teacher's input for a cut is the
same every epoch (no SpecAugment, :func:`teacher_input_is_fixed`), so is its encoder output:
an epoch after the first can read it from memory instead. Only the encoder is cached; the
teacher's predictor, joiner and lattice (cheap, and dependent on the batch's labels only) are
still computed per batch.

A batch is served from the cache only when every one of its cuts is there; otherwise the
teacher runs on the whole batch and the cuts not yet cached are added, until the memory
budget is spent (the cuts after that are recomputed every time). Under DDP each rank keeps
the cuts it has seen.

The cached frames are those of the cut alone (up to its own length); a batch is rebuilt by
padding with zeros. Past an utterance's length nothing reads them: every loss masks frames
by ``encoder_out_lens``.
"""
from __future__ import annotations

import logging
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch.nn.utils.rnn import pad_sequence

from distill.models.transducer import Transducer


def teacher_input_is_fixed(spec_augment: bool, freq_warp: float, teacher_input: str) -> Optional[str]:
    """Why the teacher's input for a cut may change between epochs, or None when it cannot.

    Args:
      spec_augment:
        ``data.spec_augment``: its time warp reaches the teacher whatever ``teacher_input``
        says (the two lattices must line up), and its masks too with ``augmented``.
      freq_warp:
        ``data.freq_warp``: reaches the teacher with ``teacher_input: augmented``.
      teacher_input:
        ``kd.teacher_input``.
    """
    if spec_augment:
        return "data.spec_augment is on (its time warp reaches the teacher)"
    if freq_warp > 0 and teacher_input == "augmented":
        return "data.freq_warp is on and kd.teacher_input is augmented"
    return None


class TeacherEncoderCache:
    """Encoder outputs of the teacher per cut id, within a memory budget.

    Args:
      max_bytes:
        Stop adding cuts once the cached tensors hold this many bytes.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.full_logged = False
        self.outputs: Dict[str, torch.Tensor] = {}
        self.hits = 0  # batches served from memory
        self.misses = 0  # batches the teacher ran on

    def __len__(self) -> int:
        return len(self.outputs)

    def lookup(self, cut_ids: Sequence[str], device: torch.device) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
        """``(encoder_out (N, T', C), encoder_out_lens (N,))`` of the cuts, zero-padded, if all are
        cached (a hit), else None (a miss)."""
        if not all(cut_id in self.outputs for cut_id in cut_ids):
            self.misses += 1
            return None
        self.hits += 1
        frames = [self.outputs[cut_id] for cut_id in cut_ids]
        lens = torch.tensor([f.size(0) for f in frames], dtype=torch.int64)
        return pad_sequence(frames, batch_first=True).to(device), lens.to(device)

    def store(self, cut_ids: Sequence[str], encoder_out: torch.Tensor, encoder_out_lens: torch.Tensor) -> None:
        """Keep each cut's frames (up to its length) that are not kept yet, within the budget."""
        for i, cut_id in enumerate(cut_ids):
            if cut_id in self.outputs:
                continue
            frames = encoder_out[i, : int(encoder_out_lens[i])].detach().to("cpu", copy=True)
            size = frames.numel() * frames.element_size()
            if self.bytes + size > self.max_bytes:
                if not self.full_logged:
                    logging.info(
                        f"Teacher cache full ({self.bytes / 2**30:.2f} GiB, {len(self.outputs)} cuts): "
                        "the teacher runs on the batches with other cuts (raise kd.cache_teacher_gb to keep more)"
                    )
                    self.full_logged = True
                return
            self.outputs[cut_id] = frames
            self.bytes += size

    def summary(self) -> str:
        return (f"{len(self.outputs)} cuts, {self.bytes / 2**30:.2f} GiB; "
                f"{self.hits} batches from memory, {self.misses} through the teacher")


def cached_teacher_encoder(
    teacher: Transducer,
    x: torch.Tensor,
    x_lens: torch.Tensor,
    cut_ids: Optional[List[str]],
    cache: Optional[TeacherEncoderCache],
) -> Tuple[torch.Tensor, torch.Tensor]:
    """The teacher's encoder output for a batch, ``(encoder_out (N, T', C), encoder_out_lens
    (N,))``, without gradient: from ``cache`` when it holds every cut of ``cut_ids`` (the ids
    of the batch's rows, in order), else computed (and stored when a cache is given)."""
    with torch.no_grad():
        if cache is not None and cut_ids is not None:
            if len(cut_ids) != x.size(0):
                raise ValueError(f"{len(cut_ids)} cut ids for a batch of {x.size(0)} utterances")
            cached = cache.lookup(cut_ids, x.device)
            if cached is not None:
                return cached
        encoder_out, encoder_out_lens = teacher.encoder(x, x_lens)
        if cache is not None and cut_ids is not None:
            cache.store(cut_ids, encoder_out, encoder_out_lens)
        return encoder_out, encoder_out_lens
