"""ReST-EM's M-step: the policy SFT really changes the policy, and only the way a merged LoRA can."""

import pytest
import torch

from seal.config import SFTConfig


@pytest.mark.parametrize("mode", ["lora", "full"])
def test_policy_sft_changes_the_weights_and_saves_a_loadable_checkpoint(loaded_random, tmp_path, mode):
    from transformers import AutoModelForCausalLM

    from seal.outer.sft import sft_policy

    before = {k: v.clone() for k, v in loaded_random.model.state_dict().items()}
    examples = [("Let's read the following passage.\nAda Lowell\n", "Ada Lowell was born in Calder.")] * 4
    cfg = SFTConfig(mode=mode, lora_r=4, lora_alpha=8, lr=1e-2, epochs=2, batch_size=2, grad_accum=1)
    out = sft_policy(loaded_random, examples, cfg, tmp_path / "round-1", seed=0)
    after = AutoModelForCausalLM.from_pretrained(out).state_dict()
    assert set(after) <= set(before) and not any("lora" in k for k in after)  # merged: no adapter left
    changed = [k for k in after if not torch.equal(after[k], before[k])]
    assert changed, "the policy SFT left every weight unchanged"
    if mode == "lora":  # a merged LoRA on the projections changes only the projections it targets
        assert all(k.endswith("proj.weight") for k in changed)
    assert not (tmp_path / "round-1.trainer").exists() and (out / "tokenizer.json").exists()
