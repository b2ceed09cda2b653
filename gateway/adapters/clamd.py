"""A small asyncio client for clamd, and pure functions that read its answers.

The I/O sits in :class:`ClamdClient` (INSTREAM, VERSION, PING over TCP or a unix socket); what an
answer means is decided by :func:`parse_scan_reply`, :func:`parse_version` and
:func:`parse_address` (in :mod:`gateway.adapters.clamd_answers`), which touch no socket and are
tested with tables.

Why a client of our own rather than pyclamd: pyclamd writes with ``socket.send()`` (partial writes
corrupt the stream once chunks are large), blocks the calling thread, has no default timeout and
raises different errors over TCP and unix sockets. Here every chunk of 64 KiB is written and
``drain()`` is awaited, the whole scan runs under one absolute deadline, and each problem becomes
an ``error`` outcome rather than an exception. Measured in ``bench/clamd_clients.py``.

Scans go over clamd sessions (``IDSESSION``) kept between messages: connecting anew for every
message was about a twentieth of the event loop's time at a hundred or two messages a second
(``bench/peer.py``). A session is used by one scan at a time, kept only after a clean, infected
or limits answer, and dropped after a few idle seconds, well before clamd's own
``IdleTimeout``; a kept session that turns out to be closed (clamd restarted, or timed it out)
costs one fresh connection, never a verdict.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

from gateway.adapters.clamd_answers import (
    ClamdAddress,
    ClamdVersion,
    Outcome,
    ScanReply,
    parse_address,
    parse_scan_reply,
    parse_version,
    session_reply,
)
from gateway.content import Content

MIB = 1024 * 1024
# Room above max_message_size for the header lines the gateway adds before scanning.
HEADER_ROOM = 1 * MIB

__all__ = [
    "CHUNK_SIZE",
    "ClamdAddress",
    "ClamdClient",
    "ClamdVersion",
    "Outcome",
    "ScanReply",
    "parse_address",
    "parse_scan_reply",
    "parse_version",
    "session_reply",
]

CHUNK_SIZE = 64 * 1024
# clamd answers one short line; anything longer than this is not clamd talking.
MAX_REPLY = 4096
VERSION_RETRY_SECONDS = 60.0  # after a clamd failed to tell its version
VERSION_CACHE_SECONDS = 300.0
# A kept session idle longer than this is closed rather than used: the shipped clamd.conf has
# IdleTimeout 30, and a session clamd is about to close would only cost a retry.
SESSION_IDLE_SECONDS = 10.0
MAX_IDLE_SESSIONS = 8  # kept per address; more scans at once open more connections


# --------------------------------------------------------------------------- I/O


class _Failed(Exception):
    """One address did not give a usable answer; the message says why."""


async def _open(addr: ClamdAddress) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if addr.kind == "unix":
        return await asyncio.open_unix_connection(addr.path, limit=MAX_REPLY * 2)
    return await asyncio.open_connection(addr.host, addr.port, limit=MAX_REPLY * 2)


async def _read_reply(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readuntil(b"\0")
    except asyncio.IncompleteReadError as e:  # EOF first: newline-terminated or cut short
        return e.partial
    except asyncio.LimitOverrunError:
        raise _Failed("clamd sent an answer far too long to be real") from None


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, asyncio.CancelledError):
        await writer.wait_closed()


@dataclass
class _Session:
    """One clamd connection in session mode, and how many commands it has carried."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    loop: asyncio.AbstractEventLoop
    requests: int = 0
    idle_since: float = 0.0

    def close(self) -> None:
        with contextlib.suppress(Exception):  # its loop may be gone already
            self.writer.close()


class _Stale(Exception):
    """A kept session was closed by clamd before it answered: worth one fresh connection."""


async def _session(addr: ClamdAddress) -> _Session:
    try:
        reader, writer = await _open(addr)
    except OSError as e:
        raise _Failed(f"cannot connect to clamd at {addr}: {e.strerror or e}") from None
    writer.write(b"zIDSESSION\0")
    return _Session(reader, writer, asyncio.get_running_loop())


def _frames(data: bytes | memoryview | Content, chunk_size: int) -> Iterator[bytes]:
    """INSTREAM's writes: the command, then length-prefixed chunks, then the zero length; one
    write for a message that fits in one chunk, so a small scan is one system call. One chunk
    is copied at a time."""
    pieces: Iterable[bytes | memoryview]
    if isinstance(data, Content):
        pieces = data.chunks(chunk_size)
    else:
        view = memoryview(data)
        pieces = (view[off:off + chunk_size] for off in range(0, len(view), chunk_size))
    head = b"zINSTREAM\0"
    held: bytes | memoryview | None = None
    for piece in pieces:
        if not piece:
            continue  # a zero length would end the stream
        if held is not None:
            yield head + struct.pack(">I", len(held)) + held
            head = b""
        held = piece
    if held is None:
        yield head + b"\0\0\0\0"
    else:
        yield head + struct.pack(">I", len(held)) + held + b"\0\0\0\0"


async def _instream(session: _Session, addr: ClamdAddress, data: bytes | memoryview | Content,
                    chunk_size: int, *, reused: bool) -> bytes:
    """clamd's answer to one INSTREAM over ``session``, without the session's numbering."""
    session.requests += 1
    writer = session.writer
    try:
        for frame in _frames(data, chunk_size):
            writer.write(frame)
            await writer.drain()  # one chunk in the socket's buffer at a time
            await writer.drain()
    except OSError:
        # Over StreamMaxLength clamd answers and closes while we are still sending:
        # the answer is already waiting in the read buffer.
        pass
    try:
        raw = await _read_reply(session.reader)
    except OSError as e:
        if reused:
            raise _Stale from None
        raise _Failed(f"clamd at {addr} dropped the connection: {e.strerror or e}") from None
    if not raw and reused:
        raise _Stale
    answer = session_reply(raw, session.requests)
    # Without its number it is not a session's answer: let the parser say what it is.
    return raw if answer is None else answer


async def _command(addr: ClamdAddress, command: bytes) -> bytes:
    try:
        reader, writer = await _open(addr)
    except OSError as e:
        raise _Failed(f"cannot connect to clamd at {addr}: {e.strerror or e}") from None
    try:
        writer.write(b"z" + command + b"\0")
        await writer.drain()
        return await _read_reply(reader)
    except OSError as e:
        raise _Failed(f"clamd at {addr} dropped the connection: {e.strerror or e}") from None
    finally:
        await _close(writer)


# After these answers clamd keeps the session open for the next command.
_KEEP = (Outcome.CLEAN, Outcome.INFECTED, Outcome.LIMITS)


class ClamdClient:
    """Scans bytes with the first clamd of ``addresses`` that gives a usable answer.

    Each scan has a session of its own, kept afterwards for the next scan when clamd answered
    clean or infected; a clamd that was restarted is simply used again on the next message.
    ``timeout`` is an absolute deadline for the whole scan, all addresses included, not an
    idle timeout.
    """

    def __init__(self, addresses: Sequence[ClamdAddress], timeout: float,
                 chunk_size: int = CHUNK_SIZE):
        if not addresses:
            raise ValueError("at least one clamd address is needed")
        self.addresses = tuple(addresses)
        self.timeout = timeout
        self.chunk_size = chunk_size
        self._versions: dict[ClamdAddress, tuple[float, ClamdVersion | None]] = {}
        self._idle: dict[ClamdAddress, list[_Session]] = {}

    async def scan(self, data: bytes | memoryview | Content, *,
                   budget: float | None = None) -> ScanReply:
        """Never raises for clamd trouble: that is an ``ERROR`` outcome with a ``detail``. A
        :class:`Content` is sent piece by piece, never joined.
        ``budget`` (seconds) replaces the client's timeout for this one scan."""
        loop = asyncio.get_running_loop()
        seconds = self.timeout if budget is None else budget
        deadline = loop.time() + seconds
        problems: list[str] = []
        for addr in self.addresses:
            if loop.time() >= deadline:
                break
            try:
                async with asyncio.timeout_at(deadline):
                    raw, session = await self._scan_at(addr, data)
            except TimeoutError:
                unit = "second" if seconds == 1 else "seconds"
                problems.append(f"clamd at {addr} did not answer within {seconds:g} {unit}")
                break
            except _Failed as e:
                problems.append(str(e))
                continue
            reply = replace(parse_scan_reply(raw), address=str(addr))
            if reply.outcome in _KEEP:
                self._keep(addr, session)
            else:
                session.close()
            if reply.outcome is Outcome.ERROR:
                problems.append(f"{reply.detail} (at {addr})")
                continue
            return reply
        return ScanReply(Outcome.ERROR, detail="; ".join(problems) or "no time left to scan",
                         address=str(self.addresses[-1]))

    async def _scan_at(self, addr: ClamdAddress, data: bytes | memoryview | Content
                       ) -> tuple[bytes, _Session]:
        """One INSTREAM at ``addr``: over a kept session if there is one (and once more over a
        new one when that turns out to be closed). On any exception the session is closed."""
        session = self._take(addr)
        if session is not None:
            try:
                return await _instream(session, addr, data, self.chunk_size,
                                       reused=True), session
            except _Stale:
                session.close()
            except BaseException:
                session.close()
                raise
        session = await _session(addr)
        try:
            return await _instream(session, addr, data, self.chunk_size, reused=False), session
        except BaseException:
            session.close()
            raise

    def _take(self, addr: ClamdAddress) -> _Session | None:
        idle = self._idle.get(addr, [])
        loop = asyncio.get_running_loop()
        while idle:
            session = idle.pop()
            if (session.loop is loop and loop.time() - session.idle_since < SESSION_IDLE_SECONDS
                    and not session.reader.at_eof()):
                return session
            session.close()
        return None

    def _keep(self, addr: ClamdAddress, session: _Session) -> None:
        idle = self._idle.setdefault(addr, [])
        if len(idle) >= MAX_IDLE_SESSIONS:
            session.close()
            return
        session.idle_since = session.loop.time()
        idle.append(session)

    def idle_sessions(self) -> int:
        """How many sessions are kept for the next scans (all addresses)."""
        return sum(len(v) for v in self._idle.values())

    def close(self) -> None:
        """Close the kept sessions (a later scan opens new ones)."""
        for idle in self._idle.values():
            for session in idle:
                session.close()
            idle.clear()

    async def version(self, address: str | None = None, *, wait: float = 5.0
                      ) -> ClamdVersion | None:
        """The engine and signature version of the clamd at ``address`` (the first that answers
        when None); cached for a few minutes, None when no clamd answers."""
        addrs = [a for a in self.addresses if address is None or str(a) == address]
        now = time.monotonic()
        for addr in addrs:
            cached = self._versions.get(addr)
            if cached and cached[1] is not None and now - cached[0] < VERSION_CACHE_SECONDS:
                return cached[1]
            if cached and cached[1] is None and now - cached[0] < VERSION_RETRY_SECONDS:
                continue  # it did not answer VERSION a moment ago: do not wait on it again
            try:
                async with asyncio.timeout(wait):
                    parsed = parse_version(await _command(addr, b"VERSION"))
            except (TimeoutError, _Failed):
                parsed = None
            self._versions[addr] = (now, parsed)
            if parsed is not None:
                return parsed
        return None

    async def ping(self, *, wait: float = 2.0) -> bool:
        """True when one of the addresses answers PONG."""
        for addr in self.addresses:
            try:
                async with asyncio.timeout(wait):
                    if (await _command(addr, b"PING")).rstrip(b"\0\n") == b"PONG":
                        return True
            except (TimeoutError, _Failed):
                continue
        return False
