"""The training loop shared by the teacher and the students: single process or ``torchrun``.

Under ``torchrun`` (``WORLD_SIZE`` > 1) each process joins a process group (gloo on CPU,
nccl on CUDA), wraps the model in DDP and reads its share of each epoch through lhotse's
distributed sampler. Only rank 0 writes checkpoints, tensorboard and plots; every rank
writes its own log file.
"""
from __future__ import annotations

import logging
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from distill.lang.tokenizer import LANG_ID_NAME, lang_identity, load_tokenizer
from distill.losses.ctc_kd import require_ctc_head
from distill.losses.teacher_cache import TeacherEncoderCache, teacher_input_is_fixed
from distill.models.config import ModelConfig
from distill.models.registry import build_transducer
from distill.models.transducer import num_params
from distill.train import checkpoint as ckpt
from distill.train.augment import FrequencyWarp
from distill.train.config import ExperimentConfig, save_config
from distill.train.data import (
    batch_cut_ids,
    batch_to_model_inputs,
    feature_stats,
    load_train_valid,
    make_loader,
    make_spec_augment,
    supervision_segments,
    time_warp_segments,
)
from distill.train.losses import LossFn, make_loss_fn, transducer_loss_fn, unwrap
from distill.train.metrics_log import MetricsLog
from distill.train.precision import autocast, prepare_cpu_for, resolve_precision
from distill.train.running_average import AVERAGE_KEY, RunningAverage
from distill.train.schedule import WarmupEden
from distill.utils.io import atomic_write_text
from distill.utils.logging_setup import setup_logging

# A batch index past any warm-up: validation uses the final loss weights.
AFTER_WARM_UP = 1 << 40


class NonFiniteLossError(RuntimeError):
    """Too many non-finite losses in a row: training is diverging or the data is broken."""


@dataclass
class DistInfo:
    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@dataclass
class TrainState:
    """Mutable training progress, kept apart from the (immutable) config."""

    epoch: int = 1
    batch_idx_train: int = 0  # batches trained so far, over all epochs
    batches_in_epoch: int = 0  # batches trained so far in the current epoch
    best_valid_loss: float = float("inf")
    nonfinite_in_a_row: int = 0
    skipped_batches: int = 0

    def to_dict(self) -> Dict:
        return dict(self.__dict__)


def init_distributed() -> DistInfo:
    """Join the process group when run under torchrun; a no-op otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistInfo(world_size, rank, local_rank)


def pick_device(requested: str, dist_info: DistInfo) -> torch.device:
    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("train.device=cuda but no CUDA device is available")
    torch.cuda.set_device(dist_info.local_rank)
    return torch.device("cuda", dist_info.local_rank)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_states() -> Dict:
    """Random-number-generator states, saved so that a resumed run continues exactly."""
    states = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: Dict) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def parameter_checksum(model: torch.nn.Module) -> float:
    """A float summarizing all parameters; equal across DDP replicas that stay in sync."""
    model = unwrap(model)
    with torch.no_grad():
        return float(sum((p.double() * (i + 1)).sum() for i, p in enumerate(model.parameters())))


class Trainer:
    """Trains a transducer with a given loss function.

    Args:
      config:
        The experiment config (its ``model.vocab_size`` and ``blank_id`` are set from the
        lang dir's BPE model).
      loss_fn:
        Maps ``(model, inputs, batch_idx_train)`` to ``(loss, metrics, frames)``;
        defaults to the pruned RNN-T loss, plus distillation when ``kd.teacher_exp_dir``
        is set (see distill/train/losses.py).
      max_batches:
        Stop after this many batches in all (0: no limit); for smoke runs and tests.
    """

    def __init__(self, config: ExperimentConfig, loss_fn: Optional[LossFn] = None, max_batches: int = 0) -> None:
        self.config = config
        self.dist = init_distributed()
        self.exp_dir = Path(config.train.exp_dir)
        self.exp_dir.mkdir(parents=True, exist_ok=True)
        setup_logging(self.exp_dir / "log" / f"train-rank{self.dist.rank}.log")
        self.device = pick_device(config.train.device, self.dist)
        self.precision = resolve_precision(config.train.precision, self.device)
        prepare_cpu_for(self.precision)  # before the first matmul of the process
        self.max_batches = max_batches
        seed_everything(config.train.seed)

        self.tokenizer = load_tokenizer(Path(config.data.lang_dir))
        config.model.vocab_size = self.tokenizer.get_piece_size()
        config.model.blank_id = self.tokenizer.piece_to_id("<blk>")
        self.model: torch.nn.Module = build_transducer(config.model).to(self.device)
        train_cuts, valid_cuts = load_train_valid(config.data, self.tokenizer)
        # Every rank computes the same statistics; a resumed run loads them from its checkpoint.
        self.model.set_feature_stats(*(t.to(self.device) for t in feature_stats(train_cuts)))
        logging.info(
            f"Model: {num_params(self.model):,} parameters, device {self.device}, precision {self.precision}, "
            f"world size {self.dist.world_size}"
        )
        if self.dist.world_size > 1:
            self.model = DDP(self.model, device_ids=[self.dist.local_rank] if self.device.type == "cuda" else None)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=config.optim.base_lr, betas=(0.9, 0.98), weight_decay=config.optim.weight_decay
        )
        self.scheduler = WarmupEden(
            self.optimizer, config.optim.base_lr, config.optim.warmup_batches, config.optim.lr_batches, config.optim.lr_epochs
        )
        if config.kd.enabled and config.kd.ctc_scale > 0:
            require_ctc_head(unwrap(self.model), "student")  # now, not after the CTC warm-up
        self.teacher_cache = self.make_teacher_cache() if loss_fn is None else None
        self.loss_fn = loss_fn or make_loss_fn(config.loss, config.kd, self.device, self.teacher_cache)
        # Validation always measures the plain transducer loss, so that students trained
        # with and without distillation (and the teacher) are compared on one scale.
        self.valid_loss_fn = transducer_loss_fn(config.loss)
        self.state = TrainState()
        # Only the rank that writes checkpoints keeps the running average (replicas are equal).
        period = config.train.average_period
        self.running_average = RunningAverage(period) if period > 0 and self.dist.is_main else None

        self.train_loader = make_loader(
            train_cuts, config.data, train=True, world_size=self.dist.world_size, rank=self.dist.rank, seed=config.train.seed
        )
        self.valid_loader = make_loader(valid_cuts, config.data, train=False) if valid_cuts is not None else None
        self.spec_augment = make_spec_augment() if config.data.spec_augment else None
        # A teacher that sees the features before augmentation (kd.teacher_input: clean) must
        # still share the student's time warp (it moves frames by up to 0.8 s): the warp is
        # then applied on its own, before the student's masks (distill/train/data.py).
        self.shared_time_warp = config.kd.enabled and config.kd.teacher_input == "clean" and config.data.spec_augment
        self.spec_masks = make_spec_augment(time_warp=False) if self.shared_time_warp else None
        self.freq_warp = FrequencyWarp(config.data.freq_warp) if config.data.freq_warp > 0 else None
        self.metrics = MetricsLog(self.exp_dir) if self.dist.is_main else None
        if self.dist.is_main:
            # The merged config (defaults, --config layers, overlay, --set), in the log and beside the checkpoints.
            text = save_config(config, self.exp_dir / "config.yaml")
            logging.info(f"Config of this run ({self.exp_dir / 'config.yaml'}):\n{text}")
            # Decoding checks it: a lang dir of another corpus with as many tokens would
            # otherwise decode the right ids as the wrong pieces.
            atomic_write_text(self.exp_dir / LANG_ID_NAME,
                              f"{lang_identity(config.data.lang_dir)} {Path(config.data.lang_dir).resolve()}\n")

    def make_teacher_cache(self) -> Optional[TeacherEncoderCache]:
        """A cache of the teacher's encoder outputs when distilling with ``kd.cache_teacher``
        and the teacher's input cannot change between epochs (else None, and the log says why)."""
        kd = self.config.kd
        if not kd.enabled or not kd.cache_teacher or kd.cache_teacher_gb == 0:
            return None
        reason = teacher_input_is_fixed(self.config.data.spec_augment, self.config.data.freq_warp, kd.teacher_input)
        if reason is not None:
            logging.info(f"The teacher runs on every batch (kd.cache_teacher is set, but {reason})")
            return None
        logging.info(f"The teacher's encoder outputs are kept in memory after their first batch "
                     f"(kd.cache_teacher, at most {kd.cache_teacher_gb} GiB)")
        return TeacherEncoderCache(int(kd.cache_teacher_gb * 2**30))

    # ------------------------------------------------------------------ resume

    def resume(self, start_epoch: int = 0, from_last: bool = False) -> None:
        """Continue from ``epoch-<start_epoch - 1>.pt``, or from the newest checkpoint.

        Args:
          start_epoch:
            Begin at this epoch, loading the previous epoch's checkpoint (icefall's
            ``--start-epoch``); 0 or 1 starts afresh unless ``from_last``.
          from_last:
            Continue from the newest checkpoint (batch or epoch) in the experiment directory.
        """
        path: Optional[Path] = None
        if start_epoch > 1:
            path = ckpt.epoch_checkpoint(self.exp_dir, start_epoch - 1)
        elif from_last:
            path = self.newest_checkpoint()
        if path is None:
            return
        checkpoint = ckpt.load_checkpoint(path)
        # Compare with defaults filled in, so that checkpoints from before a new (defaulted)
        # field was added still resume.
        saved_model = ModelConfig.from_dict(checkpoint["config"]["model"]).to_dict()
        if saved_model != self.config.model.to_dict():
            raise ValueError(
                f"{path} holds a model with another config than the one asked for; use another "
                f"--exp-dir, or remove {self.exp_dir} to start afresh"
            )
        model = unwrap(self.model)
        model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.state = TrainState(**checkpoint["state"]["train_state"])
        if "sampler" in checkpoint and self.state.batches_in_epoch > 0:
            # Mid-epoch: the sampler skips what this epoch has already consumed.
            self.train_loader.sampler.load_state_dict(checkpoint["sampler"])
        if "rng" in checkpoint["state"]:
            set_rng_states(checkpoint["state"]["rng"])
        if self.running_average is not None:
            if AVERAGE_KEY in checkpoint:
                self.running_average.load_state_dict(checkpoint)
            else:
                logging.warning(f"{path} holds no running average of the weights: it starts here, so "
                                "--use-averaged-model cannot reach back before this point")
        logging.info(
            f"Resumed from {path}: epoch {self.state.epoch}, batch {self.state.batch_idx_train} "
            f"({self.state.batches_in_epoch} into the epoch)"
        )

    def newest_checkpoint(self) -> Optional[Path]:
        """The readable checkpoint (batch or epoch) furthest into training, or None.

        Every checkpoint is a candidate, so an unreadable newest one (a disk fault, a copy cut
        short) falls back to the newest readable one instead of starting afresh. An unreadable
        file is renamed to ``<name>.unreadable``: kept for inspection, but never trusted again,
        and not counted among the batch checkpoints that ``keep_last_k`` keeps (which would
        otherwise delete the good ones written after it).
        """
        candidates: List[Tuple[int, Path]] = []
        for path in ckpt.batch_checkpoints(self.exp_dir) + sorted(self.exp_dir.glob("epoch-*.pt")):
            try:
                state = ckpt.load_checkpoint(path)["state"]["train_state"]
            except (RuntimeError, KeyError, TypeError) as err:
                aside = path.with_name(path.name + ".unreadable")
                if self.dist.is_main:
                    os.replace(path, aside)
                logging.warning(f"Checkpoint {path} cannot be read ({err}); moved to {aside.name}, "
                                "resuming from the newest readable one")
                continue
            candidates.append((state["batch_idx_train"], path))
        return max(candidates)[1] if candidates else None

    def save(self, path: Path) -> None:
        if not self.dist.is_main:
            return
        ckpt.save_checkpoint(
            path,
            self.model,
            config=self.config.to_dict(),
            state={"train_state": self.state.to_dict(), "rng": rng_states()},
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            sampler=self.train_loader.sampler,
            extra=self.running_average.state_dict() if self.running_average is not None else None,
        )

    # ------------------------------------------------------------------ loop

    def train(self) -> None:
        """Train until ``num_epochs`` (or ``max_batches``) is reached."""
        cfg = self.config.train
        if self.state.epoch > cfg.num_epochs:
            logging.info(f"Training is complete ({cfg.num_epochs} epochs in {self.exp_dir}): nothing to do")
        while self.state.epoch <= cfg.num_epochs:
            if not self.train_one_epoch():
                break  # max_batches reached
        if self.dist.world_size > 1:
            dist.barrier()
        logging.info(f"Training done at batch {self.state.batch_idx_train}; parameter checksum {parameter_checksum(self.model):.6f}")

    def train_one_epoch(self) -> bool:
        """One epoch (or what is left of it). Returns False when ``max_batches`` stopped it."""
        cfg = self.config.train
        epoch = self.state.epoch
        self.train_loader.sampler.set_epoch(epoch)
        self.model.train()
        window = {"loss": 0.0, "frames": 0, "start": time.time(), "audio": 0.0}
        for batch in self.batches_in_lockstep():
            if self.max_batches and self.state.batch_idx_train >= self.max_batches:
                return False
            lr = self.scheduler.step(self.state.batch_idx_train, epoch - 1 + 0.0)
            clean = batch["inputs"]  # augmentation returns new tensors: a teacher may want these
            if self.state.batch_idx_train >= self.config.data.spec_augment_start:
                if self.shared_time_warp:
                    clean = batch["inputs"] = time_warp_segments(batch["inputs"], supervision_segments(batch))
                if self.freq_warp is not None:
                    batch["inputs"] = self.freq_warp(batch["inputs"])
                if self.spec_masks is not None:
                    batch["inputs"] = self.spec_masks(batch["inputs"])
                elif self.spec_augment is not None:
                    batch["inputs"] = self.spec_augment(batch["inputs"], supervision_segments(batch))
            x, x_lens, y, _ = batch_to_model_inputs(batch, self.tokenizer, self.device)
            x_clean = x if clean is batch["inputs"] else clean.to(self.device)
            with autocast(self.device, self.precision):
                loss, metrics, frames = self.loss_fn(
                    self.model, (x, x_lens, y, x_clean, batch_cut_ids(batch)), self.state.batch_idx_train
                )
            self.state.batch_idx_train += 1
            self.state.batches_in_epoch += 1
            if not self.finite_everywhere(loss):
                self.skip_batch(batch)
                continue
            self.state.nonfinite_in_a_row = 0
            self.optimizer.zero_grad(set_to_none=True)
            # Per-frame normalization keeps clipping and the learning rate batch-size independent.
            (loss / max(frames, 1)).backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.optim.clip_grad_norm)
            self.optimizer.step()
            if self.running_average is not None:
                self.running_average.maybe_update(unwrap(self.model), self.state.batch_idx_train)

            window["loss"] += float(loss)
            window["frames"] += frames
            window["audio"] += float(x_lens.sum()) / 100.0
            if self.state.batch_idx_train % cfg.log_interval == 0:
                self.log_progress(epoch, window, lr, float(grad_norm), metrics, frames)
                window = {"loss": 0.0, "frames": 0, "start": time.time(), "audio": 0.0}
            if cfg.save_every_n and self.state.batch_idx_train % cfg.save_every_n == 0:
                self.save(self.exp_dir / f"checkpoint-{self.state.batch_idx_train}.pt")
                if self.dist.is_main:
                    ckpt.remove_old_batch_checkpoints(self.exp_dir, cfg.keep_last_k)
        if self.state.batches_in_epoch == 0:
            raise RuntimeError(
                f"Epoch {epoch} had no training batches: the training cuts are fewer than "
                f"data.max_duration ({self.config.data.max_duration} s) can batch; lower it"
            )
        valid_loss = self.validate()
        # The epoch is complete: a resume starts the next one from a fresh sampler pass.
        self.state.epoch = epoch + 1
        self.state.batches_in_epoch = 0
        self.save(ckpt.epoch_checkpoint(self.exp_dir, epoch))
        if self.metrics is not None:
            self.metrics.plot()
        if self.teacher_cache is not None:
            logging.info(f"Teacher cache after epoch {epoch}: {self.teacher_cache.summary()}")
        logging.info(
            f"Epoch {epoch} done: batch {self.state.batch_idx_train}, valid loss {valid_loss:.4f}, "
            f"best {self.state.best_valid_loss:.4f}, parameter checksum {parameter_checksum(self.model):.6f}"
        )
        return True

    def batches_in_lockstep(self) -> Iterator[dict]:
        """The training batches, ending on every rank as soon as one rank runs out.

        Distributed samplers can give ranks different numbers of batches at the end of an
        epoch; a rank that stopped early would leave the others waiting in DDP's all-reduce.
        """
        iterator = iter(self.train_loader)
        while True:
            batch = next(iterator, None)
            if self.dist.world_size > 1:
                flag = torch.tensor([0.0 if batch is None else 1.0], device=self.device)
                dist.all_reduce(flag, op=dist.ReduceOp.MIN)
                if flag.item() == 0.0:
                    return
            if batch is None:
                return
            yield batch

    def finite_everywhere(self, loss: torch.Tensor) -> bool:
        """Whether the loss is finite on every rank (all ranks must skip together under DDP)."""
        flag = torch.tensor([1.0 if torch.isfinite(loss).all() else 0.0], device=self.device)
        if self.dist.world_size > 1:
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item() == 1.0)

    def skip_batch(self, batch: dict) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.state.nonfinite_in_a_row += 1
        self.state.skipped_batches += 1
        ids = [c.id for c in batch["supervisions"]["cut"]][:5]
        logging.warning(f"Non-finite loss at batch {self.state.batch_idx_train} (cuts {ids} ...): skipped")
        limit = self.config.train.max_nonfinite_in_a_row
        if self.state.nonfinite_in_a_row >= limit:
            raise NonFiniteLossError(
                f"{limit} non-finite losses in a row (last at batch {self.state.batch_idx_train}): training "
                f"is diverging or the data is broken. Lower optim.base_lr, check the cuts above, or resume "
                f"from an earlier checkpoint in {self.exp_dir}."
            )

    def log_progress(self, epoch: int, window: Dict, lr: float, grad_norm: float, metrics: Dict[str, float], frames: int) -> None:
        elapsed = max(time.time() - window["start"], 1e-9)
        loss_per_frame = window["loss"] / max(window["frames"], 1)
        parts = ", ".join(f"{k.replace('_loss', '')} {v / max(frames, 1):.4f}" for k, v in metrics.items())
        logging.info(
            f"epoch {epoch} batch {self.state.batch_idx_train}: loss {loss_per_frame:.4f} per frame "
            f"({parts}), lr {lr:.2e}, grad norm {grad_norm:.2f}, {window['frames'] / elapsed:.0f} frames/s, "
            f"{window['audio'] / elapsed:.1f} s audio/s"
        )
        if self.metrics is not None:
            self.metrics.add("train", self.state.batch_idx_train, {"loss": loss_per_frame, "lr": lr, "grad_norm": grad_norm})

    def validate(self) -> float:
        """The per-frame validation loss (rank 0's model on the whole validation set)."""
        if self.valid_loader is None:
            return float("nan")
        model = unwrap(self.model)
        model.eval()
        total, frames = 0.0, 0
        with torch.no_grad():
            for batch in self.valid_loader:
                x, x_lens, y, _ = batch_to_model_inputs(batch, self.tokenizer, self.device)
                # Scored with the after-warm-up loss weights, so epochs compare on one scale.
                with autocast(self.device, self.precision):
                    loss, _, n = self.valid_loss_fn(model, (x, x_lens, y), AFTER_WARM_UP)
                if torch.isfinite(loss):
                    total += float(loss)
                    frames += n
        model.train()
        valid_loss = total / max(frames, 1)
        self.state.best_valid_loss = min(self.state.best_valid_loss, valid_loss)
        if self.metrics is not None:
            self.metrics.add("valid", self.state.batch_idx_train, {"loss": valid_loss})
        return valid_loss
