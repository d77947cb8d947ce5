"""Typed results: the rows of a table, the ReST-EM rounds, report sections, and the summary that holds them.

A recipe builds a `Summary`; `seal.report` and the CLI render any summary without knowing which recipe made
it. `summary.json` is `Summary.to_json()`: `experiment`, `config`, `title`, `unit`, `rows`, `rounds`, the
recipe's own figures at the top level (`data`: e.g. `updates` for CPT, `modes` for continual, `configs` for
ARC), `sections` (tables and heatmaps for the report) and `provenance` (what produced it).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass, field, fields

from seal.domains.base import Context, Score, mean
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

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, d: dict) -> "Row":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class RoundRow:
    """One ReST-EM round: mean reward of its self-edits, the no-adaptation accuracy, what was kept."""

    round: int
    mean_reward: float
    mean_baseline: float
    n_scored: int
    n_kept: int
    seconds: float


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
    unit: str = "passages"  # what a row averages over: passages, or tasks
    data: dict = field(default_factory=dict)  # the recipe's own figures, kept at the top level of summary.json
    sections: list[Section] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)

    def row(self, name: str) -> Row:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"no row '{name}'; rows: {', '.join(r.name for r in self.rows)}")

    def to_json(self) -> dict:
        return {"experiment": self.experiment, "config": self.config, "title": self.title, "unit": self.unit,
                "rows": [r.to_json() for r in self.rows], "rounds": [asdict(r) for r in self.rounds], **self.data,
                "sections": [asdict(s) for s in self.sections], "provenance": self.provenance}

    @classmethod
    def from_json(cls, d: dict) -> "Summary":
        own = {"experiment", "config", "title", "unit", "rows", "rounds", "sections", "provenance"}
        return cls(experiment=d.get("experiment", "knowledge"), config=d.get("config", ""),
                   rows=[Row.from_json(r) for r in d.get("rows", [])],
                   rounds=[RoundRow(**r) for r in d.get("rounds", [])],
                   title=d.get("title", "held-out passages"), unit=d.get("unit", "passages"),
                   data={k: v for k, v in d.items() if k not in own},
                   sections=[_SECTIONS[s.pop("kind")](**s) for s in (dict(x) for x in d.get("sections", []))],
                   provenance=d.get("provenance", {}))


def summarize_row(name: str, scores: dict[ScoreKey, Score], contexts: list[Context]) -> Row:
    """A table row from a phase's scores: accuracy averaged per passage (over samples and repeats), then over
    passages; the std is over passages."""
    per_ctx: dict[str, list[float]] = defaultdict(list)
    for k, s in scores.items():
        per_ctx[k.context_id].append(s.accuracy)
    accs = [mean(v) for v in per_ctx.values()]
    n_questions = sum(len(c.questions) for c in contexts if c.id in per_ctx)
    return Row(name=name, accuracy=mean(accs), std=statistics.stdev(accs) if len(accs) > 1 else 0.0,
               n_passages=len(accs), n_questions=n_questions, ungraded=sum(s.n_ungraded for s in scores.values()),
               invalid=sum(s.invalid is not None for s in scores.values()),
               failed=sum(s.failed is not None for s in scores.values()))


def round_rows(store: Store) -> list[RoundRow]:
    return [RoundRow(r.round, r.mean_reward, r.mean_baseline, r.n_scored, r.n_kept, r.seconds)
            for r in store.rounds()]
