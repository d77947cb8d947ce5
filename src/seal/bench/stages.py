"""The stages of `seal bench gpu` (`seal.bench.gpu` runs them). Each is `stage(bench, clock, out)`: it fills
`out` as figures arrive, so whatever it measured before its cap or an error is kept."""

from __future__ import annotations

import json
import resource
import tempfile
import time
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path

import torch

from seal.bench.core import MB, REPO_ROOT, Bench, Clock, StageCapReached, free_memory, sync
from seal.bench.inner import BenchSize, IdTokenizer, flops_per_eval, make_jobs, preset_model
from seal.inner.engine import evaluate
from seal.model import LoadedModel

# --- the device's ceiling ---


def stage_matmul(bench: Bench, clock: Clock, out: dict) -> None:
    """TFLOP/s of an n x n x n matmul in the plan's dtype, repeated for about a second after a warm-up."""
    n = bench.plan.matmul_n
    a = torch.randn(n, n, device=bench.device, dtype=bench.dtype)
    b = torch.randn(n, n, device=bench.device, dtype=bench.dtype)
    for _ in range(3):  # warm-up: the library picks its kernel
        a @ b
    sync(bench.device)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 1.0 and reps < 1000:
        for _ in range(10):
            a @ b
        reps += 10
        sync(bench.device)
    seconds = time.perf_counter() - t0
    bench.matmul_tflops = 2 * n**3 * reps / seconds / 1e12
    datasheet = datasheet_tflops(bench)
    out.update(n=n, dtype=bench.plan.dtype, reps=reps, seconds=seconds, tflops=bench.matmul_tflops,
               datasheet_tflops=datasheet,
               fraction_of_datasheet=bench.matmul_tflops / datasheet if datasheet else None)


def datasheet_tflops(bench: Bench) -> float | None:
    from seal.bench.inner import PEAK_TFLOPS

    if bench.device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(bench.device)
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


# --- the engines at the paper's inner-loop size ---


def measure(row: dict, engine, loaded: LoadedModel, jobs, bench: Bench, clock: Clock) -> None:
    """Time `engine` on `jobs` and fill `row`: seconds per evaluation (and its training / answering parts),
    training tokens/s, achieved TFLOP/s and utilisation of the measured ceiling, peak memory. Stopped by the
    cap, `row` says how far it got."""
    dev, n = bench.device, len(jobs)
    sync(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        row["resident_mb"] = torch.cuda.memory_allocated(dev) / MB
    steps0, t0 = clock.train_steps, time.perf_counter()
    row["status"] = "running"
    try:
        results = evaluate(engine, loaded, jobs)
        sync(dev)
    except StageCapReached:
        row.update(status="stopped", note=f"the stage cap stopped it after {clock.train_steps - steps0} training "
                                          f"steps in {time.perf_counter() - t0:.1f} s")
        bench.save()
        raise
    wall = time.perf_counter() - t0
    plan = jobs[0].plan
    tokens = n * plan.n_tokens * plan.optim.epochs
    tflops = flops_per_eval(loaded.model, job_size(jobs[0]), n) / wall / 1e12
    row.update(status="ok", jobs=n, seconds=wall, s_per_eval=wall / n,
               train_s_per_eval=sum(r.train_seconds for r in results) / n,
               answer_s_per_eval=sum(r.eval_seconds for r in results) / n,
               train_steps=clock.train_steps - steps0, train_tokens_per_s=tokens / wall, tflops=tflops,
               utilisation=tflops / bench.matmul_tflops if bench.matmul_tflops and dev.type == "cuda" else None,
               failed_jobs=sum(r.failed is not None for r in results))
    if dev.type == "cuda":
        row["peak_mem_mb"] = torch.cuda.max_memory_allocated(dev) / MB
        row["chunk_mem_mb"] = row["peak_mem_mb"] - row["resident_mb"]
    else:
        row["peak_mem_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process high-water mark
    bench.save()


def job_size(job) -> BenchSize:
    """The BenchSize a `make_jobs` job was made with (for the FLOP count)."""
    plan, probe = job.plan, job.probes[0]
    return BenchSize(sequences=len(plan.sequences), seq_tokens=len(plan.sequences[0].input_ids),
                     questions=len(job.probes), answer_tokens=probe.max_new_tokens,
                     prompt_tokens=len(probe.prompt.split()), epochs=plan.optim.epochs, rank=plan.lora.r,
                     alpha=plan.lora.alpha, batch_size=plan.optim.batch_size, lr=plan.optim.lr)


def warm_up(loaded: LoadedModel, bench: Bench) -> None:
    """A two-step inner loop through each engine: kernels chosen, libraries imported, before any timing."""
    from seal.inner.batched import BatchedEngine
    from seal.inner.sequential import SequentialEngine

    size = replace(bench.plan.size, sequences=2, epochs=1, questions=1, answer_tokens=2)
    vocab = loaded.model.config.vocab_size
    evaluate(SequentialEngine(), loaded, make_jobs(1, size, vocab, seed=99))
    evaluate(BatchedEngine(2), loaded, make_jobs(2, size, vocab, seed=99))


def predicted_seconds(rows: list[dict], k: int) -> float | None:
    """An upper bound of a K-adapter chunk's time from the measured chunk nearest in K: a smaller chunk takes
    no longer, a larger one at most proportionally longer. None before any chunk was measured."""
    done = [r for r in rows if r.get("status") == "ok"]
    if not done:
        return None
    ref = min(done, key=lambda r: abs(r["k"] - k))
    return ref["seconds"] * max(1.0, k / ref["k"])


def model_facts(bench: Bench, preset: str, loaded: LoadedModel) -> dict:
    cfg = loaded.model.config
    return {"preset": preset, "layers": cfg.num_hidden_layers, "hidden_size": cfg.hidden_size,
            "vocab_size": cfg.vocab_size, "params": sum(p.numel() for p in loaded.model.parameters()),
            "dtype": bench.plan.dtype, "init_s": bench.init_s.get(preset)}


def stage_inner(bench: Bench, clock: Clock, out: dict, preset: str) -> None:
    """`seal bench inner` on `preset`: sequential at K=1, then batched at each K of the plan."""
    from seal.inner.batched import BatchedEngine
    from seal.inner.sequential import SequentialEngine

    plan, size = bench.plan, bench.plan.size
    loaded = bench.model(preset)
    vocab = loaded.model.config.vocab_size
    bench.inner[preset] = out
    out.update(model=model_facts(bench, preset, loaded), size=asdict(size),
               flops_per_eval=flops_per_eval(loaded.model, size), sequential={}, batched=[])
    with clock.watching(loaded.model):
        warm_up(loaded, bench)
        measure(out["sequential"], SequentialEngine(eval_batch_size=size.questions), loaded,
                make_jobs(plan.sequential_jobs, size, vocab), bench, clock)
        seq_s, too_big = out["sequential"]["s_per_eval"], None
        for k in plan.ks:
            row = {"k": k}
            out["batched"].append(row)
            need = predicted_seconds(out["batched"], k)
            if too_big is not None and k > too_big:
                row.update(status="skipped", note=f"K={too_big} ran out of memory")
            elif need is not None and need > clock.left():
                row.update(status="skipped", note=f"would take up to {need:.0f} s; {clock.left():.0f} s left")
            else:
                try:
                    measure(row, BatchedEngine(k, eval_batch_size=k * size.questions), loaded,
                            make_jobs(k, size, vocab), bench, clock)
                    row["ratio"] = seq_s / row["s_per_eval"]
                except torch.OutOfMemoryError:
                    row.update(status="out of memory", note=f"K={k} does not fit; larger K not tried")
                    too_big = k if too_big is None else min(too_big, k)
                free_memory()  # here, not in the except block: its traceback holds the chunk's tensors


def inner_stage(preset: str):
    return partial(stage_inner, preset=preset)


# --- the chunk-size estimate ---


def stage_memory_estimate(bench: Bench, clock: Clock, out: dict) -> None:
    """The estimate (`estimate_max_adapters`, as the batched engine calls it) against the chunk memory the
    inner stage measured at each K, and a short chunk at the estimate's own K: does it fit?"""
    from seal.inner.batched import BatchedEngine
    from seal.inner.memory import adapter_bytes, estimate_max_adapters

    plan, preset = bench.plan, bench.plan.presets[0]
    loaded = bench.model(preset)
    jobs = make_jobs(2, plan.size, loaded.model.config.vocab_size)
    per_adapter = adapter_bytes(loaded.model, jobs[0])
    if bench.device.type == "cuda":
        free, total = torch.cuda.mem_get_info(bench.device)
        out.update(free_mb=free / MB, total_mb=total / MB)
    else:
        out["note"] = "on CPU the estimate is a fixed default (compute, not memory, bounds a chunk)"
    k_est = estimate_max_adapters(loaded.model, jobs, headroom=0.7)
    out.update(preset=preset, estimate_k=k_est, headroom=0.7, adapter_mb_estimated=per_adapter / MB)
    probe_k = min(k_est, plan.max_probe_k)
    out["probe"] = probe = {"k": probe_k, "size": "the plan's sequences and answers, 2 training steps: the same "
                                                  "memory per step as the full plan"}
    with clock.watching(loaded.model):
        try:
            measure(probe, BatchedEngine(probe_k, eval_batch_size=probe_k * plan.size.questions), loaded,
                    make_jobs(probe_k, replace(plan.size, sequences=2, epochs=1), loaded.model.config.vocab_size),
                    bench, clock)
        except torch.OutOfMemoryError:
            probe.update(status="out of memory")
    free_memory()
    measured = [r for r in bench.inner.get(preset, {}).get("batched", []) + [probe] if "chunk_mem_mb" in r]
    out["per_k"] = [{"k": r["k"], "measured_chunk_mb": r["chunk_mem_mb"], "estimated_chunk_mb": r["k"] * per_adapter
                     / MB, "ratio": r["k"] * per_adapter / MB / r["chunk_mem_mb"], "probe": r is probe}
                    for r in measured]
    if out["per_k"]:
        out["worst_ratio"] = max(max(p["ratio"], 1 / p["ratio"]) for p in out["per_k"])
    if len({r["k"] for r in measured}) >= 2:
        lo, hi = min(measured, key=lambda r: r["k"]), max(measured, key=lambda r: r["k"])
        out["adapter_mb_measured"] = (hi["chunk_mem_mb"] - lo["chunk_mem_mb"]) / (hi["k"] - lo["k"])
    fits = [r["k"] for r in measured]
    fits_est = probe["status"] == "ok" and probe_k == k_est if bench.device.type == "cuda" else None  # CPU: no test
    out.update(estimate_fits=fits_est, largest_k_fit=max(fits, default=None))


# --- where the time goes ---


def stage_profile(bench: Bench, clock: Clock, out: dict) -> None:
    """torch.profiler over a tenth of one batched chunk at the plan's first K (1 of the 10 epochs and a tenth of
    the answer tokens, so that training and decoding keep their shares): the top kernels by device time."""
    from torch.profiler import ProfilerActivity, profile

    from seal.inner.batched import BatchedEngine

    plan, preset, k = bench.plan, bench.plan.presets[0], bench.plan.ks[0]
    loaded = bench.model(preset)
    size = replace(plan.size, epochs=1, answer_tokens=max(1, round(plan.size.answer_tokens / plan.size.epochs)))
    out.update(preset=preset, k=k, size=asdict(size))
    jobs = make_jobs(k, size, loaded.model.config.vocab_size)
    cuda = bench.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with clock.watching(loaded.model):
        warm_up(loaded, bench)
        with profile(activities=activities) as prof:
            t0 = time.perf_counter()
            results = evaluate(BatchedEngine(k, eval_batch_size=k * size.questions), loaded, jobs)
            sync(bench.device)
            wall = time.perf_counter() - t0
    out.update(wall_s=wall, train_s=sum(r.train_seconds for r in results),
               answer_s=sum(r.eval_seconds for r in results))
    out.update(profile_summary(prof, cuda, wall))


def profile_summary(prof, cuda: bool, wall: float, rows: int = 15) -> dict:
    """Top kernels (CUDA) or operators (CPU) by self time, their share, and how busy the device was."""
    events = prof.key_averages()
    kind, key, sort_by, items = "cpu operators", "self_cpu_time_total", "self_cpu_time_total", list(events)
    if cuda:
        from torch.autograd import DeviceType

        kernels = [e for e in events if e.device_type == DeviceType.CUDA and not getattr(e, "is_user_annotation",
                                                                                          False)]
        if kernels:
            kind, key, sort_by, items = "cuda kernels", "self_device_time_total", "self_cuda_time_total", kernels
        else:  # CUPTI unavailable (e.g. no profiling permission in a container): the CPU side still says much
            kind, cuda = "cpu operators (no CUDA kernel events were recorded)", False
    us = lambda e: float(getattr(e, key, 0.0) or 0.0)  # noqa: E731
    total = sum(us(e) for e in items) or 1.0
    top = sorted(items, key=us, reverse=True)[:rows]
    out = {"kind": kind, "self_ms_total": total / 1e3,
           "top": [{"name": e.key[:160], "calls": e.count, "self_ms": us(e) / 1e3, "share": us(e) / total}
                   for e in top],
           "table": events.table(sort_by=sort_by, row_limit=rows, max_name_column_width=70)}
    if cuda:
        out["device_busy_fraction"] = total / 1e6 / wall  # below 1: the GPU waited on the CPU (launch-bound)
    return out


# --- correctness in bf16 ---


def stage_gpu_tests(bench: Bench, clock: Clock, out: dict) -> None:
    """The bodies of the tests marked `gpu` (`seal.bench.checks`), on this device, without pytest."""
    from seal.bench.checks import CHECKS

    bench.drop_models()
    out["checks"] = {}
    with clock.watching():
        for name, check in CHECKS.items():
            t0 = time.perf_counter()
            try:
                rec = {"status": "passed", **check(bench.device, bench.dtype)}
            except AssertionError as e:
                rec = {"status": "failed", "error": str(e)[:1500]}
            except Exception as e:  # noqa: BLE001 - recorded; the other checks run
                rec = {"status": "error", "error": f"{type(e).__name__}: {e}"[:1500]}
            rec["seconds"] = time.perf_counter() - t0
            out["checks"][name] = rec
    bad = [n for n, r in out["checks"].items() if r["status"] != "passed"]
    if bad:
        raise AssertionError(f"checks not passed: {', '.join(bad)}")


def stage_engines_bf16(bench: Bench, clock: Clock, out: dict) -> None:
    """Both engines in bf16 on the first preset cut to a few layers, training at the paper's inner-loop size:
    their largest per-step loss difference and teacher-forced log-probability difference."""
    from seal.bench.checks import compare_engines

    plan, preset = bench.plan, bench.plan.presets[0]
    bench.drop_models()
    model = preset_model(preset, plan.engines_layers, bench.device, bench.dtype, width_divisor=plan.width_divisor)
    loaded = LoadedModel(model.eval().requires_grad_(False), IdTokenizer(), f"preset:{preset}")
    size = plan.engines_size
    out.update(preset=preset, layers=plan.engines_layers, k=plan.engines_k, size=asdict(size))
    with clock.watching(model):
        out.update(asdict(compare_engines(loaded, make_jobs(plan.engines_k, size, model.config.vocab_size, seed=3))))


# --- a recipe end to end ---


def sft_available() -> bool:
    """Policy SFT needs trl and datasets; asked without importing them."""
    from importlib.util import find_spec

    return all(find_spec(m) is not None for m in ("trl", "datasets"))


def stage_knowledge_e2e(bench: Bench, clock: Clock, out: dict) -> None:
    """One ReST-EM round of the knowledge recipe on a few passages and the results table, with the built-in
    tiny model on this device in the plan's dtype."""
    from seal.config import load_config
    from seal.experiments import knowledge

    plan = bench.plan
    bench.drop_models()
    overrides = ["name=bench-gpu-e2e", f"model.device={bench.device.type}", f"model.dtype={plan.dtype}",
                 "restem.rounds=1", *plan.e2e]
    if sft_available():
        out["policy_sft"] = "run with trl when the round keeps a self-edit"
    else:
        overrides.append("restem.min_reward=1.0")
        out["policy_sft"] = ("skipped: trl/datasets are not installed; restem.min_reward=1 keeps no self-edit, so "
                             "the round saves the policy unchanged")
    out["overrides"] = overrides
    cfg = load_config(_config_path("configs/tiny/knowledge.yaml"), overrides)
    with tempfile.TemporaryDirectory() as tmp, clock.watching():
        run_dir = Path(tmp) / "run"
        try:
            knowledge.main(cfg, run_dir)
        except ModuleNotFoundError as e:
            if e.name != "matplotlib" or not (run_dir / "summary.json").exists():
                raise
            out["report"] = "summary.json written; report.md and results.png not: matplotlib is not installed"
        summary = json.loads((run_dir / "summary.json").read_text())
    out["rows"] = [{k: r.get(k) for k in ("name", "accuracy", "n_passages", "n_questions")} for r in summary["rows"]]
    out["rounds"] = summary["rounds"]
    out["engine"] = summary.get("engine")


def _config_path(rel: str) -> Path:
    for root in (Path.cwd(), REPO_ROOT):
        if (root / rel).exists():
            return root / rel
    raise FileNotFoundError(f"{rel} not found (run from the repository root)")
