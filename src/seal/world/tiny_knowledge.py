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
import random
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from seal.progress import log
from seal.world import pools as P
from seal.world.pretrain import ensure_built, llama_config, lr_factor, pretrain, save_build

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
    batch: int = 8
    epochs: int = 45
    lr: float = 3e-3  # constant after warm-up, then linear decay to 0 over the last `decay_frac` of the steps
    warmup: int = 100
    decay_frac: float = 0.2
    weight_decay: float = 0.01  # not on norms and embeddings
    demos: int = 1000  # throwaway-entity demonstrations per epoch (copying from context)
    drills: int = 1500  # exact copy drills per epoch, trained on the repeat (corpus.drill_document): keep induction
    # steps of an induction warm-up before the world corpus: exact copy drills, loss on the repeated half only. A
    # tiny model never forms an induction head (copying what it has just read) from the world corpus alone; a fresh
    # one forms it in ~2,000 steps of batch 16 (docs/tiny-world.md)
    induction_steps: int = 2000
    induction_batch: int = 16
    induction_lr: float = 1e-3
    # the corpus trains the attention projections at lr * this: at the full rate it erases the warmed-up head
    # within 300 steps; at 0.1, with the drills, the head stays and sharpens
    attention_lr_scale: float = 0.1
    seed: int = 0
    max_entities: int | None = None  # a smaller corpus, for quick test builds
    probe_every: int = 0  # log closed-book QA and self-edit copying every this many steps (0: never)
    first_epoch: int = 0  # corpus epochs start here (a continued build sees fresh renderings)
    # "documents": a block starts at a document boundary and is padded rather than cut, so a demonstration keeps
    # its passage in view; "stream": documents end to end, cut every `block` tokens
    packing: str = "documents"


def _tokenize_documents(docs, tok) -> list[list[tuple[int, int]]]:
    """Each document as (token id, label) pairs: label = id, or -100 on the context of a (context, target)
    document (`corpus.Document`)."""
    texts = [t for doc in docs for t in ([doc] if isinstance(doc, str) else doc)]
    ids: list[list[int]] = []
    for start in range(0, len(texts), 512):
        ids += tok(texts[start:start + 512], add_special_tokens=False)["input_ids"]
    rows, k = [], 0
    for doc in docs:
        if isinstance(doc, str):
            rows.append([(t, t) for t in ids[k]])
            k += 1
        else:
            rows.append([(t, -100) for t in ids[k]] + [(t, t) for t in ids[k + 1]])
            k += 2
    return rows


def _blocks(docs, tok, block: int, rng: random.Random, packing: str = "stream") -> torch.Tensor:
    """Pack documents (each ends with EOS; `corpus.Document`) into (N, 2, block + 1) blocks: token ids, and
    labels (-100 on padding and on the context of a (context, target) document), in a seeded random order.
    See `TinySpec.packing`."""
    rows = _tokenize_documents(docs, tok)
    width = block + 1
    if packing == "stream":
        pairs = [p for row in rows for p in row]
        n = len(pairs) // width
        packed = torch.tensor(pairs[: n * width]).view(n, width, 2).permute(0, 2, 1).contiguous()
    elif packing == "documents":
        blocks, cur = [], []
        for row in rows:
            for i in range(0, len(row), width):  # a document longer than a block is cut, as it must be
                piece = row[i:i + width]
                if len(cur) + len(piece) > width:
                    blocks.append(cur)
                    cur = []
                cur = cur + piece
        if cur:
            blocks.append(cur)
        packed = torch.full((len(blocks), 2, width), -100)
        packed[:, 0] = tok.pad_token_id
        for b, pairs in enumerate(blocks):
            packed[b, :, : len(pairs)] = torch.tensor(pairs).T
    else:
        raise ValueError(f"unknown packing {packing!r}: 'stream' or 'documents'")
    return packed[torch.tensor(rng.sample(range(len(packed)), len(packed)))]


def closed_book_accuracy(model, tok, contexts) -> float:
    """Fraction of the contexts' questions answered (gold contained in a greedy answer, case-insensitive) with
    the paper's answer prompt, without the passage."""
    from seal.domains.knowledge import ANSWER_PROMPT
    from seal.generate import greedy_answers

    prompts = [ANSWER_PROMPT.format(title=c.title, question=q.question) for c in contexts for q in c.questions]
    golds = [q.answer for c in contexts for q in c.questions]
    outs = greedy_answers(model, tok, prompts, 8, 256)
    return sum(g.lower() in o.lower() for g, o in zip(golds, outs)) / max(1, len(golds))


def _drill_ids(tok, first: str, again: str) -> tuple[list[int], list[int]]:
    """Token ids of a copy drill's two halves: the run with its newline, and the repeat."""
    return tok(first + "\n", add_special_tokens=False)["input_ids"], tok(again, add_special_tokens=False)["input_ids"]


@torch.no_grad()
def induction_score(model, tok, n: int = 16, seed: int = 0) -> float:
    """Mean probability the model gives the tokens of a run of pool words it has just read (exact copy drills,
    `corpus.copy_drill`): ~0 without an induction head, near 1 with one. Copying values into a self-edit needs
    this skill."""
    from seal.world.corpus import copy_drill

    rng, scores = random.Random(seed), []
    while len(scores) < n:
        first, again = copy_drill(rng, "").split("\n")
        if first != again:
            continue
        head, tail = _drill_ids(tok, first, again)
        ids = torch.tensor([head + tail])
        logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
        p = logp.gather(-1, ids[0, 1:, None])[:, 0].exp()
        scores.append(p[len(head):].mean().item())  # predictions of the repeated words after the first
    return sum(scores) / n


def induction_warmup(model, tok, spec) -> dict:
    """Train `spec.induction_steps` steps on exact copy drills (`corpus.drill_document`, as in the corpus) with
    the loss on the repeated half only: the skill a self-edit needs (copying what the passage says) and that the
    world corpus alone never forms in a tiny model. Uses its own seeded drill stream."""
    from seal.domains.base import TrainSequence
    from seal.inner.common import collate
    from seal.world.corpus import drill_document

    rng = random.Random(f"{spec.seed}-induction")

    def drills(_epoch: int) -> list[dict]:
        batches = []
        for _ in range(spec.induction_steps):
            rows = _tokenize_documents([drill_document(rng, tok.eos_token) for _ in range(spec.induction_batch)], tok)
            seqs = [TrainSequence(tuple(t for t, _ in row), tuple(int(label != -100) for _, label in row))
                    for row in rows]
            ids, mask, loss_mask = collate(seqs, "cpu")
            batches.append({"input_ids": ids, "labels": ids.masked_fill(loss_mask == 0, -100), "attention_mask": mask})
        return batches

    losses = pretrain(model, torch.optim.AdamW(model.parameters(), lr=spec.induction_lr), drills, epochs=1,
                      steps_per_epoch=spec.induction_steps, description="induction warm-up (copy drills)")
    model.train()  # the corpus continues in training mode
    final, score = sum(losses[-20:]) / max(1, len(losses[-20:])), induction_score(model, tok)
    log.info("induction warm-up: %d steps, final loss %.3f, induction %.3f", len(losses), final, score)
    return {"steps": len(losses), "final_loss": final, "induction": round(score, 3)}


def probe(model, tok, world, n: int = 48) -> dict[str, float]:
    """What the model has learnt so far: closed-book accuracy on pretraining entities' questions (`recall`);
    on sampled self-edits for held-out passages, the fraction of lines naming the passage's entity (`copy`) and
    of mentioned pool values (cities, years, occupations) that the passage states (`values`); copying a run of
    words just read (`induction`, see `induction_score`)."""
    from seal.domains.knowledge import SELF_EDIT_PROMPTS
    from seal.generate import SamplingParams, generate_batch

    was_training = model.training
    model.eval()
    recall = closed_book_accuracy(model, tok, [c for c in world.split("pretrain") if c.payload.qa][:n])
    held = world.split("eval")[:n // 2]
    edits = generate_batch(model, tok, [SELF_EDIT_PROMPTS["implications"].format(title=c.title, context=c.text)
                                        for c in held], SamplingParams(1.0, 0.95, 120), greedy=False, seed=0)
    lines = [(c.title, line) for c, e in zip(held, edits) for line in e.splitlines() if line.strip()]
    copy = sum(title in line for title, line in lines) / max(1, len(lines))
    pool = set(P.CITIES) | set(P.YEARS) | set(P.OCCUPATIONS)
    mentioned = [(w in c.text) for c, e in zip(held, edits) for w in re.findall(r"\w+", e) if w in pool]
    induction = induction_score(model, tok)
    model.train(was_training)
    return {"recall": round(recall, 3), "copy": round(copy, 3),
            "values": round(sum(mentioned) / max(1, len(mentioned)), 3), "induction": round(induction, 3)}


def _build_meta(path) -> dict | None:
    """What a continued build started from: the path and that build's own record."""
    if not path:
        return None
    meta = Path(path) / "seal_build.json"
    return {"path": str(path), "build": json.loads(meta.read_text()) if meta.exists() else None}


def build_tiny_model(out_dir: str | Path, spec: TinySpec = TinySpec(), init_from: str | Path | None = None) -> Path:
    """Pretrain the tiny model on the world and save it as an HF directory (atomically). With `init_from`,
    continue pretraining that build (its tokenizer and weights) with `spec`'s recipe: a later stage."""
    from transformers import AutoTokenizer, LlamaForCausalLM

    from seal.world.corpus import document_text, epoch_documents
    from seal.world.generator import World, default_world
    from seal.world.tokenizer import EOS, train_tokenizer

    out_dir = Path(out_dir)
    # a small build truncates a world of its own: the cached default is shared by everything in the process
    world = World() if spec.max_entities else default_world()
    if spec.max_entities:
        world.entities["pretrain"] = world.entities["pretrain"][: spec.max_entities]
    torch.manual_seed(spec.seed)
    rng = random.Random(spec.seed)
    t0 = time.time()
    if init_from:
        tok = AutoTokenizer.from_pretrained(init_from)
        model = LlamaForCausalLM.from_pretrained(init_from, dtype=torch.float32)
    else:
        tok = train_tokenizer([document_text(d) for e in (0, 1)
                               for d in epoch_documents(world, e, "\n", spec.demos, spec.drills)], spec.vocab)
        model = LlamaForCausalLM(llama_config(spec, tok))
    log.info("tiny model: %.1fM parameters, vocabulary %d", sum(p.numel() for p in model.parameters()) / 1e6,
             len(tok))
    warmup = induction_warmup(model, tok, spec) if spec.induction_steps else None
    e0 = spec.first_epoch
    first = _blocks(epoch_documents(world, e0, EOS, spec.demos, spec.drills), tok, spec.block, rng, spec.packing)
    steps_per_epoch = len(first) // spec.batch
    total = steps_per_epoch * spec.epochs

    def epoch_batches(epoch: int) -> list[dict]:
        blocks = first if epoch == 0 else _blocks(
            epoch_documents(world, e0 + epoch, EOS, spec.demos, spec.drills), tok, spec.block, rng, spec.packing)
        # epochs differ a little in length (fresh renderings); every epoch takes the same number of steps,
        # wrapping around a shorter one, so the schedule and the progress bar stay exact
        need = steps_per_epoch * spec.batch
        if len(blocks) < need:
            blocks = torch.cat([blocks] * (need // len(blocks) + 1))[:need]
        return [{"input_ids": b[:, 0], "labels": b[:, 1]}
                for b in (blocks[i * spec.batch:(i + 1) * spec.batch] for i in range(steps_per_epoch))]

    probes: list[dict] = []

    def on_step(step: int, epoch: int) -> None:
        if spec.probe_every and step % spec.probe_every == 0:
            probes.append({"step": step, "epoch": epoch + 1, **probe(model, tok, world)})
            log.info("step %d: %s", step, probes[-1])

    def on_epoch(epoch: int, losses: list[float]) -> None:
        log.info("epoch %d: loss %.3f", epoch + 1, sum(losses[-steps_per_epoch:]) / steps_per_epoch)

    groups: dict[tuple[bool, bool], list] = {}
    for n, p in model.named_parameters():
        groups.setdefault((p.dim() >= 2 and "embed" not in n, "self_attn" in n), []).append(p)
    opt = torch.optim.AdamW([{"params": ps, "weight_decay": spec.weight_decay if decay else 0.0,
                              "lr": spec.lr * (spec.attention_lr_scale if attn else 1.0)}
                             for (decay, attn), ps in groups.items()], lr=spec.lr, betas=(0.9, 0.95))
    losses = pretrain(model, opt, epoch_batches, epochs=spec.epochs, steps_per_epoch=steps_per_epoch,
                      lr_lambda=lambda s: lr_factor(s, total, spec), description="pretraining the tiny model",
                      on_step=on_step, on_epoch=on_epoch)
    return save_build(model, tok, out_dir, {
        "spec": asdict(spec), "init_from": _build_meta(init_from), "world_seed": world.seed, "induction_warmup": warmup,
        "seconds": time.time() - t0, "final_loss": sum(losses[-50:]) / max(1, len(losses[-50:])), "probes": probes})


def ensure_tiny_model(cache_dir: str | None = None) -> Path:
    """The built-in tiny model's directory: the shipped checkpoint, else the cache, else a fresh build."""
    return ensure_built(ASSET_DIR, "tiny-knowledge", build_tiny_model, cache_dir)
