"""Label-free SEAL end to end on the shipped tiny model (reduced): the writer's questions are grounded, written
once and reused on resume, selection and report questions are disjoint, and the table carries both gradings."""

import pytest

from seal.config import load_config
from seal.world.tiny_knowledge import ASSET_DIR

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (ASSET_DIR / "config.json").exists(), reason="checkpoint not shipped")]

REDUCED = ["data.n_eval=3", "restem.n_passages=2", "restem.samples=2", "restem.rounds=1", "inner.epochs=3",
           "restem.sft.epochs=1", "questions.n_candidates=4", "questions.grounding=span", "model.device=cpu",
           "generation.max_new_tokens=48", "name=lf-test"]


@pytest.fixture(scope="module")
def label_free_run(tmp_path_factory):
    from seal.experiments import knowledge

    cfg = load_config("configs/tiny/label-free.yaml", REDUCED)
    run_dir = tmp_path_factory.mktemp("lf") / "run"
    return cfg, run_dir, knowledge.main(cfg, run_dir).to_json()


def _sets(run_dir):
    from seal.domains.questions import QuestionSet
    from seal.store import Store

    return {c: QuestionSet.from_dict(d) for c, d in Store(run_dir / "store.sqlite").question_sets().items()}


def test_generated_questions_are_grounded_and_split_disjointly(label_free_run):
    from seal.grading import normalize_answer
    from seal.sources import read_source

    cfg, run_dir, summary = label_free_run
    sets = _sets(run_dir)
    passages = {c.id: c for split in ("train", "eval") for c in read_source(cfg.data.eval.model_copy(
        update={"split": split}), cfg)}
    assert len(sets) == 3 + 2  # every eval passage and every training passage of the round, once
    assert sum(len(qs.kept) for qs in sets.values()) > 0
    for cid, qs in sets.items():
        text = normalize_answer(passages[cid].text)
        assert all(f" {normalize_answer(q.answer)} " in f" {text} " for q in qs.kept)  # span grounding
        sel, rep = ({normalize_answer(q.question) for q in part} for part in (qs.select, qs.report))
        assert not sel & rep
        gold = {normalize_answer(q.question) for q in passages[cid].questions}
        assert not (sel | rep) & gold  # gold in disguise is never rewarded nor reported
    q = summary["questions"]
    assert q["passages"] == 5 and q["kept"] == q["select"] + q["report"] == q["stated"] + q["derived"]


def test_training_passages_reward_with_every_question_and_eval_passages_hold_theirs_out(label_free_run):
    """`questions.hold_out: reported` (the label-free config): a training passage, never in the table, rewards
    its self-edits with all its kept questions; the gold ones follow in the same inner loop, never rewarded."""
    from seal.sources import read_source
    from seal.store import Store

    cfg, run_dir, _ = label_free_run
    assert cfg.questions.hold_out == "reported"
    sets = _sets(run_dir)
    train = {c.id: c for c in read_source(cfg.data.train, cfg)}
    scores = Store(run_dir / "store.sqlite").scores("train", 1)
    assert scores and {k.context_id for k in scores} <= set(train)
    for k, s in scores.items():
        assert len(s.correct) == len(sets[k.context_id].kept) + len(train[k.context_id].questions)
    assert any(sets[k.context_id].report for k in scores)  # so `kept` and `select` differ somewhere


def test_the_table_is_graded_on_gold_beside_the_generated_questions(label_free_run):
    _, _, summary = label_free_run
    rows = {r["name"]: r for r in summary["rows"]}
    assert list(rows) == ["no_adaptation", "passage_only", "base_self_edits", "seal_round_1"]
    assert all(r["n_passages"] == 3 and 0 <= r["accuracy"] <= 1 for r in rows.values())
    assert all("generated_accuracy" in r for r in rows.values()) or not any(
        qs.report for qs in _sets(label_free_run[1]).values())
    agreement = summary["reward_agreement"]
    assert agreement["round"] == 1 and agreement["n"] == 2 * 2 and agreement["contexts"] == 2


def test_a_rerun_reuses_the_stored_questions(label_free_run, monkeypatch):
    from seal import labels
    from seal.experiments import knowledge

    cfg, run_dir, summary = label_free_run
    before = _sets(run_dir)

    def no_writer(cfg):
        raise AssertionError("the writer was loaded although every passage's questions are stored")

    monkeypatch.setattr(labels, "open_writer", no_writer)
    again = knowledge.main(cfg, run_dir).to_json()
    assert _sets(run_dir) == before and again["rows"] == summary["rows"]
