"""The Ray backend: inner loops, self-edit sampling and the policy SFT on a pool of Ray workers.

    inner: {backend: ray}
    ray: {num_workers: 8}        # one worker per GPU when the cluster has GPUs; `address: auto` joins a cluster

The driver holds the run store, the tokenizer and the plans; it needs no GPU. Each worker is a Ray actor
that loads the current policy once (lazily, by path: a restarted or new worker reloads it by itself) and runs
the configured engine on the chunks it is sent. Chunks and generate batches are streamed: the driver keeps
every worker busy and stores each result as it arrives, so a crash loses at most the chunks in flight.

Faults: a worker that dies (killed, out of memory, node lost) is replaced by a fresh actor and its chunk is
retried, up to `ray.max_chunk_retries` times, then recorded as failed; a chunk whose inner loops raise is a
deterministic failure, recorded as failed by the worker at once; an error outside the inner loops (a
checkpoint a worker cannot read) stops the run, as it would in one process. Placement is Ray's: we only say
how many GPUs/CPUs a worker needs.

Model paths must be readable by every worker: on more than one machine, put checkpoints (the run directory)
on a shared filesystem.
"""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path
from typing import Iterator

from seal.backends.chunks import failed_results, free_model, run_chunk_safely, save_model_copy
from seal.config import ConfigError, RunConfig
from seal.domains.base import InnerResult, Job
from seal.files import atomic_dir
from seal.generate import SamplingParams, generate_batch
from seal.progress import log


def import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("inner.backend is 'ray' but Ray is not installed: pip install 'seal[ray]'") from None
    return ray


class RemoteModel:
    """A model that lives on the workers: its path, and a tokenizer on the driver (for plans and prompts)."""

    def __init__(self, path: str, tokenizer):
        self.path = path
        self.tokenizer = tokenizer


class InnerWorker:
    """A Ray actor: one model in memory, the configured engine, generate calls."""

    def __init__(self, cfg: dict, threads: int):
        import torch

        from seal.inner.engine import make_engine

        torch.set_num_threads(max(1, threads))
        self.cfg = RunConfig.model_validate(cfg)
        self.engine = make_engine(self.cfg.inner)
        share = self.cfg.ray.num_gpus_per_worker  # resolved by the driver (never `auto` here)
        if share != "auto" and 0 < share < 1 and hasattr(self.engine, "memory_share"):
            self.engine.memory_share = share  # workers sharing a GPU
        self.loaded = None

    def _model(self, path: str):
        if self.loaded is None or self.loaded.path != path:
            from seal.model import load_model

            if self.loaded is not None:
                free_model(self.loaded)
                self.loaded = None
            self.loaded = load_model(self.cfg.model, path=path)
        return self.loaded

    def pid(self) -> int:
        return os.getpid()

    def chunks(self, path: str, jobs: list[Job]) -> list[list[int]]:
        return self.engine.chunks(self._model(path), jobs)

    def run_chunk(self, path: str, jobs: list[Job]) -> list[InnerResult]:
        return run_chunk_safely(self.engine, self._model(path), jobs)

    def generate(self, path: str, prompts: list[str], params: SamplingParams, seed: int) -> list[str]:
        loaded = self._model(path)
        return generate_batch(loaded.model, loaded.tokenizer, prompts, params, greedy=False, seed=seed)


def _save_task(cfg: dict, path: str, out_dir: str) -> str:
    from seal.model import load_model

    return str(save_model_copy(load_model(RunConfig.model_validate(cfg).model, path=path), Path(out_dir)))


def _sft_task(cfg: dict, path: str, examples: list[tuple[str, str]], out_dir: str, seed: int) -> str:
    from seal.model import load_model
    from seal.outer.sft import sft_policy

    run_cfg = RunConfig.model_validate(cfg)
    return str(sft_policy(load_model(run_cfg.model, path=path), examples, run_cfg.restem.sft, Path(out_dir), seed))


class RayBackend:
    """`seal.backends` verbs on a pool of Ray actors."""

    name = "ray"

    def __init__(self, cfg: RunConfig):
        self.ray = ray = import_ray()
        self.cfg = cfg
        self.rc = cfg.ray
        self._owns_cluster = not ray.is_initialized()
        if self._owns_cluster:
            ray.init(address=cfg.ray.address, include_dashboard=False, log_to_driver=True,
                     runtime_env={"env_vars": {"TOKENIZERS_PARALLELISM": "false",
                                               "SEAL_PROGRESS": "0"}})
        res = ray.cluster_resources()
        self.rc = self._resolve_auto(self.rc, res.get("GPU", 0))
        self.cfg = cfg.model_copy(update={"ray": self.rc})  # what the workers are sent: no `auto` left
        need = self.rc.num_gpus_per_worker
        if need > 0 and res.get("GPU", 0) < need * self.rc.num_workers:
            raise ConfigError(f"{self.rc.num_workers} workers × {need:g} GPUs (ray.num_workers × "
                              f"ray.num_gpus_per_worker) but the Ray cluster has {res.get('GPU', 0):g} GPUs; "
                              "lower them, or set ray.num_gpus_per_worker=0 (and ray.sft_num_gpus=0) on CPUs")
        if res.get("CPU", 0) < self.rc.num_cpus_per_worker * self.rc.num_workers:
            raise ConfigError(f"{self.rc.num_workers} workers × {self.rc.num_cpus_per_worker:g} CPUs but the Ray "
                              f"cluster has {res.get('CPU', 0):g} CPUs; lower ray.num_workers or "
                              "ray.num_cpus_per_worker")
        self._actor_cls = ray.remote(InnerWorker)
        self.workers: list = []
        log.info("Ray: %d workers (%g GPUs, %g CPUs each); cluster has %g CPUs, %g GPUs", self.rc.num_workers,
                 need, self.rc.num_cpus_per_worker, res.get("CPU", 0), res.get("GPU", 0))

    @staticmethod
    def _resolve_auto(rc, gpus: float):
        """`auto` GPU counts: one each on a cluster that has GPUs, none otherwise."""
        pick = lambda v: (1.0 if gpus > 0 else 0.0) if v == "auto" else v  # noqa: E731
        return rc.model_copy(update={"num_gpus_per_worker": pick(rc.num_gpus_per_worker),
                                     "sft_num_gpus": pick(rc.sft_num_gpus)})

    @property
    def engine_name(self) -> str:
        return self.cfg.inner.engine

    # --- workers ---

    def _new_worker(self):
        return self._actor_cls.options(num_gpus=self.rc.num_gpus_per_worker, num_cpus=self.rc.num_cpus_per_worker,
                                       max_restarts=0).remote(self.cfg.model_dump(mode="json"),
                                                              int(self.rc.num_cpus_per_worker))

    def _ensure_workers(self) -> None:
        """Start the pool if it is not running, and wait until every worker is up (placed and constructed)."""
        if len(self.workers) >= self.rc.num_workers:
            return
        while len(self.workers) < self.rc.num_workers:
            self.workers.append(self._new_worker())
        try:
            self.ray.get([w.pid.remote() for w in self.workers], timeout=self.rc.start_timeout_s)
        except self.ray.exceptions.GetTimeoutError:
            raise RuntimeError(f"the Ray workers did not start within {self.rc.start_timeout_s:g} s: the cluster "
                               "cannot place them (see `ray status`)") from None

    def _stop_workers(self) -> None:
        for w in self.workers:
            self.ray.kill(w)
        self.workers = []

    def worker_pids(self) -> list[int]:
        self._ensure_workers()
        return self.ray.get([w.pid.remote() for w in self.workers])

    def _worker_died(self, err: BaseException) -> bool:
        ex = self.ray.exceptions
        died = (ex.RayActorError, ex.OutOfMemoryError, ex.NodeDiedError, ex.WorkerCrashedError, ex.ObjectLostError)
        return isinstance(err, died)

    def _stream(self, method: str, tasks: list[tuple[object, tuple]], on_fail) -> Iterator[tuple[object, object]]:
        """Run `worker.method(*args)` for every (key, args), each on the next free worker; yield (key, result)
        as they finish. A worker that dies is replaced and its task retried, up to `ray.max_chunk_retries`
        times, after which `on_fail(key, err)` makes the result. An exception raised by the task itself
        (e.g. the model cannot be loaded) stops the run, as it would locally; a chunk's own errors never get
        here (the worker records them per job)."""
        ray = self.ray
        self._ensure_workers()
        queue = deque((key, args, 0) for key, args in tasks)
        free = deque(range(len(self.workers)))
        running: dict = {}

        def dispatch():
            while queue and free:
                slot = free.popleft()
                key, args, attempt = queue.popleft()
                running[getattr(self.workers[slot], method).remote(*args)] = (slot, key, args, attempt)

        try:
            dispatch()
            while running:
                (ref,), _ = ray.wait(list(running), num_returns=1)
                slot, key, args, attempt = running.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayTaskError:
                    raise
                except ray.exceptions.RayError as err:
                    if not self._worker_died(err):
                        raise
                    log.warning("Ray worker %d died (%s); starting a fresh one", slot, type(err).__name__)
                    self.ray.kill(self.workers[slot])
                    self.workers[slot] = self._new_worker()
                    free.append(slot)
                    if attempt < self.rc.max_chunk_retries:
                        queue.append((key, args, attempt + 1))
                        dispatch()
                        continue
                    result = on_fail(key, RuntimeError(f"its worker died {attempt + 1} times ({type(err).__name__})"))
                else:
                    free.append(slot)
                dispatch()  # keep the workers busy while the caller stores this result
                yield key, result
        finally:
            for ref in running:  # an abandoned stream (the caller raised) leaves no queued work behind
                try:
                    ray.cancel(ref)
                except Exception:  # noqa: BLE001 - already finished or its worker is gone
                    pass

    # --- backend verbs ---

    def load(self, path: str | None = None) -> RemoteModel:
        from seal.model import load_tokenizer, resolve_model_path

        path = path or resolve_model_path(self.cfg.model)
        return RemoteModel(path, load_tokenizer(path, self.cfg.model.trust_remote_code, self.cfg.model.revision))

    def free(self, loaded) -> None:
        pass  # workers swap models lazily when a task names another path

    def generate_batches(self, loaded, batches: list[tuple[int, list[str]]], params: SamplingParams,
                         seeds: list[int]) -> Iterator[tuple[int, list[str]]]:
        def fail(key, err):
            raise RuntimeError(f"self-edit generation batch {key} failed: {err}") from err

        tasks = [(b, (loaded.path, prompts, params, seed)) for (b, prompts), seed in zip(batches, seeds)]
        return self._stream("generate", tasks, fail)

    def chunks(self, loaded, jobs: list[Job]) -> list[list[int]]:
        def fail(key, err):
            raise RuntimeError(f"could not compute chunks on a Ray worker: {err}") from err

        ((_, out),) = self._stream("chunks", [(0, (loaded.path, jobs))], fail)
        return out

    def run_chunks(self, loaded, jobs: list[Job], chunks: list[list[int]]
                   ) -> Iterator[tuple[list[int], list[InnerResult]]]:
        tasks = [(i, (loaded.path, [jobs[j] for j in ch])) for i, ch in enumerate(chunks)]
        for i, results in self._stream("run_chunk", tasks, lambda i, err: failed_results(len(chunks[i]), err)):
            yield chunks[i], results

    def sft(self, loaded, examples: list[tuple[str, str]], out_dir: Path, seed: int) -> Path:
        """The M-step as a Ray task on its own GPU(s). The workers are stopped first so that the task can have
        their devices; they restart, with the new policy, at the next inner loop."""
        self._stop_workers()
        task = self.ray.remote(_sft_task).options(num_gpus=self.rc.sft_num_gpus,
                                                  num_cpus=self.rc.num_cpus_per_worker, max_retries=1)
        return Path(self.ray.get(task.remote(self.cfg.model_dump(mode="json"), loaded.path, examples,
                                             str(Path(out_dir).resolve()), seed)))

    def save_copy(self, loaded, out_dir: Path) -> Path:
        """The unchanged policy as `out_dir` (a round that kept nothing): a copy of its directory, or saved by a
        Ray task when it is a hub id."""
        import shutil

        out_dir = Path(out_dir)
        if Path(loaded.path).is_dir():
            with atomic_dir(out_dir) as tmp:
                shutil.copytree(loaded.path, tmp, ignore=shutil.ignore_patterns("trainer"))
            return out_dir
        self._stop_workers()
        task = self.ray.remote(_save_task).options(num_gpus=0, num_cpus=self.rc.num_cpus_per_worker)
        return Path(self.ray.get(task.remote(self.cfg.model_dump(mode="json"), loaded.path, str(out_dir.resolve()))))

    def close(self) -> None:
        self._stop_workers()
        if self._owns_cluster:
            self.ray.shutdown()
