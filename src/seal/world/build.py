"""Build the built-in tiny model: a Llama-architecture causal LM pretrained on the synthetic world, on a CPU.

    seal world build                 # build (or rebuild) into the cache
    seal world build --out DIR       # somewhere else

The result is a normal Hugging Face model directory (safetensors, tokenizer with EOS and a chat template,
generation config) that `AutoModelForCausalLM` / `AutoTokenizer` load. `ensure_tiny_model()` returns the cached
copy, building it on first use; the package also ships the checkpoint this command produced, so a fresh
install does not have to spend the build time.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from seal.progress import log, progress

ASSET_DIR = Path(__file__).resolve().parent.parent / "assets" / "tiny-knowledge"


@dataclass(frozen=True)
class TinySpec:
    """Architecture and pretraining recipe of a tiny world model."""

    hidden: int = 256
    layers: int = 4
    heads: int = 4
    intermediate: int = 768
    vocab: int = 3072
    block: int = 256  # tokens per packed training sequence
    batch: int = 16
    epochs: int = 12
    lr: float = 2e-3
    warmup: int = 100
    seed: int = 0
    max_entities: int | None = None  # a smaller corpus, for quick test builds


def cache_root(cache_dir: str | None = None) -> Path:
    return Path(cache_dir or os.environ.get("SEAL_CACHE") or Path.home() / ".cache" / "seal").expanduser()


def _config(spec: TinySpec, tok):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tok), hidden_size=spec.hidden, intermediate_size=spec.intermediate,
        num_hidden_layers=spec.layers, num_attention_heads=spec.heads, num_key_value_heads=spec.heads,
        max_position_embeddings=1024, tie_word_embeddings=True, rms_norm_eps=1e-5,
        bos_token_id=None, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )


def _blocks(docs: list[str], tok, block: int, rng: random.Random) -> torch.Tensor:
    """Pack documents (each ends with EOS) into (N, block + 1) token blocks."""
    ids: list[int] = []
    for start in range(0, len(docs), 512):
        for row in tok(docs[start:start + 512], add_special_tokens=False)["input_ids"]:
            ids += row
    n = len(ids) // (block + 1)
    t = torch.tensor(ids[: n * (block + 1)]).view(n, block + 1)
    return t[torch.tensor(rng.sample(range(n), n))]


def build_tiny_model(out_dir: str | Path, spec: TinySpec = TinySpec()) -> Path:
    """Pretrain the tiny model on the world and save it as an HF directory (atomically)."""
    from transformers import GenerationConfig, LlamaForCausalLM

    from seal.world.corpus import epoch_documents
    from seal.world.generator import default_world
    from seal.world.tokenizer import EOS, train_tokenizer

    out_dir = Path(out_dir)
    world = default_world()
    if spec.max_entities:
        world.entities["pretrain"] = world.entities["pretrain"][: spec.max_entities]
    torch.manual_seed(spec.seed)
    rng = random.Random(spec.seed)
    t0 = time.time()
    tok = train_tokenizer(epoch_documents(world, 0, "\n") + epoch_documents(world, 1, "\n"), spec.vocab)
    model = LlamaForCausalLM(_config(spec, tok))
    log.info("tiny model: %.1fM parameters, vocabulary %d", sum(p.numel() for p in model.parameters()) / 1e6,
             len(tok))
    first = _blocks(epoch_documents(world, 0, EOS), tok, spec.block, rng)
    steps_per_epoch = len(first) // spec.batch
    total = steps_per_epoch * spec.epochs
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, betas=(0.9, 0.95), weight_decay=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / spec.warmup) * 0.5 *
                                              (1 + math.cos(math.pi * min(1.0, s / total))))
    losses = []
    model.train()
    with progress("pretraining the tiny model", total) as advance:
        for epoch in range(spec.epochs):
            blocks = first if epoch == 0 else _blocks(epoch_documents(world, epoch, EOS), tok, spec.block, rng)
            for i in range(steps_per_epoch):
                batch = blocks[i * spec.batch:(i + 1) * spec.batch]
                loss = model(input_ids=batch, labels=batch).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
                losses.append(loss.item())
                advance(1)
            log.info("epoch %d: loss %.3f", epoch + 1, sum(losses[-steps_per_epoch:]) / steps_per_epoch)
    model.eval()
    model.generation_config = GenerationConfig(eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    (tmp / "seal_build.json").write_text(json.dumps(
        {"spec": asdict(spec), "world_seed": world.seed, "seconds": time.time() - t0,
         "final_loss": sum(losses[-50:]) / max(1, len(losses[-50:])), "torch": torch.__version__}, indent=2))
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return out_dir


def ensure_tiny_model(cache_dir: str | None = None) -> Path:
    """The built-in tiny model's directory: the shipped checkpoint, else the cache, else a fresh build."""
    if (ASSET_DIR / "config.json").exists():
        return ASSET_DIR
    target = cache_root(cache_dir) / "tiny-knowledge"
    if not (target / "config.json").exists():
        log.info("building the tiny model into %s (first use only)", target)
        build_tiny_model(target)
    return target
