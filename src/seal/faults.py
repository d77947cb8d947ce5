"""Named crash points, for the crash-consistency tests.

`SEAL_CRASH_AT=<point>:<n>` makes the process kill itself with SIGKILL the n-th time it reaches `<point>` (no
clean-up, exactly like `kill -9`). Points: `generate` (a batch of self-edits written, not yet stored),
`inner` (a chunk of inner loops finished, not yet stored), `sft` (the policy trained, not yet saved),
`store` (inside a store transaction, before its commit). Unset, a crash point is one environment lookup.
"""

from __future__ import annotations

import os
import signal

_reached: dict[str, int] = {}


def crash_point(name: str) -> None:
    spec = os.environ.get("SEAL_CRASH_AT")
    if not spec:
        return
    point, _, nth = spec.partition(":")
    if point != name:
        return
    _reached[name] = _reached.get(name, 0) + 1
    if _reached[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
