"""Per-message state passed along the pipeline: one instance per SMTP transaction or release."""

from __future__ import annotations

import email.policy
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import EmailMessage
from email.parser import BytesParser

from gateway.mime.workers import in_worker
from gateway.policy import Side
from gateway.verdicts import Finding

__all__ = ["Envelope", "MessageContext", "new_id", "parse_message"]


def new_id() -> str:
    """The one id of a message: in the log, the audit line, the trace header, the quarantine
    file name, the digest and the clerk's page."""
    return secrets.token_hex(6)


def parse_message(data: bytes) -> EmailMessage:
    """Parse once with the SMTP policy; the result is an ``EmailMessage``."""
    msg = BytesParser(policy=email.policy.SMTP).parsebytes(data)
    assert isinstance(msg, EmailMessage)
    return msg


_FIELD_NAME = re.compile(rb"^([!-9;-~]+)[ \t]*:", re.M)


def _trace_fields_on_top(before: bytes, now: bytes) -> bool:
    """Whether ``now`` is ``before`` with header fields put on top that no check reads: the
    gateway's own record of what it did (``Authentication-Results``, ``X-...`` fields)."""
    if len(now) <= len(before) or not now.endswith(before):
        return False
    names = _FIELD_NAME.findall(now[: len(now) - len(before)])
    return bool(names) and all(n.lower() == b"authentication-results"
                               or n[:2].lower() == b"x-" for n in names)


@dataclass(frozen=True)
class Envelope:
    mail_from: str  # "" for the null sender <>
    rcpt_tos: tuple[str, ...]
    smtputf8: bool = False


@dataclass
class MessageContext:
    """Everything a filter may look at for one message.

    ``data`` is the message as it stands now (CRLF line endings), ``message`` is ``data`` parsed.
    A message is parsed once: the fields that checks put on top to record what they did
    (``Authentication-Results``, ``X-...``) are in ``data`` but not in ``message``; any other
    change to ``data`` is parsed anew. Filters do not change either: they return a report and
    the pipeline applies its change. ``findings`` holds what earlier steps found.
    """

    id: str
    side: Side
    envelope: Envelope
    data: bytes
    client_address: str = ""
    client_helo: str = ""
    auth_user: str | None = None
    received_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    findings: list[Finding] = field(default_factory=list)
    _message: EmailMessage | None = field(default=None, repr=False)

    @property
    def direction(self) -> Side:
        return self.side

    @property
    def message(self) -> EmailMessage:
        """The parsed message (parsed here when it is not yet): for code running in a worker
        thread. Code on the event loop awaits :meth:`parsed` instead."""
        if self._message is None:
            self._message = parse_message(self.data)
        return self._message

    async def parsed(self) -> EmailMessage:
        """The parsed message, parsed in a worker thread when it is not yet, so a large or
        intricate message never holds up the event loop."""
        if self._message is None:
            data = self.data
            msg = await in_worker(len(data), parse_message, data)
            if self.data is data:
                self._message = msg
            return msg
        return self._message

    def replace_data(self, data: bytes) -> None:
        if data is not self.data:
            if self._message is not None and not _trace_fields_on_top(self.data, data):
                self._message = None
            self.data = data

    @property
    def size(self) -> int:
        return len(self.data)
