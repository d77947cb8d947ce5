"""ReST-EM's filter, pure: which self-edits the policy is finetuned on."""

from __future__ import annotations

from collections import defaultdict

from seal.config import RestEMConfig
from seal.domains.base import Score, mean
from seal.store import ScoreKey


def rewards_by_self_edit(scores: dict[ScoreKey, Score]) -> dict[tuple[str, int], float]:
    """Mean reward over repeats of every (context, sample).

    >>> from seal.domains.base import Score
    >>> k = lambda c, s, rep: ScoreKey("train", 1, c, s, rep)
    >>> rewards_by_self_edit({k("a", 0, 0): Score([True, False], []), k("a", 0, 1): Score([True, True], [])})
    {('a', 0): 0.75}
    """
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


def updates_policy(n_kept: int, min_kept: int) -> bool:
    """Whether a round that kept `n_kept` self-edits runs its M-step (`restem.min_kept`, at least 1); otherwise
    the policy goes to the next round unchanged.

    >>> updates_policy(0, 1), updates_policy(2, 3), updates_policy(3, 3)
    (False, False, True)
    """
    return n_kept >= max(1, min_kept)
