"""The local backend's fault handling: a failing chunk is recorded, out of memory is retried on halves."""

import torch

from seal.backends.chunks import run_chunk_safely
from seal.backends.local import LocalBackend
from seal.config import RunConfig
from seal.domains.base import InnerResult, Job, Probe, TrainSequence, UpdatePlan


class FlakyEngine:
    """Runs out of memory on chunks bigger than `fits`, and raises on a job marked bad."""

    name = "flaky"

    def __init__(self, fits):
        self.fits, self.calls = fits, []

    def run_chunk(self, loaded, jobs):
        self.calls.append(len(jobs))
        if len(jobs) > self.fits:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if any(j.seed == 13 for j in jobs):
            raise IndexError("index out of range in self")
        return [InnerResult([f"answer {j.seed}"]) for j in jobs]


def _jobs(seeds):
    plan = UpdatePlan((TrainSequence((1, 2, 3), (1, 1, 1)),))
    return [Job(plan, (Probe("q"),), seed=s) for s in seeds]


def test_out_of_memory_is_retried_on_halves():
    engine = FlakyEngine(fits=2)
    out = run_chunk_safely(engine, None, _jobs([1, 2, 3, 4, 5]))
    assert [r.answers for r in out] == [[f"answer {s}"] for s in [1, 2, 3, 4, 5]]
    assert engine.calls == [5, 2, 3, 1, 2]  # 5 -> 2 + 3 -> 3 -> 1 + 2


def test_a_chunk_that_raises_is_recorded_as_failed_and_oom_at_one_job_too():
    out = run_chunk_safely(FlakyEngine(fits=8), None, _jobs([1, 13]))
    assert all(r.failed == "IndexError: index out of range in self" and r.answers == [] for r in out)
    (alone,) = run_chunk_safely(FlakyEngine(fits=0), None, _jobs([1]))
    assert alone.failed.startswith("OutOfMemoryError")


def test_local_backend_streams_every_chunk_in_order():
    backend = LocalBackend(RunConfig())
    backend.engine = FlakyEngine(fits=8)
    jobs = _jobs([1, 2, 13, 4])
    got = list(backend.run_chunks(None, jobs, [[0, 1], [2], [3]]))
    assert [ch for ch, _ in got] == [[0, 1], [2], [3]]
    assert [r.failed is None for _, rs in got for r in rs] == [True, True, False, True]
