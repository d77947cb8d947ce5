"""The shipped tiny model: a normal HF directory that has learnt the world's formats and facts."""

import pytest

from seal.config import load_config
from seal.world.build import ASSET_DIR, ensure_tiny_model

pytestmark = pytest.mark.skipif(not (ASSET_DIR / "config.json").exists(), reason="checkpoint not shipped")


@pytest.fixture(scope="module")
def tiny():
    from seal.config import ModelConfig
    from seal.model import load_model

    return load_model(ModelConfig(name_or_path="tiny", device="cpu"))


def test_tiny_resolves_to_the_shipped_checkpoint(tmp_path):
    assert ensure_tiny_model(str(tmp_path)) == ASSET_DIR
    assert not any(tmp_path.iterdir())  # nothing was built


def test_tiny_recalls_pretraining_facts_and_not_held_out_ones(tiny):
    from seal.world.build import closed_book_accuracy
    from seal.world.generator import default_world

    world = default_world()
    accuracy = lambda ctxs: closed_book_accuracy(tiny.model, tiny.tokenizer, ctxs)

    known = [c for c in world.split("pretrain") if c.payload.qa][:16]
    assert accuracy(known) > 0.6  # the build's probe: 0.96 on 48 entities
    assert accuracy(world.split("eval")[:16]) < 0.2  # measured 0.03 on 40 held-out passages


def test_tiny_config_validates():
    cfg = load_config("configs/tiny/knowledge.yaml")
    assert cfg.model.name_or_path == "tiny" and cfg.data.eval.kind == "world" and cfg.eval.passage_repeated


@pytest.mark.slow
def test_reduced_demo_learns_passages(tmp_path):
    """The demo's recipe on 12 held-out passages without RL: adapting teaches the tiny model facts it did not
    know, and its own self-edits (which copy the passage's values) teach more than the passage does (strict
    grading; measured on 48 passages: no adaptation 2.6, passage only 5.3, passage repeated to the self-edits'
    step count 11.2, base self-edits 13.4; this reduced run at seeds 0, 1, 2: no adaptation 1.7/5.0/0.0, passage
    only 5.8/14.2/7.1, passage repeated 11.7/11.7/14.2, base self-edits 17.9/26.7/10.8)."""
    from seal.experiments import knowledge

    cfg = load_config("configs/tiny/knowledge.yaml", ["restem.rounds=0", "data.n_eval=12", "eval.samples=1"])
    summary = knowledge.main(cfg, tmp_path / "run")
    acc = {r["name"]: r["accuracy"] for r in summary["rows"]}
    assert set(acc) == {"no_adaptation", "passage_only", "passage_repeated", "base_self_edits"}
    assert acc["no_adaptation"] <= 0.10
    assert acc["passage_only"] >= acc["no_adaptation"]
    assert acc["passage_repeated"] >= acc["no_adaptation"] + 0.05
    assert acc["base_self_edits"] >= acc["no_adaptation"] + 0.08
