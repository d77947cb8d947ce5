"""The one pretraining loop of the built-in tiny models, and what their builds share: the Llama config, the
learning-rate shape, saving a build as an HF directory, and finding a built model (shipped, cached, or built
on first use).

    losses = pretrain(model, optimizer, epoch_batches, epochs=5, steps_per_epoch=300,
                      lr_lambda=lambda s: lr_factor(s, 1500, spec), description="pretraining")

Both builds (`tiny_knowledge`: the synthetic world of facts; `tiny_arc`: generated ARC-like tasks) and the
knowledge model's induction warm-up run through `pretrain`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Sequence

import torch

from seal.files import atomic_dir
from seal.progress import log, progress

Batch = dict  # keyword arguments of model(...), with `labels`


def cache_root(cache_dir: str | None = None) -> Path:
    return Path(cache_dir or os.environ.get("SEAL_CACHE") or Path.home() / ".cache" / "seal").expanduser()


def llama_config(spec, tok):
    """The Llama config of a tiny built-in model (`spec`: a TinySpec or TinyArcSpec) for tokenizer `tok`."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tok), hidden_size=spec.hidden, intermediate_size=spec.intermediate,
        num_hidden_layers=spec.layers, num_attention_heads=spec.heads, num_key_value_heads=spec.heads,
        max_position_embeddings=1024, tie_word_embeddings=True, rms_norm_eps=1e-5,
        bos_token_id=None, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )


def lr_factor(step: int, total: int, spec) -> float:
    """Warm-up, a constant plateau (memorising facts needs many steps at a high rate), a short linear decay."""
    decay_start = total * (1 - spec.decay_frac)
    tail = 1.0 if step < decay_start else max(0.0, (total - step) / max(1.0, total - decay_start))
    return min(1.0, (step + 1) / spec.warmup) * tail


def pretrain(model, optimizer, epoch_batches: Callable[[int], Sequence[Batch]], *, epochs: int, steps_per_epoch: int,
             lr_lambda: Callable[[int], float] = lambda s: 1.0, description: str = "pretraining",
             on_step: Callable[[int, int], None] | None = None,
             on_epoch: Callable[[int, list[float]], None] | None = None) -> list[float]:
    """Train `model` for `epochs` × `steps_per_epoch` steps and return every step's loss.

    `epoch_batches(e)` gives epoch e's batches (called when the epoch starts, so data drawn from a shared RNG is
    drawn in epoch order); each is `model(**batch)`'s keyword arguments, `labels` included. Gradients are
    clipped to norm 1; the learning rate is the optimiser's times `lr_lambda(step)`. `on_step(step, epoch)`
    runs after every step (probes), `on_epoch(epoch, losses)` after every epoch (the model is in eval mode
    then).
    """
    sched = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
    losses: list[float] = []
    with progress(description, steps_per_epoch * epochs) as advance:
        for epoch in range(epochs):
            batches = epoch_batches(epoch)
            model.train()
            for batch in batches[:steps_per_epoch]:
                loss = model(**batch).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                sched.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(loss.item())
                advance(1)
                if on_step is not None:
                    on_step(len(losses), epoch)
            model.eval()
            if on_epoch is not None:
                on_epoch(epoch, losses)
    return losses


def save_build(model, tok, out_dir: Path, record: dict) -> Path:
    """Save a freshly built model as an HF directory (atomically): weights, tokenizer, a generation config that
    stops at EOS, and `seal_build.json` (`record` plus the torch version)."""
    from transformers import GenerationConfig

    model.eval()
    model.generation_config = GenerationConfig(eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        (tmp / "seal_build.json").write_text(json.dumps({**record, "torch": torch.__version__}, indent=2))
    return out_dir


def ensure_built(asset_dir: Path, name: str, build, cache_dir: str | None = None) -> Path:
    """A built-in model's directory: the checkpoint shipped in `asset_dir`, else the cache's `name`, else a
    fresh `build(target)` into the cache (first use only)."""
    if (asset_dir / "config.json").exists():
        return asset_dir
    target = cache_root(cache_dir) / name
    if not (target / "config.json").exists():
        log.info("building the built-in model %s into %s (first use only)", name, target)
        build(target)
    return target
