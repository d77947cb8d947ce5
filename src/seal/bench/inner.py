"""`seal bench inner`: seconds per self-edit evaluation, sequential vs batched engine, side by side.

Both engines run in the same process on the same model and on plans of the same size (random tokens), so
their ratio is measured under the same conditions. The model is the built-in tiny model (default), a local
directory, or an architecture preset instantiated with random weights (`preset:qwen2.5-7b`,
`preset:llama-3.2-1b`).
"""

from __future__ import annotations

import json
import random
import resource
import time
from dataclasses import dataclass

import torch

from seal.domains.base import Job, LoraSpec, OptimSpec, Probe, TrainSequence, UpdatePlan

# architecture hyperparameters of the published configs (random weights; nothing is downloaded)
PRESETS = {
    "llama-3.2-1b": dict(arch="llama", vocab_size=128256, hidden_size=2048, intermediate_size=8192,
                         num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8, rope_theta=500000.0,
                         tie_word_embeddings=True, max_position_embeddings=131072, rms_norm_eps=1e-5),
    "qwen2.5-7b": dict(arch="qwen2", vocab_size=152064, hidden_size=3584, intermediate_size=18944,
                       num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4, rope_theta=1000000.0,
                       tie_word_embeddings=False, max_position_embeddings=131072, rms_norm_eps=1e-6),
}
# dense bf16 peak of common accelerators, TFLOP/s, for the utilisation figure
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "4090": 165.0}


@dataclass
class BenchSize:
    sequences: int = 15
    seq_tokens: int = 60
    questions: int = 5
    answer_tokens: int = 64
    prompt_tokens: int = 40
    epochs: int = 10
    rank: int = 32
    alpha: int = 64
    batch_size: int = 1
    lr: float = 1e-3


def preset_config(name: str, layers: int | None = None, width_divisor: int = 1):
    """The transformers config of preset `name`, optionally cut to `layers` layers and, for CPU rehearsals,
    with vocabulary, hidden and MLP widths divided by `width_divisor` (head counts kept, so the attention
    layout is the preset's)."""
    from transformers import LlamaConfig, Qwen2Config

    if name not in PRESETS:
        raise ValueError(f"unknown preset '{name}': choose one of {', '.join(PRESETS)}")
    kw = dict(PRESETS[name])
    arch = kw.pop("arch")
    if layers:
        kw["num_hidden_layers"] = layers
    for key in ("vocab_size", "hidden_size", "intermediate_size"):
        kw[key] //= width_divisor
    return (LlamaConfig if arch == "llama" else Qwen2Config)(**kw)


def preset_model(name: str, layers: int | None, device, dtype, *, width_divisor: int = 1, seed: int = 0):
    """Preset `name` with random weights (normal, std `initializer_range`), built directly on `device` in
    `dtype`: no full-precision copy and no second init pass, so a 7B model is ready in seconds on a GPU."""
    from transformers import AutoModelForCausalLM, GenerationConfig

    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # older transformers: the library's init runs, and is overwritten below
        from contextlib import nullcontext as no_init_weights

    cfg = preset_config(name, layers, width_divisor)
    device = torch.device(device)
    with torch.device(device), no_init_weights():
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    if device.type != "meta":
        g = torch.Generator(device).manual_seed(seed)
        with torch.no_grad():
            for pname, p in model.named_parameters():
                if pname.endswith("bias"):
                    p.zero_()
                elif "norm" in pname:
                    p.fill_(1.0)
                else:
                    p.normal_(0.0, cfg.initializer_range, generator=g)
    model.generation_config = GenerationConfig(eos_token_id=None, pad_token_id=0)
    return model


class IdTokenizer:
    """Enough of a tokenizer for the engines: prompts are space-separated token ids."""

    pad_token_id = 0
    eos_token_id = -1  # never generated: answers run to their full length
    bos_token = None

    def __call__(self, text, add_special_tokens=True):
        return {"input_ids": [int(t) for t in text.split()]}

    def decode(self, ids, skip_special_tokens=True):
        return " ".join(str(i) for i in ids)


def _loaded(model_arg: str, layers: int | None, device, dtype):
    from seal.config import ModelConfig
    from seal.model import LoadedModel, load_model

    if model_arg.startswith("preset:"):
        model = preset_model(model_arg.split(":", 1)[1], layers, device, dtype)
        model.eval().requires_grad_(False)
        return LoadedModel(model, IdTokenizer(), model_arg)
    loaded = load_model(ModelConfig(name_or_path=model_arg, device=device.type,
                                    dtype="float32" if dtype == torch.float32 else "bfloat16"))
    loaded.tokenizer = IdTokenizer()  # random-token plans; answers run to full length
    loaded.model.generation_config.eos_token_id = None
    return loaded


def make_jobs(k: int, size: BenchSize, vocab: int, seed: int = 0) -> list[Job]:
    rng = random.Random(seed)
    tok = lambda n: tuple(rng.randrange(1, vocab) for _ in range(n))
    jobs = []
    for i in range(k):
        seqs = tuple(TrainSequence(tok(size.seq_tokens), (1,) * size.seq_tokens) for _ in range(size.sequences))
        plan = UpdatePlan(seqs, LoraSpec(size.rank, size.alpha), OptimSpec(size.lr, size.epochs, size.batch_size))
        probes = tuple(Probe(" ".join(map(str, tok(size.prompt_tokens))), size.answer_tokens)
                       for _ in range(size.questions))
        jobs.append(Job(plan, probes, seed=i))
    return jobs


def flops_per_eval(model, size: BenchSize, n_jobs: int = 1) -> float:
    """Approximate FLOPs of n inner loops: training ~4N per token (frozen base: forward plus activation
    gradients, no weight gradients), answering ~2N per prompt and generated token."""
    n = sum(p.numel() for p in model.parameters())
    train_tokens = size.sequences * size.seq_tokens * size.epochs
    answer_tokens = size.questions * (size.prompt_tokens + size.answer_tokens)
    return n_jobs * (4 * n * train_tokens + 2 * n * answer_tokens)


def _peak_mem_mb(device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process high-water mark (Linux: KiB)


def _timed(engine, loaded, jobs, device) -> float:
    from seal.inner.engine import evaluate

    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    evaluate(engine, loaded, jobs)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def bench_inner(model_arg: str, ks: list[int], size: BenchSize, *, layers: int | None = None,
                sequential_jobs: int = 2, device: str = "auto", emit=print, as_json: bool = False) -> list[dict]:
    from seal.inner.batched import BatchedEngine
    from seal.inner.sequential import SequentialEngine
    from seal.model import pick_device

    dev = pick_device(device)
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    loaded = _loaded(model_arg, layers, dev, dtype)
    vocab = loaded.model.config.get_text_config().vocab_size
    peak = next((v for k, v in PEAK_TFLOPS.items() if dev.type == "cuda" and k in torch.cuda.get_device_name(dev)),
                None)
    _timed(BatchedEngine(1), loaded, make_jobs(1, size, vocab, seed=99), dev)  # warm-up
    seq_jobs = make_jobs(sequential_jobs, size, vocab)
    seq_s = _timed(SequentialEngine(eval_batch_size=size.questions), loaded, seq_jobs, dev) / sequential_jobs
    seq_mem = _peak_mem_mb(dev)
    rows = []
    for k in ks:
        jobs = make_jobs(k, size, vocab)
        bat_s = _timed(BatchedEngine(max_adapters_per_batch=k, eval_batch_size=k * size.questions), loaded, jobs,
                       dev) / k
        row = {"k": k, "model": model_arg, "device": str(dev), "sequential_s_per_eval": seq_s,
               "batched_s_per_eval": bat_s, "ratio": seq_s / bat_s,
               "train_tokens_per_s": size.sequences * size.seq_tokens * size.epochs / bat_s,
               "peak_mem_mb": _peak_mem_mb(dev), "sequential_peak_mem_mb": seq_mem}
        if dev.type == "cuda":
            row["tflops"] = flops_per_eval(loaded.model, size) / bat_s / 1e12
            row["peak_tflops"] = peak
        rows.append(row)
        emit(json.dumps(row) if as_json else _line(row))
    return rows


def _line(r: dict) -> str:
    extra = f"  {r['tflops']:.0f} TFLOP/s" + (f" of {r['peak_tflops']:.0f}" if r.get("peak_tflops") else "") \
        if "tflops" in r else ""
    return (f"K={r['k']:>4}  sequential {r['sequential_s_per_eval']:7.3f} s/eval  batched "
            f"{r['batched_s_per_eval']:7.3f} s/eval  ratio {r['ratio']:5.2f}x  "
            f"{r['train_tokens_per_s']:8.0f} train tok/s  peak {r['peak_mem_mb']:.0f} MB{extra}")
