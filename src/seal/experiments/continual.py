"""Continual self-edits: passages learned one after another, and what is forgotten on the way.

    seal run configs/tiny/continual.yaml

S sequences of K passages (seeded draws from the eval source). At step k (1..K) the current model writes a
self-edit for passage k-1 and is finetuned on it (the inner loop's LoRA settings); then the questions of
passages 0..k-1 are answered closed-book. Row 0 of the (K+1)×K matrix is the unedited model on all K passages.

Modes (`continual.modes`):

    merge     the adapter is merged into the weights after each step (the paper); the next self-edit is
              written by the updated model
    library   beyond the paper: each step's adapter is kept apart and the base model never changes; every
              question is answered through the adapter of the passage most similar to it (`seal.inner.library`)

The paper (Zweiger et al. 2025) reports forgetting under merge: passage 1 decays from ~0.38 right after its
edit to ~0.19 after 8 edits. Every step's scores are stored when produced, and the merged model after the latest
step is kept on disk (unless `continual.keep_checkpoints`, earlier ones are deleted), so a rerun resumes.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np

from seal.config import RunConfig
from seal.data import DataError
from seal.domains.base import Context, Invalid, UpdatePlan, UpdateSpec
from seal.domains.knowledge import KnowledgeDomain
from seal.inner.library import Router, adapters_loaded, embed
from seal.inner.update import finetune, train_adapter
from seal.model import LoadedModel
from seal.progress import log, progress
from seal.results import Heatmap, Summary
from seal.run import Run
from seal.sources import read_source
from seal.store import derive_seed


def main(cfg: RunConfig, run_dir: str | Path) -> Summary:
    seqs = draw_sequences(cfg)
    c = cfg.continual
    with Run.open(cfg, run_dir, local=True, contexts=[x for xs in seqs for x in xs]) as run:
        base = run.load()
        run.domain = KnowledgeDomain.from_config(base.tokenizer, cfg)
        log.info("continual: %d sequences of %d passages, modes %s", c.sequences, c.steps, ", ".join(c.modes))
        for s, ctxs in enumerate(seqs):  # row 0: the unedited model on all K passages (shared by the modes)
            run.closed_book(_phase("base", s), 0, base, ctxs)
        out: dict[str, dict] = {}
        per_sequence: dict[str, dict[str, dict[str, float]]] = {}  # mode -> figure -> {sequence: value}
        for mode in c.modes:
            mats, fallbacks, routed = [], 0, {"prompt": [0, 0], "question": [0, 0]}
            if mode == "merge":
                run.free(base)  # each merge sequence loads its own copy
            elif base.model is None:
                base = run.load()
            with progress(f"continual {mode}: sequences", len(seqs)) as advance:
                for s, ctxs in enumerate(seqs):
                    if mode == "merge":
                        merge_sequence(run, s, ctxs)
                    else:
                        for on, (right, total) in library_sequence(run, base, s, ctxs).items():
                            routed[on] = [routed[on][0] + right, routed[on][1] + total]
                    mats.append(sequence_matrix(run, mode, s, ctxs))
                    fallbacks += count_fallbacks(run, mode, s, ctxs)
                    advance()
            out[mode] = matrix_summary(np.stack(mats)) | {"passage_fallbacks": fallbacks}
            per_sequence[mode] = sequence_figures(mats)
            if mode == "library":  # routing on what the library routes with, then on the prompt and the question
                share = {on: right / max(1, total) for on, (right, total) in routed.items()}
                out[mode] |= {"routing_accuracy": share[c.route_on], "routing_with_title": share["prompt"],
                              "routing_question_only": share["question"]}
        run.free(base)

        # --- rows: accuracy after the last edit per sequence; library against merge, paired by sequence ---
        n_questions = sum(len(x.questions) for xs in seqs for x in xs)
        rows = [run.item_row(mode, per_sequence[mode]["final"], n_questions) for mode in c.modes]
        compared = run.compare(rows, [("library", "merge")]) + ([run.compare_items(
            "library", "merge", per_sequence["library"]["forgetting"], per_sequence["merge"]["forgetting"],
            "forgetting")] if len(c.modes) == 2 else [])
        first = out[c.modes[0]]
        return run.finish(Summary(
            "continual", cfg.name, rows, title=f"accuracy after the last edit ({c.sequences} sequences of "
            f"{c.steps} passages)", unit="sequences", comparisons=compared,
            data={"sequences": c.sequences, "steps": c.steps, "matrix_mean": first["matrix_mean"],
                  "matrix_std": first["matrix_std"], "modes": out, "passages": [[x.id for x in xs] for xs in seqs]},
            sections=heatmaps(out)))


def draw_sequences(cfg: RunConfig) -> list[list[Context]]:
    """S seeded draws of K distinct passages (with questions) from the eval source."""
    pool = [x for x in read_source(cfg.data.eval, cfg) if x.questions]
    k = cfg.continual.steps
    if k > len(pool):
        raise DataError(f"continual.steps is {k} but the eval source has only {len(pool)} passages with questions")
    return [random.Random(derive_seed(cfg.seed, "continual", s)).sample(pool, k)
            for s in range(cfg.continual.sequences)]


def _phase(mode: str, s: int) -> str:  # the store phase of a mode's sequence; its rounds are the steps
    return f"continual/{mode}/seq-{s}"


def _edit_phase(mode: str, s: int, k: int) -> str:
    """Self-edits written by the unedited model (every library step, and the first merge step) are shared by
    the modes, so that both start from the same update."""
    return _phase("base", s) if mode == "library" or k == 1 else _phase(mode, s)


def step_plan(run: Run, loaded, mode: str, s: int, k: int, ctx: Context) -> UpdatePlan:
    """The update of step k: passage k-1 plus a self-edit the current model writes for it (stored). A
    self-edit with nothing to train on is replaced by the passage alone (counted as a fallback)."""
    edit = None
    if run.cfg.continual.self_edit:
        edit = run.sample(_edit_phase(mode, s, k), k, loaded, [ctx], 1, who=f"{mode}-step-{k - 1}",
                          batch_size=1)[(ctx.id, 0)]
    plan = run.domain.plan(ctx, edit)
    if isinstance(plan, Invalid):
        log.warning("sequence %d step %d: %s; training on the passage alone", s, k, plan.reason)
        plan = run.domain.plan(ctx, None)
    return plan


def count_fallbacks(run: Run, mode: str, s: int, ctxs: list[Context]) -> int:
    """Steps of a finished sequence whose stored self-edit was replaced by the passage alone."""
    edits = [run.store.self_edits(_edit_phase(mode, s, k), k).get((c.id, 0)) for k, c in enumerate(ctxs, 1)]
    return sum(e is not None and isinstance(run.domain.plan(c, e), Invalid) for c, e in zip(ctxs, edits))


def merge_sequence(run: Run, s: int, ctxs: list[Context]) -> None:
    """Steps 1..K of one sequence under merge, resuming from the latest kept checkpoint."""
    cfg, K = run.cfg, len(ctxs)
    ck_dir = run.dir / "continual" / f"merge-seq-{s}"
    if run.store.has_scores(_phase("merge", s), K, [x.id for x in ctxs]):  # done (clean-up may have stopped)
        if not cfg.continual.keep_checkpoints:
            shutil.rmtree(ck_dir, ignore_errors=True)
        return
    steps_on_disk = sorted(int(p.name.split("-")[1]) for p in ck_dir.glob("step-*") if not p.name.endswith(".tmp"))
    start = steps_on_disk[-1] if steps_on_disk else 0
    loaded = run.load(str(ck_dir / f"step-{start}") if start else None)
    for k in range(start, K + 1):
        if k > start:
            plan = step_plan(run, loaded, "merge", s, k, ctxs[k - 1])
            finetune(loaded, list(plan.sequences), UpdateSpec("lora", plan.lora, plan.optim, 1),
                     derive_seed(cfg.seed, "continual", s, k), description=f"seq {s} step {k}: update", verbose=False)
            run.backend.save_copy(loaded, ck_dir / f"step-{k}")
            if not cfg.continual.keep_checkpoints and k > 1:
                shutil.rmtree(ck_dir / f"step-{k - 1}", ignore_errors=True)
        if k:
            run.closed_book(_phase("merge", s), k, loaded, ctxs[:k])
    run.free(loaded)
    if not cfg.continual.keep_checkpoints:
        shutil.rmtree(ck_dir, ignore_errors=True)


def library_sequence(run: Run, base, s: int, ctxs: list[Context]) -> dict[str, tuple[int, int]]:
    """Steps 1..K of one sequence under library: one adapter per passage, the base weights never change.
    Returns, routing on the prompt and on the question alone, (questions routed to their own passage,
    questions) once all K passages are in the library."""
    cfg, K = run.cfg, len(ctxs)
    lib = run.dir / "continual" / f"library-seq-{s}"
    router = Router.build(cfg.continual.router, [f"a{j}" for j in range(K)], [f"{x.title}\n{x.text}" for x in ctxs],
                          base)
    probes = [(j, p, qa.question) for j, x in enumerate(ctxs) for p, qa in zip(run.domain.probes(x), x.questions)]
    texts = {"prompt": [p.prompt for _, p, _ in probes], "question": [q for _, _, q in probes]}
    queries = embed(base, texts[cfg.continual.route_on]) if router.kind == "embedding" else None
    for k in range(1, K + 1):
        if run.store.has_scores(_phase("library", s), k, [x.id for x in ctxs[:k]]):
            continue
        if not (lib / f"adapter-{k}").exists():
            plan = step_plan(run, base, "library", s, k, ctxs[k - 1])
            train_adapter(base, list(plan.sequences), UpdateSpec("lora", plan.lora, plan.optim, 1),
                          derive_seed(cfg.seed, "continual", s, k), lib / f"adapter-{k}",
                          description=f"seq {s} step {k}: adapter")
        # every question of passages 0..k-1 goes to the most similar of the k passages with an adapter
        seen = [i for i, (j, _, _) in enumerate(probes) if j < k]
        picked = router.route([texts[cfg.continual.route_on][i] for i in seen], among=k,
                              vectors=None if queries is None else queries[seen])
        with adapters_loaded(base, [lib / f"adapter-{j}" for j in range(1, k + 1)]) as model:
            run.closed_book(_phase("library", s), k, LoadedModel(model, base.tokenizer, base.path), ctxs[:k],
                            route=[f"a{a}" for a in picked], activate=model.set_adapter)
    if not cfg.continual.keep_checkpoints:
        shutil.rmtree(lib, ignore_errors=True)
    final = {on: router.route(t, base, vectors=queries if on == cfg.continual.route_on else None)
             for on, t in texts.items()}  # once all K passages are in the library
    return {on: (sum(r == j for r, (j, _, _) in zip(f, probes)), len(probes)) for on, f in final.items()}


def sequence_matrix(run: Run, mode: str, s: int, ctxs: list[Context]) -> np.ndarray:
    """(K+1)×K accuracies of one sequence from the store; NaN above the diagonal (not yet seen)."""
    K = len(ctxs)
    m = np.full((K + 1, K), np.nan)
    for k in range(K + 1):
        phase = _phase("base" if k == 0 else mode, s)
        got = {key.context_id: sc.accuracy for key, sc in run.store.scores(phase, k).items()}
        for j in range(K if k == 0 else k):
            m[k, j] = got[ctxs[j].id]
    return m


def matrix_summary(mats: np.ndarray) -> dict:
    """Mean and std over sequences (population std), and forgetting: per passage, its accuracy right after
    its own edit minus after the last edit."""
    mean, std = np.mean(mats, 0), np.std(mats, 0)
    K = mean.shape[1]
    right_after = [float(mean[j + 1, j]) for j in range(K)]
    after_last = [float(mean[K, j]) for j in range(K)]
    drop = [a - b for a, b in zip(right_after, after_last)]
    listed = lambda a: [[None if np.isnan(v) else float(v) for v in row] for row in a]  # noqa: E731
    return {"matrix_mean": listed(mean), "matrix_std": listed(std),
            "forgetting": {"right_after": right_after, "after_last": after_last, "per_passage": drop,
                           "mean": float(np.mean(drop[:-1])) if K > 1 else 0.0},
            "mean_seen_after_last": float(np.mean(mean[K]))}


def sequence_figures(mats: list[np.ndarray]) -> dict[str, dict[str, float]]:
    """Per sequence: mean accuracy over its passages after the last edit (`final`) and mean forgetting over
    passages 1..K-1 (`forgetting`, right after a passage's edit minus after the last)."""
    K = mats[0].shape[1]
    final = {f"seq-{s}": float(np.mean(m[K])) for s, m in enumerate(mats)}
    forgetting = {f"seq-{s}": float(np.mean([m[j + 1, j] - m[K, j] for j in range(K - 1)])) if K > 1 else 0.0
                  for s, m in enumerate(mats)}
    return {"final": final, "forgetting": forgetting}


def heatmaps(modes: dict[str, dict]) -> list[Heatmap]:
    """Each mode's mean accuracy matrix, titled with its forgetting (and routing)."""
    def title(mode: str, r: dict) -> str:
        routed = f"; {100 * r['routing_accuracy']:.0f}% routed to their own adapter" if "routing_accuracy" in r else ""
        return f"{mode}: forgetting {100 * r['forgetting']['mean']:.1f} points{routed}"

    return [Heatmap(title(mode, r), ["base"] + [str(k) for k in range(1, len(r["matrix_mean"]))],
                    [f"p{j + 1}" for j in range(len(r["matrix_mean"][0]))], r["matrix_mean"], xlabel="passage",
                    ylabel="after edit", note="Accuracy (%) after each edit, averaged over sequences. Forgetting: a "
                    "passage's accuracy right after its own edit minus after the last, passages 1..K-1.")
            for mode, r in modes.items()]
