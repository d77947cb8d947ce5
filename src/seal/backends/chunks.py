"""What both backends do the same way: run one chunk safely, sample one generate batch, save a model copy."""

from __future__ import annotations

import gc
import traceback
from pathlib import Path
from typing import Iterator

from seal.domains.base import InnerResult, Job
from seal.files import atomic_dir
from seal.generate import SamplingParams, generate_batch
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
    with atomic_dir(out_dir) as tmp:
        loaded.model.save_pretrained(tmp, safe_serialization=True)
        loaded.tokenizer.save_pretrained(tmp)
    return Path(out_dir)


def free_model(loaded) -> None:
    """Drop a model that is no longer needed (and its GPU memory)."""
    import torch

    if loaded is not None and hasattr(loaded, "model"):
        loaded.model = None  # the caller's handle no longer keeps the weights alive
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
