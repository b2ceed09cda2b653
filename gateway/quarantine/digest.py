"""The clerk's daily digest: this week in numbers, then everything the quarantine holds.

In plain English and without commands to type: for each held message who sent it, every
recipient (a message to several councillors is one entry naming them all), the subject, how
serious it looks, what to do and why it was held; and, from the audit log, how many messages
were delivered, held and refused in the last seven days. It is sent with the null envelope sender
(no bounces, no auto-replies) through the inbound next hop to ``[quarantine] digest_to``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

from gateway.config import Config
from gateway.delivery.nexthop import DeliveryResult, deliver
from gateway.delivery.notices import make_notice
from gateway.policy import Policy
from gateway.quarantine.explain import explain
from gateway.quarantine.store import HeldMessage, QuarantineStore
from gateway.review.settings import ReviewConfig
from gateway.rules.wording import one_line

__all__ = ["Week", "build_digest", "send_digest", "week_in_numbers"]

log = logging.getLogger(__name__)

# The audit log is read from its end; a council's week is far less than this.
_AUDIT_TAIL = 64 * 1024 * 1024


class Week(Counter[str]):
    """Messages of the last seven days by what was done: delivered, held, refused, deferred."""


_WORDS = {"deliver": "delivered", "tag": "delivered", "hold": "held", "quarantine": "held",
          "refuse": "refused", "reject": "refused", "tempfail": "deferred"}


def week_in_numbers(audit_log: Path, now: datetime) -> Week:
    """Count the audit log's message lines of the seven days before ``now``."""
    since = now - timedelta(days=7)
    week = Week()
    try:
        with open(audit_log, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - _AUDIT_TAIL))
            lines = f.read().splitlines()
    except OSError:
        return week
    for raw in lines:
        try:
            record = json.loads(raw)
            when = datetime.fromisoformat(record["time"])
        except (ValueError, KeyError, TypeError):
            continue
        if record.get("event") == "message" and when >= since:
            week[_WORDS.get(str(record.get("verdict")), "other")] += 1
    return week


def _entry(n: int, policy: Policy, h: HeldMessage, page_url: str) -> list[str]:
    why = explain(policy, h)
    when = h.received_at.astimezone().strftime("%a %d %b %Y %H:%M")
    sender = one_line(h.from_header) or "(no From: line)"
    if h.mail_from and h.mail_from.lower() not in h.from_header.lower():
        sender += f"  (sent by {one_line(h.mail_from)})"
    lines = [
        f"{n}. {why.label.upper()}",
        f"   From:    {sender}",
        f"   To:      {one_line(', '.join(h.rcpt_tos), 1000)}",
        f"   Subject: {one_line(h.subject) or '(no subject)'}",
        f"   Held:    {when}",
        "   Why:",
        *(f"     - {r}" for r in why.reasons),
        f"   What to do: {why.why_not or why.advice}",
        f"   Id:      {h.id}",
    ]
    if page_url:
        lines.append(f"   Review:  {page_url}/message/{h.id}")
    return lines


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def build_digest(config: Config, policy: Policy, held: list[HeldMessage], week: Week,
                 now: datetime | None = None) -> EmailMessage | None:
    """The digest mail for what is held now; None when nothing is held or nobody gets it."""
    if not held or not config.quarantine.digest_to:
        return None
    now = now or datetime.now(timezone.utc)
    since = now - timedelta(days=1)
    new = [h for h in held if h.received_at >= since]
    older = [h for h in held if h.received_at < since]
    body = [
        "Hello,",
        "",
        f"The council's mail gateway is holding {_plural(len(held), 'message')} for you to "
        "review. Nothing in them has been opened. Each was held for the reasons given below.",
        f"Held mail is deleted after {config.quarantine.retention_days} days.",
        "",
        "The last seven days in numbers:",
        f"  {week['delivered']} delivered, {week['held']} held for review, "
        f"{week['refused']} refused, {week['deferred']} turned away for now "
        "(the sender's server tries again).",
        "",
    ]
    page_url = config.section(ReviewConfig).public_url
    n = 0
    for title, group in ((f"New in the last 24 hours ({len(new)})", new),
                         (f"Still waiting from earlier ({len(older)})", older)):
        if not group:
            continue
        body += [title, "-" * len(title), ""]
        for h in group:
            n += 1
            body += _entry(n, policy, h, page_url) + [""]
    if page_url:
        body += [f"Review them in your browser: {page_url}/", ""]
    else:
        body += ["Review them on the clerk's page, or ask the IT volunteer to help.", ""]
    subject = (f"Mail held for review: {len(new)} new, {len(held)} in all"
               if new else f"Mail held for review: {len(held)} waiting")
    return make_notice(config, config.quarantine.digest_to, subject, "\n".join(body))


async def send_digest(config: Config, policy: Policy,
                      now: datetime | None = None) -> DeliveryResult | None:
    """Build and send the digest now; None when there was nothing to send."""
    now = now or datetime.now(timezone.utc)
    store = QuarantineStore(config.quarantine.path)
    held = await asyncio.to_thread(store.list)
    week = await asyncio.to_thread(week_in_numbers, config.gateway.audit_log, now)
    msg = build_digest(config, policy, held, week, now)
    if msg is None:
        return None
    data = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
    result = await deliver(config, "inbound", "", list(config.quarantine.digest_to), data)
    if result.ok:
        log.info("digest sent to %s (%d held)", ",".join(config.quarantine.digest_to), len(held))
    else:
        log.error("digest to %s not delivered: %s", ",".join(config.quarantine.digest_to),
                  result.reply)
    return result
