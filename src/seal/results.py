"""Typed results: the rows of a table, the ReST-EM rounds, report sections, and the summary that holds them.

A recipe builds a `Summary`; `seal.report` and the CLI render any summary without knowing which recipe made
it. `summary.json` is `Summary.to_json()`: `experiment`, `config`, `title`, `unit`, `rows`, `rounds`, the
recipe's own figures at the top level (`data`: e.g. `updates` for CPT, `modes` for continual, `configs` for
ARC), `comparisons` (paired differences between rows), `sections` (tables and heatmaps for the report) and
`provenance` (what produced it).

Uncertainty (docs/knowledge.md, "Grading and statistics"): every row carries its per-item accuracies
(`per_item`, one per passage or task) and a percentile bootstrap interval of its mean (`ci_low`, `ci_high`);
`compare` pairs two rows on the items both scored (paired bootstrap interval, sign-flip p-value).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass, field, fields

from seal.domains.base import Context, Score, mean
from seal.outer.selection import updates_policy
from seal.stats import bootstrap_ci, paired_comparison
from seal.store import ScoreKey, Store


@dataclass
class Row:
    """One row of a results table: accuracy averaged per passage (over samples and repeats), then over
    passages (or tasks)."""

    name: str
    accuracy: float
    std: float
    n_passages: int
    n_questions: int
    ungraded: int
    invalid: int
    failed: int
    best_of: float | None = None  # the share of tasks that at least one of their self-edits solved (ARC)
    ci_low: float | None = None  # percentile bootstrap interval of `accuracy` over items
    ci_high: float | None = None
    f1_mean: float | None = None  # mean token F1 (SQuAD's continuous figure), where the `f1` grader graded
    generated_accuracy: float | None = None  # on the generated report questions (`eval.questions: both`)
    per_item: dict[str, float] = field(default_factory=dict)  # accuracy of every passage (task, sequence)

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, d: dict) -> "Row":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class Compared:
    """Row `row` against `baseline` on the items both scored: the mean difference (`metric`, default accuracy),
    its paired bootstrap interval and the two-sided sign-flip p-value over `n` pairs."""

    row: str
    baseline: str
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int
    metric: str = "accuracy"


@dataclass
class RoundRow:
    """One ReST-EM round: mean reward of its self-edits, the no-adaptation accuracy, what was kept."""

    round: int
    mean_reward: float
    mean_baseline: float
    n_scored: int
    n_kept: int
    seconds: float
    policy_updated: bool = True  # False: nothing kept, or fewer than restem.min_kept; the M-step was skipped


@dataclass
class Table:
    """A report section: a titled table of preformatted cells."""

    title: str
    headers: list[str]
    cells: list[list[str]]
    note: str = ""
    kind: str = "table"


@dataclass
class Heatmap:
    """A report section: a matrix of fractions (None: empty cell), drawn as a heatmap in percent."""

    title: str
    row_labels: list[str]
    col_labels: list[str]
    values: list[list[float | None]]
    xlabel: str = ""
    ylabel: str = ""
    note: str = ""
    kind: str = "heatmap"


Section = Table | Heatmap
_SECTIONS = {"table": Table, "heatmap": Heatmap}


@dataclass
class Summary:
    """What a run produced, as `summary.json` holds it."""

    experiment: str
    config: str
    rows: list[Row] = field(default_factory=list)
    rounds: list[RoundRow] = field(default_factory=list)
    title: str = "held-out passages"
    unit: str = "passages"  # what a row averages over: passages, tasks or sequences
    confidence: float = 0.95  # the level of the rows' and comparisons' intervals
    data: dict = field(default_factory=dict)  # the recipe's own figures, kept at the top level of summary.json
    comparisons: list[Compared] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)

    def row(self, name: str) -> Row:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"no row '{name}'; rows: {', '.join(r.name for r in self.rows)}")

    def to_json(self) -> dict:
        return {"experiment": self.experiment, "config": self.config, "title": self.title, "unit": self.unit,
                "confidence": self.confidence,
                "rows": [r.to_json() for r in self.rows], "rounds": [asdict(r) for r in self.rounds], **self.data,
                "comparisons": [asdict(c) for c in self.comparisons], "sections": [asdict(s) for s in self.sections],
                "provenance": self.provenance}

    @classmethod
    def from_json(cls, d: dict) -> "Summary":
        own = {"experiment", "config", "title", "unit", "confidence", "rows", "rounds", "comparisons", "sections",
               "provenance"}
        return cls(experiment=d.get("experiment", "knowledge"), config=d.get("config", ""),
                   rows=[Row.from_json(r) for r in d.get("rows", [])],
                   rounds=[RoundRow(**r) for r in d.get("rounds", [])],
                   title=d.get("title", "held-out passages"), unit=d.get("unit", "passages"),
                   confidence=d.get("confidence", 0.95),
                   data={k: v for k, v in d.items() if k not in own},
                   comparisons=[Compared(**c) for c in d.get("comparisons", [])],
                   sections=[_SECTIONS[s.pop("kind")](**s) for s in (dict(x) for x in d.get("sections", []))],
                   provenance=d.get("provenance", {}))


def summarize_row(name: str, scores: dict[ScoreKey, Score], contexts: list[Context], *, resamples: int = 10_000,
                  level: float = 0.95, seed: int = 0) -> Row:
    """A table row from a phase's scores: accuracy averaged per passage (over samples and repeats), then over
    passages; the std is over passages, the interval a bootstrap over passages."""
    with_f1 = any(s.f1 is not None for s in scores.values())
    per_ctx: dict[str, list[float]] = defaultdict(list)
    f1s: dict[str, list[float]] = defaultdict(list)
    for k, s in scores.items():
        per_ctx[k.context_id].append(s.accuracy)
        if with_f1:
            f1s[k.context_id].append(s.mean_f1 or 0.0)  # an invalid or failed self-edit scores F1 0
    row = item_row(name, {c: mean(v) for c, v in per_ctx.items()},
                   sum(len(c.questions) for c in contexts if c.id in per_ctx), resamples=resamples, level=level,
                   seed=seed)
    row.ungraded = sum(s.n_ungraded for s in scores.values())
    row.invalid = sum(s.invalid is not None for s in scores.values())
    row.failed = sum(s.failed is not None for s in scores.values())
    row.f1_mean = mean([mean(v) for v in f1s.values()]) if with_f1 else None
    return row


def item_row(name: str, per_item: dict[str, float], n_questions: int, *, resamples: int = 10_000,
             level: float = 0.95, seed: int = 0) -> Row:
    """A row from one accuracy per item (passage, task or sequence): their mean, std and bootstrap interval."""
    accs = list(per_item.values())
    ci = bootstrap_ci(accs, resamples=resamples, level=level, seed=seed) if accs else None
    return Row(name=name, accuracy=mean(accs), std=statistics.stdev(accs) if len(accs) > 1 else 0.0,
               n_passages=len(accs), n_questions=n_questions, ungraded=0, invalid=0, failed=0,
               ci_low=ci.low if ci else None, ci_high=ci.high if ci else None, per_item=dict(per_item))


def compare(rows: list[Row], pairs: list[tuple[str, str]], *, resamples: int = 10_000, level: float = 0.95,
            seed: int = 0) -> list[Compared]:
    """Paired comparisons of (row, baseline) by name, on the items both scored; a pair naming a row the table
    does not have is left out."""
    by_name = {r.name: r for r in rows}
    return [compare_items(a, b, by_name[a].per_item, by_name[b].per_item, resamples=resamples, level=level,
                          seed=seed) for a, b in pairs if a in by_name and b in by_name and a != b]


def compare_items(row: str, baseline: str, a: dict[str, float], b: dict[str, float], *, metric: str = "accuracy",
                  resamples: int = 10_000, level: float = 0.95, seed: int = 0) -> Compared:
    """`row` against `baseline` from their per-item figures ({item: value}), paired by item."""
    c = paired_comparison(a, b, resamples=resamples, level=level, seed=seed)
    return Compared(row, baseline, c.diff, c.ci_low, c.ci_high, c.p_value, c.n, metric)


def best_of(rows: list[Row], names: list[str]) -> str | None:
    """The name of the most accurate of the rows `names` that the table has (None: none of them)."""
    have = [r for r in rows if r.name in names]
    return max(have, key=lambda r: r.accuracy).name if have else None


def round_rows(store: Store, min_kept: int = 1) -> list[RoundRow]:
    """The store's ReST-EM rounds; a round that kept fewer than `min_kept` (`restem.min_kept`) left the policy
    unchanged (`seal.outer.restem.run_round`)."""
    return [RoundRow(r.round, r.mean_reward, r.mean_baseline, r.n_scored, r.n_kept, r.seconds,
                     policy_updated=updates_policy(r.n_kept, min_kept)) for r in store.rounds()]
