"""A deterministic synthetic world of facts, rendered as passages with closed-book questions.

Three kinds of entities (people, companies, towns), each with five stated attributes, and facts that follow
from them but are *not stated* in the passage:

- through background knowledge every model learns in pretraining (which country a city lies in, which field
  an occupation belongs to, what an industry produces): "born in Calder" -> "born in Vetland";
- through a second entity the passage describes (a two-hop composition): "studied at Orwell Academy" +
  "Orwell Academy is located in Portree" -> "studied in Portree".

An RL or eval passage asks one of its stated facts and every derived one (three or four), a pretraining entity
three of each. Training on the passage alone teaches the stated facts; a self-edit that writes the derived
facts out teaches the rest. That is what SQuAD implications do for a real model, and it is what lets SEAL show
its effect on a tiny one.

Splits (`pretrain`, `train`, `eval`) hold disjoint entities: every name (person, company, school, town) is
drawn once for the whole world, so no fact of a held-out passage occurs anywhere else.

Names come in two families built from disjoint halves of the name pools: the `known` family names the
pretraining entities, whose facts a model memorises; the `new` family names the RL and eval entities and the
throwaway entities of self-edit demonstrations, whose facts change from one demonstration to the next. A model
pretrained on this world learns that facts about a `new` name can only be read from the passage in front of it
(it must copy), while facts about `known` names are worth remembering, and every token of a held-out passage
was seen in pretraining.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import lru_cache

from seal.data import context_id
from seal.domains.base import QA, Context
from seal.world import pools as P
from seal.world.templates import KINDS

WORLD_SEED = 1234
SPLIT_SIZES = {  # passages per kind and split
    "pretrain": {"person": 300, "company": 60, "town": 60},
    "train": {"person": 160, "company": 40, "town": 40},
    "eval": {"person": 160, "company": 40, "town": 40},
}
# (stated, derived) questions per passage; None = every derived fact. RL and eval passages ask one stated fact
# and every derived one: the derived facts are what a self-edit can add and repeating the passage cannot. Pretraining
# and demonstration entities keep (3, 3), which the shipped model's corpus was drawn with.
N_QUESTIONS = {"pretrain": (3, 3), "train": (1, None), "eval": (1, None), "demo": (3, 3)}
# how questions are asked: pretraining's templates, held-out ones, reward ones, each question both in the
# standard and the reward wording (`mixed`), or in every standard template of its relation (`every`)
WORDINGS = ("standard", "heldout", "reward", "mixed", "every")
QA_FRACTION = 0.75  # pretraining entities with closed-book QA in the corpus; the rest measure generalisation
DEMO_NAMES = {"person": 1200, "company": 150, "school": 150, "town": 150}  # reserved for demonstrations


def article(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


@dataclass
class Entity:
    kind: str
    name: str
    attrs: dict[str, str]  # every field a template may use: stated, bridge and derived values
    split: str
    questions: list[tuple[str, str, str]] = field(default_factory=list)  # (relation, template, answer)
    qa: bool = True  # pretraining only: does the corpus hold closed-book QA about it?

    @property
    def fields(self) -> dict[str, str]:
        return {"name": self.name, **self.attrs}


class NamePool:
    """Hands out each name once across the whole world."""

    def __init__(self, names: list[str], rng: random.Random, what: str):
        self.names = list(names)
        rng.shuffle(self.names)
        self.what = what

    def take(self) -> str:
        if not self.names:
            raise RuntimeError(f"the world ran out of {self.what} names; lower SPLIT_SIZES")
        return self.names.pop()


class World:
    def __init__(self, seed: int = WORLD_SEED, sizes: dict = SPLIT_SIZES):
        self.seed = seed
        rng = random.Random(seed)
        half = lambda xs, i: xs[i::2]  # the two name families: alternate elements of each pool
        self.pools = {family: {
            "person": NamePool([f"{f} {s}" for f in half(P.FIRST_NAMES, i) for s in half(P.SURNAMES, i)], rng,
                               f"{family} person"),
            "company": NamePool([f"{s} {x}" for s in half(P.COMPANY_STEMS, i) for x in P.COMPANY_SUFFIXES], rng,
                                f"{family} company"),
            "school": NamePool([f"{s} {x}" for s in half(P.SURNAMES, i) for x in P.SCHOOL_SUFFIXES], rng,
                               f"{family} school"),
            "town": NamePool([f"{p} {s}" for p in P.TOWN_PREFIXES for s in half(P.TOWN_STEMS, i)], rng,
                             f"{family} town"),
        } for i, family in enumerate(("known", "new"))}
        self.entities: dict[str, list[Entity]] = {}
        for split in ("pretrain", "train", "eval"):  # fixed order: sizes of one split never move another
            self.entities[split] = self._make_split(split, sizes[split])
        self.demo_names = {kind: [self.pools["new"][kind].take() for _ in range(n)] for kind, n in DEMO_NAMES.items()}

    def _make_split(self, split: str, n: dict[str, int]) -> list[Entity]:
        rng = random.Random(f"{self.seed}-{split}")
        pools = self.pools["known" if split == "pretrain" else "new"]
        take = lambda kind: pools[kind].take()
        # second entities a person's passage describes, shared within the split: schools with their city, and
        # the split's companies (so an employer's city is that company's headquarters)
        schools = [(take("school"), rng.choice(P.CITIES)) for _ in range(n["company"])]
        companies = [self._make("company", take("company"), split, rng, take) for _ in range(n["company"])]
        employers = [(c.name, c.attrs["hq_city"]) for c in companies]
        ents = companies + [self._make(kind, take(kind), split, rng, take, schools, employers)
                            for kind in ("person", "town") for _ in range(n[kind])]
        rng.shuffle(ents)
        if split == "pretrain":
            for e in ents:
                e.qa = rng.random() < QA_FRACTION
        return ents

    # --- entities ---

    @staticmethod
    def _attrs(kind: str, rng: random.Random, take, schools, employers) -> dict[str, str]:
        if kind == "person":
            occupation, birth_city = rng.choice(P.OCCUPATIONS), rng.choice(P.CITIES)
            (school, school_city), (employer, employer_city) = rng.choice(schools), rng.choice(employers)
            return {
                "birth_year": rng.choice(P.YEARS), "birth_city": birth_city, "occupation": occupation,
                "a_occupation": article(occupation), "school": school, "school_city": school_city,
                "employer": employer, "employer_city": employer_city,
                "birth_country": P.CITY_COUNTRY[birth_city], "field": P.OCCUPATION_FIELD[occupation],
            }
        if kind == "company":
            hq_city, industry = rng.choice(P.CITIES), rng.choice(P.INDUSTRIES)
            return {
                "founded_year": rng.choice(P.YEARS), "founder": take("person"), "founder_city": rng.choice(P.CITIES),
                "hq_city": hq_city, "industry": industry, "chief": take("person"),
                "hq_country": P.CITY_COUNTRY[hq_city], "product": P.INDUSTRY_PRODUCT[industry],
            }
        twin, industry = rng.choice(P.CITIES), rng.choice(P.INDUSTRIES)
        return {
            "founded_year": rng.choice(P.YEARS), "river": rng.choice(P.RIVERS), "mayor": take("person"),
            "mayor_year": rng.choice(P.YEARS), "twin_city": twin, "industry": industry,
            "twin_country": P.CITY_COUNTRY[twin], "product": P.INDUSTRY_PRODUCT[industry],
        }

    def _make(self, kind: str, name: str, split: str, rng: random.Random, take, schools=(), employers=()) -> Entity:
        ent = Entity(kind, name, self._attrs(kind, rng, take, schools, employers), split)
        spec = KINDS[kind]
        n_direct, n_derived = N_QUESTIONS[split]
        direct = rng.sample(sorted(spec.direct), n_direct)
        derived = rng.sample(sorted(spec.derived), min(n_derived or len(spec.derived), len(spec.derived)))
        for rel in direct + derived:
            ent.questions.append((rel, rng.choice(spec.question_templates(rel)), ent.attrs[spec.answer_field(rel)]))
        return ent

    def demo_entity(self, rng: random.Random) -> Entity:
        """A throwaway entity for self-edit demonstrations: a reserved `new` name and facts drawn afresh."""
        kind = rng.choices(["person", "company", "town"], [5, 2, 2])[0]
        take = lambda k: rng.choice(self.demo_names[k])
        schools = [(take("school"), rng.choice(P.CITIES))]
        employers = [(take("company"), rng.choice(P.CITIES))]
        return self._make(kind, take(kind), "demo", rng, take, schools, employers)

    # --- rendering ---

    def render(self, ent: Entity, rng: random.Random) -> list[tuple[str, str]]:
        """(key, sentence) pairs: the stated facts in varied templates and order (a bridge after its
        introducer); 4-6 sentences."""
        units = [[(key, rng.choice(templates)) for key, templates in unit] for unit in KINDS[ent.kind].sentences]
        rng.shuffle(units)
        return [(key, t.format(**ent.fields)) for unit in units for key, t in unit]

    def passage(self, ent: Entity, rng: random.Random) -> str:
        return " ".join(s for _, s in self.render(ent, rng))

    def sentences(self, ent: Entity) -> list[tuple[str, str]]:
        """The keyed sentences of the entity's canonical passage (the one its Context holds)."""
        return self.render(ent, random.Random(f"{self.seed}-passage-{ent.name}"))

    def context(self, ent: Entity, wording: str = "standard") -> Context:
        """The entity's passage and questions; `wording="heldout"` or `"reward"` asks the same questions in
        other wordings (`KindSpec.heldout`, `KindSpec.reward`), `"mixed"` asks each in the standard and the
        reward wording, `"every"` in each of its relation's standard templates. The passage, its id and the
        answers are the same either way."""
        if wording not in WORDINGS:
            raise ValueError(f"unknown question wording '{wording}' ({', '.join(WORDINGS)})")
        text = " ".join(s for _, s in self.sentences(ent))
        spec = KINDS[ent.kind]
        if wording == "every":
            qas = tuple(QA(t.format(**ent.fields), answer) for rel, _, answer in ent.questions
                        for t in spec.question_templates(rel))
        else:
            wordings = ("standard", "reward") if wording == "mixed" else (wording,)
            qas = tuple(QA(spec.reworded(w, rel, t).format(**ent.fields), answer)
                        for w in wordings for rel, t, answer in ent.questions)
        return Context(context_id(ent.name, text), ent.name, text, qas, payload=ent)

    def split(self, name: str, wording: str = "standard") -> list[Context]:
        if name not in self.entities:
            raise ValueError(f"unknown world split '{name}' (pretrain, train, eval)")
        return [self.context(e, wording) for e in self.entities[name]]

    def facts(self, split: str) -> set[tuple[str, str, str]]:
        """Every (entity, attribute, value) fact of a split, bridge entities' facts under their own names."""
        out = set()
        for e in self.entities[split]:
            for k, v in e.attrs.items():
                out.add((e.name, k, v))
            for subject_field, rel, value_field in KINDS[e.kind].bridges:
                out.add((e.attrs[subject_field], rel, e.attrs[value_field]))
        return out


@lru_cache(maxsize=1)
def default_world() -> World:
    return World()
