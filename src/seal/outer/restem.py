"""ReST-EM, the paper's outer loop: sample -> score -> keep the best -> SFT the policy -> merge -> next policy.

    for r, policy in policies_by_round(run, base, lambda r: run.training_contexts(pool, r)):
        ...   # the round-r policy, loaded; rounds already in the store are read back, not rerun

One round (`run_round`) for any domain:

    E-step  the policy writes K self-edits per training context; each is applied R times by the inner loop,
            whose base is the policy itself, and rewarded by the domain (`run.sample`, `run.score`);
    filter  per context keep the top-k self-edits by mean reward (`seal.outer.selection.keep_best`);
    M-step  supervised finetuning of the policy on (prompt -> kept self-edit), by the backend
            (`seal.outer.sft.sft_policy`); the merged model becomes the next round's policy and inner-loop base.
            With `restem.sft.start: base` the M-step finetunes the base model afresh on the round's kept
            self-edits instead (Singh et al., 2023), so the policies do not drift further each round.
"""

from __future__ import annotations

import time

from seal.domains.base import Context, mean
from seal.outer.selection import keep_best, rewards_by_self_edit, updates_policy
from seal.progress import log
from seal.run import Item, Run
from seal.store import RoundRecord


def run_round(r: int, run: Run, policy, contexts: list[Context]) -> RoundRecord:
    """One ReST-EM round with policy `policy` on `contexts`."""
    cfg = run.cfg
    t0 = time.perf_counter()
    contexts = run.reward_contexts(contexts)  # gold questions, or the writer's (seal.labels)
    edits = run.sample("train", r, policy, contexts, cfg.restem.samples, who=f"round-{r - 1}" if r > 1 else "base")
    base_scores = run.reward_scores(run.score("train/baseline", r, policy,
                                              [Item(c, None, adapt=False) for c in contexts]))
    baselines = {k.context_id: s.accuracy for k, s in base_scores.items()}
    items = [Item(c, edits[(c.id, s)], s, rep) for c in contexts for s in range(cfg.restem.samples)
             for rep in range(cfg.restem.repeats)]
    scores = run.reward_scores(run.score("train", r, policy, items))
    kept = keep_best(rewards_by_self_edit(scores), baselines, cfg.restem)
    run.store.put_kept(r, kept)
    log.info("round %d: mean reward %.3f (no adaptation %.3f); kept %d of %d self-edits", r,
             mean([s.accuracy for s in scores.values()]), mean(list(baselines.values())), len(kept), len(edits))
    ckpt = run.dir / "checkpoints" / f"round-{r}"
    if updates_policy(len(kept), cfg.restem.min_kept):
        examples = [(edits[(c, s)].prompt, edits[(c, s)].completion) for c, s, _ in kept]
        fresh = cfg.restem.sft.start == "base" and r > 1  # round 1's policy is the base model already
        start = run.load() if fresh else policy
        ckpt = run.backend.sft(start, examples, ckpt, seed=cfg.seed + r)
        if fresh:
            run.free(start)
    else:
        why = f", fewer than restem.min_kept={cfg.restem.min_kept}" if kept else ""
        log.warning("round %d kept %d self-edits%s; the policy is saved unchanged", r, len(kept), why)
        ckpt = run.backend.save_copy(policy, ckpt)
    rec = RoundRecord(round=r, checkpoint=str(ckpt), n_kept=len(kept),
                      mean_reward=mean([s.accuracy for s in scores.values()]),
                      mean_baseline=mean(list(baselines.values())), n_scored=len(scores),
                      seconds=time.perf_counter() - t0)
    run.store.put_round(rec)
    run.metrics.scalars({"round/mean_reward": rec.mean_reward, "round/mean_baseline": rec.mean_baseline,
                         "round/kept": rec.n_kept, "round/seconds": rec.seconds}, step=r)
    return rec


def policies_by_round(run: Run, base, choose_contexts):
    """Run ReST-EM rounds 1..R (reading back those the store already has), starting from `base`; after each,
    yield (r, the round-r policy, loaded). `choose_contexts(r)` picks the round's training contexts; the
    choice is recorded in the store. When round 1 runs, its SFT merges into `base` in place: a caller that
    needs the base model afterwards loads it again."""
    policy = base
    done = {rec.round: rec for rec in run.store.rounds()}
    for r in range(1, run.cfg.restem.rounds + 1):
        if r not in done:
            contexts = choose_contexts(r)
            run.store.set_meta(f"train_passages/round-{r}", ",".join(c.id for c in contexts))
            done[r] = run_round(r, run, policy, contexts)
        if policy is not base:
            run.free(policy)
        policy = run.load(done[r].checkpoint)
        yield r, policy
