"""Batched sampling of self-edits and greedy answers with Hugging Face `generate`.

Batches are fixed slices of the full request list and each batch draws from its own seeded RNG, so a
resumed run that regenerates a missing batch gets exactly the text an uninterrupted run got.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from seal.progress import log, progress


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 1.0
    top_p: float = 0.95
    max_new_tokens: int = 1024


def encode_prompt(tokenizer, text: str) -> list[int]:
    """Token ids of a prompt. Text that already starts with BOS (a rendered chat template) gets no second one."""
    bos = getattr(tokenizer, "bos_token", None)
    add_special = not (bos and text.startswith(bos))
    return tokenizer(text, add_special_tokens=add_special)["input_ids"]


def _generation_config(tokenizer, *, greedy: bool, params: SamplingParams):
    from transformers import GenerationConfig

    kwargs = dict(max_new_tokens=params.max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                  repetition_penalty=1.0)
    if greedy or params.temperature == 0:
        kwargs.update(do_sample=False)
    else:
        # top_k=0 disables transformers' default top-k of 50: the paper samples with temperature and top-p only
        kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0)
    return GenerationConfig(**kwargs)


def pad_left(batch: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(ids) for ids in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, ids in enumerate(batch):
        input_ids[i, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
        mask[i, width - len(ids):] = 1
    return input_ids.to(device), mask.to(device)


def _eos_ids(model, tokenizer) -> set[int]:
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = set(eos if isinstance(eos, (list, tuple)) else [eos]) if eos is not None else set()
    ids.add(tokenizer.eos_token_id)
    return ids


def decode_new_tokens(tokenizer, tokens: torch.Tensor, eos_ids: set[int]) -> str:
    """Text of generated tokens up to (not including) the first EOS."""
    out = []
    for t in tokens.tolist():
        if t in eos_ids:
            break
        out.append(t)
    return tokenizer.decode(out, skip_special_tokens=True)


def fit_context(encoded: list[list[int]], model, max_new_tokens: int) -> list[list[int]]:
    """Prompts that would not fit the model's context window with `max_new_tokens` more tokens keep their
    last tokens (the instruction that ends every prompt) and lose the start of the passage, with a warning."""
    window = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if not isinstance(window, int):
        return encoded
    keep = max(1, window - max_new_tokens)
    cut = [ids for ids in encoded if len(ids) > keep]
    if cut:
        log.warning("%d prompt(s) longer than the context window (%d tokens with %d new) lose their first "
                    "tokens (longest: %d)", len(cut), window, max_new_tokens, max(len(c) for c in cut))
    bos = getattr(model.config, "bos_token_id", None)
    return [ids if len(ids) <= keep else (ids[:1] + ids[-(keep - 1):] if keep > 1 and ids[0] == bos
                                          else ids[-keep:]) for ids in encoded]


@torch.no_grad()
def generate_batch(model, tokenizer, prompts: list[str], params: SamplingParams, *, greedy: bool,
                   seed: int = 0) -> list[str]:
    """One generate call over `prompts` (left padded); returns the completions."""
    device = next(model.parameters()).device
    encoded = fit_context([encode_prompt(tokenizer, p) for p in prompts], model, params.max_new_tokens)
    input_ids, mask = pad_left(encoded, tokenizer.pad_token_id, device)
    if not greedy:
        torch.manual_seed(seed)
    out = model.generate(input_ids=input_ids, attention_mask=mask,
                         generation_config=_generation_config(tokenizer, greedy=greedy, params=params))
    eos = _eos_ids(model, tokenizer)
    return [decode_new_tokens(tokenizer, row[input_ids.shape[1]:], eos) for row in out]


def sample_completions(model, tokenizer, prompts: list[str], n: int, params: SamplingParams, *, seed: int,
                       batch_size: int = 32, description: str = "self-edits",
                       on_batch=None) -> list[list[str]]:
    """`n` sampled completions per prompt. `on_batch(pairs)` is called with [(prompt_idx, sample, text)]
    after each batch, so callers can persist work as it is produced."""
    requests = [(i, s) for i in range(len(prompts)) for s in range(n)]
    results: list[list[str | None]] = [[None] * n for _ in prompts]
    was_training = model.training
    model.eval()
    with progress(description, len(requests)) as advance:
        for b, start in enumerate(range(0, len(requests), batch_size)):
            chunk = requests[start:start + batch_size]
            texts = generate_batch(model, tokenizer, [prompts[i] for i, _ in chunk], params, greedy=False,
                                   seed=seed * 100_003 + b)
            for (i, s), text in zip(chunk, texts):
                results[i][s] = text
            if on_batch is not None:
                on_batch([(i, s, t) for (i, s), t in zip(chunk, texts)])
            advance(len(chunk))
    model.train(was_training)
    return results  # type: ignore[return-value]


def greedy_answers(model, tokenizer, prompts: list[str], max_new_tokens: int = 64,
                   batch_size: int = 64) -> list[str]:
    """Greedy completions (the paper's closed-book answers)."""
    params = SamplingParams(max_new_tokens=max_new_tokens)
    was_training = model.training
    model.eval()
    out: list[str] = []
    for start in range(0, len(prompts), batch_size):
        out += generate_batch(model, tokenizer, prompts[start:start + batch_size], params, greedy=True)
    model.train(was_training)
    return out
