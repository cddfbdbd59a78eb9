"""The environment an experiment ran in, recorded with every checkpoint (as icefall does)."""
from __future__ import annotations

import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Dict

REPO_ROOT = Path(__file__).resolve().parents[2]


def git_revision() -> str:
    """The repository's commit, with ``-dirty`` when there are uncommitted changes."""
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def environment_info() -> Dict[str, str]:
    """Versions of the stack, the git revision, host and command line."""
    import k2
    import lhotse
    import torch

    info = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "k2": getattr(k2, "__dev_version__", "unknown"),
        "lhotse": lhotse.__version__,
        "cuda_available": str(torch.cuda.is_available()),
        "git_revision": git_revision(),
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "command": " ".join(sys.argv),
    }
    try:
        import kaldifeat

        info["kaldifeat"] = getattr(kaldifeat, "__version__", "unknown")
    except ImportError:
        info["kaldifeat"] = "not installed"
    return info
