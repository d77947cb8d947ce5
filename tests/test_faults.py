"""Crash consistency: a run killed with SIGKILL at any point, then rerun, ends equal to an uninterrupted run."""

import os
import sqlite3
import subprocess
import sys

import pytest
import yaml

from seal.config import load_config
from seal.world.tiny_knowledge import ASSET_DIR

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (ASSET_DIR / "config.json").exists(), reason="checkpoint not shipped")]

CFG = {
    "seed": 5, "name": "crash", "model": {"name_or_path": "tiny", "device": "cpu"},
    "data": {"n_eval": 5, "eval_selection": "seeded"},
    "generation": {"max_new_tokens": 32, "batch_size": 2},
    "inner": {"lora_r": 8, "lora_alpha": 16, "lr": 1e-2, "epochs": 10, "answer_max_new_tokens": 8,
              "max_adapters_per_batch": 2,
              "target_modules": ["gate_proj", "up_proj", "down_proj"]},
    "restem": {"rounds": 1, "n_passages": 6, "samples": 2, "repeats": 1,
               "sft": {"lora_r": 8, "lora_alpha": 16, "epochs": 1, "grad_accum": 1, "lr": 1e-3}},
    "eval": {"samples": 1},
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    from seal.experiments import knowledge

    root = tmp_path_factory.mktemp("crash")
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(CFG))
    summary = knowledge.main(load_config(path), root / "ref").to_json()
    assert any(r["accuracy"] > 0 for r in summary["rows"])  # equal tables are not equal zeros
    return path, summary, root / "ref"


def _contents(run_dir):
    con = sqlite3.connect(run_dir / "store.sqlite")
    scores = sorted(con.execute("SELECT phase, round, context_id, sample, repeat, correct, answers, invalid, failed "
                                "FROM scores"))
    edits = sorted(con.execute("SELECT phase, round, context_id, sample, completion FROM self_edits"))
    return scores, edits


@pytest.mark.parametrize("point", ["generate:2", "inner:3", "sft:1", "store:4"])
def test_kill_9_then_rerun_equals_an_uninterrupted_run(tmp_path, reference, point):
    from seal.experiments import knowledge

    cfg_path, ref_summary, ref_dir = reference
    run_dir = tmp_path / "run"
    env = dict(os.environ, SEAL_PROGRESS="0", SEAL_CRASH_AT=point)
    proc = subprocess.run([sys.executable, "-m", "seal.cli", "run", str(cfg_path), "--run-dir", str(run_dir)],
                          env=env, capture_output=True, timeout=600)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]  # it was killed, not finished
    assert not (run_dir / "summary.json").exists()
    resumed = knowledge.main(load_config(cfg_path), run_dir).to_json()
    assert resumed["rows"] == ref_summary["rows"]
    strip = lambda rounds: [{k: v for k, v in r.items() if k != "seconds"} for r in rounds]
    assert strip(resumed["rounds"]) == strip(ref_summary["rounds"])
    assert _contents(run_dir) == _contents(ref_dir)  # every score and self-edit, once, identical
