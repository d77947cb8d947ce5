"""Few-shot ARC: self-edits that choose augmentations and training settings (the paper's second domain).

    seal run configs/llama-3.2-1b/arc.yaml      # the paper's subsets, Llama-3.2-1B-Instruct, one GPU

The same loop as knowledge incorporation, with the ARC domain (`seal.domains.arc`): the policy writes a JSON
tool config for a task; the inner loop is test-time training on augmented leave-one-out tasks; the reward is
1 when the adapted model's voted prediction of the test output is exact. Rows, on the eval tasks:

    icl                in-context learning only (no TTT)
    base_self_edits    TTT with configs written by the base model (no RL)
    seal_round_r       TTT with configs written by the policy after r ReST-EM rounds
    oracle_ttt         TTT with a fixed config (the paper's oracle, or `arc.oracle`)

`accuracy` is the success rate over (task, self-edit) pairs, as the paper counts it; `best_of` the fraction
of tasks that at least one self-edit solved; `invalid` the configs that could not be trained (reward 0).
`summary["configs"]` profiles the configs each policy wrote (`config_profile`): for the training rounds, all
sampled configs and the kept ones, so one can see what the filter selects and where the policy moved.
ReST-EM keeps the successful configs of each training task: set `restem.top_k` to at least
`restem.samples` (the tiny and Llama configs do).
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from seal.config import RunConfig
from seal.domains.arc.domain import ArcDomain, ArcSettings, oracle_config
from seal.domains.arc.selfedit import ToolConfig, parse_tool_config
from seal.domains.base import Invalid
from seal.outer.restem import policies_by_round
from seal.progress import log
from seal.results import Row, Summary, Table, round_rows
from seal.run import Item, Run
from seal.sources import read_source

GROUPS = ("basic", "size", "chain", "repeat")


def main(cfg: RunConfig, run_dir: str | Path) -> Summary:
    train_pool = read_source(cfg.data.train, cfg)
    eval_tasks = read_source(cfg.data.eval, cfg)[: cfg.data.n_eval]
    with Run.open(cfg, run_dir, contexts=train_pool + eval_tasks) as run:
        base = run.load()
        run.domain = ArcDomain(base.tokenizer, settings_of(cfg), seed=cfg.seed)
        log.info("ARC: %d eval tasks, %d candidate training tasks; backend %s", len(eval_tasks), len(train_pool),
                 run.backend.name)

        # --- the base model's rows ---
        rows = []
        if cfg.arc.icl:
            rows.append(arc_row(run, "icl", run.score("eval/icl", 0, base, [Item(c, None, adapt=False)
                                                                             for c in eval_tasks]), eval_tasks))
        if cfg.arc.base_self_edits:
            rows.append(arc_row(run, "base_self_edits", run.self_edit_scores("base", 0, base, eval_tasks), eval_tasks))
        if cfg.arc.oracle_row:
            oracle = ToolConfig.model_validate(cfg.arc.oracle) if cfg.arc.oracle else oracle_config()
            items = [Item(c, None, 0, rep, (("config", oracle),)) for c in eval_tasks
                     for rep in range(cfg.eval.repeats)]
            rows.append(arc_row(run, "oracle_ttt", run.score("eval/oracle", 0, base, items), eval_tasks))

        # --- ReST-EM rounds, each followed by its row ---
        for r, policy in policies_by_round(run, base, lambda r: run.training_contexts(train_pool, r)):
            if cfg.eval.every_round or r == cfg.restem.rounds:
                rows.append(arc_row(run, f"seal_round_{r}", run.self_edit_scores("seal", r, policy, eval_tasks),
                                    eval_tasks))

        profiles, rewards = config_profiles(run.store), config_rewards(run.store)
        return run.finish(Summary(
            "arc", cfg.name, rows, round_rows(run.store, cfg.restem.min_kept), title="held-out tasks", unit="tasks",
            data={"engine": run.backend.engine_name, "backend": run.backend.name, "configs": profiles,
                  "config_rewards": rewards}, sections=config_sections(profiles, rewards),
            comparisons=run.compare(rows, comparison_pairs(rows))))


def comparison_pairs(rows: list[Row]) -> list[tuple[str, str]]:
    """Paired by task: base self-edits and each SEAL round against in-context learning; each SEAL round against
    base self-edits."""
    seal = [r.name for r in rows if r.name.startswith("seal_round_")]
    return [(n, "icl") for n in ["base_self_edits", *seal]] + [(n, "base_self_edits") for n in seal]


def settings_of(cfg: RunConfig) -> ArcSettings:
    a = cfg.arc
    return ArcSettings(a.max_examples, a.max_steps, a.lora_r, a.lora_alpha, tuple(a.target_modules), a.batch_size,
                       tuple(a.leave_out), a.max_length, a.answer_max_new_tokens, a.permute_colors)


def arc_row(run: Run, name: str, scores, tasks) -> Row:
    """A table row, plus `best_of`: the fraction of tasks solved by at least one of their self-edits."""
    row = run.row(name, scores, tasks)
    solved = {k.context_id for k, s in scores.items() if s.accuracy > 0}
    row.best_of = len(solved) / max(1, row.n_passages)
    return row


def config_profile(texts: list[str]) -> dict:
    """What a set of self-edits chose: how many parse, the median learning rate, the mean epochs, and the share
    of valid configs using each augmentation group and the output-only loss."""
    configs = [c for c in map(parse_tool_config, texts) if not isinstance(c, Invalid)]
    out = {"n": len(texts), "valid": len(configs)}
    if configs:
        n = len(configs)
        out |= {"median_lr": statistics.median(c.training.learning_rate for c in configs),
                "mean_log10_lr": sum(math.log10(c.training.learning_rate) for c in configs) / n,
                "mean_epochs": sum(c.training.num_train_epochs for c in configs) / n,
                "output_only": sum(c.training.strategy == "train_using_output_tokens" for c in configs) / n}
        out |= {f"uses_{g}": sum(g in c.groups for c in configs) / n for g in GROUPS}
    return out


def config_profiles(store) -> dict[str, dict]:
    """`config_profile` of every stored set of self-edits: each eval row's, and each training round's sampled
    and kept configs."""
    out = {}
    for phase, r in store.self_edit_sets():
        edits = store.self_edits(phase, r)
        out[f"{phase.replace('/', '_')}_r{r}"] = config_profile([e.completion for e in edits.values()])
        if phase == "train":
            kept = {(c, s) for c, s, _ in store.kept(r)}
            out[f"train_kept_r{r}"] = config_profile([e.completion for k, e in edits.items() if k in kept])
    return out


def config_rewards(store) -> list[dict]:
    """What the reward landscape favours: over every scored config of the run (training rounds and eval rows),
    the mean reward of each choice a config makes — the loss, each learning rate, each epoch count, each
    augmentation group on or off — and of invalid configs. One dict per (choice, value): `n`, `reward`."""
    groups: dict[tuple[str, str], list[float]] = {}

    def add(choice: str, value: str, reward: float) -> None:
        groups.setdefault((choice, value), []).append(reward)

    for phase, r in store.self_edit_sets():
        edits = store.self_edits(phase, r)
        for key, score in store.scores(phase, r).items():
            edit = edits.get((key.context_id, key.sample))
            if edit is None:
                continue
            config = parse_tool_config(edit.completion)
            if isinstance(config, Invalid):
                add("config", "invalid", score.accuracy)
                continue
            t = config.training
            add("config", "valid", score.accuracy)
            add("loss", "output only" if t.strategy == "train_using_output_tokens" else "all tokens", score.accuracy)
            add("learning rate", f"{t.learning_rate:.0e}", score.accuracy)
            add("epochs", str(t.num_train_epochs), score.accuracy)
            for g in GROUPS:
                add(f"{g} augmentations", "on" if g in config.groups else "off", score.accuracy)

    def order(item):
        (choice, value), _ = item
        try:
            return choice, 0, float(value), ""
        except ValueError:
            return choice, 1, 0.0, value

    return [{"choice": c, "value": v, "n": len(rs), "reward": sum(rs) / len(rs)}
            for (c, v), rs in sorted(groups.items(), key=order)]


def config_sections(profiles: dict[str, dict], rewards: list[dict]) -> list[Table]:
    """The report's view of the configs: what each set of self-edits chose, and the reward of each choice."""
    cells = []
    for name, p in profiles.items():
        cells.append([name, str(p["n"]), str(p["valid"])] + (
            [f"{p['median_lr']:.0e}", f"{p['mean_epochs']:.1f}", *(f"{100 * p[f'uses_{g}']:.0f}%" for g in GROUPS),
             f"{100 * p['output_only']:.0f}%"] if p.get("valid") else [""] * 7))
    return [Table("Configs written", ["self-edits", "n", "valid", "median lr", "mean epochs", *GROUPS, "output only"],
                  cells),
            Table("Reward by config choice", ["choice", "value", "configs", "mean reward"],
                  [[c["choice"], c["value"], str(c["n"]), f"{100 * c['reward']:.1f}"] for c in rewards],
                  note="Every scored config of the run (training rounds and eval rows), grouped by each choice it "
                       "made.")]
