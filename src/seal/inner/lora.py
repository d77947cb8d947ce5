"""Multi-adapter LoRA: K adapters stacked in one layer, each batch row routed to its own adapter.

    y = base(x) + scaling * (x @ A[k]^T) @ B[k]^T      for a row of adapter k
    A: (K, r, in), B: (K, out, r)

No Python loop over adapters in the forward pass: the rows' adapters are gathered and multiplied with `bmm`.
The base layer is wrapped, never copied.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn as nn
import torch.nn.functional as F


class Router:
    """Holds the adapter slot of every batch row for all wrapped layers of one model (None: base only)."""

    def __init__(self):
        self.index: torch.Tensor | None = None  # (B,) long

    @contextmanager
    def route(self, index: torch.Tensor | None):
        previous, self.index = self.index, index
        try:
            yield
        finally:
            self.index = previous


class MultiLoraLinear(nn.Module):
    def __init__(self, base: nn.Linear, router: Router, k: int, r: int, alpha: float, dropout: float = 0.0):
        super().__init__()
        self.base = base
        self.router = router
        self.scaling = alpha / r
        self.dropout = dropout
        dev = base.weight.device
        # fp32 adapters whatever the base dtype, as peft does for bf16/fp16 bases
        self.A = nn.Parameter(torch.zeros(k, r, base.in_features, device=dev, dtype=torch.float32))
        self.B = nn.Parameter(torch.zeros(k, base.out_features, r, device=dev, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        idx = self.router.index
        if idx is None:
            return out
        xa = x.to(self.A.dtype)
        if self.dropout and self.training:
            xa = F.dropout(xa, self.dropout)
        squeeze = xa.dim() == 2
        if squeeze:
            xa = xa.unsqueeze(1)
        h = torch.bmm(xa, self.A[idx].transpose(1, 2))  # (B, T, r)
        delta = torch.bmm(h, self.B[idx].transpose(1, 2)) * self.scaling  # (B, T, out)
        if squeeze:
            delta = delta.squeeze(1)
        return out + delta.to(out.dtype)


def _parent(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    parent_name, _, child = name.rpartition(".")
    return (model.get_submodule(parent_name) if parent_name else model), child


def target_names(model: nn.Module, targets: list[str]) -> list[str]:
    """Full names of the Linear modules whose last name component is a target (peft's matching rule)."""
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and n.rpartition(".")[2] in targets]
    if not names:
        raise ValueError(f"none of the target modules {targets} is a Linear layer of this model")
    return names


@contextmanager
def multi_lora(model: nn.Module, targets: list[str], k: int, r: int, alpha: float, dropout: float = 0.0):
    """Wrap the target layers of `model` with K-adapter LoRA for the duration of the block, then restore the
    original modules (the base model is left exactly as it was). Yields (router, [(name, layer), ...])."""
    router = Router()
    wrapped: list[tuple[str, MultiLoraLinear]] = []
    try:
        for name in target_names(model, targets):
            parent, child = _parent(model, name)
            layer = MultiLoraLinear(getattr(parent, child), router, k, r, alpha, dropout)
            setattr(parent, child, layer)
            wrapped.append((name, layer))
        yield router, wrapped
    finally:
        for name, layer in wrapped:
            parent, child = _parent(model, name)
            setattr(parent, child, layer.base)
