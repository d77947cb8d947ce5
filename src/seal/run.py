"""The run layer: what every recipe does the same way, written once.

    with Run.open(cfg, run_dir) as run:          # config.yaml first (or the resume check), store, backend, metrics
        base = run.load()
        run.domain = KnowledgeDomain.from_config(base.tokenizer, cfg)
        edits = run.sample("eval/base", 0, base, contexts, n=1, who="base")          # stored per batch
        scores = run.score("eval/base", 0, base, [Item(c, edits[(c.id, 0)]) ...])   # stored per chunk
        row = run.row("base_self_edits", scores, contexts)
        return run.finish(Summary("knowledge", cfg.name, rows=[row, ...]))  # summary.json, report.md, plot

A run on disk:

    runs/<name>/
      config.yaml        resolved config, written first
      store.sqlite       every self-edit and score
      checkpoints/round-r/   the merged policy after each ReST-EM round
      summary.json, report.md, results.png

Opening an existing run directory resumes it; a config that differs in a key that changes results is refused
(keys declared `resume_safe` may change). Both steps skip what the store already has; seeds derive from the
run seed and the item's key, and generate batches and engine chunks are fixed slices of the full work list, so
a resumed run computes exactly what an uninterrupted one would.
"""

from __future__ import annotations

import json
import platform
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from seal.backends import Backend, make_backend
from seal.config import ConfigError, RunConfig, changed_keys, dump_config
from seal.data import golds_fingerprint, select_passages
from seal.domains.base import Context, InnerResult, Invalid, Job, Score, SelfEdit, UpdatePlan, mean
from seal.domains.questions import QuestionSet
from seal.faults import crash_point
from seal.files import write_json
from seal.generate import SamplingParams, greedy_answers
from seal.labels import joined, question_sets, reward_agreement, split_scores
from seal.metrics import Metrics
from seal.outer.selection import rewards_by_self_edit
from seal.progress import log, progress
from seal.provenance import cpu_name, git_state
from seal.report import produced_by, write_report
from seal.results import Compared, Row, Summary, compare, compare_items, item_row, summarize_row
from seal.store import ScoreKey, Store, derive_seed


def open_run_dir(run_dir: Path, cfg: RunConfig) -> Store:
    """Create or resume `run_dir`: write config.yaml first, or check it against `cfg` when resuming."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "config.yaml"
    if path.exists():
        diff = changed_keys(yaml.safe_load(path.read_text()) or {}, cfg.model_dump(mode="json"))
        if diff:
            shown = ", ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in diff[:8])
            raise ConfigError(f"{run_dir} holds a run with a different config ({shown}); resume it with the same "
                              f"config or choose another --run-dir")
    path.write_text(dump_config(cfg))
    return Store(run_dir / "store.sqlite")


def check_golds(store: Store, run_dir: Path, contexts: list[Context]) -> None:
    """Record the fingerprint of the data's gold answers, or refuse a resume whose golds differ from those the
    stored scores were graded against (an edited records file, another SQuAD version)."""
    now = golds_fingerprint(contexts)
    before = store.get_meta("golds")
    if before is None:
        store.set_meta("golds", now)
    elif before != now:
        raise ConfigError(f"{run_dir} was scored against other gold answers (fingerprint {before[:12]}, now "
                          f"{now[:12]}): the data's questions or answers changed; restore them or choose another "
                          f"--run-dir")


def provenance(cfg: RunConfig) -> dict:
    """What produced a run: seal's version and git commit (when running from a checkout), the library
    versions, Python, the device, the dtype, torch's CPU thread count and the processor (another thread count
    or another CPU sums floats in another order, which a long CPU update carries into the table)."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    from seal.model import pick_device, pick_dtype

    def ver(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    device = pick_device(cfg.model.device)
    return {"seal": ver("seal"), "commit": git_commit(), "torch": ver("torch"), "transformers": ver("transformers"),
            "peft": ver("peft"), "python": platform.python_version(), "device": str(device),
            "dtype": str(pick_dtype(cfg.model.dtype, device)).removeprefix("torch."),
            "threads": torch.get_num_threads(), "cpu": cpu_name()}


def git_commit(where: Path = Path(__file__).parent) -> str | None:
    """The checkout's commit (with `+dirty` when files differ from it), or None outside a git checkout."""
    state = git_state(where)
    return None if state is None else state[0] + ("+dirty" if state[1] else "")


@dataclass(frozen=True)
class Item:
    """One inner loop to score: a context, the self-edit applied (None: the context alone), its key."""

    context: Context
    self_edit: SelfEdit | None
    sample: int = 0
    repeat: int = 0
    plan_kwargs: tuple = ()  # extra keyword arguments of domain.plan, e.g. (("repeat_passage", 7),)
    adapt: bool = True  # False: answer with the unadapted model (the no-adaptation baseline)


class Run:
    """An open run: its config, directory, store, backend, metrics, and the domain a recipe sets."""

    def __init__(self, cfg: RunConfig, run_dir: Path, store: Store, backend: Backend, metrics: Metrics):
        self.cfg, self.dir, self.store, self.backend, self.metrics = cfg, run_dir, store, backend, metrics
        self.domain = None
        self.questions: dict[str, QuestionSet] = {}  # generated questions by context id (label-free SEAL)
        self._reported: set[str] | None = None  # contexts the table may ask about (None: all; `write_questions`)
        self._table_split: dict[str, int] = {}  # eval.questions=both: gold questions first, then generated

    @classmethod
    @contextmanager
    def open(cls, cfg: RunConfig, run_dir: str | Path, *, local: bool = False,
             contexts: list[Context] | None = None) -> Iterator[Run]:
        """Open (or resume) `run_dir`; `local=True` runs everything in this process whatever `inner.backend`
        says (recipes that update a model in memory). `contexts`: the run's data, whose gold answers are
        fingerprinted so that a resume against other golds is refused. The backend and metric sinks close when
        the block ends."""
        run_dir = Path(run_dir)
        store = open_run_dir(run_dir, cfg)
        if contexts is not None:
            check_golds(store, run_dir, contexts)
        record = provenance(cfg)
        history = json.loads(store.get_meta("provenance") or "[]")
        store.set_meta("provenance", json.dumps(history + [record]))
        log.info("%s %s with %s", "resuming" if history else "starting", run_dir, produced_by(record))
        metrics = Metrics.open(cfg.log, run_dir, cfg.model_dump(mode="json"))
        try:
            backend = make_backend(cfg, local=local)
        except BaseException:
            metrics.close()
            raise
        run = cls(cfg, run_dir, store, backend, metrics)
        run.provenance = record
        try:
            yield run
        finally:
            backend.close()
            metrics.close()

    @property
    def sampling(self) -> SamplingParams:
        g = self.cfg.generation
        return SamplingParams(g.temperature, g.top_p, g.max_new_tokens)

    # --- models ---

    def load(self, path: str | None = None):
        return self.backend.load(path)

    def free(self, model) -> None:
        self.backend.free(model)

    # --- the steps every recipe takes ---

    def sample(self, phase: str, round: int, policy, contexts: list[Context], n: int, *, who: str,
               batch_size: int | None = None) -> dict[tuple[str, int], SelfEdit]:
        """`n` self-edits per context written by `policy` (stored per batch; `who` names the writer)."""
        return sample_self_edits(self.store, phase, round, policy, self.domain, contexts, n, self.sampling,
                                 seed=self.cfg.seed, batch_size=batch_size or self.cfg.generation.batch_size,
                                 policy=who, backend=self.backend)

    def score(self, phase: str, round: int, model, items: list[Item],
              on_scores: Callable[[list[tuple[ScoreKey, Score]]], None] | None = None) -> dict[ScoreKey, Score]:
        """Every item's inner loop and score (stored per chunk); the phase's inner-loop losses and times go
        to the metrics."""
        first, last, seconds = [], [], []

        def collect(results: list[InnerResult]) -> None:
            for r in results:
                if r.step_losses:
                    first.append(r.step_losses[0])
                    last.append(r.step_losses[-1])
                seconds.append(r.train_seconds + r.eval_seconds)

        scores = score_self_edits(self.store, phase, round, self.backend, model, self.domain, items,
                                  seed=self.cfg.seed, on_scores=on_scores, on_results=collect)
        if seconds:
            tag = f"inner/{phase}"
            self.metrics.scalars({f"{tag}/first_loss": mean(first), f"{tag}/last_loss": mean(last),
                                  f"{tag}/seconds_per_loop": mean(seconds)}, step=round)
        return scores

    def self_edit_scores(self, who: str, round: int, model, contexts: list[Context]) -> dict[ScoreKey, Score]:
        """A table row of self-edits: `model` writes `eval.samples` per context, each applied `eval.repeats`
        times to `model` itself (phase `eval/<who>`)."""
        c = self.cfg.eval
        edits = self.sample(f"eval/{who}", round, model, contexts, c.samples,
                            who=who if who == "base" else f"round-{round}")
        items = [Item(x, edits[(x.id, s)], s, rep) for x in contexts for s in range(c.samples)
                 for rep in range(c.repeats)]
        return self.score(f"eval/{who}", round, model, items)

    def closed_book(self, phase: str, round: int, model, contexts: list[Context], route: list | None = None,
                    activate: Callable[[object], None] | None = None) -> dict[ScoreKey, Score]:
        """The phase's stored scores, or `model` (a LoadedModel in this process) answering every context's
        probes now, stored at once. `route`/`activate`: see `answer_closed_book`."""
        if not self.store.has_scores(phase, round, [c.id for c in contexts]):
            scores = answer_closed_book(model.model, model.tokenizer, self.domain, contexts,
                                        self.cfg.inner.eval_batch_size, route=route, activate=activate)
            self.store.put_scores([(ScoreKey(phase, round, cid), s) for cid, s in scores.items()])
        return self.store.scores(phase, round)

    def training_contexts(self, pool: list[Context], round: int) -> list[Context]:
        """A ReST-EM round's training contexts: `restem.n_passages` drawn from `pool` (new ones each round
        unless `restem.resample_passages` is off)."""
        r = self.cfg.restem
        seed = derive_seed(self.cfg.seed, "train-passages", round if r.resample_passages else 1)
        return select_passages(pool, min(r.n_passages, len(pool)), seed)

    # --- which questions: gold, generated, or both (seal.labels) ---

    def write_questions(self, contexts: list[Context], reported: list[Context] | None = None) -> None:
        """Generated questions for `contexts` (written once, stored), when the config asks for any. `reported`:
        the contexts whose questions the table may ask (None: all of them); with `questions.hold_out: reported`,
        the others reward self-edits with every question they have."""
        if self.cfg.needs_generated_questions:
            self.questions.update(question_sets(self.store, self.cfg, contexts))
            self._reported = None if reported is None else {c.id for c in reported}

    def reward_questions(self, context_id: str) -> tuple:
        """A context's generated questions that reward its self-edits: the `select` part, or every kept question
        when `questions.hold_out: reported` and the table never asks about this context."""
        qs = self.questions[context_id]
        unreported = self._reported is not None and context_id not in self._reported
        return qs.kept if self.cfg.questions.hold_out == "reported" and unreported else qs.select

    def reward_contexts(self, contexts: list[Context]) -> list[Context]:
        """Training contexts as ReST-EM scores them: their gold questions, or (`restem.reward_questions:
        generated`) the generated reward questions followed by the gold ones, measured but never rewarded."""
        if self.cfg.restem.reward_questions == "gold":
            return contexts
        return [joined(c, self.reward_questions(c.id), c.questions) for c in contexts]

    def reward_scores(self, scores: dict[ScoreKey, Score], gold: bool = False) -> dict[ScoreKey, Score]:
        """The part of training scores that is the reward (`gold=True`: the gold part beside it)."""
        if self.cfg.restem.reward_questions == "gold":
            return scores
        parts = split_scores(scores, {k.context_id: len(self.reward_questions(k.context_id)) for k in scores})
        return parts[1] if gold else parts[0]

    def reward_agreement(self, round: int) -> dict:
        """Generated-question rewards against gold ones on round `round`'s scored self-edits (`seal.labels`)."""
        scores = self.store.scores("train", round)
        return reward_agreement(rewards_by_self_edit(self.reward_scores(scores)),
                                rewards_by_self_edit(self.reward_scores(scores, gold=True)))

    def table_contexts(self, contexts: list[Context]) -> list[Context]:
        """Eval contexts as `eval.questions` asks them: gold questions, the generated `report` ones (passages
        without any are left out), or both, gold first (rows then carry `generated_accuracy`)."""
        mode = self.cfg.eval.questions
        if mode == "gold":
            return contexts
        if mode == "generated":
            out = [joined(c, self.questions[c.id].report, ()) for c in contexts if self.questions[c.id].report]
            if len(out) < len(contexts):
                log.warning("%d of %d eval passages have no generated report questions; the table leaves them out",
                            len(contexts) - len(out), len(contexts))
            return out
        self._table_split.update({c.id: len(c.questions) for c in contexts})
        return [joined(c, c.questions, self.questions[c.id].report) for c in contexts]

    # --- rows and the end ---

    def row(self, name: str, scores: dict[ScoreKey, Score], contexts: list[Context]) -> Row:
        """A table row (accuracy, std, bootstrap interval, per-passage accuracies) from a phase's scores; with
        `eval.questions: both`, graded on the gold part, with `generated_accuracy` from the generated part."""
        if self._table_split and all(c.id in self._table_split for c in contexts):
            gold, generated = split_scores(scores, self._table_split)
            has = [c for c in contexts if len(c.questions) > self._table_split[c.id]]
            row = summarize_row(name, gold, [replace(c, questions=c.questions[:self._table_split[c.id]])
                                             for c in contexts], **self._stats)
            ids = {c.id for c in has}
            row.generated_accuracy = summarize_row(name, {k: s for k, s in generated.items() if k.context_id in ids},
                                                   has, **self._stats).accuracy if has else None
            self.metrics.scalars({f"table/{name}/accuracy": row.accuracy}, step=0)
            return row
        row = summarize_row(name, scores, contexts, **self._stats)
        self.metrics.scalars({f"table/{name}/accuracy": row.accuracy}, step=0)
        return row

    def item_row(self, name: str, per_item: dict[str, float], n_questions: int) -> Row:
        """A row from one figure per item (e.g. per sequence), with its bootstrap interval."""
        return item_row(name, per_item, n_questions, **self._stats)

    def compare(self, rows: list[Row], pairs: list[tuple[str, str]]) -> list[Compared]:
        """Paired comparisons of (row, baseline) on the passages both scored (`seal.results.compare`)."""
        return compare(rows, pairs, **self._stats)

    def compare_items(self, row: str, baseline: str, a: dict[str, float], b: dict[str, float],
                      metric: str) -> Compared:
        """`row` against `baseline` on another per-item figure than accuracy (`metric` names it)."""
        return compare_items(row, baseline, a, b, metric=metric, **self._stats)

    @property
    def _stats(self) -> dict:
        return {"resamples": self.cfg.eval.bootstrap_resamples, "level": self.cfg.eval.confidence,
                "seed": self.cfg.seed}

    def finish(self, summary: Summary) -> Summary:
        """Write summary.json (with this run's provenance) and report.md/results.png; returns the summary."""
        summary.provenance = self.provenance
        summary.confidence = self.cfg.eval.confidence
        write_json(self.dir / "summary.json", summary.to_json())
        write_report(self.dir)
        return summary


# --- the two steps ---


def sample_self_edits(store: Store, phase: str, round: int, loaded, domain, contexts: list[Context], n: int,
                      params: SamplingParams, *, seed: int, batch_size: int, policy: str, backend: Backend
                      ) -> dict[tuple[str, int], SelfEdit]:
    """`n` self-edits per context from `loaded` (the policy), keyed by (context id, sample). `backend` runs the
    generate calls; each batch is stored as it finishes, and what is returned is what is stored."""
    have = store.self_edits(phase, round)
    requests = [(c, s) for c in contexts for s in range(n)]
    batches = [requests[i:i + batch_size] for i in range(0, len(requests), batch_size)]
    todo = [b for b, batch in enumerate(batches) if any((c.id, s) not in have for c, s in batch)]
    prompts = {b: [domain.prompt(c) for c, _ in batches[b]] for b in todo}
    seeds = [derive_seed(seed, phase, round, "generate", b) for b in todo]
    stream = backend.generate_batches(loaded, [(b, prompts[b]) for b in todo], params, seeds)
    with progress(f"{phase} r{round}: writing self-edits", sum(len(batches[b]) for b in todo)) as advance:
        for b, texts in stream:
            crash_point("generate")
            edits = [SelfEdit(c.id, p, t, policy, s) for (c, s), p, t in zip(batches[b], prompts[b], texts)
                     if (c.id, s) not in have]  # a batch is rerun whole; a self-edit already stored stands
            store.put_self_edits(phase, round, edits)
            have.update({(e.context_id, e.sample): e for e in edits})
            advance(len(batches[b]))
    return {(c.id, s): have[(c.id, s)] for c, s in requests}


def score_self_edits(store: Store, phase: str, round: int, backend: Backend, loaded, domain, items: list[Item],
                     *, seed: int, on_scores: Callable[[list[tuple[ScoreKey, Score]]], None] | None = None,
                     on_results: Callable[[list[InnerResult]], None] | None = None) -> dict[ScoreKey, Score]:
    """Score every item (skipping those already stored); returns all of the phase's scores for `items`, as
    stored. `backend` is a `seal.backends` backend (or anything with its `chunks` and `run_chunks`);
    `on_scores` gets each chunk's new scores once stored, `on_results` each chunk's raw results."""
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
            if on_results is not None:
                on_results(results)
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
