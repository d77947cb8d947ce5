"""`seal bench gpu`: everything one short GPU slot can tell us, in one command and one JSON file.

    PYTHONPATH=src python3 -m seal.cli bench gpu --out gpu.json            # a CUDA machine: at most 5 min on an H200
    PYTHONPATH=src python3 -m seal.cli bench gpu --rehearse --out r.json   # the same stages on CPU at toy sizes

Stages run in order of value, each under its own time cap and all under one budget; the JSON is rewritten as each
stage starts, after every chunk it measures and when it ends, so a run stopped at any point keeps every finished
figure. A stage over its cap is stopped at the
next forward pass and recorded as `partial` with what it had measured; a stage that fails is recorded with
its error, and the next stage runs.

    matmul             the device's own ceiling: TFLOP/s of a large bf16 matmul (utilisation is quoted against it)
    inner:qwen2.5-7b   `seal bench inner` at the paper's inner-loop size: sequential at K=1, batched at K=32, 8,
                       128 (a K that runs out of memory stops larger ones; one that would not finish in time is
                       skipped); seconds per evaluation, ratio, tokens/s, TFLOP/s, peak memory
    memory_estimate    the chunk-size estimate against the peak memory measured, and a check that it fits
    profile            torch.profiler's top kernels of a tenth of one batched K=32 chunk
    gpu_tests          the tests marked `gpu` (`seal.bench_checks`): the engines agree in bf16, the base is
                       bit-identical after many inner loops, exported adapters reload
    engines_bf16       both engines in bf16 on a 2-layer Qwen2.5-7B at the paper's inner-loop size
    knowledge_e2e      one ReST-EM round of the knowledge recipe and its table on the built-in tiny model
    inner:llama-3.2-1b as the 7B stage

The GPU machine needs torch, transformers, peft, accelerate, safetensors, pyyaml, typer, rich and pydantic
only: nothing here imports trl, datasets, pyarrow or ray (policy SFT is skipped, and said so, without trl).
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
import traceback
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import torch

from seal.bench import PEAK_TFLOPS, PRESETS, BenchSize

MB = 2**20
REPO_ROOT = Path(__file__).resolve().parents[2]
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
        from seal.bench import IdTokenizer, preset_model
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


def stages(plan: GpuPlan) -> list[tuple[str, Callable]]:
    from seal import bench_stages as s

    first, *rest = plan.presets
    out = [("matmul", s.stage_matmul), (f"inner:{first}", s.inner_stage(first)),
           ("memory_estimate", s.stage_memory_estimate), ("profile", s.stage_profile),
           ("gpu_tests", s.stage_gpu_tests), ("engines_bf16", s.stage_engines_bf16),
           ("knowledge_e2e", s.stage_knowledge_e2e)]
    return out + [(f"inner:{p}", s.inner_stage(p)) for p in rest]


def run_stage(fn: Callable, bench: Bench, cap_s: float, result: dict | None = None) -> dict:
    """Run one stage under its cap: `ok`, `partial` (stopped at the cap) or `failed`, with what it measured
    (in `result`, filled as the stage goes)."""
    result = {} if result is None else result
    clock = Clock(cap_s)
    rec: dict = {"cap_s": round(cap_s, 1)}
    try:
        fn(bench, clock, result)
        rec["status"] = "ok"
    except StageCapReached as e:
        rec.update(status="partial", note=str(e))
    except Exception as e:  # noqa: BLE001 - recorded; the next stage runs
        rec.update(status="failed", error=f"{type(e).__name__}: {e}"[:2000], traceback=traceback.format_exc()[-4000:])
    finally:
        free_memory()
    rec["seconds"] = round(clock.elapsed(), 2)
    rec["result"] = result
    return rec


def hide_packages(names: tuple[str, ...] = ABSENT_ON_GPU_MACHINES) -> dict:
    """Make `names` unimportable for the rest of this process, as they are on the GPU machines (an import
    raises ModuleNotFoundError; `importlib.util.find_spec` answers None). For the CPU rehearsal's process only:
    a package imported before cannot be hidden, and is reported."""
    already = [n for n in names if sys.modules.get(n) is not None]
    for n in names:
        sys.modules.setdefault(n, None)
    return {"hidden_packages": [n for n in names if n not in already], "imported_before_hiding": already}


def run_bench_gpu(plan: GpuPlan, out: Path, *, commit: str | None = None, only: list[str] | None = None,
                  emit: Callable[[str], None] = print, env_notes: dict | None = None) -> dict:
    """Run the stages of `plan` (or those named in `only`), rewriting `out` after each; returns the report."""
    device = torch.device(plan.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("no CUDA device: `seal bench gpu` measures a GPU; `--rehearse` runs its stages on CPU")
    all_stages = stages(plan)
    names = [n for n, _ in all_stages]
    unknown = sorted(set(only or []) - set(names))
    if unknown:
        raise ValueError(f"unknown stage(s) {', '.join(unknown)}: choose from {', '.join(names)}")
    if plan.threads:
        torch.set_num_threads(plan.threads)
    bench = Bench(plan, device, getattr(torch, plan.dtype))
    report = {"schema": 1, "command": " ".join(sys.argv), "started": _now(), **commit_info(commit),
              "rehearsal": plan.rehearsal, "env": {**environment(device), **(env_notes or {})}, "plan": asdict(plan),
              "gpu_plan": asdict(full_plan()), "presets": PRESETS, "stages": {}}
    write_report(out, report)
    t0, caps = time.perf_counter(), dict(plan.caps)
    for name, fn in all_stages:
        if only and name not in only:
            continue
        left = plan.budget_s - (time.perf_counter() - t0)
        if left < 1:
            rec = {"status": "skipped", "note": f"the budget of {plan.budget_s:.0f} s is spent", "result": {}}
        else:  # stages named in `only` (a rerun) share the whole budget instead of their caps
            cap, result = left if only else min(caps.get(name, left), left), {}
            report["stages"][name] = {"status": "running", "cap_s": round(cap, 1), "result": result}
            bench.save = lambda: write_report(out, report)  # a run killed mid-stage keeps the chunks measured
            bench.save()
            rec = run_stage(fn, bench, cap, result)
        report["stages"][name] = rec
        report["wall_s"] = round(time.perf_counter() - t0, 1)
        write_report(out, report)
        emit(stage_line(name, rec))
    report["targets"] = judge_targets(report)
    report["finished"] = _now()
    write_report(out, report)
    return report


def judge_targets(report: dict) -> dict:
    """The targets (issue 23), judged on the first preset at the first K: under 3 s per evaluation, at least 5x
    the sequential engine, the chunk-size estimate within 2x of the measured chunk memory and never above what
    fits. `met` is None where the figure was not measured (and means little in a rehearsal)."""
    plan = report["plan"]
    preset, k = plan["presets"][0], plan["ks"][0]
    inner = report["stages"].get(f"inner:{preset}", {}).get("result", {})
    row = next((b for b in inner.get("batched", []) if b["k"] == k and b.get("status") == "ok"), {})
    mem = report["stages"].get("memory_estimate", {}).get("result", {})
    judged = lambda value, ok: {"value": value, "met": None if value is None else ok(value)}  # noqa: E731
    return {"preset": preset, "k": k,
            "s_per_eval_under_3": judged(row.get("s_per_eval"), lambda v: v < 3.0),
            "ratio_at_least_5": judged(row.get("ratio"), lambda v: v >= 5.0),
            "estimate_within_2x": judged(mem.get("worst_ratio"), lambda v: v <= 2.0),
            "estimate_fits": judged(mem.get("estimate_fits"), bool)}


def write_report(path: Path, report: dict) -> None:
    """Write atomically: a run killed mid-write leaves the previous stage's file, never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=1, default=str))
    os.replace(tmp, path)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --- where and what ran ---


def commit_info(given: str | None) -> dict:
    """The commit from git when this is a checkout, else the one given (`--commit`)."""
    try:
        sha = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip() != ""
        return {"commit": sha, "commit_source": "git", "dirty": dirty, **({"commit_given": given} if given else {})}
    except (OSError, subprocess.SubprocessError):
        return {"commit": given, "commit_source": "--commit" if given else "unknown"}


def environment(device: torch.device) -> dict:
    """Library versions (read without importing them) and the device: GPU name, memory, driver, CUDA."""
    from importlib.metadata import PackageNotFoundError, version

    env = {"python": sys.version.split()[0], "device": str(device)}
    for pkg in ("torch", "transformers", "peft", "accelerate", "safetensors", "pydantic", "trl"):
        try:
            env[pkg] = version(pkg)
        except PackageNotFoundError:
            env[pkg] = None
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(gpu=props.name, gpu_memory_mb=round(props.total_memory / MB), capability=f"{props.major}."
                   f"{props.minor}", cuda=torch.version.cuda, driver=_nvidia_driver(),
                   datasheet_bf16_tflops=next((v for k, v in PEAK_TFLOPS.items() if k in props.name), None))
    else:
        import platform

        env.update(cpu=platform.processor() or platform.machine(), threads=torch.get_num_threads())
    return env


def _nvidia_driver() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.SubprocessError):
        return None


# --- what it prints ---


def stage_line(name: str, rec: dict) -> str:
    """One line per finished stage: its status, time and headline figures (never raises: a stage stopped
    half-way has half its figures)."""
    head = f"{name:<20} {rec['status']:<8} {rec.get('seconds', 0):6.1f} s"
    if rec["status"] == "failed":
        return f"{head}  {rec['error'][:160]}"
    try:
        detail = _detail(name, rec.get("result", {}))
    except (KeyError, TypeError, IndexError, ValueError):
        detail = None
    return f"{head}  {detail}" if detail else head + (f"  {rec['note']}" if rec.get("note") else "")


def _detail(name: str, r: dict) -> str | None:
    if name == "matmul" and "tflops" in r:
        return f"{r['tflops']:.3g} TFLOP/s ({r['n']}^3 {r['dtype']})"
    if name.startswith("inner:") and r.get("sequential"):
        return "; ".join([_k_cell(r["sequential"], "sequential")] + [_k_cell(row) for row in r.get("batched", [])])
    if name == "memory_estimate" and "estimate_k" in r:
        if r.get("note"):
            return f"estimate K={r['estimate_k']}: {r['note']}"
        return f"estimate K={r['estimate_k']}, fits: {r.get('estimate_fits')}, largest K that fit " \
               f"{r.get('largest_k_fit')}, estimate/measured chunk memory up to {r.get('worst_ratio', 0):.2f}x"
    if name == "gpu_tests" and "checks" in r:
        return ", ".join(f"{k} {v['status']}" for k, v in r["checks"].items())
    if name == "engines_bf16" and "max_loss_diff" in r:
        return f"max step-loss diff {r['max_loss_diff']:.2e}, max log-prob diff {r['max_logprob_diff']:.2e}"
    if name == "knowledge_e2e" and "rows" in r:
        return ", ".join(f"{row['name']} {100 * row['accuracy']:.1f}" for row in r["rows"])
    if name == "profile" and r.get("top"):
        busy = f"device busy {r['device_busy_fraction']:.0%}; " if "device_busy_fraction" in r else ""
        return f"{busy}top: {r['top'][0]['name'][:60]} ({r['top'][0]['share']:.0%})"
    return None


def _k_cell(row: dict, label: str | None = None) -> str:
    label = label or f"K={row['k']}"
    if row.get("status") != "ok":
        return f"{label} {row.get('status', 'not run')}"
    util = f", {row['utilisation']:.0%}" if row.get("utilisation") is not None else ""
    ratio = f"{row['ratio']:.1f}x" if "ratio" in row else ""
    return f"{label} {row['s_per_eval']:.2f} s/eval" + (f" ({ratio}{util})" if ratio or util else "")


def summary_lines(report: dict) -> list[str]:
    """The headline figures: per preset and engine, seconds per evaluation, ratio, TFLOP/s and peak memory."""
    lines = [f"{'model':<14} {'engine':<12} {'s/eval':>8} {'ratio':>7} {'TFLOP/s':>8} {'util':>6} {'peak MB':>9}"]
    for name, rec in report["stages"].items():
        if not name.startswith("inner:") or not rec.get("result", {}).get("sequential"):
            continue
        r, preset = rec["result"], name.split(":", 1)[1]
        batched = sorted(r.get("batched", []), key=lambda b: b["k"])
        for label, row in [("sequential", r["sequential"])] + [(f"batched K={b['k']}", b) for b in batched]:
            if row.get("status") != "ok":
                lines.append(f"{preset:<14} {label:<12} {row.get('status')}: {row.get('note', '')}"[:110])
                continue
            tf = f"{row['tflops']:8.3g}" if row.get("tflops") is not None else f"{'':>8}"
            ut = f"{row['utilisation']:6.0%}" if row.get("utilisation") is not None else f"{'':>6}"
            lines.append(f"{preset:<14} {label:<12} {row['s_per_eval']:8.2f} {row.get('ratio', 1.0):6.1f}x {tf} {ut} "
                         f"{row.get('peak_mem_mb', float('nan')):9.0f}")
    if len(lines) == 1:
        lines = []
    t = report.get("targets")
    if t:
        cells = [f"{name} {'met' if v['met'] else 'MISSED' if v['met'] is False else 'not measured'}"
                 for name, v in t.items() if isinstance(v, dict)]
        toy = " at toy sizes: they say nothing" if report.get("rehearsal") else ""
        lines.append(f"targets ({t['preset']}, K={t['k']}{toy}): " + ", ".join(cells))
    return lines
