"""Continued pretraining (CPT): many passages learned in one update, then all their questions closed-book.

    seal run configs/tiny/cpt.yaml

Each row pools the training sequences of n passages into one corpus and finetunes a fresh copy of the base
model on it once (LoRA merged, or full finetuning: `cpt.update.mode`), then answers every question:

    no_adaptation        the base model, untouched
    passage_only         the n passages alone
    base_self_edits      passages + k self-edits per passage written by the base model
    teacher_self_edits   passages + a teacher's self-edits (file or endpoint), if configured
    seal                 passages + self-edits written by a SEAL checkpoint (`cpt.policy`), if given

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
from seal.experiments.knowledge import eval_split
from seal.inner.update import UpdateSpec, finetune
from seal.loop import answer_closed_book, sample_self_edits
from seal.model import load_model
from seal.progress import log
from seal.report import summarize_row, write_report
from seal.run import RunContext, free, open_run_dir, write_json
from seal.sources import read_source, teacher_self_edits
from seal.store import ScoreKey


def main(cfg: RunConfig, run_dir: str | Path) -> dict:
    run_dir = Path(run_dir)
    store = open_run_dir(run_dir, cfg)
    ctxs = cpt_passages(cfg)
    base = load_model(cfg.model)
    domain = KnowledgeDomain.from_config(base.tokenizer, cfg)
    run = RunContext(cfg, run_dir, store, domain)
    k = cfg.cpt.samples
    log.info("CPT: %d passages, %d questions, %d self-edits per passage, %s update", len(ctxs),
             sum(len(c.questions) for c in ctxs), k, cfg.cpt.update.mode)

    # the self-edits of every row first, while the base model is loaded and untouched
    edits: dict[str, dict[str, list[SelfEdit]]] = {}
    if k and cfg.cpt.base_self_edits:
        edits["base_self_edits"] = write_self_edits(run, base, ctxs, "base")
    if k and cfg.data.teacher.enabled:
        edits["teacher_self_edits"] = teacher_self_edits(run, ctxs)
    if k and cfg.cpt.policy:
        policy = load_model(cfg.model, path=cfg.cpt.policy)
        edits["seal"] = write_self_edits(run, policy, ctxs, "seal")
        free(policy)
    if not k:
        log.info("cpt.samples is 0: the self-edit rows are left out (they would equal passage_only)")

    rows = [summarize_row("no_adaptation", row_scores(run, base, ctxs, "no_adaptation"), ctxs)]
    plans: list[tuple[str, dict[str, list[SelfEdit]]]] = []
    if cfg.cpt.passage_only:
        plans.append(("passage_only", {}))
    plans += list(edits.items())
    for name, by_ctx in plans:
        if not store.has_scores(f"cpt/{name}", 0, [c.id for c in ctxs]):
            free(base)
            base = load_model(cfg.model)  # every row updates a fresh copy of the base weights
            sequences = [s for c in ctxs for s in domain.corpus_sequences(c, by_ctx.get(c.id, []))]
            res = finetune(base, sequences, UpdateSpec.from_config(cfg.cpt.update), cfg.seed,
                           description=f"cpt {name}: update")
            store.set_meta(f"cpt/{name}/update", json.dumps({
                "sequences": len(sequences), "tokens": res.n_tokens, "steps": len(res.step_losses),
                "first_loss": res.step_losses[0], "last_loss": res.step_losses[-1], "seconds": res.seconds}))
        rows.append(summarize_row(name, row_scores(run, base, ctxs, name), ctxs))
    free(base)

    updates = {name: json.loads(store.get_meta(f"cpt/{name}/update")) for name, _ in plans}
    summary = {"experiment": "cpt", "rows": rows, "rounds": [], "updates": updates, "config": cfg.name,
               "n_passages": len(ctxs), "samples": k, "mode": cfg.cpt.update.mode}
    write_json(run_dir / "summary.json", summary)
    write_report(run_dir)
    return summary


def cpt_passages(cfg: RunConfig) -> list[Context]:
    """The n passages of the corpus: the paper's eval split (or seeded), n = cpt.n_passages or data.n_eval."""
    n = cfg.cpt.n_passages or cfg.data.n_eval
    pool = read_source(cfg.data.eval, cfg)
    if n > len(pool):
        raise DataError(f"cpt.n_passages is {n} but the eval source has only {len(pool)} passages")
    return eval_split(cfg, pool, n)


def write_self_edits(run: RunContext, loaded, ctxs: list[Context], who: str) -> dict[str, list[SelfEdit]]:
    cfg = run.cfg
    got = sample_self_edits(run.store, f"cpt/{who}", 0, loaded, run.domain, ctxs, cfg.cpt.samples, run.sampling,
                            seed=cfg.seed, batch_size=cfg.generation.batch_size, policy=who)
    return {c.id: [got[(c.id, s)] for s in range(cfg.cpt.samples)] for c in ctxs}


def row_scores(run: RunContext, loaded, ctxs: list[Context], name: str):
    """The row's stored scores, or `loaded` answering every question now (and stored at once)."""
    phase = f"cpt/{name}"
    if not run.store.has_scores(phase, 0, [c.id for c in ctxs]):
        scores = answer_closed_book(loaded.model, loaded.tokenizer, run.domain, ctxs, run.cfg.inner.eval_batch_size)
        run.store.put_scores([(ScoreKey(phase, 0, cid), s) for cid, s in scores.items()])
    return run.store.scores(phase, 0)
