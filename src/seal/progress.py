"""Progress bars with ETA and the one small logging interface the package uses.

Bars are rich progress bars; `SEAL_PROGRESS=0` turns them off (the tests do). When stderr is not a terminal
(a batch job's log file) and `SEAL_PROGRESS` is unset, long work logs a line at every tenth instead, with
elapsed time and ETA; `SEAL_PROGRESS=1` forces the bars.
"""

from __future__ import annotations

import logging
import os
import sys
import time
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
    if total <= 0 or os.environ.get("SEAL_PROGRESS", "") in ("0", "false", "no"):
        yield lambda n=1: None
        return
    if not _enabled():
        yield _log_lines(description, total)
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


def _log_lines(description: str, total: int) -> Callable[[int], None]:
    """An `advance` that logs `description: done/total, elapsed, eta` each time another tenth is done (not in
    the first 5 seconds: quick work stays quiet)."""
    step = -(-total // 10)
    t0, state = time.monotonic(), {"done": 0, "next": step}

    def advance(n: int = 1) -> None:
        state["done"] += n
        done = state["done"]
        if done >= state["next"] or done == total:
            state["next"] = done + step
            elapsed = time.monotonic() - t0
            if elapsed < 5:
                return
            eta = elapsed / done * max(0, total - done)
            log.info("%s: %d/%d, %s elapsed, eta %s", description, done, total, _hms(elapsed), _hms(eta))

    return advance


def _hms(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}"


def setup_logging(verbose: bool = False) -> None:
    if log.handlers:
        return
    from rich.logging import RichHandler

    handler = RichHandler(show_path=False, show_time=True, markup=False)
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False
