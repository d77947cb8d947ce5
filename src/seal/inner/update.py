"""Updates that last: one finetuning run over many sequences, merged into the weights or kept as an adapter.

The inner-loop engines train throwaway adapters and only return answers; continued pretraining, continual
self-edits and `seal learn` need the update itself:

    finetune(loaded, sequences, spec, seed)               # in place: LoRA then merge (the paper), or every weight
    train_adapter(loaded, sequences, spec, seed, out_dir) # a peft adapter directory; the base is unchanged

Batches stream from token ids, so memory holds one micro-batch of activations whatever the corpus size;
gradients accumulate over `grad_accum` micro-batches. The loss, the data order and the schedule are the
engines' own (`seal.inner.common`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from seal.domains.base import OptimSpec, TrainSequence, UpdateSpec
from seal.files import atomic_dir
from seal.inner.common import ADAM_BETAS, ADAM_EPS, collate, loss_tokens, lr_factor, row_token_losses, step_batches
from seal.progress import log, progress


@dataclass
class UpdateResult:
    step_losses: list[float]
    seconds: float
    n_tokens: int


def train_steps(model, sequences: list[TrainSequence], optim: OptimSpec, grad_accum: int, seed: int,
                description: str = "finetuning") -> list[float]:
    """AdamW over the trainable parameters of `model`; returns each optimiser step's mean token loss.

    Each epoch is a fresh seeded shuffle cut into micro-batches of `optim.batch_size`; `grad_accum`
    consecutive micro-batches make one step (the epoch's last step may take fewer). The loss of a step is the
    mean over its loss tokens, as if its micro-batches were one batch.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("nothing to train: the model has no trainable parameters")
    opt = torch.optim.AdamW(params, lr=optim.lr, betas=ADAM_BETAS, eps=ADAM_EPS, weight_decay=optim.weight_decay)
    per_epoch = -(-len(sequences) // optim.batch_size)
    micro = step_batches(len(sequences), optim, seed)  # the engines' data order: one shuffle per epoch
    epochs = [micro[e * per_epoch:(e + 1) * per_epoch] for e in range(optim.epochs)]
    steps = [ep[i:i + grad_accum] for ep in epochs for i in range(0, per_epoch, grad_accum)]
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, len(steps), optim.schedule, optim.warmup_steps))
    device = next(model.parameters()).device
    losses: list[float] = []
    model.train()
    with progress(description, len(steps)) as advance:
        for micro_batches in steps:
            n_loss = sum(loss_tokens(sequences[i]) for mb in micro_batches for i in mb)
            total = 0.0
            for mb in micro_batches:
                ids, attn, lmask = collate([sequences[i] for i in mb], device)
                tok_loss, _ = row_token_losses(model(input_ids=ids, attention_mask=attn).logits, ids, lmask)
                loss = tok_loss.sum() / max(1, n_loss)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"non-finite loss at step {len(losses)}")
                loss.backward()
                total += loss.item()
            if optim.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(params, optim.max_grad_norm)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            losses.append(total)
            advance()
    model.eval()
    return losses


def finetune(loaded, sequences: list[TrainSequence], spec: UpdateSpec, seed: int,
             description: str = "finetuning", verbose: bool = True,
             save_adapter: str | Path | None = None) -> UpdateResult:
    """Train `loaded.model` on `sequences` and leave the update in its weights (LoRA is merged; with
    `save_adapter`, the trained LoRA is first saved there as a peft adapter directory).

    On a non-finite loss a LoRA update is discarded and the weights are untouched; a full update leaves the
    weights partly trained, so the caller must reload them (the error says so). Full finetuning of bf16/fp16
    weights keeps fp32 master weights during training (4 bytes a parameter, plus AdamW's 8 and the
    gradient's 4) and casts back at the end.
    """
    from peft import get_peft_model

    from seal.inner.sequential import init_adapter, peft_config

    if not sequences:
        raise ValueError("finetune needs at least one training sequence")
    t0 = time.perf_counter()
    model = loaded.model
    n_tokens = sum(len(s.input_ids) for s in sequences)
    say = log.info if verbose else log.debug
    say("%s: %d sequences, %d tokens, %d optimiser steps (%s)", description, len(sequences), n_tokens,
        spec.n_steps(len(sequences)), spec.mode)
    if spec.mode == "full":
        # AdamW steps on bf16/fp16 weights mostly round away (an update under half a bf16 step is lost):
        # train fp32 master weights under autocast, then cast back
        dtype = next(model.parameters()).dtype
        half = dtype in (torch.bfloat16, torch.float16)
        if half:
            model.float()
        model.requires_grad_(True)
        device = next(model.parameters()).device
        try:
            with torch.autocast(device.type, dtype=dtype, enabled=half):
                losses = train_steps(model, sequences, spec.optim, spec.grad_accum, seed, description)
        except FloatingPointError as e:
            raise FloatingPointError(f"{e}; the weights are partly updated: reload the model") from None
        finally:
            model.requires_grad_(False)
            model.eval()
            if half:
                model.to(dtype)
        return UpdateResult(losses, time.perf_counter() - t0, n_tokens)
    if spec.mode != "lora":
        raise ValueError(f"unknown update mode '{spec.mode}'")
    peft_model = get_peft_model(model, peft_config(model, spec.lora))
    try:
        init_adapter(peft_model, seed)
        losses = train_steps(peft_model, sequences, spec.optim, spec.grad_accum, seed, description)
        if save_adapter is not None:
            with atomic_dir(save_adapter) as tmp:
                peft_model.save_pretrained(tmp)
    except BaseException:
        peft_model.unload()
        raise
    loaded.model = peft_model.merge_and_unload()
    loaded.model.requires_grad_(False)
    loaded.model.eval()
    return UpdateResult(losses, time.perf_counter() - t0, n_tokens)


def train_adapter(loaded, sequences: list[TrainSequence], spec: UpdateSpec, seed: int, out_dir: str | Path,
                  description: str = "adapter") -> UpdateResult:
    """Train a fresh LoRA (`spec.lora`, `spec.optim`) on `sequences` and save it to `out_dir` as a standard peft
    adapter directory (atomically; `PeftModel.from_pretrained` and vLLM load it). The base weights are left as
    they were."""
    from peft import get_peft_model

    from seal.inner.sequential import init_adapter, peft_config

    t0 = time.perf_counter()
    model = loaded.model
    peft_model = get_peft_model(model, peft_config(model, spec.lora))
    try:
        init_adapter(peft_model, seed)
        losses = train_steps(peft_model, sequences, spec.optim, spec.grad_accum, seed, description)
        with atomic_dir(out_dir) as tmp:
            peft_model.save_pretrained(tmp)
    finally:
        peft_model.unload()
        model.requires_grad_(False)
    return UpdateResult(losses, time.perf_counter() - t0, sum(len(s.input_ids) for s in sequences))


def train_adapters(loaded, work: list[tuple[list[TrainSequence], int, Path]], spec: UpdateSpec,
                   max_adapters: int = 32, description: str = "adapters") -> list[UpdateResult]:
    """Fresh LoRA adapters on one frozen base, one per (sequences, seed, output directory), each saved as a peft
    adapter directory (atomically). Up to `max_adapters` train at once through the batched engine, which gives
    the one-at-a-time numbers (tests/test_engines.py); with `grad_accum` > 1, which the engine does not do,
    they train one after another (`train_adapter`)."""
    from seal.domains.base import Job, UpdatePlan
    from seal.inner.batched import BatchedEngine

    if spec.grad_accum > 1 or len(work) == 1:
        return [train_adapter(loaded, seqs, spec, seed, out, description) for seqs, seed, out in work]
    engine, results = BatchedEngine(max_adapters), []
    jobs = [Job(UpdatePlan(tuple(seqs), spec.lora, spec.optim), (), seed) for seqs, seed, _ in work]
    with progress(description, len(work)) as advance:
        for start in range(0, len(work), max_adapters):
            chunk = list(range(start, min(len(work), start + max_adapters)))
            t0 = time.perf_counter()
            with engine.trained(loaded, [jobs[i] for i in chunk]) as batch:
                for k, i in enumerate(chunk):
                    if batch.adapters[k].failed:
                        raise FloatingPointError(f"{work[i][2]}: {batch.adapters[k].failed}")
                    with atomic_dir(work[i][2]) as tmp:
                        batch.export(k, tmp)
            seconds = (time.perf_counter() - t0) / len(chunk)
            results += [UpdateResult(batch.adapters[k].losses, seconds, sum(len(s.input_ids) for s in work[i][0]))
                        for k, i in enumerate(chunk)]
            advance(len(chunk))
    return results
