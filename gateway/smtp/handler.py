"""The aiosmtpd handler both listeners share: envelope rules at MAIL and RCPT (each passed on to
an SMTP next hop while the client's transaction is open), then at end-of-data the pipeline, the
decision carried out, the audit line, and only then the reply."""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import TYPE_CHECKING

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from gateway.audit import AuditLog, message_event
from gateway.config import Config, ListenerConfig
from gateway.config.core import canonical_domain
from gateway.content import Content
from gateway.context import Envelope as MsgEnvelope
from gateway.context import MessageContext, new_id
from gateway.delivery import dispatch
from gateway.delivery.dispatch import Carried, Hop
from gateway.delivery.nexthop import DeliveryResult, Upstream, capabilities
from gateway.logctx import conn_id
from gateway.mime.headers import origin_fields, strip_trust_headers
from gateway.people.users import UsersFile, default_address
from gateway.pipeline import Outcome
from gateway.smtp import replies
from gateway.smtp.auth import check_login
from gateway.smtp.clientcert import certificate_names, trusted_certificate_name
from gateway.smtp.envelope import (
    from_header_refusal,
    in_networks,
    local_part_refusal,
    recipient_refusal,
    sender_refusal,
)
from gateway.smtp.received import normalise_line_endings, received_header

if TYPE_CHECKING:
    from gateway.smtp.server import Gateway

__all__ = ["SideHandler"]

log = logging.getLogger(__name__)

_FROM_FIELD = re.compile(rb"^from[ \t]*:((?:[^\r\n]|\r\n[ \t])*)", re.I | re.M)


def _login(session: Session) -> str | None:
    creds = session.auth_data
    if session.authenticated and isinstance(creds, LoginPassword):
        return creds.login.decode("utf-8", "replace")
    return None


@dataclass(frozen=True)
class LiveHop:
    """The next-hop transaction opened while the client sent MAIL and RCPT."""

    upstream: Upstream | None

    async def send(self, data: Content) -> DeliveryResult:
        if self.upstream is None or not self.upstream.client.is_connected:
            return DeliveryResult(False, 451, "4.4.1 The next mail server went away; please "
                                              "try again later")
        return await self.upstream.data(data, keep=True)


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
        return self.config.listener(self.side)

    # ------------------------------------------------------------------ AUTH
    async def check_login(self, session: Session, creds: LoginPassword,
                          authzid: bytes = b"") -> AuthResult:
        ip = session.peer[0] if session.peer else "?"
        return await check_login(UsersFile(self.listener.users_file), self.gateway.logins,
                                 creds, ip, self.config.gateway.auth_failure_delay,
                                 AuditLog(self.config.gateway.audit_log), authzid,
                                 metrics=self.gateway.metrics)

    def _own_addresses(self, session: Session) -> tuple[str, ...] | None:
        """The addresses a logged-in councillor may send as; None for a client that did not
        log in (a trusted office server may send as any council address)."""
        login = _login(session)
        if login is None:
            return None
        recorded = UsersFile(self.listener.users_file).addresses(login)
        return recorded or (default_address(login, self.config.gateway.council_domains),)

    def _may_submit(self, session: Session) -> bool:
        if session.authenticated:
            return True
        ip = session.peer[0] if session.peer else ""
        if in_networks(str(ip), self.listener.trusted_networks):
            return True
        return self._certificate_trust(session) is not None

    def _certificate_trust(self, session: Session) -> str | None:
        """The ``trusted_client_certificates`` name the client's verified TLS certificate
        matches, if any. The names it shows are logged once a connection, so the IT volunteer
        can see what a hosted mailbox presents."""
        listed = self.listener.trusted_client_certificates
        if self.side != "outbound" or not listed or not session.ssl:
            return None
        cert = session.ssl.get("peercert")
        name = trusted_certificate_name(cert, listed)
        if not hasattr(session, "certificate_trust"):
            session.certificate_trust = name  # type: ignore[attr-defined]
            peer = str(session.peer[0]) if session.peer else "unknown"
            log.info("client=%s certificate names=%s trusted=%s", peer,
                     ",".join(certificate_names(cert)) or "(none verified)", name or "no")
        return name

    # ------------------------------------------------------------------ envelope
    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        """What this side offers: PIPELINING and enhanced codes always; DSN only when the next
        hop takes it (so what is asked can be honoured); SIZE as the smaller of our limit and
        the next hop's."""
        session.host_name = hostname
        caps = await capabilities(self.config, self.listener)
        size = self.config.gateway.max_message_size
        if caps.size:
            size = min(size, caps.size)
        session.dsn = caps.dsn  # type: ignore[attr-defined]
        out = [f"250-SIZE {size}" if r.startswith("250-SIZE") else r for r in responses[:-1]]
        out += ["250-PIPELINING", "250-ENHANCEDSTATUSCODES"]
        if caps.dsn:
            out.append("250-DSN")
        return [*out, responses[-1]]

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        conn_id.set(session.conn_id)  # type: ignore[attr-defined]
        await self._drop_upstream(session)
        if self.gateway.stopping:
            return "421 4.3.2 The gateway is shutting down; please try again later"
        own = self._own_addresses(session) if self.side == "outbound" else None
        refusal = sender_refusal(address, side=self.side, may_submit=self._may_submit(session),
                                 smtputf8=bool(envelope.smtp_utf8), gateway=self.config.gateway,
                                 own=own)
        if refusal:
            return self.refused(session, "mail", refusal, mail_from=address)
        declared = next((int(o[5:]) for o in mail_options
                         if o.startswith("SIZE=") and o[5:].isdigit()), 0)
        if declared:
            caps = await capabilities(self.config, self.listener)
            if caps.size and declared > caps.size:
                return self.refused(
                    session, "mail", f"552 5.3.4 The message is too big: the next mail server "
                    f"takes messages of up to {caps.size:,} bytes",
                    mail_from=address)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        refusal = recipient_refusal(
            address, side=self.side, may_submit=self._may_submit(session),
            smtputf8=bool(envelope.smtp_utf8), count=len(envelope.rcpt_tos),
            gateway=self.config.gateway)
        if refusal is None and self.side == "inbound":
            refusal = local_part_refusal(address, self.listener.allowed_local_parts)
        if refusal:
            return self.refused(session, "rcpt", refusal, envelope, rcpt=address)
        if self.side == "inbound":
            # The domain passed on is the one that was checked, as DNS spells it.
            local, _, domain = address.rpartition("@")
            address = f"{local}@{canonical_domain(domain)}"
        if self.listener.deliver_to.kind == "smtp":
            up: Upstream | None = session.upstream  # type: ignore[attr-defined]
            if up is None:
                up, opened = await self._open_upstream(session, envelope)
                if not opened.ok:
                    self.gateway.metrics.next_hop_failed(self.side, opened)
                    return self.refused(session, "rcpt", opened.reply, envelope, rcpt=address)
                session.upstream = up  # type: ignore[attr-defined]
            result = await up.rcpt(address, getattr(session, "rcpt_dsn", ()))
            if not result.ok:
                if not up.client.is_connected:
                    session.upstream = None  # type: ignore[attr-defined]
                    self.gateway.metrics.next_hop_failed(self.side, result)  # it went away
                return self.refused(session, "rcpt", result.reply, envelope, rcpt=address)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Recipient OK"

    async def _open_upstream(self, session: Session,
                             envelope: Envelope) -> tuple[Upstream, DeliveryResult]:
        """The next-hop transaction for this client transaction: on the connection the client's
        last transaction left (kept only when the next hop took its message), or a new one."""
        mail_from = "" if envelope.mail_from == "<>" else str(envelope.mail_from)
        smtputf8 = bool(envelope.smtp_utf8)
        extra: Sequence[str] = getattr(session, "mail_dsn", ())
        kept: Upstream | None = getattr(session, "kept_upstream", None)
        session.kept_upstream = None  # type: ignore[attr-defined]
        if kept is not None and kept.client.is_connected:
            opened = await kept.open(mail_from, smtputf8=smtputf8, extra=extra, again=True)
            # A refusal of the sender stands; anything else (the next hop ended the idle
            # connection, a 421) is worth one new connection.
            if opened.ok or opened.code >= 500:
                return kept, opened
            await kept.close()
        elif kept is not None:
            await kept.close()
        up = Upstream(self.config, self.listener)
        return up, await up.open(mail_from, smtputf8=smtputf8, extra=extra)

    def refused(self, session: Session, stage: str, reply: str,
                envelope: Envelope | None = None, *, mail_from: str = "",
                rcpt: str = "") -> str:
        """Log and audit a refusal before the message (at MAIL, RCPT, or of a line); returns
        the reply."""
        peer = str(session.peer[0]) if session.peer else "unknown"
        sender = mail_from or (str(envelope.mail_from) if envelope and envelope.mail_from
                               else "")
        log.info("refused side=%s stage=%s client=%s from=<%s> to=<%s> reply=%r", self.side,
                 stage, peer, sender, rcpt, reply)
        AuditLog(self.config.gateway.audit_log).write({
            "event": "refused", "stage": stage, "direction": self.side, "client": peer,
            "helo": session.host_name or "", "auth_user": _login(session), "mail_from": sender,
            "rcpt": rcpt, "reply": reply})
        self.gateway.metrics.envelope_refused(self.side, stage)
        return reply

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
                              + self.config.gateway.filter_timeout * 2
                              + self.listener.deliver_data_timeout)
        server.processing = True  # type: ignore[attr-defined]
        try:
            return await self._process(session, envelope)
        finally:
            server.processing = False  # type: ignore[attr-defined]
            server._junk = 0  # type: ignore[attr-defined]  # a message moved: not junk
            gw.in_flight -= 1
            await self._drop_upstream(session)
            envelope.mail_from = None  # the transaction is over (aiosmtpd resets it after us)
            gw.changed.set()

    def _context(self, session: Session, envelope: Envelope, data: Content) -> MessageContext:
        login = _login(session)
        mail_from = "" if envelope.mail_from in ("<>", None) else str(envelope.mail_from)
        return MessageContext(
            id=new_id(),
            side=self.side,  # type: ignore[arg-type]
            envelope=MsgEnvelope(mail_from, tuple(envelope.rcpt_tos), bool(envelope.smtp_utf8)),
            data=data,
            client_address=str(session.peer[0]) if session.peer else "unknown",
            client_helo=session.host_name or "",
            auth_user=login,
            received_at=datetime.now(timezone.utc),
        )

    async def _process(self, session: Session, envelope: Envelope) -> str:
        started = time.monotonic()
        raw = envelope.original_content or b""
        assert isinstance(raw, bytes)
        # The message's one copy from here on is ctx's: aiosmtpd's references go.
        envelope.original_content = envelope.content = None
        size = len(raw)
        # Fields only the gateway may write are removed before anything reads the message, so
        # a forged one is never trusted, held, released or passed on.
        hostname = self.config.gateway.hostname
        ctx = self._context(session, envelope, Content(normalise_line_endings(raw)).edit_head(
            lambda head: strip_trust_headers(head, hostname)))
        del raw  # ctx holds the message now: a join later can let go of this buffer
        if self.side == "outbound":
            date = format_datetime(ctx.received_at.astimezone())
            message_id = f"<{ctx.id}.{secrets.token_hex(4)}@{hostname}>"
            ctx.replace_content(ctx.content.edit_head(
                lambda head: origin_fields(head, date=date, message_id=message_id)))
        protocol = "ESMTP" + ("S" if session.ssl else "") + ("A" if session.authenticated else "")
        top = received_header(helo=ctx.client_helo, ip=ctx.client_address,
                              hostname=self.config.gateway.hostname, protocol=protocol,
                              msg_id=ctx.id, rcpt_tos=ctx.envelope.rcpt_tos,
                              when=ctx.received_at)
        hop: Hop = (LiveHop(getattr(session, "upstream", None))
                    if self.listener.deliver_to.kind == "smtp" else dispatch.OneShotHop(
                        self.config, self.side, ctx.envelope.mail_from, ctx.envelope.rcpt_tos))
        session.upstream = None  # type: ignore[attr-defined]  # the hop owns it now
        outcome: Outcome | None = None
        carried: Carried | None = None
        refusal = self._data_refusal(session, ctx)
        if refusal is not None:
            reply = refusal
        else:
            try:
                outcome = await self.gateway.assembly.pipelines[ctx.side].run(ctx)
                carried = await dispatch.carry_out(self.config, ctx, outcome, hop, top)
                reply = replies.line(carried, outcome.decision, self.side)
            except Exception:
                log.exception("id=%s processing failed", ctx.id)
                reply = replies.INTERNAL_ERROR
        if isinstance(hop, LiveHop) and hop.upstream is not None:
            up = hop.upstream
            if (up.client.is_connected and not up.opened and not self.gateway.stopping
                    and carried is not None and carried.delivery is not None
                    and carried.delivery.code == 250):
                # Taken by the next hop: the connection may carry the client's next message
                # (the next hop still answers each before the client is answered).
                session.kept_upstream = up  # type: ignore[attr-defined]
            else:
                await up.close()
        ms = (time.monotonic() - started) * 1000
        verdict = carried.word if carried else (
            "tempfail" if refusal is None or refusal.startswith("4") else "refuse")
        hop_reply = carried.delivery.reply if carried and carried.delivery else ""
        AuditLog(self.config.gateway.audit_log).write(message_event(
            ctx, outcome, verdict=verdict, reply=reply, hop_reply=hop_reply, size=size, ms=ms))
        log.info("id=%s side=%s from=<%s> to=%s size=%d verdict=%s reply=%r ms=%.0f", ctx.id,
                 self.side, ctx.envelope.mail_from, ",".join(ctx.envelope.rcpt_tos), size,
                 verdict, reply, ms)
        self.gateway.metrics.message(self.side, verdict, outcome, ms / 1000,
                                     carried.delivery if carried else None)
        if carried is not None and outcome is not None:
            await dispatch.learn(self.config, ctx, carried)
            self.gateway.track(self._follow_up(ctx, outcome, carried))
        return reply

    async def _follow_up(self, ctx: MessageContext, outcome: Outcome, carried: Carried) -> None:
        await dispatch.send_follow_up(self.config, ctx, outcome, carried)

    def _data_refusal(self, session: Session, ctx: MessageContext) -> str | None:
        """What stops the message before any check looks at it: no room in the monitoring
        record; a first line that would continue the gateway's own Received field; or
        (submission) a From: address the client may not use."""
        gw = self.config.gateway
        if gw.audit_required and not AuditLog(gw.audit_log).writable():
            log.error("id=%s audit log %s cannot be written: turned away for now", ctx.id,
                      gw.audit_log)
            return ("451 4.3.0 The gateway cannot write its record of this message; please "
                    "try again later")
        head = ctx.content.head()
        if head[:1] in (b" ", b"\t"):
            return ("554 5.6.0 The message starts with a continued header line, so it is not "
                    "a well-formed message")
        if self.side != "outbound":
            return None
        values = [m.group(1).decode("utf-8", "replace") for m in _FROM_FIELD.finditer(head)]
        return from_header_refusal(values, own=self._own_addresses(session),
                                   gateway=self.config.gateway)
    async def handle_exception(self, error: Exception) -> str:
        log.error("unexpected error: %r", error, exc_info=error)
        return replies.INTERNAL_ERROR
