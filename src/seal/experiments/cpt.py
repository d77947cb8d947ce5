"""Continued pretraining (CPT): many passages learned in one update, then all their questions closed-book.

    seal run configs/tiny/cpt.yaml

Each row pools the training sequences of n passages into one corpus and finetunes a fresh copy of the base
model on it once (LoRA merged, or full finetuning: `cpt.update.mode`), then answers every question:

    no_adaptation        the base model, untouched
    passage_only         the n passages alone
    passage_repeated     the n passages alone, repeated to as many sequences (so optimiser steps) as the base
                         self-edit corpus: a control the paper lacks, for what more steps alone would give
    base_self_edits      passages + k self-edits per passage written by the base model
    teacher_self_edits   passages + a teacher's self-edits (file or endpoint), if configured
    seal                 passages + self-edits written by a SEAL checkpoint (`cpt.policy`), or by the policy
                         that `cpt.train_seal` trains first in this run (ReST-EM on `data.train`)

The paper (Zweiger et al. 2025, CPT on the 200 eval passages, LoRA): 32.7 / 32.2 / 41.0 / 39.4 / 43.8; with
full finetuning in the later revision GPT-4.1's self-edits reached 59.4 and SEAL's 58.2.

A row's scores are stored when its update is evaluated; rerunning skips finished rows. An update interrupted
midway is redone from the start.
"""

from __future__ import annotations

import json
from pathlib import Path

from seal.config import RunConfig
from seal.data import DataError
from seal.domains.base import Context, SelfEdit
from seal.domains.knowledge import KnowledgeDomain
from seal.inner.update import finetune
from seal.outer.restem import policies_by_round
from seal.progress import log
from seal.results import Summary, Table, round_rows
from seal.run import Run
from seal.sources import eval_contexts, read_source, teacher_self_edits


def main(cfg: RunConfig, run_dir: str | Path) -> Summary:
    ctxs = cpt_passages(cfg)
    pool = training_pool(cfg, ctxs) if cfg.cpt.train_seal else []
    k = cfg.cpt.samples
    with Run.open(cfg, run_dir, local=True, contexts=ctxs + pool) as run:
        base = run.load()
        run.domain = domain = KnowledgeDomain.from_config(base.tokenizer, cfg)
        log.info("CPT: %d passages, %d questions, %d self-edits per passage, %s update", len(ctxs),
                 sum(len(c.questions) for c in ctxs), k, cfg.cpt.update.mode)

        # --- the self-edits of every row first, while the base model is loaded and untouched ---
        edits: dict[str, dict[str, list[SelfEdit]]] = {}
        if k and cfg.cpt.base_self_edits:
            edits["base_self_edits"] = write_self_edits(run, base, ctxs, "base")
        if k and cfg.data.teacher.enabled:
            edits["teacher_self_edits"] = teacher_self_edits(run, ctxs)
        if k and cfg.cpt.train_seal:
            for _, policy in policies_by_round(run, base, lambda r: run.training_contexts(pool, r)):
                pass  # each round frees the one before; the last (restem.rounds >= 1, checked) stays loaded
            edits["seal"] = write_self_edits(run, policy, ctxs, "seal")
            run.free(policy)
            run.free(base)  # round 1's SFT may have merged into it (policies_by_round): load it afresh
            base = run.load()
        elif k and cfg.cpt.policy:
            policy = run.load(cfg.cpt.policy)
            edits["seal"] = write_self_edits(run, policy, ctxs, "seal")
            run.free(policy)
        if not k:
            log.info("cpt.samples is 0: the self-edit rows are left out (they would equal passage_only)")

        # --- the corpus of every row ---
        corpora = {name: [s for c in ctxs for s in domain.corpus_sequences(c, by_ctx.get(c.id, []))]
                   for name, by_ctx in edits.items()}
        passages = [s for c in ctxs for s in domain.corpus_sequences(c, [])]
        if cfg.cpt.passage_repeated and corpora:
            matched = "base_self_edits" if "base_self_edits" in corpora else next(iter(corpora))
            corpora = {"passage_repeated": repeated(passages, len(corpora[matched])), **corpora}
        if cfg.cpt.passage_only:
            corpora = {"passage_only": passages, **corpora}

        # --- one update per row, each of a fresh copy of the base weights ---
        rows = [run.row("no_adaptation", run.closed_book("cpt/no_adaptation", 0, base, ctxs), ctxs)]
        for name, sequences in corpora.items():
            if not run.store.has_scores(f"cpt/{name}", 0, [c.id for c in ctxs]):
                run.free(base)
                base = run.load()
                res = finetune(base, sequences, cfg.cpt.update.update_spec(), cfg.seed,
                               description=f"cpt {name}: update")
                run.store.set_meta(f"cpt/{name}/update", json.dumps({
                    "sequences": len(sequences), "tokens": res.n_tokens, "steps": len(res.step_losses),
                    "first_loss": res.step_losses[0], "last_loss": res.step_losses[-1], "seconds": res.seconds}))
            rows.append(run.row(name, run.closed_book(f"cpt/{name}", 0, base, ctxs), ctxs))
        run.free(base)

        # --- summary ---
        updates = {name: json.loads(run.store.get_meta(f"cpt/{name}/update")) for name in corpora}
        return run.finish(Summary(
            "cpt", cfg.name, rows, round_rows(run.store, cfg.restem.min_kept),
            title=f"CPT: {len(ctxs)} passages in one update",
            data={"updates": updates, "n_passages": len(ctxs), "samples": k, "mode": cfg.cpt.update.mode},
            comparisons=run.compare(rows, PAIRS),
            sections=[updates_table(updates)] if updates else []))


# each row against the one before it in the paper's table (no adaptation, passages, base self-edits, teacher,
# SEAL), and every self-edit row against the passages repeated to the same step count when that row is there
PAIRS = [("passage_only", "no_adaptation"), ("base_self_edits", "passage_only"),
         ("teacher_self_edits", "base_self_edits"), ("seal", "base_self_edits")] + \
        [(r, "passage_repeated") for r in ("base_self_edits", "teacher_self_edits", "seal")]


def cpt_passages(cfg: RunConfig) -> list[Context]:
    """The n passages of the corpus: the paper's eval split (or seeded), n = cpt.n_passages or data.n_eval."""
    n = cfg.cpt.n_passages or cfg.data.n_eval
    pool = read_source(cfg.data.eval, cfg)
    if n > len(pool):
        raise DataError(f"cpt.n_passages is {n} but the eval source has only {len(pool)} passages")
    return eval_contexts(cfg, pool, n)


def repeated(passages: list, n: int) -> list:
    """The passages' sequences cycled to `n` sequences (at least each once): passage i appears n // len or
    n // len + 1 times, the first ones once more, so every optimiser step of a matched row is matched."""
    return [passages[i % len(passages)] for i in range(max(n, len(passages)))]


def training_pool(cfg: RunConfig, ctxs: list[Context]) -> list[Context]:
    """The ReST-EM candidates of `cpt.train_seal`: `data.train` without any of the CPT passages."""
    held_out = {c.id for c in ctxs}
    pool = [c for c in read_source(cfg.data.train, cfg) if c.id not in held_out]
    if not pool:
        raise DataError(f"cpt.train_seal: data.train ({cfg.data.train}) has no passage outside the CPT passages")
    return pool


def write_self_edits(run: Run, loaded, ctxs: list[Context], who: str) -> dict[str, list[SelfEdit]]:
    got = run.sample(f"cpt/{who}", 0, loaded, ctxs, run.cfg.cpt.samples, who=who)
    return {c.id: [got[(c.id, s)] for s in range(run.cfg.cpt.samples)] for c in ctxs}


def updates_table(updates: dict[str, dict]) -> Table:
    return Table("Updates", ["row", "sequences", "tokens", "steps", "first loss", "last loss", "seconds"],
                 [[name, str(u["sequences"]), str(u["tokens"]), str(u["steps"]), f"{u['first_loss']:.3f}",
                   f"{u['last_loss']:.3f}", f"{u['seconds']:.0f}"] for name, u in updates.items()])
