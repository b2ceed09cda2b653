"""Carrying out the policy's decision: hold the message durably, or hand it to the next hop.

Used for mail arriving over SMTP and for mail the clerk releases, so both end the same way. What
happens afterwards (notices, learning who councillors write to) can never change what the next
hop or the disk already answered: :func:`learn` and :func:`send_follow_up` catch and log
everything.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.config import Config
from gateway.content import Content
from gateway.context import MessageContext
from gateway.delivery.nexthop import DeliveryResult, deliver
from gateway.delivery.notices import compose, send_notices
from gateway.people.senders import learn_recipients
from gateway.pipeline import Outcome
from gateway.quarantine.store import HeldMessage, QuarantineStore
from gateway.verdicts import Action

__all__ = ["Carried", "Hop", "OneShotHop", "carry_out", "held_record", "learn", "send_follow_up"]

log = logging.getLogger(__name__)


class Hop(Protocol):
    """Where a message that passes goes: one call, the next hop's answer."""

    async def send(self, data: Content) -> DeliveryResult: ...


@dataclass(frozen=True)
class OneShotHop:
    """A fresh delivery to a side's next hop (released mail; Maildir next hops)."""

    config: Config
    side: str
    mail_from: str
    rcpt_tos: Sequence[str]
    smtputf8: bool = False

    async def send(self, data: Content) -> DeliveryResult:
        return await deliver(self.config, self.side, self.mail_from, list(self.rcpt_tos), data,
                             smtputf8=self.smtputf8)


@dataclass(frozen=True)
class Carried:
    """What was done: the action, the next hop's answer when it was asked, and whether the
    quarantine write worked when the message was held."""

    action: Action
    delivery: DeliveryResult | None = None
    held: bool = False  # held and fsynced
    hold_error: str = ""  # why holding failed (the client is told to try again)

    @property
    def delivered(self) -> bool:
        return self.delivery is not None and self.delivery.ok

    @property
    def word(self) -> str:
        """The outcome in one word, as the audit log records it."""
        if self.action in (Action.DELIVER, Action.TAG) and not self.delivered:
            return "deliver-failed"
        if self.action is Action.HOLD and not self.held:
            return "tempfail"
        return self.action.value


def held_record(ctx: MessageContext, outcome: Outcome) -> HeldMessage:
    return HeldMessage(
        id=ctx.id,
        received_at=ctx.received_at,
        direction=ctx.side,
        mail_from=ctx.envelope.mail_from,
        rcpt_tos=tuple(ctx.envelope.rcpt_tos),
        reasons=outcome.decision.reasons,
        client_address=ctx.client_address,
        auth_user=ctx.auth_user or "",
        smtputf8=ctx.envelope.smtputf8,
        client_helo=ctx.client_helo,
        held_by=outcome.held.filter if outcome.held else "",
        findings=outcome.findings,
    )


async def carry_out(config: Config, ctx: MessageContext, outcome: Outcome, hop: Hop,
                    top: bytes = b"") -> Carried:
    """Hold or deliver as decided (refusals need nothing done). ``top`` goes on top of the
    message either way (as a piece of its own: the message is not copied): the gateway's
    Received field."""
    action = outcome.decision.action
    if action in (Action.REFUSE, Action.TEMPFAIL):
        return Carried(action)
    if action is Action.HOLD:
        assert outcome.held is not None
        store = QuarantineStore(config.quarantine.path)
        try:
            await asyncio.to_thread(store.hold, held_record(ctx, outcome),
                                    outcome.held.content.prepend(top))
        except OSError as e:
            log.error("id=%s quarantine write failed: %s", ctx.id, e)
            return Carried(action, hold_error=str(e.strerror or e))
        log.info("id=%s held reasons=%s", ctx.id, "; ".join(outcome.decision.reasons))
        return Carried(action, held=True)
    return Carried(action, await hop.send(outcome.content.prepend(top)))


async def learn(config: Config, ctx: MessageContext, carried: Carried) -> None:
    """After an outbound delivery, its outside recipients become known senders (their replies
    are expected). Never raises: the message was already delivered."""
    if not (carried.delivered and ctx.side == "outbound"):
        return
    try:
        learned = await learn_recipients(config, ctx.envelope.rcpt_tos)
    except Exception as e:
        log.error("id=%s could not record learned senders: %s", ctx.id, e)
        return
    if learned:
        log.info("id=%s learned senders: %s", ctx.id, ",".join(learned))


async def send_follow_up(config: Config, ctx: MessageContext, outcome: Outcome,
                         carried: Carried) -> None:
    """The notices about the message (a virus alert, a note to the councillor), now that its
    fate is known. Never raises."""
    settled = (carried.held or carried.delivered
               or carried.action in (Action.REFUSE, Action.TEMPFAIL))
    if not settled or not outcome.notices:
        return
    try:
        mails = [m for n in outcome.notices
                 if (m := compose(config, n, carried.action, ctx)) is not None]
        if mails:
            await send_notices(config, mails)
    except Exception:
        log.exception("id=%s notices about the message could not be sent", ctx.id)
