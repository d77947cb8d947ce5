"""ARC grids and tasks: the ARC-AGI JSON formats, validated with errors that name file, task and field.

Formats read:

- a challenges file `{task_id: {"train": [{"input", "output"}...], "test": [{"input"}...]}}` plus a solutions
  file `{task_id: [output, ...]}` (one output per test input), as ARC-AGI ships them;
- a single task file `{"train": [...], "test": [{"input", "output"}...]}` (the original per-task layout).

A task with several test inputs becomes several contexts (`<task id>/<i>`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seal.data import DataError

Grid = tuple[tuple[int, ...], ...]
MAX_SIDE = 30


def as_grid(value: Any, where: str) -> Grid:
    """A validated grid: a non-empty rectangular list of lists of ints 0-9, at most 30×30."""
    if not isinstance(value, list) or not value:
        raise DataError(f"{where}: expected a non-empty list of rows, got {type(value).__name__}")
    if len(value) > MAX_SIDE:
        raise DataError(f"{where}: {len(value)} rows, more than {MAX_SIDE}")
    rows = []
    for r, row in enumerate(value):
        if not isinstance(row, list) or not row:
            raise DataError(f"{where}: row {r} is not a non-empty list")
        if len(row) != len(value[0]):
            raise DataError(f"{where}: grid not rectangular (row {r} has {len(row)} cells, row 0 has "
                            f"{len(value[0])})")
        if len(row) > MAX_SIDE:
            raise DataError(f"{where}: {len(row)} columns, more than {MAX_SIDE}")
        for c, cell in enumerate(row):
            if isinstance(cell, bool) or not isinstance(cell, int) or not 0 <= cell <= 9:
                raise DataError(f"{where}: cell ({r}, {c}) is {cell!r}, not a colour 0-9")
        rows.append(tuple(row))
    return tuple(rows)


@dataclass(frozen=True)
class Example:
    input: Grid
    output: Grid


@dataclass(frozen=True)
class ArcTask:
    """One test input of an ARC task, with the task's demonstrations and (if known) the test output."""

    id: str
    train: tuple[Example, ...]
    test_input: Grid
    test_output: Grid | None = None


def _parse_task(task_id: str, raw: Any, solutions: list | None, where: str) -> list[ArcTask]:
    if not isinstance(raw, dict):
        raise DataError(f"{where}: task {task_id}: expected an object, got {type(raw).__name__}")
    for key in ("train", "test"):
        if not isinstance(raw.get(key), list) or not raw[key]:
            raise DataError(f"{where}: task {task_id}: field '{key}' must be a non-empty list")
    train = []
    for i, ex in enumerate(raw["train"]):
        if not isinstance(ex, dict) or "input" not in ex or "output" not in ex:
            raise DataError(f"{where}: task {task_id}, train[{i}]: needs 'input' and 'output'")
        train.append(Example(as_grid(ex["input"], f"{where}: task {task_id}, train[{i}].input"),
                             as_grid(ex["output"], f"{where}: task {task_id}, train[{i}].output")))
    out = []
    for i, ex in enumerate(raw["test"]):
        if not isinstance(ex, dict) or "input" not in ex:
            raise DataError(f"{where}: task {task_id}, test[{i}]: needs 'input'")
        grid = as_grid(ex["input"], f"{where}: task {task_id}, test[{i}].input")
        answer = ex.get("output")
        if answer is None and solutions is not None:
            if i >= len(solutions):
                raise DataError(f"{where}: task {task_id}: missing solution for test[{i}]")
            answer = solutions[i]
        gold = as_grid(answer, f"{where}: task {task_id}, solution of test[{i}]") if answer is not None else None
        tid = task_id if len(raw["test"]) == 1 else f"{task_id}/{i}"
        out.append(ArcTask(tid, tuple(train), grid, gold))
    return out


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"ARC file not found: {path}") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None


def load_arc(challenges: str | Path, solutions: str | Path | None = None, require_solutions: bool = True
             ) -> list[ArcTask]:
    """Tasks from a challenges file (+ solutions file), or from one single-task file."""
    path = Path(challenges)
    data = _read_json(path)
    if isinstance(data, dict) and "train" in data and "test" in data:  # one task per file
        tasks = _parse_task(path.stem, data, None, str(path))
    elif isinstance(data, dict):
        sols = _read_json(Path(solutions)) if solutions else {}
        if not isinstance(sols, dict):
            raise DataError(f"{solutions}: top level must be an object keyed by task id")
        tasks = []
        for task_id in sorted(data):
            s = sols.get(task_id)
            if s is not None and not isinstance(s, list):
                raise DataError(f"{solutions}: task {task_id}: expected a list of output grids")
            tasks += _parse_task(task_id, data[task_id], s, str(path))
    else:
        raise DataError(f"{path}: top level must be an object (task id -> task, or one task)")
    if require_solutions:
        missing = [t.id for t in tasks if t.test_output is None]
        if missing:
            raise DataError(f"{path}: missing solution for {len(missing)} test input(s), e.g. task {missing[0]} "
                            f"(give the solutions file)")
    return tasks
