"""`seal bench inner`: both engines measured on the same plans, one JSON object per K; `seal bench arc`: both
step layouts on the same ARC jobs."""

import json

import pytest
import torch

from seal.bench.inner import BenchSize, bench_inner, make_jobs, preset_model


def test_bench_prints_one_json_object_per_k(random_model_dir):
    lines = []
    size = BenchSize(sequences=2, seq_tokens=8, questions=2, answer_tokens=3, prompt_tokens=5, epochs=1, rank=2,
                     alpha=4)
    rows = bench_inner(random_model_dir, [1, 3], size, sequential_jobs=1, device="cpu", emit=lines.append,
                       as_json=True)
    parsed = [json.loads(line) for line in lines]
    assert [p["k"] for p in parsed] == [1, 3] and parsed == rows
    for p in parsed:
        assert {"k", "sequential_s_per_eval", "batched_s_per_eval", "ratio", "peak_mem_mb"} <= set(p)
        assert p["ratio"] == p["sequential_s_per_eval"] / p["batched_s_per_eval"] and p["peak_mem_mb"] > 0
    text = []
    bench_inner(random_model_dir, [2], size, sequential_jobs=1, device="cpu", emit=text.append)
    assert text[0].startswith("K=   2") and "ratio" in text[0]


def test_bench_jobs_have_the_requested_size():
    jobs = make_jobs(3, BenchSize(sequences=4, seq_tokens=7, questions=2, epochs=5, rank=8, alpha=16), vocab=50)
    assert len(jobs) == 3 and len({j.seed for j in jobs}) == 3
    for j in jobs:
        assert len(j.plan.sequences) == 4 and all(len(s.input_ids) == 7 for s in j.plan.sequences)
        assert j.plan.optim.epochs == 5 and j.plan.lora.r == 8 and len(j.probes) == 2


def test_presets_have_the_published_shapes():
    qwen = preset_model("qwen2.5-7b", 1, torch.device("meta"), torch.bfloat16)
    assert qwen.config.hidden_size == 3584 and qwen.config.num_key_value_heads == 4
    assert qwen.model.layers[0].mlp.gate_proj.weight.shape == (18944, 3584)
    llama = preset_model("llama-3.2-1b", None, torch.device("meta"), torch.bfloat16)
    assert len(llama.model.layers) == 16 and llama.lm_head.weight.shape == (128256, 2048)


def test_preset_model_is_random_in_its_dtype_and_cut_for_rehearsals():
    """Built directly in bf16 (no fp32 copy), seeded, with the usual init; toy widths keep the head layout."""
    model = preset_model("qwen2.5-7b", 1, "cpu", torch.bfloat16, width_divisor=16)
    cfg = model.config
    assert (cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size) == (3584 // 16, 18944 // 16, 152064 // 16)
    assert (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.num_hidden_layers) == (28, 4, 1)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert torch.all(model.model.layers[0].self_attn.q_proj.bias == 0) and torch.all(model.model.norm.weight == 1)
    assert 0.015 < model.lm_head.weight.float().std().item() < 0.025
    assert torch.isfinite(model(input_ids=torch.tensor([[1, 2, 3]])).logits).all()
    again = preset_model("qwen2.5-7b", 1, "cpu", torch.bfloat16, width_divisor=16)
    assert torch.equal(again.lm_head.weight, model.lm_head.weight)


def test_bench_arc_times_both_settings_on_the_same_jobs():
    from typer.testing import CliRunner

    from seal.cli import app
    from seal.world.tiny_arc import ASSET_DIR

    if not (ASSET_DIR / "config.json").exists():
        pytest.skip("tiny ARC checkpoint not shipped")
    out = CliRunner().invoke(app, ["bench", "arc", "--jobs", "2", "--k", "2"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert any(line.startswith("one padded batch a step") for line in lines)
    assert any(line.startswith("micro-batches by length") for line in lines)
    verdict = next(line for line in lines if line.startswith("speedup "))
    assert "identical answers on 2 of 2 jobs" in verdict  # two jobs at moderate lr: the same adapters
