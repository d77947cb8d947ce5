"""The run layer's pieces that need no model: typed summaries and their report, metric sinks, resume-safe
keys, Ray's `auto` GPU counts, provenance."""

import json

import pytest

from seal.config import ConfigError, RunConfig, load_config, resume_safe_keys
from seal.results import Heatmap, Row, RoundRow, Summary, Table


def _summary() -> Summary:
    rows = [Row("no_adaptation", 0.1, 0.05, 4, 12, 0, 0, 0), Row("seal_round_1", 0.4, 0.2, 4, 12, 1, 2, 0, best_of=0.5)]
    return Summary("arc", "demo", rows, [RoundRow(1, 0.3, 0.1, 24, 3, 12.5)], title="held-out tasks", unit="tasks",
                   data={"engine": "batched", "configs": {"x": {"n": 1}}},
                   sections=[Table("Updates", ["row", "steps"], [["a", "3"]], note="a note"),
                             Heatmap("merge", ["base", "1"], ["p1"], [[0.5], [None]], xlabel="passage")])


def test_summary_json_round_trip_keeps_the_recipe_keys_at_the_top_level():
    d = _summary().to_json()
    assert d["engine"] == "batched" and d["configs"] == {"x": {"n": 1}}
    assert list(d["rows"][0]) == ["name", "accuracy", "std", "n_passages", "n_questions", "ungraded", "invalid",
                                  "failed"]  # the keys summary.json always had; best_of only where set
    assert d["rows"][1]["best_of"] == 0.5
    again = Summary.from_json(json.loads(json.dumps(d)))
    assert again == _summary()


def test_report_renders_any_summary_without_knowing_its_recipe(tmp_path):
    from seal.report import write_report

    (tmp_path / "summary.json").write_text(json.dumps(_summary().to_json()))
    text = write_report(tmp_path).read_text()
    assert "| row | accuracy | std | best of | tasks | questions | invalid | ungraded |" in text
    assert "| seal_round_1 | 40.0 | 20.0 | 50.0 | 4 | 12 | 2 | 1 |" in text
    assert "## ReST-EM rounds" in text and "## Updates" in text and "a note" in text
    assert "## merge" in text and "| 1 | |" in text.replace("|  |", "| |")  # an empty heatmap cell
    assert (tmp_path / "results.png").stat().st_size > 1000


def test_tensorboard_sink_writes_event_files(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from seal.metrics import Metrics

    m = Metrics.open(load_config(None, ["log.sinks=[tensorboard]"]).log, tmp_path)
    m.scalars({"round/mean_reward": 0.25}, step=1)
    m.scalars({"round/mean_reward": 0.5}, step=2)
    m.close()
    acc = EventAccumulator(str(tmp_path / "logs" / "tensorboard"))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("round/mean_reward")] == [(1, 0.25), (2, 0.5)]


def test_wandb_sink_logs_offline_to_disk(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from seal.metrics import Metrics

    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = load_config(None, ["log.sinks=[wandb]", "log.wandb_mode=offline", f"log.dir={tmp_path / 'w'}"]).log
    m = Metrics.open(cfg, tmp_path / "run", {"seed": 3})
    m.scalars({"table/seal_round_1/accuracy": 0.75}, step=0)
    m.close()
    runs = list((tmp_path / "w" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))  # the run's records, to `wandb sync` later


def test_no_sinks_is_a_no_op_and_a_missing_library_is_a_clear_error(tmp_path, monkeypatch):
    import sys

    from seal.metrics import Metrics

    m = Metrics.open(RunConfig().log, tmp_path)
    m.scalars({"x": 1.0})
    m.close()
    assert not (tmp_path / "logs").exists()
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(ConfigError, match="pip install wandb"):
        Metrics.open(load_config(None, ["log.sinks=[wandb]"]).log, tmp_path)


def test_resume_safety_is_declared_on_the_fields(tmp_path):
    from seal.run import open_run_dir

    assert {"inner.eval_batch_size", "inner.max_adapters_per_batch", "restem.rounds", "log", "name"} <= \
        resume_safe_keys()
    assert "inner.lr" not in resume_safe_keys()
    open_run_dir(tmp_path, load_config(None, ["inner.eval_batch_size=8"]))
    # speed, memory and logging may change on resume ...
    open_run_dir(tmp_path, load_config(None, ["inner.eval_batch_size=32", "log.sinks=[tensorboard]", "name=x"]))
    # ... results-changing keys may not
    with pytest.raises(ConfigError, match=r"inner\.lr: 0\.001 -> 0\.01"):
        open_run_dir(tmp_path, load_config(None, ["inner.lr=0.01"]))


def test_ray_gpu_counts_default_to_auto():
    from seal.backends.ray import RayBackend

    rc = RunConfig().ray
    assert rc.num_gpus_per_worker == "auto" and rc.sft_num_gpus == "auto"
    on_cpus = RayBackend._resolve_auto(rc, gpus=0)
    assert (on_cpus.num_gpus_per_worker, on_cpus.sft_num_gpus) == (0.0, 0.0)
    on_gpus = RayBackend._resolve_auto(rc, gpus=8)
    assert (on_gpus.num_gpus_per_worker, on_gpus.sft_num_gpus) == (1.0, 1.0)
    explicit = RayBackend._resolve_auto(rc.model_copy(update={"num_gpus_per_worker": 0.5}), gpus=8)
    assert explicit.num_gpus_per_worker == 0.5
    with pytest.raises(ConfigError, match=r"ray\.num_gpus_per_worker: must be >= 0 or 'auto'"):
        load_config(None, ["ray.num_gpus_per_worker=-1"])


def test_provenance_names_the_versions_and_the_device():
    from seal.run import provenance

    p = provenance(RunConfig(model={"device": "cpu"}))
    assert p["torch"] and p["transformers"] and p["peft"] and p["python"]
    assert p["device"] == "cpu" and p["dtype"] == "float32"
    assert p["commit"] is None or len(p["commit"].removesuffix("+dirty")) == 40
