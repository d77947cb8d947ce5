"""`finetune`: the lasting update of continued pretraining and continual self-edits."""

import pytest
import torch

from seal.domains.base import LoraSpec, OptimSpec, TrainSequence, UpdateSpec
from seal.inner.update import finetune, train_steps


def _seqs(tok, texts):
    out = []
    for t in texts:
        ids = tok(t)["input_ids"]
        out.append(TrainSequence(tuple(ids), (1,) * len(ids)))
    return out


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


TEXTS = ["Ada Lowell was born in Calder in 1900.", "Bram Nash works as a teacher in the city of Harwick.",
         "Clara Oakley studied at the school of Portree.", "The river of Zennor is located in the country."]


def test_lora_update_is_merged_into_plain_weights(loaded_random):
    before = _weights(loaded_random.model)
    spec = UpdateSpec("lora", LoraSpec(4, 8), OptimSpec(lr=1e-2, epochs=3, batch_size=2), grad_accum=1)
    res = finetune(loaded_random, _seqs(loaded_random.tokenizer, TEXTS), spec, seed=0)
    after = _weights(loaded_random.model)
    assert set(after) == set(before)  # no lora_A/lora_B left: a plain model of the same architecture
    assert len(res.step_losses) == spec.n_steps(4) == 6
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed and all(("q_proj" in k or "v_proj" in k) for k in changed)  # peft's defaults for Llama
    assert not any(p.requires_grad for p in loaded_random.model.parameters())


def test_full_update_learns_and_gradient_accumulation_matches_a_big_batch(random_model_dir):
    from seal.config import ModelConfig
    from seal.model import load_model

    def run(batch_size, accum):
        loaded = load_model(ModelConfig(name_or_path=random_model_dir))
        spec = UpdateSpec("full", optim=OptimSpec(lr=1e-3, epochs=4, batch_size=batch_size), grad_accum=accum)
        res = finetune(loaded, _seqs(loaded.tokenizer, TEXTS), spec, seed=1)
        return res.step_losses, _weights(loaded.model)

    big_losses, big = run(4, 1)
    acc_losses, acc = run(1, 4)
    assert len(big_losses) == len(acc_losses) == 4
    assert big_losses[-1] < big_losses[0]
    assert acc_losses == pytest.approx(big_losses, rel=1e-4)
    assert all(torch.allclose(big[k], acc[k], atol=1e-5) for k in big)


def test_nonfinite_lora_update_leaves_the_base_untouched(loaded_random):
    before = _weights(loaded_random.model)
    # an infinite learning rate: AdamW's first step makes the adapter's weights non-finite. (A finite one such as
    # 1e30 no longer does it reliably: with transformers 5.25 the overflowing norms give uniform, finite logits.)
    spec = UpdateSpec("lora", LoraSpec(4, 8), OptimSpec(lr=float("inf"), epochs=5, max_grad_norm=None))
    with pytest.raises(FloatingPointError, match="non-finite loss"):
        finetune(loaded_random, _seqs(loaded_random.tokenizer, TEXTS), spec, seed=0)
    after = _weights(loaded_random.model)
    assert set(after) == set(before) and all(torch.equal(before[k], after[k]) for k in before)


def test_train_steps_refuses_a_model_with_nothing_to_train(loaded_random):
    with pytest.raises(ValueError, match="no trainable parameters"):
        train_steps(loaded_random.model, _seqs(loaded_random.tokenizer, TEXTS[:1]), OptimSpec(), 1, 0)


def test_update_spec_from_config():
    from seal.config import UpdateConfig

    spec = UpdateConfig(mode="full", lr=2e-5, epochs=2, batch_size=4, grad_accum=2).update_spec()
    assert spec.mode == "full" and spec.optim.lr == 2e-5 and spec.grad_accum == 2
    assert spec.n_steps(9) == 2 * 2  # 3 micro-batches -> 2 steps per epoch


def test_full_update_of_bf16_weights_keeps_fp32_master_weights(random_model_dir):
    from seal.config import ModelConfig
    from seal.model import load_model

    loaded = load_model(ModelConfig(name_or_path=random_model_dir, dtype="bfloat16"))
    before = _weights(loaded.model)
    spec = UpdateSpec("full", optim=OptimSpec(lr=2e-5, epochs=8, batch_size=4, max_grad_norm=None))
    finetune(loaded, _seqs(loaded.tokenizer, TEXTS), spec, seed=0)
    w = "model.layers.0.mlp.down_proj.weight"
    after = loaded.model.state_dict()[w]
    assert after.dtype == torch.bfloat16  # cast back
    # 8 AdamW steps of ~2e-5 each: single bf16 steps would mostly round away (weights ~0.02, bf16 spacing
    # ~1e-4); accumulated in fp32 they move most weights
    assert (after != before[w]).float().mean() > 0.5
