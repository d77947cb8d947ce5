"""Continual self-edits: passages learned one after another, and what is forgotten on the way.

    seal run configs/tiny/continual.yaml

S sequences of K passages (seeded draws from the eval source). At step k (1..K) the current model writes a
self-edit for passage k-1 and is finetuned on it (the inner loop's LoRA settings); then the questions of
passages 0..k-1 are answered closed-book. Row 0 of the (K+1)×K matrix is the unedited model on all K passages.

Modes (`continual.modes`):

    merge     the adapter is merged into the weights after each step (the paper); the next self-edit is
              written by the updated model
    library   beyond the paper: each step's adapter is kept apart and the base model never changes; every
              question is answered through the adapter of the passage most similar to it (cosine similarity
              of the base model's mean-pooled hidden states), so old passages cannot be overwritten, only
              mis-routed

The paper (Zweiger et al. 2025) reports forgetting under merge, e.g. passage 1 decaying from ~0.38 right after
its edit to ~0.19 after 8 edits.

Resuming: every step's scores are stored when produced, and the merged model after the latest step is kept on
disk (earlier ones are deleted unless `continual.keep_checkpoints`), so a rerun continues at the next step.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import torch

from seal.backend import save_model_copy
from seal.config import RunConfig
from seal.data import DataError
from seal.domains.base import Context, Invalid, UpdatePlan
from seal.domains.knowledge import KnowledgeDomain
from seal.inner.update import UpdateSpec, finetune
from seal.loop import answer_closed_book, sample_self_edits
from seal.model import load_model
from seal.progress import log, progress
from seal.run import RunContext, atomic_dir, free, open_run_dir, write_json
from seal.sources import read_source
from seal.store import ScoreKey, derive_seed


def main(cfg: RunConfig, run_dir: str | Path) -> dict:
    run_dir = Path(run_dir)
    store = open_run_dir(run_dir, cfg)
    seqs = draw_sequences(cfg)
    base = load_model(cfg.model)
    domain = KnowledgeDomain.from_config(base.tokenizer, cfg)
    run = RunContext(cfg, run_dir, store, domain)
    c = cfg.continual
    log.info("continual: %d sequences of %d passages, modes %s", c.sequences, c.steps, ", ".join(c.modes))

    for s, ctxs in enumerate(seqs):
        base_row(run, base, s, ctxs)
    out: dict[str, dict] = {}
    for mode in c.modes:
        mats, fallbacks, routed, routed_right = [], 0, 0, 0
        if mode == "merge":
            free(base)  # each merge sequence loads its own copy
        elif base.model is None:
            base = load_model(cfg.model)
        with progress(f"continual {mode}: sequences", len(seqs)) as advance:
            for s, ctxs in enumerate(seqs):
                if mode == "merge":
                    merge_sequence(run, s, ctxs)
                else:
                    right, total = library_sequence(run, base, s, ctxs)
                    routed_right, routed = routed_right + right, routed + total
                mats.append(sequence_matrix(run, mode, s, ctxs))
                fallbacks += count_fallbacks(run, mode, s, ctxs)
                advance()
        out[mode] = matrix_summary(np.stack(mats))
        out[mode]["passage_fallbacks"] = fallbacks
        if mode == "library":
            out[mode]["routing_accuracy"] = routed_right / max(1, routed)
    free(base)

    first = out[c.modes[0]]
    summary = {"experiment": "continual", "config": cfg.name, "sequences": c.sequences, "steps": c.steps,
               "matrix_mean": first["matrix_mean"], "matrix_std": first["matrix_std"], "modes": out,
               "passages": [[x.id for x in ctxs] for ctxs in seqs]}
    write_json(run_dir / "summary.json", summary)
    write_continual_report(run_dir, summary)
    return summary


def draw_sequences(cfg: RunConfig) -> list[list[Context]]:
    """S seeded draws of K distinct passages (with questions) from the eval source."""
    pool = [x for x in read_source(cfg.data.eval, cfg) if x.questions]
    k = cfg.continual.steps
    if k > len(pool):
        raise DataError(f"continual.steps is {k} but the eval source has only {len(pool)} passages with questions")
    return [random.Random(derive_seed(cfg.seed, "continual", s)).sample(pool, k)
            for s in range(cfg.continual.sequences)]


def _phase(mode: str, s: int) -> str:
    return f"continual/{mode}/seq-{s}"


def _edit_phase(mode: str, s: int, k: int) -> str:
    """Self-edits written by the unedited model (every library step, and the first merge step) are shared by
    the modes, so that both start from the same update."""
    return _phase("base", s) if mode == "library" or k == 1 else _phase(mode, s)


def _have_step(run: RunContext, mode: str, s: int, k: int, ctxs: list[Context]) -> bool:
    return run.store.has_scores(_phase(mode, s), k, [x.id for x in ctxs[:k]])


def base_row(run: RunContext, base, s: int, ctxs: list[Context]) -> None:
    """Row 0: the unedited model on all K passages (shared by both modes)."""
    phase = _phase("base", s)
    if run.store.has_scores(phase, 0, [x.id for x in ctxs]):
        return
    scores = answer_closed_book(base.model, base.tokenizer, run.domain, ctxs, run.cfg.inner.eval_batch_size)
    run.store.put_scores([(ScoreKey(phase, 0, cid), sc) for cid, sc in scores.items()])


def step_plan(run: RunContext, loaded, mode: str, s: int, k: int, ctx: Context) -> UpdatePlan:
    """The update of step k: passage k-1 plus a self-edit the current model writes for it (stored). A
    self-edit with nothing to train on is replaced by the passage alone (counted as a fallback)."""
    edit = None
    if run.cfg.continual.self_edit:
        got = sample_self_edits(run.store, _edit_phase(mode, s, k), k, loaded, run.domain, [ctx], 1, run.sampling,
                                seed=run.cfg.seed, batch_size=1, policy=f"{mode}-step-{k - 1}")
        edit = got[(ctx.id, 0)]
    plan = run.domain.plan(ctx, edit)
    if isinstance(plan, Invalid):
        log.warning("sequence %d step %d: %s; training on the passage alone", s, k, plan.reason)
        plan = run.domain.plan(ctx, None)
    return plan


def count_fallbacks(run: RunContext, mode: str, s: int, ctxs: list[Context]) -> int:
    """Steps of a finished sequence whose stored self-edit was replaced by the passage alone."""
    n = 0
    for k, ctx in enumerate(ctxs, start=1):
        edit = run.store.self_edits(_edit_phase(mode, s, k), k).get((ctx.id, 0))
        n += edit is not None and isinstance(run.domain.plan(ctx, edit), Invalid)
    return n


def _spec(plan: UpdatePlan) -> UpdateSpec:
    return UpdateSpec("lora", plan.lora, plan.optim, 1)


def merge_sequence(run: RunContext, s: int, ctxs: list[Context]) -> None:
    """Steps 1..K of one sequence under merge, resuming from the latest kept checkpoint."""
    cfg, K = run.cfg, len(ctxs)
    ck_dir = run.run_dir / "continual" / f"merge-seq-{s}"
    if _have_step(run, "merge", s, K, ctxs):  # finished earlier (the clean-up may have been interrupted)
        if not cfg.continual.keep_checkpoints:
            shutil.rmtree(ck_dir, ignore_errors=True)
        return
    steps_on_disk = sorted(int(p.name.split("-")[1]) for p in ck_dir.glob("step-*") if not p.name.endswith(".tmp"))
    start = steps_on_disk[-1] if steps_on_disk else 0
    loaded = load_model(cfg.model, path=str(ck_dir / f"step-{start}")) if start else load_model(cfg.model)
    for k in range(start, K + 1):
        if k > start:
            ctx = ctxs[k - 1]
            plan = step_plan(run, loaded, "merge", s, k, ctx)
            finetune(loaded, list(plan.sequences), _spec(plan), derive_seed(cfg.seed, "continual", s, k),
                     description=f"seq {s} step {k}: update", verbose=False)
            save_model_copy(loaded, ck_dir / f"step-{k}")
            if not cfg.continual.keep_checkpoints and k > 1:
                shutil.rmtree(ck_dir / f"step-{k - 1}", ignore_errors=True)
        if k and not _have_step(run, "merge", s, k, ctxs):
            scores = answer_closed_book(loaded.model, loaded.tokenizer, run.domain, ctxs[:k],
                                        cfg.inner.eval_batch_size)
            run.store.put_scores([(ScoreKey(_phase("merge", s), k, cid), sc) for cid, sc in scores.items()])
    free(loaded)
    if not cfg.continual.keep_checkpoints:
        shutil.rmtree(ck_dir, ignore_errors=True)


@torch.no_grad()
def embed(loaded, texts: list[str], batch_size: int = 32) -> torch.Tensor:
    """Unit-norm mean-pooled last hidden states of `texts` (the library's router)."""
    from seal.generate import _pad_left, encode_prompt

    tok, model = loaded.tokenizer, loaded.model
    out = []
    for i in range(0, len(texts), batch_size):
        ids, mask = _pad_left([encode_prompt(tok, t) for t in texts[i:i + batch_size]], tok.pad_token_id,
                              loaded.device)
        hidden = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[-1].float()
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        out.append(torch.nn.functional.normalize(pooled, dim=-1).cpu())
    return torch.cat(out)


def library_sequence(run: RunContext, base, s: int, ctxs: list[Context]) -> tuple[int, int]:
    """Steps 1..K of one sequence under library: one adapter per passage, the base weights never change.
    Returns (questions routed to their own passage, questions) once all K passages are in the library."""
    from peft import PeftModel, get_peft_model

    from seal.inner.sequential import init_adapter, peft_config
    from seal.inner.update import train_steps

    cfg, K = run.cfg, len(ctxs)
    lib = run.run_dir / "continual" / f"library-seq-{s}"
    keys = embed(base, [f"{x.title}\n{x.text}" for x in ctxs])
    probes = [(j, p) for j, x in enumerate(ctxs) for p in run.domain.probes(x)]
    queries = embed(base, [p.prompt for _, p in probes])
    final = (queries @ keys.T).argmax(1).tolist()  # routing once all K passages are in the library
    for k in range(1, K + 1):
        if _have_step(run, "library", s, k, ctxs):
            continue
        path = lib / f"adapter-{k}"
        if not path.exists():
            plan = step_plan(run, base, "library", s, k, ctxs[k - 1])
            pm = get_peft_model(base.model, peft_config(base.model, plan.lora))
            try:
                init_adapter(pm, derive_seed(cfg.seed, "continual", s, k))
                train_steps(pm, list(plan.sequences), plan.optim, 1, derive_seed(cfg.seed, "continual", s, k),
                            description=f"seq {s} step {k}: adapter")
                with atomic_dir(path) as tmp:
                    pm.save_pretrained(tmp)
            finally:
                pm.unload()
                base.model.requires_grad_(False)
        # route every question of passages 0..k-1 to the most similar of the k passages with an adapter
        seen = [i for i, (j, _) in enumerate(probes) if j < k]
        sims = queries[seen] @ keys[:k].T
        route = [f"a{int(a)}" for a in sims.argmax(1)]
        pm = PeftModel.from_pretrained(base.model, str(lib / "adapter-1"), adapter_name="a0")
        try:
            for j in range(1, k):
                pm.load_adapter(str(lib / f"adapter-{j + 1}"), adapter_name=f"a{j}")
            scores = answer_closed_book(pm, base.tokenizer, run.domain, ctxs[:k], cfg.inner.eval_batch_size,
                                        route=route, activate=pm.set_adapter)
        finally:
            pm.unload()
            base.model.requires_grad_(False)
            base.model.eval()
        run.store.put_scores([(ScoreKey(_phase("library", s), k, cid), sc) for cid, sc in scores.items()])
    if not cfg.continual.keep_checkpoints:
        shutil.rmtree(lib, ignore_errors=True)
    return sum(r == j for r, (j, _) in zip(final, probes)), len(probes)


def sequence_matrix(run: RunContext, mode: str, s: int, ctxs: list[Context]) -> np.ndarray:
    """(K+1)×K accuracies of one sequence from the store; NaN above the diagonal (not yet seen)."""
    K = len(ctxs)
    m = np.full((K + 1, K), np.nan)
    row0 = run.store.scores(_phase("base", s), 0)
    for j, x in enumerate(ctxs):
        m[0, j] = row0[ScoreKey(_phase("base", s), 0, x.id)].accuracy
    for k in range(1, K + 1):
        got = run.store.scores(_phase(mode, s), k)
        for j in range(k):
            m[k, j] = got[ScoreKey(_phase(mode, s), k, ctxs[j].id)].accuracy
    return m


def _nan_to_none(a: np.ndarray) -> list[list[float | None]]:
    return [[None if np.isnan(v) else float(v) for v in row] for row in a]


def matrix_summary(mats: np.ndarray) -> dict:
    """Mean and std over sequences (population std), and forgetting: per passage, its accuracy right after
    its own edit minus after the last edit."""
    mean, std = np.mean(mats, 0), np.std(mats, 0)
    K = mean.shape[1]
    right_after = [float(mean[j + 1, j]) for j in range(K)]
    after_last = [float(mean[K, j]) for j in range(K)]
    drop = [a - b for a, b in zip(right_after, after_last)]
    return {"matrix_mean": _nan_to_none(mean), "matrix_std": _nan_to_none(std),
            "forgetting": {"right_after": right_after, "after_last": after_last, "per_passage": drop,
                           "mean": float(np.mean(drop[:-1])) if K > 1 else 0.0},
            "mean_seen_after_last": float(np.mean(mean[K]))}


def plot_matrices(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = summary["modes"]
    mats = {mode: np.array([[np.nan if v is None else v for v in row] for row in res["matrix_mean"]])
            for mode, res in modes.items()}
    top = 100 * max(0.1, max(float(np.nanmax(m)) for m in mats.values()))  # one colour scale for all panels
    fig, axes = plt.subplots(1, len(modes), figsize=(5.4 * len(modes), 4.6), squeeze=False)
    fig.subplots_adjust(wspace=0.35)
    for ax, (mode, res) in zip(axes[0], modes.items()):
        m = mats[mode]
        im = ax.imshow(100 * m, vmin=0, vmax=top, cmap="viridis")
        K = m.shape[1]
        for k in range(K + 1):
            for j in range(K):
                if not np.isnan(m[k, j]):
                    ax.text(j, k, f"{100 * m[k, j]:.0f}", ha="center", va="center", fontsize=7,
                            color="white" if 100 * m[k, j] < top / 2 else "black")
        ax.set_xticks(range(K), [str(j + 1) for j in range(K)])
        ax.set_yticks(range(K + 1), ["base"] + [str(k) for k in range(1, K + 1)])
        ax.set_xlabel("passage")
        ax.set_ylabel("after edit")
        ax.set_title(f"{mode}: forgetting {100 * res['forgetting']['mean']:.1f} points")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="accuracy (%)")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def markdown_matrix(m: list[list[float | None]]) -> str:
    K = len(m[0])
    lines = ["| after edit | " + " | ".join(f"p{j + 1}" for j in range(K)) + " |", "|---|" + "---:|" * K]
    for k, row in enumerate(m):
        cells = ["" if v is None else f"{100 * v:.1f}" for v in row]
        lines.append(f"| {'base' if k == 0 else k} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_continual_report(run_dir: Path, summary: dict) -> Path:
    plot_matrices(summary, run_dir / "continual.png")
    lines = [f"# {summary['config']}: continual self-edits", "",
             f"{summary['sequences']} sequences of {summary['steps']} passages; accuracy (%) averaged over sequences.",
             ""]
    for mode, res in summary["modes"].items():
        f = res["forgetting"]
        lines += [f"## {mode}", "", markdown_matrix(res["matrix_mean"]), "",
                  f"Mean forgetting (right after a passage's edit minus after the last edit, passages 1..K-1): "
                  f"{100 * f['mean']:.1f} points. Mean accuracy over all passages after the last edit: "
                  f"{100 * res['mean_seen_after_last']:.1f}."]
        if "routing_accuracy" in res:
            lines.append(f"Questions routed to their own passage's adapter: {100 * res['routing_accuracy']:.1f}%.")
        lines.append("")
    lines += ["![continual](continual.png)", ""]
    out = run_dir / "report.md"
    out.write_text("\n".join(lines))
    return out
