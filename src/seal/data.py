"""Passage records: reading, validating, converting SQuAD, and the paper's splits.

A record is `{"title": str, "context": str, "questions": [{"question": str, "answer": str}, ...]}`, optionally
with `"completions": [str, ...]` (teacher self-edits). A question may list every gold answer its annotators gave
in `"answers": [str, ...]`; `"answer"` is then optional and, when given, the first. Files are a JSON list of
records or JSONL, one per line. Every error names the file, the record and the field.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any, Iterable, Iterator

from seal.domains.base import QA, Context
from seal.text import normalize_answer
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
    questions = [_parse_question(q, where, j) for j, q in enumerate(qs)]
    completions = rec.get("completions", [])
    if not isinstance(completions, list):
        raise DataError(f"{where}, field 'completions': expected a list, got {type(completions).__name__}")
    comps = tuple(_need_str(c, where, f"completions[{j}]", empty_ok=True) for j, c in enumerate(completions))
    return Context(id=context_id(title, text), title=title, text=text, questions=tuple(questions),
                   completions=comps)


def _parse_question(q: Any, where: str, j: int) -> QA:
    """One `{"question", "answer" and/or "answers"}` entry; every gold must survive SQuAD's normalisation."""
    if not isinstance(q, dict):
        raise DataError(f"{where}, field 'questions[{j}]': expected an object, got {type(q).__name__}")
    if "question" not in q:
        raise DataError(f"{where}: missing field 'questions[{j}].question'")
    if "answer" not in q and "answers" not in q:
        raise DataError(f"{where}: missing field 'questions[{j}].answer' (or a list 'questions[{j}].answers')")
    question = _need_str(q["question"], where, f"questions[{j}].question")
    golds = [_need_str(q["answer"], where, f"questions[{j}].answer")] if "answer" in q else []
    if "answers" in q:
        answers = q["answers"]
        if not isinstance(answers, list) or not answers:
            raise DataError(f"{where}, field 'questions[{j}].answers': expected a non-empty list of strings")
        golds += [_need_str(a, where, f"questions[{j}].answers[{k}]") for k, a in enumerate(answers)]
    for gold in golds:
        if not normalize_answer(gold):
            raise DataError(f"{where}, question {j} ({question!r}): the gold answer {gold!r} is empty once "
                            f"normalised (SQuAD drops case, punctuation and the articles a/an/the), so no grader "
                            f"can match it; give the answer's content words")
    return QA(question, golds[0], tuple(golds[1:]))


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


def _question_record(q: QA) -> dict:
    """`answer` is always the first gold (readers of the old format keep working); `answers` lists them all."""
    return {"question": q.question, "answer": q.answer, **({"answers": list(q.answers)} if q.alternatives else {})}


def save_records(contexts: Iterable[Context], path: str | Path) -> None:
    rows = [{"title": c.title, "context": c.text, "questions": [_question_record(q) for q in c.questions],
             **({"completions": list(c.completions)} if c.completions else {})} for c in contexts]
    Path(path).write_text(json.dumps(rows, indent=1, ensure_ascii=False))


def golds_fingerprint(contexts: Iterable[Context]) -> str:
    """A sha256 over every context's id, questions (in order) and gold answers (in order); the order of the
    contexts does not matter. A run's store keeps it, so a resume never mixes gradings against other golds."""
    per_context = sorted(json.dumps([c.id, [[q.question, list(q.answers)] for q in c.questions]],
                                    ensure_ascii=False) for c in contexts)
    return hashlib.sha256("\n".join(per_context).encode()).hexdigest()


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
    """One record per unique passage, questions in order of appearance, each with every distinct gold answer its
    annotators gave (in their order; the official metric takes the best over them). A gold answer that is empty
    once normalised ("The", "A") can never be matched: it is dropped, and a question left with none is skipped,
    both with a warning (SQuAD is not the user's to fix; a records file with such a gold is an error)."""
    by_passage: dict[tuple[str, str], list[QA]] = {}
    dropped, skipped = 0, []
    for i, row in enumerate(_squad_rows(path, split)):
        try:
            key = (row["title"].replace("_", " "), row["context"])
            answers = [a for a in row["answers"]["text"] if isinstance(a, str)]
            question = row["question"].strip()
        except (KeyError, TypeError, AttributeError) as e:
            raise DataError(f"{path} [{split}]: row {i}: not a SQuAD row (missing {e})") from None
        if not answers or not question:
            continue
        distinct = list(dict.fromkeys(answers))
        golds = [a for a in distinct if normalize_answer(a)]
        if not golds:
            skipped.append(f"row {i} ({question!r}: {answers!r})")
            continue
        dropped += len(distinct) - len(golds)
        by_passage.setdefault(key, []).append(QA(question, golds[0], tuple(golds[1:])))
    if dropped:
        log.warning("%s [%s]: dropped %d gold answers that are empty once normalised (SQuAD drops case, "
                    "punctuation and the articles a/an/the)", path, split, dropped)
    if skipped:
        log.warning("%s [%s]: skipped %d questions with no usable gold answer: %s", path, split, len(skipped),
                    "; ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else ""))
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
