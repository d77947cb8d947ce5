"""How many adapters fit in one batched chunk: an estimate from model size, LoRA rank and sequence length."""

from __future__ import annotations

import torch

from seal.domains.base import Job
from seal.model import default_target_modules

CPU_DEFAULT = 32  # on CPU compute, not memory, bounds a chunk; `seal bench inner` shows where batching stops paying
MAX_ADAPTERS = 256


def adapter_bytes(model, job: Job) -> int:
    """Memory one adapter of `job` adds to a chunk: its weights, gradients and AdamW moments (fp32), plus the
    activations of its rows at the longest training sequence (a deliberately generous estimate)."""
    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    spec = job.plan.lora
    targets = set(spec.target_modules or default_target_modules(model))
    lora_params = sum(spec.r * (m.in_features + m.out_features) for n, m in model.named_modules()
                      if isinstance(m, torch.nn.Linear) and n.rpartition(".")[2] in targets)
    tokens = job.plan.optim.batch_size * max(len(s.input_ids) for s in job.plan.sequences)
    act_dtype = next(model.parameters()).element_size()
    hidden, inter = cfg.hidden_size, getattr(cfg, "intermediate_size", 4 * cfg.hidden_size)
    per_token = cfg.num_hidden_layers * (16 * hidden + 6 * inter) * act_dtype + 10 * cfg.vocab_size
    return 16 * lora_params + tokens * per_token


def estimate_max_adapters(model, jobs: list[Job], headroom: float = 0.7) -> int:
    adapters = [j for j in jobs if j.plan is not None]
    if not adapters:
        return MAX_ADAPTERS
    device = next(model.parameters()).device
    if device.type != "cuda":
        return CPU_DEFAULT
    free, _ = torch.cuda.mem_get_info(device)
    need = max(adapter_bytes(model, j) for j in adapters)
    return max(1, min(MAX_ADAPTERS, int(free * headroom // need)))
