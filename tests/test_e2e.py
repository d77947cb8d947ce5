"""End to end on a random-init model: one ReST-EM round + the table; resume after a kill -9."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import yaml

from seal.config import load_config
from seal.experiments import knowledge

pytestmark = pytest.mark.slow


def write_config(tmp_path, model_dir, records, **over):
    cfg = {
        "seed": 3, "name": "e2e",
        "model": {"name_or_path": model_dir},
        "data": {"train": {"kind": "records", "path": records}, "eval": {"kind": "records", "path": records},
                 "n_eval": 2},
        "generation": {"max_new_tokens": 12, "batch_size": 3},
        "inner": {"lora_r": 4, "lora_alpha": 8, "epochs": 2, "answer_max_new_tokens": 6},
        "restem": {"rounds": 1, "n_passages": 3, "samples": 2, "repeats": 2,
                   "sft": {"lora_r": 4, "lora_alpha": 8, "epochs": 1, "grad_accum": 1, "lr": 1e-3}},
        "eval": {"passage_repeated": True},
    }
    for k, v in over.items():
        node = cfg
        *parents, last = k.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = v
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_one_round_and_table(tmp_path, random_model_dir, records_file):
    cfg = load_config(write_config(tmp_path, random_model_dir, records_file))
    run_dir = tmp_path / "run"
    summary = knowledge.main(cfg, run_dir).to_json()
    names = [r["name"] for r in summary["rows"]]
    assert names == ["no_adaptation", "passage_only", "passage_repeated", "base_self_edits", "seal_round_1"]
    for r in summary["rows"]:
        assert r["n_passages"] == 2 and r["n_questions"] == 4 and 0.0 <= r["accuracy"] <= 1.0
    (rnd,) = summary["rounds"]
    assert rnd["round"] == 1 and rnd["n_scored"] == 3 * 2 * 2
    assert set(rnd) >= {"round", "mean_reward", "mean_baseline", "n_scored", "seconds"}
    assert json.loads((run_dir / "summary.json").read_text()) == summary
    assert (run_dir / "config.yaml").exists() and (run_dir / "report.md").exists()
    assert (run_dir / "results.png").stat().st_size > 1000
    ckpt = run_dir / "checkpoints" / "round-1"  # trained, or the policy unchanged when nothing was kept
    assert (ckpt / "model.safetensors").exists() and (ckpt / "tokenizer.json").exists()
    # training passages are recorded and disjoint from the eval passages
    con = sqlite3.connect(run_dir / "store.sqlite")
    train_ids = {r[0] for r in con.execute("SELECT DISTINCT context_id FROM scores WHERE phase='train'")}
    eval_ids = {r[0] for r in con.execute("SELECT DISTINCT context_id FROM scores WHERE phase='eval/no_adaptation'")}
    assert len(train_ids) == 3 and not train_ids & eval_ids
    # rerunning recomputes nothing and reproduces the table
    n_before = con.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
    again = knowledge.main(cfg, run_dir).to_json()
    assert again["rows"] == summary["rows"]
    assert con.execute("SELECT COUNT(*) FROM scores").fetchone()[0] == n_before


def test_resume_after_kill_equals_uninterrupted(tmp_path, random_model_dir, records_file):
    cfg_path = write_config(tmp_path, random_model_dir, records_file, **{"inner.engine": "sequential",
                                                                         "restem.n_passages": 4})
    cfg = load_config(cfg_path)
    reference = knowledge.main(cfg, tmp_path / "ref").to_json()

    run_dir = tmp_path / "killed"
    env = dict(os.environ, SEAL_PROGRESS="0")
    proc = subprocess.Popen([sys.executable, "-m", "seal.cli", "run", str(cfg_path), "--run-dir", str(run_dir)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = run_dir / "store.sqlite"
    deadline = time.time() + 300
    while time.time() < deadline:
        time.sleep(0.05)
        try:
            n = sqlite3.connect(db).execute("SELECT COUNT(*) FROM scores WHERE phase='train'").fetchone()[0]
        except sqlite3.Error:
            continue
        if n >= 5:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "summary.json").exists(), "the run finished before it could be killed"
    resumed = knowledge.main(cfg, run_dir).to_json()
    assert resumed["rows"] == reference["rows"]
    strip = lambda rs: [{k: v for k, v in r.items() if k != "seconds"} for r in rs]
    assert strip(resumed["rounds"]) == strip(reference["rounds"])
    con = sqlite3.connect(db)
    dup = con.execute("SELECT COUNT(*) FROM (SELECT phase, round, context_id, sample, repeat, COUNT(*) c FROM scores "
                      "GROUP BY 1,2,3,4,5 HAVING c > 1)").fetchone()[0]
    assert dup == 0
    ref_n = sqlite3.connect(tmp_path / "ref" / "store.sqlite").execute("SELECT COUNT(*) FROM scores").fetchone()[0]
    assert con.execute("SELECT COUNT(*) FROM scores").fetchone()[0] == ref_n


def test_resume_refuses_a_different_config(tmp_path, random_model_dir, records_file):
    from seal.config import ConfigError
    from seal.run import open_run_dir

    cfg = load_config(write_config(tmp_path, random_model_dir, records_file))
    open_run_dir(tmp_path / "r", cfg)
    changed = load_config(write_config(tmp_path, random_model_dir, records_file, **{"inner.lr": 0.01}))
    with pytest.raises(ConfigError, match=r"inner.lr: 0.001 -> 0.01"):
        open_run_dir(tmp_path / "r", changed)
