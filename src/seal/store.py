"""The run store: one SQLite file per run; every self-edit and score is written when produced.

Keys are (phase, round, context, sample[, repeat]). Writes are transactions in WAL mode, so a killed process
never leaves half a batch behind: a batch of scores is either all there or not at all. Rerunning a run reads
finished work back instead of recomputing it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from seal.domains.base import Score, SelfEdit
from seal.faults import crash_point

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS self_edits (
    phase TEXT NOT NULL, round INTEGER NOT NULL, context_id TEXT NOT NULL, sample INTEGER NOT NULL,
    policy TEXT NOT NULL, prompt TEXT NOT NULL, completion TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (phase, round, context_id, sample));
CREATE TABLE IF NOT EXISTS scores (
    phase TEXT NOT NULL, round INTEGER NOT NULL, context_id TEXT NOT NULL, sample INTEGER NOT NULL,
    repeat INTEGER NOT NULL, accuracy REAL NOT NULL, n_questions INTEGER NOT NULL, n_ungraded INTEGER NOT NULL,
    correct TEXT NOT NULL, answers TEXT NOT NULL, invalid TEXT, failed TEXT, n_steps INTEGER NOT NULL,
    train_seconds REAL NOT NULL, eval_seconds REAL NOT NULL, created REAL NOT NULL, f1 TEXT,
    PRIMARY KEY (phase, round, context_id, sample, repeat));
CREATE TABLE IF NOT EXISTS kept (
    round INTEGER NOT NULL, context_id TEXT NOT NULL, sample INTEGER NOT NULL, reward REAL NOT NULL,
    PRIMARY KEY (round, context_id, sample));
CREATE TABLE IF NOT EXISTS questions (
    context_id TEXT PRIMARY KEY, writer TEXT NOT NULL, data TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS rounds (
    round INTEGER PRIMARY KEY, checkpoint TEXT NOT NULL, n_kept INTEGER NOT NULL, mean_reward REAL NOT NULL,
    mean_baseline REAL NOT NULL, n_scored INTEGER NOT NULL, seconds REAL NOT NULL, created REAL NOT NULL);
"""


def derive_seed(*key) -> int:
    """A 31-bit seed from a key such as (run seed, phase, round, context, sample, repeat)."""
    digest = hashlib.sha256(repr(key).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


@dataclass(frozen=True)
class ScoreKey:
    phase: str
    round: int
    context_id: str
    sample: int = 0
    repeat: int = 0


@dataclass
class RoundRecord:
    round: int
    checkpoint: str
    n_kept: int
    mean_reward: float
    mean_baseline: float
    n_scored: int
    seconds: float


class Store:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)  # explicit transactions below
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(scores)")}
        if "f1" not in columns:  # a store written before per-question F1 was kept
            self.db.execute("ALTER TABLE scores ADD COLUMN f1 TEXT")

    def close(self) -> None:
        self.db.close()

    def _write(self, sql: str, rows: Iterable[tuple]) -> None:
        rows = list(rows)
        if not rows:
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.executemany(sql, rows)
            crash_point("store")
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    # --- meta ---

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def meta_items(self, prefix: str) -> list[tuple[str, str]]:
        """Every (key, value) whose key starts with `prefix`, by key."""
        return self.db.execute("SELECT key, value FROM meta WHERE substr(key, 1, ?) = ? ORDER BY key",
                               (len(prefix), prefix)).fetchall()

    def set_meta(self, key: str, value: str) -> None:
        self._write("INSERT OR REPLACE INTO meta VALUES (?, ?)", [(key, value)])

    # --- self-edits ---

    def put_self_edits(self, phase: str, round: int, edits: Iterable[SelfEdit]) -> None:
        now = time.time()
        self._write("INSERT OR IGNORE INTO self_edits VALUES (?,?,?,?,?,?,?,?)",
                    [(phase, round, e.context_id, e.sample, e.policy, e.prompt, e.completion, now) for e in edits])

    def self_edits(self, phase: str, round: int) -> dict[tuple[str, int], SelfEdit]:
        rows = self.db.execute("SELECT context_id, sample, policy, prompt, completion FROM self_edits "
                               "WHERE phase=? AND round=?", (phase, round)).fetchall()
        return {(c, s): SelfEdit(c, prompt, comp, pol, s) for c, s, pol, prompt, comp in rows}

    def self_edit_sets(self) -> list[tuple[str, int]]:
        """Every (phase, round) that has self-edits, in order."""
        return self.db.execute("SELECT DISTINCT phase, round FROM self_edits ORDER BY phase, round").fetchall()

    # --- scores ---

    def put_scores(self, items: Iterable[tuple[ScoreKey, Score]]) -> None:
        now = time.time()
        self._write(
            "INSERT OR IGNORE INTO scores (phase, round, context_id, sample, repeat, accuracy, n_questions, "
            "n_ungraded, correct, answers, invalid, failed, n_steps, train_seconds, eval_seconds, created, f1) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [(k.phase, k.round, k.context_id, k.sample, k.repeat, s.accuracy, len(s.correct), s.n_ungraded,
              json.dumps(s.correct), json.dumps(s.answers), s.invalid, s.failed, s.n_steps, s.train_seconds,
              s.eval_seconds, now, None if s.f1 is None else json.dumps(s.f1)) for k, s in items])

    def scores(self, phase: str, round: int | None = None) -> dict[ScoreKey, Score]:
        sql = ("SELECT phase, round, context_id, sample, repeat, correct, answers, invalid, failed, n_steps, "
               "train_seconds, eval_seconds, f1 FROM scores WHERE phase=?")
        args: tuple = (phase,)
        if round is not None:
            sql += " AND round=?"
            args += (round,)
        out = {}
        for ph, r, c, s, rep, correct, answers, invalid, failed, n_steps, ts, es, f1 in self.db.execute(sql, args):
            out[ScoreKey(ph, r, c, s, rep)] = Score(json.loads(correct), json.loads(answers), ts, es, failed,
                                                    invalid, n_steps, None if f1 is None else json.loads(f1))
        return out

    def has_scores(self, phase: str, round: int, context_ids: Iterable[str]) -> bool:
        """Whether every context has its (sample 0, repeat 0) score in (phase, round)."""
        have = {r[0] for r in self.db.execute("SELECT context_id FROM scores WHERE phase=? AND round=? AND "
                                              "sample=0 AND repeat=0", (phase, round))}
        return set(context_ids) <= have

    def phases(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT phase FROM scores ORDER BY phase")]

    def count_scores(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM scores").fetchone()[0]

    # --- generated questions (label-free SEAL) ---

    def put_question_set(self, context_id: str, writer: str, data: dict) -> None:
        """One passage's generated questions (a `QuestionSet.to_dict()`), written once: a rerun keeps the first."""
        self._write("INSERT OR IGNORE INTO questions VALUES (?,?,?,?)",
                    [(context_id, writer, json.dumps(data, ensure_ascii=False), time.time())])

    def question_sets(self) -> dict[str, dict]:
        return {c: json.loads(d) for c, d in self.db.execute("SELECT context_id, data FROM questions")}

    # --- rounds ---

    def put_kept(self, round: int, kept: Iterable[tuple[str, int, float]]) -> None:
        self._write("INSERT OR REPLACE INTO kept VALUES (?,?,?,?)", [(round, c, s, r) for c, s, r in kept])

    def kept(self, round: int) -> list[tuple[str, int, float]]:
        return list(self.db.execute("SELECT context_id, sample, reward FROM kept WHERE round=? "
                                    "ORDER BY context_id, sample", (round,)))

    def put_round(self, rec: RoundRecord) -> None:
        self._write("INSERT OR REPLACE INTO rounds VALUES (?,?,?,?,?,?,?,?)",
                    [(rec.round, rec.checkpoint, rec.n_kept, rec.mean_reward, rec.mean_baseline, rec.n_scored,
                      rec.seconds, time.time())])

    def rounds(self) -> list[RoundRecord]:
        rows = self.db.execute("SELECT round, checkpoint, n_kept, mean_reward, mean_baseline, n_scored, seconds "
                               "FROM rounds ORDER BY round").fetchall()
        return [RoundRecord(*r) for r in rows]
