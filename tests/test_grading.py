import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from seal.config import GraderConfig, JudgeConfig
from seal.grading import (ExactGrader, F1Grader, GradeItem, JudgeError, JudgeGrader, StrictGrader, exact_match,
                          make_grader, normalize_answer, strict_match, token_f1)


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


def test_make_grader_kinds():
    assert isinstance(make_grader(GraderConfig(kind="strict")), StrictGrader)
    assert isinstance(make_grader(GraderConfig(kind="exact")), ExactGrader)
    item = GradeItem("q", "Ouse", "Ouse. Upper Welby was settled in 1810.")
    wrong = GradeItem("q", "Ouse", "Upper Welby is on the banks of the Ouse.")
    assert StrictGrader().grade([item, wrong]) == [True, False]
    assert ExactGrader().grade([item, wrong]) == [True, True]


def test_f1_threshold():
    assert token_f1("born in 1950", "1950") == pytest.approx(0.5)
    assert F1Grader(0.5).grade([GradeItem("q", "1950", "born in 1950")]) == [True]
    assert F1Grader(0.6).grade([GradeItem("q", "1950", "born in 1950")]) == [False]
    assert ExactGrader().grade([GradeItem("q", "1950", "born in 1950")]) == [True]


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
    out = judge(judge_url, monkeypatch).grade([GradeItem("q1", "g1", "a1"), GradeItem("q2", "g2", "a2")])
    assert out == [True, False]
    auth, body = Judge.seen[0]
    assert auth == "Bearer sk-secret-123" and body["model"] == "m"
    assert "g1" in body["messages"][0]["content"] and "a1" in body["messages"][0]["content"]


def test_judge_retries_then_succeeds(judge_url, monkeypatch):
    Judge.script = [(500, ""), (429, ""), (200, b"{malformed"), (200, "maybe"), (200, "yes")]
    assert judge(judge_url, monkeypatch, max_retries=5).grade([GradeItem("q", "g", "a")]) == [True]
    assert len(Judge.seen) == 5


def test_judge_gives_up_as_ungraded(judge_url, monkeypatch):
    Judge.script = [(500, "")] * 3
    g = judge(judge_url, monkeypatch, max_retries=2)
    assert g.grade([GradeItem("q", "g", "a")]) == [None]
    assert g.n_ungraded == 1


def test_judge_timeout_is_ungraded(monkeypatch):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)  # accepts, never answers
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    g = judge(url, monkeypatch, max_retries=1, timeout_s=0.2)
    assert g.grade([GradeItem("q", "g", "a")]) == [None]
    sock.close()


def test_judge_needs_key(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    with pytest.raises(JudgeError, match="NO_SUCH_KEY is not set"):
        JudgeGrader(JudgeConfig(api_key_env="NO_SUCH_KEY"))
