"""The clerk's daily digest of held mail, and the daily purge of old held mail.

The digest lists, in plain English, everything the quarantine holds: who sent it, every recipient
(a message to several councillors is one entry naming them all), the subject and why it was held.
It is sent with the null envelope sender (no bounces, no auto-replies) through the inbound next
hop to ``[quarantine] digest_to`` at ``digest_time`` (the machine's local time).

``run`` starts :func:`quarantine_jobs` (or :func:`digest_loop` and :func:`purge_loop`) beside the
listeners.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from typing import TYPE_CHECKING

from gateway.config import Config
from gateway.delivery.nexthop import DeliveryResult, deliver
from gateway.delivery.notices import make_notice
from gateway.quarantine.store import HeldMessage, QuarantineStore
from gateway.quarantine.view import clean_text
from gateway.review.settings import review_config

if TYPE_CHECKING:
    from gateway.smtp.server import Gateway

__all__ = ["build_digest", "digest_loop", "next_run", "purge_loop", "quarantine_jobs",
           "send_digest"]

log = logging.getLogger(__name__)

ConfigSource = Config | Callable[[], Config]


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(clean_text(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _entry(n: int, h: HeldMessage, page_url: str = "") -> list[str]:
    when = h.received_at.astimezone().strftime("%a %d %b %Y %H:%M")
    lines = [
        f"{n}. From:    {_one_line(h.from_header) or '(no From: line)'}"
        + (f"  (sent by {_one_line(h.mail_from)})" if h.mail_from
           and h.mail_from.lower() not in h.from_header.lower() else ""),
        f"   To:      {_one_line(', '.join(h.rcpt_tos), 1000)}",
        f"   Subject: {_one_line(h.subject) or '(no subject)'}",
        f"   Held:    {when}",
        "   Why:",
    ]
    lines += [f"     - {_one_line(r, 400)}" for r in h.reasons] or ["     - (no reason recorded)"]
    lines.append(f"   Id:      {h.id}")
    if page_url:
        lines.append(f"   Review:  {page_url}/message/{h.id}")
    return lines


def build_digest(config: Config, held: list[HeldMessage],
                 now: datetime | None = None) -> EmailMessage | None:
    """The digest mail for what is held now; None when nothing is held or nobody gets it."""
    if not held or not config.quarantine.digest_to:
        return None
    now = now or datetime.now(timezone.utc)
    since = now - timedelta(days=1)
    new = [h for h in held if h.received_at >= since]
    older = [h for h in held if h.received_at < since]
    count = len(held)
    body = [
        "Hello,",
        "",
        f"The council's mail gateway is holding {count} message{'s' if count != 1 else ''} "
        "for you to review.",
        "Nothing in them has been opened. Each was held for the reasons given below.",
        f"Held mail is deleted after {config.quarantine.retention_days} days.",
        "",
    ]
    page_url = review_config(config).public_url
    n = 0
    for title, group in ((f"New in the last 24 hours ({len(new)})", new),
                         (f"Still waiting from earlier ({len(older)})", older)):
        if not group:
            continue
        body += [title, "-" * len(title), ""]
        for h in group:
            n += 1
            body += _entry(n, h, page_url) + [""]
    if page_url:
        body += [f"Review them in your browser: {page_url}/", ""]
    body += [
        "What you can do (on the gateway machine):",
        "  council-gateway quarantine show ID       read one safely",
        "  council-gateway quarantine release ID    deliver it (add --trust-sender to trust them)",
        "  council-gateway quarantine delete ID     delete it",
        "  council-gateway quarantine block-sender ID   always hold this sender's mail",
        "",
    ]
    subject = (f"Mail held for review: {len(new)} new, {count} in all"
               if new else f"Mail held for review: {count} waiting")
    return make_notice(config, config.quarantine.digest_to, subject, "\n".join(body))


async def send_digest(config: Config, now: datetime | None = None) -> DeliveryResult | None:
    """Build and send the digest now; None when there was nothing to send."""
    store = QuarantineStore(config.quarantine.path)
    held = await asyncio.to_thread(store.list)
    msg = build_digest(config, held, now)
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


def next_run(now: datetime, at: str) -> datetime:
    """The next time of day ``at`` ("08:00") after ``now`` (an aware local datetime)."""
    hour, minute = (int(x) for x in at.split(":"))
    run = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return run if run > now else run + timedelta(days=1)


def _get(source: ConfigSource) -> Config:
    return source() if callable(source) else source


async def digest_loop(config: ConfigSource) -> None:
    """Send the digest every day at ``digest_time``, until cancelled. Errors are logged."""
    while True:
        cfg = _get(config)
        now = datetime.now().astimezone()
        await asyncio.sleep((next_run(now, cfg.quarantine.digest_time) - now).total_seconds())
        try:
            await send_digest(_get(config))
        except Exception:
            log.exception("the daily digest failed")


async def purge_loop(config: ConfigSource, every: float = 86400.0,
                     on_pass: Callable[[int], None] | None = None) -> None:
    """Remove held mail older than ``retention_days`` now and then once a day, until cancelled.

    ``on_pass`` is told how many were removed after each pass.
    """
    while True:
        removed = 0
        cfg = _get(config)
        store = QuarantineStore(cfg.quarantine.path)
        try:
            removed = await asyncio.to_thread(store.purge, cfg.quarantine.retention_days)
            if removed:
                log.info("purged %d held message(s) older than %d days", removed,
                         cfg.quarantine.retention_days)
        except OSError as e:
            log.error("quarantine purge failed: %s", e)
        if on_pass is not None:
            on_pass(removed)
        await asyncio.sleep(every)


async def quarantine_jobs(gateway: Gateway) -> None:
    """Both loops, following the gateway's live (reloadable) config; for ``run``'s job list."""
    def live() -> Config:
        return gateway.config

    await asyncio.gather(digest_loop(live), purge_loop(live))
