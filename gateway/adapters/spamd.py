"""SpamAssassin's spamd: an optional second opinion on inbound mail (off unless ``[junk] spamd``
is set), and the clerk's decisions taught to its Bayes filter.

Speaks SPAMC/1.5 over TCP: ``SYMBOLS`` to score a message (the score and the names of the rules
that hit), ``TELL`` to learn one as ham or spam. Any trouble scoring (refused, timeout, garbled
reply) means "no opinion", logged, never a failure of the message; trouble learning is returned
as a sentence for the audit log.

Our own client rather than aiospamc 1.2.0: that one leaves its connection open when spamd stalls
past the timeout (the socket is closed only on the success path), reads the reply without a size
limit, and brings a command line's dependencies (typer, rich, loguru) into the gateway.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Literal

from gateway.content import Content

__all__ = ["Lesson", "SpamdScore", "parse_spamd_reply", "parse_tell_reply", "spamd_check",
           "spamd_tell"]

log = logging.getLogger(__name__)

Lesson = Literal["ham", "spam"]
_REPLY_LIMIT = 64 * 1024  # a SYMBOLS or TELL reply is a few hundred bytes


@dataclass(frozen=True)
class SpamdScore:
    is_spam: bool
    score: float
    required: float
    rules: tuple[str, ...] = ()  # the SpamAssassin rules that hit, e.g. ("BAYES_99",)


_STATUS = re.compile(r"^SPAMD/\d\.\d+ (\d+) ?(.*?)\r?$", re.M)
_SPAM_LINE = re.compile(r"^Spam:\s*(True|False|Yes|No)\s*;\s*(-?[\d.]+)\s*/\s*(-?[\d.]+)",
                        re.I | re.M)
_DID_SET = re.compile(r"^DidSet:\s*(.*?)\r?$", re.I | re.M)


def parse_spamd_reply(reply: bytes) -> SpamdScore | None:
    """``SPAMD/1.1 0 EX_OK`` ... ``Spam: True ; 7.2 / 5.0`` (then, for SYMBOLS, the rule names
    after the blank line) -> SpamdScore; None if unusable."""
    text = reply.decode("latin-1")
    status = _STATUS.match(text)
    if not status or status.group(1) != "0":
        return None
    head, _, body = text.partition("\r\n\r\n")
    m = _SPAM_LINE.search(head)
    if not m:
        return None
    rules = tuple(r for r in (r.strip() for r in body.split(",")) if r)
    return SpamdScore(m.group(1).lower() in ("true", "yes"), float(m.group(2)), float(m.group(3)),
                      rules)


def parse_tell_reply(reply: bytes) -> str | None:
    """None when spamd says it learned the message (``DidSet: local``), else why not."""
    text = reply.decode("latin-1")
    status = _STATUS.match(text)
    if not status:
        return f"spamd sent a reply we could not read: {text[:100]!r}"
    if status.group(1) != "0":
        return f"spamd refused: {status.group(2).strip() or 'error ' + status.group(1)}"
    did = _DID_SET.search(text.partition("\r\n\r\n")[0])
    if did is None or "local" not in did.group(1).lower():
        return "spamd did not learn it (its Bayes filter is off, or it knew this message already)"
    return None


async def _exchange(address: tuple[str, int], verb: str, content: Content, deadline: float,
                    *headers: str) -> bytes:
    """Send one request and read the reply to its end (spamd closes the connection after it).
    Raises OSError or TimeoutError; the connection is closed whatever happens."""
    async with asyncio.timeout(deadline):
        reader, writer = await asyncio.open_connection(*address)
        # Read while writing: spamd refuses some requests (TELL without --allow-tell) as soon as
        # it has read the headers and closes, and the rest of our write then fails; the answer
        # it sent first is still the answer.
        reading = asyncio.ensure_future(_read_reply(reader))
        try:
            head = "".join(f"{h}\r\n" for h in headers)
            try:
                writer.write(f"{verb} SPAMC/1.5\r\n{head}Content-length: {content.size}\r\n"
                             "\r\n".encode())
                for chunk in content.chunks():  # never a second copy of the message
                    writer.write(chunk)
                    await writer.drain()
                writer.write_eof()
            except OSError:
                if not (early := await reading):
                    raise
                return early
            return await reading
        finally:
            reading.cancel()
            writer.close()


async def _read_reply(reader: asyncio.StreamReader) -> bytes:
    reply = b""
    try:
        while len(reply) < _REPLY_LIMIT:
            chunk = await reader.read(_REPLY_LIMIT)
            if not chunk:
                break
            reply += chunk
    except OSError:
        pass  # a reset after the reply: what was read is the answer
    return reply


async def spamd_check(address: tuple[str, int], data: bytes | Content, *,
                      deadline: float) -> SpamdScore | None:
    host, port = address
    try:
        reply = await _exchange(address, "SYMBOLS", Content.of(data), deadline)
    except (OSError, TimeoutError) as e:
        log.warning("spamd at %s:%d gave no opinion: %s", host, port, str(e) or "timed out")
        return None
    score = parse_spamd_reply(reply)
    if score is None:
        log.warning("spamd at %s:%d sent a reply we could not read: %r", host, port,
                    reply[:200])
    return score


async def spamd_tell(address: tuple[str, int], data: bytes, lesson: Lesson, *,
                     deadline: float) -> str | None:
    """Teach spamd's Bayes filter that ``data`` is ``lesson`` (spamd needs ``--allow-tell``).
    None when it learned it, else a sentence saying why not; never raises for spamd's trouble."""
    host, port = address
    try:
        reply = await _exchange(address, "TELL", Content.of(data), deadline,
                                f"Message-class: {lesson}", "Set: local")
    except (OSError, TimeoutError) as e:
        return f"spamd at {host}:{port} did not answer: {str(e) or 'timed out'}"
    return parse_tell_reply(reply)
