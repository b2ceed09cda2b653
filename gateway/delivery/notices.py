"""Short plain-English mails the gateway itself sends to council addresses (alerts, notices)."""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Iterable
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from gateway.config import Config
from gateway.context import MessageContext
from gateway.delivery.nexthop import deliver
from gateway.verdicts import Action, Notice

__all__ = ["compose", "make_notice", "send_notices", "wrap"]

log = logging.getLogger(__name__)


def wrap(text: str, width: int = 72) -> str:
    """Long lines filled to ``width``; list items keep their hanging indent."""
    out = []
    for line in text.split("\n"):
        if len(line) <= width:
            out.append(line)
        elif line.startswith("  - "):
            out.append(textwrap.fill(line, width, subsequent_indent="    "))
        else:
            out.append(textwrap.fill(line, width))
    return "\n".join(out)


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


def compose(config: Config, notice: Notice, action: Action,
            ctx: MessageContext) -> EmailMessage | None:
    """The mail for ``notice`` now that the message's fate is ``action``; None when the notice
    does not apply to that action, or would go to anyone but a council address."""
    body = notice.for_action(action)
    if body is None:
        return None
    to = notice.to
    if not to:
        sender = ctx.envelope.mail_from
        if not sender or not config.gateway.is_council_address(sender):
            return None
        to = (sender,)
    return make_notice(config, to, notice.subject, wrap(body))


async def send_notices(config: Config, msgs: Iterable[EmailMessage]) -> None:
    """Deliver each notice via the inbound next hop with the null sender; failures are logged."""
    for msg in msgs:
        rcpts = [a.strip() for a in str(msg["To"]).split(",") if a.strip()]
        rcpts = [a[a.find("<") + 1:a.find(">")] if "<" in a else a for a in rcpts]
        data = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
        try:
            result = await deliver(config, "inbound", "", rcpts, data)
        except Exception:
            log.exception("notice %r to %s not delivered", str(msg["Subject"]), rcpts)
            continue
        if not result.ok:
            log.error("notice %r to %s not delivered: %s", str(msg["Subject"]), rcpts, result.reply)
