"""A deterministic synthetic world of facts, rendered as passages with closed-book questions.

Three kinds of entities (people, companies, towns), each with five stated attributes, and facts that follow
from them but are *not stated* in the passage:

- through background knowledge every model learns in pretraining (which country a city lies in, which field
  an occupation belongs to, what an industry produces): "born in Calder" -> "born in Vetland";
- through a second entity the passage describes (a two-hop composition): "studied at Orwell Academy" +
  "Orwell Academy is located in Portree" -> "studied in Portree".

Half of every passage's questions ask for such derived facts. Training on the passage alone teaches the stated
facts; a self-edit that writes the derived facts out teaches the rest. That is what SQuAD implications do for
a real model, and it is what lets SEAL show its effect on a tiny one.

Splits (`pretrain`, `train`, `eval`) hold disjoint entities: every name (person, company, school, town) is
drawn once for the whole world, so no fact of a held-out passage occurs anywhere else.
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
    "pretrain": {"person": 900, "company": 200, "town": 150},
    "train": {"person": 160, "company": 40, "town": 40},
    "eval": {"person": 160, "company": 40, "town": 40},
}
N_DIRECT, N_DERIVED = 3, 3  # questions per passage


def article(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


@dataclass
class Entity:
    kind: str
    name: str
    attrs: dict[str, str]  # every field a template may use: stated, bridge and derived values
    split: str
    questions: list[tuple[str, str, str]] = field(default_factory=list)  # (relation, template, answer)

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
        self.people = NamePool([f"{f} {s}" for f in P.FIRST_NAMES for s in P.SURNAMES], rng, "person")
        self.companies = NamePool([f"{s} {x}" for s in P.COMPANY_STEMS for x in P.COMPANY_SUFFIXES], rng, "company")
        self.schools = NamePool([f"{s} {x}" for s in P.SURNAMES for x in P.SCHOOL_SUFFIXES], rng, "school")
        self.towns = NamePool([f"{p} {s}" for p in P.TOWN_PREFIXES for s in P.TOWN_STEMS], rng, "town")
        self.entities: dict[str, list[Entity]] = {}
        for split in ("pretrain", "train", "eval"):  # fixed order: sizes of one split never move another
            srng = random.Random(f"{seed}-{split}")
            n = sizes[split]
            # second entities a person's passage describes, shared within the split: schools with their city,
            # and the split's companies (so an employer's city is that company's headquarters)
            self._schools = [(self.schools.take(), srng.choice(P.CITIES)) for _ in range(n["company"])]
            companies = [self._make("company", split, srng) for _ in range(n["company"])]
            self._employers = [(c.name, c.attrs["hq_city"]) for c in companies]
            ents = companies + [self._make(kind, split, srng) for kind in ("person", "town")
                                for _ in range(n[kind])]
            srng.shuffle(ents)
            self.entities[split] = ents

    # --- entities ---

    def _person_attrs(self, rng: random.Random) -> dict[str, str]:
        occupation, birth_city = rng.choice(P.OCCUPATIONS), rng.choice(P.CITIES)
        (school, school_city), (employer, employer_city) = rng.choice(self._schools), rng.choice(self._employers)
        return {
            "birth_year": rng.choice(P.YEARS), "birth_city": birth_city, "occupation": occupation,
            "a_occupation": article(occupation), "school": school, "school_city": school_city,
            "employer": employer, "employer_city": employer_city,
            "birth_country": P.CITY_COUNTRY[birth_city], "field": P.OCCUPATION_FIELD[occupation],
        }

    def _company_attrs(self, rng: random.Random) -> dict[str, str]:
        hq_city, industry = rng.choice(P.CITIES), rng.choice(P.INDUSTRIES)
        return {
            "founded_year": rng.choice(P.YEARS), "founder": self.people.take(), "founder_city": rng.choice(P.CITIES),
            "hq_city": hq_city, "industry": industry, "chief": self.people.take(),
            "hq_country": P.CITY_COUNTRY[hq_city], "product": P.INDUSTRY_PRODUCT[industry],
        }

    def _town_attrs(self, rng: random.Random) -> dict[str, str]:
        twin, industry = rng.choice(P.CITIES), rng.choice(P.INDUSTRIES)
        return {
            "founded_year": rng.choice(P.YEARS), "river": rng.choice(P.RIVERS), "mayor": self.people.take(),
            "mayor_year": rng.choice(P.YEARS), "twin_city": twin, "industry": industry,
            "twin_country": P.CITY_COUNTRY[twin], "product": P.INDUSTRY_PRODUCT[industry],
        }

    def _make(self, kind: str, split: str, rng: random.Random) -> Entity:
        name = {"person": self.people, "company": self.companies, "town": self.towns}[kind].take()
        attrs = {"person": self._person_attrs, "company": self._company_attrs, "town": self._town_attrs}[kind](rng)
        ent = Entity(kind, name, attrs, split)
        spec = KINDS[kind]
        direct = rng.sample(sorted(spec.direct), N_DIRECT)
        derived = rng.sample(sorted(spec.derived), min(N_DERIVED, len(spec.derived)))
        for rel in direct + derived:
            templates = spec.direct.get(rel) or spec.derived[rel].questions
            ent.questions.append((rel, rng.choice(templates), attrs[spec.answer_field(rel)]))
        return ent

    # --- rendering ---

    def passage(self, ent: Entity, rng: random.Random) -> str:
        """3-6 sentences: the stated facts, in varied templates and order (a bridge after its introducer)."""
        units = [[rng.choice(group) for group in unit] for unit in KINDS[ent.kind].sentences]
        rng.shuffle(units)
        return " ".join(s.format(**ent.fields) for unit in units for s in unit)

    def context(self, ent: Entity) -> Context:
        text = self.passage(ent, random.Random(f"{self.seed}-passage-{ent.name}"))
        qas = tuple(QA(t.format(**ent.fields), answer) for _, t, answer in ent.questions)
        return Context(context_id(ent.name, text), ent.name, text, qas, payload=ent)

    def split(self, name: str) -> list[Context]:
        if name not in self.entities:
            raise ValueError(f"unknown world split '{name}' (pretrain, train, eval)")
        return [self.context(e) for e in self.entities[name]]

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
