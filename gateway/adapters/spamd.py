"""An optional second opinion from SpamAssassin's spamd (off unless ``[junk] spamd`` is set).

Speaks the SPAMC/1.5 ``CHECK`` command over TCP; any trouble (refused, timeout, garbled reply)
means "no opinion", logged, never a failure of the message.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass

from gateway.content import Content

__all__ = ["SpamdScore", "parse_spamd_reply", "spamd_check"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpamdScore:
    is_spam: bool
    score: float
    required: float


_SPAM_LINE = re.compile(r"^Spam:\s*(True|False|Yes|No)\s*;\s*(-?[\d.]+)\s*/\s*(-?[\d.]+)",
                        re.I | re.M)


def parse_spamd_reply(reply: bytes) -> SpamdScore | None:
    """``SPAMD/1.1 0 EX_OK`` ... ``Spam: True ; 7.2 / 5.0`` -> SpamdScore; None if unusable."""
    text = reply.decode("latin-1")
    if not re.match(r"^SPAMD/\d\.\d+ 0 ", text):
        return None
    m = _SPAM_LINE.search(text)
    if not m:
        return None
    return SpamdScore(m.group(1).lower() in ("true", "yes"), float(m.group(2)), float(m.group(3)))


async def spamd_check(address: tuple[str, int], data: bytes | Content, *,
                      deadline: float) -> SpamdScore | None:
    host, port = address
    try:
        async with asyncio.timeout(deadline):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                content = Content.of(data)
                writer.write(b"CHECK SPAMC/1.5\r\nContent-length: %d\r\n\r\n" % content.size)
                for chunk in content.chunks():  # never a second copy of the message
                    writer.write(chunk)
                    await writer.drain()
                writer.write_eof()
                reply = b""
                while len(reply) < 65536:  # spamd closes the connection after its reply
                    chunk = await reader.read(65536)
                    if not chunk:
                        break
                    reply += chunk
            finally:
                writer.close()
    except (OSError, TimeoutError) as e:
        log.warning("spamd at %s:%d gave no opinion: %s", host, port, e)
        return None
    score = parse_spamd_reply(reply)
    if score is None:
        log.warning("spamd at %s:%d sent a reply we could not read: %r", host, port,
                    reply[:200])
    return score
