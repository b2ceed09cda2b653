"""How complex a message is, measured on its bytes before anything parses it.

Parsing a message with 50,000 parts or a multipart nested 1,000 deep takes the ``email`` package
minutes (or its recursion limit); such mail is not a council's. :func:`measure` walks the
boundary lines once, without recursion and without building anything, and
:func:`too_complex` says which limit a message is over, in words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Complexity", "MimeLimits", "measure", "too_complex"]

_LINE = re.compile(rb"[^\r\n]*(?:\r\n|\n|\r|$)")
_BOUNDARY = re.compile(rb'boundary\s*=\s*(?:"([^"\r\n]{1,200})"|([^\s;"]{1,200}))', re.I)
_CONTENT_TYPE = re.compile(rb"^content-type\s*:(.*)$", re.I | re.S)


@dataclass(frozen=True)
class MimeLimits:
    max_parts: int = 1000
    max_depth: int = 20


@dataclass(frozen=True)
class Complexity:
    parts: int  # MIME entities, the message itself included
    depth: int  # the deepest nesting of multiparts


def _multipart_boundary(header_lines: list[bytes]) -> bytes | None:
    """The boundary a header block declares for a multipart, or None."""
    fields: list[bytes] = []
    for line in header_lines:
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
    for field in fields:
        m = _CONTENT_TYPE.match(field)
        if m and m.group(1).strip().lower().startswith(b"multipart/"):
            b = _BOUNDARY.search(m.group(1))
            if b:
                return (b.group(1) or b.group(2)).strip()
    return None


def measure(data: bytes, stop: MimeLimits | None = None) -> Complexity:
    """Count the entities and the deepest nesting; with ``stop``, give up as soon as a limit is
    passed (the count is then just over it)."""
    stack: list[bytes] = []  # open multiparts' boundaries, outermost first
    parts, depth = 1, 0
    in_headers = True
    header: list[bytes] = []
    for m in _LINE.finditer(data):
        line = m.group(0)
        if not line:
            break
        text = line.rstrip(b"\r\n")
        if in_headers:
            if text:
                header.append(text)
                continue
            in_headers = False
            boundary = _multipart_boundary(header)
            header = []
            if boundary is not None:
                stack.append(boundary)
                depth = max(depth, len(stack))
            if stop and (parts > stop.max_parts or depth > stop.max_depth):
                break
            continue
        if not text.startswith(b"--") or not stack:
            continue
        for level in range(len(stack) - 1, -1, -1):
            b = stack[level]
            if text == b"--" + b + b"--" or text.rstrip() == b"--" + b + b"--":
                del stack[level:]  # this multipart (and any left open inside it) ends
                break
            if text.rstrip() == b"--" + b:
                del stack[level + 1:]
                parts += 1
                in_headers = True  # the next lines are the new part's header block
                break
    return Complexity(parts, depth)


def too_complex(c: Complexity, limits: MimeLimits) -> str | None:
    """Why the message is too complex to check, in words, or None."""
    if c.parts > limits.max_parts:
        return (f"it has more than {limits.max_parts:,} parts, too many to check safely")
    if c.depth > limits.max_depth:
        return (f"its parts are nested more than {limits.max_depth} deep, too deep to check "
                "safely")
    return None
