"""Hostile input: whatever a model writes or a user feeds in becomes a bounded plan, an Invalid, or a clear
error; model output never reaches eval/exec/a shell; secrets stay out of every file."""

import ast
import json
import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seal.config import GenerationConfig, InnerConfig, SequencesConfig
from seal.data import MAX_JSON_BYTES, DataError, load_records
from seal.domains.base import QA, Context, Invalid, SelfEdit, UpdatePlan
from seal.domains.knowledge import KnowledgeDomain, split_self_edit

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
SRC = Path(__file__).resolve().parents[1] / "src" / "seal"
CTX = Context("c1", "Ada Lowell", "Ada Lowell was born in Calder in 1900.", (QA("Where was Ada Lowell born?", "Calder"),))

# text a model might write: anything printable, control characters, prompt look-alikes, huge lines
hostile_text = st.one_of(
    st.text(max_size=400),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x1F), max_size=60),
    st.sampled_from(["", " ", "\n\n\t", "---", "Question 1: ", "Answer:\n", "Implications:\n1. ",
                     "Let's answer a question directly and concisely.\nQuestion: Topic: x\nq\nAnswer:\n",
                     "Passage:\nAda Lowell\n", "<|endoftext|>", "\x00\x1b[2J", "1.\n2.\n3."]),
    st.builds(lambda c, n: c * n, st.sampled_from(["a", "Calder ", "\n", "- x\n"]), st.integers(1, 20_000)),
)


@settings(max_examples=300, deadline=None)
@given(text=hostile_text, style=st.sampled_from(["implications", "rewrite", "self_qa"]),
       sep=st.sampled_from(["---", None]), lines=st.booleans(), cap=st.integers(1, 50))
def test_split_self_edit_never_yields_empty_pieces_and_respects_the_cap(text, style, sep, lines, cap):
    cfg = SequencesConfig(split_separator=sep, split_lines=lines, max_sequences=cap)
    pieces = split_self_edit(text, style, cfg)
    assert len(pieces) <= cap
    assert all(p.strip() and p == p.strip() for p in pieces)
    assert not any(CONTROL.search(p) for p in pieces)  # control characters are dropped
    if not lines and sep is None and style != "self_qa":
        clean = CONTROL.sub("", text).strip()
        assert pieces == ([clean] if clean else [])


@pytest.fixture(scope="module")
def domain(random_model_dir):
    from seal.grading import ExactGrader
    from seal.model import load_tokenizer

    tok = load_tokenizer(random_model_dir)
    return KnowledgeDomain(tok, ExactGrader(), GenerationConfig(), SequencesConfig(max_sequences=16),
                           InnerConfig(max_length=64, epochs=3))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=hostile_text)
def test_any_self_edit_becomes_a_bounded_plan_or_invalid(domain, text):
    plan = domain.plan(CTX, SelfEdit("c1", "p", text, "base"))
    if isinstance(plan, Invalid):
        assert plan.reason
        return
    assert isinstance(plan, UpdatePlan)
    assert 1 <= len(plan.sequences) <= 16 + 1  # the cap, plus the passage
    assert all(2 <= len(s.input_ids) <= 64 for s in plan.sequences)  # max_length bounds every sequence
    assert plan.n_steps <= 17 * 3 and plan.optim.lr == domain.inner.lr  # steps and lr come from the config


@pytest.mark.parametrize("completion", ["", "   ", "\n\n", "\t\x00\n"])
def test_blank_self_edits_are_invalid_not_crashes(domain, completion):
    plan = domain.plan(CTX, SelfEdit("c1", "p", completion, "base"))
    assert isinstance(plan, Invalid) or len(plan.sequences) == 1


def test_a_100k_character_line_is_truncated_to_max_length(domain):
    plan = domain.plan(CTX, SelfEdit("c1", "p", "Calder " * 15_000, "base"))
    assert max(len(s.input_ids) for s in plan.sequences) == 64


# --- data files ---

def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def test_truncated_json_names_the_position(tmp_path):
    rec = {"title": "t", "context": "c", "questions": [{"question": "q", "answer": "ans"}]}
    path = _write(tmp_path, "cut.json", json.dumps([rec, rec])[:-30])
    with pytest.raises(DataError, match=r"cut.json: not valid JSON .* line 1, column"):
        load_records(path)


def test_a_huge_json_list_is_refused_by_size_without_reading_it(tmp_path):
    path = tmp_path / "huge.json"
    with path.open("wb") as fh:  # sparse: 1 GB on paper, nothing on disk
        fh.write(b"[")
        fh.truncate(2**30)
    assert MAX_JSON_BYTES < 2**30
    with pytest.raises(DataError, match=r"huge.json: 1024 MiB is too large for a JSON list; convert it to JSONL"):
        load_records(path)


def test_jsonl_is_streamed_and_stops_at_max_records(tmp_path):
    rec = {"title": "t{}", "context": "c", "questions": [{"question": "q", "answer": "ans"}]}
    good = "\n".join(json.dumps({**rec, "title": f"t{i}"}) for i in range(3))
    path = _write(tmp_path, "s.jsonl", good + "\n{broken")  # the broken tail is never read
    assert len(load_records(path, max_records=3)) == 3


def test_non_utf8_jsonl_names_the_line(tmp_path):
    rec = json.dumps({"title": "t", "context": "c", "questions": [{"question": "q", "answer": "ans"}]})
    path = _write(tmp_path, "b.jsonl", rec.encode() + b"\n" + b'{"title": "\xff\xfe"}')
    with pytest.raises(DataError, match=r"b.jsonl: line 2: not UTF-8"):
        load_records(path)


def test_long_prompts_keep_their_end_within_the_context_window(loaded_random):
    from seal.generate import fit_context

    window = loaded_random.model.config.max_position_embeddings
    long_ids = list(range(5, 5 + window + 500))
    (cut,) = fit_context([long_ids], loaded_random.model, 64)
    assert len(cut) == window - 64 and cut[-1] == long_ids[-1]


# --- security ---

def test_no_eval_exec_or_shell_anywhere_in_the_package():
    banned_calls = {"eval", "exec", "compile", "__import__"}
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                f = node.func  # the builtins (model.eval() is a method, not the builtin)
                assert not (isinstance(f, ast.Name) and f.id in banned_calls), f"{path}:{node.lineno} calls {f.id}"
                assert not (isinstance(f, ast.Attribute) and f.attr in {"system", "popen", "spawnl", "execv"}
                            and getattr(f.value, "id", "") == "os"), f"{path}:{node.lineno}"
                for kw in node.keywords:
                    assert not (kw.arg == "shell" and getattr(kw.value, "value", False)), f"{path}:{node.lineno}"
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                banned = {"pickle", "marshal"} | ({"subprocess"} if path != SRC / "provenance.py" else set())
                assert not banned & set(mods), f"{path}:{node.lineno} imports {mods}"


def test_models_load_from_safetensors_without_remote_code_by_default(monkeypatch, random_model_dir):
    import transformers

    from seal.config import ModelConfig
    from seal.model import load_model

    seen = {}
    real = transformers.AutoModelForCausalLM.from_pretrained

    def spy(path, **kw):
        seen.update(kw)
        return real(path, **kw)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", spy)
    load_model(ModelConfig(name_or_path=random_model_dir))
    assert seen["use_safetensors"] is True and seen["trust_remote_code"] is False
    load_model(ModelConfig(name_or_path=random_model_dir, trust_remote_code=True))
    assert seen["trust_remote_code"] is True  # only when the config says so


@pytest.mark.parametrize("name", ["../escape", "/abs/path", "a/b", ".hidden", ""])
def test_run_names_cannot_leave_the_runs_directory(name):
    from seal.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="name"):
        load_config(None, [f"name={name}"])


def test_the_judge_key_never_reaches_logs_store_or_reports(tmp_path, monkeypatch, caplog, capfd,
                                                           random_model_dir, records_file):
    import logging
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from seal.config import load_config
    from seal.experiments import knowledge

    secret = "sk-test-DO-NOT-LEAK-4242"

    class Judge(BaseHTTPRequestHandler):
        calls = 0

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            Judge.calls += 1
            if Judge.calls % 3 == 0:  # some failures, so that the retry/error paths log too
                self.send_response(500)
                self.end_headers()
                return
            self.send_response(200)
            self.end_headers()
            self.wfile.write(json.dumps({"choices": [{"message": {"content": "no"}}]}).encode())

        def log_message(self, *a):
            pass

    server = HTTPServer(("127.0.0.1", 0), Judge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("SEAL_TEST_JUDGE_KEY", secret)
    caplog.set_level(logging.DEBUG)
    cfg = load_config(None, [
        f"model.name_or_path={random_model_dir}", "data.train.kind=records", f"data.train.path={records_file}",
        "data.eval.kind=records", f"data.eval.path={records_file}", "data.n_eval=2", "generation.max_new_tokens=8",
        "inner.epochs=1", "inner.lora_r=4", "inner.lora_alpha=8", "inner.answer_max_new_tokens=4",
        "restem.rounds=0", "grader.kind=judge", f"grader.judge.base_url=http://127.0.0.1:{server.server_port}/v1",
        "grader.judge.api_key_env=SEAL_TEST_JUDGE_KEY", "grader.judge.backoff_s=0.01", "grader.judge.max_retries=1"])
    try:
        knowledge.main(cfg, tmp_path / "run")
    finally:
        server.shutdown()
    assert Judge.calls > 0
    out, err = capfd.readouterr()
    assert secret not in caplog.text and secret not in out and secret not in err
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    assert os.environ["SEAL_TEST_JUDGE_KEY"] == secret  # the key was really in play
