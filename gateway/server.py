"""The two SMTP listeners (inbound MX side, outbound submission side) and their shared handler.

The handler is a before-queue proxy: MAIL and RCPT are passed to an SMTP next hop as they arrive,
the message runs through the side's filter pipeline at end-of-data, and the client's end-of-data
is answered only after the next hop (or the fsync of a Maildir or quarantine file) answered.
"""

from __future__ import annotations

import asyncio
import email.policy
import ipaddress
import itertools
import logging
import re
import secrets
import ssl
import time
from datetime import datetime, timezone
from email.parser import BytesHeaderParser
from email.utils import format_datetime
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from email_validator import EmailNotValidError, validate_email

from gateway.audit import AuditLog
from gateway.config import Config, ListenerConfig
from gateway.context import Envelope as MsgEnvelope
from gateway.context import MessageContext
from gateway.logctx import conn_id
from gateway.notices import send_notices
from gateway.pipeline import Pipeline, PipelineResult
from gateway.quarantine import QuarantineStore
from gateway.relay import DeliveryResult, Upstream, deliver_maildir
from gateway.senders import learn_recipients
from gateway.users import UsersFile
from gateway.verdicts import Quarantine, Reject, TempFail

__all__ = ["Gateway", "normalise_line_endings", "received_header"]

log = logging.getLogger("gateway.server")

MAX_RECIPIENTS = 100
_conn_counter = itertools.count(1)
_PENDING = object()  # marks credentials parsed by aiosmtpd but not yet checked


def normalise_line_endings(data: bytes) -> bytes:
    """Bare LF and bare CR become CRLF, so a stray ``<LF>.<LF>`` can never end a message
    downstream (SMTP smuggling): what the filters see is exactly what is passed on."""
    return re.sub(rb"\r\n|\r|\n", b"\r\n", data)


def _clean(text: str, limit: int = 100) -> str:
    return re.sub(r"[^\x21-\x7e]", "?", text)[:limit] or "unknown"


def received_header(*, helo: str, ip: str, hostname: str, protocol: str, msg_id: str,
                    rcpt_tos: list[str], when: datetime) -> bytes:
    # "for" only with one recipient: naming several would disclose Bcc recipients to the others.
    for_part = f"\r\n\tfor <{rcpt_tos[0]}>" if len(rcpt_tos) == 1 else ""
    text = (f"Received: from {_clean(helo)} ([{ip}])\r\n\tby {hostname} (council-gateway) "
            f"with {protocol} id {msg_id}{for_part};\r\n\t{format_datetime(when)}\r\n")
    return text.encode("utf-8", "replace")


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
            if (peer and _is_loopback(peer[0])
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
        session = self.session
        super().connection_lost(error)
        up = getattr(session, "upstream", None)
        if up is not None:
            session.upstream = None  # type: ignore[union-attr]
            self.side_handler.gateway.track(up.close())

    @property
    def in_transaction(self) -> bool:
        return bool(self.envelope is not None and self.envelope.mail_from)

    def close_idle(self, reply: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(reply)  # type: ignore[attr-defined]
            self.transport.close()

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        # Let unparsable addresses through to the handler, which says what is wrong with them
        # (email-validator's reason) and answers 501 5.1.7 for senders, 553 5.1.3 for recipients.
        address, rest = super()._getaddr(arg)
        if address is None and arg.strip():
            token, _, rest = arg.strip().partition(" ")
            address = token[1:-1] if token.startswith("<") and token.endswith(">") else token
            address = address or "<invalid>"
        return address, rest

    def _timeout_cb(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(  # type: ignore[attr-defined]
                b"421 4.4.2 Idle for too long; closing the connection\r\n")
        super()._timeout_cb()

    async def push(self, status: Any) -> None:
        if isinstance(status, str):
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

    async def _finish_auth(self, result: AuthResult) -> AuthResult:
        data = result.auth_data
        if not (isinstance(data, tuple) and data and data[0] is _PENDING):
            return result
        creds: LoginPassword = data[1]
        assert self.session is not None
        return await self.side_handler.check_login(self.session, creds)

    async def auth_PLAIN(self, _: Any, args: list[str]) -> AuthResult:
        return await self._finish_auth(await super().auth_PLAIN(_, args))

    async def auth_LOGIN(self, _: Any, args: list[str]) -> AuthResult:
        return await self._finish_auth(await super().auth_LOGIN(_, args))


def _is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip.split("%")[0]).is_loopback
    except ValueError:
        return False


class SideHandler:
    """aiosmtpd handler for one side; shared by all its connections, per-message state in ctx."""

    def __init__(self, gateway: Gateway, side: str):
        self.gateway = gateway
        self.side = side

    @property
    def config(self) -> Config:
        return self.gateway.config

    @property
    def listener(self) -> ListenerConfig:
        return self.config.inbound if self.side == "inbound" else self.config.outbound

    # ------------------------------------------------------------------ AUTH
    async def check_login(self, session: Session, creds: LoginPassword) -> AuthResult:
        ip = session.peer[0] if session.peer else "?"
        login = creds.login.decode("utf-8", "replace")
        password = creds.password.decode("utf-8", "replace")
        users = UsersFile(self.listener.users_file)
        ok = await asyncio.to_thread(users.verify, login, password)
        if ok:
            self.gateway.auth_failures.pop(ip, None)
            log.info("auth ok user=%s client=%s", login, ip)
            return AuthResult(success=True, auth_data=creds)
        failures = self.gateway.auth_failures.get(ip, 0) + 1
        self.gateway.auth_failures[ip] = failures
        delay = min(self.config.gateway.auth_failure_delay * failures, 30.0)
        log.warning("auth failed user=%s client=%s failures=%d delay=%.1fs",
                    _clean(login), ip, failures, delay)
        await asyncio.sleep(delay)  # slows password guessing; other clients are not held up
        return AuthResult(success=False, handled=False,
                          message="535 5.7.8 Login name or password not accepted")

    def _may_submit(self, session: Session) -> bool:
        if session.authenticated:
            return True
        ip = session.peer[0] if session.peer else ""
        try:
            addr = ipaddress.ip_address(ip.split("%")[0])
        except ValueError:
            return False
        return any(addr in net for net in self.listener.trusted_networks)

    # ------------------------------------------------------------------ envelope
    def _check_address(self, address: str, smtputf8: bool) -> str | None:
        try:
            validate_email(address, check_deliverability=False, allow_smtputf8=smtputf8,
                           allow_quoted_local=True)
        except EmailNotValidError as e:
            return str(e)
        return None

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        conn_id.set(session.conn_id)  # type: ignore[attr-defined]
        await self._drop_upstream(session)
        if self.gateway.stopping:
            return "421 4.3.2 The gateway is shutting down; please try again later"
        if self.side == "outbound" and not self._may_submit(session):
            return "530 5.7.0 Please log in first (authentication required to send mail)"
        if address == "<>":
            if self.side == "outbound":
                return "553 5.7.1 The empty sender <> cannot be used to send mail from here"
            address = ""
        else:
            problem = self._check_address(address, bool(envelope.smtp_utf8))
            if problem:
                return f"501 5.1.7 Bad sender address: {problem}"
            if self.side == "outbound" and not self.config.gateway.is_council_address(address):
                domains = ", ".join(self.config.gateway.council_domains)
                return (f"553 5.7.1 You can only send from an address of the council ({domains})")
        envelope.mail_from = address or "<>"
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        problem = self._check_address(address, bool(envelope.smtp_utf8))
        if problem:
            return f"553 5.1.3 Bad recipient address: {problem}"
        if self.side == "inbound" and not self.config.gateway.is_council_address(address):
            domains = ", ".join(self.config.gateway.council_domains)
            return f"550 5.7.1 Relay access denied: this server only takes mail for {domains}"
        if self.side == "outbound" and not self._may_submit(session):
            return "530 5.7.0 Please log in first (authentication required to send mail)"
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return f"452 4.5.3 Too many recipients; send to at most {MAX_RECIPIENTS} at a time"
        if self.listener.deliver_to.kind == "smtp":
            up: Upstream | None = session.upstream  # type: ignore[attr-defined]
            if up is None:
                up = Upstream(self.config, self.listener)
                mail_from = "" if envelope.mail_from == "<>" else envelope.mail_from
                opened = await up.open(mail_from or "", smtputf8=bool(envelope.smtp_utf8))
                if not opened.ok:
                    return opened.reply
                session.upstream = up  # type: ignore[attr-defined]
            result = await up.rcpt(address)
            if not result.ok:
                if not up.client.is_connected:
                    session.upstream = None  # type: ignore[attr-defined]
                return result.reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Recipient OK"

    async def handle_RSET(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await self._drop_upstream(session)
        self.gateway.changed.set()
        return "250 2.0.0 OK"

    async def _drop_upstream(self, session: Session) -> None:
        up: Upstream | None = getattr(session, "upstream", None)
        if up is not None:
            session.upstream = None  # type: ignore[attr-defined]
            await up.close()

    # ------------------------------------------------------------------ DATA
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        gw = self.gateway
        gw.in_flight += 1
        # aiosmtpd's idle timer keeps running while we work; give the filters their time.
        server._reset_timeout(self.config.gateway.command_timeout
                              + self.config.gateway.filter_timeout * 2)
        try:
            return await self._process(server, session, envelope)
        finally:
            gw.in_flight -= 1
            await self._drop_upstream(session)
            envelope.mail_from = None  # the transaction is over (aiosmtpd resets it after us)
            gw.changed.set()

    async def _process(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        started = time.monotonic()
        config = self.config
        msg_id = secrets.token_hex(6)
        raw = envelope.original_content or b""
        assert isinstance(raw, bytes)
        mail_from = "" if envelope.mail_from in ("<>", None) else str(envelope.mail_from)
        protocol = "ESMTP" + ("S" if session.ssl else "") + ("A" if session.authenticated else "")
        now = datetime.now(timezone.utc)
        peer_ip = str(session.peer[0]) if session.peer else "unknown"
        data = received_header(helo=session.host_name or "", ip=peer_ip,
                               hostname=config.gateway.hostname, protocol=protocol,
                               msg_id=msg_id, rcpt_tos=list(envelope.rcpt_tos),
                               when=now) + normalise_line_endings(raw)
        creds = session.auth_data
        login = (creds.login.decode("utf-8", "replace")
                 if session.authenticated and isinstance(creds, LoginPassword) else None)
        ctx = MessageContext(
            id=msg_id,
            direction=self.side,  # type: ignore[arg-type]
            envelope=MsgEnvelope(mail_from, list(envelope.rcpt_tos), bool(envelope.smtp_utf8)),
            data=data,
            client_address=peer_ip,
            client_helo=session.host_name or "",
            auth_user=login,
            received_at=now,
        )
        try:
            result = await gw_pipeline(self.gateway, self.side).run(ctx)
            reply, outcome, hop_reply = await self._act(session, ctx, result)
        except Exception:
            log.exception("id=%s processing failed", msg_id)
            reply, outcome, hop_reply, result = (
                "451 4.3.0 The gateway had an internal problem; please try again later",
                "tempfail", "", PipelineResult(verdict=TempFail("internal error")))
        ms = (time.monotonic() - started) * 1000
        self._audit(ctx, outcome, reply, hop_reply, result, ms)
        log.info("id=%s side=%s from=<%s> to=%s size=%d verdict=%s reply=%r ms=%.0f", msg_id,
                 self.side, mail_from, ",".join(ctx.envelope.rcpt_tos), len(raw), outcome,
                 reply, ms)
        if ctx.notices:
            self.gateway.track(send_notices(config, list(ctx.notices)))
        return reply

    async def _act(self, session: Session, ctx: MessageContext,
                   result: PipelineResult) -> tuple[str, str, str]:
        """Carry out the verdict; returns (reply to client, outcome word, next hop's reply)."""
        verdict = result.verdict
        if isinstance(verdict, Reject | TempFail):
            outcome = "reject" if isinstance(verdict, Reject) else "tempfail"
            return f"{verdict.code} {verdict.enhanced} {verdict.text}", outcome, ""
        if isinstance(verdict, Quarantine):
            store = QuarantineStore(self.config.quarantine.path)
            try:
                qid = await asyncio.to_thread(store.hold, ctx, verdict.reasons)
            except OSError as e:
                log.error("id=%s quarantine write failed: %s", ctx.id, e)
                return ("451 4.3.0 The message could not be stored safely; please try again "
                        "later"), "tempfail", ""
            log.info("id=%s quarantined qid=%s reasons=%s", ctx.id, qid, "; ".join(verdict.reasons))
            if self.side == "outbound":
                return (f"250 2.0.0 Held for the clerk to review before it is sent: "
                        f"{'; '.join(verdict.reasons)}"), "quarantine", ""
            return "250 2.0.0 Message accepted", "quarantine", ""
        delivery = await self._deliver(session, ctx)
        if delivery.ok and self.side == "outbound":
            await self._learn(ctx)
        return delivery.reply, "deliver" if delivery.ok else "deliver-failed", delivery.reply

    async def _learn(self, ctx: MessageContext) -> None:
        """Whoever a councillor writes to becomes a known sender (their replies are expected)."""
        try:
            learned = await learn_recipients(self.config, ctx.envelope.rcpt_tos)
        except OSError as e:
            log.error("id=%s could not record learned senders: %s", ctx.id, e)
            return
        if learned:
            log.info("id=%s learned senders: %s", ctx.id, ",".join(learned))

    async def _deliver(self, session: Session, ctx: MessageContext) -> DeliveryResult:
        hop = self.listener.deliver_to
        if hop.kind == "maildir":
            try:
                return await asyncio.to_thread(deliver_maildir, hop, ctx.envelope.mail_from,
                                               ctx.envelope.rcpt_tos, ctx.data)
            except OSError as e:
                log.error("id=%s maildir delivery failed: %s", ctx.id, e)
                return DeliveryResult(False, 451, "4.3.0 The mail folder could not be written; "
                                                  "please try again later")
        up: Upstream | None = session.upstream  # type: ignore[attr-defined]
        if up is None or not up.client.is_connected:
            return DeliveryResult(False, 451, "4.4.1 The next mail server went away; please "
                                              "try again later")
        session.upstream = None  # type: ignore[attr-defined]
        return await up.data(ctx.data)

    def _audit(self, ctx: MessageContext, outcome: str, reply: str, hop_reply: str,
               result: PipelineResult, ms: float) -> None:
        # Only the header block: parsing a large body again here would block the event loop.
        head = ctx.data.split(b"\r\n\r\n", 1)[0][:256 * 1024]
        msg = BytesHeaderParser(policy=email.policy.SMTP).parsebytes(head)
        try:
            subject = " ".join(str(msg.get("subject", "")).split())
            message_id = str(msg.get("message-id", "")).strip()
        except Exception:
            subject, message_id = "", ""
        AuditLog(self.config.gateway.audit_log).write({
            "event": "message",
            "id": ctx.id,
            "direction": ctx.direction,
            "client": ctx.client_address,
            "helo": ctx.client_helo,
            "auth_user": ctx.auth_user,
            "mail_from": ctx.envelope.mail_from,
            "rcpt_tos": ctx.envelope.rcpt_tos,
            "message_id": message_id,
            "subject": subject,
            "size": ctx.size,
            "verdict": outcome,
            "reasons": [f.text for f in ctx.findings],
            "findings": [{"filter": f.filter, "code": f.code, "text": f.text}
                         for f in ctx.findings],
            "filters": [{"name": s.filter, "outcome": s.outcome, "ms": round(s.ms, 1)}
                        for s in result.steps],
            "reply": reply,
            "next_hop_reply": hop_reply,
            "ms": round(ms, 1),
        })

    async def handle_exception(self, error: Exception) -> str:
        log.error("unexpected error: %r", error, exc_info=error)
        return "451 4.3.0 The gateway had an internal problem; please try again later"


def gw_pipeline(gateway: Gateway, side: str) -> Pipeline:
    return gateway.pipelines[side]


def _server_tls_context(config: Config) -> ssl.SSLContext | None:
    if not config.tls.enabled:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(config.tls.cert_file), str(config.tls.key_file))
    return ctx


class Gateway:
    """Both listeners in one process. ``start()``, ``stop()``, ``reload(config)``."""

    def __init__(self, config: Config):
        self.config = config
        self.pipelines = {side: Pipeline(config, side) for side in ("inbound", "outbound")}
        self.servers: dict[str, asyncio.base_events.Server] = {}
        self.ports: dict[str, int] = {}
        self.protocols: set[GatewaySMTP] = set()
        self.in_flight = 0
        self.changed = asyncio.Event()  # set when a transaction ends or a connection closes
        self.stopping = False
        self.auth_failures: dict[str, int] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def inbound_port(self) -> int:
        return self.ports["inbound"]

    @property
    def outbound_port(self) -> int:
        return self.ports["outbound"]

    def track(self, coro: Any) -> None:
        """Run a background job (notices, upstream clean-up) that stop() waits for."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _factory(self, side: str) -> Any:
        handler = SideHandler(self, side)
        tls = _server_tls_context(self.config)

        def make() -> GatewaySMTP:
            cfg = self.config
            return GatewaySMTP(
                handler,
                data_size_limit=cfg.gateway.max_message_size,
                enable_SMTPUTF8=True,
                hostname=cfg.gateway.hostname,
                ident="ESMTP council-gateway",
                tls_context=tls,
                timeout=cfg.gateway.command_timeout,
                auth_require_tls=True,
                auth_exclude_mechanism=["PLAIN", "LOGIN"] if side == "inbound" else None,
            )
        return make

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for side in ("inbound", "outbound"):
            listener = self.config.inbound if side == "inbound" else self.config.outbound
            host, port = listener.listen
            server = await loop.create_server(self._factory(side), host=host, port=port)
            self.servers[side] = server
            self.ports[side] = server.sockets[0].getsockname()[1]
            log.info("listening side=%s address=%s:%d next_hop=%s filters=%s", side, host,
                     self.ports[side], listener.deliver_to, ",".join(self.pipelines[side].names))

    def _busy(self) -> list[GatewaySMTP]:
        return [p for p in self.protocols if p.in_transaction]

    async def stop(self, grace: float | None = None) -> None:
        """Stop accepting; let transactions already begun finish (bounded); then close."""
        self.stopping = True
        for server in self.servers.values():
            server.close()
        grace = self.config.gateway.shutdown_grace if grace is None else grace
        bye = b"421 4.3.2 The gateway is shutting down; please try again later\r\n"
        try:
            async with asyncio.timeout(grace):
                while True:
                    self.changed.clear()
                    for proto in list(self.protocols):
                        if not proto.in_transaction and not self.in_flight:
                            proto.close_idle(bye)
                    busy = self._busy()
                    if not busy and not self.in_flight:
                        break
                    log.info("waiting for %d transaction(s) to finish", len(busy))
                    await self.changed.wait()
        except TimeoutError:
            log.warning("%d transaction(s) cut off at shutdown", len(self._busy()))
        for proto in list(self.protocols):
            proto.close_idle(bye)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace or 1)
        for server in self.servers.values():
            try:
                async with asyncio.timeout(2):
                    await server.wait_closed()
            except TimeoutError:
                pass

    def reload(self, config: Config) -> None:
        """Swap in a new config; pipelines are built first so a failure keeps the old one."""
        pipelines = {side: Pipeline(config, side) for side in ("inbound", "outbound")}
        for side in ("inbound", "outbound"):
            old = self.config.inbound if side == "inbound" else self.config.outbound
            new = config.inbound if side == "inbound" else config.outbound
            if old.listen != new.listen:
                log.warning("%s.listen changed: restart the gateway for it to take effect", side)
        self.pipelines = pipelines
        self.config = config
        log.info("configuration reloaded from %s", config.source)
