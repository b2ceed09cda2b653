"""aiosmtpd's SMTP protocol, adapted: connection limits, RFC 3463 enhanced codes on its fixed
replies, a 421 before idle connections are closed, and password checks off the event loop."""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import itertools
import re
from typing import TYPE_CHECKING, Any

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, Session

from gateway.logctx import conn_id

if TYPE_CHECKING:
    from gateway.delivery.nexthop import Upstream
    from gateway.smtp.handler import SideHandler

__all__ = ["GatewaySMTP", "GatewaySession", "is_loopback"]

_conn_counter = itertools.count(1)
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
        "500 5.5.2 A line of the message is too long (the limit is 998 characters)",
    "250 OK": "250 2.0.0 OK",
    "220 Ready to start TLS": "220 2.0.0 Ready to start TLS",
    "454 TLS not available": "454 4.7.0 TLS not available",
    "553 5.1.3 Error: malformed address": "553 5.1.3 That address is not written correctly",
}


class GatewaySMTP(SMTP):
    """aiosmtpd's SMTP with connection limits, enhanced status codes and async password checks."""

    def __init__(self, handler: SideHandler, **kwargs: Any):
        super().__init__(handler, **kwargs)
        self.side_handler = handler
        self._refused = False

    def _create_session(self) -> Session:
        return GatewaySession(self.loop)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._original_transport is None:  # a new connection, not the STARTTLS upgrade
            gw = self.side_handler.gateway
            if len(gw.protocols) >= gw.config.gateway.max_connections or gw.stopping:
                self._refused = True
                transport.write(  # type: ignore[attr-defined]
                    b"421 4.7.0 Too many connections; please try again later\r\n")
                transport.close()
                return
            gw.protocols.add(self)
            peer = transport.get_extra_info("peername")
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
        self.side_handler.gateway.protocols.discard(self)
        self.side_handler.gateway.changed.set()
        self._abandon_upstream()
        super().connection_lost(error)

    def _abandon_upstream(self) -> None:
        """Close the next-hop transaction of an abandoned client transaction (QUIT, a dropped
        connection, RSET, HELO/EHLO again, STARTTLS): it must not hold a mailbox server slot."""
        session = self.session
        up: Upstream | None = getattr(session, "upstream", None)
        if up is not None:
            session.upstream = None  # type: ignore[union-attr]
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
        # The address exactly as the client wrote it: aiosmtpd's parser drops quotes that are
        # not needed ("user%x"@d becomes user%x@d), and what is checked must be what is passed
        # on. Unparsable addresses go through too: the handler says what is wrong with them
        # (email-validator's reason), 501 5.1.7 for senders, 553 5.1.3 for recipients.
        address, rest = super()._getaddr(arg)
        text = arg.strip()
        if text.startswith("<") and ">" in text:
            raw, _, after = text[1:].partition(">")
            if address is not None:
                return raw or "<>", rest
            return raw or "<invalid>", after.strip()
        if address is None and text:
            token, _, rest = text.partition(" ")
            address = token or "<invalid>"
        return address, rest

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
            if status.startswith("552 Error"):
                limit = self.side_handler.gateway.config.gateway.max_message_size
                status = (f"552 5.3.4 The message is too big; this gateway accepts up to "
                          f"{limit / 1048576:.0f} MiB")
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

