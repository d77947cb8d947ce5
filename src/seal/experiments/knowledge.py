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

Every self-edit row is compared, paired by passage, with `passage_only` and with the best control (the best
of passage_only, passage_repeated and base_self_edits, itself left out). Label-free SEAL (docs/label-free.md):
`restem.reward_questions: generated` rewards self-edits on questions a fixed writer generated, `eval.questions`
picks what the table asks (gold, the generated held-out part, or both).
"""

from __future__ import annotations

from pathlib import Path

from seal.config import RunConfig
from seal.domains.base import Context
from seal.domains.knowledge import KnowledgeDomain
from seal.labels import questions_report
from seal.outer.restem import policies_by_round
from seal.progress import log
from seal.results import Row, Summary, best_of, round_rows
from seal.run import Item, Run
from seal.sources import eval_contexts, read_source, teacher_self_edits


def main(cfg: RunConfig, run_dir: str | Path) -> Summary:
    train_pool, eval_ctxs = load_passages(cfg)
    with Run.open(cfg, run_dir, contexts=train_pool + eval_ctxs) as run:
        base = run.load()
        run.domain = KnowledgeDomain.from_config(base.tokenizer, cfg)
        log.info("%d eval passages, %d candidate training passages; engine %s, backend %s", len(eval_ctxs),
                 len(train_pool), run.backend.engine_name, run.backend.name)
        rl_passages = [c for r in range(1, cfg.restem.rounds + 1) for c in run.training_contexts(train_pool, r)]
        run.write_questions(eval_ctxs + (rl_passages if cfg.restem.reward_questions == "generated" else []),
                            reported=eval_ctxs)
        eval_ctxs = run.table_contexts(eval_ctxs)  # gold, generated or both (seal.labels)

        # --- the base model's rows ---
        rows = [run.row("no_adaptation", passage_scores(run, base, eval_ctxs, "no_adaptation", adapt=False),
                        eval_ctxs)]
        if cfg.eval.passage_only:
            rows.append(run.row("passage_only", passage_scores(run, base, eval_ctxs, "passage_only"), eval_ctxs))
        if cfg.eval.base_self_edits:
            rows.append(run.row("base_self_edits", run.self_edit_scores("base", 0, base, eval_ctxs), eval_ctxs))
        if cfg.data.teacher.enabled:
            rows.append(run.row("teacher_self_edits", teacher_scores(run, base, eval_ctxs), eval_ctxs))

        # --- ReST-EM rounds, each followed by its row ---
        policy, seal_row = base, False
        for r, policy in policies_by_round(run, base, lambda r: run.training_contexts(train_pool, r)):
            if cfg.eval.every_round or r == cfg.restem.rounds:
                rows.append(run.row(f"seal_round_{r}", run.self_edit_scores("seal", r, policy, eval_ctxs),
                                    eval_ctxs))
                seal_row = True

        # --- the same-steps control ---
        if cfg.eval.passage_repeated:
            if policy is not base:
                run.free(policy)
                base = run.load()
            matched = "seal" if seal_row else "base"
            rows.insert(2, run.row("passage_repeated", passage_repeated_scores(run, base, eval_ctxs, matched),
                                   eval_ctxs))

        data = {"engine": run.backend.engine_name, "backend": run.backend.name}
        if run.questions:
            data["questions"] = questions_report(run.questions.values())
        if cfg.restem.reward_questions == "generated" and cfg.restem.rounds and all(c.questions for c in rl_passages):
            data["reward_agreement"] = {"round": 1, **run.reward_agreement(1)}
        return run.finish(Summary("knowledge", cfg.name, rows, round_rows(run.store, cfg.restem.min_kept), data=data,
                                  comparisons=run.compare(rows, comparison_pairs(rows))))


CONTROLS = ["passage_only", "passage_repeated", "base_self_edits"]


def comparison_pairs(rows: list[Row]) -> list[tuple[str, str]]:
    """(self-edit row, baseline): passage_only, then the best control other than the row itself."""
    pairs = []
    for r in rows:
        if r.name in ("base_self_edits", "teacher_self_edits") or r.name.startswith("seal_round_"):
            best = best_of(rows, [c for c in CONTROLS if c != r.name])
            pairs += [(r.name, "passage_only")] + ([(r.name, best)] if best not in (None, "passage_only") else [])
    return pairs


def load_passages(cfg: RunConfig) -> tuple[list[Context], list[Context]]:
    """(training pool, eval passages): the paper's eval split, and training candidates disjoint from it."""
    gold_eval, gold_train = cfg.eval.questions != "generated", cfg.restem.reward_questions == "gold"
    eval_all = read_source(cfg.data.eval, cfg, questions_required=gold_eval)
    eval_ctxs = eval_contexts(cfg, eval_all, cfg.data.n_eval)
    same = cfg.data.train == cfg.data.eval
    train_pool = eval_all if same else read_source(cfg.data.train, cfg, questions_required=gold_train)
    if same or cfg.data.disjoint:
        held_out = {c.id for c in eval_ctxs}
        train_pool = [c for c in train_pool if c.id not in held_out]
    return train_pool, eval_ctxs


def passage_scores(run: Run, model, ctxs: list[Context], row: str, adapt: bool = True):
    """Each passage alone (`adapt=False`: not even that), `eval.repeats` times."""
    items = [Item(c, None, 0, rep, adapt=adapt) for c in ctxs for rep in range(run.cfg.eval.repeats if adapt else 1)]
    return run.score(f"eval/{row}", 0, model, items)


def teacher_scores(run: Run, base, ctxs: list[Context]):
    edits = teacher_self_edits(run, ctxs)
    items = [Item(c, e, e.sample, rep) for c in ctxs for e in edits.get(c.id, [])
             for rep in range(run.cfg.eval.repeats)]
    return run.score("eval/teacher", 0, base, items)


def passage_repeated_scores(run: Run, base, ctxs: list[Context], matched: str):
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
    return run.score("eval/passage_repeated", 0, base, items)
