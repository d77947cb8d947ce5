"""bfloat16, seal's dtype on CUDA, exercised on CPU: the engines agree within the stated tolerances, a
knowledge round runs end to end, the policy SFT writes a bf16 checkpoint."""

import json

import pytest
import torch
from safetensors.torch import load_file

from seal.bench.checks import (LOGPROB_TOL, LOSS_TOL, MEAN_LOGPROB_TOL, check_engines_agree, compare_engines)
from seal.config import ModelConfig, SFTConfig, load_config
from seal.model import load_model
from test_e2e import write_config
from test_engines import jobs_with_unequal_plans

pytestmark = pytest.mark.usefixtures("one_thread")


def test_batched_equals_sequential_in_bf16(random_qwen_dir):
    """Unequal plans (lr, epochs, batch size, schedule, loss masks) on a Qwen2 model with its own tokenizer:
    per-step losses, and the log-probabilities of the training tokens and of the sequential engine's greedy
    answers under both adapted models, within the tolerances of `seal.bench.checks` (where they are justified).
    Greedy answers themselves may differ in bf16 once a near-tie rounds the other way; their log-probabilities
    may not."""
    loaded = load_model(ModelConfig(name_or_path=random_qwen_dir, dtype="bfloat16", device="cpu"))
    assert loaded.model.dtype == torch.bfloat16
    jobs = jobs_with_unequal_plans(loaded.tokenizer)
    diff = compare_engines(loaded, jobs)
    assert diff.steps == sum(j.plan.n_steps for j in jobs) == 18
    assert diff.max_loss_diff <= LOSS_TOL
    assert diff.max_logprob_diff <= LOGPROB_TOL and diff.mean_logprob_diff <= MEAN_LOGPROB_TOL
    assert diff.answer_tokens > 0 and diff.max_answer_logprob_diff <= LOGPROB_TOL
    assert diff.max_loss_diff > 0  # bf16 really ran: in fp32 the engines agree to 1e-6


def test_bf16_tolerances_catch_a_wrong_learning_rate(monkeypatch):
    """The comparison is sharp enough to see a real bug: the batched engine's lr 1.3x too high fails it."""
    import seal.inner.batched as batched

    right = batched.lr_factor
    monkeypatch.setattr(batched, "lr_factor", lambda *a, **kw: 1.3 * right(*a, **kw))
    with pytest.raises(AssertionError, match="differ"):
        check_engines_agree("cpu")


def test_knowledge_round_in_bf16(tmp_path, random_qwen_dir, records_file):
    from seal.experiments import knowledge

    cfg = load_config(write_config(tmp_path, random_qwen_dir, records_file, **{
        "model.dtype": "bfloat16", "model.device": "cpu", "restem.repeats": 1, "restem.n_passages": 2,
        "eval.passage_repeated": False}))
    summary = knowledge.main(cfg, tmp_path / "run").to_json()
    assert [r["name"] for r in summary["rows"]] == ["no_adaptation", "passage_only", "base_self_edits",
                                                    "seal_round_1"]
    for r in summary["rows"]:
        assert r["n_questions"] == 4 and r["failed"] == 0 and 0.0 <= r["accuracy"] <= 1.0
    assert summary["rounds"][0]["n_scored"] == 2 * 2
    ckpt = tmp_path / "run" / "checkpoints" / "round-1"
    assert {t.dtype for t in load_file(ckpt / "model.safetensors").values()} == {torch.bfloat16}


def test_policy_sft_in_bf16(tmp_path, random_qwen_dir):
    """The M-step on a bf16 policy: trl trains a LoRA on the bf16 weights, the merge writes a bf16 checkpoint
    whose adapted projections changed and which holds no adapter tensors."""
    from seal.outer.sft import sft_policy

    policy = load_model(ModelConfig(name_or_path=random_qwen_dir, dtype="bfloat16", device="cpu"))
    before = {k: v.clone() for k, v in policy.model.state_dict().items()}
    examples = [("Ada Lowell was born in", " Calder in 1907."), ("Who founded the company?", " Bram Nash.")]
    out = sft_policy(policy, examples, SFTConfig(lora_r=4, lora_alpha=8, epochs=1, grad_accum=1, lr=1e-2),
                     tmp_path / "round-1", seed=0)
    tensors = load_file(out / "model.safetensors")
    assert {t.dtype for t in tensors.values()} == {torch.bfloat16}
    assert not any("lora" in k for k in tensors)
    changed = {k for k, v in tensors.items() if k in before and not torch.equal(v, before[k])}
    assert changed and all(k.endswith("proj.weight") for k in changed)
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
