"""Where a result came from: the git checkout and the GPU driver, read by running `git` and `nvidia-smi`, and the
processor, read from /proc/cpuinfo.

The only module of seal that starts a process (the hostile-input test holds every other module to that). The
commands are fixed argument lists, never a shell, and nothing a model wrote reaches them.
"""

from __future__ import annotations

import platform
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


def cpu_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """The processor, as /proc/cpuinfo names it, with its family and model numbers where it gives them: two
    processors of one marketing name can take other BLAS kernels, which sum floats in another order (the same
    run on another CPU can end a long CPU update a few points apart). `platform.processor()` elsewhere."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return platform.processor() or None
    fields: dict[str, str] = {}
    for line in text.split("\n\n", 1)[0].splitlines():  # the first processor's block
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name") or fields.get("Model") or fields.get("cpu model") or platform.processor()
    if not name:
        return None
    numbers = [f"{k.removeprefix('cpu ')} {fields[k]}" for k in ("cpu family", "model") if fields.get(k)]
    return f"{name} ({', '.join(numbers)})" if numbers else name
