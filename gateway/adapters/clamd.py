"""A small asyncio client for clamd, and pure functions that read its answers.

The I/O sits in :class:`ClamdClient` (INSTREAM, VERSION, PING over TCP or a unix socket); what an
answer means is decided by :func:`parse_scan_reply`, :func:`parse_version` and
:func:`parse_address`, which touch no socket and are tested with tables.

Why a client of our own rather than pyclamd: pyclamd writes with ``socket.send()`` (partial writes
corrupt the stream once chunks are large), blocks the calling thread, has no default timeout and
raises different errors over TCP and unix sockets. Here every chunk of 64 KiB is written and
``drain()`` is awaited, the whole scan runs under one absolute deadline, and each problem becomes
an ``error`` outcome rather than an exception. Measured in ``bench/clamd_clients.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum

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
]

CHUNK_SIZE = 64 * 1024
# clamd answers one short line; anything longer than this is not clamd talking.
MAX_REPLY = 4096
VERSION_RETRY_SECONDS = 60.0  # after a clamd failed to tell its version
VERSION_CACHE_SECONDS = 300.0


class Outcome(StrEnum):
    CLEAN = "clean"
    INFECTED = "infected"
    TOO_BIG = "too_big"  # the stream was longer than clamd's StreamMaxLength
    LIMITS = "limits"  # content beyond clamd's inner limits (AlertExceedsMax)
    ERROR = "error"  # no usable answer: unreachable, timed out, garbage, clamd-side error


@dataclass(frozen=True)
class ScanReply:
    """What one scan established. ``signature`` is set for INFECTED and LIMITS."""

    outcome: Outcome
    signature: str = ""
    detail: str = ""  # plain words for logs, e.g. "connection refused by tcp://127.0.0.1:3310"
    address: str = ""  # the clamd that answered (or the last one tried)


@dataclass(frozen=True)
class ClamdAddress:
    kind: str  # "tcp" | "unix"
    host: str = ""
    port: int = 0
    path: str = ""

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.port}"


@dataclass(frozen=True)
class ClamdVersion:
    engine: str  # "1.4.6"
    db_version: str = ""  # "27500"; empty when only unofficial (test) signatures are loaded
    db_date: date | None = None

    @property
    def header_value(self) -> str:
        """The ``X-Virus-Scanned`` value: engine, signature database and its date, one line."""
        if not self.db_version:
            return f"ClamAV {self.engine} (test signatures only)"
        when = f" {self.db_date.isoformat()}" if self.db_date else ""
        return f"ClamAV {self.engine}/{self.db_version}{when}"

    @property
    def test_signatures_only(self) -> bool:
        return not self.db_version


# --------------------------------------------------------------------------- pure functions

def parse_address(text: str) -> ClamdAddress:
    """``"tcp://127.0.0.1:3310"``, ``"127.0.0.1:3310"``, ``"unix:/run/clamav/clamd.ctl"`` or an
    absolute socket path. Raises ValueError with a sentence the IT volunteer understands."""
    value = text.strip()
    if value.startswith("unix:"):
        path = value[len("unix:"):]
        if path.startswith("//"):
            path = path[2:]
        if not path:
            raise ValueError(f'"{text}" names no socket file; write it like '
                             '"unix:/run/clamav/clamd.ctl"')
        return ClamdAddress("unix", path=path)
    if value.startswith("/"):
        return ClamdAddress("unix", path=value)
    rest = value[len("tcp://"):] if value.startswith("tcp://") else value
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})", rest) or re.fullmatch(
        r"([A-Za-z0-9.\-]+):(\d{1,5})", rest)
    if not m:
        raise ValueError(f'"{text}" is not a clamd address; write it like '
                         '"tcp://127.0.0.1:3310" or "unix:/run/clamav/clamd.ctl"')
    port = int(m.group(2))
    if not 1 <= port <= 65535:
        raise ValueError(f'"{text}" has no valid port (ports go from 1 to 65535)')
    return ClamdAddress("tcp", host=m.group(1), port=port)


_FOUND = re.compile(r"^(?:stream|[^:]*): (?P<name>.+?) FOUND$")


def _clean_signature(name: str) -> str:
    # ExtendedDetectionInfo adds "(md5:size)"; clamd marks signatures that do not come from the
    # official database with ".UNOFFICIAL", which says nothing about the threat itself.
    name = re.sub(r"\([0-9a-f]{32}:\d+\)$", "", name.strip())
    return name.removesuffix(".UNOFFICIAL")


def parse_scan_reply(raw: bytes) -> ScanReply:
    """Read clamd's answer to INSTREAM (NUL- or newline-terminated, possibly truncated)."""
    text = raw.replace(b"\0", b"\n").decode("utf-8", "replace").strip()
    if not text:
        return ScanReply(Outcome.ERROR, detail="clamd closed the connection without an answer")
    line = text.splitlines()[0].strip()
    if line in ("stream: OK", "stream:OK"):
        return ScanReply(Outcome.CLEAN)
    if "size limit exceeded" in line and line.endswith("ERROR"):
        return ScanReply(Outcome.TOO_BIG, detail="the message is longer than clamd's "
                                                   "StreamMaxLength")
    m = _FOUND.match(line)
    if m:
        name = _clean_signature(m.group("name"))
        if not name:
            return ScanReply(Outcome.ERROR, detail=f"clamd answered {line[:120]!r}")
        if name.startswith("Heuristics.Limits.Exceeded"):
            return ScanReply(Outcome.LIMITS, signature=name,
                             detail="part of the content is beyond clamd's scanning limits")
        return ScanReply(Outcome.INFECTED, signature=name)
    if line.endswith("ERROR"):
        return ScanReply(Outcome.ERROR, detail=f"clamd reported an error: {line[:200]}")
    return ScanReply(Outcome.ERROR, detail=f"clamd gave an answer that makes no sense: "
                                           f"{line[:120]!r}")


def parse_version(raw: bytes) -> ClamdVersion | None:
    """``b"ClamAV 1.4.6/27500/Mon Nov 20 09:00:00 2023"`` -> ClamdVersion; None if not clamd."""
    text = raw.replace(b"\0", b"").decode("utf-8", "replace").strip()
    m = re.fullmatch(r"ClamAV ([0-9][0-9A-Za-z.\-_+]*)(?:/(\d+)(?:/(.+))?)?", text)
    if not m:
        return None
    db_date = None
    if m.group(3):
        with contextlib.suppress(ValueError):
            db_date = datetime.strptime(m.group(3).strip(), "%a %b %d %H:%M:%S %Y").date()
    return ClamdVersion(m.group(1), m.group(2) or "", db_date)


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


async def _instream(addr: ClamdAddress, data: bytes | memoryview | Content,
                    chunk_size: int) -> bytes:
    try:
        reader, writer = await _open(addr)
    except OSError as e:
        raise _Failed(f"cannot connect to clamd at {addr}: {e.strerror or e}") from None
    try:
        if isinstance(data, Content):
            pieces: Iterable[bytes | memoryview] = data.chunks(chunk_size)
        else:
            view = memoryview(data)
            pieces = (view[off:off + chunk_size] for off in range(0, len(view), chunk_size))
        try:
            writer.write(b"zINSTREAM\0")
            for piece in pieces:
                writer.write(struct.pack(">I", len(piece)))
                writer.write(piece)
                await writer.drain()
            writer.write(b"\0\0\0\0")
            await writer.drain()
        except OSError:
            # Over StreamMaxLength clamd answers and closes while we are still sending:
            # the answer is already waiting in the read buffer.
            pass
        try:
            return await _read_reply(reader)
        except OSError as e:
            raise _Failed(f"clamd at {addr} dropped the connection: {e.strerror or e}") from None
    finally:
        await _close(writer)


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


class ClamdClient:
    """Scans bytes with the first clamd of ``addresses`` that gives a usable answer.

    One connection per scan (clamd's INSTREAM is one command per connection), so a clamd that
    was restarted is simply used again on the next message. ``timeout`` is an absolute deadline
    for the whole scan, all addresses included, not an idle timeout.
    """

    def __init__(self, addresses: Sequence[ClamdAddress], timeout: float,
                 chunk_size: int = CHUNK_SIZE):
        if not addresses:
            raise ValueError("at least one clamd address is needed")
        self.addresses = tuple(addresses)
        self.timeout = timeout
        self.chunk_size = chunk_size
        self._versions: dict[ClamdAddress, tuple[float, ClamdVersion | None]] = {}

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
                    raw = await _instream(addr, data, self.chunk_size)
            except TimeoutError:
                unit = "second" if seconds == 1 else "seconds"
                problems.append(f"clamd at {addr} did not answer within {seconds:g} {unit}")
                break
            except _Failed as e:
                problems.append(str(e))
                continue
            reply = replace(parse_scan_reply(raw), address=str(addr))
            if reply.outcome is Outcome.ERROR:
                problems.append(f"{reply.detail} (at {addr})")
                continue
            return reply
        return ScanReply(Outcome.ERROR, detail="; ".join(problems) or "no time left to scan",
                         address=str(self.addresses[-1]))

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
