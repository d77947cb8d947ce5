"""Which questions a run rewards self-edits with and reports on: the records' gold questions (the paper), the
question writer's generated ones (label-free SEAL, docs/label-free.md), or both.

    restem.reward_questions: gold | generated      what ReST-EM selects self-edits by
    eval.questions: gold | generated | both        what the table asks

Generated questions are written once per passage by a writer fixed for the whole run (`questions.writer`),
stored, and split per passage into a `select` part (rewards) and a disjoint `report` part (the table). When two
question sets are asked in one inner loop (rewards on generated questions while gold ones are measured beside
them; a table on both), a context carries them one after the other and its scores are split after grading:
the adapted model answers each question on its own, so asking more does not change the others' answers beyond
batching.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

import numpy as np

from seal.config import RunConfig
from seal.domains.base import QA, Context, Score
from seal.domains.questions import QuestionSet, QuestionSettings, summarize, write_questions
from seal.progress import log
from seal.store import ScoreKey, Store


def open_writer(cfg: RunConfig):
    """The question writer `questions.writer` names: the run's initial model (`base`, a copy of its own), an
    endpoint, or another model directory / hub id."""
    from seal.domains.question_writers import EndpointSpec, EndpointWriter, ModelWriter
    from seal.model import load_model

    q = cfg.questions
    if q.writer == "endpoint":
        return EndpointWriter(EndpointSpec(q.endpoint.base_url, q.endpoint.model, q.endpoint.api_key_env))
    loaded = load_model(cfg.model, path=None if q.writer == "base" else q.writer)
    return ModelWriter(loaded, name="base" if q.writer == "base" else q.writer)


def question_sets(store: Store, cfg: RunConfig, contexts: Iterable[Context]) -> dict[str, QuestionSet]:
    """Every context's generated questions: read back from the store, or written now (the writer is loaded only
    when some are missing) and stored as each passage is done."""
    contexts = list({c.id: c for c in contexts}.values())
    done = {cid: QuestionSet.from_dict(d) for cid, d in store.question_sets().items()}
    missing = [c for c in contexts if c.id not in done]
    if not missing:
        return {c.id: done[c.id] for c in contexts}
    writer = open_writer(cfg)
    try:
        log.info("writing questions for %d passages with %s", len(missing), writer.name)
        return write_questions(writer, contexts, QuestionSettings.from_config(cfg.questions), cfg.seed, done=done,
                               on_written=lambda qs: store.put_question_set(qs.context_id, qs.writer, qs.to_dict()))
    finally:
        loaded = getattr(writer, "loaded", None)
        if loaded is not None:
            from seal.backends.chunks import free_model

            free_model(loaded)


def joined(context: Context, first: tuple[QA, ...], second: tuple[QA, ...]) -> Context:
    """`context` asking `first` then `second`."""
    return dataclasses.replace(context, questions=tuple(first) + tuple(second))


def split_score(score: Score, n_first: int) -> tuple[Score, Score]:
    """A score of a joined context as the scores of its two question sets (invalid or failed: both parts)."""
    def part(sl: slice) -> Score:
        return dataclasses.replace(score, correct=score.correct[sl], answers=score.answers[sl],
                                   f1=None if score.f1 is None else score.f1[sl])

    return part(slice(0, n_first)), part(slice(n_first, None))


def split_scores(scores: dict[ScoreKey, Score], n_first: dict[str, int]
                 ) -> tuple[dict[ScoreKey, Score], dict[ScoreKey, Score]]:
    first, second = {}, {}
    for k, s in scores.items():
        first[k], second[k] = split_score(s, n_first[k.context_id])
    return first, second


# --- how well generated-question rewards agree with gold ones ---


def ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (as Spearman's correlation needs).

    >>> ranks(np.array([0.5, 0.0, 0.5, 1.0])).tolist()
    [2.5, 1.0, 2.5, 4.0]
    """
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x))
    r[order] = np.arange(1, len(x) + 1)
    for v in np.unique(x):
        tied = x == v
        r[tied] = r[tied].mean()
    return r


def pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    """Pearson's correlation; None when either side is constant (undefined)."""
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def reward_agreement(generated: dict[tuple[str, int], float], gold: dict[tuple[str, int], float]) -> dict:
    """Agreement of two rewards of the same self-edits ({(context, sample): mean reward}): Spearman and
    Pearson correlation, and how often the best self-edit of a context (ties: the lower sample, as ReST-EM
    keeps) is the same under both.

    >>> a = {("c", 0): 0.5, ("c", 1): 1.0, ("d", 0): 0.0, ("d", 1): 0.5}
    >>> reward_agreement(a, {k: v / 2 for k, v in a.items()})["best_of_same"]
    1.0
    """
    keys = sorted(set(generated) & set(gold))
    x = np.array([generated[k] for k in keys])
    y = np.array([gold[k] for k in keys])
    best = lambda r, c: min((-r[k], k[1]) for k in keys if k[0] == c)[1]  # noqa: E731
    contexts = sorted({k[0] for k in keys})
    same = [best(generated, c) == best(gold, c) for c in contexts]
    return {"spearman": pearson(ranks(x), ranks(y)) if keys else None, "pearson": pearson(x, y) if keys else None,
            "best_of_same": float(np.mean(same)) if same else None, "n": len(keys), "contexts": len(contexts)}


def questions_report(sets: Iterable[QuestionSet]) -> dict:
    """What the writer produced, for summary.json: candidates, kept, select/report, stated vs derived, the share
    that repeats a gold question (excluded from rewards), and every drop reason with its count."""
    s = summarize(sets)
    return {"passages": s.passages, "candidates": s.candidates, "kept": s.kept, "select": s.select,
            "report": s.report, "stated": s.stated, "derived": s.derived, "gold_like": s.gold_like,
            "gold_like_share": s.gold_like_share, "dropped": dict(s.dropped)}
