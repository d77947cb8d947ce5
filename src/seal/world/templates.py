"""Sentence, question and statement templates of the synthetic world, per kind of entity.

`sentences`: units of the passage, each a list of (key, alternative templates); a bridge sentence, about a
second entity, stays right after the sentence that introduces it. Every template ends on the value a derived
fact builds on, so a good self-edit can copy a sentence and extend it.

`direct`: questions whose answer is stated. `derived`: facts that follow from the passage without being stated:
the questions that ask for them, the plain statements of them (`statements`), and the clause a self-edit
appends to the passage sentence it follows from (`source`, `clause`): "Ada Lowell was born in 1907 in Calder"
+ ", in Vetland". `restate`: stated facts in other words. `heldout`: each relation's question in a wording that
pretraining, the RL passages' questions and the self-edit demonstrations never use (no content-word 3-gram in
common with them; tests/test_world.py checks), for asking the table's questions in words the policy cannot
have learned from its reward (`data.eval.wording: heldout`). `reward`: each relation's question in a third
wording, neither a standard template with its words reordered nor sharing a content-word 3-gram with a held-out
one, for scoring the RL passages (`data.train.wording: reward`): the policy never sees its reward's questions,
so a reward in wordings its self-edits never write pays for facts stored in any form, not for copying the
questions' templates (docs/tiny-world.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Derived:
    questions: list[str]
    statements: list[str]
    source: str  # key of the passage sentence the fact follows from
    clause: str  # appended to that sentence (its final period dropped)


@dataclass
class KindSpec:
    sentences: list[list[tuple[str, list[str]]]]
    direct: dict[str, list[str]]
    derived: dict[str, Derived]
    restate: dict[str, list[str]]
    bridges: list[tuple[str, str, str]]  # (subject field, relation, value field) of facts about second entities
    heldout: dict[str, list[str]]  # relation -> question wordings never used in pretraining, RL or demonstrations
    reward: dict[str, list[str]]  # relation -> question wordings for scoring RL passages (`wording: reward`)
    answers: dict[str, str] = field(default_factory=dict)  # relation -> answer field when they differ

    def answer_field(self, relation: str) -> str:
        return self.answers.get(relation, relation)

    @property
    def relations(self) -> list[str]:
        """Every relation a question can ask about: stated ones, then derived ones."""
        return list(self.direct) + list(self.derived)

    def question_templates(self, relation: str) -> list[str]:
        return self.direct.get(relation) or self.derived[relation].questions

    def reworded(self, wording: str, relation: str, template: str) -> str:
        """The `heldout` or `reward` wording standing in for `template` (one of the relation's question
        templates); `standard` returns it unchanged."""
        if wording == "standard":
            return template
        alternatives = getattr(self, wording)[relation]
        return alternatives[self.question_templates(relation).index(template) % len(alternatives)]


PERSON = KindSpec(
    sentences=[
        [("birth", ["{name} was born in {birth_year} in {birth_city}.", "In {birth_year}, {name} was born in {birth_city}.",
                    "Born in {birth_year}, {name} comes from {birth_city}."])],
        [("occupation", ["{name} works as {a_occupation}.", "By profession, {name} is {a_occupation}.",
                         "{name} earns a living as {a_occupation}."])],
        [("school", ["{name} studied at {school}.", "{name} was educated at {school}.", "{name} attended {school}."]),
         ("school_bridge", ["{school} is located in {school_city}.", "{school} is a school in {school_city}.",
                            "{school} stands in {school_city}."])],
        [("employer", ["{name} works for {employer}.", "{name} is employed by {employer}.",
                       "{name} has a job at {employer}."]),
         ("employer_bridge", ["{employer} is based in {employer_city}.", "{employer} has its offices in {employer_city}.",
                              "The offices of {employer} are in {employer_city}."])],
    ],
    direct={
        "birth_year": ["In which year was {name} born?", "When was {name} born?"],
        "birth_city": ["In which city was {name} born?", "Where was {name} born?"],
        "occupation": ["What is the occupation of {name}?", "What does {name} do for a living?"],
        "school": ["Which school did {name} attend?", "Where was {name} educated?"],
        "employer": ["Which company does {name} work for?", "Who employs {name}?"],
    },
    derived={
        "birth_country": Derived(
            ["In which country was {name} born?", "What is the home country of {name}?"],
            ["{name} was born in {birth_country}.", "{name} is from {birth_country}."],
            "birth", ", in {birth_country}."),
        "field": Derived(
            ["In which field does {name} work?", "What field is {name} active in?"],
            ["{name} works in {field}.", "{name} works in the field of {field}."],
            "occupation", ", a job in {field}."),
        "school_city": Derived(
            ["In which city did {name} go to school?", "In which city did {name} study?"],
            ["{name} studied in {school_city}.", "{name} went to school in {school_city}."],
            "school_bridge", ", where {name} studied."),
        "employer_city": Derived(
            ["In which city does {name} work?", "Where is the workplace of {name}?"],
            ["{name} works in {employer_city}.", "{name} has a job in {employer_city}."],
            "employer_bridge", ", where {name} works."),
    },
    restate={
        "birth_year": ["The birth year of {name} is {birth_year}.", "{name} was born in the year {birth_year}."],
        "birth_city": ["The birthplace of {name} is {birth_city}.", "{name} comes from {birth_city}."],
        "occupation": ["The occupation of {name} is {occupation}.", "{name} is {a_occupation}."],
        "school": ["The school of {name} was {school}.", "{name} went to {school}."],
        "employer": ["The employer of {name} is {employer}.", "{name} is an employee of {employer}."],
    },
    bridges=[("school", "located_in", "school_city"), ("employer", "based_in", "employer_city")],
    heldout={
        "birth_year": ["What is the year of the birth of {name}?"],
        "birth_city": ["Which city is the birthplace of {name}?"],
        "occupation": ["What is the profession of {name}?"],
        "school": ["At which school did {name} study?"],
        "employer": ["Who is the employer of {name}?"],
        "birth_country": ["Which country is {name} a native of?"],
        "field": ["The job of {name} is in which field?"],
        "school_city": ["Which city is the school of {name} located in?"],
        "employer_city": ["Which city are the offices of the employer of {name} in?"],
    },
    reward={
        "birth_year": ["Which year is the birth year of {name}?"],
        "birth_city": ["{name} comes from which city?"],
        "occupation": ["What job does {name} do?"],
        "school": ["{name} went to which school?"],
        "employer": ["{name} is employed by which company?"],
        "birth_country": ["{name} comes from which country?"],
        "field": ["{name} earns a living in which field?"],
        "school_city": ["{name} went to school in which city?"],
        "employer_city": ["{name} has a job in which city?"],
    },
)

COMPANY = KindSpec(
    sentences=[
        [("founded", ["{name} was founded in {founded_year}.", "{name} dates back to {founded_year}.",
                      "{name} was established in {founded_year}."])],
        [("founder", ["{name} was started by {founder}.", "The founder of {name} is {founder}.",
                      "{name} was founded by {founder}."]),
         ("founder_bridge", ["{founder} was born in {founder_city}.", "{founder} came from {founder_city}.",
                             "{founder} is a native of {founder_city}."])],
        [("hq", ["{name} is based in {hq_city}.", "{name} has its headquarters in {hq_city}.",
                 "The headquarters of {name} are in {hq_city}."])],
        [("industry", ["{name} works in {industry}.", "{name} is active in {industry}.",
                       "The business of {name} is {industry}."])],
        [("chief", ["{name} is run by {chief}.", "The head of {name} is {chief}.", "{name} is led by {chief}."])],
    ],
    direct={
        "founded_year": ["In which year was {name} founded?", "When was {name} founded?"],
        "founder": ["Who founded {name}?", "Who is the founder of {name}?"],
        "hq_city": ["In which city is {name} based?", "Where are the headquarters of {name}?"],
        "industry": ["In which industry is {name} active?", "What business is {name} in?"],
        "chief": ["Who runs {name}?", "Who is the head of {name}?"],
    },
    derived={
        "hq_country": Derived(
            ["In which country is {name} based?", "Which country is {name} from?"],
            ["{name} is based in {hq_country}.", "{name} is a company from {hq_country}."],
            "hq", ", in {hq_country}."),
        "product": Derived(
            ["What does {name} make?", "What does {name} produce?"],
            ["{name} makes {product}.", "{name} produces {product}."],
            "industry", ", making {product}."),
        "founder_city": Derived(
            ["In which city was the founder of {name} born?", "Where does the founder of {name} come from?"],
            ["The founder of {name} was born in {founder_city}.", "The founder of {name} came from {founder_city}."],
            "founder_bridge", ", and founded {name}."),
    },
    restate={
        "founded_year": ["The founding year of {name} is {founded_year}.", "{name} was set up in {founded_year}."],
        "founder": ["{founder} is the founder of {name}.", "{founder} founded {name}."],
        "hq_city": ["The home of {name} is {hq_city}.", "{name} is located in {hq_city}."],
        "industry": ["The industry of {name} is {industry}.", "{name} is in the {industry} business."],
        "chief": ["{chief} is the head of {name}.", "{chief} leads {name}."],
    },
    bridges=[("founder", "born_in", "founder_city")],
    heldout={
        "founded_year": ["In what year was {name} established?"],
        "founder": ["Who started {name}?"],
        "hq_city": ["Which city is the home of {name}?"],
        "industry": ["{name} does business in which industry?"],
        "chief": ["Who is {name} led by?"],
        "hq_country": ["In which country are the offices of {name}?"],
        "product": ["What does {name} produce for its business?"],
        "founder_city": ["The founder of {name} is a native of which city?"],
    },
    reward={
        "founded_year": ["What is the founding year of {name}?"],
        "founder": ["Who set up {name}?"],
        "hq_city": ["{name} has its headquarters in which city?"],
        "industry": ["What is the industry of {name}?"],
        "chief": ["Who leads {name}?"],
        "hq_country": ["{name} is a company from which country?"],
        "product": ["{name} makes what?"],
        "founder_city": ["The founder of {name} came from which city?"],
    },
)

TOWN = KindSpec(
    sentences=[
        [("founded", ["{name} was founded in {founded_year}.", "{name} dates back to {founded_year}.",
                      "{name} was settled in {founded_year}."])],
        [("river", ["{name} lies on the {river} river.", "{name} is on the banks of the {river}.",
                    "The river of {name} is the {river}."])],
        [("mayor", ["The mayor of {name} is {mayor}.", "{name} is governed by {mayor}.", "{name} is led by {mayor}."]),
         ("mayor_bridge", ["{mayor} was born in {mayor_year}.", "{mayor} was born in the year {mayor_year}.",
                           "In {mayor_year}, {mayor} was born."])],
        [("twin", ["{name} is twinned with {twin_city}.", "{name} has a twin city, {twin_city}.",
                   "The twin city of {name} is {twin_city}."])],
        [("industry", ["The main industry of {name} is {industry}.", "{name} lives from {industry}.",
                       "Most people in {name} work in {industry}."])],
    ],
    direct={
        "founded_year": ["In which year was {name} founded?", "When was {name} founded?"],
        "river": ["On which river does {name} lie?", "Which river runs through {name}?"],
        "mayor": ["Who is the mayor of {name}?", "Who governs {name}?"],
        "twin_city": ["Which city is twinned with {name}?", "What is the twin city of {name}?"],
        "industry": ["What is the main industry of {name}?", "In which industry do most people in {name} work?"],
    },
    derived={
        "twin_country": Derived(
            ["In which country is the twin city of {name}?", "Which country is the twin city of {name} in?"],
            ["The twin city of {name} is in {twin_country}.", "{name} has a twin city in {twin_country}."],
            "twin", ", in {twin_country}."),
        "product": Derived(
            ["What is produced in {name}?", "What do the people of {name} make?"],
            ["{name} produces {product}.", "The people of {name} make {product}."],
            "industry", ", making {product}."),
        "mayor_year": Derived(
            ["In which year was the mayor of {name} born?", "When was the mayor of {name} born?"],
            ["The mayor of {name} was born in {mayor_year}.", "{name} has a mayor born in {mayor_year}."],
            "mayor_bridge", ", and is the mayor of {name}."),
    },
    restate={
        "founded_year": ["The founding year of {name} is {founded_year}.", "{name} was founded in the year {founded_year}."],
        "river": ["The {river} river runs through {name}.", "{name} is a town on the {river}."],
        "mayor": ["{mayor} governs {name}.", "{mayor} is the mayor of {name}."],
        "twin_city": ["{twin_city} is the twin city of {name}.", "{name} and {twin_city} are twin cities."],
        "industry": ["The industry of {name} is {industry}.", "Many people in {name} work in {industry}."],
    },
    bridges=[("mayor", "born_in_year", "mayor_year")],
    heldout={
        "founded_year": ["In what year was {name} settled?"],
        "river": ["{name} lies on the banks of which river?"],
        "mayor": ["Who is {name} governed by?"],
        "twin_city": ["Which town is {name} twinned with?"],
        "industry": ["What do most people in {name} work in?"],
        "twin_country": ["The twin city of {name} lies in which country?"],
        "product": ["What does the industry of {name} make?"],
        "mayor_year": ["What is the birth year of the mayor of {name}?"],
    },
    reward={
        "founded_year": ["What is the founding year of {name}?"],
        "river": ["Which river is {name} on?"],
        "mayor": ["Who leads {name}?"],
        "twin_city": ["{name} and which city are twin cities?"],
        "industry": ["What is the industry of {name}?"],
        "twin_country": ["In which country does the twin city of {name} lie?"],
        "product": ["What do the people in {name} produce?"],
        "mayor_year": ["The mayor of {name}: which year was the mayor born?"],
    },
)

KINDS = {"person": PERSON, "company": COMPANY, "town": TOWN}
