"""What both engines share, so that they compute the same numbers: data order, LoRA init, schedules, loss.

The batched engine is tested against the sequential one; every choice that could make them differ lives here
once.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from seal.domains.base import OptimSpec, TrainSequence

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


def step_batches(n_sequences: int, optim: OptimSpec, seed: int) -> list[list[int]]:
    """Indices of the sequences of every optimiser step: a fresh seeded shuffle each epoch, then batches."""
    g = torch.Generator().manual_seed(seed)
    steps: list[list[int]] = []
    for _ in range(optim.epochs):
        order = torch.randperm(n_sequences, generator=g).tolist()
        steps += [order[i:i + optim.batch_size] for i in range(0, n_sequences, optim.batch_size)]
    return steps


def lr_factor(step: int, total: int, schedule: str, warmup: int = 0) -> float:
    """Multiplier of the peak lr at optimiser step `step` (0-based), as transformers' schedulers compute it."""
    if step < warmup:
        return step / max(1, warmup)
    if schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    if schedule == "linear":
        return max(0.0, 1.0 - progress)
    if schedule == "cosine":
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
    raise ValueError(f"unknown schedule '{schedule}'")


def lora_a_init(shape: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    """peft's default A init (kaiming-uniform with a=sqrt(5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in))), drawn
    from an explicit generator so that an adapter's init depends only on its seed. B starts at zero."""
    bound = 1.0 / math.sqrt(shape[1])
    return torch.empty(shape).uniform_(-bound, bound, generator=generator)


def collate(seqs: list[TrainSequence], device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-pad to the longest: (input_ids, attention_mask, loss_mask), each (B, T)."""
    width = max(len(s.input_ids) for s in seqs)
    ids = torch.zeros((len(seqs), width), dtype=torch.long)
    attn = torch.zeros((len(seqs), width), dtype=torch.long)
    lmask = torch.zeros((len(seqs), width), dtype=torch.float32)
    for i, s in enumerate(seqs):
        n = len(s.input_ids)
        ids[i, :n] = torch.tensor(s.input_ids)
        attn[i, :n] = 1
        lmask[i, :n] = torch.tensor(s.loss_mask, dtype=torch.float32)
    return ids.to(device), attn.to(device), lmask.to(device)


def loss_tokens(seq: TrainSequence) -> int:
    """The tokens of `seq` that carry loss, counted as `row_token_losses` counts them (the first token is never
    predicted)."""
    return sum(seq.loss_mask[1:])


def row_token_losses(logits: torch.Tensor, input_ids: torch.Tensor, loss_mask: torch.Tensor):
    """Next-token cross-entropy summed per row, and the number of loss tokens per row.

    logits (B, T, V); token t+1 is predicted at position t and counts when loss_mask[t+1] is 1.
    """
    target = input_ids[:, 1:]
    weight = loss_mask[:, 1:]
    ce = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), target, reduction="none")  # (B, T-1)
    return (ce * weight).sum(1), weight.sum(1)
