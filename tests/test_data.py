import json
import random

import pytest

from conftest import make_records
from seal.data import DataError, context_id, load_records, paper_eval_split, select_passages, squad_to_records


def write(tmp_path, name, content):
    p = tmp_path / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return p


def test_json_and_jsonl_load_the_same(tmp_path):
    recs = make_records(3)
    a = load_records(write(tmp_path, "a.json", json.dumps(recs)))
    b = load_records(write(tmp_path, "b.jsonl", "\n".join(json.dumps(r) for r in recs)))
    assert a == b and len(a) == 3
    assert a[0].questions[0].answer == recs[0]["questions"][0]["answer"]
    assert a[0].id == context_id(recs[0]["title"], recs[0]["context"])


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r.pop("context"), "record 1: missing field 'context'"),
    (lambda r: r.update(context=""), "record 1, field 'context': is empty"),
    (lambda r: r.update(title=7), "record 1, field 'title': expected a string, got int"),
    (lambda r: r.update(questions=[]), "record 1, field 'questions': no questions"),
    (lambda r: r.update(questions="q"), "record 1, field 'questions': expected a list"),
    (lambda r: r["questions"][1].pop("answer"), "record 1: missing field 'questions\\[1\\].answer'"),
    (lambda r: r["questions"][0].update(answer=3), "record 1, field 'questions\\[0\\].answer': expected a string"),
])
def test_errors_name_file_record_and_field(tmp_path, mutate, message):
    recs = make_records(3)
    mutate(recs[1])
    path = write(tmp_path, "bad.json", json.dumps(recs))
    with pytest.raises(DataError, match=f"{path}: {message}"):
        load_records(path)


def test_jsonl_errors_name_the_line(tmp_path):
    lines = [json.dumps(r) for r in make_records(2)] + ['{"title": "x", "context": "y"']
    path = write(tmp_path, "bad.jsonl", "\n".join(lines))
    with pytest.raises(DataError, match=r"bad.jsonl: line 3: not valid JSON"):
        load_records(path)


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ('"a string"', "top level must be a list of records, got str"),
    (b'[{"title": "\xff"}]', "not UTF-8"),
    ("[]", "no records"),
])
def test_bad_files(tmp_path, content, message):
    with pytest.raises(DataError, match=message):
        load_records(write(tmp_path, "f.json", content))


def test_missing_file():
    with pytest.raises(DataError, match="records file not found: /no/such.json"):
        load_records("/no/such.json")


def test_duplicates_are_skipped(tmp_path):
    recs = make_records(2)
    out = load_records(write(tmp_path, "d.json", json.dumps(recs + [recs[0]])))
    assert len(out) == 2


def test_paper_split_is_seed_42_shuffle():
    recs = load_records_list(10)
    expected = list(recs)
    random.seed(42)
    random.shuffle(expected)
    assert paper_eval_split(recs, 4) == expected[:4]


def load_records_list(n):
    from seal.data import parse_record

    return [parse_record(r, f"r{i}") for i, r in enumerate(make_records(n))]


def test_select_passages_is_disjoint_and_seeded():
    recs = load_records_list(6)
    held = {recs[0].id, recs[1].id}
    a = select_passages(recs, 3, seed=5, exclude=held)
    assert a == select_passages(recs, 3, seed=5, exclude=held)
    assert not held & {c.id for c in a}
    with pytest.raises(DataError, match="only 4 are available"):
        select_passages(recs, 5, seed=0, exclude=held)


def test_squad_flat_and_nested(tmp_path):
    flat = [{"id": str(i), "title": "Super_Bowl", "context": ctx, "question": q, "answers": {"text": [a, "x"],
             "answer_start": [0, 1]}}
            for i, (ctx, q, a) in enumerate([("C1", "Q1?", "A1"), ("C1", "Q2?", "A2"), ("C2", "Q3?", "A3")])]
    p = write(tmp_path, "flat.jsonl", "\n".join(json.dumps(r) for r in flat))
    recs = squad_to_records(str(p))
    assert [(r.title, r.text, [q.answer for q in r.questions]) for r in recs] == \
        [("Super Bowl", "C1", ["A1", "A2"]), ("Super Bowl", "C2", ["A3"])]
    nested = {"data": [{"title": "T", "paragraphs": [{"context": "C", "qas": [
        {"question": "Q?", "answers": [{"text": "A", "answer_start": 0}]}]}]}]}
    recs = squad_to_records(str(write(tmp_path, "nested.json", json.dumps(nested))))
    assert recs[0].questions[0].question == "Q?" and recs[0].questions[0].answer == "A"


def test_squad_parquet(tmp_path):
    import datasets

    ds = datasets.Dataset.from_list([{"id": "1", "title": "T", "context": "C", "question": "Q?",
                                      "answers": {"text": ["A"], "answer_start": [0]}}])
    path = tmp_path / "v.parquet"
    ds.to_parquet(str(path))
    assert squad_to_records(str(path))[0].questions[0].answer == "A"
