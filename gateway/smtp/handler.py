"""The handler both listeners share: envelope rules, then the pipeline at end-of-data, then the
next hop, the quarantine or a refusal. The client is answered only after that has happened."""

from __future__ import annotations

import asyncio
import email.policy
import ipaddress
import logging
import re
import secrets
import time
from datetime import datetime, timezone
from email.parser import BytesHeaderParser
from email.utils import format_datetime
from typing import TYPE_CHECKING

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from email_validator import EmailNotValidError, validate_email

from gateway.audit import AuditLog
from gateway.config import Config, ListenerConfig
from gateway.context import Envelope as MsgEnvelope
from gateway.context import MessageContext
from gateway.delivery.nexthop import DeliveryResult, Upstream, deliver_maildir
from gateway.delivery.notices import send_notices
from gateway.logctx import conn_id
from gateway.people.senders import learn_recipients
from gateway.people.users import UsersFile
from gateway.pipeline import Pipeline, PipelineResult
from gateway.quarantine.store import QuarantineStore
from gateway.verdicts import Quarantine, Reject, TempFail

if TYPE_CHECKING:
    from gateway.smtp.server import Gateway

__all__ = ["FailureCounter", "SideHandler", "normalise_line_endings", "received_header"]

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 100


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



class FailureCounter:
    """Failed logins per client address, forgotten after ``window`` seconds without one."""

    def __init__(self, window: float = 900.0, limit: int = 10_000):
        self.window = window
        self.limit = limit
        self._seen: dict[str, tuple[int, float]] = {}

    def count(self, ip: str) -> int:
        count, last = self._seen.get(ip, (0, 0.0))
        return count if time.monotonic() - last < self.window else 0

    def record(self, ip: str) -> int:
        count = self.count(ip) + 1
        if len(self._seen) >= self.limit:  # a flood of addresses: keep only the recent ones
            cutoff = time.monotonic() - self.window
            self._seen = {k: v for k, v in self._seen.items() if v[1] >= cutoff}
        self._seen[ip] = (count, time.monotonic())
        return count

    def clear(self, ip: str) -> None:
        self._seen.pop(ip, None)


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
            self.gateway.auth_failures.clear(ip)
            log.info("auth ok user=%s client=%s", login, ip)
            return AuthResult(success=True, auth_data=creds)
        failures = self.gateway.auth_failures.record(ip)
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

