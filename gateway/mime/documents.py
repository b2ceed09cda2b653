"""The words inside common attachment formats, read with well-kept libraries, within limits.

Each reader takes the file's bytes and returns its text, or raises :class:`DocumentError` with a
plain-English reason ("it is password-protected", "it would unpack to 900 MB ..."). Nothing is
written to disk and nothing is handed to an external program.

Office files are zip containers. Before a library opens one, :func:`check_zip` reads the zip
directory and refuses a container whose members would unpack to more than the limit. The
declared sizes can be trusted for that: Python's ``zipfile`` never inflates a member past its
declared size (it stops there and reports the CRC mismatch), so a lying directory cannot unpack
more than it admits to.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

from gateway.mime.html import html_to_text

__all__ = [
    "DocumentError",
    "DocumentLimits",
    "DocumentText",
    "OutOfTime",
    "READERS",
    "check_zip",
    "decode_text",
    "html_to_text",
    "read_document",
]

# Called now and then by the readers; raises when the message's time is up.
Tick = Callable[[], None]


class DocumentError(Exception):
    """The file cannot be read; ``str(err)`` says why, for a person."""


class OutOfTime(Exception):
    """Raised by a tick when the message's time for reading is up."""


@dataclass(frozen=True)
class DocumentLimits:
    max_unpacked_bytes: int = 64 * 1024 * 1024  # all members of one zip container together
    max_zip_members: int = 5000
    max_pdf_pages: int = 300
    max_cells: int = 500_000  # spreadsheet cells read, over all sheets
    max_chars: int = 8 * 1024 * 1024  # text kept from one file


class _Text:
    """Collects text up to a limit; remembers whether anything was left out."""

    def __init__(self, limit: int):
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0
        self.truncated = False

    def add(self, text: str) -> bool:
        """Add text; False once the limit is reached (the caller stops reading)."""
        if self.size + len(text) > self.limit:
            self.parts.append(text[: self.limit - self.size])
            self.size = self.limit
            self.truncated = True
            return False
        self.parts.append(text)
        self.size += len(text)
        return True

    def text(self) -> str:
        return "".join(self.parts)


@dataclass(frozen=True)
class DocumentText:
    text: str
    # Why only part of the file was read ("" when all of it was).
    partial: str = ""


# --------------------------------------------------------------------------- plain text and HTML

def decode_text(data: bytes, charset: str | None = None) -> str:
    """Bytes of a text file as str: the declared charset, else UTF-8, else Windows-1252."""
    for candidate in (charset, "utf-8"):
        if candidate:
            try:
                return data.decode(candidate)
            except (LookupError, ValueError):  # unknown, or not a name at all ("utf-8\0")
                pass
    return data.decode("cp1252", errors="replace")


def _bounded(text: str, limits: DocumentLimits) -> DocumentText:
    if len(text) > limits.max_chars:
        return DocumentText(text[: limits.max_chars], _too_long(limits))
    return DocumentText(text)


def _read_text(data: bytes, limits: DocumentLimits, tick: Tick) -> DocumentText:
    return _bounded(decode_text(data), limits)


def _read_html(data: bytes, limits: DocumentLimits, tick: Tick) -> DocumentText:
    return _bounded(html_to_text(data), limits)


def _too_long(limits: DocumentLimits) -> str:
    return f"only its first {limits.max_chars // (1024 * 1024)} million characters were checked"


# --------------------------------------------------------------------------- zip containers

def check_zip(data: bytes, limits: DocumentLimits) -> None:
    """Refuse a zip container that is damaged, encrypted or would unpack too large."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise DocumentError(f"it is damaged (not a readable zip container: {e})") from None
    if len(infos) > limits.max_zip_members:
        raise DocumentError(
            f"it holds {len(infos)} files inside, more than the {limits.max_zip_members} "
            "the gateway opens")
    unpacked = sum(i.file_size for i in infos)
    if unpacked > limits.max_unpacked_bytes:
        raise DocumentError(
            f"it would unpack to {unpacked / 1e6:,.0f} MB, more than the "
            f"{limits.max_unpacked_bytes / 1e6:,.0f} MB the gateway opens "
            "(a file built to exhaust memory looks like this)")
    if any(i.flag_bits & 0x1 for i in infos):
        raise DocumentError("it is password-protected")


def _read_docx(data: bytes, limits: DocumentLimits, tick: Tick) -> DocumentText:
    import docx  # python-docx
    from docx.oxml import parse_xml
    from docx.oxml.ns import qn

    check_zip(data, limits)
    document = docx.Document(io.BytesIO(data))
    out = _Text(limits.max_chars)
    word_parts = ("/word/document", "/word/header", "/word/footer", "/word/footnotes",
                  "/word/endnotes", "/word/comments")
    # The body first, then headers, footers, notes and comments ("CONFIDENTIAL" often sits in
    # a header).
    parts = sorted(
        (p for p in document.part.package.iter_parts()
         if str(p.partname).endswith(".xml") and str(p.partname).startswith(word_parts)),
        key=lambda p: (not str(p.partname).startswith("/word/document"), str(p.partname)))
    t, tab, br, cr, para = qn("w:t"), qn("w:tab"), qn("w:br"), qn("w:cr"), qn("w:p")
    for part in parts:
        element = getattr(part, "element", None)
        if element is None:
            element = parse_xml(part.blob)  # python-docx's parser: entities are not resolved
        for p in element.iter(para):
            tick()
            words = []
            for node in p.iter(t, tab, br, cr):
                if node.tag == t:
                    words.append(node.text or "")
                else:
                    words.append("\t" if node.tag == tab else "\n")
            if not out.add("".join(words) + "\n"):
                return DocumentText(out.text(), _too_long(limits))
    return DocumentText(out.text())


def _read_odt(data: bytes, limits: DocumentLimits, tick: Tick) -> DocumentText:
    from odf import teletype
    from odf import text as odftext
    from odf.opendocument import load

    check_zip(data, limits)
    document = load(io.BytesIO(data))
    out = _Text(limits.max_chars)
    # Headings and paragraphs wherever they are: body, tables, frames, headers and footers.
    for kind in (odftext.H, odftext.P):
        for element in document.getElementsByType(kind):
            tick()
            if not out.add(teletype.extractText(element) + "\n"):
                return DocumentText(out.text(), _too_long(limits))
    return DocumentText(out.text())


def _read_xlsx(data: bytes, limits: DocumentLimits, tick: Tick) -> DocumentText:
    import openpyxl

    check_zip(data, limits)
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    out = _Text(limits.max_chars)
    cells = 0
    try:
        for sheet in book.worksheets:
            out.add(f"{sheet.title}\n")
            for row in sheet.iter_rows(values_only=True):
                tick()
                cells += len(row)
                values = [str(v) for v in row if v is not None]
                if values and not out.add("\t".join(values) + "\n"):
                    return DocumentText(out.text(), _too_long(limits))
                if cells >= limits.max_cells:
                    return DocumentText(
                        out.text(), f"only its first {limits.max_cells:,} cells were checked")
    finally:
        book.close()
    return DocumentText(out.text())


def _no_end_marker(data: bytes) -> bool:
    """Whether pypdf is sure to give up looking for the end-of-file marker: no ``%%EOF``
    anywhere, and a last line that does not end as a cut-off marker would (``%``, ``%%E``,
    ``%%EO``: pypdf reads such a file as truncated). When the last line is not wholly in the
    last 4 KiB, pypdf is left to decide."""
    if b"%%EOF" in data:
        return False
    tail = data[-4096:].rstrip(b"\r\n")
    cut = max(tail.rfind(b"\n"), tail.rfind(b"\r"))
    if cut < 0:
        return False
    return not tail[cut + 1:].strip().endswith((b"%", b"%%E", b"%%EO"))


def _read_pdf(data: bytes, limits: DocumentLimits, tick: Tick) -> DocumentText:
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    if _no_end_marker(data):
        # pypdf cannot read such a file either, but finds that out by reading it backwards a
        # line at a time in Python.
        raise DocumentError("it is damaged (not a readable PDF: it has no end-of-file marker)")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError("it is password-protected")
        pages = reader.pages
        count = len(pages)
    except FileNotDecryptedError:
        raise DocumentError("it is password-protected") from None
    except PdfReadError as e:
        raise DocumentError(f"it is damaged (not a readable PDF: {e})") from None
    out = _Text(limits.max_chars)
    for number in range(min(count, limits.max_pdf_pages)):
        tick()
        if not out.add((pages[number].extract_text() or "") + "\n"):
            return DocumentText(out.text(), _too_long(limits))
    if count > limits.max_pdf_pages:
        return DocumentText(
            out.text(), f"only its first {limits.max_pdf_pages} of {count} pages were checked")
    if not out.text().strip() and count:
        # A scan or a picture of text: the words cannot be checked.
        raise DocumentError("it has no text the gateway can read (it may be a scanned image)")
    return DocumentText(out.text())


Reader = Callable[[bytes, DocumentLimits, Tick], DocumentText]

READERS: dict[str, Reader] = {
    "text": _read_text,
    "html": _read_html,
    "docx": _read_docx,
    "odt": _read_odt,
    "xlsx": _read_xlsx,
    "pdf": _read_pdf,
}


def read_document(kind: str, data: bytes, limits: DocumentLimits, tick: Tick) -> DocumentText:
    """Read one file of a known kind; every failure becomes a :class:`DocumentError`."""
    try:
        return READERS[kind](data, limits, tick)
    except (DocumentError, OutOfTime):
        raise
    except (MemoryError, RecursionError):
        raise DocumentError("it is too complex to read within the gateway's limits") from None
    except Exception as e:  # a damaged file can make any library fail in its own way
        raise DocumentError(f"it is damaged or not really a .{kind} file "
                            f"({type(e).__name__}: {_short(str(e))})") from None


def _short(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
