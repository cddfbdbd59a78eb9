"""Logging set-up shared by every command: time, level, file:line (and rank under DDP)."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Optional


def setup_logging(log_file: Optional[Path] = None, level: int = logging.INFO) -> None:
    """Log to stderr, and also to ``log_file`` when given.

    Args:
      log_file:
        Optional file to append the same lines to (its directory is created).
      level:
        The logging level.
    """
    rank = os.environ.get("RANK")
    rank_part = f" [rank {rank}]" if rank is not None else ""
    fmt = f"%(asctime)s %(levelname)s [%(filename)s:%(lineno)d]{rank_part} %(message)s"
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file))
    logging.basicConfig(level=level, format=fmt, handlers=handlers, force=True)
