"""Header fields the gateway writes: folded without touching anything below them, and the
junk tag put in front of the Subject."""

from __future__ import annotations

import email.header
import re

__all__ = ["fold_header", "tag_subject"]


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
