import json
import random
from dataclasses import replace

import pytest

from conftest import make_records
from seal.data import (DataError, context_id, golds_fingerprint, load_records, paper_eval_split, save_records,
                       select_passages, squad_to_records)
from seal.domains.base import QA


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
        {"question": "Q?", "answers": [{"text": "Ans", "answer_start": 0}]}]}]}]}
    recs = squad_to_records(str(write(tmp_path, "nested.json", json.dumps(nested))))
    assert recs[0].questions[0].question == "Q?" and recs[0].questions[0].answer == "Ans"


def test_squad_parquet(tmp_path):
    import datasets

    ds = datasets.Dataset.from_list([{"id": "1", "title": "T", "context": "C", "question": "Q?",
                                      "answers": {"text": ["Ans"], "answer_start": [0]}}])
    path = tmp_path / "v.parquet"
    ds.to_parquet(str(path))
    assert squad_to_records(str(path))[0].questions[0].answer == "Ans"


def test_several_gold_answers_load_save_and_load_again(tmp_path):
    recs = make_records(2)
    recs[0]["questions"][0]["answers"] = ["Calder", "the town of Calder", "Calder"]  # `answer` is also "Calder"
    recs[1]["questions"][1] = {"question": "When?", "answers": ["1907", "in 1907"]}  # `answers` alone
    ctxs = load_records(write(tmp_path, "r.json", json.dumps(recs)))
    assert ctxs[0].questions[0].answers == ("Calder", "the town of Calder")
    assert ctxs[1].questions[1].answer == "1907" and ctxs[1].questions[1].answers == ("1907", "in 1907")
    assert ctxs[0].questions[1].answers == (recs[0]["questions"][1]["answer"],)  # one gold, as before
    out = tmp_path / "saved.json"
    save_records(ctxs, out)
    saved = json.loads(out.read_text())
    assert saved[0]["questions"][0] == {"question": recs[0]["questions"][0]["question"], "answer": "Calder",
                                        "answers": ["Calder", "the town of Calder"]}
    assert "answers" not in saved[0]["questions"][1]  # a single gold is written as before
    assert load_records(out) == ctxs


@pytest.mark.parametrize("question, message", [
    ({"question": "Q?", "answer": "The"}, r"record 1, question 0 \('Q\?'\): the gold answer 'The' is empty once "
                                          r"normalised"),
    ({"question": "Q?", "answer": "x", "answers": ["x", "a ."]}, r"record 1, question 0 \('Q\?'\): the gold answer "
                                                                  r"'a \.' is empty"),
    ({"question": "Q?", "answers": []}, r"record 1, field 'questions\[0\].answers': expected a non-empty list"),
    ({"question": "Q?", "answers": "x"}, r"record 1, field 'questions\[0\].answers': expected a non-empty list"),
    ({"question": "Q?", "answers": ["x", 3]}, r"record 1, field 'questions\[0\].answers\[1\]': expected a string"),
    ({"question": "Q?"}, r"record 1: missing field 'questions\[0\].answer' \(or a list"),
])
def test_gold_answer_errors_name_record_and_question(tmp_path, question, message):
    recs = make_records(2)
    recs[1]["questions"][0] = question
    path = write(tmp_path, "bad.json", json.dumps(recs))
    with pytest.raises(DataError, match=f"{path}: {message}"):
        load_records(path)


def squad_row(i, context, question, answers):
    return {"id": str(i), "title": "Gateway_Arch", "context": context, "question": question,
            "answers": {"text": answers, "answer_start": [0] * len(answers)}}


def test_squad_keeps_every_distinct_gold(tmp_path):
    rows = [squad_row(0, "C1", "Where?", ["St. Louis", "St. Louis, Missouri", "St. Louis", "the"]),
            squad_row(1, "C1", "When?", ["1965", "1965", "1965"]),
            squad_row(2, "C2", "Who?", ["Eero Saarinen", "Saarinen"])]
    recs = squad_to_records(str(write(tmp_path, "flat.jsonl", "\n".join(json.dumps(r) for r in rows))))
    assert [[q.answers for q in r.questions] for r in recs] == [
        [("St. Louis", "St. Louis, Missouri"), ("1965",)], [("Eero Saarinen", "Saarinen")]]
    nested = {"data": [{"title": "T", "paragraphs": [{"context": "C", "qas": [
        {"question": "Q?", "answers": [{"text": "U.S. Army", "answer_start": 0}, {"text": "Army", "answer_start": 5}]}
    ]}]}]}
    recs = squad_to_records(str(write(tmp_path, "nested.json", json.dumps(nested))))
    assert recs[0].questions[0].answers == ("U.S. Army", "Army")


def test_squad_question_without_a_usable_gold_is_skipped_and_named(tmp_path, caplog):
    rows = [squad_row(0, "C1", "Which?", ["The", "a"]), squad_row(1, "C1", "Who?", ["Eero Saarinen"])]
    path = write(tmp_path, "flat.jsonl", "\n".join(json.dumps(r) for r in rows))
    with caplog.at_level("WARNING", logger="seal"):
        recs = squad_to_records(str(path))
    assert [q.question for q in recs[0].questions] == ["Who?"]
    assert "skipped 1 questions with no usable gold answer: row 0 ('Which?'" in caplog.text


def test_golds_fingerprint():
    ctxs = load_records_list(3)
    fp = golds_fingerprint(ctxs)
    assert len(fp) == 64 and fp == golds_fingerprint(list(reversed(ctxs)))  # order of contexts does not matter
    q = ctxs[0].questions[0]
    more = replace(ctxs[0], questions=(QA(q.question, q.answer, ("another gold",)), *ctxs[0].questions[1:]))
    other = replace(ctxs[0], questions=(QA(q.question, "another gold"), *ctxs[0].questions[1:]))
    swapped = replace(ctxs[0], questions=tuple(reversed(ctxs[0].questions)))
    fps = {golds_fingerprint([c, *ctxs[1:]]) for c in (more, other, swapped)}
    assert len(fps) == 3 and fp not in fps
