"""Header fields the gateway writes: folded without touching anything below them, the junk tag
put in front of the Subject, and the removal of fields only the gateway may write."""

from __future__ import annotations

import email.header
import email.policy
import re
from email.message import Message
from typing import Any

__all__ = ["OWN_PREFIXES", "SHOWING_POLICY", "SHOWN", "authserv_id", "fold_header",
           "origin_fields", "shown_field", "strip_trust_headers", "tag_subject"]

SHOWN = 4096  # characters of a header field's value read to show it


class _ShowingPolicy(email.policy.EmailPolicy):
    """``policy.default`` for header fields shown to a person or written to a log: a value is
    cut to :data:`SHOWN` characters before it is parsed. The email package's header parser
    takes time that grows with the square of a value's length (a Subject of 600 KB took most
    of a minute), and a held message may have a field that long."""

    def header_fetch_parse(self, name: str, value: str) -> Any:
        if len(value) > SHOWN and not hasattr(value, "name"):
            value = value[:SHOWN]
        return super().header_fetch_parse(name, value)


SHOWING_POLICY = _ShowingPolicy()


def shown_field(msg: Message, name: str) -> str:
    """The first ``name`` field of ``msg`` on one line, as :data:`SHOWING_POLICY` reads it
    (whatever policy ``msg`` was parsed with); "" when it has none or it cannot be read."""
    for key, value in msg.raw_items():
        if key.lower() == name.lower():
            try:
                return " ".join(str(SHOWING_POLICY.header_fetch_parse(key, value)).split())
            except Exception:  # a field too broken to parse is shown as missing
                return ""
    return ""


def fold_header(name: str, value: str, width: int = 78) -> bytes:
    """One header field, folded at spaces to ``width`` where it can be (RFC 5322 2.2.3).

    Plain ASCII is filled greedily (the ``email`` package's policy would move the whole value
    to a continuation line); anything else is RFC 2047-encoded.
    """
    value = " ".join(value.split())
    if not value.isascii():
        encoded = email.header.Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
        return f"{name}: {encoded}\r\n".encode("ascii")
    line, lines = f"{name}:", []
    for word in value.split(" "):
        if len(line) + 1 + len(word) > width and line.strip() and line != f"{name}:":
            lines.append(line)
            line = " " + word
        else:
            line += " " + word
    lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


_SUBJECT = re.compile(rb"^subject:[^\r\n]*(?:\r\n[ \t][^\r\n]*)*\r\n", re.I | re.M)


def tag_subject(data: bytes, prefix: str) -> bytes:
    """Put ``prefix`` in front of the Subject (added if missing); the rest is untouched."""
    head, sep, body = data.partition(b"\r\n\r\n")
    head += b"\r\n"
    tag = prefix.encode("utf-8") + b" "
    m = _SUBJECT.search(head)
    if m is None:
        head = b"Subject: " + prefix.encode("utf-8") + b"\r\n" + head
    elif tag.strip() not in m.group(0):
        start = m.start() + len(b"subject:")
        value = head[start:m.end()].lstrip(b" ")
        head = head[:m.start()] + m.group(0)[:8] + b" " + tag + value + head[m.end():]
    return head[:-2] + (sep or b"\r\n\r\n") + body


_FIELD_SPLIT = re.compile(rb"\r\n(?![ \t])")
# The gateway's own fields: nobody outside may write them (they would be trusted downstream).
OWN_PREFIXES = (b"x-council-", b"x-virus-scanned", b"x-quarantine-")


def _without_comments(value: str) -> str:
    """A structured field value with its (possibly nested) comments removed (RFC 5322 3.2.2)."""
    out, depth, escaped = [], 0, False
    for c in value:
        if escaped:
            escaped = False
            if depth == 0:
                out.append(c)
            continue
        if c == "\\":
            escaped = True
            if depth == 0:
                out.append(c)
        elif c == "(":
            depth += 1
        elif c == ")" and depth:
            depth -= 1
        elif depth == 0:
            out.append(c)
    return "".join(out)


def authserv_id(name: str, value: str) -> str:
    """The authserv-id an (ARC-)Authentication-Results field speaks for, normalised: comments
    dropped, case folded, no trailing dot."""
    parts = _without_comments(" ".join(value.split())).split(";")
    if name == "arc-authentication-results":
        parts = parts[1:]  # after the instance tag, i=N
    words = parts[0].split() if parts else []
    return words[0].lower().rstrip(".") if words else ""


def strip_trust_headers(data: bytes, own_id: str) -> bytes:
    """The message without header fields only this gateway may write: every
    (ARC-)Authentication-Results that speaks for ``own_id``, and the gateway's own ``X-`` fields.
    Everything else is kept byte for byte."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, body = data, b""
    own = own_id.lower().rstrip(".")
    fields = _FIELD_SPLIT.split(head)
    kept = []
    for f in fields:
        name = f.partition(b":")[0].strip().lower()
        if name.startswith(OWN_PREFIXES):
            continue
        if name in (b"authentication-results", b"arc-authentication-results"):
            value = f.partition(b":")[2].decode("ascii", "replace")
            if authserv_id(name.decode("ascii"), value) == own:
                continue
        kept.append(f)
    if len(kept) == len(fields):
        return data
    return b"\r\n".join(kept) + (sep or b"\r\n\r\n") + body


def origin_fields(data: bytes, *, date: str, message_id: str) -> bytes:
    """The message with ``Date:`` and ``Message-ID:`` put on top when it has none (RFC 6409
    section 8: the submission server completes what the client left out), so they are there
    before the footer and the signature, and no server on the way adds them afterwards."""
    end = data.find(b"\r\n\r\n")
    head = data[: end + 2] if end >= 0 else data
    names = {m.group(1).lower() for m in re.finditer(rb"^([!-9;-~]+)[ \t]*:", head, re.M)}
    top = b""
    if b"date" not in names:
        top += fold_header("Date", date)
    if b"message-id" not in names:
        top += fold_header("Message-ID", message_id)
    return top + data if top else data
