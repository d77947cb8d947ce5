"""Answer text normalisation shared by records validation, grading and the question writer.

    >>> normalize_answer("The  Eiffel Tower!")
    'eiffel tower'
"""

from __future__ import annotations

import re
import string

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD v1.1's normalisation (its evaluate-v1.1.py): lowercase, drop ASCII punctuation, drop the articles
    a/an/the, squeeze whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())
