"""The run layer's pieces that need no model: typed summaries and their report, metric sinks, resume-safe
keys, Ray's `auto` GPU counts, provenance."""

import json
import platform

import pytest

from seal.config import ConfigError, RunConfig, load_config, resume_safe_keys
from seal.results import Heatmap, Row, RoundRow, Summary, Table


def _summary() -> Summary:
    from seal.results import Compared

    rows = [Row("no_adaptation", 0.1, 0.05, 4, 12, 0, 0, 0, ci_low=0.0, ci_high=0.2, per_item={"a": 0.1}),
            Row("seal_round_1", 0.4, 0.2, 4, 12, 1, 2, 0, best_of=0.5, ci_low=0.25, ci_high=0.55)]
    return Summary("arc", "demo", rows, [RoundRow(1, 0.3, 0.1, 24, 3, 12.5)], title="held-out tasks", unit="tasks",
                   comparisons=[Compared("seal_round_1", "no_adaptation", 0.3, 0.1, 0.45, 0.0123, 4)],
                   data={"engine": "batched", "configs": {"x": {"n": 1}}},
                   sections=[Table("Updates", ["row", "steps"], [["a", "3"]], note="a note"),
                             Heatmap("merge", ["base", "1"], ["p1"], [[0.5], [None]], xlabel="passage")],
                   provenance={"seal": "0.1.0", "commit": "a" * 40, "torch": "2.13.0+cpu", "transformers": "5.25.0",
                               "peft": "0.21.2", "python": "3.11.7", "device": "cpu", "dtype": "float32",
                               "threads": 2})


def test_summary_json_round_trip_keeps_the_recipe_keys_at_the_top_level():
    d = _summary().to_json()
    assert d["engine"] == "batched" and d["configs"] == {"x": {"n": 1}}
    assert list(d["rows"][0])[:8] == ["name", "accuracy", "std", "n_passages", "n_questions", "ungraded", "invalid",
                                      "failed"]  # the keys summary.json always had, first; best_of only where set
    assert "best_of" not in d["rows"][0] and "f1_mean" not in d["rows"][0]
    assert d["rows"][1]["best_of"] == 0.5
    again = Summary.from_json(json.loads(json.dumps(d)))
    assert again == _summary()


def test_report_renders_any_summary_without_knowing_its_recipe(tmp_path):
    from seal.report import write_report

    (tmp_path / "summary.json").write_text(json.dumps(_summary().to_json()))
    text = write_report(tmp_path).read_text()
    assert "| row | accuracy | 95% CI | std | best of | tasks | questions | invalid | ungraded |" in text
    assert "| seal_round_1 | 40.0 | 25.0–55.0 | 20.0 | 50.0 | 4 | 12 | 2 | 1 |" in text
    assert "| seal_round_1 | no_adaptation | accuracy | +30.0 | +10.0 to +45.0 | 0.0123 | 4 |" in text
    assert "## ReST-EM rounds" in text and "## Updates" in text and "a note" in text
    assert "## merge" in text and "| 1 | |" in text.replace("|  |", "| |")  # an empty heatmap cell
    assert (tmp_path / "results.png").stat().st_size > 1000
    assert ("Produced by seal 0.1.0 (commit aaaaaaaaaaaa), torch 2.13.0+cpu, transformers 5.25.0, peft 0.21.2, "
            "Python 3.11.7, cpu float32, 2 torch threads.") in text


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
    import torch

    from seal.run import provenance

    p = provenance(RunConfig(model={"device": "cpu"}))
    assert p["torch"] and p["transformers"] and p["peft"] and p["python"]
    assert p["device"] == "cpu" and p["dtype"] == "float32"
    assert p["threads"] == torch.get_num_threads() >= 1
    assert p["commit"] is None or len(p["commit"].removesuffix("+dirty")) == 40
    assert "cpu" in p  # the processor, where the machine names it


def test_cpu_name_reads_the_first_processor_of_cpuinfo(tmp_path):
    from seal.provenance import cpu_name

    info = tmp_path / "cpuinfo"
    block = "processor\t: {}\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: {}\nmodel name\t: AMD EPYC\n"
    info.write_text(block.format(0, 1) + "\n" + block.format(1, 7))
    assert cpu_name(info) == "AMD EPYC (family 25, model 1)"
    info.write_text("processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\n")
    assert cpu_name(info) == (platform.processor() or None)  # no name in the file: the platform's, if any
    assert cpu_name(tmp_path / "missing") == (platform.processor() or None)

    from seal.report import produced_by

    assert produced_by({"seal": "0.1.0", "device": "cpu", "dtype": "float32", "threads": 2,
                        "cpu": "AMD EPYC (family 25, model 1)"}) == \
        "seal 0.1.0, cpu float32, 2 torch threads, AMD EPYC (family 25, model 1)"


def _fake_run(path, seed: int, accs: dict[str, float], lr: float = 1e-3, threads: int = 2):
    from seal.config import dump_config
    from seal.results import Compared

    path.mkdir(parents=True)
    (path / "config.yaml").write_text(dump_config(load_config(None, [f"seed={seed}", f"inner.lr={lr}"])))
    rows = [Row(n, a, 0.1, 4, 12, 0, 0, 0, per_item={"p": a}) for n, a in accs.items()]
    comps = [Compared("seal_round_2", "passage_only", accs["seal_round_2"] - accs["passage_only"], 0.01 * seed - 0.005,
                      0.2, 0.04, 4)]
    prov = {"seal": "0.1.0", "torch": "2.13.0+cpu", "device": "cpu", "dtype": "float32", "threads": threads}
    (path / "summary.json").write_text(json.dumps(Summary("knowledge", "demo", rows, comparisons=comps,
                                                          provenance=prov).to_json()))
    return path


def test_seed_report_gives_mean_std_and_per_seed_margins(tmp_path):
    from typer.testing import CliRunner

    from seal.cli import app

    runs = [_fake_run(tmp_path / f"s{s}", s, {"passage_only": 0.1 + 0.01 * s, "seal_round_2": 0.2 + 0.03 * s})
            for s in range(3)]
    out = CliRunner().invoke(app, ["report", *map(str, runs), "--out", str(tmp_path / "seeds")])
    assert out.exit_code == 0, out.output
    seeds = json.loads((tmp_path / "seeds" / "seeds.json").read_text())
    assert seeds["seeds"] == [0, 1, 2] and seeds["rows"]["seal_round_2"]["per_seed"] == pytest.approx([0.2, 0.23, 0.26])
    assert seeds["rows"]["seal_round_2"]["mean"] == pytest.approx(0.23) and \
        seeds["rows"]["seal_round_2"]["std"] == pytest.approx(0.03)
    (margin,) = seeds["margins"]
    assert margin["per_seed"] == pytest.approx([0.1, 0.12, 0.14]) and margin["ci_above_zero"] == 2  # seeds 1, 2
    report = (tmp_path / "seeds" / "report.md").read_text()
    assert "| seal_round_2 | 23.0 | 3.0 | 20.0 | 23.0 | 26.0 |" in report
    assert "| seal_round_2 | passage_only | accuracy | +12.0 | 2.0 | +10.0 | +12.0 | +14.0 | 2 of 3 |" in report
    assert (tmp_path / "seeds" / "results.png").stat().st_size > 1000
    assert seeds["provenance_differs"] == [] and "What produced each run" not in report
    assert "Every run produced by seal 0.1.0, torch 2.13.0+cpu, cpu float32, 2 torch threads." in report


def test_seed_report_names_what_differs_in_what_produced_the_runs(tmp_path):
    from seal.report import seed_report

    accs = {"passage_only": 0.1, "seal_round_2": 0.2}
    runs = [_fake_run(tmp_path / f"s{s}", s, accs, threads=t) for s, t in [(0, 2), (1, 1), (2, 2)]]
    report = seed_report(runs, tmp_path / "seeds").read_text()
    seeds = json.loads((tmp_path / "seeds" / "seeds.json").read_text())
    assert seeds["provenance_differs"] == ["threads"] and [p["threads"] for p in seeds["provenance"]] == [2, 1, 2]
    assert "## What produced each run" in report and "The runs differ in threads" in report
    assert "| seed | threads |" in report and "| 1 | 1 |" in report and "Every run produced by" not in report


def test_seed_report_refuses_runs_of_different_configs(tmp_path):
    from typer.testing import CliRunner

    from seal.cli import app

    a = _fake_run(tmp_path / "a", 0, {"passage_only": 0.1, "seal_round_2": 0.2})
    b = _fake_run(tmp_path / "b", 1, {"passage_only": 0.1, "seal_round_2": 0.2}, lr=1e-2)
    out = CliRunner().invoke(app, ["report", str(a), str(b)])
    assert out.exit_code == 2 and "inner.lr differ" in " ".join(out.output.split())


def test_each_recipe_pairs_its_rows_as_the_issue_lists():
    from seal.experiments import arc, knowledge

    def rows(*named):
        return [Row(n, a, 0.0, 1, 1, 0, 0, 0) for n, a in named]

    table = rows(("no_adaptation", 0.0), ("passage_only", 0.1), ("passage_repeated", 0.3), ("base_self_edits", 0.2),
                 ("seal_round_1", 0.25), ("seal_round_2", 0.4))
    assert knowledge.comparison_pairs(table) == [
        ("base_self_edits", "passage_only"), ("base_self_edits", "passage_repeated"),
        ("seal_round_1", "passage_only"), ("seal_round_1", "passage_repeated"),
        ("seal_round_2", "passage_only"), ("seal_round_2", "passage_repeated")]
    # the best control of a row never is the row itself; passage_only as the best is not listed twice
    assert knowledge.comparison_pairs(rows(("passage_only", 0.5), ("base_self_edits", 0.2))) == [
        ("base_self_edits", "passage_only")]
    assert arc.comparison_pairs(rows(("icl", 0.0), ("base_self_edits", 0.1), ("seal_round_1", 0.3))) == [
        ("base_self_edits", "icl"), ("seal_round_1", "icl"), ("seal_round_1", "base_self_edits")]


def test_a_resume_against_other_gold_answers_is_refused(tmp_path):
    from seal.domains.base import QA, Context
    from seal.run import Run

    cfg = RunConfig(model={"device": "cpu"})
    ctxs = [Context("c1", "t", "text", (QA("Where?", "Calder"),))]
    with Run.open(cfg, tmp_path, contexts=ctxs):
        pass
    with Run.open(cfg, tmp_path, contexts=ctxs):  # the same golds: resumes
        pass
    edited = [Context("c1", "t", "text", (QA("Where?", "Calder", ("Calder town",)),))]
    with pytest.raises(ConfigError, match="scored against other gold answers"):
        with Run.open(cfg, tmp_path, contexts=edited):
            pass


def test_opening_a_run_logs_what_produces_it(tmp_path, caplog):
    import logging

    import torch

    from seal.progress import log
    from seal.run import Run

    cfg = RunConfig(model={"device": "cpu"})
    log.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="seal"):
            for _ in range(2):
                with Run.open(cfg, tmp_path):
                    pass
    finally:
        log.removeHandler(caplog.handler)
    opened = [r.getMessage() for r in caplog.records if str(tmp_path) in r.getMessage()]
    threads = f"{torch.get_num_threads()} torch thread"
    assert opened[0].startswith(f"starting {tmp_path} with seal") and opened[-1].startswith(f"resuming {tmp_path}")
    assert all(threads in m and "cpu float32" in m for m in opened)


def test_rows_carry_items_intervals_and_mean_f1_from_the_store(tmp_path):
    from seal.domains.base import QA, Context, Score
    from seal.results import summarize_row
    from seal.store import ScoreKey, Store

    store = Store(tmp_path / "s.sqlite")
    store.put_scores([(ScoreKey("eval/x", 0, "a"), Score([True, False], ["x", "y"], f1=[1.0, 0.5])),
                      (ScoreKey("eval/x", 0, "b"), Score([False], ["z"], f1=[0.0])),
                      (ScoreKey("eval/x", 0, "c"), Score([False], [], invalid="empty self-edit"))])
    scores = store.scores("eval/x", 0)
    assert scores[ScoreKey("eval/x", 0, "a")].f1 == [1.0, 0.5]  # kept in the store
    ctxs = [Context(c, "t", "x", (QA("q", "a"),)) for c in "abc"]
    row = summarize_row("x", scores, ctxs, resamples=2000)
    assert row.per_item == {"a": 0.5, "b": 0.0, "c": 0.0} and row.accuracy == pytest.approx(0.5 / 3)
    assert row.f1_mean == pytest.approx((0.75 + 0.0 + 0.0) / 3)  # the invalid self-edit scores F1 0
    assert 0.0 <= row.ci_low <= row.accuracy <= row.ci_high <= 0.5


def test_the_bm25_router_sends_a_question_to_the_passage_that_names_it():
    from seal.inner.library import Router

    texts = ["Milo Halden was born in Calder in 1907.", "Ada Lowell works as a teacher in Portree.",
             "Granite Foundry makes bells in Harwick."]
    router = Router.build("bm25", ["a0", "a1", "a2"], texts)
    questions = ["Where was Milo Halden born?", "What does Ada Lowell work as?", "What does Granite Foundry make?"]
    assert router.route(questions) == [0, 1, 2]
    assert router.route(questions, among=2) == [0, 1, 0]  # only the first two adapters exist yet; ties: lower
    assert Router.from_json(json.loads(json.dumps(router.to_json()))).route(questions) == [0, 1, 2]


def test_the_embedding_router_takes_precomputed_question_vectors():
    import torch

    from seal.inner.library import Router

    router = Router("embedding", ["a0", "a1", "a2"], keys=[[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    vectors = torch.tensor([[0.0, 2.0], [1.0, 0.1], [1.0, 1.0]])  # cosine: scale does not matter
    assert router.route(["q0", "q1", "q2"], vectors=vectors) == [1, 0, 2]
    assert router.route(["q0", "q1", "q2"], vectors=vectors, among=2) == [1, 0, 0]  # a tie goes to the lower index


def test_hold_out_decides_which_generated_questions_reward_a_training_passage(tmp_path, monkeypatch):
    """`questions.hold_out: all` rewards every passage's self-edits with its `select` part only; `reported`
    does so only for passages the table asks about, and a training passage rewards with every kept question.
    The gold questions follow, measured, and the reward part is split off by the same count."""
    from seal import run as run_module
    from seal.domains.base import QA, Context, Score
    from seal.domains.questions import QuestionSet
    from seal.run import Run
    from seal.store import ScoreKey

    def ctx(cid):
        return Context(cid, "T", "text", (QA(f"gold {cid}?", "g"),))

    train, held = ctx("train"), ctx("eval")
    sets = {c.id: QuestionSet(c.id, "base", "span", select=(QA("s1?", "a"), QA("s2?", "b")),
                              report=(QA("r1?", "c"),)) for c in (train, held)}
    monkeypatch.setattr(run_module, "question_sets", lambda store, cfg, ctxs: {c.id: sets[c.id] for c in ctxs})
    got = {}
    for hold_out in ("all", "reported"):
        cfg = load_config("configs/tiny/label-free.yaml", [f"questions.hold_out={hold_out}"])
        run = Run(cfg, tmp_path, store=None, backend=None, metrics=None)
        run.write_questions([train, held], reported=[held])
        asked = {c.id: [q.question for q in c.questions] for c in run.reward_contexts([train, held])}
        score = Score(correct=[True, False, True, False], answers=[""] * 4)
        reward = run.reward_scores({ScoreKey("train", 1, "train", 0, 0): score})
        got[hold_out] = asked, next(iter(reward.values())).correct
    assert got["all"][0] == {"train": ["s1?", "s2?", "gold train?"], "eval": ["s1?", "s2?", "gold eval?"]}
    assert got["reported"][0] == {"train": ["s1?", "s2?", "r1?", "gold train?"],
                                  "eval": ["s1?", "s2?", "gold eval?"]}
    assert got["all"][1] == [True, False] and got["reported"][1] == [True, False, True]


class _RoundRun:
    """Just what `run_round` calls: every training context gets `samples` self-edits whose rewards are given,
    and a backend that records whether the M-step ran."""

    def __init__(self, path, rewards: dict[tuple[str, int], float], **restem):
        from seal.metrics import Metrics
        from seal.store import Store

        self.cfg = RunConfig(restem={"samples": 2, "repeats": 1, "top_k": 2, **restem})
        self.dir, self.store, self.metrics, self.rewards = path, Store(path / "store.sqlite"), Metrics(), rewards
        self.calls: list[str] = []
        backend = self

        class Backend:
            def sft(self, policy, examples, ckpt, seed):
                backend.calls.append(f"sft on {len(examples)}" + (f" from {policy}" if policy else ""))
                return ckpt

            def save_copy(self, policy, ckpt):
                backend.calls.append("unchanged")
                return ckpt

        self.backend = Backend()

    def load(self, path=None):
        self.calls.append(f"load {path or 'base'}")
        return "base"

    def free(self, model):
        self.calls.append(f"free {model}")

    def reward_contexts(self, contexts):
        return contexts

    def reward_scores(self, scores):
        return scores

    def sample(self, phase, r, policy, contexts, k, who):
        from seal.domains.base import SelfEdit

        return {(c.id, s): SelfEdit(c.id, f"prompt {c.id}", f"edit {s}", who, s) for c in contexts for s in range(k)}

    def score(self, phase, r, policy, items):
        from seal.domains.base import Score
        from seal.store import ScoreKey

        def acc(it):
            return 0.0 if not it.adapt else self.rewards[(it.context.id, it.sample)]

        return {ScoreKey(phase, r, it.context.id, it.sample, it.repeat): Score([True] * int(4 * acc(it)) +
                                                                            [False] * (4 - int(4 * acc(it))), [])
                for it in items}


@pytest.mark.parametrize("min_kept, expect", [(1, "sft on 2"), (2, "sft on 2"), (3, "unchanged")])
def test_a_round_that_keeps_fewer_than_min_kept_leaves_the_policy_unchanged(tmp_path, min_kept, expect):
    from seal.domains.base import Context
    from seal.outer.restem import run_round
    from seal.report import rounds_table
    from seal.results import round_rows

    rewards = {("a", 0): 0.5, ("a", 1): 0.0, ("b", 0): 0.0, ("b", 1): 0.25}  # two self-edits beat no adaptation
    run = _RoundRun(tmp_path, rewards, min_kept=min_kept)
    rec = run_round(1, run, policy=None, contexts=[Context(c, c, "text", ()) for c in "ab"])
    assert run.calls == [expect] and rec.n_kept == 2
    assert sorted(run.store.kept(1)) == [("a", 0, 0.5), ("b", 1, 0.25)]  # what was kept is recorded either way
    (row,) = round_rows(run.store, min_kept)
    assert row.policy_updated == (expect != "unchanged")
    kept_cell = rounds_table(Summary("knowledge", "t", [], [row])).cells[0][4]
    assert kept_cell == ("2" if row.policy_updated else "2 (policy unchanged)")


@pytest.mark.parametrize("start, expect", [
    ("policy", ["sft on 2 from round-1 policy"]),
    ("base", ["load base", "sft on 2 from base", "free base"]),
])
def test_sft_start_base_finetunes_the_base_model_afresh_after_round_1(tmp_path, start, expect):
    from seal.domains.base import Context
    from seal.outer.restem import run_round

    rewards = {("a", 0): 0.5, ("a", 1): 0.0, ("b", 0): 0.0, ("b", 1): 0.25}
    contexts = [Context(c, c, "text", ()) for c in "ab"]
    run = _RoundRun(tmp_path, rewards, sft={"start": start})
    run_round(1, run, policy="the base model", contexts=contexts)  # round 1's policy is the base: no reload
    assert run.calls == ["sft on 2 from the base model"]
    run.calls.clear()
    run_round(2, run, policy="round-1 policy", contexts=contexts)
    assert run.calls == expect
