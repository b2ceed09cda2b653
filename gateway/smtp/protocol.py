"""aiosmtpd's SMTP protocol, adapted: connection limits, RFC 3463 enhanced codes on its fixed
replies, a 421 before idle connections are closed, and password checks off the event loop."""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import itertools
import logging
import re
from typing import TYPE_CHECKING, Any

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, LoginPassword, Session

from gateway.logctx import conn_id
from gateway.smtp import replies
from gateway.smtp.arguments import MAIL_DSN, RCPT_DSN, take_dsn, written_address
from gateway.smtp.datalines import REFUSALS, IdleTimer, read_data
from gateway.smtp.logins import network_of
from gateway.smtp.spool import Spool

if TYPE_CHECKING:
    from gateway.delivery.nexthop import Upstream
    from gateway.smtp.handler import SideHandler

__all__ = ["GatewaySMTP", "GatewaySession", "begin_data", "is_loopback"]

log = logging.getLogger(__name__)

_conn_counter = itertools.count(1)
SHUTTING_DOWN = b"421 4.3.2 The gateway is shutting down; please try again later\r\n"
TOO_MANY = b"421 4.7.0 Too many connections; please try again later\r\n"
TOO_MANY_FROM_YOU = (b"421 4.7.0 Too many connections from your network; please close some and "
                     b"try again later\r\n")
_PENDING = object()  # marks credentials parsed by aiosmtpd but not yet checked


class GatewaySession(Session):
    def __init__(self, loop: asyncio.AbstractEventLoop):
        super().__init__(loop)
        self.conn_id = f"c{next(_conn_counter)}"
        self.upstream: Upstream | None = None


# aiosmtpd's own fixed replies, given RFC 3463 enhanced codes and plainer words.
_REWRITES = {
    "503 Error: need MAIL command": "503 5.5.1 Send MAIL FROM first",
    "503 Error: need RCPT command": "503 5.5.1 Send RCPT TO first",
    "503 Error: nested MAIL command": "503 5.5.1 A sender is already given; send RSET first",
    "500 Line too long (see RFC5321 4.5.3.1.6)":
        "500 5.5.2 A line of the message is too long (the limit is 2048 characters)",
    "250 OK": "250 2.0.0 OK",
    "220 Ready to start TLS": "220 2.0.0 Ready to start TLS",
    "454 TLS not available": "454 4.7.0 TLS not available",
    "553 5.1.3 Error: malformed address": "553 5.1.3 That address is not written correctly",
}


async def begin_data(server: SMTP, arg: str) -> bool:
    """aiosmtpd's checks before DATA (greeting, login, a recipient, no argument) with their
    replies, then the 354; False when DATA is refused. For a DATA of our own that reads the
    content in bulk."""
    if await server.check_helo_needed() or await server.check_auth_needed("DATA"):
        return False
    assert server.envelope is not None
    if not server.envelope.rcpt_tos:
        await server.push("503 Error: need RCPT command")
        return False
    if arg:
        await server.push("501 Syntax: DATA")
        return False
    await server.push("354 End data with <CR><LF>.<CR><LF>")
    return True


class GatewaySMTP(SMTP):
    """aiosmtpd's SMTP with connection limits, enhanced status codes and async password checks.

    Each side has its own pool of connections, and each client network (an IPv4 address, an
    IPv6 /64) its own share of it, so one sender cannot lock councillors out. A connection lives
    at most ``session_lifetime`` seconds and may send ``JUNK_LIMIT`` commands that move no mail
    (NOOP, RSET, VRFY, HELP, HELO/EHLO); during DATA each line must come within
    ``data_timeout`` seconds of the last, however long the whole upload takes.
    """

    JUNK_LIMIT = 100
    # Lines up to 2048 characters, as Postfix's smtpd takes them (RFC 5321 says 1000, and real
    # mail clients write longer ones); the reader's buffer must hold one such line.
    MAX_LINE = 2048
    line_length_limit = MAX_LINE + 2

    def __init__(self, handler: SideHandler, **kwargs: Any):
        super().__init__(handler, **kwargs)
        self.side_handler = handler
        self._refused = False
        self.network = ""
        self.processing = False  # the handler is dealing with a message: do not cut it off
        self._junk = 0
        self._lifetime: asyncio.TimerHandle | None = None
        self._data_timer: IdleTimer | None = None

    def _create_session(self) -> Session:
        return GatewaySession(self.loop)

    def _refuse(self, transport: asyncio.BaseTransport, reason: str, reply: bytes) -> None:
        self._refused = True
        peer = transport.get_extra_info("peername")
        log.warning("connection refused side=%s client=%s reason=%s",
                    self.side_handler.side, peer[0] if peer else "?", reason)
        self.side_handler.gateway.count(f"connections refused: {reason}")
        transport.write(reply)  # type: ignore[attr-defined]
        transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._original_transport is None:  # a new connection, not the STARTTLS upgrade
            gw = self.side_handler.gateway
            side = self.side_handler.side
            listener = self.side_handler.listener
            peer = transport.get_extra_info("peername")
            self.network = network_of(str(peer[0])) if peer else "?"
            if gw.stopping:
                self._refuse(transport, "stopping", SHUTTING_DOWN)
                return
            if gw.connections(side) >= listener.max_connections:
                self._refuse(transport, "side full", TOO_MANY)
                return
            if gw.connections(side, self.network) >= listener.max_connections_per_address:
                self._refuse(transport, "per-address limit", TOO_MANY_FROM_YOU)
                return
            gw.protocols.add(self)
            self._lifetime = self.loop.call_later(gw.config.gateway.session_lifetime,
                                                  self._lifetime_cb)
            if (peer and is_loopback(peer[0])
                    and self.side_handler.listener.loopback_auth_without_tls):
                # On this machine nobody can listen in: AUTH may go without STARTTLS.
                self._auth_require_tls = False
        super().connection_made(transport)
        assert self.session is not None
        conn_id.set(self.session.conn_id)  # type: ignore[attr-defined]

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return
        if self._lifetime is not None:
            self._lifetime.cancel()
        self.side_handler.gateway.protocols.discard(self)
        self.side_handler.gateway.changed.set()
        self._abandon_upstream()
        super().connection_lost(error)

    def _lifetime_cb(self) -> None:
        if self.processing:  # its reply is being worked out; end right after it
            self._lifetime = self.loop.call_later(5, self._lifetime_cb)
            return
        log.info("connection closed side=%s network=%s: session lifetime reached",
                 self.side_handler.side, self.network)
        self.side_handler.gateway.count("connections closed: lifetime")
        self.close_idle(b"421 4.4.2 This connection has been open too long; please reconnect"
                        b"\r\n")

    async def _junk_command(self) -> bool:
        """Count a command that moves no mail; True (after a 421) when there were too many."""
        self._junk += 1
        if self._junk <= self.JUNK_LIMIT:
            return False
        log.warning("connection closed side=%s network=%s: too many commands without mail",
                    self.side_handler.side, self.network)
        self.side_handler.gateway.count("connections closed: junk commands")
        await super().push("421 4.7.0 Too many commands without mail; closing the connection")
        if self.transport is not None:
            self.transport.close()
        return True

    async def smtp_NOOP(self, arg: str) -> None:
        if not await self._junk_command():
            await super().smtp_NOOP(arg)

    async def smtp_RSET(self, arg: str) -> None:
        if not await self._junk_command():
            await super().smtp_RSET(arg)

    async def smtp_VRFY(self, arg: str) -> None:
        if not await self._junk_command():
            await super().smtp_VRFY(arg)

    async def smtp_HELP(self, arg: str) -> None:
        if not await self._junk_command():
            await super().smtp_HELP(arg)

    async def smtp_HELO(self, hostname: str) -> None:
        if not await self._junk_command():
            await super().smtp_HELO(hostname)

    async def smtp_EHLO(self, hostname: str) -> None:
        if not await self._junk_command():
            await super().smtp_EHLO(hostname)

    async def smtp_MAIL(self, arg: str) -> None:
        # DSN parameters (RFC 3461) keep their case (aiosmtpd upper-cases what it passes on):
        # taken out here, checked, and given to the next hop as the client wrote them.
        if self.session is not None and getattr(self.session, "dsn", False):
            arg, found, bad = take_dsn(arg, MAIL_DSN)
            if bad:
                await super().push(f"501 5.5.4 {bad}")
                return
            self.session.mail_dsn = found  # type: ignore[attr-defined]
        await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg: str) -> None:
        if self.session is not None and getattr(self.session, "dsn", False):
            arg, found, bad = take_dsn(arg, RCPT_DSN)
            if bad:
                await super().push(f"501 5.5.4 {bad}")
                return
            self.session.rcpt_dsn = found  # type: ignore[attr-defined]
        await super().smtp_RCPT(arg)

    async def smtp_DATA(self, arg: str) -> None:
        # aiosmtpd's own DATA, but with the content read in bulk (gateway/smtp/datalines.py):
        # its loop in Python over every line held the event loop for other connections. The
        # idle timer is renewed as bytes arrive (data_received), however long the upload. The
        # content goes into a Spool: memory up to [gateway] spool_threshold, then a file.
        if not await begin_data(self, arg):
            return
        assert self.envelope is not None
        gw = self.side_handler.gateway.config.gateway
        self._data_timer = IdleTimer(gw.data_timeout, self._reset_timeout)
        spool = Spool(gw.spool_threshold, gw.spool_dir)
        try:
            try:
                read = await read_data(self._reader, line_limit=self.line_length_limit,
                                       size_limit=self.data_size_limit, spool=spool)
            except (asyncio.CancelledError, asyncio.IncompleteReadError):
                log.info("connection lost during DATA")
                self._writer.close()
                raise
            finally:
                self._data_timer = None
        finally:
            spool.close()
        if read.problem is not None:
            await self.push(REFUSALS[read.problem])  # audited with the transaction's sender
            self._set_post_data_state()  # type: ignore[no-untyped-call]  # untyped in aiosmtpd
            return
        # The one copy of the message: the handler takes it from the envelope and drops the
        # envelope's reference, so nothing here may keep one.
        self.envelope.content = self.envelope.original_content = read.content
        del read
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push("250 OK" if status is MISSING else status)

    def data_received(self, data: bytes) -> None:
        if self._data_timer is not None:  # during DATA the timer counts from the last bytes
            self._data_timer()
        super().data_received(data)

    def _abandon_upstream(self) -> None:
        """Close the next-hop transaction of an abandoned client transaction (QUIT, a dropped
        connection, RSET, HELO/EHLO again, STARTTLS): it must not hold a mailbox server slot."""
        session = self.session
        for name in ("upstream", "kept_upstream"):  # a transaction, or a connection kept idle
            up: Upstream | None = getattr(session, name, None)
            if up is not None:
                setattr(session, name, None)
                self.side_handler.gateway.track(up.close())

    def _set_rset_state(self) -> None:
        self._abandon_upstream()
        super()._set_rset_state()  # type: ignore[no-untyped-call]  # untyped in aiosmtpd

    async def smtp_STARTTLS(self, arg: str) -> None:
        self._abandon_upstream()  # the session starts again after the handshake
        await super().smtp_STARTTLS(arg)

    @property
    def in_transaction(self) -> bool:
        return bool(self.envelope is not None and self.envelope.mail_from)

    def close_idle(self, reply: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(reply)  # type: ignore[attr-defined]
            self.transport.close()

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        return written_address(arg, self.local_part_limit)

    def _timeout_cb(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(  # type: ignore[attr-defined]
                b"421 4.4.2 Idle for too long; closing the connection\r\n")
        super()._timeout_cb()  # type: ignore[no-untyped-call]  # aiosmtpd leaves it untyped

    async def push(self, status: Any) -> None:
        if isinstance(status, str):
            if status.startswith("500 Line too long") and self.session is not None:
                status = self.side_handler.refused(self.session, "line",
                                                   _REWRITES.get(status, status), self.envelope)
            status = _REWRITES.get(status, status)
            if status.startswith("552 Error"):  # too big: declared at MAIL, or sent in DATA
                status = replies.too_big(self.side_handler.gateway.config.gateway.max_message_size)
                if self.session is not None:
                    status = self.side_handler.refused(self.session, "size", status,
                                                       self.envelope)
            elif re.match(r"^5\d\d (Syntax|Error)", status):
                status = f"{status[:3]} 5.5.2 {status[4:]}"
        await super().push(status)

    # Credentials are parsed by aiosmtpd, then checked here in a thread (argon2 is slow on
    # purpose and must not block the loop), with a growing delay after failures.
    def _authenticate(self, mechanism: str, auth_data: Any) -> AuthResult:
        return AuthResult(success=False, handled=False, auth_data=(_PENDING, auth_data))

    async def _finish_auth(self, result: AuthResult, authzid: bytes = b"") -> AuthResult:
        data = result.auth_data
        if not (isinstance(data, tuple) and data and data[0] is _PENDING):
            return result
        creds: LoginPassword = data[1]
        assert self.session is not None
        return await self.side_handler.check_login(self.session, creds, authzid)

    async def auth_PLAIN(self, _: Any, args: list[str]) -> AuthResult:
        # aiosmtpd drops the authorisation identity; it is read here so that one login cannot
        # ask to act as another (RFC 4616).
        authzid = b""
        if len(args) > 1:
            try:
                authzid = base64.b64decode(args[1].encode(), validate=True).split(b"\x00")[0]
            except (ValueError, binascii.Error):
                pass  # aiosmtpd answers the malformed value itself
        return await self._finish_auth(await super().auth_PLAIN(_, args), authzid)

    async def auth_LOGIN(self, _: Any, args: list[str]) -> AuthResult:
        return await self._finish_auth(await super().auth_LOGIN(_, args))


def is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip.split("%")[0]).is_loopback
    except ValueError:
        return False

