"""The synthetic world: deterministic, disjoint splits, passages in the record format."""

import random
import re

import pytest

from seal.world.corpus import STYLE_WEIGHTS, document_text, epoch_documents, self_edit
from seal.world.generator import World, default_world
from seal.world.templates import KINDS


@pytest.fixture(scope="module")
def world():
    return default_world()


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


def test_no_eval_fact_in_the_pretraining_corpus(world):
    corpus = "\n".join(epoch_documents(world, 0, "\n") + epoch_documents(world, 1, "\n"))  # the tokenizer's text
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
