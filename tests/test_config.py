from pathlib import Path

import pytest

from seal.config import ConfigError, RunConfig, apply_overrides, config_reference, load_config

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_are_the_papers_inner_loop():
    cfg = RunConfig()
    assert (cfg.inner.lora_r, cfg.inner.lora_alpha, cfg.inner.lora_dropout) == (32, 64, 0.0)
    assert (cfg.inner.lr, cfg.inner.epochs, cfg.inner.batch_size, cfg.inner.schedule) == (1e-3, 10, 1, "linear")
    assert cfg.inner.max_length == 2048 and cfg.inner.answer_max_new_tokens == 64
    assert (cfg.restem.sft.lora_r, cfg.restem.sft.lora_alpha, cfg.restem.sft.lr) == (64, 128, 3e-4)
    assert len(cfg.restem.sft.target_modules) == 7
    assert (cfg.generation.temperature, cfg.generation.top_p) == (1.0, 0.95)


def test_unknown_key_suggests_the_right_one(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("inner:\n  lora_rank: 8\n")
    with pytest.raises(ConfigError, match=r"inner\.lora_rank: unknown key \(did you mean 'inner\.lora_r'\?\)"):
        load_config(p)


def test_unknown_section_suggests(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("restm:\n  rounds: 1\n")
    with pytest.raises(ConfigError, match="did you mean 'restem'"):
        load_config(p)


@pytest.mark.parametrize("override, where", [
    ("inner.lr=-1", "inner.lr"),
    ("inner.lora_r=0", "inner.lora_r"),
    ("restem.samples=0", "restem.samples"),
    ("inner.epochs=ten", "inner.epochs"),
    ("inner.engine=fast", "inner.engine"),
    ("generation.top_p=1.5", "generation.top_p"),
    ("cpt.update.lr=0", "cpt.update.lr"),
    ("cpt.update.mode=half", "cpt.update.mode"),
    ("continual.steps=0", "continual.steps"),
    ("ray.num_workers=0", "ray.num_workers"),
    ("ray.num_gpus_per_worker=-1", "ray.num_gpus_per_worker"),
    ("inner.backend=slurm", "inner.backend"),
    ("data.eval.wording=paraphrased", "data.eval.wording"),
    ("questions.hold_out=some", "questions.hold_out"),
])
def test_bad_values_name_the_key(override, where):
    with pytest.raises(ConfigError, match=rf"{where}:"):
        load_config(None, [override])


def test_missing_records_path_is_caught_before_loading():
    with pytest.raises(ConfigError, match="records file does not exist: /nope.json"):
        load_config(None, ["data.eval.kind=records", "data.eval.path=/nope.json"])


def test_heldout_wording_is_for_the_built_in_world_only():
    assert load_config(None, ["data.eval.kind=world", "data.eval.wording=heldout"]).data.eval.wording == "heldout"
    with pytest.raises(ConfigError, match="`wording` applies to the built-in world, not to a source of kind 'squad'"):
        load_config(None, ["data.eval.kind=squad", "data.eval.path=x", "data.eval.wording=heldout"])


def test_rl_passages_may_use_the_reward_wording_but_never_the_held_out_one():
    for wording in ("reward", "mixed", "every"):
        cfg = load_config("configs/tiny/knowledge.yaml", [f"data.train.wording={wording}"])
        assert cfg.data.train.wording == wording
    with pytest.raises(ConfigError, match="data.train.wording: `heldout` would ask the RL passages"):
        load_config("configs/tiny/knowledge.yaml", ["data.train.wording=heldout"])


def test_overrides_parse_yaml_scalars():
    cfg = load_config(None, ["inner.lr=3e-4", "inner.target_modules=[q_proj, k_proj]", "restem.rounds=0",
                             "inner.max_grad_norm=null"])
    assert cfg.inner.lr == 3e-4 and cfg.inner.target_modules == ["q_proj", "k_proj"]
    assert cfg.restem.rounds == 0 and cfg.inner.max_grad_norm is None


def test_override_into_a_scalar_is_an_error():
    with pytest.raises(ConfigError, match="'seed' is not a section"):
        apply_overrides({"seed": 1}, ["seed.x=2"])


def test_config_file_not_mapping(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(p)


@pytest.mark.parametrize("path", sorted((ROOT / "configs").rglob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path, monkeypatch):
    monkeypatch.chdir(ROOT)
    try:
        load_config(path)
    except ConfigError as e:  # configs for real data name files a user provides
        assert "does not exist" in str(e), str(e)


def test_docs_config_reference_is_current():
    assert (ROOT / "docs" / "config.md").read_text() == config_reference(), "run `seal config-docs`"
