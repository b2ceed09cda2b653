"""The one way held mail leaves the quarantine: :func:`resolve`, for the command line, the clerk's
page and the digest links alike, each action audited the same way.

Releasing runs the rest of the pipeline: the checks after the one that held the message, with
every finding the clerk was shown approved, then the finishing steps (footer, DKIM signature),
then delivery, exactly as for mail that was never held. What may be released is decided by the
finding codes: a virus never; a dangerous attachment only with ``force`` (the IT volunteer).
Once a resolution of held junk has succeeded, SpamAssassin learns from it
(:mod:`gateway.quarantine.lessons`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.audit import AuditLog, finding_entries
from gateway.content import Content
from gateway.context import Envelope, MessageContext
from gateway.delivery import dispatch
from gateway.delivery.nexthop import DeliveryResult
from gateway.people.senders import block_sender, trust_sender
from gateway.policy import Policy
from gateway.quarantine import lessons
from gateway.quarantine.store import HeldMessage, NotFound, QuarantineStore
from gateway.verdicts import Action, Release

if TYPE_CHECKING:
    from gateway.assembly import Assembly

__all__ = ["RESOLUTIONS", "ResolveResult", "release_rule", "resolve", "why_not_released"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResolveResult:
    ok: bool
    message: str  # plain English, for the clerk
    # What it changed in the sender lists, for the audit log: "trusted", "already-trusted",
    # "blocked" or "already-blocked" (None: nothing).
    sender_change: str | None = None


def release_rule(policy: Policy, held: HeldMessage) -> Release:
    return policy.release_of(held.codes)


def why_not_released(policy: Policy, held: HeldMessage, force: bool = False) -> str | None:
    """The sentence that says why this message cannot be released (None: it can)."""
    rule = release_rule(policy, held)
    if rule is Release.NEVER:
        what = "a virus" if "virus" in held.codes else "something that is never passed on"
        return (f"Not released: this message contains {what}, so it can never be delivered. "
                "Delete it.")
    if rule is Release.FORCE and not force:
        worst = [f.text for f in held.findings
                 if (k := policy.kind(f.code)) is not None and k.release is Release.FORCE]
        return ("Not released: " + (worst[0] if worst else "it may be dangerous")
                + ". Only the IT volunteer can release it.")
    return None


async def _release(assembly: Assembly, store: QuarantineStore, held: HeldMessage, *,
                   force: bool) -> ResolveResult:
    refusal = why_not_released(assembly.policy, held, force)
    if refusal:
        return ResolveResult(False, refusal)
    config = assembly.config
    data = await asyncio.to_thread(store.read, held.id)
    ctx = MessageContext(
        id=held.id, side=held.direction,  # type: ignore[arg-type]
        envelope=Envelope(held.mail_from, held.rcpt_tos, held.smtputf8), data=data,
        client_address=held.client_address, client_helo=held.client_helo,
        auth_user=held.auth_user or None, received_at=held.received_at)
    hop = dispatch.OneShotHop(config, held.direction, held.mail_from, held.rcpt_tos,
                              held.smtputf8)
    if not held.findings and not held.held_by:
        # Held before findings were recorded: nothing to resume from, passed on as it is.
        result = await hop.send(Content(data))
        return await _delivered(store, held, result)
    pipeline = assembly.pipelines[ctx.side]
    before = set(pipeline.checks_up_to(held.held_by))
    ctx.findings.extend(f for f in held.findings if f.filter in before)
    outcome = await pipeline.run(ctx, after=held.held_by or None,
                                 approved=frozenset(held.codes))
    carried = await dispatch.carry_out(config, ctx, outcome, hop)
    await dispatch.learn(config, ctx, carried)
    await dispatch.send_follow_up(config, ctx, outcome, carried)
    decision = outcome.decision
    if decision.action in (Action.REFUSE, Action.TEMPFAIL):
        later = "; please try again later" if decision.action is Action.TEMPFAIL else ""
        return ResolveResult(False, f"Not released: {decision.text}{later}. The message is "
                                    "still in the quarantine.")
    if decision.action is Action.HOLD:
        if not carried.held:
            return ResolveResult(False, f"Not released: it could not be stored again "
                                        f"({carried.hold_error}).")
        return ResolveResult(False, "Not released yet: a later check holds it too: "
                                    + "; ".join(decision.reasons))
    assert carried.delivery is not None
    return await _delivered(store, held, carried.delivery)


async def _delivered(store: QuarantineStore, held: HeldMessage,
                     result: DeliveryResult) -> ResolveResult:
    if not result.ok:
        detail = result.reply
        if result.refused:
            detail = "; ".join(f"{r}: {c} {t}" for r, (c, t) in result.refused.items())
        return ResolveResult(False, f"Not released: the mail server answered {detail}. "
                                    "The message is still in the quarantine.")
    await asyncio.to_thread(store.delete, held.id)
    return ResolveResult(True, f"Released: delivered to {', '.join(held.rcpt_tos)}.")


async def _release_and_trust(assembly: Assembly, store: QuarantineStore, held: HeldMessage, *,
                             force: bool) -> ResolveResult:
    """Release, then (only once delivered) add the sender to the known senders."""
    result = await _release(assembly, store, held, force=force)
    if not result.ok:
        return result
    sender = held.sender
    try:
        added = await asyncio.to_thread(trust_sender, assembly.config, sender)
    except ValueError:
        return ResolveResult(True, f"{result.message} The sender's address {sender!r} cannot be "
                                   "added to the known senders.")
    except OSError as e:
        return ResolveResult(False, f"{result.message} But {sender} could not be added to the "
                                    f"known senders: {e.strerror or e}.")
    note = "is now a known sender" if added else "was already a known sender"
    return ResolveResult(True, f"{result.message} {sender} {note}.",
                         "trusted" if added else "already-trusted")


async def _block_sender(assembly: Assembly, store: QuarantineStore, held: HeldMessage, *,
                        force: bool) -> ResolveResult:
    """Block the sender (their mail is always held from now on) and delete this message."""
    sender = held.sender
    try:
        added = await asyncio.to_thread(block_sender, assembly.config, sender)
    except ValueError:
        return ResolveResult(False, f"The sender's address {sender!r} cannot be blocked; "
                                    "the message is still in the quarantine.")
    await asyncio.to_thread(store.delete, held.id)
    return ResolveResult(True, f"Blocked {sender}: their mail will always be held. "
                               "This message was deleted.",
                         "blocked" if added else "already-blocked")


async def _delete(assembly: Assembly, store: QuarantineStore, held: HeldMessage, *,
                  force: bool) -> ResolveResult:
    await asyncio.to_thread(store.delete, held.id)
    return ResolveResult(True, "Deleted.")


Resolution = Callable[..., Awaitable[ResolveResult]]
RESOLUTIONS: dict[str, Resolution] = {
    "release": _release,
    "release_and_trust": _release_and_trust,
    "block_sender": _block_sender,
    "delete": _delete,
}


async def resolve(assembly: Assembly, qid: str, action: str, actor: str, *,
                  force: bool = False) -> ResolveResult:
    """Apply ``action`` to held message ``qid`` on behalf of ``actor``; audited."""
    config = assembly.config
    store = QuarantineStore(config.quarantine.path)
    if action not in RESOLUTIONS:
        return ResolveResult(False, f"Unknown action {action!r}.")
    try:
        held = await asyncio.to_thread(store.get, qid)
    except NotFound:
        return ResolveResult(False, f"No held message with id {qid}.")
    lesson = await lessons.plan(config, assembly.policy, store, held, action)
    try:
        result = await RESOLUTIONS[action](assembly, store, held, force=force)
    except OSError as e:
        result = ResolveResult(False, f"Could not {action} the message: {e.strerror or e}.")
    learning = lessons.Learning()
    try:
        if lesson is not None and result.ok:
            # Stays the record if the clerk's request is cancelled while spamd is asked.
            learning = lessons.Learning(error="interrupted before spamd answered")
            learning = await lessons.teach(qid, lesson)
    finally:
        _audit(config.gateway.audit_log, held, action, actor, force, result, learning)
    log.info("quarantine id=%s action=%s actor=%s force=%s ok=%s", qid, action, actor, force,
             result.ok)
    return result


def _audit(path: Path, held: HeldMessage, action: str, actor: str, force: bool,
           result: ResolveResult, learning: lessons.Learning) -> None:
    qid = held.id
    AuditLog(path).write({
        "event": "quarantine-" + action.replace("_", "-"),
        "id": qid,
        "quarantine_id": qid,
        "actor": actor,
        "forced": force,
        "ok": result.ok,
        "result": result.message,
        "direction": held.direction,
        "mail_from": held.mail_from,
        "rcpt_tos": list(held.rcpt_tos),
        "subject": held.subject,
        "findings": finding_entries(held.findings),
        "sender": held.sender,
        "sender_change": result.sender_change,
        "learned": learning.learned,
        "learn_error": learning.error,
        "pid": os.getpid(),
    })
