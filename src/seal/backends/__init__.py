"""Where the heavy work of a recipe runs: this process (`local`) or a pool of Ray workers (`ray`).

A backend loads models, samples self-edits, runs inner-loop chunks and finetunes the policy. The run layer
(`seal.run`) only calls these verbs, so the same recipe runs on a laptop or across a cluster:

    load(path)                        a model handle (a `LoadedModel` here; a path + tokenizer with Ray)
    free(model)                       drop a handle that is no longer needed
    generate_batches(model, batches)  sampled completions, batch by batch, as each finishes
    chunks / run_chunks(model, jobs)  inner loops, chunk by chunk, as each finishes
    sft(model, examples, ...)         the ReST-EM M-step; returns the new checkpoint directory
    save_copy(model, dir)             the policy unchanged as a checkpoint (a round that kept nothing)
    close()

A chunk that raises is recorded as failed (every job in it gets the error) and the run goes on; a chunk that
runs out of memory is split in halves and retried first (`seal.backends.chunks`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Protocol

from seal.config import RunConfig
from seal.domains.base import InnerResult, Job
from seal.generate import SamplingParams


class Backend(Protocol):
    name: str
    engine_name: str

    def load(self, path: str | None = None): ...

    def free(self, loaded) -> None: ...

    def generate_batches(self, loaded, batches: list[tuple[int, list[str]]], params: SamplingParams,
                         seeds: list[int]) -> Iterator[tuple[int, list[str]]]: ...

    def chunks(self, loaded, jobs: list[Job]) -> list[list[int]]: ...

    def run_chunks(self, loaded, jobs: list[Job], chunks: list[list[int]]
                   ) -> Iterator[tuple[list[int], list[InnerResult]]]: ...

    def sft(self, loaded, examples: list[tuple[str, str]], out_dir: Path, seed: int) -> Path: ...

    def save_copy(self, loaded, out_dir: Path) -> Path: ...

    def close(self) -> None: ...


def make_backend(cfg: RunConfig, local: bool = False) -> Backend:
    """The backend `inner.backend` names; `local=True` forces this process (recipes that keep a model in
    memory and update it, such as continued pretraining)."""
    if cfg.inner.backend == "ray" and not local:
        from seal.backends.ray import RayBackend

        return RayBackend(cfg)
    from seal.backends.local import LocalBackend

    return LocalBackend(cfg)
