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
    gpu_tests          the tests marked `gpu` (`seal.bench.checks`): the engines agree in bf16, the base is
                       bit-identical after many inner loops, exported adapters reload
    engines_bf16       both engines in bf16 on a 2-layer Qwen2.5-7B at the paper's inner-loop size
    knowledge_e2e      one ReST-EM round of the knowledge recipe and its table on the built-in tiny model
    inner:llama-3.2-1b as the 7B stage

The GPU machine needs torch, transformers, peft, accelerate, safetensors, pyyaml, typer, rich and pydantic
only: nothing here imports trl, datasets, pyarrow or ray (policy SFT is skipped, and said so, without trl).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import torch

from seal.bench.core import (
    ABSENT_ON_GPU_MACHINES,
    MB,
    REPO_ROOT,
    Bench,
    Clock,
    GpuPlan,
    StageCapReached,
    free_memory,
    full_plan,
)
from seal.bench.inner import PEAK_TFLOPS, PRESETS
from seal.provenance import git_state, nvidia_driver


def stages(plan: GpuPlan) -> list[tuple[str, Callable]]:
    from seal.bench import stages as s

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
    judged = lambda value, ok: {"value": value, "met": None if value is None else ok(value)}
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
    return datetime.now(UTC).isoformat(timespec="seconds")


# --- where and what ran ---


def commit_info(given: str | None) -> dict:
    """The commit from git when this is a checkout, else the one given (`--commit`)."""
    state = git_state(REPO_ROOT)
    if state is None:
        return {"commit": given, "commit_source": "--commit" if given else "unknown"}
    return {"commit": state[0], "commit_source": "git", "dirty": state[1], **({"commit_given": given} if given else {})}


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
                   f"{props.minor}", cuda=torch.version.cuda, driver=nvidia_driver(),
                   datasheet_bf16_tflops=next((v for k, v in PEAK_TFLOPS.items() if k in props.name), None))
    else:
        import platform

        env.update(cpu=platform.processor() or platform.machine(), threads=torch.get_num_threads())
    return env


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
