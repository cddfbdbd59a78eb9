"""``torchrun`` that works on Python 3.11 with torch 1.13: ``python -m distill.launch ...``.

torch 1.13's ``torchrun`` parses its ``--redirects``/``--tee`` values by iterating over the
``Std`` IntFlag enum; since Python 3.11 that iteration skips the zero and multi-bit members,
so even the default ``"0"`` maps to ``None`` and every launch dies with
``AttributeError: 'NoneType' object has no attribute 'get'``. This module mends that one
parser and hands over to torch's own launcher; all torchrun options work unchanged, e.g.

    python -m distill.launch --standalone --nproc_per_node=2 local/train.py --config ...

On torch versions without the bug the patch changes nothing.
"""
from __future__ import annotations

import re
from typing import Dict, Union

from torch.distributed.elastic.multiprocessing import api as mp_api
from torch.distributed.run import main as torchrun_main

Std = mp_api.Std


def _std_from_str(cls, vm: str) -> Union[Std, Dict[int, Std]]:
    """``Std.from_str`` that builds members by value (``Std(0)``) rather than by iteration."""
    if re.fullmatch(r"[0-3]", vm):
        return cls(int(vm))
    if re.fullmatch(r"([0-9]+:[0-3],)*[0-9]+:[0-3]", vm):
        return {int(i): cls(int(v)) for i, v in (item.split(":") for item in vm.split(","))}
    raise ValueError(f"{vm!r} does not match a redirect value like 3 or 0:3,1:1")


def patch_std_parser() -> None:
    Std.from_str = classmethod(_std_from_str)


if __name__ == "__main__":
    patch_std_parser()
    torchrun_main()
