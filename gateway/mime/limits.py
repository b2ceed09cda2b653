"""How complex a message is, measured on its bytes before anything parses it.

Parsing a message with 50,000 parts or a multipart nested 1,000 deep takes the ``email`` package
minutes (or its recursion limit), and reading the words of tens of megabytes of text holds a
CPU for seconds; such mail is not a council's. :func:`measure` walks the boundary lines once,
without recursion and without building the message, counting the parts (attached messages
too), their nesting, the bytes of the text the checks read (text/plain and text/html parts
that are not attachments, as sent: decoded, they are no longer) and of the header fields, and
finding the longest field (the ``email`` package's header parser is slow on long ones). What
each part's type and boundary are it asks the ``email`` package, field by field, so that it
reads the message as the parser will. :func:`too_complex` says which limit a message is over,
in words.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from email.message import EmailMessage, Message

from gateway.context import READING_POLICY
from gateway.mime.boundaries import BoundaryLines

__all__ = ["Complexity", "MimeLimits", "measure", "too_complex"]

_LINE = re.compile(rb"[^\r\n]*(?:\r\n|\n|\r|$)")
_CONTENT_TYPE = re.compile(rb"^content-type\s*:(.*)$", re.I | re.S)
_DISPOSITION = re.compile(rb"^content-disposition\s*:(.*)$", re.I | re.S)


MIB = 1024 * 1024
KIB = 1024

# The fields the email package reads as addresses, dates, ids or parameters: its parser of
# these takes time that grows with a value's length times its tokens (a From of 16 KB of
# comments took a second), so they are held to a shorter limit than fields read as plain text,
# and limited together.
STRUCTURED = frozenset({
    b"from", b"sender", b"reply-to", b"to", b"cc", b"bcc", b"date", b"message-id",
    b"mime-version", b"content-type", b"content-disposition", b"content-transfer-encoding",
    b"resent-from", b"resent-sender", b"resent-to", b"resent-cc", b"resent-bcc",
    b"resent-date", b"orig-date"})


@dataclass(frozen=True)
class MimeLimits:
    max_parts: int = 1000
    max_depth: int = 20
    max_text: int = 8 * MIB  # bytes of text the checks read
    max_field: int = 64 * KIB  # bytes of one header field, its folded lines together
    max_header: int = 256 * KIB  # bytes of the header blocks, the message's and its parts'
    max_nested_lines: int = 8_000_000  # lines times the multiparts open around each

    @property
    def max_structured(self) -> int:
        """Bytes of one field of :data:`STRUCTURED` (From, To, Content-Type ...)."""
        return self.max_field // 2

    @property
    def structured_budget(self) -> int:
        """What all the fields of :data:`STRUCTURED` may cost together: the sum of each one's
        length times its tokens (see :func:`_structured_cost`)."""
        return (self.max_field // 8) ** 2


@dataclass(frozen=True)
class Complexity:
    parts: int  # MIME entities, the message itself included
    depth: int  # the deepest nesting of multiparts
    text: int = 0  # bytes in the text/plain and text/html parts that are not attachments
    header: int = 0  # bytes in the header blocks of the message and its parts
    # the longest field for its kind (see :data:`STRUCTURED`), as how far over its limit it is:
    # (bytes, limit, its name); limit 0 when no field was measured against one
    field: tuple[int, int, str] = (0, 0, "")
    # what reading the fields of STRUCTURED costs the email package: the sum of each one's
    # length times its tokens (a field of nothing but quotes or brackets costs the most)
    structured: int = 0
    # lines, each counted once for every multipart open around it: the email package's parser
    # tests every line against every open multipart's boundary, in Python
    nested_lines: int = 0
    # a boundary that mail programs read in different ways (see _read_part)
    ambiguous: bool = False

    def plus(self, other: Complexity) -> Complexity:
        """Both together, as if one message held the other's parts too."""
        return _plus(self, other)


def _plus(a: Complexity, b: Complexity) -> Complexity:
    return Complexity(a.parts + b.parts, max(a.depth, b.depth), a.text + b.text,
                      a.header + b.header, max(a.field, b.field, key=_over),
                      a.structured + b.structured, a.nested_lines + b.nested_lines,
                      a.ambiguous or b.ambiguous)


def _over(field: tuple[int, int, str]) -> float:
    return field[0] / field[1] if field[1] else 0.0


def _fields(header_lines: list[bytes]) -> list[bytes]:
    # Each field's lines joined once (adding each continuation to the field so far copied it
    # again every time: a field of a million short lines took minutes).
    fields: list[list[bytes]] = []
    for line in header_lines:
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1].append(line)
        else:
            fields.append([line])
    return [b"".join(f) for f in fields]


_FIELD_NAME = re.compile(rb"([!-9;-~]{1,40})[ \t]*:")
# How the email package's parser tells a header line from the first line of the body.
_HEADER_LINE = re.compile(rb"From |[!-9;-~]*:|[ \t]")


def _longest(fields: list[bytes], limits: MimeLimits,
             so_far: tuple[int, int, str]) -> tuple[int, int, str]:
    """The field furthest over (or nearest to) its limit, this block's or ``so_far``."""
    best = so_far
    for f in fields:
        if len(f) * 32 < limits.max_field:
            continue  # far under either limit: not worth a look at its name
        m = _FIELD_NAME.match(f)
        name = m.group(1).lower() if m else b""
        limit = limits.max_structured if name in STRUCTURED else limits.max_field
        if not best[1] or len(f) * best[1] > best[0] * limit:
            best = (len(f), limit, (m.group(1) if m else b"a").decode("ascii"))
    return best


# What the email package's parser of addresses and parameters splits on: it copies the rest
# of the value at each of them, so a field costs it about its length times their number.
_TOKEN_CHARS = b'()<>@,;:\\".[]=/ \t'


def _structured_cost(fields: list[bytes]) -> int:
    cost = 0
    for f in fields:
        if len(f) > 64:  # shorter ones cost next to nothing
            m = _FIELD_NAME.match(f)
            if m and m.group(1).lower() in STRUCTURED:
                cost += len(f) * (len(f) - len(f.translate(None, _TOKEN_CHARS)))
    return cost


@dataclass(frozen=True)
class _Part:
    content_type: str  # as the email package reads it, e.g. "text/plain" when none is given
    boundary: bytes | None
    attachment: bool
    ambiguous: bool = False  # its boundary reads differently to older mail programs


def _read_part(fields: list[bytes], *, in_digest: bool) -> _Part:
    """What the email package makes of a header block's Content-Type and Content-Disposition:
    read by the same code with the same policy (encoded words, comments, RFC 2231 pieces,
    quoting), so the measure cannot be told one thing while the parser is told another."""
    ctype = disposition = None
    for f in fields:
        if ctype is None and (m := _CONTENT_TYPE.match(f)):
            ctype = m.group(1)
        elif disposition is None and (m := _DISPOSITION.match(f)):
            disposition = m.group(1)
    if len(ctype or b"") + len(disposition or b"") > 512:  # rare: not worth keeping
        return _part_of.__wrapped__(ctype, disposition, in_digest)
    return _part_of(ctype, disposition, in_digest)


@functools.lru_cache(maxsize=1024)
def _part_of(ctype: bytes | None, disposition: bytes | None, in_digest: bool) -> _Part:
    # The fields are short by now: longer ones have already made the message too complex.
    probe = EmailMessage(policy=READING_POLICY)
    if in_digest:
        probe.set_default_type("message/rfc822")
    for name, value in (("Content-Type", ctype), ("Content-Disposition", disposition)):
        if value is not None:
            text = value.decode("ascii", "surrogateescape")
            # Stored as the parser stores a field it reads, and so read the same way.
            probe._headers.append(  # type: ignore[attr-defined]
                READING_POLICY.header_source_parse([f"{name}:{text}"]))
    try:
        content_type = probe.get_content_type()
        boundary = probe.get_boundary() if probe.get_content_maintype() == "multipart" else None
        attachment = probe.get_content_disposition() == "attachment"
    except Exception:  # what the parser cannot read it does not act on either
        return _Part("text/plain", None, False)
    # A boundary with a comment in it, or written as an encoded word, is read one way here and
    # another by a mail program that reads parameters as older software does: what the checks
    # see as parts, the recipient's program may see as one, or the other way round.
    older = Message()
    older["Content-Type"] = (ctype or b"").decode("ascii", "surrogateescape").strip()
    return _Part(content_type,
                 boundary.encode("ascii", "surrogateescape") if boundary else None, attachment,
                 boundary is not None and older.get_boundary() != boundary)


def measure(data: bytes, stop: MimeLimits | None = None) -> Complexity:
    """Count the entities, the deepest nesting, the bytes of text and of header fields, and
    find the longest field; with ``stop``, give up as soon as a limit is passed (the counts are
    then of the message up to there)."""
    limits = stop or MimeLimits()
    stack: list[bytes] = []  # open multiparts' boundaries, outermost first
    parts, depth, text = 1, 0, 0
    header_bytes = 0
    lines = 0  # lines, each counted once for every multipart open around it
    ambiguous = False
    structured = 0  # what the fields read as addresses or parameters cost together
    field: tuple[int, int, str] = (0, 0, "")
    in_headers = True
    counting = False  # in the body of a text part
    status = False  # in a delivery report's body: header blocks, as the email package reads it
    # Messages attached as message/rfc822 are entities nested in the part that holds them: how
    # many are open at each depth of multiparts (the email package parses each one, headers and
    # parts, as it parses the message).
    inner = [0]
    digests: list[bool] = []  # for each open multipart: is it a digest (parts default to messages)
    in_digest = False  # the header block being read is of a part of a digest
    header: list[bytes] = []
    at, end = 0, len(data)
    boundaries = BoundaryLines(data, stack)
    while at < end:
        if not in_headers:
            # A body's lines matter only where one may be a boundary: jump there (an
            # attachment's base64, or a text of lines like "--", is not read line by line).
            line_at = boundaries.next_from(at)
            lines += data.count(b"\n", at, line_at) * len(stack)
            if counting:
                text += line_at - at
                if stop and text > stop.max_text:
                    break
            if status:  # each block is an entity; its fields count as header bytes
                header_bytes += line_at - at
                parts += data.count(b"\n\r\n", at, line_at) + data.count(b"\n\n", at, line_at)
                if stop and (header_bytes > stop.max_header or parts > stop.max_parts):
                    break
            if line_at == end:
                break
            at = line_at
        m = _LINE.match(data, at)
        assert m is not None  # _LINE matches at every position
        line = m.group(0)
        if not line:
            break
        at = m.end()
        lines += len(stack)
        if stop and lines > stop.max_nested_lines:
            break
        stripped = line.rstrip(b"\r\n")
        if in_headers:
            if stripped and _HEADER_LINE.match(stripped) and not (
                    stack and stripped.startswith(b"--") and boundaries.is_boundary(stripped)):
                header.append(stripped)
                header_bytes += len(line)
                if stop and header_bytes > stop.max_header:
                    break
                continue
            # A blank line ends the header block; so does a line that is neither a field nor
            # a continuation, which the email package reads as the body's first line, and an
            # open multipart's boundary line, which ends the part wherever it comes.
            if stripped:
                at = m.start()
            in_headers = False
            fields = _fields(header)
            header = []
            field = _longest(fields, limits, field)
            structured += _structured_cost(fields)
            if stop and (field[0] > field[1] > 0 or structured > stop.structured_budget):
                break
            part = _read_part(fields, in_digest=in_digest)
            in_digest = False
            if part.ambiguous:
                ambiguous = True
                if stop:
                    break
            counting = status = False
            if part.boundary is not None:
                stack.append(part.boundary)
                digests.append(part.content_type == "multipart/digest")
                inner.append(0)
                boundaries.opened_or_closed()
            elif part.content_type == "message/delivery-status":
                status = True
            elif part.content_type.startswith("message/"):
                inner[-1] += 1  # an attached message: its own header block follows
                parts += 1
                in_headers = True
            else:
                counting = (part.content_type in ("text/plain", "text/html")
                            and not part.attachment)
            depth = max(depth, len(stack) + sum(inner))
            if stop and (parts > stop.max_parts or depth > stop.max_depth):
                break
            if in_headers:
                continue
            if not stack:  # a message of one part: the rest is its body
                text += end - at if counting else 0
                header_bytes += end - at if status else 0
                break
            continue
        for level in range(len(stack) - 1, -1, -1):
            b = stack[level]
            if stripped.rstrip(b" \t") == b"--" + b + b"--":
                del stack[level:]  # this multipart (and any left open inside it) ends
                del digests[level:]
                del inner[level + 1:]
                boundaries.opened_or_closed()
                counting = status = False
                break
            if stripped.rstrip(b" \t") == b"--" + b:
                if level + 1 < len(stack):
                    del stack[level + 1:]
                    del digests[level + 1:]
                    boundaries.opened_or_closed()
                del inner[level + 2:]
                inner[level + 1] = 0  # messages attached in the part before are over
                parts += 1
                in_headers = True  # the next lines are the new part's header block
                in_digest = digests[level]
                counting = status = False
                break
        else:
            if counting:
                text += len(line)
            if status:
                header_bytes += len(line)
        if not stack:
            break  # after the outermost multipart's end nothing counts (nor opens again)
    if header:  # the data ended inside a header block
        field = _longest(_fields(header), limits, field)
        structured += _structured_cost(_fields(header))
    return Complexity(parts, depth, text, header_bytes, field, structured, lines, ambiguous)


def too_complex(c: Complexity, limits: MimeLimits) -> str | None:
    """Why the message is too complex to check, in words, or None."""
    if c.parts > limits.max_parts:
        return (f"it has more than {limits.max_parts:,} parts, too many to check safely")
    if c.depth > limits.max_depth:
        return (f"its parts are nested more than {limits.max_depth} deep, too deep to check "
                "safely")
    if c.text > limits.max_text:
        return (f"it has more than {limits.max_text / MIB:g} MiB of text, too much to check "
                "safely")
    length, limit, name = c.field
    if length > limit > 0:
        return (f"its {name} header field is longer than {_size(limit)}, too long to check "
                "safely")
    if c.structured > limits.structured_budget:
        return ("its fields read as addresses or parameters (From, To, Content-Type ...) are "
                "too intricate to check safely")
    if c.ambiguous:
        return ("its parts' boundary is written so that mail programs read it in different "
                "ways, so it cannot be checked safely")
    if c.nested_lines > limits.max_nested_lines:
        return ("it has too many lines inside parts nested in other parts to check safely")
    if c.header > limits.max_header:
        return (f"its header fields (its own and its parts') are longer than "
                f"{_size(limits.max_header)} together, too long to check safely")
    return None


def _size(n: int) -> str:
    return f"{n / MIB:g} MiB" if n >= MIB and n % MIB == 0 else f"{n / KIB:g} KiB"
