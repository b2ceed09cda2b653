"""The text of a message, piece by piece, for rules that look for words.

:func:`iter_text` yields the Subject, every text/plain and text/html body part (HTML reduced to
the text a reader sees), attachment file names, and the words inside .txt, .csv, .html, .docx,
.odt, .xlsx and .pdf attachments, each with its place in words (``the attachment
"minutes.docx"``). A file of those kinds that cannot be read (damaged, password-protected, too
big, out of time) is reported as :class:`Unreadable`, never passed over as clean. Files of other
kinds (pictures, .zip, old .doc) are not opened; only their names are looked at.

Reading is bounded in bytes, pages, cells and time (:class:`TextLimits`); where it runs, and
the one reading the word checks share, is :mod:`gateway.mime.reading`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from functools import cached_property
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Literal, TypeVar

from gateway.context import parse_message
from gateway.mime.documents import (
    DocumentError,
    DocumentLimits,
    OutOfTime,
    decode_text,
    read_document,
)
from gateway.mime.html import read_html
from gateway.mime.payload import decoded_payload
from gateway.rules.phrases import word_set

if TYPE_CHECKING:
    pass

T = TypeVar("T")

__all__ = [
    "Extraction",
    "TextLimits",
    "TextPiece",
    "Unreadable",
    "attachment_kind",
    "matchable",
    "extract",
    "extraction_of",
    "iter_text",
    "Progress",
    "collect",
]

PieceKind = Literal["subject", "body", "name", "attachment"]


@dataclass(frozen=True)
class TextPiece:
    """Some text of the message and where it was found.

    ``kind`` is "subject", "body" (the message's own text parts), "name" (an attachment's file
    name) or "attachment" (the text inside an attachment, or inside an attached message).
    """

    kind: PieceKind
    place: str  # in words, e.g. 'the attachment "minutes.docx"'
    text: str

    @cached_property
    def words(self) -> frozenset[str]:
        """The text's words, lower-cased (worked out once, shared by every rule)."""
        return word_set(self.text)


@dataclass(frozen=True)
class Unreadable:
    """A part of the message whose words could not be checked (in full). ``too_complex``: the
    part is built beyond what the gateway reads (HTML nested too deep), so what it hides is a
    finding the policy decides, not a note."""

    place: str
    reason: str
    too_complex: bool = False

    def __str__(self) -> str:
        return f"{self.place} could not be checked: {self.reason}"


@dataclass(frozen=True)
class TextLimits:
    documents: DocumentLimits = field(default_factory=DocumentLimits)
    max_file_bytes: int = 32 * 1024 * 1024  # a bigger attachment is not opened
    max_depth: int = 20  # multipart and forwarded-message nesting
    seconds: float = 20.0  # for the whole message


@dataclass(frozen=True)
class Extraction:
    pieces: tuple[TextPiece, ...] = ()
    unreadable: tuple[Unreadable, ...] = ()

    def of_kind(self, *kinds: PieceKind) -> tuple[TextPiece, ...]:
        return tuple(p for p in self.pieces if p.kind in kinds)


# --------------------------------------------------------------------------- pure helpers

# Characters that change nothing a reader sees but would split a word for a matcher; typographic
# apostrophes as typed ones ("I\u2019ll" is "I'll").
_NORMAL: dict[int, str | None] = {
    **dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff")),
    ord("\u2019"): "'", ord("\u2018"): "'",
}


def matchable(text: str) -> str:
    """Line ends as ``\\n``; soft hyphens and zero-width characters removed; apostrophes typed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # translate() walks the text in Python-level steps; skip it when there is nothing to do.
    if any(chr(c) in text for c in _NORMAL):
        text = text.translate(_NORMAL)
    return text


_BY_EXTENSION = {
    ".txt": "text", ".csv": "text", ".htm": "html", ".html": "html", ".docx": "docx",
    ".odt": "odt", ".xlsx": "xlsx", ".pdf": "pdf",
}
_BY_TYPE = {
    "text/plain": "text", "text/csv": "text", "text/html": "html", "application/pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.oasis.opendocument.text": "odt",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
}


def attachment_kind(filename: str | None, content_type: str) -> str | None:
    """Which reader opens this attachment: by file name first, then by declared type."""
    if filename:
        kind = _BY_EXTENSION.get(PurePosixPath(filename.lower()).suffix)
        if kind:
            return kind
    return _BY_TYPE.get(content_type.lower())


_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def _display_name(name: str, limit: int = 80) -> str:
    name = _CONTROL.sub(" ", name).replace('"', "'").strip()
    return name if len(name) <= limit else name[: limit - 3] + "..."


def _name_words(name: str) -> str:
    # "Confidential_minutes.v2.docx" reads as words: underscores and dots part them.
    return re.sub(r"[_.]+", " ", name)


# --------------------------------------------------------------------------- the walk

class Progress:
    """Shared between the reading thread and the event loop: results so far and the place."""

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.stopped = False
        self.place = "the message"
        self.items: list[TextPiece | Unreadable] = []

    def tick(self) -> None:
        if self.stopped or time.monotonic() > self.deadline:
            raise OutOfTime()


def iter_text(msg: Message, limits: TextLimits | None = None,
              progress: Progress | None = None) -> Iterator[TextPiece | Unreadable]:
    """Every piece of text in ``msg``, in message order, and every part that could not be read."""
    limits = limits or TextLimits()
    progress = progress or Progress(time.monotonic() + limits.seconds)
    try:
        subject = _header(msg, "subject")
        if subject:
            yield TextPiece("subject", "the Subject", matchable(subject))
        yield from _walk(msg, "", limits, progress, 0)
    except OutOfTime:
        yield Unreadable(progress.place, (
            f"the gateway ran out of time ({limits.seconds:g} seconds) reading it; "
            "what follows it in the message was not checked either"))


def _header(msg: Message, name: str) -> str:
    try:
        return str(msg.get(name, "") or "")
    except Exception:  # a malformed header the parser kept as a defect
        return ""


def _walk(part: Message, within: str, limits: TextLimits, progress: Progress,
          depth: int) -> Iterator[TextPiece | Unreadable]:
    progress.tick()
    if depth > limits.max_depth:
        yield Unreadable(f"a part{within}", "it is nested too deeply to read")
        return
    ctype = part.get_content_type()
    if ctype == "message/rfc822":
        inner = part.get_payload()
        for m in inner if isinstance(inner, list) else []:
            if not isinstance(m, Message):
                continue
            inner_within = " of the attached message"
            subject = _header(m, "subject")
            if subject:
                yield TextPiece("attachment", "the Subject of the attached message",
                                matchable(subject))
            yield from _walk(m, inner_within, limits, progress, depth + 1)
        return
    if part.is_multipart():
        payload = part.get_payload()
        for sub in payload if isinstance(payload, list) else []:
            if isinstance(sub, Message):
                yield from _walk(sub, within, limits, progress, depth + 1)
        return
    yield from _leaf(part, within, limits, progress)


def _leaf(part: Message, within: str, limits: TextLimits,
          progress: Progress) -> Iterator[TextPiece | Unreadable]:
    ctype = part.get_content_type()
    try:
        filename = part.get_filename()
    except Exception:
        filename = None
    disposition = part.get_content_disposition()
    if filename:
        shown = _display_name(filename)
        yield TextPiece("name", f'the name of the attachment "{shown}"{within}',
                        matchable(_name_words(filename)))
    if filename or disposition == "attachment":
        place = f'the attachment "{_display_name(filename)}"' if filename else (
            f"an attachment ({ctype}) without a name")
        yield from _attachment(part, place + within, ctype, filename, limits, progress)
        return
    if ctype not in ("text/plain", "text/html"):
        return  # inline pictures and the like: no words to read
    place = "the message text" + (" (HTML)" if ctype == "text/html" else "") + within
    kind: PieceKind = "attachment" if within else "body"
    progress.place = place
    payload = decoded_payload(part)
    if payload is None:
        return
    text = decode_text(payload, part.get_content_charset())
    if ctype == "text/html":
        html = read_html(text, links=False)
        text = html.text
        if html.too_deep:
            yield Unreadable(place, "its HTML is nested too deep to read all of it",
                             too_complex=True)
    yield TextPiece(kind, place, matchable(text))


def _attachment(part: Message, place: str, ctype: str, filename: str | None,
                limits: TextLimits, progress: Progress) -> Iterator[TextPiece | Unreadable]:
    kind = attachment_kind(filename, ctype)
    if kind is None:
        return
    progress.place = place
    payload = decoded_payload(part)
    if payload is None:
        yield Unreadable(place, "its content cannot be decoded")
        return
    if len(payload) > limits.max_file_bytes:
        yield Unreadable(place, f"it is {len(payload) / 1e6:,.0f} MB, more than the "
                                f"{limits.max_file_bytes / 1e6:,.0f} MB the gateway opens")
        return
    if kind == "text":
        text = decode_text(payload, part.get_content_charset())
        cap = limits.documents.max_chars
        if len(text) > cap:
            yield Unreadable(place, f"only its first {cap:,} characters were checked")
            text = text[:cap]
        yield TextPiece("attachment", place, matchable(text))
        return
    try:
        doc = read_document(kind, payload, limits.documents, progress.tick)
    except DocumentError as e:
        yield Unreadable(place, str(e))
        return
    if doc.partial:
        yield Unreadable(place, doc.partial)
    yield TextPiece("attachment", place, matchable(doc.text))


# --------------------------------------------------------------------------- running it

def extract(data: bytes | Message, limits: TextLimits | None = None) -> Extraction:
    """Read a whole message (bytes or parsed) in the calling thread."""
    limits = limits or TextLimits()
    progress = Progress(time.monotonic() + limits.seconds)
    collect(data, limits, progress)
    return extraction_of(progress)


def collect(data: bytes | Message, limits: TextLimits, progress: Progress) -> None:
    msg = parse_message(data) if isinstance(data, bytes) else data
    for item in iter_text(msg, limits, progress):
        progress.items.append(item)


def extraction_of(progress: Progress, *extra: Unreadable) -> Extraction:
    items = list(progress.items) + list(extra)
    return Extraction(
        pieces=tuple(i for i in items if isinstance(i, TextPiece)),
        unreadable=tuple(i for i in items if isinstance(i, Unreadable)),
    )
