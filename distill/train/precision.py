"""Training precision: float32, or bfloat16 autocast where the hardware computes it natively.

``train.precision``:

- ``float32``: everything in float32.
- ``bfloat16``: the forward pass under ``torch.autocast(dtype=bfloat16)`` (linear layers and
  convolutions in bfloat16; norms, softmaxes and every k2 loss in float32, see
  :class:`distill.models.layers.LayerNorm` and :mod:`distill.models.transducer`); weights,
  gradients and the optimizer stay float32.
- ``auto``: bfloat16 on a CPU with AMX (Intel's matrix unit, ``amx_bf16`` in /proc/cpuinfo)
  or on a CUDA device that supports it, float32 elsewhere: on a CPU without it bfloat16 is
  emulated and slower than float32.

On CPUs, torch 1.13's oneDNN (2.6) uses AMX only when asked: :func:`prepare_cpu_for` sets
``ONEDNN_MAX_CPU_ISA=AVX512_CORE_AMX`` before the first oneDNN call (measured on this machine
kind: a 800 x 256 x 1024 bfloat16 matmul 247 GFLOP/s without AMX, 1318 with; float32 271).
"""
from __future__ import annotations

import contextlib
import os
from functools import lru_cache
from pathlib import Path
from typing import ContextManager

import torch

PRECISIONS = ("float32", "bfloat16", "auto")


@lru_cache(maxsize=1)
def cpu_has_amx() -> bool:
    """Whether this CPU has AMX with bfloat16 (Linux: the ``amx_bf16`` flag)."""
    try:
        return " amx_bf16" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> ``bfloat16`` or ``float32`` for ``device`` (see the module docstring);
    other values are checked and returned."""
    if precision not in PRECISIONS:
        raise ValueError(f"train.precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    return "bfloat16" if cpu_has_amx() else "float32"


def prepare_cpu_for(precision: str) -> None:
    """Let oneDNN use AMX for a resolved ``precision`` of bfloat16 on a CPU that has it. Call it
    before the first matmul of the process: oneDNN reads the setting once. A value the user set
    is kept."""
    if precision == "bfloat16" and cpu_has_amx():
        os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX")


def autocast(device: torch.device, precision: str) -> ContextManager:
    """The autocast context of a resolved ``precision`` (a no-op context for float32)."""
    if precision == "bfloat16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    if precision == "float32":
        return contextlib.nullcontext()
    raise ValueError(f"Resolve the precision first (resolve_precision), got {precision!r}")
