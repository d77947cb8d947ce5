import doctest
import json
import re
import string
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import seal.grading
from seal.config import GraderConfig, JudgeConfig
from seal.grading import (ExactGrader, F1Grader, GradeItem, JudgeError, JudgeGrader, StrictGrader, exact_match,
                          judge_prompt, make_grader, normalize_answer, strict_match, token_f1)


def test_normalize():
    assert normalize_answer("  The Quick, brown FOX!  ") == "quick brown fox"


@pytest.mark.parametrize("answer, gold, ok", [
    ("Paris", "paris", True), ("It is in Paris, France.", "Paris", True), ("Parisian", "Paris", False),
    ("the 1950s", "1950", False), ("", "x", False), ("The Eiffel Tower", "eiffel tower", True),
])
def test_exact(answer, gold, ok):
    assert exact_match(answer, gold) is ok


@pytest.mark.parametrize("answer, gold, ok", [
    (" Vera Paxton.", "Vera Paxton", True), ("Vera Paxton. Upper Welby is led by Vera Paxton.", "Vera Paxton", True),
    ("the Eiffel Tower\nWho built it?", "eiffel tower", True), ("1856\n", "1856", True),
    # reciting the passage is not answering, even when the gold is in it
    (" Quinn Chandler was born in the year 1943.", "Quinn Chandler", False), ("It is in Paris.", "Paris", False),
    ("Paris, France", "Paris", False), ("", "x", False), ("x", "", False),
])
def test_strict(answer, gold, ok):
    assert strict_match(answer, gold) is ok


@pytest.mark.parametrize("answer, gold, ok", [
    # golds holding periods that do not end a sentence: abbreviations, initials
    ("St. Louis", "St. Louis", True), ("U.S. Army", "U.S. Army", True), ("C. J. Anderson", "C. J. Anderson", True),
    ("the U.S. Army.", "U.S. Army", True), ("Dr. Smith", "Dr. Smith", True),
    ("Dr. Smith. He was born in Ohio.", "Dr. Smith", True), ("St. Louis. It lies on the river.", "St. Louis", True),
    ("1889. It was built for the fair.", "1889", True), ("1889! It was built", "1889", True),
    ('"Paris." It is the capital.', "Paris", True), ("Paris?\nMaybe.", "Paris", True),
    # the text the model writes after the answer still does not count, nor does an answer that does not start
    # with the gold, even when the gold is in it or the answer holds abbreviations of its own
    ("Dr. Smith, a surgeon.", "Dr. Smith", False), ("St. Louis", "Louis", False),
    ("Louis. St. Louis.", "St. Louis", False), ("It was built in 1889. 1889.", "1889", False),
    ("U.S. Army", "U.S. Army Corps", False), ("U.S", "U.S. Army", False),
    ("The tower was designed by C. J. Anderson in 1889.", "C. J. Anderson", False),
])
def test_strict_sentence_ends_and_abbreviations(answer, gold, ok):
    assert strict_match(answer, gold) is ok


def test_every_grader_takes_the_best_gold():
    golds = ("Denver Broncos", "The Broncos", "Broncos")
    items = [GradeItem("q", golds, "Broncos. They won."), GradeItem("q", golds, "the denver broncos"),
             GradeItem("q", golds, "Carolina Panthers")]
    assert StrictGrader().grade(items) == [True, True, False]
    assert ExactGrader().grade(items) == [True, True, False]
    assert F1Grader(1.0).grade(items) == [False, True, False]  # "broncos they won" vs "broncos": F1 0.5
    assert F1Grader().f1_scores(items) == pytest.approx([0.5, 1.0, 0.0])
    with pytest.raises(ValueError, match="golds must be a non-empty tuple"):
        GradeItem("q", "Broncos", "a")


# --- SQuAD v1.1's official metric, written out from its published definition (evaluate-v1.1.py) ---------------


def official_normalize(s: str) -> str:
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def official_em(prediction: str, ground_truths: tuple[str, ...]) -> bool:
    return max(official_normalize(prediction) == official_normalize(g) for g in ground_truths)


def official_f1(prediction: str, ground_truths: tuple[str, ...]) -> float:
    def f1(pred: str, gold: str) -> float:
        p, g = official_normalize(pred).split(), official_normalize(gold).split()
        same = sum((Counter(p) & Counter(g)).values())
        if same == 0:
            return 0.0
        precision, recall = same / len(p), same / len(g)
        return 2 * precision * recall / (precision + recall)

    return max(f1(prediction, g) for g in ground_truths)


@pytest.mark.parametrize("answer, golds, em, f1", [
    # normalised: "eiffel tower" == "eiffel tower"
    ("The Eiffel Tower!", ("eiffel tower",), True, 1.0),
    # pred [cat, sat] (the article goes), gold [cat, sat, on, mat]: 2 shared, P 2/2, R 2/4, F1 2*1*.5/1.5 = 2/3
    ("the cat sat", ("cat sat on the mat",), False, 2 / 3),
    # vs "1889": P 1/2, R 1/1, F1 2/3; vs "in the year 1889" = [in, year, 1889]: P 2/2, R 2/3, F1 0.8; best 0.8
    ("in 1889", ("1889", "in the year 1889"), False, 0.8),
    # repeated tokens count once per match: pred [x, x, y], gold [y, y]: 1 shared, P 1/3, R 1/2, F1 (1/3)/(5/6) = 0.4
    ("x x y", ("y y",), False, 0.4),
    # no shared token: 0, whatever the lengths
    ("Carolina Panthers", ("Denver Broncos", "Broncos"), False, 0.0),
    # best over golds: "Broncos" equals the third gold exactly
    ("Broncos", ("Denver Broncos", "The Denver Broncos", "Broncos"), True, 1.0),
    # punctuation inside a word is dropped, joining it: "u.s." -> "us"
    ("U.S. Army", ("US army",), True, 1.0),
])
def test_official_squad_em_and_f1(answer, golds, em, f1):
    item = GradeItem("q", golds, answer)
    assert official_em(answer, golds) is em and official_f1(answer, golds) == pytest.approx(f1)
    assert StrictGrader().grade([item]) == [em]  # no sentence end in these answers: strict is the official EM
    assert F1Grader().f1_scores([item]) == [pytest.approx(f1)]


# --- properties ------------------------------------------------------------------------------------------------

WORDS = ["St.", "Louis", "U.S.", "Army", "C.", "J.", "Anderson", "Dr.", "Smith", "the", "a", "An", "1889", "born",
         "in", "Paris,", "it", "was", '"quoted"', "(x)", "e.g.", "Mr", "!", "?", "...", "café", "New\nYork", "-",
         "it's", "Ouse.", "Why?", "x", "year"]
text = st.lists(st.sampled_from(WORDS), min_size=1, max_size=8).map(" ".join)
gold_text = text.filter(lambda g: normalize_answer(g) != "")
golds_st = st.lists(gold_text, min_size=1, max_size=3).map(tuple)


@given(golds=golds_st, data=st.data(), prefix=st.sampled_from(["", "The ", " ", "a ", "  "]),
       suffix=st.sampled_from(["", ".", "!", " ", '?"', "..."]), upper=st.booleans())
def test_an_answer_equal_to_a_gold_is_correct(golds, data, prefix, suffix, upper):
    gold = data.draw(st.sampled_from(golds))
    answer = prefix + (gold.upper() if upper else gold) + suffix
    assume(normalize_answer(answer) == normalize_answer(gold))
    item = GradeItem("q", golds, answer)
    for grader in (ExactGrader(), StrictGrader(), F1Grader(1.0)):
        assert grader.grade([item]) == [True], type(grader).__name__


@given(golds=golds_st, data=st.data(), end=st.sampled_from([". ", ".\n", "! ", "? ", "\n", '." ', ".  ", "?! "]),
       sentence=text)
def test_strict_ignores_what_follows_the_answer(golds, data, end, sentence):
    gold = data.draw(st.sampled_from(golds))
    assert StrictGrader().grade([GradeItem("q", golds, gold + end + sentence)]) == [True]


def starts_with_a_gold(answer: str, golds: tuple[str, ...]) -> bool:
    a = normalize_answer(answer)
    return any(a == normalize_answer(g) or a.startswith(normalize_answer(g) + " ") for g in golds)


@given(golds=golds_st, before=text, after=text, data=st.data())
def test_strict_rejects_a_recital_that_does_not_start_with_the_gold(golds, before, after, data):
    passage = f"{before} {golds[0]} {after}"  # the gold is in the passage, after other text
    answer = passage[: data.draw(st.integers(1, len(passage)))]
    assume(not starts_with_a_gold(answer, golds))
    assert StrictGrader().grade([GradeItem("q", golds, answer)]) == [False]


@given(answer=text.filter(lambda a: not seal.grading._SENTENCE_END.search(a.strip())), golds=golds_st)
def test_strict_is_the_official_em_on_a_one_sentence_answer(answer, golds):
    assert StrictGrader().grade([GradeItem("q", golds, answer)]) == [official_em(answer, golds)]


@given(answer=text, golds=golds_st)
def test_f1_is_the_official_f1(answer, golds):
    assert F1Grader().f1_scores([GradeItem("q", golds, answer)]) == [pytest.approx(official_f1(answer, golds))]


def test_judge_prompt_shows_every_gold():
    one = judge_prompt(GradeItem("Who?", ("Ada",), "Ada Lowell"))
    assert "Gold answer: Ada\n" in one and "fully convey the gold answer without" in one
    many = judge_prompt(GradeItem("Where?", ("St. Louis", "Saint Louis"), "Missouri"))
    assert "- St. Louis\n- Saint Louis\n" in many and "convey one of the gold answers" in many


def test_doctests():
    assert doctest.testmod(seal.grading).failed == 0


def test_make_grader_kinds():
    assert isinstance(make_grader(GraderConfig(kind="strict")), StrictGrader)
    assert isinstance(make_grader(GraderConfig(kind="exact")), ExactGrader)
    item = GradeItem("q", ("Ouse",), "Ouse. Upper Welby was settled in 1810.")
    wrong = GradeItem("q", ("Ouse",), "Upper Welby is on the banks of the Ouse.")
    assert StrictGrader().grade([item, wrong]) == [True, False]
    assert ExactGrader().grade([item, wrong]) == [True, True]


def test_f1_threshold():
    assert token_f1("born in 1950", "1950") == pytest.approx(0.5)
    assert F1Grader(0.5).grade([GradeItem("q", ("1950",), "born in 1950")]) == [True]
    assert F1Grader(0.6).grade([GradeItem("q", ("1950",), "born in 1950")]) == [False]
    assert ExactGrader().grade([GradeItem("q", ("1950",), "born in 1950")]) == [True]


class Judge(BaseHTTPRequestHandler):
    script: list = []  # (status, body) per request, consumed in order
    seen: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Judge.seen.append((self.headers.get("Authorization"), body))
        status, reply = Judge.script.pop(0) if Judge.script else (200, "yes")
        self.send_response(status)
        self.end_headers()
        if status == 200:
            payload = reply if isinstance(reply, bytes) else json.dumps(
                {"choices": [{"message": {"content": reply}}]}).encode()
            self.wfile.write(payload)

    def log_message(self, *a):
        pass


@pytest.fixture
def judge_url():
    server = HTTPServer(("127.0.0.1", 0), Judge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Judge.script, Judge.seen = [], []
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()


def judge(url, monkeypatch, **kw):
    monkeypatch.setenv("JUDGE_KEY", "sk-secret-123")
    return JudgeGrader(JudgeConfig(base_url=url, model="m", api_key_env="JUDGE_KEY", backoff_s=0.01,
                                   concurrency=1, **kw))


def test_judge_yes_no_and_key_header(judge_url, monkeypatch):
    Judge.script = [(200, "Yes."), (200, "no")]
    out = judge(judge_url, monkeypatch).grade([GradeItem("q1", ("g1",), "a1"), GradeItem("q2", ("g2",), "a2")])
    assert out == [True, False]
    auth, body = Judge.seen[0]
    assert auth == "Bearer sk-secret-123" and body["model"] == "m"
    assert "g1" in body["messages"][0]["content"] and "a1" in body["messages"][0]["content"]


def test_judge_is_shown_every_gold(judge_url, monkeypatch):
    judge(judge_url, monkeypatch).grade([GradeItem("q", ("St. Louis", "Saint Louis"), "Missouri")])
    content = Judge.seen[0][1]["messages"][0]["content"]
    assert "St. Louis" in content and "Saint Louis" in content


def test_judge_retries_then_succeeds(judge_url, monkeypatch):
    Judge.script = [(500, ""), (429, ""), (200, b"{malformed"), (200, "maybe"), (200, "yes")]
    assert judge(judge_url, monkeypatch, max_retries=5).grade([GradeItem("q", ("g",), "a")]) == [True]
    assert len(Judge.seen) == 5


def test_judge_gives_up_as_ungraded(judge_url, monkeypatch):
    Judge.script = [(500, "")] * 3
    g = judge(judge_url, monkeypatch, max_retries=2)
    assert g.grade([GradeItem("q", ("g",), "a")]) == [None]
    assert g.n_ungraded == 1


def test_judge_timeout_is_ungraded(monkeypatch):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)  # accepts, never answers
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    g = judge(url, monkeypatch, max_retries=1, timeout_s=0.2)
    assert g.grade([GradeItem("q", ("g",), "a")]) == [None]
    sock.close()


def test_judge_needs_key(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    with pytest.raises(JudgeError, match="NO_SUCH_KEY is not set"):
        JudgeGrader(JudgeConfig(api_key_env="NO_SUCH_KEY"))
