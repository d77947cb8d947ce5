"""Knowledge incorporation, single-passage setting: the paper's main experiment.

    seal run configs/tiny/knowledge.yaml                 # the built-in world and tiny model, on a CPU
    seal run configs/qwen2.5-7b/knowledge.yaml           # the paper's setting, on GPUs

ReST-EM rounds on training passages, then the results table on held-out passages:

    no_adaptation        the model answers closed-book, untouched
    passage_only         LoRA on the passage alone
    passage_repeated     the passage alone for as many steps as the last SEAL row took (a control, optional)
    base_self_edits      passage + self-edits written by the base model
    teacher_self_edits   passage + a teacher's self-edits (file or endpoint), if configured
    seal_round_r         passage + self-edits of the round-r policy, adapted from the round-r policy
"""

from __future__ import annotations

from pathlib import Path

from seal.config import RunConfig
from seal.data import paper_eval_split, select_passages
from seal.domains.base import Context
from seal.domains.knowledge import KnowledgeDomain
from seal.backend import make_backend
from seal.loop import Item, sample_self_edits, score_self_edits
from seal.outer.restem import policies_by_round
from seal.progress import log
from seal.report import round_rows, summarize_row, write_report
from seal.run import RunContext, open_run_dir, write_json
from seal.sources import read_source, teacher_self_edits
from seal.store import derive_seed


def main(cfg: RunConfig, run_dir: str | Path) -> dict:
    # --- setup ---
    run_dir = Path(run_dir)
    store = open_run_dir(run_dir, cfg)
    train_pool, eval_ctxs = load_passages(cfg)
    backend = make_backend(cfg)
    try:
        return _main(cfg, run_dir, store, backend, train_pool, eval_ctxs)
    finally:
        backend.close()


def _main(cfg: RunConfig, run_dir: Path, store, backend, train_pool, eval_ctxs) -> dict:
    base = backend.load()
    domain = KnowledgeDomain.from_config(base.tokenizer, cfg)
    run = RunContext(cfg, run_dir, store, domain, backend)
    log.info("%d eval passages, %d candidate training passages; engine %s, backend %s", len(eval_ctxs),
             len(train_pool), backend.engine_name, backend.name)

    # --- the base model's rows ---
    rows = [
        summarize_row("no_adaptation", eval_scores(run, base, eval_ctxs, "no_adaptation", adapt=False), eval_ctxs),
    ]
    if cfg.eval.passage_only:
        rows.append(summarize_row("passage_only", eval_scores(run, base, eval_ctxs, "passage_only"), eval_ctxs))
    if cfg.eval.base_self_edits:
        rows.append(summarize_row("base_self_edits", eval_self_edit_row(run, base, eval_ctxs, "base", 0),
                                  eval_ctxs))
    if cfg.data.teacher.enabled:
        rows.append(summarize_row("teacher_self_edits", eval_teacher_row(run, base, eval_ctxs), eval_ctxs))

    # --- ReST-EM rounds, each followed by its row ---
    policy, last_policy_row = base, None
    for r, policy in policies_by_round(run, base, lambda r: training_passages(cfg, train_pool, eval_ctxs, r)):
        if cfg.eval.every_round or r == cfg.restem.rounds:
            last_policy_row = eval_self_edit_row(run, policy, eval_ctxs, "seal", r)
            rows.append(summarize_row(f"seal_round_{r}", last_policy_row, eval_ctxs))

    # --- the same-steps control ---
    if cfg.eval.passage_repeated:
        if policy is not base:
            backend.free(policy)
            base = backend.load()
        row = "seal" if last_policy_row is not None else "base"
        rows.insert(2, summarize_row("passage_repeated", passage_repeated_row(run, base, eval_ctxs, row),
                                     eval_ctxs))

    # --- report ---
    summary = {"rows": rows, "rounds": round_rows(store), "config": cfg.name, "engine": backend.engine_name,
               "backend": backend.name}
    write_json(run_dir / "summary.json", summary)
    write_report(run_dir)
    return summary


def load_passages(cfg: RunConfig) -> tuple[list[Context], list[Context]]:
    """(training pool, eval passages): the paper's eval split, and training candidates disjoint from it."""
    eval_all = read_source(cfg.data.eval, cfg)
    eval_ctxs = eval_split(cfg, eval_all, cfg.data.n_eval)
    same = cfg.data.train == cfg.data.eval
    train_pool = eval_all if same else read_source(cfg.data.train, cfg)
    if same or cfg.data.disjoint:
        held_out = {c.id for c in eval_ctxs}
        train_pool = [c for c in train_pool if c.id not in held_out]
    return train_pool, eval_ctxs


def eval_split(cfg: RunConfig, pool: list[Context], n: int) -> list[Context]:
    """The first `n` of `pool` shuffled as `data.eval_selection` says: the paper's seed 42, or the run seed."""
    return paper_eval_split(pool, n, seed=42 if cfg.data.eval_selection == "paper" else cfg.seed)


def training_passages(cfg: RunConfig, pool: list[Context], eval_ctxs: list[Context], r: int) -> list[Context]:
    seed = derive_seed(cfg.seed, "train-passages", r if cfg.restem.resample_passages else 1)
    return select_passages(pool, min(cfg.restem.n_passages, len(pool)), seed)


def eval_scores(run: RunContext, loaded, ctxs, row: str, adapt: bool = True, round: int = 0):
    items = [Item(c, None, 0, rep, adapt=adapt) for c in ctxs for rep in range(run.cfg.eval.repeats if adapt else 1)]
    return score_self_edits(run.store, f"eval/{row}", round, run.backend, loaded, run.domain, items,
                            seed=run.cfg.seed)


def eval_self_edit_row(run: RunContext, loaded, ctxs, who: str, round: int):
    """Self-edits written by `loaded` for the eval passages, applied to `loaded` itself."""
    cfg = run.cfg
    edits = sample_self_edits(run.store, f"eval/{who}", round, loaded, run.domain, ctxs, cfg.eval.samples,
                              run.sampling, seed=cfg.seed, batch_size=cfg.generation.batch_size,
                              policy=who if who == "base" else f"round-{round}", backend=run.backend)
    items = [Item(c, edits[(c.id, s)], s, rep) for c in ctxs for s in range(cfg.eval.samples)
             for rep in range(cfg.eval.repeats)]
    return score_self_edits(run.store, f"eval/{who}", round, run.backend, loaded, run.domain, items, seed=cfg.seed)


def eval_teacher_row(run: RunContext, base, ctxs):
    edits = teacher_self_edits(run, ctxs)
    items = [Item(c, e, e.sample, rep) for c in ctxs for e in edits.get(c.id, [])
             for rep in range(run.cfg.eval.repeats)]
    return score_self_edits(run.store, "eval/teacher", 0, run.backend, base, run.domain, items, seed=run.cfg.seed)


def passage_repeated_row(run: RunContext, base, ctxs, matched: str):
    """The passage alone, repeated so that each inner loop takes as many optimiser steps as the matched
    self-edit row's did (`seal`: the last round; `base`: base self-edits)."""
    round = run.cfg.restem.rounds if matched == "seal" else 0
    edits = run.store.self_edits(f"eval/{matched}", round)
    items = []
    for c in ctxs:
        for s in range(run.cfg.eval.samples):
            plan = run.domain.plan(c, edits.get((c.id, s)))
            n_seq = len(plan.sequences) if hasattr(plan, "sequences") else 1
            items += [Item(c, None, s, rep, (("repeat_passage", n_seq),)) for rep in range(run.cfg.eval.repeats)]
    return score_self_edits(run.store, "eval/passage_repeated", 0, run.backend, base, run.domain, items,
                            seed=run.cfg.seed)
