"""One Postfix connection to the milter: its transactions, decided by the gateway's pipeline.

The side comes from what Postfix tells: a client that logged in (``{auth_authen}``) or is on
``[outbound] trusted_networks`` is a councillor or the office sending (outbound); anything else
is mail from outside, taken only for the council's domains (inbound). The envelope rules and
the checks are the proxy's; only how the answer travels differs.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

from gateway.audit import AuditLog, message_event
from gateway.content import Content
from gateway.context import Envelope, MessageContext, new_id
from gateway.delivery import dispatch
from gateway.delivery.nexthop import DeliveryResult
from gateway.milter.edits import Edits, Field, diff
from gateway.milter.settings import MilterConfig
from gateway.mime.headers import origin_fields, strip_trust_headers
from gateway.people.users import UsersFile, default_address
from gateway.pipeline import Outcome
from gateway.policy import Side
from gateway.smtp import replies
from gateway.smtp.envelope import (
    from_header_refusal,
    in_networks,
    local_part_refusal,
    recipient_refusal,
    sender_refusal,
)
from gateway.verdicts import Action

if TYPE_CHECKING:
    from gateway.assembly import Assembly
    from gateway.metrics.registry import Metrics

__all__ = ["Answer", "MilterSession"]

log = logging.getLogger(__name__)

SPOOL_IN_MEMORY = 1024 * 1024  # bodies larger than this wait on disk, in a private file


@dataclass(frozen=True)
class Answer:
    """What to tell Postfix at the end of a message."""

    action: str  # "accept", "reply" (a 4xx/5xx line), "discard" (held here), "tempfail"
    reply: str = ""
    edits: Edits = Edits()
    # What follows once Postfix has the answer (learning recipients, notices): never before,
    # so a message Postfix did not take has no after-effects.
    after: Callable[[], Coroutine[Any, Any, None]] | None = None


class _NoHop:
    """Postfix delivers: the milter never hands mail on itself."""

    async def send(self, data: Content) -> DeliveryResult:
        return DeliveryResult(True, 250, "2.0.0 Accepted for Postfix to deliver")


@dataclass
class MilterSession:
    source: Callable[[], Assembly]
    track: Callable[[Coroutine[Any, Any, None]], None]  # follow-up work the gateway awaits
    metrics: Metrics | None = None
    client_address: str = ""
    client_helo: str = ""
    macros: dict[str, str] = field(default_factory=dict)
    mail_from: str = ""
    rcpts: list[str] = field(default_factory=list)
    headers: list[Field] = field(default_factory=list)
    _body: tempfile.SpooledTemporaryFile[bytes] | None = None
    _size: int = 0

    # ------------------------------------------------------------------ the envelope
    @property
    def login(self) -> str | None:
        return self.macros.get("{auth_authen}") or None

    @property
    def side(self) -> Side:
        config = self.source().config
        if self.login or in_networks(self.client_address, config.outbound.trusted_networks):
            return "outbound"
        return "inbound"

    def _own(self) -> tuple[str, ...] | None:
        login = self.login
        if login is None:
            return None
        config = self.source().config
        recorded = UsersFile(config.outbound.users_file).addresses(login)
        return recorded or (default_address(login, config.gateway.council_domains),)

    def reset(self) -> None:
        self.mail_from, self.rcpts, self.headers, self._size = "", [], [], 0
        if self._body is not None:
            self._body.close()
        self._body = None

    def envelope_from(self, address: str) -> str | None:
        """A refusal line for MAIL FROM, or None."""
        self.reset()
        gateway = self.source().config.gateway
        refusal = sender_refusal(address or "<>", side=self.side, may_submit=True,
                                 smtputf8=True, gateway=gateway, own=self._own())
        self.mail_from = "" if address in ("", "<>") else address
        return self._refused("mail", refusal) if refusal else None

    def recipient(self, address: str) -> str | None:
        config = self.source().config
        side = self.side
        refusal = recipient_refusal(address, side=side, may_submit=True, smtputf8=True,
                                    count=len(self.rcpts), gateway=config.gateway)
        if refusal is None and side == "inbound":
            refusal = local_part_refusal(address, config.inbound.allowed_local_parts)
        if refusal is None:
            self.rcpts.append(address)
            return None
        return self._refused("rcpt", refusal, address)

    def _refused(self, stage: str, reply: str, rcpt: str = "") -> str:
        """Logged and audited as the proxy does a refusal before the message."""
        log.info("refused milter side=%s stage=%s client=%s from=<%s> to=<%s> reply=%r",
                 self.side, stage, self.client_address, self.mail_from, rcpt, reply)
        AuditLog(self.source().config.gateway.audit_log).write({
            "event": "refused", "stage": stage, "direction": self.side,
            "client": self.client_address, "helo": self.client_helo, "auth_user": self.login,
            "mail_from": self.mail_from, "rcpt": rcpt, "reply": reply})
        if self.metrics is not None:
            self.metrics.envelope_refused(self.side, stage)
        return reply

    def header(self, name: str, value: bytes) -> None:
        self._size += len(name) + len(value) + 3
        if self._size > self.source().config.gateway.max_message_size:
            return  # refused at the end; nothing more is kept
        self.headers.append((name.strip(),
                             value.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")))

    def body(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size > self.source().config.gateway.max_message_size:
            return  # refused at the end; nothing more is kept
        if self._body is None:
            self._body = tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY)  # 0600, then removed
        self._body.write(chunk)

    # ------------------------------------------------------------------ the end of a message
    def _message(self) -> tuple[bytes, bytes]:
        body = b""
        if self._body is not None:
            self._body.seek(0)
            body = self._body.read()
        head = b"".join(n.encode("ascii", "replace") + b":" + v + b"\r\n" for n, v in self.headers)
        return head + b"\r\n" + body, body

    async def end_of_message(self) -> Answer:
        started = time.monotonic()
        assembly = self.source()
        config = assembly.config
        side = self.side
        original, body = self._message()
        ctx = MessageContext(
            id=new_id(), side=side,
            envelope=Envelope(self.mail_from, tuple(self.rcpts), smtputf8=True),
            data=strip_trust_headers(original, config.gateway.hostname),
            client_address=self.client_address, client_helo=self.client_helo,
            auth_user=self.login, received_at=datetime.now(timezone.utc))
        if side == "outbound":
            ctx.replace_data(origin_fields(
                ctx.data, date=format_datetime(ctx.received_at.astimezone()),
                message_id=f"<{ctx.id}@{config.gateway.hostname}>"))
        answer, verdict, outcome = await self._decide(assembly, ctx, original, body)
        ms = (time.monotonic() - started) * 1000
        AuditLog(config.gateway.audit_log).write(message_event(
            ctx, outcome, verdict=verdict, reply=answer.reply or answer.action, hop_reply="",
            size=len(original), ms=ms))
        log.info("id=%s milter side=%s from=<%s> to=%s verdict=%s ms=%.0f", ctx.id, side,
                 self.mail_from, ",".join(self.rcpts), verdict, ms)
        if self.metrics is not None:
            self.metrics.message(side, verdict, outcome, ms / 1000)
        self.reset()
        return answer

    async def _decide(self, assembly: Assembly, ctx: MessageContext, original: bytes,
                      body: bytes) -> tuple[Answer, str, Outcome | None]:
        config = assembly.config
        if ctx.side == "outbound":
            head = ctx.data.split(b"\r\n\r\n", 1)[0]
            froms = [v.decode("utf-8", "replace") for n, v in _fields(head) if n == "from"]
            refusal = from_header_refusal(froms, own=self._own(), gateway=config.gateway)
            if refusal:
                return Answer("reply", refusal), "refuse", None
        if self._size > config.gateway.max_message_size:
            return Answer("reply", replies.too_big(config.gateway.max_message_size)), "refuse", None
        try:
            # Only the checks are bounded: once a hold is being written it must finish, or the
            # message would be both held and retried.
            outcome = await asyncio.wait_for(assembly.pipelines[ctx.side].run(ctx),
                                             config.section(MilterConfig).timeout)
            edits = diff(self.headers, body, outcome.data)
            carried = await dispatch.carry_out(config, ctx, outcome, _NoHop())
        except Exception:
            log.exception("id=%s milter processing failed", ctx.id)
            return Answer("reply", replies.INTERNAL_ERROR), "tempfail", None
        # Nothing after the quarantine write can raise: it must not turn a held message into a
        # retried one.

        async def after() -> None:
            await dispatch.learn(config, ctx, carried)
            await dispatch.send_follow_up(config, ctx, outcome, carried)

        action = outcome.decision.action
        if action in (Action.REFUSE, Action.TEMPFAIL):
            return (Answer("reply", replies.refusal(outcome.decision), after=after),
                    carried.word, outcome)
        if action is Action.HOLD:
            if not carried.held:
                return (Answer("reply", replies.line(carried, outcome.decision, ctx.side)),
                        carried.word, outcome)
            return Answer("discard", after=after), carried.word, outcome
        return Answer("accept", edits=edits, after=after), carried.word, outcome


def _fields(head: bytes) -> Sequence[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and out:
            out[-1] = (out[-1][0], out[-1][1] + b" " + line.strip())
        elif b":" in line:
            name, _, value = line.partition(b":")
            out.append((name.strip().lower().decode("ascii", "replace"), value.strip()))
    return out
