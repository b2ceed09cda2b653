"""The milter listener: Postfix's connections, the protocol on asyncio, a session's answers.

The parsing and the protocol's state (which reply an event allows) are ``kilter.protocol``'s;
this module does the I/O and maps events to :class:`~gateway.milter.session.MilterSession`
calls. Anything unexpected on a connection closes it: Postfix then applies its
``milter_default_action`` (``tempfail`` in the documented setup), so a fault here never
passes mail unchecked. While the checks run, Postfix is told every few seconds that the milter
is still working, so its ``milter_content_timeout`` measures a stuck milter, not a slow scan.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
from collections.abc import AsyncIterator, Coroutine
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from kilter.protocol import (
    Abort,
    Accept,
    ActionFlags,
    AddHeader,
    Body,
    ChangeHeader,
    Close,
    Connect,
    Continue,
    Data,
    EndOfHeaders,
    EndOfMessage,
    EnvelopeFrom,
    EnvelopeRecipient,
    FilterProtocol,
    Header,
    Helo,
    InsertHeader,
    Macro,
    Negotiate,
    Progress,
    ProtocolFlags,
    ReplaceBody,
    ReplyCode,
    Stage,
    TemporaryFailure,
    Unknown,
)
from kilter.protocol import Discard as DiscardMessage
from kilter.protocol.buffer import SimpleBuffer
from kilter.protocol.core import FilterMessage as _FilterMessage

from gateway.config import parse_hostport
from gateway.milter.session import Answer, MilterSession
from gateway.milter.settings import MilterConfig

if TYPE_CHECKING:
    from gateway.assembly import Assembly
    from gateway.metrics.registry import Metrics

FilterMessage = _FilterMessage | Progress  # kilter's union leaves out Progress

__all__ = ["Host", "MilterServer", "milter_job", "running_milter"]

log = logging.getLogger(__name__)

# One protocol message at a time is read into this. Postfix sends body chunks of at most 64 KiB
# and a header field of at most its header_size_limit (100 KiB by default).
BUFFER = 256 * 1024
BODY_CHUNK = 65535  # the largest ReplaceBody Postfix reads in one message
PROGRESS_EVERY = 10.0
IDLE = 3600.0  # Postfix keeps a milter connection for as long as its SMTP session lasts
WRITE_TIMEOUT = 60.0  # a Postfix that stops reading our answers

ACTIONS = ActionFlags.ADD_HEADERS | ActionFlags.CHANGE_HEADERS | ActionFlags.CHANGE_BODY
# Events the gateway does not need, a reply per header it does not need to send, and header
# values with their leading space (so the message is rebuilt byte for byte for DKIM).
OPTIONS = (ProtocolFlags.NO_UNKNOWN | ProtocolFlags.NO_DATA | ProtocolFlags.NR_HEADER
           | ProtocolFlags.HEADER_LEADING_SPACE)
MACROS = {
    Stage.CONNECT: ("j", "{daemon_name}"),
    Stage.ENVELOPE_FROM: ("i", "{auth_authen}"),
    Stage.END_MESSAGE: ("i",),
}


class Host(Protocol):
    """What the milter needs of the running gateway (``gateway.smtp.server.Gateway``)."""

    in_flight: int
    changed: asyncio.Event
    metrics: Metrics

    @property
    def assembly(self) -> Assembly: ...

    def track(self, coro: Coroutine[Any, Any, None]) -> None: ...


class ProtocolError(Exception):
    """The MTA sent something the milter protocol does not allow here."""


class _Connection:
    def __init__(self, host: Host, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.host = host
        self.reader, self.writer = reader, writer
        self.protocol = FilterProtocol()
        self.session = MilterSession(lambda: host.assembly, host.track, host.metrics)
        self.leading_space = False
        self._out = SimpleBuffer(BODY_CHUNK + 1024)

    async def serve(self) -> None:
        inbox = SimpleBuffer(BUFFER)
        try:
            while True:
                if inbox.available == 0:
                    raise ProtocolError("a protocol message larger than the milter reads")
                chunk = await asyncio.wait_for(self.reader.read(inbox.available), IDLE)
                if not chunk:
                    return
                inbox[:] = chunk
                for message in self.protocol.read_from(inbox):
                    if isinstance(message, Close):
                        return
                    await self._event(message)
        except (TimeoutError, ConnectionError):
            pass
        except Exception as e:  # kilter's InvalidMessage, UnknownMessage, ...; our own faults
            log.warning("milter connection closed after a protocol problem: %r", e)
        finally:
            self.session.reset()
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()

    async def _send(self, *messages: FilterMessage) -> None:
        for message in messages:
            if isinstance(message, Progress):
                message.pack(self._out)  # allowed while a message waits; kilter's type omits it
            else:
                self.protocol.write_to(self._out, message)
            self.writer.write(self._out[:].tobytes())
            del self._out[:]
        await asyncio.wait_for(self.writer.drain(), WRITE_TIMEOUT)

    async def _reply(self, refusal: str | None) -> None:
        await self._send(Continue() if refusal is None else _reply_code(refusal))

    async def _event(self, message: Any) -> None:
        session = self.session
        match message:
            case Negotiate():
                await self._send(self._negotiate(message))
            case Macro():
                session.macros.update(message.macros)
            case Connect():
                address = message.address
                session.client_address = (str(address) if isinstance(
                    address, IPv4Address | IPv6Address) else "unknown")
                await self._send(Continue())
            case Helo():
                session.client_helo = message.hostname
                await self._send(Continue())
            case EnvelopeFrom():
                await self._reply(session.envelope_from(_address(bytes(message.sender))))
            case EnvelopeRecipient():
                await self._reply(session.recipient(_address(bytes(message.recipient))))
            case Header():
                value = bytes(message.value)
                session.header(message.name, value if self.leading_space else b" " + value)
                if self.protocol.needs_response(message):
                    await self._send(Continue())
            case Body():
                session.body(bytes(message.content))
                await self._send(Continue())
            case EndOfMessage():
                if message.content:
                    session.body(bytes(message.content))
                await self._end_of_message()
            case Abort():
                session.reset()
            case Data() | EndOfHeaders() | Unknown():
                await self._send(Continue())
            case _:
                raise ProtocolError(f"unexpected {message!r}")

    def _negotiate(self, offer: Negotiate) -> Negotiate:
        actions = ACTIONS & offer.action_flags
        options = OPTIONS & offer.protocol_flags
        self.leading_space = ProtocolFlags.HEADER_LEADING_SPACE in options
        macros: dict[Stage, tuple[str, ...]] = {}
        if ActionFlags.SETSYMLIST in offer.action_flags:
            actions |= ActionFlags.SETSYMLIST
            macros = dict(MACROS)
        if actions & ACTIONS != ACTIONS:
            log.warning("the MTA does not offer every milter action the gateway needs "
                        "(offered %r): footers or signatures may be missing", offer.action_flags)
        return Negotiate(min(offer.version, 6), actions, options, macros)

    async def _end_of_message(self) -> None:
        host = self.host
        host.in_flight += 1
        # A task of its own: once the checks run, the decision and any quarantine write finish
        # even if Postfix goes away meanwhile, and a stopping gateway waits for it.
        work = asyncio.ensure_future(self.session.end_of_message())

        def finished(_: object) -> None:
            host.in_flight -= 1
            host.changed.set()

        work.add_done_callback(finished)
        while not (await asyncio.wait({work}, timeout=PROGRESS_EVERY))[0]:
            await self._send(Progress())
        answer = work.result()
        await self._send(*self._answer(answer))
        if answer.after is not None:
            host.track(answer.after())

    def _answer(self, answer: Answer) -> list[FilterMessage]:
        if answer.action == "discard":
            return [DiscardMessage()]
        if answer.action == "reply":
            return [_reply_code(answer.reply)]
        if answer.action != "accept":
            return [TemporaryFailure()]
        edits = answer.edits
        out: list[FilterMessage] = []
        # An empty value would delete the field: a change to nothing keeps one space.
        out += [ChangeHeader(index, name, self._value(value) or b" ")
                for index, name, value in edits.change]
        out += [ChangeHeader(index, name, b"") for index, name in edits.delete]
        out += [InsertHeader(0, name, self._value(value))
                for name, value in reversed(edits.insert_top)]
        out += [AddHeader(name, self._value(value)) for name, value in edits.append]
        if edits.body is not None:
            body = edits.body
            out += [ReplaceBody(body[i:i + BODY_CHUNK])
                    for i in range(0, max(len(body), 1), BODY_CHUNK)]
        out.append(Accept())
        return out

    def _value(self, value: bytes) -> bytes:
        if self.leading_space:
            return value
        return value[1:] if value.startswith(b" ") else value


def _address(raw: bytes) -> str:
    text = raw.decode("utf-8", "surrogateescape").strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    return text


def _reply_code(line: str) -> ReplyCode:
    # Postfix reads the text the way Sendmail does, as a format: a single % is dropped.
    if line[:1] not in ("4", "5") or not line[:3].isdigit():
        line = "451 4.3.0 " + line
    elif line[4:5] != line[:1]:  # no enhanced code: the class of the reply's own
        line = f"{line[:3]} {line[0]}.0.0 {line[4:]}"
    return ReplyCode(line.replace("%", "%%").encode("ascii", "replace") + b"\0")


def _remove_stale(path: Path) -> None:
    """A socket left by a gateway that stopped abruptly would stop the listener starting."""
    with contextlib.suppress(FileNotFoundError):
        if path.is_socket():
            path.unlink()


def _open_to_group(path: Path, group: str) -> None:
    """Postfix's processes connect as the postfix user, so through the socket's group."""
    if group:
        os.chown(path, -1, grp.getgrnam(group).gr_gid)
    path.chmod(0o660)


class MilterServer:
    """The listener on ``[milter] listen``: a TCP address or ``unix:/path``."""

    def __init__(self, host: Host, settings: MilterConfig) -> None:
        self.host = host
        self.settings = settings
        self.server: asyncio.Server | None = None
        self.address = ""
        self._connections: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        listen = self.settings.listen
        if listen.startswith("unix:"):
            path = Path(listen[5:])
            _remove_stale(path)
            self.server = await asyncio.start_unix_server(self._accept, path=str(path))
            _open_to_group(path, self.settings.socket_group)
            self.address = f"unix:{path}"
        else:
            host, port = parse_hostport(listen)
            self.server = await asyncio.start_server(self._accept, host=host, port=port)
            bound = self.server.sockets[0].getsockname()
            self.address = f"{bound[0]}:{bound[1]}"

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await _Connection(self.host, reader, writer).serve()
        finally:
            self._connections.discard(task)

    async def stop(self, grace: float = 2.0) -> None:
        """No new connections; connections that are ending get ``grace`` seconds to close (a
        message being decided is waited for by the gateway's own stop)."""
        if self.server is not None:
            self.server.close()
        if self._connections:
            await asyncio.wait(set(self._connections), timeout=grace)


@contextlib.asynccontextmanager
async def running_milter(host: Host, settings: MilterConfig) -> AsyncIterator[MilterServer]:
    server = MilterServer(host, settings)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def milter_job(host: Any) -> None:
    """For ``run``: the milter beside the listeners when ``[milter] listen`` is set."""
    config = host.config
    settings = config.section(MilterConfig)
    if not settings.enabled:
        return
    try:
        async with running_milter(host, settings) as server:
            log.info("milter listening on %s", server.address)
            await asyncio.Event().wait()  # until run cancels this job
    except OSError as e:
        log.error("the milter could not listen on %s: %s", settings.listen, e)
