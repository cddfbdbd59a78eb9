"""The frozen teacher's encoder output per training cut, kept in memory after its first use.

Distillation runs the teacher on every batch, and its encoder is most of that cost (40-50% of
a distilled student step on the demo, RESULTS.md). When the teacher's input for a cut is the
same every epoch (no SpecAugment, :func:`teacher_input_is_fixed`), so is its encoder output:
an epoch after the first can read it from memory instead. Only the encoder is cached; the
teacher's predictor, joiner and lattice (cheap, and dependent on the batch's labels only) are
still computed per batch.

The teacher runs only on the cuts of a batch that are not cached yet (a sub-batch of those
rows), and those are added until the memory budget is spent (the cuts after that are
recomputed every time); the other rows come from memory. Under DDP each rank keeps the cuts
it has seen: the sampler deals every epoch's cuts out to the ranks afresh, so a rank's batch
is partly from memory after the first epoch, and wholly once the rank has seen every cut.

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
        self.hits = 0  # cuts served from memory
        self.misses = 0  # cuts the teacher ran on

    def __len__(self) -> int:
        return len(self.outputs)

    def lookup(self, cut_ids: Sequence[str], device: torch.device) -> Tuple[Dict[int, torch.Tensor], List[int]]:
        """The cached cuts' frames by position in ``cut_ids`` (on ``device``), and the positions
        of the cuts not cached; counts both."""
        found: Dict[int, torch.Tensor] = {}
        missing: List[int] = []
        for i, cut_id in enumerate(cut_ids):
            frames = self.outputs.get(cut_id)
            if frames is None:
                missing.append(i)
            else:
                found[i] = frames.to(device)
        self.hits += len(found)
        self.misses += len(missing)
        return found, missing

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
                        "the teacher runs on the cuts it does not hold (raise kd.cache_teacher_gb to keep more)"
                    )
                    self.full_logged = True
                return
            self.outputs[cut_id] = frames
            self.bytes += size

    def summary(self) -> str:
        return (f"{len(self.outputs)} cuts, {self.bytes / 2**30:.2f} GiB; "
                f"{self.hits} cuts read from memory, {self.misses} through the teacher")


def cached_teacher_encoder(
    teacher: Transducer,
    x: torch.Tensor,
    x_lens: torch.Tensor,
    cut_ids: Optional[List[str]],
    cache: Optional[TeacherEncoderCache],
) -> Tuple[torch.Tensor, torch.Tensor]:
    """The teacher's encoder output for a batch, ``(encoder_out (N, T', C), encoder_out_lens
    (N,))``, without gradient. With a ``cache`` and ``cut_ids`` (the ids of the batch's rows,
    in order), the rows of cached cuts come from memory and the teacher runs on the others
    alone, which are then stored; a batch with no cached cut is computed as without a cache."""
    with torch.no_grad():
        if cache is None or cut_ids is None:
            return teacher.encoder(x, x_lens)
        if len(cut_ids) != x.size(0):
            raise ValueError(f"{len(cut_ids)} cut ids for a batch of {x.size(0)} utterances")
        frames, missing = cache.lookup(cut_ids, x.device)
        if not frames:
            encoder_out, encoder_out_lens = teacher.encoder(x, x_lens)
            cache.store(cut_ids, encoder_out, encoder_out_lens)
            return encoder_out, encoder_out_lens
        if missing:
            rows = torch.tensor(missing, device=x.device)
            sub_lens = x_lens[rows]
            sub_out, sub_out_lens = teacher.encoder(x[rows, : int(sub_lens.max())], sub_lens)
            cache.store([cut_ids[i] for i in missing], sub_out, sub_out_lens)
            for j, i in enumerate(missing):  # from the teacher's output: the budget may not have kept them
                frames[i] = sub_out[j, : int(sub_out_lens[j])]
        rows_out = [frames[i] for i in range(len(cut_ids))]
        lens = torch.tensor([f.size(0) for f in rows_out], dtype=torch.int64, device=x.device)
        return pad_sequence(rows_out, batch_first=True), lens
