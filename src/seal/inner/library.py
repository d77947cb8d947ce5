"""An adapter library: one LoRA adapter per passage (or document), the base weights never change, and every
question is answered through the adapter of the passage most similar to it.

    keys = embed(base, [f"{c.title}\\n{c.text}" for c in passages])   # (N, H), unit norm
    choice = route(embed(base, questions), keys)                         # passage index per question
    with adapters_loaded(base, adapter_dirs) as model:                   # adapters named a0, a1, ...
        model.set_adapter("a3"); ...

Routing is cosine similarity of the base model's mean-pooled last hidden states. Old passages cannot be
overwritten by new ones, only mis-routed. Adapters are trained by `seal.inner.update.train_adapter`.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch

from seal.generate import encode_prompt, pad_left


@torch.no_grad()
def embed(loaded, texts: list[str], batch_size: int = 32) -> torch.Tensor:
    """Unit-norm mean-pooled last hidden states of `texts`, (len(texts), hidden)."""
    tok, model = loaded.tokenizer, loaded.model
    out = []
    for i in range(0, len(texts), batch_size):
        ids, mask = pad_left([encode_prompt(tok, t) for t in texts[i:i + batch_size]], tok.pad_token_id,
                             loaded.device)
        hidden = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[-1].float()
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)  # (B, H)
        out.append(torch.nn.functional.normalize(pooled, dim=-1).cpu())
    return torch.cat(out)


def route(queries: torch.Tensor, keys: torch.Tensor) -> list[int]:
    """The index of the most similar key for every query (both unit norm)."""
    return (queries @ keys.T).argmax(1).tolist()


@contextmanager
def adapters_loaded(loaded, adapter_dirs: list[str | Path]) -> Iterator[object]:
    """`loaded.model` with every adapter of `adapter_dirs` attached, named `a0`, `a1`, ... in order; the base
    model is restored (no adapter layers, frozen, eval mode) when the block ends."""
    from peft import PeftModel

    model = PeftModel.from_pretrained(loaded.model, str(adapter_dirs[0]), adapter_name="a0")
    try:
        for j, path in enumerate(adapter_dirs[1:], start=1):
            model.load_adapter(str(path), adapter_name=f"a{j}")
        yield model
    finally:
        model.unload()
        loaded.model.requires_grad_(False)
        loaded.model.eval()
