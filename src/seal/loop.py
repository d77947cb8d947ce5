"""The two steps every recipe repeats, each persisting its work as it goes:

- `sample_self_edits`: the policy writes K self-edits per context (stored per generation batch);
- `score_self_edits`: each (context, self-edit, repeat) becomes a plan, the backend runs the inner loops chunk
  by chunk (in this process, or across a Ray pool), the domain grades the answers (stored per chunk as each
  finishes).

Both skip what the store already has, so rerunning a recipe resumes it. Seeds derive from the run seed and the
item's key, and batches/chunks are fixed slices of the full work list, so a resumed run computes exactly what
an uninterrupted one would.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable

from seal.domains.base import Context, InnerResult, Invalid, Job, Score, SelfEdit, UpdatePlan
from seal.faults import crash_point
from seal.generate import SamplingParams, greedy_answers
from seal.progress import log, progress
from seal.store import ScoreKey, Store, derive_seed


def sample_self_edits(store: Store, phase: str, round: int, loaded, domain, contexts: list[Context], n: int,
                      params: SamplingParams, *, seed: int, batch_size: int, policy: str, backend=None
                      ) -> dict[tuple[str, int], SelfEdit]:
    """`n` self-edits per context from `loaded` (the policy), keyed by (context id, sample). `backend`
    (default: this process) runs the generate calls; each batch is stored as it finishes, and what is returned
    is what is stored."""
    have = store.self_edits(phase, round)
    requests = [(c, s) for c in contexts for s in range(n)]
    batches = [requests[i:i + batch_size] for i in range(0, len(requests), batch_size)]
    todo = [b for b, batch in enumerate(batches) if any((c.id, s) not in have for c, s in batch)]
    prompts = {b: [domain.prompt(c) for c, _ in batches[b]] for b in todo}
    seeds = [derive_seed(seed, phase, round, "generate", b) for b in todo]
    from seal.backend import generate_local

    generate = backend.generate_batches if backend is not None else generate_local
    stream = generate(loaded, [(b, prompts[b]) for b in todo], params, seeds)
    with progress(f"{phase} r{round}: writing self-edits", sum(len(batches[b]) for b in todo)) as advance:
        for b, texts in stream:
            crash_point("generate")
            edits = [SelfEdit(c.id, p, t, policy, s) for (c, s), p, t in zip(batches[b], prompts[b], texts)
                     if (c.id, s) not in have]  # a batch is rerun whole; a self-edit already stored stands
            store.put_self_edits(phase, round, edits)
            have.update({(e.context_id, e.sample): e for e in edits})
            advance(len(batches[b]))
    return {(c.id, s): have[(c.id, s)] for c, s in requests}


@dataclass(frozen=True)
class Item:
    """One inner loop to score: a context, the self-edit applied (None: the context alone), its key."""

    context: Context
    self_edit: SelfEdit | None
    sample: int = 0
    repeat: int = 0
    plan_kwargs: tuple = ()  # extra keyword arguments of domain.plan, e.g. (("repeat_passage", 7),)
    adapt: bool = True  # False: answer with the unadapted model (the no-adaptation baseline)


def score_self_edits(store: Store, phase: str, round: int, backend, loaded, domain, items: list[Item],
                     *, seed: int, on_scores: Callable[[list[tuple[ScoreKey, Score]]], None] | None = None
                     ) -> dict[ScoreKey, Score]:
    """Score every item (skipping those already stored); returns all of the phase's scores for `items`, as
    stored. `backend` is a `seal.backend` backend (or anything with its `chunks` and `run_chunks`)."""
    have = store.scores(phase, round)
    keys = [ScoreKey(phase, round, it.context.id, it.sample, it.repeat) for it in items]
    plans: list[UpdatePlan | Invalid | None] = []
    for it in items:
        plans.append(domain.plan(it.context, it.self_edit, **dict(it.plan_kwargs)) if it.adapt else None)
    # invalid self-edits score 0 with their reason, without an inner loop
    invalid = [(k, Score([False] * len(it.context.questions), [], invalid=p.reason))
               for k, it, p in zip(keys, items, plans) if isinstance(p, Invalid) and k not in have]
    store.put_scores(invalid)
    have.update(invalid)
    warn_if_mostly_invalid(phase, round, [p.reason for p in plans if isinstance(p, Invalid)], len(items))
    runnable = [i for i, p in enumerate(plans) if not isinstance(p, Invalid)]
    jobs = [Job(plans[i], domain.probes(items[i].context), derive_seed(seed, *_key_tuple(keys[i])))
            for i in runnable]
    chunks = backend.chunks(loaded, jobs) if jobs else []
    todo = [ch for ch in chunks if any(keys[runnable[j]] not in have for j in ch)]
    with progress(f"{phase} r{round}: inner loops", sum(len(ch) for ch in todo)) as advance:
        for ch, results in backend.run_chunks(loaded, jobs, todo):
            crash_point("inner")
            scored = []
            for j, res in zip(ch, results):
                if keys[runnable[j]] in have:  # a chunk is rerun whole; a score already stored stands
                    continue
                it = items[runnable[j]]
                score = domain.score(it.context, res)
                score.n_steps = score.n_steps or len(res.step_losses)
                scored.append((keys[runnable[j]], score))
            store.put_scores(scored)
            have.update(scored)
            if on_scores is not None:
                on_scores(scored)
            advance(len(ch))
    return {k: have[k] for k in keys}


def warn_if_mostly_invalid(phase: str, round: int, reasons: list[str], n: int) -> None:
    """A warning when at least half of a phase's self-edits cannot be trained, with the commonest reason: the
    usual cause is a policy that does not follow the self-edit format (too few `generation.max_new_tokens`,
    a model never shown the format)."""
    if n and len(reasons) * 2 >= n:
        kinds = Counter(r.split(":")[0] for r in reasons)  # "not valid JSON: <parser detail>" counts as one
        kind, count = kinds.most_common(1)[0]
        example = next(r for r in reasons if r.split(":")[0] == kind)
        log.warning("%s r%d: %d of %d self-edits are invalid (reward 0); most common reason (%d): %s", phase,
                    round, len(reasons), n, count, example)


def _key_tuple(k: ScoreKey) -> tuple:
    return (k.phase, k.round, k.context_id, k.sample, k.repeat)


def answer_closed_book(model, tokenizer, domain, contexts: list[Context], batch_size: int,
                       route: list | None = None, activate: Callable[[object], None] | None = None
                       ) -> dict[str, Score]:
    """Every context's probes answered greedily by `model` (no adaptation), all contexts batched together.

    `route`, if given, holds one key per probe (in context, then probe order), e.g. the adapter that answers
    it; probes are answered grouped by key, calling `activate(key)` before each group.
    """
    per_context = [domain.probes(c) for c in contexts]
    probes = [p for ps in per_context for p in ps]
    if route is not None and len(route) != len(probes):
        raise ValueError(f"route has {len(route)} keys for {len(probes)} probes")
    groups: dict[object, list[int]] = {}
    for i in range(len(probes)):
        groups.setdefault(route[i] if route is not None else None, []).append(i)
    answers: list[str] = [""] * len(probes)
    for key, idx in groups.items():
        if activate is not None:
            activate(key)
        max_new = max(probes[i].max_new_tokens for i in idx)
        for i, a in zip(idx, greedy_answers(model, tokenizer, [probes[i].prompt for i in idx], max_new, batch_size)):
            answers[i] = a
    scores, start = {}, 0
    for c, ps in zip(contexts, per_context):
        scores[c.id] = domain.score(c, InnerResult(answers[start:start + len(ps)]))
        start += len(ps)
    return scores
