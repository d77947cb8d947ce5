"""Readers: the title and the sections (text under each heading) of one .txt, .md, .html or .pdf file.

Each reader takes the file's path (for messages) and bytes, and returns `(title, sections)`; the title is ""
when the file gives none. A file it cannot read raises `DataError` with the path and the reason. Libraries:
markdown-it-py, Beautiful Soup (standard library parser), pypdf; why these, and the rules: docs/learn.md.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from seal.data import DataError


@dataclass(frozen=True)
class Section:
    """A run of text under one heading ("" before the first heading). Paragraphs are separated by a blank
    line; whitespace inside a paragraph is one space (record contexts are kept verbatim)."""

    heading: str
    text: str


def _decode(path: Path, raw: bytes, encoding: str = "utf-8") -> str:
    try:
        utf8 = encoding.lower().replace("_", "-") in ("utf-8", "utf8")
        return raw.decode("utf-8-sig" if utf8 else encoding).replace("\r\n", "\n")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not {encoding.upper()} text ({e.reason} at byte {e.start})") from None
    except LookupError:
        raise DataError(f"{path}: declares an unknown encoding '{encoding}'") from None


def clean(text: str) -> str:
    """Whitespace collapsed to single spaces.

    >>> clean("  two\\n  lines ")
    'two lines'
    """
    return " ".join(text.split())


def paragraphs(text: str) -> list[str]:
    """The non-empty paragraphs (split at blank lines), whitespace collapsed.

    >>> paragraphs("One\\nline.\\n \\nTwo.\\n\\n\\n")
    ['One line.', 'Two.']
    """
    return [p for p in map(clean, re.split(r"\n\s*\n", text)) if p]


def _sections(blocks: Iterable[tuple[bool, str]]) -> list[Section]:
    """Group (is_heading, text) blocks: each heading starts a section, the other blocks are its paragraphs.

    >>> _sections([(False, "Intro."), (True, "Fees"), (False, "Pay."), (False, "Now.")])
    [Section(heading='', text='Intro.'), Section(heading='Fees', text='Pay.\\n\\nNow.')]
    """
    sections, heading, paras = [], "", []
    for is_heading, text in blocks:
        if is_heading:
            sections.append(Section(heading, "\n\n".join(paras)))
            heading, paras = text, []
        elif text:
            paras.append(text)
    return [s for s in sections + [Section(heading, "\n\n".join(paras))] if s.text]


def read_txt(path: Path, raw: bytes) -> tuple[str, list[Section]]:
    """Paragraphs at blank lines. The first line is the title when a blank line follows it, it has at most
    100 characters and it does not end like a sentence (. ! ? : ; ,); otherwise the file name is."""
    text = _decode(path, raw).strip()
    head, *rest = re.split(r"\n\s*\n", text, maxsplit=1)
    if rest and "\n" not in head and len(head) <= 100 and not head.endswith(tuple(".!?:;,")):
        return clean(head), [Section("", "\n\n".join(paragraphs(rest[0])))]
    return "", [Section("", "\n\n".join(paragraphs(text)))]


_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*(?:\n|\Z)", re.DOTALL)


def read_markdown(path: Path, raw: bytes) -> tuple[str, list[Section]]:
    """CommonMark and tables, parsed by markdown-it-py. Each heading starts a section; inline markup is
    dropped (link text and image alt text stay), a table row becomes 'cell | cell', code keeps its text.
    Title: a YAML front matter `title:`, else the first `#` heading."""
    from markdown_it import MarkdownIt

    text = _decode(path, raw)
    title = ""
    if front := _FRONT_MATTER.match(text):
        title, text = _front_matter_title(front.group(1)), text[front.end():]
    blocks: list[tuple[bool, str]] = []
    row: list[str] | None = None
    heading_level = 0
    for tok in MarkdownIt("commonmark").enable("table").parse(text):
        if tok.type == "heading_open":
            heading_level = int(tok.tag[1])
        elif tok.type == "heading_close":
            heading_level = 0
        elif tok.type == "tr_open":
            row = []
        elif tok.type == "tr_close" and row is not None:
            blocks.append((False, " | ".join(row)))
            row = None
        elif tok.type == "inline":
            content = _markdown_inline(tok.children or [])
            if row is not None:
                row.append(content)
            else:
                blocks.append((bool(heading_level), content))
                title = title or (content if heading_level == 1 else "")
        elif tok.type in ("fence", "code_block"):
            blocks.append((False, clean(tok.content)))
        elif tok.type == "html_block":
            blocks.append((False, clean(_html_text(tok.content))))
    return title, _sections(blocks)


def _front_matter_title(front: str) -> str:
    import yaml

    try:
        meta = yaml.safe_load(front)
    except yaml.YAMLError:
        return ""
    return clean(meta["title"]) if isinstance(meta, dict) and isinstance(meta.get("title"), str) else ""


def _markdown_inline(children: list) -> str:
    parts = [" " if c.type in ("softbreak", "hardbreak") else c.content
             for c in children if c.type in ("text", "code_inline", "image", "softbreak", "hardbreak")]
    return clean("".join(parts))


_HTML_DROPPED = ["head", "script", "style", "noscript", "template", "svg", "nav", "footer"]
_HTML_HEADINGS = ["h1", "h2", "h3", "h4", "h5", "h6"]
_HTML_BLOCKS = ["p", "div", "li", "dt", "dd", "tr", "blockquote", "pre", "section", "article", "main", "header",
                "aside", "table", "ul", "ol", "dl", "figure", "figcaption", "caption", "address", "hr"]
_HEADING_MARK = "\ue000"  # a private-use character: marks a heading's paragraph in the page text


def read_html(path: Path, raw: bytes) -> tuple[str, list[Section]]:
    """Beautiful Soup on the standard library's parser, decoded by the page's declared charset (UTF-8 when
    none). Scripts, styles, <nav> and <footer> are dropped; h1-h6 start sections; block elements are
    paragraphs; a table row becomes 'cell | cell'. Title: <title>, else the first <h1>."""
    from bs4 import BeautifulSoup
    from bs4.dammit import EncodingDetector

    encoding = EncodingDetector.find_declared_encoding(raw, is_html=True) or "utf-8"
    soup = BeautifulSoup(_decode(path, raw, encoding), "html.parser")
    title = clean(soup.title.get_text()) if soup.title else ""
    for tag in soup(_HTML_DROPPED):
        tag.decompose()
    h1 = soup.find("h1")
    title = title or (clean(h1.get_text()) if h1 else "")
    for br in soup("br"):
        br.replace_with("\n")
    for cell in soup(["td", "th"]):
        cell.insert_after(" | ")
    for h in soup(_HTML_HEADINGS):
        h.replace_with(f"\n\n{_HEADING_MARK}{clean(h.get_text())}\n\n")
    for block in soup(_HTML_BLOCKS):
        block.insert_before("\n\n")
        block.insert_after("\n\n")
    blocks = [(p.startswith(_HEADING_MARK), p.removeprefix(_HEADING_MARK).removesuffix(" |"))
              for p in paragraphs(soup.get_text())]
    return title, _sections(blocks)


def _html_text(html: str) -> str:
    from bs4 import BeautifulSoup

    return BeautifulSoup(html, "html.parser").get_text(" ")


def read_pdf(path: Path, raw: bytes) -> tuple[str, list[Section]]:
    """pypdf's text of each page. The outline (bookmarks), when there is one, gives the sections: an entry
    starts a section at its page (entries starting on the same page share it, their titles joined by ' / ').
    Title: the metadata title, else the file name."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted and not reader.decrypt(""):
            raise DataError(f"{path}: encrypted PDF (save a decrypted copy)")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = clean(reader.metadata.title or "") if reader.metadata else ""
        starts = _outline_starts(reader)
    except DataError:
        raise
    except Exception as e:  # a damaged PDF makes pypdf raise many kinds of errors, not only PdfReadError
        raise DataError(f"{path}: not a readable PDF ({type(e).__name__}: {e})") from None
    blocks: list[tuple[bool, str]] = []
    section_pages: list[str] = []
    for i, text in enumerate(pages):
        if i in starts:
            blocks += [(False, p) for p in paragraphs("\n".join(section_pages))] + [(True, " / ".join(starts[i]))]
            section_pages = []
        section_pages.append(text)  # a sentence may run on to the next page: pages join without a blank line
    blocks += [(False, p) for p in paragraphs("\n".join(section_pages))]
    if not any(text for is_heading, text in blocks if not is_heading):
        raise DataError(f"{path}: no text (pypdf reads a PDF's text, it does no OCR: a scanned PDF has none)")
    return title, _sections(blocks)


def _outline_starts(reader) -> dict[int, list[str]]:
    """{page index: titles of the outline entries starting there}, nested entries included, in order."""
    starts: dict[int, list[str]] = {}

    def visit(items) -> None:
        for item in items:
            if isinstance(item, list):
                visit(item)
                continue
            page = reader.get_destination_page_number(item)
            if page is not None and page >= 0 and clean(str(item.title or "")):
                starts.setdefault(page, []).append(clean(str(item.title)))

    visit(reader.outline)
    return starts


READERS = {".txt": read_txt, ".md": read_markdown, ".markdown": read_markdown, ".html": read_html,
           ".htm": read_html, ".pdf": read_pdf}
