"""The Ray backend on a local 2-CPU cluster: same scores as the local backend, and a killed worker loses nothing."""

import os
import signal
import sys

import pytest
import torch

from seal.config import ConfigError, load_config
from seal.world.tiny_knowledge import ASSET_DIR

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (ASSET_DIR / "config.json").exists(), reason="checkpoint not shipped")]

SMALL = ["model.name_or_path=tiny", "model.device=cpu", "data.n_eval=3", "data.eval_selection=seeded",
         "generation.max_new_tokens=40", "generation.batch_size=4", "inner.lora_r=8", "inner.lora_alpha=16",
         "inner.lr=1e-2", "inner.epochs=10", "inner.answer_max_new_tokens=8", "inner.max_adapters_per_batch=2",
         "inner.target_modules=[q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]",
         "restem.rounds=1", "restem.n_passages=3",
         "restem.samples=2", "restem.repeats=1", "restem.sft.lora_r=8", "restem.sft.lora_alpha=16",
         "restem.sft.epochs=1", "restem.sft.grad_accum=1", "restem.sft.lr=1e-3", "eval.samples=1",
         "ray.num_workers=2", "ray.num_cpus_per_worker=1"]  # GPU counts `auto`: none on this CPU cluster


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"TOKENIZERS_PARALLELISM": "false", "SEAL_PROGRESS": "0"}})
    yield
    ray.shutdown()


def _all_scores(run_dir):
    from seal.store import Store

    store = Store(run_dir / "store.sqlite")
    return {(k.phase, k.round, k.context_id, k.sample, k.repeat): (s.correct, s.answers)
            for ph in store.phases() for k, s in store.scores(ph).items()}


def test_ray_round_gives_the_local_backend_scores(cluster, tmp_path):
    from seal.experiments import knowledge

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' thread count: same float reductions, same samples
    try:
        local = knowledge.main(load_config(None, SMALL), tmp_path / "local").to_json()
    finally:
        torch.set_num_threads(threads)
    remote = knowledge.main(load_config(None, SMALL + ["inner.backend=ray"]), tmp_path / "ray").to_json()
    assert remote["backend"] == "ray" and local["backend"] == "local"
    assert remote["rows"] == local["rows"]
    assert [r["mean_reward"] for r in remote["rounds"]] == [r["mean_reward"] for r in local["rounds"]]
    assert _all_scores(tmp_path / "ray") == _all_scores(tmp_path / "local")
    assert any(r["accuracy"] > 0 for r in local["rows"])  # the comparison is not between zeros


def test_killed_workers_are_replaced_and_the_store_ends_complete(cluster, tmp_path):
    from seal.backends.ray import RayBackend
    from seal.domains.knowledge import KnowledgeDomain
    from seal.experiments.knowledge import load_passages
    from seal.run import Item, score_self_edits
    from seal.store import Store

    cfg = load_config(None, SMALL + ["inner.backend=ray", "inner.max_adapters_per_batch=1",
                                     "inner.engine=sequential"])
    _, ctxs = load_passages(cfg)
    backend = RayBackend(cfg)
    try:
        loaded = backend.load()
        domain = KnowledgeDomain.from_config(loaded.tokenizer, cfg)
        items = [Item(c, None, 0, rep) for c in ctxs for rep in range(3)]  # 9 chunks of one inner loop
        store = Store(tmp_path / "store.sqlite")
        killed = []

        def kill_all_workers_once(scored):
            if not killed:  # one worker has just finished, the other is mid-chunk
                for pid in backend.worker_pids():
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)

        scores = score_self_edits(store, "train", 1, backend, loaded, domain, items, seed=0,
                                  on_scores=kill_all_workers_once)
        assert len(killed) == 2
        assert len(scores) == 9 and all(s.failed is None for s in scores.values())
        rows = store.db.execute("SELECT context_id, repeat, COUNT(*) FROM scores GROUP BY context_id, repeat")
        assert sorted((c, r, n) for c, r, n in rows) == sorted((c.id, r, 1) for c in ctxs for r in range(3))
        assert set(backend.worker_pids()).isdisjoint(killed)  # fresh workers replaced the dead ones
    finally:
        backend.close()


def test_missing_ray_names_the_extra(monkeypatch):
    from seal.backends.ray import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ConfigError, match=r"pip install 'seal\[ray\]'"):
        import_ray()


def test_asking_for_gpus_on_a_cpu_cluster_is_a_clear_error(cluster):
    from seal.backends.ray import RayBackend

    with pytest.raises(ConfigError, match="num_gpus_per_worker"):
        RayBackend(load_config(None, SMALL + ["inner.backend=ray", "ray.num_gpus_per_worker=1"]))
