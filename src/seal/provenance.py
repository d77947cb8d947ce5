"""Where a result came from: the git checkout and the GPU driver, read by running `git` and `nvidia-smi`.

The only module of seal that starts a process (the hostile-input test holds every other module to that). The
commands are fixed argument lists, never a shell, and nothing a model wrote reaches them.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(args, check=False, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None


def git_state(where: Path) -> tuple[str, bool] | None:
    """(HEAD's commit, whether tracked files differ from it) of the checkout holding `where`; None outside one."""
    head = _run(["git", "-C", str(where), "rev-parse", "HEAD"], timeout=10)
    if head is None or head.returncode != 0:
        return None
    status = _run(["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"], timeout=10)
    return head.stdout.strip(), bool(status and status.stdout.strip())


def nvidia_driver() -> str | None:
    """The NVIDIA driver's version from `nvidia-smi`, or None where there is none."""
    out = _run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], timeout=20)
    if out is None or out.returncode != 0 or not out.stdout.strip():
        return None
    return out.stdout.strip().splitlines()[0]
