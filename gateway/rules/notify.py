"""Telling a councillor what the gateway noticed in a message they sent."""

from __future__ import annotations

import textwrap

from gateway.config import Config
from gateway.context import MessageContext
from gateway.delivery.notices import make_notice

__all__ = ["OUTCOME", "notify_sender", "wrap"]

# The first paragraph of a notice: what happened to the message.
OUTCOME = {
    "flag": "Your message was delivered, marked for the clerk's attention.",
    "hold": "Your message has NOT been sent yet: it is held for the clerk to review, who will "
            "release or delete it.",
}


def notify_sender(config: Config, ctx: MessageContext, action: str, subject: str,
                  body: str) -> bool:
    """Queue a notice to the message's sender; only for council senders and flag/hold.

    A rejected message needs no notice: the sender's mail program shows the refusal itself.
    """
    sender = ctx.envelope.mail_from
    if action not in OUTCOME or not sender or not config.gateway.is_council_address(sender):
        return False
    text = wrap(f"{OUTCOME[action]}\n\n{body}")
    ctx.notices.append(make_notice(config, sender, subject, text))
    return True


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
