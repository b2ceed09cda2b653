"""Adds the council's privacy-notice footer to a message, once, without breaking its MIME.

Kirkham rule 11: "All emails sent must contain the Council's standard business 'footer' which
includes a privacy notice."

The cases follow GNU Mailman's ``decorate.py``, made to cover every shape mail clients send:

1. A human-readable body (text/plain or text/html, not an attachment) gets the footer appended
   in its own form: plain text to plain text, HTML before ``</body>`` (or ``</html>``, or at the
   end). Every alternative of a multipart/alternative gets it; multipart/related gets it in its
   root part; multipart/mixed in its body part (the first one, or the last when the client
   interleaved text and pictures, as Apple Mail does). Attachments, calendar parts and forwarded
   message/rfc822 parts are never touched.
2. When the body cannot be changed safely (an unknown charset, bytes that do not decode, an
   inline PGP signature) and the message is multipart/mixed, the footer is added as a last
   text/plain part.
3. Otherwise the whole message body is wrapped, byte for byte, in a new multipart/mixed with the
   footer as a second part. Signed or encrypted mail always takes this path (policy "wrap"), so
   its signature still verifies; policy "skip" leaves it alone, "reject" refuses it.

Where the footer goes in a reply: right after the sender's own words (see :mod:`replies`), so a
top-posted reply carries it above the quoted history and the footers of a long thread do not pile
up at the bottom. A body whose own words already end with the footer (compared with white space
normalised) is left alone, so running the gateway twice, or a client that adds it itself, never
gives a second footer; a footer inside the quoted history does not count.

Only the bytes of the parts that change are rewritten: every other byte of the message, headers
included, is kept as it came. A part that is rewritten keeps its charset when the footer fits in
it (HTML always does: characters it cannot hold become character references), otherwise it is
re-encoded as UTF-8; its transfer encoding is kept unless the result would need 8-bit or lines
over 998 bytes where the original promised 7-bit, in which case it becomes quoted-printable.
"""

from __future__ import annotations

import email
import email.policy
import re
import secrets
import textwrap
from dataclasses import dataclass
from email.message import Message
from enum import Enum

from gateway.mime.footer_text import Footer, html_from_text
from gateway.mime.layout import Entity, header_fields, locate, shape
from gateway.mime.partcodec import (
    CRLF,
    decode_part,
    encode_body,
    field_name,
    fold,
    rewrite_headers,
)
from gateway.mime.replies import html_layout, normalise, text_history_start

__all__ = [
    "Footer",
    "FooterResult",
    "SignedMessageError",
    "add_footer",
    "apply_footer",
    "html_from_text",
    "PROTECTED_TYPES",
]

SIGNED_POLICIES = ("wrap", "skip", "reject")

#: Content types whose bytes a signature or encryption covers: never changed inside.
PROTECTED_TYPES = frozenset({
    "multipart/signed", "multipart/encrypted", "application/pkcs7-mime",
    "application/x-pkcs7-mime", "application/pgp-encrypted",
})
_INLINE_PGP = re.compile(rb"^-----BEGIN PGP (?:SIGNED )?MESSAGE-----", re.MULTILINE)
_BODY_TYPES = frozenset({"text/plain", "text/html"})
_CONTAINERS = frozenset({"multipart/alternative", "multipart/related", "multipart/mixed"})
_BODY_CLOSE = re.compile(r"</body\s*>", re.IGNORECASE)
_HTML_CLOSE = re.compile(r"</html\s*>", re.IGNORECASE)


class SignedMessageError(Exception):
    """The message is signed or encrypted and the policy says to refuse it."""


@dataclass(frozen=True)
class FooterResult:
    """``data`` is the new message, or None when it stays as it is. ``outcome`` is one of
    "added", "present" (already there), "wrapped" (body wrapped with a footer part),
    "signed-wrapped", "signed-skipped", "signed-rejected"."""

    data: bytes | None
    outcome: str


class _Status(Enum):
    ADDED = "added"
    PRESENT = "present"
    CANNOT = "cannot"


@dataclass(frozen=True)
class _Edit:
    start: int
    end: int
    replacement: bytes


# ----------------------------------------------------------------------------- public API

def add_footer(data: bytes, text: str, html: str, signed: str = "wrap") -> bytes | None:
    """The message with the footer added, or None when nothing changes.

    ``signed`` says what to do with signed or encrypted mail: "wrap" (default), "skip", or
    "reject", which raises :class:`SignedMessageError`.
    """
    result = apply_footer(data, Footer(text, html), signed)
    if result.outcome == "signed-rejected":
        raise SignedMessageError("the message is signed or encrypted")
    return result.data


def apply_footer(data: bytes, footer: Footer, signed: str = "wrap") -> FooterResult:
    """Like :func:`add_footer`, saying what was done."""
    if signed not in SIGNED_POLICIES:
        raise ValueError(f"signed must be one of {SIGNED_POLICIES}, not {signed!r}")
    root = locate(data)
    if _is_protected(data, root):
        if signed == "skip":
            return FooterResult(None, "signed-skipped")
        if signed == "reject":
            return FooterResult(None, "signed-rejected")
        return FooterResult(_wrap(data, root, footer), "signed-wrapped")
    if shape(root) != _stdlib_shape(data):
        # The email package reads this message differently; do not edit inside it.
        return _wrap_unless_present(data, root, footer)
    edits: list[_Edit] = []
    status = _decorate(data, root, footer, edits)
    if status is _Status.PRESENT:
        return FooterResult(None, "present")
    if status is _Status.CANNOT:
        return FooterResult(_wrap(data, root, footer), "wrapped")
    return FooterResult(_apply(data, edits), "added")


# ----------------------------------------------------------------------------- structure

def _stdlib_shape(data: bytes) -> list[str]:
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    out: list[str] = []

    def walk(part: Message) -> None:
        out.append(part.get_content_type())
        if part.get_content_maintype() == "multipart" and part.is_multipart():
            for child in part.get_payload():
                if isinstance(child, Message):
                    walk(child)

    walk(msg)
    return out


def _is_protected(data: bytes, ent: Entity) -> bool:
    if ent.content_type in PROTECTED_TYPES:
        return True
    return ent.content_type == "text/plain" and bool(
        _INLINE_PGP.search(data, ent.body_start, ent.end))


def _is_attachment(ent: Entity) -> bool:
    disposition = str(ent.headers.get("content-disposition", "")).split(";")[0].strip().lower()
    if disposition == "attachment":
        return True
    return bool(ent.headers.get_filename() or ent.headers.get_param("name"))


def _is_body(ent: Entity) -> bool:
    return (ent.content_type in _BODY_TYPES or ent.content_type in _CONTAINERS) \
        and not _is_attachment(ent)


def _decorate(data: bytes, ent: Entity, footer: Footer, edits: list[_Edit]) -> _Status:
    ctype = ent.content_type
    if ctype in PROTECTED_TYPES or _is_attachment(ent):
        return _Status.CANNOT
    if ctype in _BODY_TYPES:
        return _decorate_leaf(data, ent, footer, edits)
    if not ent.is_multipart or not ent.children:
        return _Status.CANNOT
    if ctype == "multipart/alternative":
        return _decorate_alternative(data, ent, footer, edits)
    if ctype == "multipart/related":
        return _decorate(data, _related_root(ent), footer, edits)
    return _decorate_mixed(data, ent, footer, edits)


def _decorate_alternative(data: bytes, ent: Entity, footer: Footer,
                          edits: list[_Edit]) -> _Status:
    # All alternatives or none, so that every form a reader may see carries the footer.
    mine: list[_Edit] = []
    statuses = [_decorate(data, child, footer, mine) for child in ent.children
                if _is_body(child)]
    if not statuses or _Status.CANNOT in statuses:
        return _Status.CANNOT
    if all(s is _Status.PRESENT for s in statuses):
        return _Status.PRESENT
    edits.extend(mine)
    return _Status.ADDED


def _related_root(ent: Entity) -> Entity:
    start = ent.headers.get_param("start")
    if isinstance(start, str) and start:
        wanted = start.strip().strip("<>")
        for child in ent.children:
            if str(child.headers.get("content-id", "")).strip().strip("<>") == wanted:
                return child
    return ent.children[0]


def _decorate_mixed(data: bytes, ent: Entity, footer: Footer, edits: list[_Edit]) -> _Status:
    last = ent.children[-1]
    if last.content_type == "text/plain" and not _is_attachment(last):
        decoded = decode_part(data, last)
        if decoded is not None and _ends_with(decoded[0], footer.text_norm):
            return _Status.PRESENT
    bodies = [c for c in ent.children if _is_body(c)]
    status = _Status.CANNOT
    if bodies:
        # Text, picture, text (Apple Mail): the reader's last words are in the last part.
        target = last if (len(bodies) > 1 and bodies[-1] is last) else bodies[0]
        mine: list[_Edit] = []
        status = _decorate(data, target, footer, mine)
        if status is not _Status.CANNOT:
            edits.extend(mine)
            return status
    if ent.content_type == "multipart/mixed" and ent.close is not None:
        boundary = str(ent.headers.get_param("boundary"))
        delimiter = b"\r\n--" + boundary.encode("ascii", "surrogateescape") + CRLF
        part = delimiter + _footer_part(footer)
        edits.append(_Edit(ent.close, ent.close, part))
        return _Status.ADDED
    return status


# ----------------------------------------------------------------------------- one text part

def _ends_with(text: str, footer_norm: str) -> bool:
    norm = normalise(text)
    return norm == footer_norm or norm.endswith(" " + footer_norm)


def _decorate_leaf(data: bytes, ent: Entity, footer: Footer, edits: list[_Edit]) -> _Status:
    decoded = decode_part(data, ent)
    if decoded is None:
        return _Status.CANNOT
    text, charset, cte = decoded
    if ent.content_type == "text/html":
        new_text = _html_with_footer(text, footer)
    else:
        if _INLINE_PGP.search(text.encode("utf-8", "surrogateescape")):
            return _Status.CANNOT
        flowed = str(ent.headers.get_param("format", "")).lower() == "flowed"
        delsp = str(ent.headers.get_param("delsp", "")).lower() == "yes"
        new_text = _plain_with_footer(text, footer, flowed, delsp)
    if new_text is None:
        return _Status.PRESENT
    if ent.content_type == "text/html":
        # Characters the part cannot hold become references, so the charset never changes (a
        # <meta charset> inside would contradict a new one); a 7-bit part stays 7-bit.
        ascii_only = cte == "7bit" and text.isascii() and "a<>".encode(charset) == b"a<>"
        encoded = new_text.encode("ascii" if ascii_only else charset, "xmlcharrefreplace")
        new_charset = charset
    else:
        try:
            encoded = new_text.encode(charset)
            new_charset = charset
        except UnicodeEncodeError:
            encoded = new_text.encode("utf-8")
            new_charset = "utf-8"
    body, new_cte = encode_body(encoded, cte)
    edits.append(_Edit(ent.start, ent.end, rewrite_headers(
        data[ent.start:ent.body_start], ent.headers,
        charset=new_charset if new_charset != charset else None,
        cte=new_cte if new_cte != cte else None,
        top=ent.start == 0) + body))
    return _Status.ADDED


def _plain_with_footer(text: str, footer: Footer, flowed: bool, delsp: bool) -> str | None:
    cut = text_history_start(text)
    own, history = (text, "") if cut is None else (text[:cut], text[cut:])
    if _ends_with(own, footer.text_norm):
        return None
    block = _flowed(footer.text, delsp) if flowed else footer.text
    if not own.strip():
        sep = ""
    elif own.endswith("\n\n"):
        sep = ""
    elif own.endswith("\n"):
        sep = "\n"
    else:
        sep = "\n\n"
    out = own + sep + block + "\n"
    if history:
        out += "\n" + history
    return out


def _flowed(text: str, delsp: bool) -> str:
    """The footer as RFC 3676 format=flowed lines: long lines get soft breaks, lines that would
    be misread are space-stuffed."""
    soft = "  " if delsp else " "
    out: list[str] = []
    for line in text.split("\n"):
        pieces = textwrap.wrap(line, width=72, break_long_words=False,
                               break_on_hyphens=False) if len(line) > 78 else [line]
        for i, piece in enumerate(pieces or [""]):
            if piece.startswith((" ", ">", "From ")):
                piece = " " + piece
            out.append(piece + soft if i < len(pieces) - 1 else piece)
    return "\n".join(out)


def _html_with_footer(html: str, footer: Footer) -> str | None:
    closes = list(_BODY_CLOSE.finditer(html)) or list(_HTML_CLOSE.finditer(html))
    body_end = closes[-1].start() if closes else len(html)
    layout = html_layout(html)
    cut = layout.history_start(body_end)
    at = body_end if cut is None else cut
    own = layout.visible_text(0, at)
    if _ends_with(own, footer.html_norm) or _ends_with(own, footer.text_norm):
        return None
    return html[:at] + "\n" + footer.html + "\n" + html[at:]


# ----------------------------------------------------------------------------- new parts

def _footer_part(footer: Footer) -> bytes:
    encoded = (footer.text + "\n").encode("utf-8")
    body, cte = encode_body(encoded, "7bit")
    charset = "us-ascii" if encoded.isascii() else "utf-8"
    return (f"Content-Type: text/plain; charset=\"{charset}\"\r\n"
            f"Content-Transfer-Encoding: {cte}\r\n"
            "Content-Disposition: inline\r\n"
            "Content-Description: Privacy notice\r\n\r\n").encode("ascii") + body


def _new_boundary(data: bytes) -> str:
    while True:
        boundary = "=_footer_" + secrets.token_hex(12)
        if boundary.encode("ascii") not in data:
            return boundary


def _wrap(data: bytes, root: Entity, footer: Footer) -> bytes:
    """Case 3: the original body, byte for byte, as the first part of a new multipart/mixed."""
    fields = [f if f.endswith(b"\n") else f + CRLF
              for f in header_fields(data[root.start:root.body_start])]
    content = [f for f in fields if field_name(f).startswith("content-")]
    others = [f for f in fields if not field_name(f).startswith("content-")]
    if not any(field_name(f) == "mime-version" for f in others):
        others.append(b"MIME-Version: 1.0\r\n")
    boundary = _new_boundary(data)
    delimiter = b"--" + boundary.encode("ascii")
    return b"".join([
        *others,
        fold("Content-Type", f'multipart/mixed; boundary="{boundary}"'),
        CRLF,
        delimiter, CRLF,
        *content, CRLF,
        data[root.body_start:], CRLF,  # this line break belongs to the delimiter
        delimiter, CRLF,
        _footer_part(footer), CRLF,
        delimiter, b"--", CRLF,
    ])


def _wrap_unless_present(data: bytes, root: Entity, footer: Footer) -> FooterResult:
    if root.content_type == "multipart/mixed" and root.children:
        last = root.children[-1]
        decoded = decode_part(data, last) if last.content_type == "text/plain" else None
        if decoded is not None and _ends_with(decoded[0], footer.text_norm):
            return FooterResult(None, "present")
    return FooterResult(_wrap(data, root, footer), "wrapped")


def _apply(data: bytes, edits: list[_Edit]) -> bytes:
    out: list[bytes] = []
    pos = 0
    for edit in sorted(edits, key=lambda e: e.start):
        out.append(data[pos:edit.start])
        out.append(edit.replacement)
        pos = edit.end
    out.append(data[pos:])
    return b"".join(out)
