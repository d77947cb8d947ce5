"""The synthetic world: deterministic, disjoint splits, passages in the record format."""

import random
import re

import pytest

from seal.world.corpus import STYLE_WEIGHTS, document_text, epoch_documents, self_edit
from seal.world.generator import WORDINGS, World, default_world
from seal.world.templates import KINDS


@pytest.fixture(scope="module")
def world():
    return default_world()


@pytest.fixture(scope="module")
def corpus(world):
    """Two pretraining epochs' documents as text (what the tokenizer is trained on)."""
    return [document_text(d) for epoch in (0, 1) for d in epoch_documents(world, epoch, "\n")]


def test_deterministic():
    a, b = World(), World()
    for split in ("pretrain", "train", "eval"):
        assert a.split(split) == b.split(split)
    assert World(seed=7).split("eval") != a.split("eval")


def test_splits_are_disjoint_in_entities_and_facts(world):
    names = {s: {e.name for e in world.entities[s]} for s in ("pretrain", "train", "eval")}
    assert not names["eval"] & (names["pretrain"] | names["train"])
    assert not names["train"] & names["pretrain"]
    held_out = world.facts("eval")
    assert not held_out & (world.facts("pretrain") | world.facts("train"))
    # second entities (schools, employers, founders, mayors) are not shared either
    subjects = lambda s: {f[0] for f in world.facts(s)}
    assert not subjects("eval") & (subjects("pretrain") | subjects("train"))
    demo = {n for names_ in world.demo_names.values() for n in names_}
    assert not demo & (subjects("eval") | subjects("train") | subjects("pretrain"))


def test_no_eval_fact_in_the_pretraining_corpus(world, corpus):
    corpus = "\n".join(corpus)
    for e in world.entities["eval"][:40] + world.entities["train"][:40]:
        assert e.name not in corpus
    # ...but every word of a held-out passage was seen in pretraining
    vocab = set(re.findall(r"\w+", corpus))
    for c in world.split("eval")[:40]:
        assert set(re.findall(r"\w+", c.title + " " + c.text)) <= vocab


def test_passages_and_questions(world):
    for c in world.split("eval"):
        ent = c.payload
        sentences = [s for s in re.split(r"(?<=\.) ", c.text) if s]
        assert 3 <= len(sentences) <= 6
        assert 5 <= len(KINDS[ent.kind].direct) <= 8
        n_derived = sum(rel in KINDS[ent.kind].derived for rel, _, _ in ent.questions)
        assert n_derived == len(KINDS[ent.kind].derived) and len(c.questions) == 1 + n_derived
        for (rel, _, answer), qa in zip(ent.questions, c.questions):
            assert qa.answer == answer and ent.name in qa.question
            stated = answer in c.text
            if rel in KINDS[ent.kind].direct:
                assert stated, (rel, c.text)
    # derived facts need a second hop: through a bridge sentence of the passage (the school's city), or
    # through background knowledge (a city's country), whose answers the passage does not state (a derived
    # value may coincide with a stated one)
    background = [qa.answer in c.text for c in world.split("eval") for (rel, _, _), qa in
                  zip(c.payload.questions, c.questions)
                  if rel in KINDS[c.payload.kind].derived and not KINDS[c.payload.kind].derived[rel].source.endswith("_bridge")]
    assert background and sum(background) / len(background) < 0.25


@pytest.mark.parametrize("style", sorted(STYLE_WEIGHTS))
def test_self_edit_styles(world, style):
    ent = world.entities["eval"][0]
    text = self_edit(ent, world.sentences(ent), style, random.Random(0))
    lines = text.splitlines()
    assert lines and all(line.strip() for line in lines)
    if style == "derived":
        for rel in KINDS[ent.kind].derived:
            assert any(ent.attrs[rel] in line for line in lines)


def test_copy_drills(world):
    from seal.world.corpus import copy_drill

    rng = random.Random(0)
    for _ in range(50):
        first, again = copy_drill(rng, "<eos>").removesuffix("<eos>").split("\n")
        assert 12 <= len(first.split()) <= 40
        assert sorted(first.split()) == sorted(again.split())  # the same words: exact, or chunks shuffled
    plain = epoch_documents(world, 0, "\n", demos=10)
    drilled = epoch_documents(world, 0, "\n", demos=10, drills=30)
    assert len(drilled) == len(plain) + 30
    # in the corpus a drill is exact and trained on its repeat only: (the run and a newline, the run and EOS)
    drills = [d for d in drilled if isinstance(d, tuple)]
    assert len(drills) == 30 and all(isinstance(d, str) for d in plain)
    assert all(ctx.endswith("\n") and ctx.count("\n") == 1 and tgt == ctx[:-1] + "\n" for ctx, tgt in drills)
    held_out = [e.name for e in world.entities["eval"][:40]]
    assert not any(name in document_text(doc) for doc in drilled for name in held_out)


STOPWORDS = set("a an the of in on at to for by from with and or is was are were be been does did do which what who "
                "whom where when how that this its his her their has have had it as".split())
PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


def _content_trigrams(text: str) -> set[tuple[str, str, str]]:
    """Trigrams of consecutive content words (stopwords dropped), never across a template placeholder."""
    out = set()
    for segment in PLACEHOLDER.split(text):
        words = [w for w in re.findall(r"[a-z]+", segment.lower()) if w not in STOPWORDS]
        out |= set(zip(words, words[1:], words[2:]))
    return out


def _words(template: str) -> list[str]:
    """The template's words, placeholders dropped."""
    return re.findall(r"[a-z]+", PLACEHOLDER.sub(" ", template).lower())


def _content_words(template: str) -> tuple[str, ...]:
    return tuple(sorted(w for w in _words(template) if w not in STOPWORDS))


def test_heldout_wordings_share_no_content_trigram_with_what_the_model_learns_from(world, corpus):
    """The held-out question wordings: none of their content-word trigrams occurs in pretraining (passages,
    notes, closed-book QA, the self-edit demonstrations; two epochs' renderings) or in the RL passages'
    questions (in every wording RL may ask them), none is a standard template with its words reordered, and every
    word is one pretraining used."""
    texts = corpus + [q.question for wording in WORDINGS if wording != "heldout" for c in world.split("train", wording)
                      for q in c.questions]
    seen = set().union(*(_content_trigrams(t) for t in texts))
    vocab = {w for t in texts for w in re.findall(r"[a-z]+", t.lower())}
    standard = {_content_words(t) for spec in KINDS.values() for rel in spec.relations
                for t in spec.question_templates(rel)}
    for kind, spec in KINDS.items():
        assert set(spec.heldout) == set(spec.relations), kind
        for rel, templates in spec.heldout.items():
            for t in templates:
                assert not _content_trigrams(t) & seen, (kind, rel, t, _content_trigrams(t) & seen)
                assert _content_words(t) not in standard, (kind, rel, t)
                assert set(_words(t)) <= vocab, (kind, rel, t, set(_words(t)) - vocab)
    # the check can fail: a standard wording's trigram is in what the model learned from
    assert ("industry", "most", "people") in _content_trigrams("In which industry do most people in {name} work?") & seen


def test_reward_wordings_are_neither_standard_nor_heldout(world, corpus):
    """The reward wordings (RL passages' questions under `wording: reward`): none is a standard or held-out
    template with its words reordered, none shares a content-word trigram with a held-out one, and every word is
    one pretraining used."""
    vocab = {w for t in corpus for w in re.findall(r"[a-z]+", t.lower())}
    for kind, spec in KINDS.items():
        assert set(spec.reward) == set(spec.relations), kind
        heldout = [t for ts in spec.heldout.values() for t in ts]
        taken = ({_content_words(t) for rel in spec.relations for t in spec.question_templates(rel)}
                 | {_content_words(t) for t in heldout})
        heldout_trigrams = set().union(*(_content_trigrams(t) for t in heldout))
        for rel, templates in spec.reward.items():
            for t in templates:
                assert _content_words(t) not in taken, (kind, rel, t)
                assert not _content_trigrams(t) & heldout_trigrams, (kind, rel, t)
                assert set(_words(t)) <= vocab, (kind, rel, t)
    # the check can fail: a standard template reordered has the same content words
    assert _content_words("Which year was {name} born in?") in {
        _content_words(t) for t in KINDS["person"].question_templates("birth_year")}


@pytest.mark.parametrize("wording", ["heldout", "reward"])
def test_other_wordings_ask_the_same_questions_of_the_same_passages(world, wording):
    standard, other = world.split("eval"), world.split("eval", wording)
    assert [(c.id, c.text) for c in standard] == [(c.id, c.text) for c in other]
    for s, h in zip(standard, other):
        assert [q.answers for q in s.questions] == [q.answers for q in h.questions]
        assert all(a.question != b.question for a, b in zip(s.questions, h.questions))
    with pytest.raises(ValueError, match="wording"):
        world.split("eval", "paraphrased")


def test_mixed_and_every_wordings_ask_each_question_more_than_once(world):
    for s, r, m, e in zip(*(world.split("train", w) for w in ("standard", "reward", "mixed", "every"))):
        assert m.questions == s.questions + r.questions and (m.id, m.text) == (s.id, s.text) == (e.id, e.text)
        # `every`: each question in both of its relation's templates, the standard one among them
        assert len(e.questions) == 2 * len(s.questions) and set(s.questions) <= set(e.questions)
        assert [q.answers for q in e.questions] == [q.answers for q in s.questions for _ in range(2)]
