"""Checkpoints, written once here for every model: save, load, find, prune, average.

A checkpoint is a dict with nested keys (never everything at the top level)::

    {"model": state_dict, "optimizer": ..., "scheduler": ..., "sampler": ...,
     "config": {...}, "state": {"epoch", "batch_idx_train", ...}, "env": {...},
     "model_avg": state_dict, "model_avg_count": int}   # the last two with train.average_period

Files in the experiment directory: ``epoch-<N>.pt`` at the end of each epoch and
``checkpoint-<batch>.pt`` every ``save_every_n`` batches (the last ``keep_last_k`` kept).
All are written atomically, so a killed run never leaves a truncated checkpoint behind.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from distill.models.config import ModelConfig
from distill.models.registry import build_transducer
from distill.models.transducer import Transducer
from distill.train.running_average import window_average
from distill.utils.env import environment_info
from distill.utils.io import atomic_save_torch


def save_checkpoint(
    path: Path,
    model: torch.nn.Module,
    config: Dict[str, Any],
    state: Dict[str, Any],
    optimizer: Optional[torch.optim.Optimizer] = None,
    scheduler: Optional[Any] = None,
    sampler: Optional[Any] = None,
    scaler: Optional[Any] = None,
    extra: Optional[Dict[str, Any]] = None,
) -> None:
    """Write a checkpoint atomically.

    Args:
      path:
        Destination file.
      model:
        The model (a DDP wrapper is unwrapped).
      config:
        The full experiment config as a plain dict.
      state:
        Training progress (epoch, batch_idx_train, best losses, ...).
      optimizer / scheduler / sampler / scaler:
        Saved through their ``state_dict()`` when given.
      extra:
        More top-level entries (the running average of the weights: running_average.py).
    """
    model = model.module if hasattr(model, "module") else model
    checkpoint = {
        "model": model.state_dict(),
        "config": config,
        "state": state,
        "env": environment_info(),
    }
    for key, obj in (("optimizer", optimizer), ("scheduler", scheduler), ("sampler", sampler), ("scaler", scaler)):
        if obj is not None:
            checkpoint[key] = obj.state_dict()
    checkpoint.update(extra or {})
    atomic_save_torch(checkpoint, path)
    logging.info(f"Saved checkpoint {path}")


def read_torch_file(path: Path, map_location: str = "cpu") -> Any:
    """What a torch file holds: the one place that reads checkpoints and model files (training's
    resume and averaging, decoding, transcription, export), with an error naming the file when
    it is missing or broken (``FileNotFoundError``, ``RuntimeError``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location=map_location)
    except Exception as err:  # pickle/zip errors of a corrupted or foreign file
        raise RuntimeError(f"Checkpoint {path} cannot be read ({err}); delete it and resume from another") from err


def load_checkpoint(path: Path, map_location: str = "cpu") -> Dict[str, Any]:
    """Load a checkpoint dict of this project (:func:`read_torch_file`, then a ``model`` key)."""
    checkpoint = read_torch_file(path, map_location)
    if not isinstance(checkpoint, dict) or "model" not in checkpoint:
        raise RuntimeError(f"{path} is not a checkpoint of this project (no 'model' key)")
    return checkpoint


def batch_checkpoints(exp_dir: Path) -> List[Path]:
    """``checkpoint-<batch>.pt`` files in ``exp_dir``, newest (highest batch) first."""
    found = []
    for path in Path(exp_dir).glob("checkpoint-*.pt"):
        match = re.fullmatch(r"checkpoint-(\d+)\.pt", path.name)
        if match:
            found.append((int(match.group(1)), path))
    return [p for _, p in sorted(found, reverse=True)]


def epoch_checkpoint(exp_dir: Path, epoch: int) -> Path:
    return Path(exp_dir) / f"epoch-{epoch}.pt"


def remove_old_batch_checkpoints(exp_dir: Path, keep_last_k: int) -> None:
    """Delete all but the ``keep_last_k`` newest batch checkpoints."""
    for path in batch_checkpoints(exp_dir)[keep_last_k:]:
        path.unlink()


def average_state_dicts(paths: List[Path]) -> Dict[str, torch.Tensor]:
    """The element-wise mean of the models in ``paths`` (icefall's ``--epoch/--avg``).

    Floating-point tensors are averaged in float64 and cast back; integer buffers
    (e.g. counters) are taken from the last checkpoint.
    """
    if not paths:
        raise ValueError("No checkpoints to average")
    total: Dict[str, torch.Tensor] = {}
    last: Dict[str, torch.Tensor] = {}
    for path in paths:
        state = load_checkpoint(path)["model"]
        for name, tensor in state.items():
            last[name] = tensor
            if tensor.is_floating_point():
                total[name] = total.get(name, 0) + tensor.double()
    averaged = {}
    for name, tensor in last.items():
        averaged[name] = (total[name] / len(paths)).to(tensor.dtype) if name in total else tensor
    return averaged


def averaged_epochs_state(exp_dir: Path, epoch: int, avg: int, use_averaged_model: bool = False) -> Dict[str, torch.Tensor]:
    """The model averaged over epochs ``epoch - avg + 1 .. epoch``.

    With ``use_averaged_model`` the mean is over the running average's snapshots taken in those
    epochs (icefall's ``--use-averaged-model``; running_average.py), read from ``epoch-<epoch>.pt``
    and ``epoch-<epoch - avg>.pt`` (the start of training when that is epoch 0); otherwise it
    is the mean of the ``avg`` epoch checkpoints themselves.
    """
    if avg < 1 or epoch - avg + 1 < 1:
        raise ValueError(f"--avg {avg} with --epoch {epoch} reaches before epoch 1")
    if use_averaged_model:
        end_path = epoch_checkpoint(exp_dir, epoch)
        start_path = epoch_checkpoint(exp_dir, epoch - avg) if epoch - avg >= 1 else None
        end = load_checkpoint(end_path)
        start = load_checkpoint(start_path) if start_path is not None else None
        logging.info(f"Running average of the weights over epochs {epoch - avg + 1}-{epoch} "
                     f"({start_path.name if start_path else 'start of training'} to {end_path.name})")
        return window_average(end, start, f"{end_path.parent} (--epoch {epoch} --avg {avg} --use-averaged-model)")
    paths = [epoch_checkpoint(exp_dir, e) for e in range(epoch - avg + 1, epoch + 1)]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"Missing checkpoints for averaging: {', '.join(missing)}")
    logging.info(f"Averaging {len(paths)} checkpoints: {', '.join(p.name for p in paths)}")
    return average_state_dicts(paths)


def last_epoch(exp_dir: Path) -> int:
    """The highest N of ``epoch-N.pt`` in ``exp_dir``."""
    epochs = [int(p.stem.split("-")[1]) for p in Path(exp_dir).glob("epoch-*.pt") if p.stem.split("-")[1].isdigit()]
    if not epochs:
        raise FileNotFoundError(f"No epoch-N.pt checkpoints in {exp_dir}: train first")
    return max(epochs)


def load_averaged_model(exp_dir: Path, epoch: int, avg: int = 1, device: Optional[torch.device] = None,
                        use_averaged_model: bool = False) -> Transducer:
    """The model of ``exp_dir`` averaged over epochs ``epoch-avg+1 .. epoch`` (see
    :func:`averaged_epochs_state`), in eval mode."""
    device = device or torch.device("cpu")
    config = load_checkpoint(epoch_checkpoint(exp_dir, epoch))["config"]
    model = build_transducer(ModelConfig.from_dict(config["model"]))
    model.load_state_dict(averaged_epochs_state(exp_dir, epoch, avg, use_averaged_model))
    return model.to(device).eval()
