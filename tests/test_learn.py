"""`seal learn` and `seal ask` end to end on the shipped tiny model (reduced), and the demo's documents."""

import json

import pytest
import torch
from typer.testing import CliRunner

from seal.cli import app
from seal.world.tiny_knowledge import ASSET_DIR

pytestmark = pytest.mark.skipif(not (ASSET_DIR / "config.json").exists(), reason="checkpoint not shipped")
runner = CliRunner()
REDUCED = ["learn.samples=2", "questions.n_candidates=4", "inner.epochs=3", "learn.update.epochs=3",
           "generation.max_new_tokens=48", "model.device=cpu"]


def said(result) -> str:
    return " ".join(result.output.split())


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    from seal.world.demo_docs import write_demo_documents

    root = tmp_path_factory.mktemp("learn-input")
    files = write_demo_documents(root, n=3, n_control=2, seed=0)
    (files.docs / "latin.txt").write_bytes(b"caf\xe9 au lait")  # not UTF-8: skipped with its reason
    return files


def learn(files, out, *extra):
    args = ["learn", str(files.docs), "--out", str(out), "--config", "configs/tiny/learn.yaml", "--gold",
            str(files.gold), "--control", str(files.control)]
    for item in REDUCED + list(extra):
        args += ["--set", item]
    return runner.invoke(app, args)


@pytest.fixture(scope="module")
def library(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("learned") / "library"
    result = learn(inputs, out)
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.slow
def test_learn_writes_the_documented_outputs(library, inputs):
    meta = json.loads((library / "learn.json").read_text())
    assert meta["mode"] == "library" and meta["documents"] == 3 and meta["passages"] == 3
    assert [s["path"].endswith("latin.txt") and s["reason"].startswith("not UTF-8") for s in meta["skipped"]] == [True]
    assert meta["outputs"] == {"adapters": "adapters", "router": "router.json"}
    assert sorted(p.name for p in (library / "adapters").iterdir()) == ["doc-0000", "doc-0001", "doc-0002"]
    assert all((library / "adapters" / d / "adapter_config.json").exists() for d in ("doc-0000", "doc-0002"))
    for kind in ("gold", "control"):
        acc = meta["accuracy"][kind]
        assert 0 <= acc["before"] <= 1 and 0 <= acc["after"] <= 1 and acc["n"] > 0
    assert meta["steps"] > 0 and meta["tokens"] > 0 and meta["sequences"] >= 3
    passages = [json.loads(line) for line in (library / "passages.jsonl").read_text().splitlines()]
    assert {p["title"] for p in passages} == {c.title for c in inputs.records}
    for line in (library / "questions.jsonl").read_text().splitlines():
        q = json.loads(line)
        assert {"question", "answer", "before", "after", "correct_before", "correct_after"} <= set(q)
    router = json.loads((library / "router.json").read_text())
    assert router["kind"] == "bm25" and router["names"] == ["doc-0000", "doc-0001", "doc-0002"]
    summary = json.loads((library / "summary.json").read_text())
    assert {c["row"] for c in summary["comparisons"]} == {"gold_after", "control_after"} | (
        {"generated_after"} if meta["accuracy"]["generated"] else set())


@pytest.mark.slow
def test_ask_routes_a_question_to_its_documents_adapter(library, inputs):
    from seal.ask import Learned

    record = inputs.records[1]
    learned = Learned.open(library, device="cpu")
    assert learned.router.route([record.questions[0].question]) == [1]  # the document that names the entity
    out = runner.invoke(app, ["ask", str(library), record.questions[0].question])
    assert out.exit_code == 0 and out.output.strip()
    piped = runner.invoke(app, ["ask", str(library), "--base"], input="\n".join(q.question for q in record.questions))
    assert piped.exit_code == 0 and len(piped.output.strip().splitlines()) == len(record.questions)


@pytest.mark.slow
def test_a_rerun_resumes_and_other_documents_or_settings_are_refused(library, inputs):
    from seal.store import Store

    n = Store(library / "store.sqlite").count_scores()
    again = learn(inputs, library)
    assert again.exit_code == 0 and Store(library / "store.sqlite").count_scores() == n  # nothing recomputed
    changed = learn(inputs, library, "learn.samples=3")
    assert changed.exit_code == 2 and "learn.samples: 2 -> 3" in said(changed)
    edited = inputs.docs / "99-extra.md"
    edited.write_text("# Extra\n\nA new document.\n")
    try:
        refused = learn(inputs, library)
        assert refused.exit_code == 2 and "learned other documents (added:" in said(refused)
        assert "99-extra.md" in said(refused)
    finally:
        edited.unlink()


@pytest.mark.slow
def test_the_merged_adapter_reproduces_the_learned_model(inputs, tmp_path):
    from peft import PeftModel

    from seal.ask import Learned
    from seal.config import ModelConfig
    from seal.model import load_model

    out = tmp_path / "merged"
    result = learn(inputs, out, "learn.mode=merged", "learn.select=all", "learn.save_merged=true")
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "learn.json").read_text())
    assert meta["outputs"] == {"adapter": "adapter", "merged": "merged"}
    base = load_model(ModelConfig(name_or_path="tiny", device="cpu"))
    ids = base.tokenizer("Where was the passage's person born?", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        adapted = PeftModel.from_pretrained(base.model, str(out / "adapter"))(input_ids=ids).logits
        merged = Learned.open(out, device="cpu").loaded.model(input_ids=ids).logits
        plain = load_model(ModelConfig(name_or_path="tiny", device="cpu")).model(input_ids=ids).logits
    assert torch.allclose(adapted, merged, atol=1e-4)  # the peft adapter on disk is the update that was learned
    assert not torch.allclose(plain, merged, atol=1e-3)  # and it did change the model


def test_an_empty_input_is_an_error_before_any_model_loads(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    out = runner.invoke(app, ["learn", str(tmp_path), "--out", str(tmp_path / "out"), "--model", "/no/such/model"])
    assert out.exit_code == 2 and "none of the 1 input files could be read" in said(out)


def test_each_demo_document_holds_exactly_its_records_title_and_text(tmp_path):
    from seal.ingest import collect_paths, read_documents
    from seal.world.demo_docs import write_demo_documents

    files = write_demo_documents(tmp_path, n=5, n_control=2, seed=1)
    docs = read_documents(collect_paths([str(files.docs)]))
    assert sorted(p.suffix for p in files.docs.iterdir()) == [".html", ".md", ".md", ".md", ".pdf"]
    assert not docs.skipped
    got = {d.title: [s.text for s in d.sections] for d in docs.documents}
    assert got == {c.title: [c.text] for c in files.records}
