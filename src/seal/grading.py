"""Graders: is a model's answer correct given a question's gold answers?

    >>> normalize_answer("The  Eiffel Tower!")
    'eiffel tower'
    >>> exact_match("It was the Eiffel tower.", "Eiffel Tower")
    True
    >>> strict_match("Eiffel Tower. It was built in 1889", "the Eiffel tower")
    True
    >>> strict_match("It was the Eiffel tower.", "Eiffel Tower")
    False
    >>> strict_match("St. Louis. It lies on the Mississippi.", "St. Louis")
    True
    >>> round(token_f1("in 1889", "1889"), 3)
    0.667

Each function above compares one answer with one gold; the graders take the best over a question's golds
(`GradeItem.golds`), as SQuAD's official EM and F1 take the maximum over the annotators' answers.
`exact`, `strict` and `f1` are local and deterministic. `judge` asks an LLM over any OpenAI-compatible endpoint,
as the paper did with GPT-4.1; a question it could not grade is `None` (ungraded), reported apart, never counted
wrong. docs/knowledge.md, "Grading and statistics", defines each grader.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from seal.config import GraderConfig, JudgeConfig
from seal.progress import log
from seal.text import normalize_answer

def exact_match(answer: str, gold: str) -> bool:
    """Correct when the normalised gold appears (as whole words) in the normalised answer."""
    g = normalize_answer(gold)
    if not g:
        return False
    return f" {g} " in f" {normalize_answer(answer)} "


# Where a sentence may end: a run of . ! ? (closing quotes or brackets allowed) before whitespace or the end of
# the text; or a line break.
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s|$)|\n")


def first_sentence_readings(answer: str) -> list[str]:
    """Every reading of the answer's first sentence: the text before each place a sentence may end, then the whole
    answer. A period does not say whether it ends a sentence or an abbreviation ("St. Louis"), so each is a reading.

    >>> first_sentence_readings("Dr. Smith. He was born in 1889.")
    ['Dr', 'Dr. Smith', 'Dr. Smith. He was born in 1889', 'Dr. Smith. He was born in 1889.']
    """
    text = answer.strip()
    return [text[: m.start()] for m in _SENTENCE_END.finditer(text)] + [text]


def strict_match(answer: str, gold: str) -> bool:
    """SQuAD's exact match on the answer's first sentence: correct when some reading of the first sentence
    (`first_sentence_readings`), normalised, equals the normalised gold. So an answer equal to the gold is correct
    whatever periods the gold holds ("C. J. Anderson"), text the model writes after the answer and a sentence end
    is ignored, and an answer that does not *start* with the gold is wrong however much of the passage it recites.
    """
    g = normalize_answer(gold)
    return bool(g) and any(normalize_answer(r) == g for r in first_sentence_readings(answer))


def token_f1(answer: str, gold: str) -> float:
    """SQuAD v1.1's token F1: the harmonic mean of precision and recall of the normalised answer's tokens against
    the gold's, counting repeated tokens at most as often as both hold them; 0 when no token is shared."""
    pred, ref = normalize_answer(answer).split(), normalize_answer(gold).split()
    common = Counter(pred) & Counter(ref)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def best_f1(answer: str, golds: tuple[str, ...]) -> float:
    """The official SQuAD F1 of one question: the best token F1 over its golds.

    >>> best_f1("in 1889", ("1889", "in the year 1889"))
    0.8
    """
    return max((token_f1(answer, g) for g in golds), default=0.0)


@dataclass(frozen=True)
class GradeItem:
    """One answer to grade against a question's gold answers (every distinct one, the first the main)."""

    question: str
    golds: tuple[str, ...]
    answer: str

    def __post_init__(self):
        if not self.golds or isinstance(self.golds, str):
            raise ValueError(f"GradeItem for question {self.question!r}: golds must be a non-empty tuple of strings")


class Grader(Protocol):
    def grade(self, items: list[GradeItem]) -> list[bool | None]: ...


class ExactGrader:
    def grade(self, items: list[GradeItem]) -> list[bool | None]:
        return [any(exact_match(it.answer, g) for g in it.golds) for it in items]


class StrictGrader:
    def grade(self, items: list[GradeItem]) -> list[bool | None]:
        return [any(strict_match(it.answer, g) for g in it.golds) for it in items]


class F1Grader:
    """Correct when the best token F1 over the golds reaches `threshold`; `f1_scores` gives the F1s themselves."""

    def __init__(self, threshold: float = 0.5):
        self.threshold = threshold

    def f1_scores(self, items: list[GradeItem]) -> list[float]:
        return [best_f1(it.answer, it.golds) for it in items]

    def grade(self, items: list[GradeItem]) -> list[bool | None]:
        return [f >= self.threshold for f in self.f1_scores(items)]


# Our wording of the paper's judge instruction: does the student answer convey the gold answer fully,
# without contradicting it, whatever its style? With several golds, conveying any one of them is enough.
JUDGE_PROMPT = """You are grading a student's answer to a question.

Question: {question}
{golds}
Student answer: {answer}

Does the student answer fully convey {which} without contradicting it? Ignore style, length and \
extra wording. Reply with exactly one word: yes or no."""


def judge_prompt(item: GradeItem) -> str:
    """The judge's prompt for one answer: every gold answer is shown.

    >>> print(judge_prompt(GradeItem("Where?", ("St. Louis", "Saint Louis"), "Missouri")).splitlines()[3:6])
    ['Gold answers (any one of them is correct):', '- St. Louis', '- Saint Louis']
    """
    if len(item.golds) == 1:
        golds, which = f"Gold answer: {item.golds[0]}", "the gold answer"
    else:
        golds = "Gold answers (any one of them is correct):\n" + "\n".join(f"- {g}" for g in item.golds)
        which = "one of the gold answers"
    return JUDGE_PROMPT.format(question=item.question, golds=golds, which=which, answer=item.answer)


def parse_yes_no(text: str) -> bool | None:
    """`True` for yes, `False` for no, `None` for anything else.

    >>> parse_yes_no("Yes."), parse_yes_no(" no"), parse_yes_no("maybe")
    (True, False, None)
    """
    words = re.findall(r"[a-z]+", text.lower())
    if not words:
        return None
    return {"yes": True, "no": False}.get(words[0])


class JudgeError(RuntimeError):
    pass


class JudgeGrader:
    """LLM judge over an OpenAI-compatible `/chat/completions` endpoint, with retries and backoff."""

    def __init__(self, cfg: JudgeConfig):
        key = os.environ.get(cfg.api_key_env)
        if not key:
            raise JudgeError(f"grader.kind is 'judge' but the environment variable {cfg.api_key_env} is not set")
        import httpx

        self.cfg = cfg
        self._client = httpx.Client(
            base_url=cfg.base_url.rstrip("/"), timeout=cfg.timeout_s, headers={"Authorization": f"Bearer {key}"}
        )
        self.n_ungraded = 0

    def _ask(self, item: GradeItem) -> bool | None:
        import httpx

        body = {
            "model": self.cfg.model,
            "messages": [{"role": "user", "content": judge_prompt(item)}],
            "temperature": 0,
            "max_tokens": 4,
        }
        delay = self.cfg.backoff_s
        for attempt in range(self.cfg.max_retries + 1):
            why = None
            try:
                resp = self._client.post("/chat/completions", json=body)
                if resp.status_code == 200:
                    verdict = parse_yes_no(resp.json()["choices"][0]["message"]["content"] or "")
                    if verdict is not None:
                        return verdict
                    why = "reply was neither yes nor no"
                else:
                    why = f"HTTP {resp.status_code}"
                    if resp.status_code < 500 and resp.status_code != 429:
                        break  # 4xx other than rate limiting will not get better
            except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as e:
                why = type(e).__name__
            if attempt < self.cfg.max_retries:
                log.debug("judge retry %d after %s", attempt + 1, why)
                time.sleep(delay)
                delay *= 2
        log.warning("judge could not grade a question (%s); counted as ungraded", why)
        return None

    def grade(self, items: list[GradeItem]) -> list[bool | None]:
        with ThreadPoolExecutor(max_workers=self.cfg.concurrency) as pool:
            out = list(pool.map(self._ask, items))
        self.n_ungraded += sum(v is None for v in out)
        return out


def make_grader(cfg: GraderConfig) -> Grader:
    if cfg.kind == "exact":
        return ExactGrader()
    if cfg.kind == "strict":
        return StrictGrader()
    if cfg.kind == "f1":
        return F1Grader(cfg.f1_threshold)
    return JudgeGrader(cfg.judge)
