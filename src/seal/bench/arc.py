"""`seal bench arc`: ARC test-time training in the batched engine, one padded batch per step against
micro-batches of similar length (`BatchedEngine.split_by_length`), side by side on the same jobs.

The jobs are what `seal demo arc` trains: tool configs drawn the way the tiny ARC model's pretraining draws
them (`seal.world.tiny_arc.random_config`), planned by the ARC domain on generated `tl_table` tasks. Both
settings train the same adapters from the same seeds, so besides the time the bench prints how far their final
losses and answers differ (summation order only: they should agree to float precision).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from seal.domains.base import Invalid, Job


@dataclass
class ArcBenchRow:
    split: bool
    seconds: float
    configs: int
    real_tokens: int
    computed_tokens: int

    @property
    def s_per_config(self) -> float:
        return self.seconds / max(1, self.configs)


def arc_jobs(n: int, seed: int = 0, max_examples: int = 24) -> tuple[object, list[Job]]:
    """The tiny ARC model and `n` TTT jobs of random tool configs on generated `tl_table` tasks."""
    from seal.config import ModelConfig
    from seal.domains.arc.domain import ArcDomain, ArcSettings, task_context
    from seal.domains.base import SelfEdit
    from seal.model import load_model
    from seal.world.arc_tasks import world_tasks
    from seal.world.tiny_arc import ensure_tiny_arc_model, random_config

    loaded = load_model(ModelConfig(name_or_path=str(ensure_tiny_arc_model()), dtype="float32", device="cpu"))
    domain = ArcDomain(loaded.tokenizer, ArcSettings(max_examples=max_examples, lora_r=16, lora_alpha=32,
                                                     answer_max_new_tokens=200), seed=seed)
    tasks = [task_context(t) for t in world_tasks("eval", max(1, n // 2), ("tl_table",))]
    rng = random.Random(seed)
    jobs: list[Job] = []
    while len(jobs) < n:
        context = tasks[len(jobs) % len(tasks)]
        plan = domain.plan(context, SelfEdit(context.id, "", random_config(rng), "bench", len(jobs)))
        if not isinstance(plan, Invalid):
            jobs.append(Job(plan, domain.probes(context), seed=seed + len(jobs)))
    return loaded, jobs


def padded_tokens(jobs: list[Job], k: int, split: bool) -> tuple[int, int]:
    """Tokens a run of `jobs` in chunks of `k` computes on, padded (or split) as the engine does, and the real
    tokens among them."""
    from seal.inner.batched import BatchedEngine, length_groups
    from seal.inner.common import step_batches

    real = computed = 0
    for idx in BatchedEngine(k).chunks(None, jobs):  # the engine's own chunking (k fixed: no model needed)
        chunk = [jobs[i] for i in idx]
        steps = [step_batches(len(j.plan.sequences), j.plan.optim, j.seed) for j in chunk]
        for s in range(max(len(x) for x in steps)):
            lengths = [len(j.plan.sequences[i].input_ids) for j, x in zip(chunk, steps) if s < len(x) for i in x[s]]
            real += sum(lengths)
            groups = length_groups(lengths) if split else [list(range(len(lengths)))]
            computed += sum(max(lengths[i] for i in g) * len(g) for g in groups)
    return real, computed


def bench_arc(n: int = 32, k: int = 16, seed: int = 0, emit=print) -> dict:
    """Time the two settings on the same `n` jobs, `k` adapters a chunk; emit one line each and a verdict."""
    import torch

    from seal.inner.batched import BatchedEngine
    from seal.inner.engine import evaluate

    loaded, jobs = arc_jobs(n, seed)
    emit(f"{n} ARC TTT jobs on the tiny ARC model, {k} adapters a chunk, {torch.get_num_threads()} torch threads")
    rows, results = [], {}
    for split in (False, True):
        t0 = time.perf_counter()
        results[split] = evaluate(BatchedEngine(k, eval_batch_size=128, split_by_length=split), loaded, jobs)
        seconds = time.perf_counter() - t0
        rows.append(ArcBenchRow(split, seconds, n, *padded_tokens(jobs, k, split)))
        r = rows[-1]
        emit(f"{'micro-batches by length' if split else 'one padded batch a step':<24}  {r.seconds:7.1f} s  "
             f"{r.s_per_config:6.2f} s/config  tokens computed {r.computed_tokens / r.real_tokens:4.2f}x the real")
    loss_diff = max((abs(a - b) for x, y in zip(results[False], results[True])
                     for a, b in zip(x.step_losses[-1:], y.step_losses[-1:])), default=0.0)
    same = sum(x.answers == y.answers for x, y in zip(results[False], results[True]))
    speedup = rows[0].seconds / rows[1].seconds
    emit(f"speedup {speedup:.2f}x; final losses differ by at most {loss_diff:.1e}; "
         f"identical answers on {same} of {n} jobs")
    return {"speedup": speedup, "max_final_loss_diff": loss_diff, "same_answers": same, "jobs": n,
            "rows": [vars(r) | {"s_per_config": r.s_per_config} for r in rows]}
