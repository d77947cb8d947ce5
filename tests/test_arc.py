"""The ARC domain: data validation, augmenters and their inverses, the tool-config self-edit, TTT data, voting."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seal.data import DataError
from seal.domains.arc.augment import (BASIC, CHAIN, GROUPS, REPEAT, SIZE, VOTING_VIEWS, ColorPermutation, Flip,
                                      Reflect, Repeat, Rotate, Scale, Transpose)
from seal.domains.arc.domain import (ArcDomain, ArcSettings, format_grid, oracle_config, parse_grid, task_context,
                                     ttt_tasks)
from seal.domains.arc.grids import ArcTask, Example, load_arc
from seal.domains.arc.selfedit import ToolConfig, parse_tool_config
from seal.domains.base import Invalid, SelfEdit, UpdatePlan

grids = st.integers(1, 8).flatmap(lambda h: st.integers(1, 8).flatmap(
    lambda w: st.lists(st.lists(st.integers(0, 9), min_size=w, max_size=w), min_size=h, max_size=h))).map(
    lambda rows: tuple(tuple(r) for r in rows))
GEOMETRIC = (*BASIC, *SIZE, *CHAIN, *REPEAT)


@settings(max_examples=200, deadline=None)
@given(g=grids, aug=st.sampled_from(GEOMETRIC))
def test_every_geometric_augmenter_inverts(g, aug):
    out = aug.apply(g)
    assert aug.invert(out) == g
    assert (len(out), len(out[0])) == aug.shape(len(g), len(g[0]))


@given(g=grids)
def test_shapes(g):
    h, w = len(g), len(g[0])
    assert (len(Rotate(90).apply(g)), len(Rotate(90).apply(g)[0])) == (w, h)
    assert (len(Transpose().apply(g)), len(Transpose().apply(g)[0])) == (w, h)
    assert len(Scale(2, 2).apply(g)) == 2 * h and len(Scale(2, 2).apply(g)[0]) == 2 * w
    assert len(Scale(1, 2).apply(g)) == h and len(Scale(1, 2).apply(g)[0]) == 2 * w
    assert len(Reflect(0).apply(g)) == 2 * h and len(Repeat(2, 2).apply(g)[0]) == 2 * w
    assert Rotate(180).apply(g) == Flip(0).apply(Flip(1).apply(g))


@given(g=grids, seed=st.integers(0, 10**6))
def test_colour_permutations_are_bijections_keeping_the_background(g, seed):
    import random

    perm = ColorPermutation.random(random.Random(seed))
    assert perm.mapping[0] == 0 and sorted(perm.mapping) == list(range(10))
    assert perm.invert(perm.apply(g)) == g
    with pytest.raises(ValueError):
        ColorPermutation((1, 0, 2, 3, 4, 5, 6, 7, 8, 9))


# --- data ---

def _task(n_train=3, test_outputs=True):
    ex = lambda i: {"input": [[i % 10, 0], [0, 1]], "output": [[0, i % 10], [1, 0]]}
    return {"train": [ex(i) for i in range(1, n_train + 1)], "test": [{"input": [[5, 0], [0, 1]]}]}


def test_challenges_and_solutions_load(tmp_path):
    ch, so = tmp_path / "c.json", tmp_path / "s.json"
    two = _task()
    two["test"].append({"input": [[7]]})
    ch.write_text(json.dumps({"bbb": _task(), "aaa": two}))
    so.write_text(json.dumps({"bbb": [[[0, 5], [1, 0]]], "aaa": [[[0, 5], [1, 0]], [[7]]]}))
    tasks = load_arc(ch, so)
    assert [t.id for t in tasks] == ["aaa/0", "aaa/1", "bbb"]  # several test inputs, several contexts
    assert tasks[1].test_output == ((7,),) and len(tasks[0].train) == 3


def test_single_task_file(tmp_path):
    t = _task()
    t["test"][0]["output"] = [[0, 5], [1, 0]]
    path = tmp_path / "abc123.json"
    path.write_text(json.dumps(t))
    (task,) = load_arc(path)
    assert task.id == "abc123" and task.test_output == ((0, 5), (1, 0))


@pytest.mark.parametrize("mutate, message", [
    (lambda t: t["train"][1].update(input=[[1, 2], [3]]), r"task x, train\[1\].input: grid not rectangular"),
    (lambda t: t["train"][0].update(output=[[1, 12]]), r"train\[0\].output: cell \(0, 1\) is 12, not a colour"),
    (lambda t: t["train"][0].update(output=[[1, True]]), r"cell \(0, 1\) is True"),
    (lambda t: t["test"][0].update(input=[[0] * 31]), r"test\[0\].input: 31 columns, more than 30"),
    (lambda t: t.update(train=[]), r"task x: field 'train' must be a non-empty list"),
])
def test_bad_grids_name_file_task_and_field(tmp_path, mutate, message):
    t = _task()
    mutate(t)
    ch = tmp_path / "c.json"
    ch.write_text(json.dumps({"x": t}))
    (tmp_path / "s.json").write_text(json.dumps({"x": [[[0]]]}))
    with pytest.raises(DataError, match=message):
        load_arc(ch, tmp_path / "s.json")


def test_missing_solution_is_an_error(tmp_path):
    ch = tmp_path / "c.json"
    ch.write_text(json.dumps({"x": _task()}))
    (tmp_path / "s.json").write_text(json.dumps({}))
    with pytest.raises(DataError, match="missing solution .* task x"):
        load_arc(ch, tmp_path / "s.json")


# --- the self-edit ---

GOOD = {"data_generation": {"use_basic_augmentations": True, "use_size_augmentations": False,
                            "use_chain_augmentations": False, "use_repeat_augmentations": True},
        "training": {"strategy": "train_using_output_tokens", "learning_rate": 1e-4, "num_train_epochs": 2}}


def _with(path, value):
    d = json.loads(json.dumps(GOOD))
    node = d
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return json.dumps(d)


def test_a_good_config_parses_from_surrounding_text():
    cfg = parse_tool_config("Sure! Here is my config:\n```json\n" + json.dumps(GOOD) + "\n```")
    assert isinstance(cfg, ToolConfig) and cfg.groups == ("basic", "repeat")
    assert cfg.training.learning_rate == 1e-4


@pytest.mark.parametrize("text, reason", [
    ("", "empty"),
    ("no json here", "no JSON object"),
    (_with(["training", "learning_rate"], 0.5), "less than or equal to 0.01"),
    (_with(["training", "learning_rate"], 0), "greater than 0"),
    (_with(["training", "learning_rate"], "1e-4"), "valid number"),
    (_with(["training", "num_train_epochs"], 11), "less than or equal to 10"),
    (_with(["training", "num_train_epochs"], 2.5), "valid integer"),
    (_with(["training", "strategy"], "train_on_everything"), "strategy"),
    (_with(["data_generation", "use_size_augmentations"], "yes"), "valid boolean"),
    (_with(["data_generation", "extra_tool"], True), "Extra inputs"),
    (_with(["training", "learning_rate"], 10 ** 400), "less than or equal"),
    (json.dumps(GOOD).replace("0.0001", "NaN"), "NaN is not allowed"),
    ("{" * 100_000, "nested deeper"),
    ('{"a": ' * 30 + "1" + "}" * 30, "nested deeper"),
])
def test_bad_configs_are_invalid_with_a_reason(text, reason):
    out = parse_tool_config(text)
    assert isinstance(out, Invalid) and reason in out.reason


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(max_size=300), st.recursive(
    st.one_of(st.none(), st.booleans(), st.floats(allow_nan=True), st.integers(), st.text(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=20), inner, max_size=4)),
    max_leaves=30).map(json.dumps)))
def test_any_text_is_a_bounded_config_or_invalid(text):
    out = parse_tool_config(text)
    if isinstance(out, ToolConfig):
        assert 0 < out.training.learning_rate <= 1e-2 and 0 <= out.training.num_train_epochs <= 10
    else:
        assert isinstance(out, Invalid) and out.reason


# --- TTT data, plans, voting ---

def _arc_task(n=4):
    g = lambda i: ((i, 0, 1), (0, i, 2))
    train = tuple(Example(g(i), Transpose().apply(g(i))) for i in range(1, n + 1))
    return ArcTask("t1", train, g(7), Transpose().apply(g(7)))


def test_ttt_tasks_leave_one_and_two_out_filtered_deduplicated_capped():
    task = _arc_task(4)
    plain = ttt_tasks(task, (), ArcSettings(), seed=0)
    assert len(plain) == 4 + 12  # leave-1: 4; leave-2: 6 pairs x 2 queries
    assert all(len(tr) in (2, 3) for tr, _ in plain)
    many = ttt_tasks(task, tuple(GROUPS), ArcSettings(max_examples=50), seed=0)
    assert len(many) == 50
    keys = {format_grid(q.output) + "|".join(format_grid(e.input) for e in tr) for tr, q in many}
    assert len(keys) == 50
    assert ttt_tasks(task, tuple(GROUPS), ArcSettings(max_examples=50), seed=0) == many  # seeded


def test_unaugmented_tasks_come_first_and_colours_change_only_when_asked():
    task = _arc_task(3)
    colours = {c for e in task.train for g in (e.input, e.output) for row in g for c in row}
    used = lambda tasks: [{c for e in [*tr, q] for g in (e.input, e.output) for row in g for c in row}
                          for tr, q in tasks]
    out = ttt_tasks(task, ("basic",), ArcSettings(max_examples=40), seed=0)
    demos = set(task.train)
    assert all(set(tr) | {q} <= demos for tr, q in out[:9]) and not all(set(tr) | {q} <= demos for tr, q in out[9:])
    assert all(u <= colours for u in used(out))  # geometric augmentations keep the colours
    permuted = ttt_tasks(task, ("basic",), ArcSettings(max_examples=40, permute_colors=True), seed=0)
    assert all(u <= colours for u in used(permuted[:9]))  # the task's own examples never are
    assert sum(not u <= colours for u in used(permuted[9:])) > 20


def test_grids_over_30_are_filtered():
    big = tuple(tuple(1 for _ in range(20)) for _ in range(20))
    task = ArcTask("big", (Example(big, big),) * 3, big, big)
    out = ttt_tasks(task, ("size",), ArcSettings(), seed=0)
    assert out and all(len(q.output) <= 30 and len(q.output[0]) <= 30 for _, q in out)


@pytest.fixture
def arc_domain(loaded_random):
    return ArcDomain(loaded_random.tokenizer, ArcSettings(max_examples=12))


def test_output_only_loss_covers_exactly_the_answer(arc_domain, loaded_random):
    task = _arc_task(3)
    seq = arc_domain.example_sequence(list(task.train[:2]), task.train[2], output_only=True)
    masked = [t for t, m in zip(seq.input_ids, seq.loss_mask) if m]
    text = loaded_random.tokenizer.decode(masked, skip_special_tokens=True)
    assert format_grid(task.train[2].output).replace(" ", "") in text.replace(" ", "")
    assert "Example" not in text and "Input" not in text
    full = arc_domain.example_sequence(list(task.train[:2]), task.train[2], output_only=False)
    assert all(full.loss_mask) and full.input_ids == seq.input_ids


def test_plans_take_the_self_edits_lr_and_epochs_and_enforce_the_step_cap(arc_domain):
    ctx = task_context(_arc_task(4))
    plan = arc_domain.plan(ctx, SelfEdit(ctx.id, "p", json.dumps(GOOD), "base"))
    assert isinstance(plan, UpdatePlan)
    assert plan.optim.lr == 1e-4 and plan.optim.epochs == 2 and plan.optim.batch_size == 2
    assert plan.optim.schedule == "cosine" and (plan.lora.r, plan.lora.alpha) == (128, 16)
    assert len(plan.sequences) == 12
    capped = ArcDomain(arc_domain.tok, ArcSettings(max_examples=12, max_steps=11))
    out = capped.plan(ctx, SelfEdit(ctx.id, "p", json.dumps(GOOD), "base"))
    assert isinstance(out, Invalid) and "12 training steps exceed the cap of 11" in out.reason
    zero = arc_domain.plan(ctx, SelfEdit(ctx.id, "p", _with(["training", "num_train_epochs"], 0), "base"))
    assert isinstance(zero, Invalid)
    assert isinstance(arc_domain.plan(ctx, None, config=oracle_config()), UpdatePlan)


def test_probes_and_voting_map_views_back(arc_domain):
    ctx = task_context(_arc_task(3))
    probes = arc_domain.probes(ctx)
    assert len(probes) == len(VOTING_VIEWS) == 7
    gold = ctx.payload.test_output
    answers = [format_grid(v.apply(gold)) for v in VOTING_VIEWS]  # each view answered correctly
    answers[1] = "garbage"
    answers[2] = format_grid(((9, 9),))  # a wrong grid, outvoted
    from seal.domains.base import InnerResult

    score = arc_domain.score(ctx, InnerResult(answers))
    assert score.correct == [True] and score.answers == [format_grid(gold)]
    assert arc_domain.score(ctx, InnerResult(["nope"] * 7)).correct == [False]


@pytest.mark.parametrize("text, grid", [
    ("1 2\n3 4", ((1, 2), (3, 4))),
    ("  12\n34  \n", ((1, 2), (3, 4))),
    ("1 2\n3 4\n\nExample 2", ((1, 2), (3, 4))),
    ("1 2\n3", None),
    ("1 a\n3 4", None),
    ("", None),
    ("\n".join(["0"] * 31), None),
])
def test_parse_grid_is_tolerant_to_whitespace_and_strict_on_shape(text, grid):
    assert parse_grid(text) == grid


def test_batched_engine_trains_arc_plans_with_their_own_lr_and_epochs(arc_domain, loaded_random):
    from seal.domains.base import Job
    from seal.inner.batched import BatchedEngine
    from seal.inner.sequential import SequentialEngine

    ctx = task_context(_arc_task(3))
    small = ArcDomain(loaded_random.tokenizer, ArcSettings(max_examples=4, lora_r=4, lora_alpha=8))
    plans = [small.plan(ctx, SelfEdit(ctx.id, "p", _with(["training", k], v), "base"))
             for k, v in (("learning_rate", 1e-3), ("num_train_epochs", 1))]
    probes = small.probes(ctx)[:2]
    jobs = [Job(p, tuple(pr.__class__(pr.prompt, 4) for pr in probes), seed=i) for i, p in enumerate(plans)]
    batched = BatchedEngine(max_adapters_per_batch=2).run_chunk(loaded_random, jobs)
    reference = [SequentialEngine().run_job(loaded_random, j) for j in jobs]
    assert [len(r.step_losses) for r in batched] == [4, 2]  # 4 examples / batch 2 x epochs (2, then 1)
    for b, s in zip(batched, reference):
        assert b.step_losses == pytest.approx(s.step_losses, rel=1e-4) and b.answers == s.answers


# --- the recipe ---

def test_generated_tasks_are_seeded_and_splits_disjoint():
    from seal.world.arc_tasks import FAMILIES, world_tasks

    train, eval_ = world_tasks("train", 2), world_tasks("eval", 2)
    assert len(train) == len(eval_) == 2 * len(FAMILIES)
    assert world_tasks("eval", 2) == eval_
    grids = lambda ts: {t.test_input for t in ts} | {e.input for t in ts for e in t.train}
    assert not {t.id for t in train} & {t.id for t in eval_}
    assert len(grids(train) & grids(eval_)) < len(grids(eval_)) // 4  # small grids may repeat by chance
    for t in eval_:
        assert all(e.output != e.input for e in t.train)


def test_train_per_family_sizes_the_training_pool_alone():
    from seal.config import load_config
    from seal.sources import read_source

    cfg = load_config("configs/tiny/arc.yaml", ["arc.per_family=4", "arc.train_per_family=2"])
    train, eval_ = read_source(cfg.data.train, cfg), read_source(cfg.data.eval, cfg)
    assert (len(train), len(eval_)) == (2, 4)
    same = load_config("configs/tiny/arc.yaml", ["arc.per_family=2", "arc.train_per_family=null"])  # null: per_family
    assert [c.id for c in eval_[:2]] == [c.id for c in read_source(same.data.eval, same)]  # the first ones kept
    assert [c.id for c in train] == [c.id for c in read_source(same.data.train, same)]


def test_restem_keeps_exactly_the_successful_configs():
    from seal.config import RestEMConfig
    from seal.outer.restem import keep_best

    rewards = {("a", s): float(s in (1, 4)) for s in range(15)} | {("b", s): 0.0 for s in range(15)}
    kept = keep_best(rewards, {}, RestEMConfig(top_k=15, samples=15))
    assert kept == [("a", 1, 1.0), ("a", 4, 1.0)]


@pytest.mark.slow
def test_arc_recipe_end_to_end(tmp_path, random_model_dir):
    from seal.config import load_config
    from seal.experiments import arc

    cfg = load_config(None, [
        "experiment=arc", f"model.name_or_path={random_model_dir}", "data.train.kind=arc_world",
        "data.train.split=train", "data.eval.kind=arc_world", "data.eval.split=eval", "data.n_eval=2",
        "arc.per_family=1", "arc.max_examples=4", "arc.lora_r=4", "arc.lora_alpha=8", "arc.answer_max_new_tokens=12",
        "generation.max_new_tokens=16", "generation.batch_size=4", "restem.rounds=1", "restem.n_passages=2",
        "restem.samples=2", "restem.top_k=2", "restem.repeats=1", "restem.sft.lora_r=4", "restem.sft.lora_alpha=8",
        "restem.sft.epochs=1", "restem.sft.grad_accum=1", "eval.samples=2"])
    summary = arc.main(cfg, tmp_path / "run").to_json()
    assert [r["name"] for r in summary["rows"]] == ["icl", "base_self_edits", "oracle_ttt", "seal_round_1"]
    rows = {r["name"]: r for r in summary["rows"]}
    assert all(r["n_passages"] == 2 and 0 <= r["best_of"] <= 1 for r in rows.values())
    # a random model writes no valid config: every self-edit is Invalid with reward 0, the oracle trains
    assert rows["base_self_edits"]["invalid"] == 4 and rows["oracle_ttt"]["invalid"] == 0
    from seal.store import Store

    store = Store(tmp_path / "run" / "store.sqlite")
    oracle = store.scores("eval/oracle", 0)
    assert len(oracle) == 2 and all(s.n_steps == 4 for s in oracle.values())  # 4 examples / batch 2 x 2 epochs
    assert summary["rounds"][0]["n_scored"] == 4
    report = (tmp_path / "run" / "report.md").read_text()
    assert "| row | accuracy | 95% CI | std | best of | tasks | questions | invalid |" in report
    line = next(ln for ln in report.splitlines() if ln.startswith("| base_self_edits |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[1] == "0.0" and cells[3:] == ["0.0", "0.0", "2", "2", "4", "0"]  # CI cell: 0.0 to 0.0
    assert "## Configs written" in report and "| eval_base_r0 | 4 | 0 |" in report


@settings(max_examples=300, deadline=None)
@given(g=grids, text=st.text(alphabet="0123456789 \n\tx-", max_size=200))
def test_parse_grid_round_trips_and_never_returns_a_bad_grid(g, text):
    assert parse_grid(format_grid(g)) == g
    out = parse_grid(text)
    if out is not None:
        assert 1 <= len(out) <= 30 and len({len(r) for r in out}) == 1 and 1 <= len(out[0]) <= 30
        assert all(0 <= c <= 9 for r in out for c in r)


def test_every_family_draws_tasks_for_many_seeds_and_families_are_validated():
    from seal.config import ConfigError, load_config
    from seal.world.arc_tasks import FAMILIES, make_task

    for family in FAMILIES:  # a rule that leaves a grid unchanged must not stall the generator
        for seed in range(300):
            t = make_task(family, seed, n_train=4)
            assert len({e.input for e in t.train}) == 4 and all(e.output != e.input for e in t.train)
    maps = [make_task("colour_map_3", seed) for seed in range(20)]
    pairs = {(a, b) for t in maps for e in t.train for ra, rb in zip(e.input, e.output) for a, b in zip(ra, rb)}
    table = dict(pairs)
    assert len(table) == len(pairs) == 10 and table[0] == 0  # one fixed map over all tasks of the family
    assert all(table[c] != c for c in range(1, 10)) and sorted(table.values()) == list(range(10))
    for seed in range(100):  # a per-task recolouring can be read off the demonstrations
        t = make_task("recolour", seed)
        shown = {c for e in t.train for row in e.input for c in row}
        assert {c for row in t.test_input for c in row} <= shown
    with pytest.raises(ConfigError, match="unknown families"):
        load_config(None, ["arc.families=[rotate45]"])


def test_config_profiles_count_what_the_policy_chose(tmp_path):
    import json

    from seal.domains.base import SelfEdit
    from seal.experiments.arc import config_profile, config_profiles
    from seal.store import Store

    def cfg(lr, epochs, basic):
        return json.dumps({"data_generation": {"use_basic_augmentations": basic, "use_size_augmentations": False,
                                               "use_chain_augmentations": False, "use_repeat_augmentations": False},
                           "training": {"strategy": "train_using_output_tokens", "learning_rate": lr,
                                        "num_train_epochs": epochs}})

    p = config_profile([cfg(1e-4, 1, True), cfg(1e-3, 3, False), cfg(1e-2, 5, True), "not json"])
    assert p["n"] == 4 and p["valid"] == 3 and p["median_lr"] == 1e-3 and p["mean_epochs"] == 3
    assert p["uses_basic"] == pytest.approx(2 / 3) and p["uses_size"] == 0 and p["output_only"] == 1
    assert config_profile(["{}"]) == {"n": 1, "valid": 0}
    store = Store(tmp_path / "s.sqlite")
    store.put_self_edits("train", 1, [SelfEdit("a", "p", cfg(1e-3, 2, s == 0), "base", s) for s in range(3)])
    store.put_kept(1, [("a", 0, 1.0)])
    profiles = config_profiles(store)
    assert set(profiles) == {"train_r1", "train_kept_r1"}
    assert profiles["train_kept_r1"]["n"] == 1 and profiles["train_kept_r1"]["uses_basic"] == 1
    assert profiles["train_r1"]["uses_basic"] == pytest.approx(1 / 3)


def test_config_rewards_average_the_reward_of_each_choice(tmp_path):
    import json

    from seal.domains.base import Score, SelfEdit
    from seal.experiments.arc import config_rewards
    from seal.report import write_report
    from seal.store import ScoreKey, Store

    def cfg(lr, output_only, chain):
        return json.dumps({"data_generation": {"use_basic_augmentations": False, "use_size_augmentations": False,
                                               "use_chain_augmentations": chain, "use_repeat_augmentations": False},
                           "training": {"strategy": "train_using_output_tokens" if output_only
                                        else "train_using_all_tokens", "learning_rate": lr, "num_train_epochs": 2}})

    store = Store(tmp_path / "s.sqlite")
    texts = [cfg(1e-3, True, False), cfg(1e-3, True, True), cfg(1e-2, False, True), "not json"]
    solved = [True, True, False, False]
    store.put_self_edits("train", 1, [SelfEdit("a", "p", t, "base", s) for s, t in enumerate(texts[:3])])
    store.put_self_edits("eval/base", 0, [SelfEdit("b", "p", texts[3], "base", 0)])
    store.put_scores([(ScoreKey("train", 1, "a", s), Score([ok], ["x"])) for s, ok in enumerate(solved[:3])])
    store.put_scores([(ScoreKey("eval/base", 0, "b", 0), Score([None], [""], invalid="not valid JSON"))])
    store.put_scores([(ScoreKey("eval/icl", 0, "b", 0), Score([True], ["x"]))])  # no self-edit: not counted
    got = {(c["choice"], c["value"]): (c["n"], c["reward"]) for c in config_rewards(store)}
    assert got[("config", "valid")] == (3, pytest.approx(2 / 3)) and got[("config", "invalid")] == (1, 0.0)
    assert got[("loss", "output only")] == (2, 1.0) and got[("loss", "all tokens")] == (1, 0.0)
    assert got[("learning rate", "1e-03")] == (2, 1.0) and got[("learning rate", "1e-02")] == (1, 0.0)
    assert got[("chain augmentations", "on")] == (2, 0.5) and got[("chain augmentations", "off")] == (1, 1.0)
    lrs = [c["value"] for c in config_rewards(store) if c["choice"] == "learning rate"]
    assert lrs == ["1e-03", "1e-02"]  # numeric order
    from seal.experiments.arc import config_sections
    from seal.results import Summary

    rewards = config_rewards(store)
    summary = Summary("arc", "t", data={"config_rewards": rewards}, sections=config_sections({}, rewards))
    (tmp_path / "summary.json").write_text(json.dumps(summary.to_json()))
    report = write_report(tmp_path).read_text()
    assert "## Reward by config choice" in report and "| loss | output only | 2 | 100.0 |" in report


def test_mostly_invalid_self_edits_are_warned_with_the_commonest_reason(caplog):
    import logging

    from seal.run import warn_if_mostly_invalid
    from seal.progress import log

    log.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.WARNING, logger="seal"):
            reasons = ["not valid JSON: line 1", "not valid JSON: line 3", "too many steps"]
            warn_if_mostly_invalid("train", 1, reasons, 6)
            warn_if_mostly_invalid("train", 2, ["too many steps"], 6)  # a minority: no warning
    finally:
        log.removeHandler(caplog.handler)
    messages = sorted({r.getMessage() for r in caplog.records})  # the seal logger may also propagate to root
    assert messages == ["train r1: 3 of 6 self-edits are invalid (reward 0); most common reason (2): "
                        "not valid JSON: line 1"]
