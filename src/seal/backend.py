"""Where the heavy work of a recipe runs: this process (`local`) or a Ray pool (`ray`, `seal.distributed`).

A backend loads models, samples self-edits, runs inner-loop chunks and finetunes the policy. Recipes only
call these four verbs, so the same recipe runs on a laptop or across a cluster:

    load(path)                        a model handle (a `LoadedModel` here; a path + tokenizer with Ray)
    generate_batches(model, batches)  sampled completions, batch by batch, as each finishes
    chunks / run_chunks(model, jobs)  inner loops, chunk by chunk, as each finishes
    sft(model, examples, ...)         the ReST-EM M-step; returns the new checkpoint directory
    save_copy(model, dir)             the policy unchanged as a checkpoint (a round that kept nothing)

A chunk that raises is recorded as failed (every job in it gets the error) and the run goes on; a chunk that
runs out of memory is split in halves and retried first.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Iterator

from seal.config import RunConfig
from seal.domains.base import InnerResult, Job
from seal.generate import SamplingParams, generate_batch
from seal.inner.engine import make_engine
from seal.progress import log


def failed_results(n: int, err: BaseException) -> list[InnerResult]:
    reason = f"{type(err).__name__}: {err}"[:500]
    return [InnerResult([], failed=reason) for _ in range(n)]


def _is_oom(err: BaseException) -> bool:
    import torch

    return isinstance(err, torch.OutOfMemoryError) or "out of memory" in str(err).lower()


def run_chunk_safely(engine, loaded, jobs: list[Job]) -> list[InnerResult]:
    """`engine.run_chunk`, with out-of-memory retried on halves (down to one job) and any other error
    recorded as the chunk's failure."""
    try:
        return engine.run_chunk(loaded, jobs)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as err:  # noqa: BLE001 - recorded per job, the run goes on
        if _is_oom(err) and len(jobs) > 1:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            half = len(jobs) // 2
            log.warning("out of memory on a chunk of %d adapters; retrying as %d + %d", len(jobs), half,
                        len(jobs) - half)
            return run_chunk_safely(engine, loaded, jobs[:half]) + run_chunk_safely(engine, loaded, jobs[half:])
        log.error("a chunk of %d inner loops failed; recorded as failed:\n%s", len(jobs), traceback.format_exc())
        return failed_results(len(jobs), err)


def generate_local(loaded, batches: list[tuple[int, list[str]]], params: SamplingParams, seeds: list[int]
                   ) -> Iterator[tuple[int, list[str]]]:
    """Sampled completions of each (batch id, prompts), in order, from a model in this process."""
    for (b, prompts), seed in zip(batches, seeds):
        yield b, generate_batch(loaded.model, loaded.tokenizer, prompts, params, greedy=False, seed=seed)


def save_model_copy(loaded, out_dir: Path) -> Path:
    """Save `loaded` (model and tokenizer) as `out_dir`, atomically."""
    from seal.run import atomic_dir

    with atomic_dir(out_dir) as tmp:
        loaded.model.save_pretrained(tmp, safe_serialization=True)
        loaded.tokenizer.save_pretrained(tmp)
    return Path(out_dir)


class LocalBackend:
    """Everything in this process, on its one device."""

    name = "local"

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        self.engine = make_engine(cfg.inner)

    @property
    def engine_name(self) -> str:
        return self.engine.name

    def load(self, path: str | None = None):
        from seal.model import load_model

        return load_model(self.cfg.model, path=path)

    def free(self, loaded) -> None:
        from seal.run import free

        free(loaded)

    def generate_batches(self, loaded, batches: list[tuple[int, list[str]]], params: SamplingParams,
                         seeds: list[int]) -> Iterator[tuple[int, list[str]]]:
        return generate_local(loaded, batches, params, seeds)

    def chunks(self, loaded, jobs: list[Job]) -> list[list[int]]:
        return self.engine.chunks(loaded, jobs)

    def run_chunks(self, loaded, jobs: list[Job], chunks: list[list[int]]
                   ) -> Iterator[tuple[list[int], list[InnerResult]]]:
        for ch in chunks:
            yield ch, run_chunk_safely(self.engine, loaded, [jobs[i] for i in ch])

    def sft(self, loaded, examples: list[tuple[str, str]], out_dir: Path, seed: int) -> Path:
        from seal.outer.restem import sft_policy

        return sft_policy(loaded, examples, self.cfg.restem.sft, out_dir, seed)

    def save_copy(self, loaded, out_dir: Path) -> Path:
        return save_model_copy(loaded, out_dir)

    def close(self) -> None:
        pass


def make_backend(cfg: RunConfig):
    if cfg.inner.backend == "ray":
        from seal.distributed import RayBackend

        return RayBackend(cfg)
    return LocalBackend(cfg)
