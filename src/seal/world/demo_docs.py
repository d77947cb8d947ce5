"""`seal demo learn`'s input: held-out passages of the built-in world written out as a folder of documents, as
a user's notes would be, with the world's gold questions beside them.

    files = write_demo_documents(Path("runs/demo-learn/input"), n=24, n_control=24, seed=0)
    files.docs      # docs/: one Markdown file per passage ('# title' then the text), one HTML page, one PDF
    files.gold      # gold.json: those passages' records (their questions are the report's gold questions)
    files.control   # control.json: other held-out passages, never learned (the forgetting check)

Each file holds exactly its record's title and text (tested), so the gold questions ask what the documents say.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from html import escape
from pathlib import Path

from seal.data import save_records
from seal.domains.base import Context


@dataclass(frozen=True)
class DemoFiles:
    docs: Path
    gold: Path
    control: Path
    records: tuple[Context, ...]  # the passages written as documents, in file order


def slug(title: str) -> str:
    """A file name for a title.

    >>> slug("Milo Halden & Co.")
    'milo-halden-co'
    """
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "document"


def write_markdown(path: Path, c: Context) -> None:
    path.write_text(f"# {c.title}\n\n{c.text}\n")


def write_html(path: Path, c: Context) -> None:
    path.write_text(f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{escape(c.title)}</title></head>\n"
                    f"<body><h1>{escape(c.title)}</h1>\n<p>{escape(c.text)}</p></body></html>\n")


def write_pdf(path: Path, c: Context) -> None:
    """One page: the title in the metadata and the outline, the text as one paragraph."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title(c.title)
    pdf.add_page()
    pdf.start_section(c.title)
    pdf.set_font("helvetica", size=11)
    pdf.multi_cell(0, 6, c.text)
    pdf.output(str(path))


def write_demo_documents(out: Path, n: int = 24, n_control: int = 24, seed: int = 0) -> DemoFiles:
    """`n` held-out world passages (a seeded draw) as documents under `out/docs` — Markdown, plus one HTML page
    and one PDF — with their records (`out/gold.json`) and `n_control` other passages' (`out/control.json`)."""
    from seal.world.generator import default_world

    pool = default_world().split("eval")
    drawn = random.Random(f"demo-learn-{seed}").sample(pool, n + n_control)
    records, control = drawn[:n], drawn[n:]
    docs = out / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    for old in docs.iterdir():
        old.unlink()
    for i, c in enumerate(records):
        name = f"{i:02d}-{slug(c.title)}"
        if i == 0:
            write_html(docs / f"{name}.html", c)
        elif i == 1:
            write_pdf(docs / f"{name}.pdf", c)
        else:
            write_markdown(docs / f"{name}.md", c)
    save_records(records, out / "gold.json")
    save_records(control, out / "control.json")
    return DemoFiles(docs, out / "gold.json", out / "control.json", tuple(records))
