"""The reference engine: one peft LoRA adapter at a time, a plain PyTorch training loop.

Readable rather than fast. For each job: add a fresh adapter, train it on the plan, answer the probes greedily,
remove the adapter. The base weights are frozen and never handed to an optimiser, so the base model is
exactly restored between jobs (tested bit for bit).
"""

from __future__ import annotations

import time

import torch

from seal.domains.base import InnerResult, Job, LoraSpec, UpdatePlan
from seal.generate import greedy_answers
from seal.inner.common import ADAM_BETAS, ADAM_EPS, collate, lora_a_init, lr_factor, row_token_losses, step_batches
from seal.model import default_target_modules


def peft_config(model, lora: LoraSpec):
    from peft import LoraConfig

    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, bias="none",
                      target_modules=list(lora.target_modules or default_target_modules(model)),
                      task_type="CAUSAL_LM")


def lora_modules(peft_model, adapter: str = "default") -> list[tuple[str, torch.nn.Module]]:
    """(name, lora layer) pairs in model order: the order adapter inits are drawn in, in both engines."""
    from peft.tuners.lora import LoraLayer

    return [(n, m) for n, m in peft_model.named_modules() if isinstance(m, LoraLayer) and adapter in m.lora_A]


def init_adapter(peft_model, seed: int, adapter: str = "default") -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, m in lora_modules(peft_model, adapter):
            a, b = m.lora_A[adapter].weight, m.lora_B[adapter].weight
            a.copy_(lora_a_init(tuple(a.shape), g))
            b.zero_()


def train_adapter(model, plan: UpdatePlan, seed: int) -> list[float]:
    """Train the active adapter of `model` (a PeftModel) on `plan`; returns the loss of every step."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=plan.optim.lr, betas=ADAM_BETAS, eps=ADAM_EPS,
                            weight_decay=plan.optim.weight_decay)
    steps = step_batches(len(plan.sequences), plan.optim, seed)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, len(steps), plan.optim.schedule, plan.optim.warmup_steps))
    device = next(model.parameters()).device
    losses = []
    model.train()
    for idx in steps:
        ids, attn, lmask = collate([plan.sequences[i] for i in idx], device)
        logits = model(input_ids=ids, attention_mask=attn).logits
        tok_loss, n_tok = row_token_losses(logits, ids, lmask)
        loss = tok_loss.sum() / n_tok.sum().clamp(min=1)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss at step {len(losses)}")
        loss.backward()
        if plan.optim.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(params, plan.optim.max_grad_norm)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    model.eval()
    return losses


class SequentialEngine:
    """`evaluate(model, jobs)`: one job after another through peft."""

    name = "sequential"

    def __init__(self, eval_batch_size: int = 64):
        self.eval_batch_size = eval_batch_size

    def chunks(self, loaded, jobs: list[Job]) -> list[list[int]]:
        return [[i] for i in range(len(jobs))]

    def run_chunk(self, loaded, jobs: list[Job]) -> list[InnerResult]:
        return [self.run_job(loaded, job) for job in jobs]

    def run_job(self, loaded, job: Job) -> InnerResult:
        model, tok = loaded.model, loaded.tokenizer
        prompts = [p.prompt for p in job.probes]
        max_new = max((p.max_new_tokens for p in job.probes), default=1)
        if job.plan is None:
            t0 = time.perf_counter()
            answers = greedy_answers(model, tok, prompts, max_new, self.eval_batch_size)
            return InnerResult(answers, eval_seconds=time.perf_counter() - t0)
        from peft import get_peft_model

        t0 = time.perf_counter()
        peft_model = get_peft_model(model, peft_config(model, job.plan.lora))
        try:
            init_adapter(peft_model, job.seed)
            try:
                losses = train_adapter(peft_model, job.plan, job.seed)
            except FloatingPointError as e:
                return InnerResult([], failed=str(e), train_seconds=time.perf_counter() - t0)
            t1 = time.perf_counter()
            answers = greedy_answers(peft_model, tok, prompts, max_new, self.eval_batch_size)
            return InnerResult(answers, losses, t1 - t0, time.perf_counter() - t1)
        finally:
            peft_model.unload()  # drops the LoRA layers, puts the original modules back
            model.requires_grad_(False)
            model.eval()
