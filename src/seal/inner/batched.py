"""The batched engine: K adapters trained at once on one frozen base model, answers in one batched decode.

Every adapter keeps the reference engine's semantics (`seal.inner.common`): its own data order, batch size,
epochs, lr schedule, gradient clipping and AdamW state. At step s each adapter that still has data contributes
its batch; its loss is the mean over its own loss tokens, and the summed loss is differentiated (adapters share
no parameters, so each gets exactly its own gradient). Adapters whose data ran out are masked out of the
update: AdamW would otherwise keep moving them on momentum.

A step's rows come from many adapters and differ in length (ARC's size augmentations double a grid's side).
Padded to the longest they cost about twice their tokens. With `split_by_length` (`inner.split_by_length`) a
step's rows are split into micro-batches of similar length (`length_groups`) whose gradients add up before the
optimiser step: the same update up to float summation order, a fraction of the padding. On a CPU, where compute
is proportional to tokens, that makes ARC's TTT 1.8x faster (`seal bench arc`); on a GPU, where padding is
cheaper than extra kernel launches, it is not measured yet, so it is off by default.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from seal.domains.base import InnerResult, Job, LoraSpec
from seal.generate import greedy_answers
from seal.inner.common import (
    ADAM_BETAS,
    ADAM_EPS,
    collate,
    lora_a_init,
    loss_tokens,
    lr_factor,
    row_token_losses,
    step_batches,
)
from seal.inner.lora import MultiLoraLinear, multi_lora
from seal.model import default_target_modules


@dataclass
class _Adapter:
    """Bookkeeping of one adapter in a chunk."""

    job: Job
    steps: list[list[int]]
    losses: list[float]
    failed: str | None = None

    def active(self, s: int) -> bool:
        return self.failed is None and s < len(self.steps)


@dataclass
class AdapterBatch:
    """The trained adapters of one chunk, live inside the model while the `trained()` block runs."""

    router: object
    layers: list[tuple[str, MultiLoraLinear]]
    adapters: list[_Adapter]
    spec: LoraSpec
    targets: list[str]
    train_seconds: float
    base_path: str

    def export(self, k: int, out_dir: str | Path) -> Path:
        """Save adapter k as a standard peft adapter directory (`PeftModel.from_pretrained` loads it, and so
        does vLLM's LoRA support)."""
        from peft import LoraConfig
        from safetensors.torch import save_file

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        tensors = {}
        for name, layer in self.layers:
            tensors[f"base_model.model.{name}.lora_A.weight"] = layer.A[k].detach().cpu().contiguous()
            tensors[f"base_model.model.{name}.lora_B.weight"] = layer.B[k].detach().cpu().contiguous()
        save_file(tensors, str(out_dir / "adapter_model.safetensors"), metadata={"format": "pt"})
        LoraConfig(r=self.spec.r, lora_alpha=self.spec.alpha, lora_dropout=self.spec.dropout, bias="none",
                   target_modules=self.targets, task_type="CAUSAL_LM",
                   base_model_name_or_path=self.base_path).save_pretrained(str(out_dir))
        return out_dir


class _StackedAdamW:
    """AdamW over stacked (K, ...) parameters with a per-adapter lr, step count and on/off mask."""

    def __init__(self, params: list[torch.nn.Parameter], weight_decay: torch.Tensor):
        self.params = params
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.t = torch.zeros(params[0].shape[0], device=params[0].device)
        self.wd = weight_decay  # (K,)

    def clip_(self, max_norm: torch.Tensor) -> None:
        """Per-adapter clip_grad_norm_ (max_norm (K,), inf where off), as torch computes it."""
        sq = sum(p.grad.pow(2).flatten(1).sum(1) for p in self.params)
        coef = (max_norm / (sq.sqrt() + 1e-6)).clamp(max=1.0)
        for p in self.params:
            p.grad.mul_(coef.view(-1, *[1] * (p.dim() - 1)))

    @torch.no_grad()
    def step(self, lr: torch.Tensor, on: torch.Tensor) -> None:
        b1, b2 = ADAM_BETAS
        self.t += on.float()
        t = self.t.clamp(min=1)
        bc1, bc2_sqrt = 1 - b1 ** t, (1 - b2 ** t).sqrt()
        for p, m, v in zip(self.params, self.m, self.v):
            shape = (-1, *[1] * (p.dim() - 1))
            mask = on.view(shape)
            g = torch.nan_to_num(p.grad)
            m.copy_(torch.where(mask, m + (1 - b1) * (g - m), m))
            v.copy_(torch.where(mask, v * b2 + (1 - b2) * g * g, v))
            decayed = p * (1 - (lr * self.wd).view(shape))
            denom = v.sqrt() / bc2_sqrt.view(shape) + ADAM_EPS
            new = decayed - (lr / bc1).view(shape) * m / denom
            p.copy_(torch.where(mask, new, p))
            p.grad = None


class BatchedEngine:
    """`evaluate(model, jobs)` with many adapters per step. Jobs are grouped into chunks of equal LoRA shape."""

    name = "batched"

    def __init__(self, max_adapters_per_batch: int = 0, eval_batch_size: int = 64, split_by_length: bool = False):
        self.max_adapters = max_adapters_per_batch
        self.eval_batch_size = eval_batch_size
        self.split_by_length = split_by_length
        self.split_overhead = 64  # what one more forward pass costs, in padded tokens
        self.memory_share = 1.0  # the part of the device's free memory this engine may plan for (Ray workers
        #                          sharing a GPU set it to their fraction)

    # --- chunking ---

    def chunk_size(self, loaded, jobs: list[Job]) -> int:
        if self.max_adapters:
            return self.max_adapters
        from seal.inner.memory import estimate_max_adapters

        return estimate_max_adapters(loaded.model, jobs, headroom=0.7 * self.memory_share)

    def chunks(self, loaded, jobs: list[Job]) -> list[list[int]]:
        """Deterministic chunks of job indices: base-only jobs together, adapters grouped by LoRA shape and
        sorted by length so that a chunk's adapters finish at about the same step."""
        size = self.chunk_size(loaded, jobs)
        base = [i for i, j in enumerate(jobs) if j.plan is None]
        out = [base[i:i + 4 * size] for i in range(0, len(base), 4 * size)]
        by_spec: dict[LoraSpec, list[int]] = {}
        for i, j in enumerate(jobs):
            if j.plan is not None:
                by_spec.setdefault(j.plan.lora, []).append(i)
        for idx in by_spec.values():
            idx.sort(key=lambda i: (-jobs[i].plan.n_steps, i))
            out += [idx[i:i + size] for i in range(0, len(idx), size)]
        return out

    # --- evaluation ---

    def run_chunk(self, loaded, jobs: list[Job]) -> list[InnerResult]:
        """One chunk: all base-only jobs, or adapters of one LoRA shape."""
        if all(j.plan is None for j in jobs):
            return self._answer_base(loaded, jobs)
        if len(jobs) == 1 and loaded.device.type == "cpu":
            # one adapter on a CPU: stacking buys nothing and costs ~10% (`seal bench inner`, K=1); the
            # reference engine gives the same losses and answers (tests/test_engines.py)
            from seal.inner.sequential import SequentialEngine

            return SequentialEngine(eval_batch_size=self.eval_batch_size).run_chunk(loaded, jobs)
        with self.trained(loaded, jobs) as batch:
            t1 = time.perf_counter()
            answers = self._answer(loaded, batch.router, batch.adapters)
            eval_s = time.perf_counter() - t1
        n = len(jobs)
        return [InnerResult([] if a.failed else ans, a.losses, batch.train_seconds / n, eval_s / n, a.failed)
                for a, ans in zip(batch.adapters, answers)]

    @contextmanager
    def trained(self, loaded, jobs: list[Job]) -> Iterator[AdapterBatch]:
        """Train one adapter per job (one LoRA shape) and yield them, routed and exportable; the base model is
        restored when the block ends."""
        spec = jobs[0].plan.lora
        if any(j.plan is None or j.plan.lora != spec for j in jobs):
            raise ValueError("a chunk must hold adapters of one LoRA shape (use chunks())")
        model = loaded.model
        targets = list(spec.target_modules or default_target_modules(model))
        with multi_lora(model, targets, len(jobs), spec.r, spec.alpha, spec.dropout) as (router, layers):
            t0 = time.perf_counter()
            adapters = self._train(model, router, [layer for _, layer in layers], jobs)
            yield AdapterBatch(router, layers, adapters, spec, targets, time.perf_counter() - t0, loaded.path)

    def _answer_base(self, loaded, jobs: list[Job]) -> list[InnerResult]:
        t0 = time.perf_counter()
        prompts = [p.prompt for j in jobs for p in j.probes]
        max_new = max((p.max_new_tokens for j in jobs for p in j.probes), default=1)
        flat = greedy_answers(loaded.model, loaded.tokenizer, prompts, max_new, self.eval_batch_size)
        per_job = (time.perf_counter() - t0) / max(1, len(jobs))
        out, pos = [], 0
        for j in jobs:
            out.append(InnerResult(flat[pos:pos + len(j.probes)], eval_seconds=per_job))
            pos += len(j.probes)
        return out

    # --- training ---

    def _train(self, model, router, layers: list[MultiLoraLinear], jobs: list[Job]) -> list[_Adapter]:
        device = layers[0].A.device
        adapters = [_Adapter(j, step_batches(len(j.plan.sequences), j.plan.optim, j.seed), []) for j in jobs]
        with torch.no_grad():  # each adapter's init depends only on its seed, drawn in model order
            for k, job in enumerate(jobs):
                g = torch.Generator().manual_seed(job.seed)
                for layer in layers:
                    layer.A[k].copy_(lora_a_init(tuple(layer.A.shape[1:]), g))
        params = [p for layer in layers for p in (layer.A, layer.B)]
        for p in params:
            p.requires_grad_(True)
        opt = _StackedAdamW(params, torch.tensor([j.plan.optim.weight_decay for j in jobs], device=device))
        max_norm = torch.tensor([j.plan.optim.max_grad_norm or float("inf") for j in jobs], device=device)
        model.train()
        try:
            for s in range(max(len(a.steps) for a in adapters)):
                self._step(model, router, opt, adapters, s, max_norm, device)
        finally:
            model.eval()
            for p in params:
                p.requires_grad_(False)
        return adapters

    def _step(self, model, router, opt, adapters, s, max_norm, device) -> None:
        active = [k for k, a in enumerate(adapters) if a.active(s)]
        if not active:
            return
        rows, owner = [], []
        for k in active:
            a = adapters[k]
            rows += [a.job.plan.sequences[i] for i in a.steps[s]]
            owner += [k] * len(a.steps[s])
        k_total = len(adapters)
        groups = (length_groups([len(r.input_ids) for r in rows], self.split_overhead) if self.split_by_length
                  else [list(range(len(rows)))])
        tok_sum = torch.zeros(k_total, device=device)
        for r, k in zip(rows, owner):
            tok_sum[k] += loss_tokens(r)
        loss_sum = torch.zeros(k_total, device=device)
        for group in groups:
            ids, attn, lmask = collate([rows[i] for i in group], device)
            owner_t = torch.tensor([owner[i] for i in group], device=device)
            with router.route(owner_t):
                logits = model(input_ids=ids, attention_mask=attn).logits
            tok_loss, _ = row_token_losses(logits, ids, lmask)
            share = tok_loss / tok_sum[owner_t].clamp(min=1)  # each row's part of its adapter's mean loss
            torch.where(torch.isfinite(share), share, torch.zeros_like(share)).sum().backward()
            loss_sum.index_add_(0, owner_t, tok_loss.detach())
        per_adapter = loss_sum / tok_sum.clamp(min=1)
        on = torch.zeros(k_total, dtype=torch.bool, device=device)
        on[active] = True
        finite = torch.isfinite(per_adapter)
        for k in active:
            if not finite[k]:
                adapters[k].failed = f"non-finite loss at step {s}"
        on &= finite
        for k in active:
            if adapters[k].failed is None:
                adapters[k].losses.append(per_adapter[k].item())
        for p in opt.params:
            p.grad = torch.nan_to_num(p.grad) * on.view(-1, *[1] * (p.dim() - 1))
        opt.clip_(max_norm)
        lr = torch.tensor([a.job.plan.optim.lr * lr_factor(s, len(a.steps), a.job.plan.optim.schedule,
                                                           a.job.plan.optim.warmup_steps) for a in adapters],
                          device=device)
        opt.step(lr, on)

    def _answer(self, loaded, router, adapters: list[_Adapter]) -> list[list[str]]:
        """All adapters' probes in batched greedy decodes, each row through its own adapter."""
        from seal.generate import SamplingParams, generate_batch

        rows = [(k, p) for k, a in enumerate(adapters) if a.failed is None for p in a.job.probes]
        answers: list[list[str]] = [[] for _ in adapters]
        if not rows:
            return answers
        device = next(loaded.model.parameters()).device
        params = SamplingParams(max_new_tokens=max(p.max_new_tokens for _, p in rows))
        for start in range(0, len(rows), self.eval_batch_size):
            batch = rows[start:start + self.eval_batch_size]
            with router.route(torch.tensor([k for k, _ in batch], device=device)):
                texts = generate_batch(loaded.model, loaded.tokenizer, [p.prompt for _, p in batch], params,
                                       greedy=True)
            for (k, _), text in zip(batch, texts):
                answers[k].append(text)
        return answers


def length_groups(lengths: list[int], overhead: int = 64) -> list[list[int]]:
    """Indices of rows split into micro-batches of similar length: the split that minimises the padded tokens
    (each micro-batch costs its longest row times its rows) plus `overhead` tokens per micro-batch (the cost of
    one more forward pass). Exact, by dynamic programming over the rows sorted by length."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    n = len(order)
    best = [0.0] + [float("inf")] * n  # best[j]: cost of the j shortest rows
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        longest = lengths[order[j - 1]]
        for i in range(j):
            cost = best[i] + longest * (j - i) + overhead
            if cost < best[j]:
                best[j], cut[j] = cost, i
    groups, j = [], n
    while j > 0:
        groups.append(order[cut[j]:j])
        j = cut[j]
    return groups[::-1]
