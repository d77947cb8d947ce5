"""Engines run inner loops: jobs (an update plan and the probes to answer) in, raw answers out.

An engine supplies `chunks(loaded, jobs)`, how it groups jobs, and `run_chunk(loaded, jobs)`. Callers that
persist results run one chunk at a time, so a resumed run recomputes exactly the chunks an interrupted one
lost, with the same composition; the Ray pool ships chunks to workers.
"""

from __future__ import annotations

from typing import Callable, Protocol

from seal.config import InnerConfig
from seal.domains.base import InnerResult, Job


class Engine(Protocol):
    name: str

    def chunks(self, loaded, jobs: list[Job]) -> list[list[int]]: ...

    def run_chunk(self, loaded, jobs: list[Job]) -> list[InnerResult]: ...


def make_engine(cfg: InnerConfig) -> Engine:
    if cfg.engine == "sequential":
        from seal.inner.sequential import SequentialEngine

        return SequentialEngine(cfg.eval_batch_size)
    from seal.inner.batched import BatchedEngine

    return BatchedEngine(cfg.max_adapters_per_batch, cfg.eval_batch_size, cfg.split_by_length)


def evaluate(engine: Engine, loaded, jobs: list[Job],
             on_chunk: Callable[[list[int], list[InnerResult]], None] | None = None,
             skip: Callable[[list[int]], bool] | None = None) -> list[InnerResult | None]:
    """Run `jobs` chunk by chunk. `skip(chunk)` lets a caller skip chunks it already has; `on_chunk` gets each
    finished chunk's job indices and results (to persist them at once)."""
    results: list[InnerResult | None] = [None] * len(jobs)
    for chunk in engine.chunks(loaded, jobs):
        if skip is not None and skip(chunk):
            continue
        out = engine.run_chunk(loaded, [jobs[i] for i in chunk])
        for i, r in zip(chunk, out):
            results[i] = r
        if on_chunk is not None:
            on_chunk(chunk, out)
    return results
