"""Training data: lhotse cuts -> filtered -> DynamicBucketingSampler -> K2SpeechRecognitionDataset.

The sampler is given the world size and rank, so under ``torchrun`` each process reads its
own share of every epoch (lhotse's distributed sampling).
"""
from __future__ import annotations

import logging
import random
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from functools import partial
from typing import List, Optional, Tuple

import k2
import torch
from lhotse import CutSet
from lhotse.dataset import DynamicBucketingSampler, K2SpeechRecognitionDataset, SpecAugment
from lhotse.dataset.signal_transforms import time_warp
from torch.utils.data import DataLoader

from distill.data.manifests import load_cuts
from distill.lang.tokenizer import Tokenizer
from distill.models.subsampling import subsampled_lengths
from distill.train.config import DataConfig


@dataclass
class FilterStats:
    """Why cuts were dropped before training (logged)."""

    kept: int = 0
    too_short_or_long: int = 0
    too_few_frames: int = 0
    empty_text: int = 0


def usable(cut, tokenizer: Tokenizer, config: DataConfig, stats: FilterStats) -> bool:
    """Whether the pruned RNN-T loss can train on ``cut``.

    Dropped: durations outside [min, max]; empty transcripts (k2 1.23.4's losses do not
    support empty references); and cuts whose frame count after subsampling by 4 is smaller
    than their token count (no alignment exists: the pruned loss would be infinite).
    """
    if not config.min_cut_duration <= cut.duration <= config.max_cut_duration:
        stats.too_short_or_long += 1
        return False
    text = " ".join(s.text for s in cut.supervisions if s.text)
    try:
        tokens = tokenizer.encode(text, out_type=int)
    except ValueError as err:  # a phone outside the lang dir's inventory
        raise ValueError(f"Cut {cut.id}: {err}; the lang dir (stage 3) must hold every phone of the corpus") from err
    if not tokens:
        stats.empty_text += 1
        return False
    frames = int(subsampled_lengths(torch.tensor([cut.num_frames]))[0])
    if frames < len(tokens):
        stats.too_few_frames += 1
        return False
    stats.kept += 1
    return True


def filter_cuts(cuts: CutSet, tokenizer: Tokenizer, config: DataConfig, name: str) -> CutSet:
    """Drop unusable cuts eagerly and log how many and why."""
    stats = FilterStats()
    kept = cuts.filter(partial(usable, tokenizer=tokenizer, config=config, stats=stats)).to_eager()
    dropped = stats.too_short_or_long + stats.too_few_frames + stats.empty_text
    logging.info(
        f"{name}: kept {stats.kept} cuts, dropped {dropped} (duration outside "
        f"[{config.min_cut_duration}, {config.max_cut_duration}] s: {stats.too_short_or_long}, "
        f"fewer frames after subsampling than tokens: {stats.too_few_frames}, empty text: {stats.empty_text})"
    )
    if stats.kept == 0:
        raise ValueError(f"{name}: no usable cuts left after filtering")
    return kept


def make_loader(
    cuts: CutSet,
    config: DataConfig,
    train: bool,
    world_size: int = 1,
    rank: int = 0,
    seed: int = 0,
) -> DataLoader:
    """A DataLoader of K2SpeechRecognitionDataset batches over ``cuts``.

    Args:
      cuts:
        Filtered cuts with precomputed features.
      config:
        Batching settings.
      train:
        Shuffle for training, not for validation. (SpecAugment is applied by the trainer,
        which knows from which batch on it is wanted: see ``make_spec_augment``.)
      world_size / rank:
        Distributed sampling (each rank gets its own share).
      seed:
        The sampler's shuffling seed.
    """
    with warnings.catch_warnings():
        # Our cut sets are filtered eagerly (to count what was dropped); lhotse warns about that.
        warnings.filterwarnings("ignore", message=".*eagerly read CutSet.*")
        sampler = DynamicBucketingSampler(
            cuts,
            max_duration=config.max_duration,
            num_buckets=min(config.num_buckets, len(cuts)),
            shuffle=train,
            # Keeping partial batches: with drop_last, every bucket loses its remainder, and
            # a small training set can lose all of its batches.
            drop_last=False,
            world_size=world_size,
            rank=rank,
            seed=seed,
        )
    dataset = K2SpeechRecognitionDataset(return_cuts=True)
    # A private generator: creating a DataLoader iterator draws a seed from it, and drawing
    # from the global RNG instead would make a resumed run diverge from an uninterrupted one.
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, sampler=sampler, batch_size=None, num_workers=config.num_workers, generator=generator)


#: icefall's LibriSpeech SpecAugment settings (time warp factor in frames, masks).
TIME_WARP_FACTOR = 80
SPEC_AUGMENT_P = 0.9


def make_spec_augment(time_warp: bool = True) -> SpecAugment:
    """icefall's LibriSpeech SpecAugment: time warp, 2 frequency masks of up to 27 bins,
    2 time masks of up to 40 frames (at most 15% of an utterance).

    Args:
      time_warp:
        False: the masks only (for :func:`time_warp_segments` applied separately).
    """
    return SpecAugment(
        time_warp_factor=TIME_WARP_FACTOR if time_warp else None, num_feature_masks=2, features_mask_size=27,
        num_frame_masks=2, frames_mask_size=40, p=SPEC_AUGMENT_P,
    )


def time_warp_segments(features: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
    """SpecAugment's time warp alone, on each supervised segment (as ``make_spec_augment()``
    warps them), with probability ``SPEC_AUGMENT_P`` each.

    Used when a teacher must see the student's features without the masks
    (``kd.teacher_input: clean``): the warp moves frames by up to 80 (0.8 s), so teacher and
    student must share it for their lattices to line up frame by frame; only the masks are
    the student's alone.

    Args:
      features:
        Shape (N, T, F); not modified.
      segments:
        ``(S, 3)`` rows of (sequence index, start frame, frames), :func:`supervision_segments`.
    Returns:
      The warped features, a new tensor.
    """
    features = features.clone()
    for sequence_idx, start, num_frames in segments.tolist():
        if random.random() < SPEC_AUGMENT_P:
            end = start + num_frames
            features[sequence_idx, start:end] = time_warp(features[sequence_idx, start:end], factor=TIME_WARP_FACTOR)
    return features


def supervision_segments(batch: dict) -> torch.Tensor:
    """``(S, 3)`` int tensor of (sequence index, start frame, frames), as SpecAugment wants."""
    sup = batch["supervisions"]
    return torch.stack([sup["sequence_idx"], sup["start_frame"], sup["num_frames"]], dim=1).to(torch.int32)


def batch_to_model_inputs(
    batch: dict, tokenizer: Tokenizer, device: torch.device
) -> Tuple[torch.Tensor, torch.Tensor, k2.RaggedTensor, List[str]]:
    """Features, their lengths, the BPE ids of the transcripts, and the transcripts.

    Returns:
      ``(x (N, T, 80), x_lens (N,), y (ragged, N utterances), texts)``, on ``device``.
    """
    x = batch["inputs"].to(device)
    sup = batch["supervisions"]
    # K2SpeechRecognitionDataset sorts supervisions by duration; features follow sequence_idx.
    x_lens = torch.zeros(x.size(0), dtype=torch.int64)
    x_lens[sup["sequence_idx"].long()] = sup["num_frames"].to(torch.int64)
    texts = [""] * x.size(0)
    for idx, text in zip(sup["sequence_idx"].tolist(), sup["text"]):
        texts[idx] = text
    y = k2.RaggedTensor(tokenizer.encode(texts, out_type=int)).to(device)
    return x, x_lens.to(device), y, texts


def batch_cut_ids(batch: dict) -> List[str]:
    """The id of the cut in each row of the batch's features (rows follow ``sequence_idx``)."""
    sup = batch["supervisions"]
    ids = [""] * batch["inputs"].size(0)
    for idx, cut in zip(sup["sequence_idx"].tolist(), sup["cut"]):
        ids[idx] = cut.id
    return ids


# lhotse's perturb_speed appends "_sp<factor>" to a cut's id (stage 2's 0.9x/1.1x copies).
SPEED_PERTURBED_ID = re.compile(r"_sp\d+(\.\d+)?$")


def original_cuts(cuts: CutSet) -> CutSet:
    """``cuts`` without the speed-perturbed copies (``data.speed_perturbed: false``)."""
    left_out = 0

    def is_original(cut) -> bool:
        nonlocal left_out
        perturbed = SPEED_PERTURBED_ID.search(cut.id) is not None
        left_out += perturbed
        return not perturbed

    kept = cuts.filter(is_original).to_eager()  # one pass, lazy input or not
    logging.info(f"train: {len(kept)} original cuts kept, {left_out} speed-perturbed copies left out")
    return kept


def load_train_valid(config: DataConfig, tokenizer: Tokenizer) -> Tuple[CutSet, Optional[CutSet]]:
    """The filtered training and (if configured) validation cuts."""
    train = load_cuts(Path(config.train_cuts))
    if not config.speed_perturbed:
        train = original_cuts(train)
    train = filter_cuts(train, tokenizer, config, "train")
    valid = None
    if config.valid_cuts:
        valid = filter_cuts(load_cuts(Path(config.valid_cuts)), tokenizer, config, "valid")
    return train, valid


def feature_stats(cuts: CutSet, max_cuts: int = 400) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-bin mean and standard deviation of the features of (up to) ``max_cuts`` cuts,
    taken evenly over the cut set so the result does not depend on its order of speakers.

    Args:
      cuts:
        Cuts with precomputed features (eager).
      max_cuts:
        How many cuts to read at most.
    Returns:
      A tuple ``(mean, std)`` of float32 tensors of shape (num_features,).
    """
    num_cuts = len(cuts)
    if num_cuts == 0:
        raise ValueError("Cannot compute feature statistics of an empty cut set")
    step = max(1, num_cuts // max_cuts)
    total = total_sq = None
    frames = 0
    for i, cut in enumerate(cuts):
        if i % step:
            continue
        feats = torch.from_numpy(cut.load_features()).double()
        total = feats.sum(0) if total is None else total + feats.sum(0)
        total_sq = (feats**2).sum(0) if total_sq is None else total_sq + (feats**2).sum(0)
        frames += feats.size(0)
    mean = total / frames
    std = (total_sq / frames - mean**2).clamp(min=1e-8).sqrt()
    logging.info(f"Feature statistics from {frames} frames of {(num_cuts + step - 1) // step} cuts")
    return mean.float(), std.float()
