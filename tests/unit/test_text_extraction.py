"""The text engine: every place words can be, real attachment files, and hostile ones bounded."""

from __future__ import annotations

import asyncio
import io
import threading
import zipfile
from collections.abc import Iterator
from email.message import Message
from typing import Any

import pytest

from gateway.context import Envelope, MessageContext
from gateway.mime import documents, reading
from gateway.mime.documents import DocumentLimits, html_to_text
from gateway.mime.reading import extract_async, message_text
from gateway.mime.text import TextLimits, attachment_kind, extract
from tests.documents import (
    DOCX,
    ODT,
    XLSX,
    as_bytes,
    make_docx,
    make_encrypted_pdf,
    make_image_pdf,
    make_odt,
    make_pdf,
    make_xlsx,
    make_zip_bomb_docx,
    message_with,
)


def texts(data: bytes) -> dict[str, str]:
    return {p.place: p.text for p in extract(data).pieces}


def test_subject_and_plain_body() -> None:
    got = texts(as_bytes(message_with(subject="Staffing", body="Hello there\n")))
    assert got["the Subject"] == "Staffing"
    assert got["the message text"] == "Hello there\n"


def test_html_body_is_read_as_a_person_sees_it() -> None:
    html = ("<html><head><style>p {color: red}</style><title>x</title></head><body>"
            "<p>con<b>fid</b>ential</p><div>personal</div><div>data</div>"
            "<script>var secret = 1;</script>a&nbsp;b &amp; c<br>next</body></html>")
    got = texts(as_bytes(message_with(html=html)))["the message text (HTML)"]
    assert "confidential" in got
    assert "personal\n\ndata" in got
    assert "secret" not in got and "color" not in got
    assert "a b & c\nnext" in got  # no-break space read as a space


@pytest.mark.parametrize("markup, text", [
    ("<p>one</p><p>two</p>", "one\n\ntwo"),
    ("<td>sort</td><td>code</td>", "sort\n\ncode"),
    ("<p>per<!-- a comment -->sonal data</p>", "personal data"),
    ("<p>a</p><script>hidden()</script>after the script", "a\n\nafter the script"),
    ("<?xml version='1.0' encoding='utf-8'?><html><body><p>x</p></body></html>", "x"),
    ("just text", "just text"),
    ("", ""),
    ("<div><div><div>deep</div></div></div>" * 2, "deep\n\ndeep"),
])
def test_html_to_text(markup: str, text: str) -> None:
    assert html_to_text(markup) == text


@pytest.mark.parametrize("name, data, mime, words", [
    ("notes.txt", b"personal data in a note", "text/plain", "personal data in a note"),
    ("list.csv", b"name,ni\nJo,AB 12 34 56 C\n", "text/csv", "Jo,AB 12 34 56 C"),
    ("page.html", b"<p>not <i>for</i> publication</p>", "text/html", "not for publication"),
    ("minutes.docx", make_docx("Item 4 is exempt information"), DOCX,
     "Item 4 is exempt information"),
    ("minutes.odt", make_odt("Item 5 is commercially sensitive"), ODT,
     "Item 5 is commercially sensitive"),
    ("staff.xlsx", make_xlsx([["Name", "NI"], ["Jo", "AB 12 34 56 C"], [None, 42]]), XLSX,
     "Jo\tAB 12 34 56 C"),
    ("report.pdf", make_pdf("Highly sensitive report"), "application/pdf",
     "Highly sensitive report"),
])
def test_attachment_text_is_read(name: str, data: bytes, mime: str, words: str) -> None:
    got = texts(as_bytes(message_with(attachments=((name, data, mime),))))
    assert words in got[f'the attachment "{name}"']
    assert got[f'the name of the attachment "{name}"'] == name.replace(".", " ")


def test_docx_headers_footers_and_tables_are_read() -> None:
    data = make_docx("Body text", header="STRICTLY CONFIDENTIAL", table=[["a", "personal data"]])
    got = texts(as_bytes(message_with(attachments=(("x.docx", data, DOCX),))))
    assert "STRICTLY CONFIDENTIAL" in got['the attachment "x.docx"']
    assert "personal data" in got['the attachment "x.docx"']


def test_file_names_read_as_words() -> None:
    got = texts(as_bytes(message_with(attachments=(
        ("Confidential_minutes.v2.png", b"\x89PNG....", "image/png"),))))
    assert got['the name of the attachment "Confidential_minutes.v2.png"'] == (
        "Confidential minutes v2 png")
    assert 'the attachment "Confidential_minutes.v2.png"' not in got  # pictures are not opened


def test_attached_message_is_read_too() -> None:
    inner = message_with(subject="Part II item", body="inner personal data\n")
    outer = message_with(body="see below\n")
    outer.add_attachment(inner)  # message/rfc822
    got = texts(as_bytes(outer))
    assert got["the Subject of the attached message"] == "Part II item"
    assert got["the message text of the attached message"] == "inner personal data\n"
    kinds = {p.place: p.kind for p in extract(as_bytes(outer)).pieces}
    assert kinds["the message text of the attached message"] == "attachment"


@pytest.mark.parametrize("filename, ctype, kind", [
    ("a.DOCX", "application/octet-stream", "docx"),
    ("a.bin", "application/pdf", "pdf"),
    (None, "text/csv", "text"),
    ("a.zip", "application/zip", None),
    ("a.doc", "application/msword", None),
])
def test_attachment_kind(filename: str | None, ctype: str, kind: str | None) -> None:
    assert attachment_kind(filename, ctype) == kind


def test_soft_hyphens_and_curly_apostrophes_do_not_hide_words() -> None:
    got = texts(as_bytes(message_with(body="con\u00adfidential; I\u2019ll\n")))
    assert got["the message text"] == "confidential; I'll\n"


# ----------------------------------------------------------------------- unreadable files

def unreadable(data: bytes, limits: TextLimits | None = None) -> dict[str, str]:
    return {u.place: u.reason for u in extract(data, limits).unreadable}


@pytest.mark.parametrize("name, data, mime, reason", [
    ("locked.pdf", make_encrypted_pdf("personal data"), "application/pdf", "password-protected"),
    ("scan.pdf", make_image_pdf(), "application/pdf", "no text"),
    ("broken.docx", b"this is not a zip file at all", DOCX, "damaged"),
    ("broken.xlsx", b"PK\x03\x04 truncated", XLSX, "damaged"),
    ("broken.odt", b"\x00" * 100, ODT, "damaged"),
    ("broken.pdf", b"%PDF-1.4\n garbage without objects", "application/pdf", "damaged"),
])
def test_a_file_that_cannot_be_read_is_reported(name: str, data: bytes, mime: str,
                                                reason: str) -> None:
    got = unreadable(as_bytes(message_with(attachments=((name, data, mime),))))
    assert reason in got[f'the attachment "{name}"']


def test_zip_bomb_is_refused_from_its_directory_without_unpacking(
        monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = make_zip_bomb_docx(unpacked_mb=200)
    assert len(bomb) < 1_000_000  # 200 MB packed into a few hundred KB

    def no_inflating(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("a member of the bomb was unpacked")

    monkeypatch.setattr(zipfile.ZipExtFile, "read", no_inflating)
    got = unreadable(as_bytes(message_with(attachments=(("bomb.docx", bomb, DOCX),))))
    assert "would unpack to 210 MB" in got['the attachment "bomb.docx"']


def test_zip_with_too_many_members_is_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for i in range(30):
            zf.writestr(f"f{i}.xml", "")
    limits = TextLimits(documents=DocumentLimits(max_zip_members=20))
    got = unreadable(as_bytes(message_with(attachments=(("many.docx", out.getvalue(), DOCX),))),
                     limits)
    assert "holds 30 files inside" in got['the attachment "many.docx"']


def test_zip_that_understates_its_sizes_still_cannot_unpack_more() -> None:
    # A member that inflates to 20 MB but whose headers claim 1 000 bytes: the zip module stops
    # at the claimed size and reports the mismatch, so nothing big is ever unpacked.
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", b"\0" * 20_000_000)
    data = bytearray(out.getvalue())
    real = (20_000_000).to_bytes(4, "little")
    fake = (1000).to_bytes(4, "little")
    assert data.count(real) == 2  # local header and central directory
    data = data.replace(real, fake)
    got = unreadable(as_bytes(message_with(attachments=(("liar.docx", bytes(data), DOCX),))))
    assert "damaged" in got['the attachment "liar.docx"']


def test_pages_cells_and_characters_are_bounded_and_reported() -> None:
    limits = TextLimits(documents=DocumentLimits(max_pdf_pages=2, max_cells=10, max_chars=1000))
    msg = message_with(attachments=(
        ("long.pdf", make_pdf("page text", pages=5), "application/pdf"),
        ("big.xlsx", make_xlsx([[i, i] for i in range(50)]), XLSX),
        ("long.txt", b"word " * 1000, "text/plain"),
    ))
    got = unreadable(as_bytes(msg), limits)
    assert got['the attachment "long.pdf"'] == "only its first 2 of 5 pages were checked"
    assert got['the attachment "big.xlsx"'] == "only its first 10 cells were checked"
    assert got['the attachment "long.txt"'] == "only its first 1,000 characters were checked"
    read = {p.place: p.text for p in extract(as_bytes(msg), limits).pieces}
    assert read['the attachment "long.pdf"'].count("page text") == 2


def test_an_attachment_over_the_size_limit_is_not_opened() -> None:
    limits = TextLimits(max_file_bytes=10_000)
    msg = message_with(attachments=(("big.pdf", make_pdf("x" * 10, pages=40), "application/pdf"),))
    got = unreadable(as_bytes(msg), limits)
    assert "more than the 0 MB the gateway opens" in got['the attachment "big.pdf"']


def test_the_time_limit_stops_reading_and_says_where() -> None:
    limits = TextLimits(seconds=0.0)
    got = unreadable(as_bytes(message_with(body="hello\n")), limits)
    assert list(got) == ["the message"]
    assert "ran out of time" in got["the message"]


@pytest.fixture
def stuck_pdf_reader(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """A PDF reader stuck inside a library call (fault injection), released after the test."""
    release = threading.Event()

    def stuck(data: bytes, limits: DocumentLimits, tick: object) -> documents.DocumentText:
        release.wait(30)
        return documents.DocumentText("")

    monkeypatch.setitem(documents.READERS, "pdf", stuck)
    yield release
    release.set()


async def test_a_reader_stuck_in_a_library_is_left_behind(
        stuck_pdf_reader: threading.Event, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reading, "_GRACE", 0.1)
    msg = message_with(body="personal data first\n",
                       attachments=(("stuck.pdf", make_pdf("x"), "application/pdf"),))
    loop_ticks = 0

    async def ticker() -> None:
        nonlocal loop_ticks
        while True:
            loop_ticks += 1
            await asyncio.sleep(0.01)

    beat = asyncio.create_task(ticker())
    try:
        result = await extract_async(as_bytes(msg), TextLimits(seconds=0.3))
    finally:
        beat.cancel()
    assert not stuck_pdf_reader.is_set()  # the answer came while the reader is still stuck
    assert loop_ticks > 3  # and the event loop kept running meanwhile
    assert [p.place for p in result.pieces if p.kind == "body"] == ["the message text"]
    assert [u.place for u in result.unreadable] == ['the attachment "stuck.pdf"']
    assert "longer than 0.3 seconds" in result.unreadable[0].reason


async def test_one_reading_is_shared_while_only_headers_are_added(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    real = reading._read

    async def counting(data: bytes | Message, limits: TextLimits, size: int | None,
                       examine: Any) -> Any:
        nonlocal calls
        calls += 1
        return await real(data, limits, size, examine)

    monkeypatch.setattr(reading, "_read", counting)
    data = as_bytes(message_with(subject="one"))
    ctx = MessageContext("m1", "outbound", Envelope("a@stanion-pc.gov.uk", ["b@example.org"]), data)
    first = await message_text(ctx)
    ctx.replace_data(b"X-Council-Confidential: label=absent\r\n" + ctx.data)
    assert await message_text(ctx) is first
    assert calls == 1
    ctx.replace_data(b"Subject: two\r\n" + ctx.data)  # a new Subject: read again
    again = await message_text(ctx)
    assert calls == 2 and again.pieces[0].text == "two"


async def test_the_message_is_parsed_once_while_checks_only_record_what_they_did() -> None:
    data = as_bytes(message_with(subject="one", body="hello"))
    ctx = MessageContext("m1", "inbound", Envelope("a@example.org", ["b@stanion-pc.gov.uk"]), data)
    parsed = await ctx.parsed()
    ctx.replace_data(b"Authentication-Results: gw; spf=none\r\nX-Council-Junk: no\r\n" + ctx.data)
    assert await ctx.parsed() is parsed
    ctx.replace_data(b"Subject: two\r\n" + ctx.data)  # what a check reads changed: parsed anew
    reparsed = await ctx.parsed()
    assert reparsed is not parsed and reparsed["subject"] == "two"
    ctx.replace_data(ctx.data.replace(b"hello", b"bye"))
    assert (await ctx.parsed()).get_content().strip() == "bye"


@pytest.mark.parametrize("data", [b"%PDF-1.4\n garbage without objects",
                                  b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + bytes(range(256)) * 200])
def test_pdf_without_end_marker_is_damaged_as_pypdf_finds(data: bytes) -> None:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    with pytest.raises(PdfReadError):
        PdfReader(io.BytesIO(data), strict=False)
    with pytest.raises(documents.DocumentError) as ours:
        documents.read_document("pdf", data, DocumentLimits(), lambda: None)
    assert str(ours.value) == "it is damaged (not a readable PDF: it has no end-of-file marker)"


@pytest.mark.parametrize("ending", [b"%%EO", b"%%E\n", b"%%\r\n", b"%\n\n"])
def test_pdf_with_a_cut_off_end_marker_is_still_read(ending: bytes) -> None:
    # pypdf reads a file whose last line ends like a cut-off %%EOF: so must the checks.
    data = make_pdf("Pay the invoice now to account 12345678")
    assert data.rstrip().endswith(b"%%EOF")
    data = data.rstrip()[: -len(b"%%EOF")] + ending
    got = documents.read_document("pdf", data, DocumentLimits(), lambda: None)
    assert "12345678" in got.text
