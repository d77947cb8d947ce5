"""`seal bench gpu`: the CPU rehearsal runs every stage as a GPU machine would and records the GPU run's
full-size constants; stages are capped and isolated; nothing imports what the GPU machines lack."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from seal.bench import gpu as bench_gpu
from seal.bench.gpu import GpuPlan, run_bench_gpu
from seal.bench.stages import predicted_seconds

SRC = Path(__file__).resolve().parents[1] / "src"
HEAVY = ("trl", "datasets", "pyarrow", "ray")  # never imported by the benchmark
STAGES = ["matmul", "inner:qwen2.5-7b", "memory_estimate", "profile", "gpu_tests", "engines_bf16", "knowledge_e2e",
          "inner:llama-3.2-1b"]
# ends a `python -c` program: which of these modules the process holds
PRINT_LOADED = "\nprint('LOADED=' + json.dumps(sorted(m for m in {names!r} if sys.modules.get(m) is not None)))"


def python(code: str, timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
               SEAL_PROGRESS="0", HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout)


def loaded_modules(proc: subprocess.CompletedProcess) -> list[str]:
    line = next(x for x in proc.stdout.splitlines() if x.startswith("LOADED="))
    return json.loads(line.removeprefix("LOADED="))


@pytest.fixture(scope="session")
def rehearsal(tmp_path_factory):
    """`seal bench gpu --rehearse`, run once in its own process (about a minute on 2 cores)."""
    out = tmp_path_factory.mktemp("bench-gpu") / "rehearsal.json"
    code = ("import json, sys\nfrom seal.cli import app\ntry:\n"
            f"    app(['bench', 'gpu', '--rehearse', '--out', {str(out)!r}])\n"
            "except SystemExit as e:\n    assert not e.code, e.code" + PRINT_LOADED.format(names=HEAVY))
    proc = python(code, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text()), proc


def test_rehearsal_runs_every_stage(rehearsal):
    report, proc = rehearsal
    assert list(report["stages"]) == STAGES
    for name, rec in report["stages"].items():
        assert rec["status"] == "ok", (name, rec.get("error"), rec.get("traceback"))
    assert report["rehearsal"] is True and report["finished"] and report["wall_s"] < report["plan"]["budget_s"]
    assert report["commit"] and report["env"]["torch"] == torch.__version__
    assert "batched K=3" in proc.stdout and "wrote " in proc.stdout


def test_rehearsal_records_the_gpu_runs_full_size_constants(rehearsal):
    """What `seal bench gpu` runs on a GPU, recorded by every rehearsal: if these change, this test says so."""
    report, _ = rehearsal
    gpu = report["gpu_plan"]
    assert gpu["device"] == "cuda" and gpu["dtype"] == "bfloat16" and gpu["layers"] is None
    assert gpu["width_divisor"] == 1 and gpu["rehearsal"] is False
    assert gpu["presets"] == ["qwen2.5-7b", "llama-3.2-1b"] and gpu["ks"] == [32, 8, 128]
    # the paper's inner loop: 15 sequences x 60 tokens, r 32 / alpha 64, lr 1e-3, 10 epochs, batch 1; 5 x 64 tokens
    assert gpu["size"] == {"sequences": 15, "seq_tokens": 60, "questions": 5, "answer_tokens": 64,
                           "prompt_tokens": 40, "epochs": 10, "rank": 32, "alpha": 64, "batch_size": 1, "lr": 1e-3}
    assert gpu["matmul_n"] == 8192 and gpu["budget_s"] <= 300
    qwen, llama = report["presets"]["qwen2.5-7b"], report["presets"]["llama-3.2-1b"]
    assert (qwen["hidden_size"], qwen["intermediate_size"], qwen["num_hidden_layers"], qwen["vocab_size"]) == \
        (3584, 18944, 28, 152064)
    assert (llama["hidden_size"], llama["intermediate_size"], llama["num_hidden_layers"], llama["vocab_size"]) == \
        (2048, 8192, 16, 128256)
    # and the rehearsal itself ran toy sizes: 2-layer presets, K <= 4
    assert report["plan"]["layers"] == 2 and max(report["plan"]["ks"]) <= 4
    assert report["stages"]["inner:qwen2.5-7b"]["result"]["model"]["layers"] == 2


def test_rehearsal_figures(rehearsal):
    report, _ = rehearsal
    st = {name: rec["result"] for name, rec in report["stages"].items()}
    assert st["matmul"]["tflops"] > 0 and st["matmul"]["n"] == report["plan"]["matmul_n"]
    for preset in ("qwen2.5-7b", "llama-3.2-1b"):
        inner = st[f"inner:{preset}"]
        assert inner["size"] == report["plan"]["size"] and inner["flops_per_eval"] > 0
        seq = inner["sequential"]
        assert seq["status"] == "ok" and seq["train_steps"] == 4 and seq["s_per_eval"] > 0
        assert [b["k"] for b in inner["batched"]] == report["plan"]["ks"]
        for b in inner["batched"]:
            assert b["status"] == "ok" and b["train_steps"] == 4 and b["failed_jobs"] == 0
            assert b["ratio"] == pytest.approx(seq["s_per_eval"] / b["s_per_eval"])
            assert {"train_s_per_eval", "answer_s_per_eval", "train_tokens_per_s", "tflops", "peak_mem_mb"} <= set(b)
    mem = st["memory_estimate"]
    assert mem["estimate_k"] >= 1 and mem["adapter_mb_estimated"] > 0 and mem["probe"]["status"] == "ok"
    prof = st["profile"]
    assert prof["k"] == report["plan"]["ks"][0] and prof["top"] and "Name" in prof["table"]
    assert sum(t["share"] for t in prof["top"]) <= 1.0 + 1e-6
    assert all(c["status"] == "passed" for c in st["gpu_tests"]["checks"].values())
    assert set(st["gpu_tests"]["checks"]) == {"engines_agree_bf16", "base_bit_identical_bf16", "export_reload_bf16"}
    eng = st["engines_bf16"]
    assert eng["steps"] == report["plan"]["engines_k"] * 4 and eng["max_loss_diff"] >= 0
    e2e = st["knowledge_e2e"]
    assert [r["name"] for r in e2e["rows"]] == ["no_adaptation", "passage_only", "base_self_edits", "seal_round_1"]
    assert e2e["rounds"][0]["round"] == 1 and "model.dtype=bfloat16" in e2e["overrides"]


def test_rehearsal_imports_nothing_a_gpu_machine_lacks(rehearsal):
    """The rehearsal hides trl, datasets, pyarrow, ray, matplotlib and httpx as a GPU machine lacks them: every
    stage passed without them (above), policy SFT was skipped and said so, and none was imported."""
    report, proc = rehearsal
    assert loaded_modules(proc) == []
    assert set(HEAVY) | {"matplotlib"} <= set(report["env"]["hidden_packages"])
    assert report["env"]["imported_before_hiding"] == []
    e2e = report["stages"]["knowledge_e2e"]["result"]
    assert e2e["policy_sft"].startswith("skipped: trl") and "restem.min_reward=1.0" in e2e["overrides"]
    assert "matplotlib is not installed" in e2e["report"]


def test_bench_modules_import_nothing_heavy():
    """With trl and co. installed (as here), importing the benchmark and the recipe it runs pulls none in."""
    code = ("import json, sys\nimport seal.cli, seal.bench.gpu, seal.bench.stages, seal.bench.checks\n"
            "import seal.experiments.knowledge, seal.inner.batched, seal.inner.sequential"
            + PRINT_LOADED.format(names=HEAVY))
    proc = python(code, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert loaded_modules(proc) == []


def _busy(bench, clock, out):
    out["before_the_cap"] = 1.0
    layer = torch.nn.Linear(4, 4)
    with clock.watching():
        while True:
            layer(torch.zeros(1, 4))


def _fails(bench, clock, out):
    out["half"] = "done"
    raise ValueError("boom")


def _reads_the_file(path):
    def stage(bench, clock, out):
        out["already_on_disk"] = {k: v["status"] for k, v in json.loads(Path(path).read_text())["stages"].items()}
        time.sleep(6.0)  # past the budget: whatever the earlier stages took, `late` finds it spent
    return stage


def test_stages_are_capped_isolated_and_saved_one_by_one(tmp_path, monkeypatch):
    """A stage over its cap is stopped and keeps its figures (`partial`); a failing one is recorded with its
    error; the next still runs, the JSON on disk holding the earlier ones and this one as `running`; what the
    budget cannot fit is skipped."""
    out = tmp_path / "bench.json"
    monkeypatch.setattr(bench_gpu, "stages", lambda plan: [
        ("busy", _busy), ("fails", _fails), ("reads", _reads_the_file(out)), ("late", _fails)])
    plan = GpuPlan(device="cpu", caps=(("busy", 0.3), ("fails", 5), ("reads", 8), ("late", 5)), budget_s=6.0)
    lines = []
    report = run_bench_gpu(plan, out, emit=lines.append)
    st = report["stages"]
    assert st["busy"]["status"] == "partial" and st["busy"]["result"] == {"before_the_cap": 1.0}
    assert 0.3 <= st["busy"]["seconds"] < 2 and "cap" in st["busy"]["note"]
    assert st["fails"]["status"] == "failed" and st["fails"]["error"] == "ValueError: boom"
    assert st["fails"]["result"] == {"half": "done"} and "raise ValueError" in st["fails"]["traceback"]
    assert st["reads"]["status"] == "ok"
    assert st["reads"]["result"]["already_on_disk"] == {"busy": "partial", "fails": "failed", "reads": "running"}
    assert st["late"]["status"] == "skipped" and "budget" in st["late"]["note"]
    assert json.loads(out.read_text()) == json.loads(json.dumps(report, default=str))
    assert len(lines) == 4 and lines[1].startswith("fails") and "boom" in lines[1]
    with pytest.raises(ValueError, match="unknown stage"):
        run_bench_gpu(plan, out, only=["nope"])


def test_a_chunk_is_predicted_from_the_nearest_measured_one():
    rows = [{"k": 32, "status": "ok", "seconds": 40.0}, {"k": 8, "status": "out of memory"}]
    assert predicted_seconds([], 8) is None
    assert predicted_seconds(rows, 8) == 40.0  # a smaller chunk takes no longer
    assert predicted_seconds(rows, 128) == 160.0  # a larger one at most proportionally longer


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_without_cuda_it_points_to_the_rehearsal(tmp_path):
    from typer.testing import CliRunner

    from seal.cli import app

    res = CliRunner().invoke(app, ["bench", "gpu", "--out", str(tmp_path / "x.json")])
    assert res.exit_code == 2 and "--rehearse" in res.output


def test_lines_survive_half_finished_stages():
    """A stage stopped half-way has half its figures: the printed lines say so instead of failing the run."""
    from seal.bench.gpu import stage_line, summary_lines

    stopped = {"status": "partial", "seconds": 150.0, "note": "stage cap of 150 s reached", "result": {
        "sequential": {"status": "ok", "s_per_eval": 24.5},
        "batched": [{"k": 32, "status": "stopped", "note": "the stage cap stopped it after 90 training steps"}]}}
    line = stage_line("inner:qwen2.5-7b", stopped)
    assert "sequential 24.50 s/eval" in line and "K=32 stopped" in line
    assert "not run" in stage_line("inner:llama-3.2-1b", {"status": "partial", "result": {"sequential": {"k": 1}}})
    report = {"stages": {"inner:qwen2.5-7b": stopped}, "targets": {"preset": "qwen2.5-7b", "k": 32,
                                                                    "ratio_at_least_5": {"value": None, "met": None}}}
    lines = summary_lines(report)
    assert any("batched K=32 stopped" in x for x in lines) and "ratio_at_least_5 not measured" in lines[-1]
