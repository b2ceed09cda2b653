"""Per-message state passed along the pipeline: one instance per SMTP transaction."""

from __future__ import annotations

import email.policy
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Literal

from gateway.verdicts import Finding

__all__ = ["Direction", "Envelope", "MessageContext", "parse_message"]

Direction = Literal["inbound", "outbound"]


def parse_message(data: bytes) -> EmailMessage:
    """Parse once with the SMTP policy; the result is an ``EmailMessage``."""
    msg = BytesParser(policy=email.policy.SMTP).parsebytes(data)
    assert isinstance(msg, EmailMessage)
    return msg


@dataclass
class Envelope:
    mail_from: str  # "" for the null sender <>
    rcpt_tos: list[str]
    smtputf8: bool = False


@dataclass
class MessageContext:
    """Everything a filter may look at for one message.

    ``data`` is the message as it stands now (CRLF line endings); ``message`` is ``data`` parsed.
    Filters do not change either: they return a verdict and the pipeline applies it.
    """

    id: str
    direction: Direction
    envelope: Envelope
    data: bytes
    client_address: str = ""
    client_helo: str = ""
    auth_user: str | None = None
    received_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    findings: list[Finding] = field(default_factory=list)
    # Short mails for council addresses (virus alerts, notices to a councillor) that the gateway
    # sends through the inbound next hop once the message itself has been dealt with.
    notices: list[EmailMessage] = field(default_factory=list)
    # Filter names to skip, e.g. a released message bypasses the junk filter.
    skip_filters: frozenset[str] = frozenset()
    _message: EmailMessage | None = field(default=None, repr=False)

    @property
    def message(self) -> EmailMessage:
        if self._message is None:
            self._message = parse_message(self.data)
        return self._message

    def replace_data(self, data: bytes) -> None:
        self.data = data
        self._message = None

    @property
    def size(self) -> int:
        return len(self.data)
