"""Where each MIME entity of a message sits in its bytes.

The ``email`` package parses a message into objects but forgets where each part came from, and
writing the objects back out refolds headers and re-terminates lines. To change one part and leave
every other byte alone (a signed part must stay byte-exact), the footer code needs byte offsets:
this module finds them, splitting multiparts on their boundary lines as RFC 2046 section 5.1.1
describes, and lets the ``email`` package read each entity's header block.
"""

from __future__ import annotations

import email.policy
import re
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser

__all__ = ["Entity", "locate", "header_fields", "shape"]

_EOL = re.compile(rb"\r?\n")
_HEADER_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]*:|[ \t]|From ")


@dataclass(frozen=True)
class Entity:
    """One MIME entity: its header block is ``data[start:body_start]``, its body
    ``data[body_start:end]``. For a multipart, ``close`` is where a new part can be inserted
    (the line break before the closing boundary), or None when the closing boundary is missing."""

    start: int
    body_start: int
    end: int
    headers: Message
    children: tuple[Entity, ...] = ()
    close: int | None = None

    @property
    def content_type(self) -> str:
        return self.headers.get_content_type()

    @property
    def is_multipart(self) -> bool:
        return self.headers.get_content_maintype() == "multipart"

    def walk(self) -> list[Entity]:
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out


def _header_end(data: bytes, start: int, end: int) -> tuple[int, int]:
    """(end of the header block, start of the body) for an entity beginning at ``start``.

    As the ``email`` package reads it: header fields run to the first empty line, or to the
    first line that is not a header field (then the body starts on that line)."""
    pos = start
    while pos < end:
        m = _EOL.search(data, pos, end)
        line_end = m.start() if m else end
        next_line = m.end() if m else end
        if line_end == pos:  # the empty line
            return pos, next_line
        if not _HEADER_LINE.match(data, pos, line_end):
            return pos, pos
        pos = next_line
    return end, end


def _parse_headers(block: bytes, default_type: str) -> Message:
    msg = BytesHeaderParser(policy=email.policy.compat32).parsebytes(block)
    if default_type != "text/plain":
        msg.set_default_type(default_type)
    return msg


def locate(data: bytes, start: int = 0, end: int | None = None,
           default_type: str = "text/plain", depth: int = 0) -> Entity:
    """The entity tree of ``data[start:end]``. Parts of message/* types are not entered."""
    if end is None:
        end = len(data)
    _, body_start = _header_end(data, start, end)
    headers = _parse_headers(data[start:body_start], default_type)
    if headers.get_content_maintype() != "multipart" or depth > 50:
        return Entity(start, body_start, end, headers)
    boundary = headers.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        return Entity(start, body_start, end, headers)
    delimiter = re.compile(
        rb"^--" + re.escape(boundary.encode("ascii", "surrogateescape")) + rb"(--)?[ \t]*(\r?\n|$)",
        re.MULTILINE,
    )
    child_type = "message/rfc822" if headers.get_content_subtype() == "digest" else "text/plain"
    children: list[Entity] = []
    part_start: int | None = None
    close: int | None = None
    pos = body_start
    while True:
        m = delimiter.search(data, pos, end)
        if m is None:
            break
        if part_start is not None:
            # The line break before a boundary line belongs to the boundary, not to the part.
            part_end = m.start()
            if data[part_end - 2:part_end] == b"\r\n":
                part_end -= 2
            elif data[part_end - 1:part_end] == b"\n":
                part_end -= 1
            part_end = max(part_end, part_start)
            children.append(locate(data, part_start, part_end, child_type, depth + 1))
            if m.group(1):
                close = part_end
                break
        elif m.group(1):  # a closing boundary with no part before it
            close = m.start()
            break
        part_start = m.end()
        pos = m.end()
    if close is None and part_start is not None:
        children.append(locate(data, part_start, end, child_type, depth + 1))
    return Entity(start, body_start, end, headers, tuple(children), close)


def header_fields(block: bytes) -> list[bytes]:
    """Split a header block into its fields, each with its continuation lines and line break."""
    fields: list[bytes] = []
    for line in block.splitlines(keepends=True):
        if line in (b"\r\n", b"\n"):
            break
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
    return fields


def shape(entity: Entity) -> list[str]:
    """Content types in walk order, to compare with the ``email`` package's own reading."""
    return [e.content_type for e in entity.walk()]
