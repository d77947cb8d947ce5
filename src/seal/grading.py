"""Graders: is a model's answer correct given the gold answer?

    >>> normalize_answer("The  Eiffel Tower!")
    'eiffel tower'
    >>> exact_match("It was the Eiffel tower.", "Eiffel Tower")
    True
    >>> strict_match("Eiffel Tower. It was built in 1889", "the Eiffel tower")
    True
    >>> strict_match("It was the Eiffel tower.", "Eiffel Tower")
    False
    >>> round(token_f1("in 1889", "1889"), 3)
    0.667

`exact`, `strict` and `f1` are local and deterministic. `judge` asks an LLM over any OpenAI-compatible endpoint, as the
paper did with GPT-4.1; a question it could not grade is `None` (ungraded), reported apart, never counted wrong.
"""

from __future__ import annotations

import os
import re
import string
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from seal.config import GraderConfig, JudgeConfig
from seal.progress import log

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lowercase, drop punctuation and articles, squeeze whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(answer: str, gold: str) -> bool:
    """Correct when the normalised gold appears (as whole words) in the normalised answer."""
    g = normalize_answer(gold)
    if not g:
        return False
    return f" {g} " in f" {normalize_answer(answer)} "


_SENTENCE_END = re.compile(r"\.(?:\s|$)")


def strict_match(answer: str, gold: str) -> bool:
    """SQuAD's exact match on the answer's first sentence: its first line, cut at the first period that ends a
    sentence, normalised, equals the normalised gold. Text the model goes on to write after the answer is
    ignored; an answer that does not *start* with the gold is wrong, however much of the passage it recites."""
    first = _SENTENCE_END.split(answer.strip().split("\n", 1)[0], 1)[0]
    g = normalize_answer(gold)
    return bool(g) and normalize_answer(first) == g


def token_f1(answer: str, gold: str) -> float:
    pred, ref = normalize_answer(answer).split(), normalize_answer(gold).split()
    common = Counter(pred) & Counter(ref)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


@dataclass(frozen=True)
class GradeItem:
    question: str
    gold: str
    answer: str


class Grader(Protocol):
    def grade(self, items: list[GradeItem]) -> list[bool | None]: ...


class ExactGrader:
    def grade(self, items: list[GradeItem]) -> list[bool | None]:
        return [exact_match(it.answer, it.gold) for it in items]


class StrictGrader:
    def grade(self, items: list[GradeItem]) -> list[bool | None]:
        return [strict_match(it.answer, it.gold) for it in items]


class F1Grader:
    def __init__(self, threshold: float = 0.5):
        self.threshold = threshold

    def grade(self, items: list[GradeItem]) -> list[bool | None]:
        return [token_f1(it.answer, it.gold) >= self.threshold for it in items]


# Our wording of the paper's judge instruction: does the student answer convey the gold answer fully,
# without contradicting it, whatever its style?
JUDGE_PROMPT = """You are grading a student's answer to a question.

Question: {question}
Gold answer: {gold}
Student answer: {answer}

Does the student answer fully convey the gold answer without contradicting it? Ignore style, length and \
extra wording. Reply with exactly one word: yes or no."""


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
            "messages": [{"role": "user", "content": JUDGE_PROMPT.format(**item.__dict__)}],
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
