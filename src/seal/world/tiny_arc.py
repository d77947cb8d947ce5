"""The built-in tiny ARC model: a chat-template Llama the project pretrains on generated ARC-like tasks.

    seal world build-arc             # build (or rebuild) into the cache

Pretraining sees tasks of twelve families `tl_map_0` ... `tl_map_11` (the answer is one cell: a fixed colour
map applied to the input's top-left cell), as chat conversations with the loss on the answers only, and
tool-config demonstrations: the self-edit prompt answered with random valid configs, so the untrained policy
writes parseable configs of mixed quality. The experiment's tasks are `tl_table`: the same shape of rule with a
per-task table. In context the model must read the table off three demonstrations, which it rarely does;
test-time training only has to store two or three associations, which it can. Grid-to-grid and counting
families were tried first and did not work at this size (docs/arc.md).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from seal.domains.arc.domain import TOOL_PROMPT, format_grid, task_text
from seal.progress import log
from seal.world.arc_tasks import make_task
from seal.world.pretrain import ensure_built, llama_config, lr_factor, pretrain, save_build

ASSET_DIR = Path(__file__).resolve().parents[1] / "assets" / "tiny-arc"
PRETRAIN_FAMILIES = tuple(f"tl_map_{k}" for k in range(12))
LEARNING_RATES = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2)


@dataclass(frozen=True)
class TinyArcSpec:
    hidden: int = 256
    layers: int = 4
    heads: int = 4
    intermediate: int = 768
    vocab: int = 600
    batch: int = 32
    epochs: int = 5
    lr: float = 2e-3
    warmup: int = 100
    decay_frac: float = 0.2
    tasks_per_epoch: int = 3000
    tool_demos: int = 1000
    seed: int = 0


def chat(tok, user: str, assistant: str) -> str:
    return tok.apply_chat_template([{"role": "user", "content": user}, {"role": "assistant", "content": assistant}],
                                   tokenize=False)


def random_config(rng: random.Random) -> str:
    """A valid tool config with every choice drawn at random (what the untrained policy learns to write)."""
    return json.dumps({
        "data_generation": {f"use_{g}_augmentations": rng.random() < 0.5 for g in ("basic", "size", "chain", "repeat")},
        "training": {"strategy": rng.choice(["train_using_all_tokens", "train_using_output_tokens"]),
                     "learning_rate": rng.choice(LEARNING_RATES), "num_train_epochs": rng.randint(1, 5)}})


def epoch_conversations(epoch: int, spec: TinyArcSpec) -> list[tuple[str, str]]:
    """(user, assistant) pairs of one pretraining epoch: tasks and tool-config demonstrations, shuffled."""
    rng = random.Random(f"tiny-arc-{spec.seed}-{epoch}")
    out = []
    for i in range(spec.tasks_per_epoch):
        t = make_task(rng.choice(PRETRAIN_FAMILIES), epoch * 100_000 + i, n_train=rng.randint(2, 4))
        out.append((task_text(t.train, t.test_input), format_grid(t.test_output)))
    for i in range(spec.tool_demos):
        t = make_task(rng.choice(PRETRAIN_FAMILIES), 50_000_000 + epoch * 100_000 + i)
        out.append((TOOL_PROMPT.replace("{task}", task_text(t.train, t.test_input)), random_config(rng)))
    rng.shuffle(out)
    return out


def answer_only_batches(tok, pairs: list[tuple[str, str]], batch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Right-padded (input_ids, labels) batches of similar lengths, in shuffled order; the labels keep the
    assistant's answer (and its end marker) only, found by rendering the conversation without it."""
    rows = []
    for user, answer in pairs:
        full = tok(chat(tok, user, answer) + tok.eos_token, add_special_tokens=False)["input_ids"]
        prefix = tok(tok.apply_chat_template([{"role": "user", "content": user}], tokenize=False,
                                             add_generation_prompt=True), add_special_tokens=False)["input_ids"]
        rows.append((full, len(prefix)))
    rows.sort(key=lambda r: len(r[0]))  # batches of similar lengths: little padding (their order is shuffled)
    out = []
    for i in range(0, len(rows) - batch + 1, batch):
        chunk = rows[i:i + batch]
        width = max(len(ids) for ids, _ in chunk)
        ids = torch.full((batch, width), tok.pad_token_id)
        labels = torch.full((batch, width), -100)
        for j, (row, n) in enumerate(chunk):
            ids[j, :len(row)] = torch.tensor(row)
            labels[j, n:len(row)] = torch.tensor(row[n:])
        out.append((ids, labels))
    random.Random(len(rows)).shuffle(out)
    return out


def icl_probe(model, tok, n: int = 64) -> float:
    """Share of `n` fixed new tasks (the evaluation split's seeds) whose one-cell answer the model's greedy
    first token gets right, in context."""
    tasks = [make_task(f, 2_000_000 + i) for i in range(n // len(PRETRAIN_FAMILIES)) for f in PRETRAIN_FAMILIES]
    right = 0
    with torch.no_grad():
        for t in tasks:
            prompt = tok.apply_chat_template([{"role": "user", "content": task_text(t.train, t.test_input)}],
                                             tokenize=False, add_generation_prompt=True)
            ids = torch.tensor([tok(prompt, add_special_tokens=False)["input_ids"]])
            answer = tok(format_grid(t.test_output), add_special_tokens=False)["input_ids"][0]
            right += int(model(input_ids=ids).logits[0, -1].argmax().item() == answer)
    return right / len(tasks)


def build_tiny_arc_model(out_dir: str | Path, spec: TinyArcSpec = TinyArcSpec()) -> Path:
    """Pretrain the tiny ARC model (loss on the answers only) and save it as an HF directory, atomically."""
    from transformers import LlamaForCausalLM

    from seal.world.tokenizer import CHAT_TEMPLATE, EOS, IM_END, IM_START, train_tokenizer

    out_dir = Path(out_dir)
    torch.manual_seed(spec.seed)
    t0 = time.time()
    sample = [f"{IM_START}user\n{u}{IM_END}\n{IM_START}assistant\n{a}{IM_END}\n{EOS}"
              for u, a in epoch_conversations(-1, replace(spec, tasks_per_epoch=500, tool_demos=50))]
    tok = train_tokenizer(sample, spec.vocab, individual_digits=True)
    assert tok.chat_template == CHAT_TEMPLATE
    model = LlamaForCausalLM(llama_config(spec, tok))
    log.info("tiny ARC model: %.1fM parameters, vocabulary %d", sum(p.numel() for p in model.parameters()) / 1e6,
             len(tok))
    first = answer_only_batches(tok, epoch_conversations(0, spec), spec.batch)
    total = len(first) * spec.epochs

    def epoch_batches(epoch: int) -> list[dict]:
        batches = first if epoch == 0 else answer_only_batches(tok, epoch_conversations(epoch, spec), spec.batch)
        return [{"input_ids": ids, "attention_mask": (ids != tok.pad_token_id) | (labels != -100), "labels": labels}
                for ids, labels in batches]

    probes: list[dict] = []

    def on_epoch(epoch: int, losses: list[float]) -> None:
        probes.append({"epoch": epoch + 1, "loss": sum(losses[-len(first):]) / len(first),
                       "icl": icl_probe(model, tok)})
        log.info("epoch %d: answer loss %.3f, in-context accuracy %.2f", epoch + 1, probes[-1]["loss"],
                 probes[-1]["icl"])

    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, betas=(0.9, 0.95), weight_decay=0.01)
    # every epoch the same number of steps (a longer one is cut): an exact schedule
    pretrain(model, opt, epoch_batches, epochs=spec.epochs, steps_per_epoch=len(first),
             lr_lambda=lambda s: lr_factor(s, total, spec), description="pretraining the tiny ARC model",
             on_epoch=on_epoch)
    return save_build(model, tok, out_dir, {"spec": asdict(spec), "seconds": time.time() - t0, "probes": probes})


def ensure_tiny_arc_model(cache_dir: str | None = None) -> Path:
    """The tiny ARC model's directory: the shipped checkpoint, else the cache, else a fresh build."""
    return ensure_built(ASSET_DIR, "tiny-arc", build_tiny_arc_model, cache_dir)
