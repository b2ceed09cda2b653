"""Short plain-English mails the gateway itself sends to council addresses (alerts, notices)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from gateway.config import Config

__all__ = ["make_notice", "send_notices"]

log = logging.getLogger(__name__)


def make_notice(config: Config, to: str | Iterable[str], subject: str, body: str) -> EmailMessage:
    recipients = [to] if isinstance(to, str) else list(to)
    domain = config.gateway.council_domains[0]
    msg = EmailMessage()
    msg["From"] = f"Council mail gateway <postmaster@{domain}>"
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now().astimezone())
    msg["Message-ID"] = make_msgid(domain=config.gateway.hostname)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
    msg.set_content(body)
    return msg


async def send_notices(config: Config, msgs: Iterable[EmailMessage]) -> None:
    """Deliver each notice via the inbound next hop with the null sender; failures are logged."""
    from gateway.delivery.nexthop import deliver

    for msg in msgs:
        rcpts = [a.strip() for a in str(msg["To"]).split(",") if a.strip()]
        rcpts = [a[a.find("<") + 1:a.find(">")] if "<" in a else a for a in rcpts]
        data = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
        result = await deliver(config, "inbound", "", rcpts, data)
        if not result.ok:
            log.error("notice %r to %s not delivered: %s", str(msg["Subject"]), rcpts, result.reply)
