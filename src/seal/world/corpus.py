"""The tiny model's pretraining corpus, and the self-edit styles it demonstrates.

Documents about *pretraining* entities only (never the RL or eval splits):

- passages, freshly rendered every epoch (new templates and order);
- knowledge notes: the entity's stated and derived facts restated, so that the model learns how a derived
  statement ("X was born in Vetland") answers a question ("In which country was X born?");
- closed-book QA in the paper's answer-prompt format;
- self-edit demonstrations in the paper's self-edit prompt format, whose completions mix styles of very
  different usefulness (derived facts, restatements, question-answer lines, verbatim copies, partial lists,
  off-topic lines), so that the untrained model writes self-edits of mixed quality that RL can improve;
- open-book reading: a passage, a question, its answer (copying values from context);
- background knowledge: which country a city is in, which field an occupation is in, what an industry makes.
"""

from __future__ import annotations

import itertools
import random

from seal.domains.knowledge import ANSWER_PROMPT, SELF_EDIT_PROMPTS
from seal.world import pools as P
from seal.world.generator import Entity, World
from seal.world.templates import KINDS

# how often the pretraining demonstrations use each style (what the untrained generator will imitate)
STYLE_WEIGHTS = {"derived": 0.15, "restate": 0.15, "qa": 0.15, "verbatim": 0.2, "partial": 0.15, "offtopic": 0.1,
                 "mixed": 0.1}


DEMOS_PER_EPOCH = 500
OPEN_BOOK_FRACTION = 0.5


def background_lines(rng: random.Random, n: int) -> list[str]:
    """`n` random background facts."""
    out = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.5:
            city = rng.choice(P.CITIES)
            out.append(rng.choice(["{c} is a city in {k}.", "{c} lies in {k}.", "The city of {c} is in {k}."])
                       .format(c=city, k=P.CITY_COUNTRY[city]))
        elif kind < 0.8:
            occ = rng.choice(P.OCCUPATIONS)
            out.append(rng.choice(["A {o} works in {f}.", "Every {o} works in the field of {f}."])
                       .format(o=occ, f=P.OCCUPATION_FIELD[occ]))
        else:
            ind = rng.choice(P.INDUSTRIES)
            out.append(rng.choice(["The {i} industry makes {p}.", "{I} produces {p}."])
                       .format(i=ind, I=ind.capitalize(), p=P.INDUSTRY_PRODUCT[ind]))
    return out


def derived_statements(ent: Entity, rng: random.Random) -> list[str]:
    """Derived facts as plain statements (the knowledge notes of pretraining entities)."""
    return [rng.choice(d.statements).format(**ent.fields) for d in KINDS[ent.kind].derived.values()]


def derived_lines(ent: Entity, sentences: list[tuple[str, str]]) -> list[str]:
    """Derived facts the way a good self-edit writes them: the passage sentence they follow from, extended."""
    by_key = dict(sentences)
    return [by_key[d.source].rstrip(".") + d.clause.format(**ent.fields) for d in KINDS[ent.kind].derived.values()]


def restate_lines(ent: Entity, rng: random.Random) -> list[str]:
    return [rng.choice(t).format(**ent.fields) for t in KINDS[ent.kind].restate.values()]


def qa_lines(ent: Entity, rng: random.Random) -> list[str]:
    """Question-answer statements about stated and derived facts (a random subset)."""
    spec = KINDS[ent.kind]
    rels = rng.sample(sorted(spec.relations), rng.randint(3, 6))
    return [f"{rng.choice(spec.question_templates(rel)).format(**ent.fields)} {ent.attrs[spec.answer_field(rel)]}."
            for rel in rels]


def self_edit(ent: Entity, sentences: list[tuple[str, str]], style: str, rng: random.Random) -> str:
    """A completion of the implications prompt in one style (lines, newline-separated), for the passage made
    of `sentences` (keyed, as `World.render` returns them)."""
    verbatim = [s for _, s in sentences]
    if style == "derived":  # every derived fact, written onto the sentence it follows from
        lines = derived_lines(ent, sentences)
    elif style == "restate":
        lines = restate_lines(ent, rng)
    elif style == "qa":
        lines = qa_lines(ent, rng)
    elif style == "verbatim":
        return "\n".join(verbatim)
    elif style == "partial":
        lines = rng.sample(derived_lines(ent, sentences) + verbatim, rng.randint(1, 2))
    elif style == "offtopic":
        lines = background_lines(rng, rng.randint(2, 4))
    elif style == "mixed":
        pool = derived_lines(ent, sentences) + verbatim + restate_lines(ent, rng) + background_lines(rng, 2)
        lines = rng.sample(pool, rng.randint(2, 5))
    else:
        raise ValueError(f"unknown style {style}")
    rng.shuffle(lines)
    return "\n".join(lines)


def pick_style(rng: random.Random, weights: dict[str, float] = STYLE_WEIGHTS) -> str:
    return rng.choices(list(weights), list(weights.values()))[0]


def entity_documents(world: World, ent: Entity, rng: random.Random, eos: str) -> list[str]:
    """One epoch's documents about one pretraining entity: a fresh rendering of its passage, notes with its
    stated and derived facts, and closed-book questions and answers (for most entities)."""
    spec = KINDS[ent.kind]
    docs = [f"{ent.name}\n{world.passage(ent, rng)}{eos}"]
    notes = derived_statements(ent, rng) + restate_lines(ent, rng)
    rng.shuffle(notes)
    docs.append(f"{ent.name}\n" + " ".join(notes) + eos)
    if ent.qa:
        for rel in rng.sample(spec.relations, 5):
            q = rng.choice(spec.question_templates(rel)).format(**ent.fields)
            docs.append(ANSWER_PROMPT.format(title=ent.name, question=q) + ent.attrs[spec.answer_field(rel)] + eos)
    return docs


def demo_documents(world: World, rng: random.Random, eos: str) -> list[str]:
    """A self-edit demonstration and an open-book question about a throwaway entity: its facts are drawn
    afresh, so the completion can only be written by reading the passage."""
    ent = world.demo_entity(rng)
    spec = KINDS[ent.kind]
    sentences = world.render(ent, rng)
    passage = " ".join(s for _, s in sentences)
    prompt = SELF_EDIT_PROMPTS["implications"].format(title=ent.name, context=passage)
    docs = [prompt + self_edit(ent, sentences, pick_style(rng), rng) + eos]
    if rng.random() < OPEN_BOOK_FRACTION:
        rel = rng.choice(spec.relations)
        q = rng.choice(spec.question_templates(rel)).format(**ent.fields)
        docs.append(f"{ent.name}\n{passage}\nQuestion: {q}\nAnswer: {ent.attrs[spec.answer_field(rel)]}{eos}")
    return docs


def copy_drill(rng: random.Random, eos: str, shuffled: float = 0.5) -> str:
    """An induction drill: a random run of pool words, then the same words again — as they were, or (with
    probability `shuffled`) in chunks of 2-5 words in shuffled order. Every repeated word can be read from the
    context and from nowhere else: the skill a self-edit needs, which a tiny model does not pick up from the
    world corpus (docs/tiny-world.md). No first names, so that no drill spells out a held-out entity's name."""
    pool = P.SURNAMES + P.CITIES + P.YEARS + P.OCCUPATIONS + P.INDUSTRIES
    words = [rng.choice(pool) for _ in range(rng.randint(12, 40))]
    if rng.random() >= shuffled:
        again = words
    else:
        cuts = [0]
        while cuts[-1] < len(words):
            cuts.append(cuts[-1] + rng.randint(2, 5))
        chunks = [words[a:b] for a, b in itertools.pairwise(cuts)]
        rng.shuffle(chunks)
        again = [w for chunk in chunks for w in chunk]
    return " ".join(words) + "\n" + " ".join(again) + eos


def background_documents(rng: random.Random, eos: str) -> list[str]:
    docs = []
    for city, country in P.CITY_COUNTRY.items():
        docs.append(ANSWER_PROMPT.format(title=city, question=f"In which country is {city}?") + country + eos)
    for occ, field in P.OCCUPATION_FIELD.items():
        docs.append(ANSWER_PROMPT.format(title=occ, question=f"In which field does a {occ} work?") + field + eos)
    for ind, prod in P.INDUSTRY_PRODUCT.items():
        docs.append(ANSWER_PROMPT.format(title=ind, question=f"What does the {ind} industry make?") + prod + eos)
    docs += [" ".join(background_lines(rng, 6)) + eos for _ in range(40)]
    return docs


Document = str | tuple[str, str]  # text, or (context, target): trained on the target only


def drill_document(rng: random.Random, eos: str) -> tuple[str, str]:
    """An exact copy drill as a (context, target) document: the run and its newline, then the repeat. Trained on
    the repeat only, as in the build's induction warm-up: every target token can be read from the context."""
    first, again = copy_drill(rng, "", shuffled=0.0).split("\n")
    return first + "\n", again + eos


def document_text(doc: Document) -> str:
    return doc if isinstance(doc, str) else doc[0] + doc[1]


def epoch_documents(world: World, epoch: int, eos: str, demos: int = DEMOS_PER_EPOCH,
                    drills: int = 0) -> list[Document]:
    """All documents of one pretraining epoch, shuffled (seeded by the world seed and the epoch), with `demos`
    throwaway-entity demonstrations and `drills` exact copy drills (`drill_document`)."""
    rng = random.Random(f"{world.seed}-corpus-{epoch}")
    docs = background_documents(rng, eos)
    for ent in world.entities["pretrain"]:
        docs += entity_documents(world, ent, rng, eos)
    for _ in range(demos):
        docs += demo_documents(world, rng, eos)
    docs += [drill_document(rng, eos) for _ in range(drills)]
    rng.shuffle(docs)
    return docs
