"""An adapter library: one LoRA adapter per passage (or document), the base weights never change, and every
question is answered through the adapter of the passage most similar to it.

    keys = embed(base, [f"{c.title}\\n{c.text}" for c in passages])   # (N, H), unit norm
    choice = route(embed(base, questions), keys)                         # passage index per question
    with adapters_loaded(base, adapter_dirs) as model:                   # adapters named a0, a1, ...
        model.set_adapter("a3"); ...

Routing is cosine similarity of the base model's mean-pooled last hidden states (`embed`, `route`), or
lexical BM25 over the passages' words (`Router(kind="bm25")`: BM25+, Lv and Zhai's variant of Robertson and
Zaragoza's ranking function, as `rank_bm25` implements it). Old passages cannot be overwritten by new ones,
only mis-routed. Adapters are trained by `seal.inner.update.train_adapter`.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass, field
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


_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """Lower-cased word tokens, BM25's view of a text.

    >>> words("Where was Milo Halden born?")
    ['where', 'was', 'milo', 'halden', 'born']
    """
    return [w.lower() for w in _WORD.findall(text)]


@dataclass
class Router:
    """Which adapter answers a question: the most similar of `names`' texts. `kind`: `bm25` (lexical, over
    `texts`) or `embedding` (cosine of the base model's pooled states against `keys`). Saved as JSON
    (`to_json`) beside the adapters, so `seal ask` routes as the run did."""

    kind: str
    names: list[str]
    texts: list[str] = field(default_factory=list)
    keys: list[list[float]] = field(default_factory=list)

    @classmethod
    def build(cls, kind: str, names: list[str], texts: list[str], loaded=None) -> "Router":
        if kind == "bm25":
            return cls(kind, names, texts)
        if kind == "embedding":
            return cls(kind, names, keys=embed(loaded, texts).tolist())
        raise ValueError(f"unknown router '{kind}': bm25 or embedding")

    def route(self, questions: list[str], loaded=None, among: int | None = None,
              vectors: torch.Tensor | None = None) -> list[int]:
        """The index (into `names`) of the adapter for each question, among the first `among` (default all);
        for `embedding`, `loaded` (the base model) embeds the questions, or `vectors` holds their embeddings
        already (a caller routing the same questions many times). Ties go to the lower index."""
        n = len(self.names) if among is None else among
        if self.kind == "bm25":
            from rank_bm25 import BM25Plus

            bm25 = BM25Plus([words(t) for t in self.texts[:n]])  # BM25+: its idf stays positive in a library of two
            return [int(max(range(n), key=lambda i, s=bm25.get_scores(words(q)): (s[i], -i))) for q in questions]
        return route(embed(loaded, questions) if vectors is None else vectors, torch.tensor(self.keys[:n]))

    def to_json(self) -> dict:
        return {"kind": self.kind, "names": self.names, "texts": self.texts, "keys": self.keys}

    @classmethod
    def from_json(cls, d: dict) -> "Router":
        return cls(d["kind"], list(d["names"]), list(d.get("texts", [])), [list(k) for k in d.get("keys", [])])
