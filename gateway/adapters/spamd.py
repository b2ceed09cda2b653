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
import socket
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
    Raises OSError or TimeoutError; the connection is closed whatever happens.

    On the socket itself rather than asyncio's streams: spamd refuses some requests (TELL
    without ``--allow-tell``) as soon as it has read the headers and closes with the rest
    unread, so the kernel resets the connection and our next write fails. Its answer is still
    waiting in the socket then; a stream transport would drop the socket unread."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(deadline):
        sock = await _connect(loop, address)
        try:
            head = "".join(f"{h}\r\n" for h in headers)
            try:
                await loop.sock_sendall(sock, f"{verb} SPAMC/1.5\r\n{head}Content-length: "
                                        f"{content.size}\r\n\r\n".encode())
                for chunk in content.chunks():  # never a second copy of the message
                    await loop.sock_sendall(sock, chunk)
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                if not (early := _waiting(sock)):
                    raise
                return early
            return await _read_reply(loop, sock)
        finally:
            sock.close()


async def _connect(loop: asyncio.AbstractEventLoop, address: tuple[str, int]) -> socket.socket:
    host, port = address
    error: OSError = OSError(f"no address for {host}")
    for family, kind, proto, _, where in await loop.getaddrinfo(host, port,
                                                               type=socket.SOCK_STREAM):
        try:
            sock = socket.socket(family, kind, proto)  # fails for IPv6 on a host without it
        except OSError as e:
            error = e
            continue
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, where)
            return sock
        except OSError as e:
            sock.close()
            error = e
        except BaseException:
            sock.close()
            raise
    raise error


async def _read_reply(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> bytes:
    reply = b""
    while len(reply) < _REPLY_LIMIT:
        try:
            chunk = await loop.sock_recv(sock, _REPLY_LIMIT)
        except OSError:
            if reply:
                break  # a reset after the answer: what was read is the answer
            raise
        if not chunk:
            break
        reply += chunk
    return reply


def _waiting(sock: socket.socket) -> bytes:
    """What the socket has received and not yet been read, without waiting."""
    reply = b""
    while len(reply) < _REPLY_LIMIT:
        try:
            chunk = sock.recv(_REPLY_LIMIT)
        except OSError:  # BlockingIOError: nothing more yet; a reset: nothing more ever
            break
        if not chunk:
            break
        reply += chunk
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
