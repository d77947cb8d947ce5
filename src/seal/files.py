"""Writing files so that a crash leaves the old version or the new one, never half of one."""

from __future__ import annotations

import json
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Write a directory atomically: fill the yielded `<path>.tmp`; it replaces `path` only when the block
    finishes, so a crash leaves the old directory (or none), never half of one."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    yield tmp
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)


def write_json(path: Path, data) -> None:
    """`data` as indented JSON, replacing `path` atomically."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)


def write_jsonl(path: Path, rows) -> None:
    """One JSON object per line, replacing `path` atomically."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    tmp.replace(path)
