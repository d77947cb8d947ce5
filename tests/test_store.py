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
