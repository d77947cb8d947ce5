"""ReST-EM, the paper's outer loop: sample -> score -> keep the best -> SFT the policy -> merge -> next policy.

One round (`run_round`) for any domain:

    E-step  the policy writes K self-edits per training context; each is applied R times by the inner loop,
            whose base is the policy itself, and rewarded by the domain;
    filter  per context keep the top-k self-edits by mean reward (optionally only those beating the context's
            no-adaptation score);
    M-step  supervised finetuning of the policy on (prompt -> kept self-edit) with trl, LoRA merged into the
            weights (or full finetuning); the merged model is saved as a normal HF checkpoint and becomes the
            next round's policy and inner-loop base.
"""

from __future__ import annotations

import gc
import shutil
import time
from collections import defaultdict
from pathlib import Path

import torch

from seal.config import RestEMConfig, SFTConfig
from seal.domains.base import Context, mean
from seal.faults import crash_point
from seal.progress import log
from seal.run import atomic_dir
from seal.store import RoundRecord, Score, ScoreKey


def rewards_by_self_edit(scores: dict[ScoreKey, Score]) -> dict[tuple[str, int], float]:
    """Mean reward over repeats of every (context, sample)."""
    acc: dict[tuple[str, int], list[float]] = defaultdict(list)
    for k, s in scores.items():
        acc[(k.context_id, k.sample)].append(s.accuracy)
    return {key: mean(v) for key, v in acc.items()}


def keep_best(rewards: dict[tuple[str, int], float], baselines: dict[str, float], cfg: RestEMConfig
              ) -> list[tuple[str, int, float]]:
    """The top-k self-edits of every context as (context id, sample, reward); ties go to the lower sample.

    >>> cfg = RestEMConfig(top_k=1)
    >>> keep_best({("a", 0): 0.2, ("a", 1): 0.6, ("b", 0): 0.0}, {"a": 0.0, "b": 0.0}, cfg)
    [('a', 1, 0.6)]
    """
    by_ctx: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for (ctx, sample), r in rewards.items():
        by_ctx[ctx].append((sample, r))
    kept = []
    for ctx in sorted(by_ctx):
        ranked = sorted(by_ctx[ctx], key=lambda sr: (-sr[1], sr[0]))[: cfg.top_k]
        for sample, r in ranked:
            if r <= cfg.min_reward:
                continue
            if cfg.require_beat_baseline and r <= baselines.get(ctx, 0.0):
                continue
            kept.append((ctx, sample, r))
    return kept


def sft_policy(loaded, examples: list[tuple[str, str]], cfg: SFTConfig, out_dir: Path, seed: int) -> Path:
    """Finetune the policy on (prompt, completion) pairs with trl, merge, save to `out_dir` (atomically)."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import PrinterCallback, TrainerCallback
    from trl import SFTConfig as TrlSFTConfig
    from trl import SFTTrainer

    class LogLoss(TrainerCallback):  # the trainer's losses through our logger, not printed dicts
        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                log.info("policy SFT step %d/%d: loss %.4f", state.global_step, state.max_steps, float(logs["loss"]))

    model, tok = loaded.model, loaded.tokenizer
    cuda = loaded.device.type == "cuda"
    scratch = out_dir.with_name(out_dir.name + ".trainer")  # the trainer's own files; nothing is kept there
    args = TrlSFTConfig(
        output_dir=str(scratch), learning_rate=cfg.lr, num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch_size, gradient_accumulation_steps=cfg.grad_accum,
        max_length=cfg.max_length, weight_decay=cfg.weight_decay, lr_scheduler_type="linear", warmup_steps=0,
        logging_steps=10, save_strategy="no", report_to=[], seed=seed, data_seed=seed, bf16=cuda and
        model.dtype == torch.bfloat16, use_cpu=not cuda, completion_only_loss=True, disable_tqdm=True,
        dataloader_num_workers=0, dataset_num_proc=None,
    )
    peft_cfg = None
    if cfg.mode == "lora":
        targets = [t for t in cfg.target_modules or [] if any(n.endswith("." + t) for n, _ in model.named_modules())]
        peft_cfg = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0, task_type="CAUSAL_LM",
                              target_modules=targets or None)
    else:
        model.requires_grad_(True)
    data = Dataset.from_list([{"prompt": p, "completion": c} for p, c in examples])
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tok, peft_config=peft_cfg)
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(LogLoss())
    trainer.train()
    crash_point("sft")
    trained = trainer.model
    merged = trained.merge_and_unload() if cfg.mode == "lora" else trained
    merged.requires_grad_(False)
    merged.eval()
    with atomic_dir(out_dir) as tmp:
        merged.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
    shutil.rmtree(scratch, ignore_errors=True)
    del trainer, trained
    gc.collect()
    return out_dir


def round_record(r: int, checkpoint: Path, kept: list, scores: dict[ScoreKey, Score],
                 baselines: dict[str, float], seconds: float) -> RoundRecord:
    return RoundRecord(round=r, checkpoint=str(checkpoint), n_kept=len(kept),
                       mean_reward=mean([s.accuracy for s in scores.values()]),
                       mean_baseline=mean(list(baselines.values())), n_scored=len(scores), seconds=seconds)


def run_round(r: int, run, policy, contexts: list[Context]) -> RoundRecord:
    """One ReST-EM round with policy `policy` on `contexts`; `run` is the recipe's RunContext."""
    from seal.loop import Item, sample_self_edits, score_self_edits

    cfg = run.cfg
    t0 = time.perf_counter()
    edits = sample_self_edits(run.store, "train", r, policy, run.domain, contexts, cfg.restem.samples,
                              run.sampling, seed=cfg.seed, batch_size=cfg.generation.batch_size,
                              policy=f"round-{r - 1}" if r > 1 else "base", backend=run.backend)
    base_scores = score_self_edits(run.store, "train/baseline", r, run.backend, policy, run.domain,
                                   [Item(c, None, adapt=False) for c in contexts], seed=cfg.seed)
    baselines = {k.context_id: s.accuracy for k, s in base_scores.items()}
    items = [Item(c, edits[(c.id, s)], s, rep) for c in contexts for s in range(cfg.restem.samples)
             for rep in range(cfg.restem.repeats)]
    scores = score_self_edits(run.store, "train", r, run.backend, policy, run.domain, items, seed=cfg.seed)
    kept = keep_best(rewards_by_self_edit(scores), baselines, cfg.restem)
    run.store.put_kept(r, kept)
    log.info("round %d: mean reward %.3f (no adaptation %.3f); kept %d of %d self-edits", r,
             mean([s.accuracy for s in scores.values()]), mean(list(baselines.values())), len(kept), len(edits))
    ckpt = run.run_dir / "checkpoints" / f"round-{r}"
    if kept:
        examples = [(edits[(c, s)].prompt, edits[(c, s)].completion) for c, s, _ in kept]
        ckpt = run.backend.sft(policy, examples, ckpt, seed=cfg.seed + r)
    else:
        log.warning("round %d kept no self-edit; the policy is saved unchanged", r)
        ckpt = run.backend.save_copy(policy, ckpt)
    rec = round_record(r, ckpt, kept, scores, baselines, time.perf_counter() - t0)
    run.store.put_round(rec)
    return rec


def policies_by_round(run, base, choose_contexts):
    """Run ReST-EM rounds 1..R (reading back those the store already has), starting from `base`; after each,
    yield (r, the round-r policy, loaded). `choose_contexts(r)` picks the round's training contexts; the
    choice is recorded in the store."""
    policy = base
    done = {rec.round: rec for rec in run.store.rounds()}
    for r in range(1, run.cfg.restem.rounds + 1):
        if r not in done:
            contexts = choose_contexts(r)
            run.store.set_meta(f"train_passages/round-{r}", ",".join(c.id for c in contexts))
            done[r] = run_round(r, run, policy, contexts)
        if policy is not base:
            run.backend.free(policy)
        policy = run.backend.load(done[r].checkpoint)
        yield r, policy
