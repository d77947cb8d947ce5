"""Passage records: reading, validating, converting SQuAD, and the paper's splits.

A record is `{"title": str, "context": str, "questions": [{"question": str, "answer": str}, ...]}`, optionally
with `"completions": [str, ...]` (teacher self-edits). Files are a JSON list of records or JSONL, one per line.
Every error names the file, the record and the field.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any, Iterable, Iterator

from seal.domains.base import QA, Context
from seal.progress import log

MAX_JSON_BYTES = 512 * 2**20  # larger files must be JSONL, which is streamed


class DataError(ValueError):
    pass


def context_id(title: str, context: str) -> str:
    """Stable id of a passage: the store keys scores by it across runs and resumes."""
    return hashlib.sha1(f"{title}\n{context}".encode()).hexdigest()[:16]


def _need_str(value: Any, where: str, field: str, *, empty_ok: bool = False) -> str:
    if not isinstance(value, str):
        raise DataError(f"{where}, field '{field}': expected a string, got {type(value).__name__}")
    if not empty_ok and not value.strip():
        raise DataError(f"{where}, field '{field}': is empty")
    return value


def parse_record(rec: Any, where: str, *, questions_required: bool = True) -> Context:
    """Validate one record; `where` is '<file>: record <i>'. With `questions_required=False` (documents for
    `seal learn`) the 'questions' field may be missing or empty; questions that are given are still checked."""
    if not isinstance(rec, dict):
        raise DataError(f"{where}: expected an object, got {type(rec).__name__}")
    for key in ("title", "context", "questions") if questions_required else ("title", "context"):
        if key not in rec:
            raise DataError(f"{where}: missing field '{key}'")
    title = _need_str(rec["title"], where, "title", empty_ok=True).strip()
    text = _need_str(rec["context"], where, "context")
    qs = rec.get("questions", [])
    if not isinstance(qs, list):
        raise DataError(f"{where}, field 'questions': expected a list, got {type(qs).__name__}")
    if not qs and questions_required:
        raise DataError(f"{where}, field 'questions': no questions")
    questions = []
    for j, q in enumerate(qs):
        if not isinstance(q, dict):
            raise DataError(f"{where}, field 'questions[{j}]': expected an object, got {type(q).__name__}")
        for key in ("question", "answer"):
            if key not in q:
                raise DataError(f"{where}: missing field 'questions[{j}].{key}'")
        questions.append(QA(_need_str(q["question"], where, f"questions[{j}].question"),
                            _need_str(q["answer"], where, f"questions[{j}].answer")))
    completions = rec.get("completions", [])
    if not isinstance(completions, list):
        raise DataError(f"{where}, field 'completions': expected a list, got {type(completions).__name__}")
    comps = tuple(_need_str(c, where, f"completions[{j}]", empty_ok=True) for j, c in enumerate(completions))
    return Context(id=context_id(title, text), title=title, text=text, questions=tuple(questions),
                   completions=comps)


def _iter_jsonl(path: Path) -> Iterator[tuple[str, Any]]:
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{path}: line {lineno}: not UTF-8 ({e.reason} at byte {e.start})") from None
            if not line.strip():
                continue
            try:
                yield f"{path}: line {lineno}", json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}: line {lineno}: not valid JSON ({e.msg})") from None


def _iter_json(path: Path) -> Iterator[tuple[str, Any]]:
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise DataError(f"{path}: {size / 2**20:.0f} MiB is too large for a JSON list; convert it to JSONL "
                        f"(one record per line), which is streamed")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 ({e.reason} at byte {e.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise DataError(f"{path}: top level must be a list of records, got {type(data).__name__}")
    for i, rec in enumerate(data):
        yield f"{path}: record {i}", rec


def load_records(path: str | Path, max_records: int | None = None, *, questions_required: bool = True
                 ) -> list[Context]:
    """Read and validate a JSON or JSONL records file. Duplicate passages are skipped with a count.
    `questions_required` is passed to `parse_record`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"records file not found: {path}")
    with path.open("rb") as fh:
        head = fh.read(64).lstrip()
    rows: Iterable = _iter_jsonl(path) if path.suffix == ".jsonl" or head[:1] == b"{" else _iter_json(path)
    out: list[Context] = []
    seen: set[str] = set()
    dups = 0
    for where, rec in rows:
        ctx = parse_record(rec, where, questions_required=questions_required)
        if ctx.id in seen:
            dups += 1
            continue
        seen.add(ctx.id)
        out.append(ctx)
        if max_records and len(out) >= max_records:
            break
    if dups:
        log.warning("%s: skipped %d duplicate passages", path, dups)
    if not out:
        raise DataError(f"{path}: no records")
    return out


def save_records(contexts: Iterable[Context], path: str | Path) -> None:
    rows = [{"title": c.title, "context": c.text,
             "questions": [{"question": q.question, "answer": q.answer} for q in c.questions],
             **({"completions": list(c.completions)} if c.completions else {})} for c in contexts]
    Path(path).write_text(json.dumps(rows, indent=1, ensure_ascii=False))


# --- SQuAD ---------------------------------------------------------------------------------------------


def _squad_rows(path: str, split: str) -> Iterable[dict]:
    """Flat SQuAD rows (`title, context, question, answers`) from a hub id, a local dir or a data file."""
    import datasets

    p = Path(path)
    if p.is_file():
        if p.suffix in (".json", ".jsonl"):
            head = json.loads(p.read_text()) if p.suffix == ".json" else None
            if isinstance(head, dict) and "data" in head:  # the original nested SQuAD v1.1 file
                for article in head["data"]:
                    for para in article["paragraphs"]:
                        for qa in para["qas"]:
                            yield {"title": article["title"], "context": para["context"],
                                   "question": qa["question"], "answers": {"text": [a["text"] for a in qa["answers"]]}}
                return
            ds = datasets.load_dataset("json", data_files=str(p), split="train")
        elif p.suffix == ".parquet":
            ds = datasets.load_dataset("parquet", data_files=str(p), split="train")
        else:
            raise DataError(f"{p}: unsupported SQuAD file type (use .json, .jsonl or .parquet)")
    else:
        ds = datasets.load_dataset(path, split=split)
    yield from ds


def squad_to_records(path: str, split: str = "validation") -> list[Context]:
    """One record per unique passage, questions in order of appearance, the first gold answer each."""
    by_passage: dict[tuple[str, str], list[QA]] = {}
    for i, row in enumerate(_squad_rows(path, split)):
        try:
            key = (row["title"].replace("_", " "), row["context"])
            answers = row["answers"]["text"]
            question = row["question"].strip()
        except (KeyError, TypeError, AttributeError) as e:
            raise DataError(f"{path} [{split}]: row {i}: not a SQuAD row (missing {e})") from None
        if answers and question:
            by_passage.setdefault(key, []).append(QA(question, answers[0]))
    return [Context(id=context_id(t, c), title=t, text=c, questions=tuple(qs))
            for (t, c), qs in by_passage.items() if qs]


# --- splits --------------------------------------------------------------------------------------------


def paper_eval_split(records: list[Context], n: int, seed: int = 42) -> list[Context]:
    """The paper's eval split: `random.seed(42); random.shuffle(records)`, first n."""
    shuffled = list(records)
    random.Random(seed).shuffle(shuffled)
    return shuffled[:n]


def select_passages(records: list[Context], n: int, seed: int, exclude: Iterable[str] = ()) -> list[Context]:
    """`n` passages drawn with `seed` from those whose id is not in `exclude` (disjoint train/eval)."""
    excluded = set(exclude)
    pool = [r for r in records if r.id not in excluded]
    if n > len(pool):
        raise DataError(f"asked for {n} passages but only {len(pool)} are available after excluding eval passages")
    return random.Random(seed).sample(pool, n)
