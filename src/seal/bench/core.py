"""What the stages of `seal bench gpu` share: the plan (sizes, caps), the clock that enforces a stage's cap,
the bench handle passed to every stage, and device helpers."""

from __future__ import annotations

import gc
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import torch

from seal.bench.inner import BenchSize

MB = 2**20
REPO_ROOT = Path(__file__).resolve().parents[3]
# what the GPU machines lack; the rehearsal hides them so that it takes the GPU run's code path
ABSENT_ON_GPU_MACHINES = ("trl", "datasets", "pyarrow", "ray", "matplotlib", "httpx")


@dataclass(frozen=True)
class GpuPlan:
    """What `seal bench gpu` measures, at which sizes, under which time caps (seconds)."""

    rehearsal: bool = False
    device: str = "cuda"
    dtype: str = "bfloat16"
    presets: tuple[str, ...] = ("qwen2.5-7b", "llama-3.2-1b")  # the first one carries the targets
    layers: int | None = None  # None: the published depth
    width_divisor: int = 1  # > 1: toy widths (rehearsal)
    size: BenchSize = field(default_factory=BenchSize)  # the paper's inner loop
    ks: tuple[int, ...] = (32, 8, 128)  # in order of value
    sequential_jobs: int = 1
    matmul_n: int = 8192
    max_probe_k: int = 256  # the memory stage checks the estimate's K up to this
    engines_k: int = 4
    engines_layers: int = 2
    # the engine comparison trains at the paper's size; two short answers per self-edit keep its decode (one
    # probe at a time, for unpadded log-probabilities) to seconds
    engines_size: BenchSize = field(default_factory=lambda: BenchSize(questions=2, answer_tokens=16))
    e2e: tuple[str, ...] = ("data.n_eval=8", "restem.n_passages=4", "restem.samples=2", "eval.samples=1")
    budget_s: float = 270.0  # stages only; with start-up and the summary the command stays under 5 minutes
    threads: int | None = None  # CPU threads for torch (None: torch's default)
    caps: tuple[tuple[str, float], ...] = (
        ("matmul", 20), ("inner:qwen2.5-7b", 150), ("memory_estimate", 30), ("profile", 40), ("gpu_tests", 40),
        ("engines_bf16", 30), ("knowledge_e2e", 60), ("inner:llama-3.2-1b", 70))


def full_plan() -> GpuPlan:
    return GpuPlan()


def rehearsal_plan() -> GpuPlan:
    """Every stage on CPU at toy sizes: 2-layer presets at 1/16 width, K <= 4, a few training steps."""
    toy = BenchSize(sequences=2, seq_tokens=12, questions=2, answer_tokens=3, prompt_tokens=6, epochs=2, rank=4,
                    alpha=8)
    caps = tuple((name, 90.0) for name, _ in GpuPlan().caps)
    # one thread: toy models are overhead-bound, and two threads spinning on a shared 2-core machine run 10-40x
    # slower than one
    return GpuPlan(rehearsal=True, device="cpu", layers=2, width_divisor=16, size=toy, ks=(3, 2, 4), matmul_n=256,
                   max_probe_k=4, engines_k=2, engines_size=toy, budget_s=600.0, caps=caps, threads=1,
                   e2e=("data.n_eval=2", "restem.n_passages=2", "restem.samples=2", "eval.samples=1",
                        "generation.max_new_tokens=24", "inner.epochs=2", "inner.answer_max_new_tokens=4",
                        "restem.sft.epochs=1", "eval.passage_repeated=false"))


# --- stopping a stage at its cap ---


class StageCapReached(BaseException):
    """Raised at the first forward pass after a stage's cap. A BaseException, so that code which records
    ordinary errors and carries on (a recipe's chunk runner) lets it through."""


class Clock:
    """A stage's time cap, checked at every forward pass of the watched model (or of any module)."""

    def __init__(self, cap_s: float):
        self.start = time.perf_counter()
        self.cap_s = cap_s
        self.train_steps = 0  # forward passes in training mode seen while watching

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> float:
        return self.cap_s - self.elapsed()

    def check(self) -> None:
        if self.left() < 0:
            raise StageCapReached(f"stage cap of {self.cap_s:.0f} s reached")

    @contextmanager
    def watching(self, model: torch.nn.Module | None = None) -> Iterator["Clock"]:
        """Check the cap at every forward of `model`'s decoder (wrappers such as peft's may call the model's
        `forward` directly, past its hooks; the decoder is always called as a module), or of every module's
        forward when `model` is None (a recipe that loads its own model)."""

        def hook(module, args):
            if module.training:
                self.train_steps += 1
            self.check()

        if model is None:
            handle = torch.nn.modules.module.register_module_forward_pre_hook(lambda m, a: self.check())
        else:
            handle = model.get_decoder().register_forward_pre_hook(hook)
        try:
            yield self
        finally:
            handle.remove()


# --- the run ---


@dataclass
class Bench:
    """What the stages share: the plan, the device, models built once, figures later stages compare with."""

    plan: GpuPlan
    device: torch.device
    dtype: torch.dtype
    models: dict = field(default_factory=dict)  # preset -> LoadedModel
    init_s: dict = field(default_factory=dict)  # preset -> seconds its random init took
    matmul_tflops: float | None = None
    inner: dict = field(default_factory=dict)  # preset -> the inner stage's result
    save: Callable[[], None] = lambda: None  # rewrites the JSON mid-stage (after every measured chunk)

    def model(self, preset: str):
        """Preset `preset` at the plan's depth and width, built on the device once and kept."""
        from seal.bench.inner import IdTokenizer, preset_model
        from seal.model import LoadedModel

        if preset not in self.models:
            self.drop_models()  # one preset resident at a time: peaks are then the preset's own
            t0 = time.perf_counter()
            model = preset_model(preset, self.plan.layers, self.device, self.dtype,
                                 width_divisor=self.plan.width_divisor)
            model.eval().requires_grad_(False)
            sync(self.device)
            self.models[preset] = LoadedModel(model, IdTokenizer(), f"preset:{preset}")
            self.init_s[preset] = time.perf_counter() - t0
        return self.models[preset]

    def drop_models(self) -> None:
        self.models.clear()
        free_memory()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
