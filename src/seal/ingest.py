"""Documents in, passages out: the ingest layer of `seal learn`.

    paths = collect_paths(["notes/", "paper.pdf", "faq/*.md"])   # files, directories, globs
    result = read_documents(paths)          # .documents, and .skipped: each unreadable file with its reason
    passages = split_passages(result.documents, tokenizer, passage_tokens=256, overlap_sentences=1)
    contexts = [p.to_context() for p in passages]

Formats: .txt, .md, .html and .pdf (read by `seal.readers`, headings kept as section titles) and .json/.jsonl
(our records, questions optional). The rules (titles, sentence ends, what counts as unreadable) are in
docs/learn.md.
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from seal.data import DataError, context_id, load_records
from seal.domains.base import QA, Context
from seal.progress import log
from seal.readers import READERS, Section, clean, paragraphs

RECORD_SUFFIXES = (".json", ".jsonl")
SUFFIXES = tuple(READERS) + RECORD_SUFFIXES
MIN_PASSAGE_TOKENS = 8


class IngestError(DataError):
    pass


@dataclass(frozen=True)
class Document:
    """One readable input: a file, or one record of a records file."""

    id: str  # '<file name>@<sha256[:12]>', '#<i>' added for the i-th record of a records file
    path: Path
    title: str
    sha256: str  # of the file's bytes
    sections: tuple[Section, ...]
    questions: tuple[QA, ...] = ()  # gold questions of a record


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str


@dataclass(frozen=True)
class IngestResult:
    documents: tuple[Document, ...]
    skipped: tuple[Skipped, ...]


@dataclass(frozen=True)
class Passage:
    """At most `passage_tokens` tokens of one section, cut at sentence ends."""

    document: str  # Document.id
    title: str  # document title — heading
    text: str
    questions: tuple[QA, ...] = ()  # a record's questions when its context is one passage, unsplit

    @property
    def id(self) -> str:
        return context_id(self.title, self.text)

    def to_context(self) -> Context:
        return Context(id=self.id, title=self.title, text=self.text, questions=self.questions)


# --- collecting paths -----------------------------------------------------------------------------------


def collect_paths(inputs: Iterable[str]) -> list[Path]:
    """Files, directories (searched recursively, hidden entries skipped) and glob patterns (`**` recurses),
    in input order, each directory or glob sorted; a file reached twice is kept once. A file found in a
    directory or by a glob is kept when its suffix is supported; a file named outright must have one."""
    inputs = list(inputs)
    out: list[Path] = []
    seen: set[Path] = set()
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = _walk(path)
        elif path.is_file():
            if path.suffix.lower() not in SUFFIXES:
                raise IngestError(f"{item}: unsupported file type (supported: {', '.join(SUFFIXES)})")
            found = [path]
        elif re.search(r"[*?[]", item):
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                raise IngestError(f"{item}: no files match")
            found = [f for m in matches for f in _walk(Path(m))]
        else:
            raise IngestError(f"{item}: no such file or directory")
        for f in found:
            if f.resolve() not in seen:
                seen.add(f.resolve())
                out.append(f)
    if not out:
        raise IngestError(f"no {', '.join(SUFFIXES)} files in: {', '.join(inputs) or '(no inputs)'}")
    return out


def _walk(path: Path) -> list[Path]:
    if path.is_file():
        return [path] if path.suffix.lower() in SUFFIXES else []
    return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(path).parts))


# --- reading documents ----------------------------------------------------------------------------------


def read_documents(paths: Iterable[Path]) -> IngestResult:
    """Read every file. One that cannot be read, or has the same bytes as a file read before, is skipped with
    its reason (and a warning). Raises `IngestError` when nothing at all could be read."""
    documents: list[Document] = []
    skipped: list[Skipped] = []
    first_with: dict[str, Path] = {}  # sha256 -> the file read with those bytes
    for path in map(Path, paths):
        try:
            docs = read_file(path)
        except (DataError, OSError) as e:
            skipped.append(Skipped(path, str(e).removeprefix(f"{path}: ")))
        else:
            if docs[0].sha256 in first_with:
                skipped.append(Skipped(path, f"same content as {first_with[docs[0].sha256]}"))
            else:
                first_with[docs[0].sha256] = path
                documents.extend(docs)
                continue
        log.warning("skipped %s: %s", path, skipped[-1].reason)
    if not documents:
        reasons = "; ".join(f"{s.path}: {s.reason}" for s in skipped)
        raise IngestError(f"none of the {len(skipped)} input files could be read ({reasons})")
    return IngestResult(tuple(documents), tuple(skipped))


def read_file(path: Path) -> list[Document]:
    """The documents of one file: one, or one per record of a records file. Raises `IngestError` (a
    `DataError` naming record and field for a malformed record)."""
    raw = path.read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    doc_id = f"{path.name}@{sha[:12]}"
    suffix = path.suffix.lower()
    if suffix in RECORD_SUFFIXES:
        records = load_records(path, questions_required=False)
        return [Document(f"{doc_id}#{i}", path, r.title, sha, (Section("", r.text),), r.questions)
                for i, r in enumerate(records)]
    if not raw.strip():
        raise IngestError(f"{path}: empty file")
    title, sections = READERS[suffix](path, raw)
    sections = tuple(s for s in sections if s.text)
    if not sections:
        raise IngestError(f"{path}: no text")
    return [Document(doc_id, path, title or _stem_title(path), sha, sections)]


def _stem_title(path: Path) -> str:
    """The file name as a title.

    >>> _stem_title(Path("notes/harbour_guide.txt"))
    'harbour guide'
    """
    return path.stem.replace("_", " ").strip()


# --- passages -------------------------------------------------------------------------------------------

# A '.' after one of these words (compared in lower case) does not end a sentence. 'etc.' is left out: it
# ends sentences more often than a capitalised word follows it inside one.
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st mt vs al fig figs vol pp approx dept inc ltd corp gen col lt sgt capt rev "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split())
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*\s+")


def split_sentences(paragraph: str) -> list[str]:
    """The sentences of one paragraph, whitespace collapsed. A sentence ends at '.', '!', '?' or '…' (with
    any closing quotes or brackets) followed by a space and then an upper-case letter or a digit (an opening
    quote or bracket may come first), except a '.' after a common abbreviation (Dr., Jan., e.g., U.S.) or a
    single capital (an initial: J. R. Nash).

    >>> split_sentences("Dr. Ada Lowell met J. R. Nash in Jan. 1901. They talked! Did it rain? Yes.")
    ['Dr. Ada Lowell met J. R. Nash in Jan. 1901.', 'They talked!', 'Did it rain?', 'Yes.']
    >>> split_sentences('Rates rose 3.5 percent, e.g. in Calder. "Why?" she asked. (It rained.) 1901 ended.')
    ['Rates rose 3.5 percent, e.g. in Calder.', '"Why?" she asked.', '(It rained.)', '1901 ended.']
    """
    text = clean(paragraph)
    sentences, start = [], 0
    for end in _SENTENCE_END.finditer(text):
        following = text[end.end():].lstrip("\"'“‘([")[:1]
        word = text[start:end.start()].rsplit(" ", 1)[-1].lstrip("\"'“‘([")
        if not (following.isupper() or following.isdigit()) or (end.group()[0] == "." and _abbreviation(word)):
            continue
        sentences.append(text[start:end.end()].strip())
        start = end.end()
    return [s for s in sentences + [text[start:].strip()] if s]


def _abbreviation(word: str) -> bool:
    """Whether a '.' after `word` is not a sentence end.

    >>> [_abbreviation(w) for w in ("Dr", "J", "U.S", "e.g", "Calder", "a")]
    [True, True, True, True, False, False]
    """
    return (word.lower() in _ABBREVIATIONS or (len(word) == 1 and word.isupper())
            or re.fullmatch(r"(?:[A-Za-z]\.)+[A-Za-z]", word) is not None)


def passage_title(title: str, heading: str) -> str:
    """A passage's title: the document's title and the section's heading, or the one there is.

    >>> passage_title("Harbour Guide", "Fees")
    'Harbour Guide — Fees'
    >>> passage_title("Harbour Guide", "harbour guide"), passage_title("", "Fees"), passage_title("Guide", "")
    ('Harbour Guide', 'Fees', 'Guide')
    """
    if not heading or heading.casefold() == title.casefold():
        return title
    return f"{title} — {heading}" if title else heading


def split_passages(documents: Iterable[Document], tokenizer, passage_tokens: int,
                   overlap_sentences: int = 0) -> list[Passage]:
    """Each section of each document as passages of at most `passage_tokens` tokens of `tokenizer` (an HF
    tokenizer, no special tokens counted). A section that fits is one passage, as written. A longer one is
    cut into sentences (`split_sentences`; a sentence over the limit is cut at token boundaries), packed
    greedily in order, the last `overlap_sentences` of a passage starting the next one (fewer when they
    would not fit). A passage that repeats an earlier one (same title and text) is left out. Deterministic."""
    if passage_tokens < MIN_PASSAGE_TOKENS:
        raise ValueError(f"passage_tokens must be at least {MIN_PASSAGE_TOKENS}, got {passage_tokens}")
    if overlap_sentences < 0:
        raise ValueError(f"overlap_sentences must be >= 0, got {overlap_sentences}")
    passages: dict[str, Passage] = {}
    for doc in documents:
        for section in doc.sections:
            texts = _section_passages(section.text, tokenizer, passage_tokens, overlap_sentences)
            questions = doc.questions if len(doc.sections) == 1 and len(texts) == 1 else ()
            for text in texts:
                passage = Passage(doc.id, passage_title(doc.title, section.heading), text, questions)
                passages.setdefault(passage.id, passage)
    return list(passages.values())


Piece = tuple[int, str]  # (paragraph index, sentence or part of one)


def _section_passages(text: str, tokenizer, limit: int, overlap: int) -> list[str]:
    if _n_tokens(tokenizer, text) <= limit:
        return [text]
    sentences = [(i, sentence) for i, para in enumerate(paragraphs(text)) for sentence in split_sentences(para)]
    pieces: list[Piece] = []
    counts: list[int] = []  # of each piece alone
    for (i, sentence), n in zip(sentences, _n_tokens_each(tokenizer, [s for _, s in sentences])):
        parts = [sentence] if n <= limit else _cut(sentence, tokenizer, limit)
        pieces += [(i, part) for part in parts]
        counts += [n] if n <= limit else _n_tokens_each(tokenizer, parts)
    return _pack(pieces, counts, tokenizer, limit, overlap)


def _pack(pieces: list[Piece], counts: list[int], tokenizer, limit: int, overlap: int) -> list[str]:
    """Greedy packing: a passage starts with the last `overlap` pieces of the one before (fewer when they
    leave no room for a new one) and takes new pieces while their joined text fits. The pieces' own token
    counts guess where it ends; the joined text's count decides (a join can merge or split tokens), so a
    passage costs a few tokenizer calls rather than one per piece."""

    def fits(a: int, b: int) -> bool:
        return _n_tokens(tokenizer, _join(pieces[a:b])) <= limit

    passages: list[str] = []
    start = new = 0  # pieces[start:new] repeat the end of the previous passage
    while new < len(pieces):
        while start < new and not fits(start, new + 1):
            start += 1
        end, total = new + 1, sum(counts[start:new + 1])
        while end < len(pieces) and total + counts[end] <= limit:
            total += counts[end]
            end += 1
        guessed = end
        while end > new + 1 and not fits(start, end):
            end -= 1
        while end == guessed and end < len(pieces) and fits(start, end + 1):
            end, guessed = end + 1, end + 1
        passages.append(_join(pieces[start:end]))
        start, new = max(end - overlap, start), end
    return passages


def _join(pieces: list[Piece]) -> str:
    """Sentences of a paragraph join with a space, paragraphs with a blank line.

    >>> _join([(0, "A."), (0, "B."), (1, "C.")])
    'A. B.\\n\\nC.'"""
    text = pieces[0][1]
    for (before, _), (para, piece) in itertools.pairwise(pieces):
        text += (" " if para == before else "\n\n") + piece
    return text


def _n_tokens(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def _n_tokens_each(tokenizer, texts: list[str]) -> list[int]:
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def _cut(sentence: str, tokenizer, limit: int) -> list[str]:
    """A sentence over `limit` tokens as consecutive parts of at most `limit` tokens, cut between two tokens,
    between two words when the part can end at one (a part is re-counted: the text of a cut may tokenize
    differently)."""
    try:
        spans = tokenizer(sentence, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    except NotImplementedError:
        raise IngestError(f"cutting a sentence longer than {limit} tokens needs a fast tokenizer (one with offset "
                          f"mappings); {type(tokenizer).__name__} is not") from None
    parts, i = [], 0
    while i < len(spans):
        n = min(limit, len(spans) - i)
        if i + n < len(spans):
            n = next((m for m in range(n, 0, -1) if _starts_word(sentence, spans[i + m][0])), n)
        while n > 1 and _n_tokens(tokenizer, sentence[spans[i][0]:spans[i + n - 1][1]].strip()) > limit:
            n -= 1
        parts.append(sentence[spans[i][0]:spans[i + n - 1][1]].strip())
        i += n
    return [p for p in parts if p]


def _starts_word(text: str, start: int) -> bool:
    return start == 0 or text[start].isspace() or text[start - 1].isspace()


# --- fingerprints (a rerun on an output dir must see the same documents) --------------------------------


def fingerprint(documents: Iterable[Document]) -> dict[str, str]:
    """{absolute path of each file read: sha256 of its bytes}."""
    return {doc.path.resolve().as_posix(): doc.sha256 for doc in documents}


@dataclass(frozen=True)
class FingerprintDiff:
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]

    @property
    def same(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def describe(self) -> str:
        """The differing files, by kind.

        >>> FingerprintDiff(added=("b.md",), removed=(), changed=("a.md", "c.md")).describe()
        'changed: a.md, c.md; added: b.md'
        """
        kinds = (("changed", self.changed), ("added", self.added), ("removed", self.removed))
        return "; ".join(f"{kind}: {', '.join(paths)}" for kind, paths in kinds if paths) or "no changes"


def compare_fingerprints(before: dict[str, str], after: dict[str, str]) -> FingerprintDiff:
    """Which files were added, removed or changed (by content) from `before` to `after`.

    >>> compare_fingerprints({"a.md": "1", "b.md": "2"}, {"a.md": "9", "c.md": "3"})
    FingerprintDiff(added=('c.md',), removed=('b.md',), changed=('a.md',))
    """
    return FingerprintDiff(added=tuple(sorted(after.keys() - before.keys())),
                           removed=tuple(sorted(before.keys() - after.keys())),
                           changed=tuple(sorted(p for p in before.keys() & after.keys() if before[p] != after[p])))
