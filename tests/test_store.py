import sqlite3

from seal.domains.base import Score, SelfEdit
from seal.store import RoundRecord, ScoreKey, Store, derive_seed


def test_seeds_are_stable_and_distinct():
    assert derive_seed(0, "train", 1, "c", 0, 0) == derive_seed(0, "train", 1, "c", 0, 0)
    seeds = {derive_seed(0, "train", 1, "c", s, r) for s in range(5) for r in range(3)}
    assert len(seeds) == 15 and all(0 <= s < 2**31 for s in seeds)


def test_round_trip_and_no_duplicates(tmp_path):
    st = Store(tmp_path / "s.sqlite")
    st.put_self_edits("train", 1, [SelfEdit("c1", "p", "x", "base", 0), SelfEdit("c1", "p", "y", "base", 1)])
    st.put_self_edits("train", 1, [SelfEdit("c1", "p", "changed", "base", 0)])  # first write wins
    edits = st.self_edits("train", 1)
    assert edits[("c1", 0)].completion == "x" and edits[("c1", 1)].completion == "y"
    k = ScoreKey("train", 1, "c1", 0, 2)
    st.put_scores([(k, Score([True, None, False], ["a", "b", "c"], 1.5, 0.5, n_steps=7))])
    st.put_scores([(k, Score([False, False, False], ["z", "z", "z"]))])
    s = st.scores("train", 1)[k]
    assert s.correct == [True, None, False] and s.accuracy == 0.5 and s.n_ungraded == 1 and s.n_steps == 7
    assert st.count_scores() == 1
    st.put_round(RoundRecord(1, "ckpt", 3, 0.5, 0.1, 10, 12.0))
    assert st.rounds()[0].n_kept == 3
    st.close()
    # a second connection sees everything (WAL, committed transactions)
    con = sqlite3.connect(tmp_path / "s.sqlite")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("SELECT COUNT(*) FROM self_edits").fetchone()[0] == 2


def test_invalid_and_failed_scores_are_zero(tmp_path):
    st = Store(tmp_path / "s.sqlite")
    st.put_scores([(ScoreKey("p", 0, "c"), Score([False], [], invalid="empty self-edit")),
                   (ScoreKey("p", 0, "d"), Score([True], ["x"], failed="non-finite loss at step 2"))])
    out = st.scores("p", 0)
    assert out[ScoreKey("p", 0, "c")].invalid == "empty self-edit"
    assert out[ScoreKey("p", 0, "d")].accuracy == 0.0


def test_has_scores_needs_every_context_at_sample_0_repeat_0(tmp_path):
    st = Store(tmp_path / "s.sqlite")
    st.put_scores([(ScoreKey("p", 1, "a"), Score([True], ["x"])), (ScoreKey("p", 1, "b", sample=1), Score([True], ["x"]))])
    assert st.has_scores("p", 1, ["a"]) and st.has_scores("p", 1, [])
    assert not st.has_scores("p", 1, ["a", "b"])  # b only has sample 1
    assert not st.has_scores("p", 2, ["a"]) and not st.has_scores("q", 1, ["a"])


def test_a_rerun_chunk_keeps_the_stored_scores(tmp_path):
    """A chunk holding a scored and an unscored item is run whole on resume; the scored item's stored score
    stands, in the store and in what score_self_edits returns (the table must agree with the store)."""
    from types import SimpleNamespace

    from seal.domains.base import QA, Context
    from seal.run import Item, score_self_edits

    ctxs = [Context(f"c{i}", "title", "text", (QA("q", "a"),)) for i in range(2)]
    domain = SimpleNamespace(plan=lambda ctx, edit: object(), probes=lambda ctx: [],
                             score=lambda ctx, res: Score([True], ["a"]))
    ran = []

    class OneChunk:  # the backend's interface: every job in one chunk
        def chunks(self, loaded, jobs):
            return [list(range(len(jobs)))]

        def run_chunks(self, loaded, jobs, todo):
            for ch in todo:
                ran.extend(ch)
                yield ch, [SimpleNamespace(step_losses=[0.5]) for _ in ch]

    st = Store(tmp_path / "s.sqlite")
    st.put_scores([(ScoreKey("eval/x", 0, "c0", 0, 0), Score([False], ["b"]))])
    items = [Item(c, None) for c in ctxs]
    scores = score_self_edits(st, "eval/x", 0, OneChunk(), None, domain, items, seed=0)
    assert ran == [0, 1]  # the chunk was rerun whole
    assert [scores[ScoreKey("eval/x", 0, c.id, 0, 0)].accuracy for c in ctxs] == [0.0, 1.0]
    assert {k.context_id: s.accuracy for k, s in st.scores("eval/x", 0).items()} == {"c0": 0.0, "c1": 1.0}


def test_a_rerun_generate_batch_keeps_the_stored_self_edits(tmp_path):
    """A generate batch holding a stored and a missing self-edit is regenerated whole; the stored one stands,
    in the store and in what sample_self_edits returns (it is the one that gets scored)."""
    from types import SimpleNamespace

    from seal.domains.base import QA, Context
    from seal.generate import SamplingParams
    from seal.run import sample_self_edits

    ctxs = [Context(f"c{i}", "title", "text", (QA("q", "a"),)) for i in range(2)]
    domain = SimpleNamespace(prompt=lambda ctx: f"prompt {ctx.id}")

    class Regenerates:
        def generate_batches(self, loaded, batches, params, seeds):
            for b, prompts in batches:
                yield b, [f"new {p}" for p in prompts]

    st = Store(tmp_path / "s.sqlite")
    st.put_self_edits("train", 1, [SelfEdit("c0", "prompt c0", "old", "base", 0)])
    edits = sample_self_edits(st, "train", 1, None, domain, ctxs, 1, SamplingParams(), seed=0, batch_size=2,
                              policy="base", backend=Regenerates())
    assert [edits[(c.id, 0)].completion for c in ctxs] == ["old", "new prompt c1"]
    assert {k: e.completion for k, e in st.self_edits("train", 1).items()} == {("c0", 0): "old",
                                                                                ("c1", 0): "new prompt c1"}
