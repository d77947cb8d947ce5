"""Progress bars with ETA and the one small logging interface the package uses.

Bars are rich progress bars; `SEAL_PROGRESS=0` turns them off (the tests do), and they are off when stderr
is not a terminal unless `SEAL_PROGRESS=1`.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from typing import Callable, Iterator

log = logging.getLogger("seal")


def _enabled() -> bool:
    flag = os.environ.get("SEAL_PROGRESS")
    if flag is not None:
        return flag not in ("0", "false", "no")
    return sys.stderr.isatty()


@contextmanager
def progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """`with progress("inner loops", n) as advance: ... advance(k)` shows done/total, elapsed and ETA."""
    if not _enabled() or total <= 0:
        yield lambda n=1: None
        return
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        transient=False,
    )
    with bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)


def setup_logging(verbose: bool = False) -> None:
    if log.handlers:
        return
    from rich.logging import RichHandler

    handler = RichHandler(show_path=False, show_time=True, markup=False)
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False
