"""Ingest: every input format read from files the tests write, unreadable files skipped with their reason,
passages bounded on a real tokenizer (the shipped tiny model's), fingerprints for the resume refusal."""

import doctest
import itertools
import json
from pathlib import Path

import pytest

from conftest import make_records
from seal import ingest, readers
from seal.data import DataError, context_id, load_records, parse_record
from seal.ingest import (Document, IngestError, Section, collect_paths, compare_fingerprints, fingerprint,
                         read_documents, split_passages, split_sentences)


def write(path, content):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def read_one(path):
    result = read_documents([path])
    assert not result.skipped and len(result.documents) == 1
    return result.documents[0]


def make_pdf(path, title="Harbour Guide", password=None):
    """Two pages; the outline has 'Arrival' on page 1, 'Departure' and its child 'Fees' on page 2."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title(title)
    if password is not None:
        pdf.set_encryption(owner_password="owner", user_password=password)
    pdf.set_font("Helvetica", size=12)
    for heading, level, text, new_page in [
            ("Arrival", 0, "Ships dock at pier four. The harbour master is Ada Lowell.", True),
            ("Departure", 0, "Ships leave at dawn.", True),
            ("Fees", 1, "Fees are paid in Calder.", False)]:
        if new_page:
            pdf.add_page()
        pdf.start_section(heading, level=level)
        pdf.multi_cell(0, 8, text, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return path


def blank_pdf(path):
    """A page with no text on it, as a scanned page has none that pypdf can read."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.rect(10, 10, 50, 50)
    pdf.output(str(path))
    return path


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from seal.world.tiny_knowledge import ASSET_DIR

    return AutoTokenizer.from_pretrained(ASSET_DIR)


def n_tokens(tok, text):
    return len(tok(text, add_special_tokens=False)["input_ids"])


def test_doctests():
    for module in (ingest, readers):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0


# --- formats --------------------------------------------------------------------------------------------


def test_txt_title_is_a_standalone_first_line_else_the_file_name(tmp_path):
    doc = read_one(write(tmp_path / "guide.txt", "Harbour Guide\n\nShips dock at\npier four.\n\nFees are low.\n"))
    assert doc.title == "Harbour Guide"
    assert doc.sections == (Section("", "Ships dock at pier four.\n\nFees are low."),)
    doc = read_one(write(tmp_path / "harbour_notes.txt", "Ships dock at pier four.\n\nFees are low."))
    assert doc.title == "harbour notes" and doc.sections[0].text.startswith("Ships dock")


def test_markdown_headings_become_sections_and_markup_is_dropped(tmp_path):
    md = ("---\ntitle: The Harbour\nauthor: x\n---\n# Harbour Guide\n\nIntro *text* with a [link](http://x) "
          "and `code`.\n\n## Arrival\n\nShips dock at **pier four**.\nThe master is Ada.\n\n- one\n- two\n\n"
          "## Fees\n\n| item | fee |\n|---|---|\n| mooring | 5 |\n\n```\nfee = 5\n```\n")
    doc = read_one(write(tmp_path / "guide.md", md))
    assert doc.title == "The Harbour"  # front matter wins over the first '#'
    assert [s.heading for s in doc.sections] == ["Harbour Guide", "Arrival", "Fees"]
    assert doc.sections[0].text == "Intro text with a link and code."
    assert doc.sections[1].text == "Ships dock at pier four. The master is Ada.\n\none\n\ntwo"
    assert doc.sections[2].text == "item | fee\n\nmooring | 5\n\nfee = 5"
    assert read_one(write(tmp_path / "plain.md", "# Harbour Guide\n\nText.")).title == "Harbour Guide"
    assert read_one(write(tmp_path / "crlf.md", md.replace("\n", "\r\n"))).sections == doc.sections


def test_html_headings_become_sections_and_page_chrome_is_dropped(tmp_path):
    html = ("<!doctype html><html><head><title>Harbour &amp; Port</title><style>p {}</style></head><body>"
            "<nav><a href='/'>Home</a></nav><h1>Harbour Guide</h1><p>Intro line<br>next line.</p>"
            "<h2>Arrival</h2><div><p>Ships dock at <b>pier four</b>.</p><script>var x = 1;</script>"
            "<ul><li>one</li><li>two</li></ul></div><h3>Fees</h3><table><tr><th>item</th><th>fee</th></tr>"
            "<tr><td>mooring</td><td>5</td></tr></table><!-- a comment --><footer>Copyright</footer></body></html>")
    doc = read_one(write(tmp_path / "guide.html", html))
    assert doc.title == "Harbour & Port"
    assert doc.sections == (Section("Harbour Guide", "Intro line next line."),
                            Section("Arrival", "Ships dock at pier four.\n\none\n\ntwo"),
                            Section("Fees", "item | fee\n\nmooring | 5"))
    latin = "<html><head><meta charset='latin-1'></head><body><h1>Caf\xe9</h1><p>Open.</p></body></html>"
    doc = read_one(write(tmp_path / "cafe.htm", latin.encode("latin-1")))
    assert doc.title == "Café" and doc.sections[0].text == "Open."


def test_pdf_text_reads_back_with_outline_sections(tmp_path):
    doc = read_one(make_pdf(tmp_path / "guide.pdf"))
    assert doc.title == "Harbour Guide"
    assert doc.sections == (
        Section("Arrival", "Ships dock at pier four. The harbour master is Ada Lowell."),
        Section("Departure / Fees", "Ships leave at dawn. Fees are paid in Calder."))
    assert read_one(make_pdf(tmp_path / "no_title.pdf", title="")).title == "no title"
    assert read_one(make_pdf(tmp_path / "open.pdf", password="")).sections == doc.sections  # permissions only


def test_records_with_and_without_questions(tmp_path):
    with_qs = make_records(2)
    no_qs = [{"title": "Harbour", "context": "Ships dock at pier four."},
             {"title": "Fees", "context": "Fees are paid in Calder.", "questions": []}]
    a = read_documents([write(tmp_path / "a.json", json.dumps(with_qs))]).documents
    b = read_documents([write(tmp_path / "b.jsonl", "\n".join(map(json.dumps, no_qs)))]).documents
    assert [d.title for d in a + b] == [with_qs[0]["title"], with_qs[1]["title"], "Harbour", "Fees"]
    assert a[0].questions[0].answer == with_qs[0]["questions"][0]["answer"]
    assert b[0].questions == () and b[1].sections == (Section("", "Fees are paid in Calder."),)
    assert a[0].id.endswith("#0") and a[1].id.endswith("#1") and a[0].sha256 == a[1].sha256


def test_parse_record_accepts_no_questions_only_when_asked(tmp_path):
    rec = {"title": "T", "context": "C."}
    with pytest.raises(DataError, match="r: missing field 'questions'"):
        parse_record(rec, "r")
    assert parse_record(rec, "r", questions_required=False).questions == ()
    with pytest.raises(DataError, match=r"r: missing field 'questions\[0\].answer'"):
        parse_record({**rec, "questions": [{"question": "Q?"}]}, "r", questions_required=False)


# --- collecting paths -----------------------------------------------------------------------------------


def test_directories_recurse_sorted_and_globs_expand(tmp_path):
    for name in ["b.md", "a.txt", "sub/c.html", "sub/deeper/d.json", "notes.docx", ".hidden/e.txt", "sub/.f.md"]:
        write(tmp_path / "docs" / name, "x")
    found = collect_paths([str(tmp_path / "docs")])
    assert [p.relative_to(tmp_path / "docs").as_posix() for p in found] == [
        "a.txt", "b.md", "sub/c.html", "sub/deeper/d.json"]
    globbed = collect_paths([str(tmp_path / "docs" / "**" / "*.[mh]*"), str(tmp_path / "docs" / "b.md")])
    assert [p.name for p in globbed] == ["b.md", "c.html"]  # b.md named twice, kept once


@pytest.mark.parametrize("item, message", [
    ("missing.txt", "missing.txt: no such file or directory"),
    ("notes.docx", "notes.docx: unsupported file type"),
    ("nothing-*.md", "nothing-\\*.md: no files match"),
    ("empty", "no .txt, .md.* files in: empty"),
])
def test_bad_inputs_are_errors_naming_them(tmp_path, monkeypatch, item, message):
    write(tmp_path / "notes.docx", "x")
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(IngestError, match=message):
        collect_paths([item])


# --- unreadable files -----------------------------------------------------------------------------------


def test_unreadable_files_are_skipped_with_their_reason(tmp_path):
    bad_record = make_records(3)
    del bad_record[2]["questions"][0]["answer"]
    paths = [
        write(tmp_path / "good.md", "# Good\n\nReadable text."),
        write(tmp_path / "latin.txt", "Caf\xe9 au lait.".encode("latin-1")),
        write(tmp_path / "broken.pdf", make_pdf(tmp_path / "x.pdf").read_bytes()[:300]),
        write(tmp_path / "garbage.pdf", b"%PDF-1.4 not really a pdf"),
        make_pdf(tmp_path / "locked.pdf", password="secret"),
        blank_pdf(tmp_path / "scanned.pdf"),
        write(tmp_path / "bad.json", json.dumps(bad_record)),
        write(tmp_path / "bad.jsonl", '{"title": "T", "context": "C."}\n{"title": "T2", "context": 7}\n'),
        write(tmp_path / "blank.txt", " \n\n "),
        write(tmp_path / "tags.html", "<html><script>x()</script></html>"),
        write(tmp_path / "copy.md", "# Good\n\nReadable text."),
    ]
    result = read_documents(paths)
    assert [d.title for d in result.documents] == ["Good"]
    reasons = {s.path.name: s.reason for s in result.skipped}
    assert reasons["latin.txt"] == "not UTF-8 text (invalid continuation byte at byte 3)"
    assert reasons["broken.pdf"].startswith("not a readable PDF") and reasons["garbage.pdf"].startswith("not a re")
    assert reasons["locked.pdf"] == "encrypted PDF (save a decrypted copy)"
    assert reasons["scanned.pdf"].startswith("no text (pypdf reads a PDF's text, it does no OCR")
    assert reasons["bad.json"] == "record 2: missing field 'questions[0].answer' (or a list 'questions[0].answers')"
    assert reasons["bad.jsonl"] == "line 2, field 'context': expected a string, got int"
    assert reasons["blank.txt"] == "empty file" and reasons["tags.html"] == "no text"
    assert reasons["copy.md"] == f"same content as {paths[0]}"


def test_nothing_readable_is_an_error(tmp_path):
    with pytest.raises(IngestError, match=r"none of the 2 input files could be read \(.*a.txt: empty file; "):
        read_documents([write(tmp_path / "a.txt", ""), write(tmp_path / "b.json", "[]")])


# --- passages -------------------------------------------------------------------------------------------


def long_document(n_sentences=40, run_on=True):
    sentences = [f"Ship {i} docked at pier {i % 7} in {1900 + i} after a long voyage from Calder."
                 for i in range(n_sentences)]
    paragraphs = [" ".join(sentences[i:i + 5]) for i in range(0, n_sentences, 5)]
    long_one = " ".join(f"and sailor {i} sang" for i in range(40))  # one sentence longer than any passage
    text = "\n\n".join(paragraphs + [f"Then {long_one}."] * run_on)
    sections = (Section("Arrivals", text), Section("Short", "It rained."))
    doc = Document("log.txt@1", Path("log.txt"), "Harbour Log", "1", sections)
    return doc, sentences


def test_passages_respect_the_token_bound_and_keep_sentences_whole(tokenizer):
    doc, sentences = long_document()
    passages = split_passages([doc], tokenizer, passage_tokens=48)
    arrivals = [p for p in passages if p.title == "Harbour Log — Arrivals"]
    assert len(arrivals) > 5
    assert all(n_tokens(tokenizer, p.text) <= 48 for p in passages)
    split = [s for p in arrivals for s in split_sentences(p.text)]
    assert split[:len(sentences)] == sentences  # every sentence whole, in order, once
    text = doc.sections[0].text
    for before, after in itertools.pairwise(arrivals):  # greedy: the next sentence would not have fitted
        first = split_sentences(after.text)[0]
        joined = before.text + ("\n\n" if f"\n\n{first}" in text else " ") + first
        assert n_tokens(tokenizer, joined) > 48
    assert " ".join(split[len(sentences):]) == doc.sections[0].text.split("\n\n")[-1]  # cut between words
    assert passages[-1].title == "Harbour Log — Short" and passages[-1].text == "It rained."


def test_overlap_repeats_the_last_sentences_of_the_previous_passage(tokenizer):
    doc, sentences = long_document(20, run_on=False)
    passages = [split_sentences(p.text) for p in split_passages([doc], tokenizer, 120, overlap_sentences=2)][:-1]
    assert len(passages) > 3
    for before, after in itertools.pairwise(passages):
        assert after[:2] == before[-2:] and len(after) > 2
    assert passages[0] + [s for p in passages[1:] for s in p[2:]] == sentences


def test_passages_are_deterministic_and_convert_to_contexts(tokenizer, tmp_path):
    write(tmp_path / "guide.md", "# Harbour Guide\n\n## Arrival\n\n" + " ".join(
        f"Ship {i} came from Calder on day {i}." for i in range(30)))
    write(tmp_path / "qa.json", json.dumps(make_records(2)))

    def run():
        docs = read_documents(collect_paths([str(tmp_path)])).documents
        return split_passages(docs, tokenizer, 40, overlap_sentences=1)

    first = run()
    assert first == run() and len({p.id for p in first}) == len(first)
    contexts = [p.to_context() for p in first]
    assert {c.title for c in contexts} == {"Harbour Guide — Arrival", "Ada Lowell", "Bram Nash"}
    records = load_records(tmp_path / "qa.json")
    assert [c for c in contexts if c.questions] == records  # unsplit record: same id, text, questions
    assert all(c.id == context_id(c.title, c.text) for c in contexts)


def test_a_split_record_loses_its_questions(tokenizer, tmp_path):
    rec = make_records(1)[0]
    rec["context"] = " ".join(f"Ada Lowell taught class {i} in Calder." for i in range(12))
    doc = read_one(write(tmp_path / "long.json", json.dumps([rec])))
    passages = split_passages([doc], tokenizer, 32)
    assert len(passages) > 1 and all(p.questions == () for p in passages)


def test_passage_settings_are_checked(tokenizer):
    doc, _ = long_document(2)
    with pytest.raises(ValueError, match="passage_tokens must be at least 8, got 4"):
        split_passages([doc], tokenizer, 4)
    with pytest.raises(ValueError, match="overlap_sentences must be >= 0"):
        split_passages([doc], tokenizer, 64, overlap_sentences=-1)


# --- fingerprints ---------------------------------------------------------------------------------------


def test_fingerprint_names_changed_added_and_removed_files(tmp_path):
    a, b = write(tmp_path / "a.md", "# A\n\nOne."), write(tmp_path / "b.txt", "Two.")
    records = write(tmp_path / "r.json", json.dumps(make_records(3)))
    before = fingerprint(read_documents([a, b, records]).documents)
    assert len(before) == 3 and before == fingerprint(read_documents([a, b, records]).documents)
    write(a, "# A\n\nOne, changed.")
    c = write(tmp_path / "c.txt", "Three.")
    diff = compare_fingerprints(before, fingerprint(read_documents([a, records, c]).documents))
    assert not diff.same
    assert diff.describe() == f"changed: {a}; added: {c}; removed: {b}"
    assert compare_fingerprints(before, before).same
