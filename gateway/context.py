"""Per-message state passed along the pipeline: one instance per SMTP transaction or release."""

from __future__ import annotations

import email.policy
import functools
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.feedparser import FeedParser
from email.message import EmailMessage
from typing import Any, overload

from gateway.content import CHUNK, Content
from gateway.mime.workers import in_worker
from gateway.policy import Side
from gateway.verdicts import Finding

__all__ = ["Envelope", "MessageContext", "new_id", "parse_message"]


def new_id() -> str:
    """The one id of a message: in the log, the audit line, the trace header, the quarantine
    file name, the digest and the clerk's page."""
    return secrets.token_hex(6)


class _ReadingPolicy(email.policy.EmailPolicy):
    """``policy.SMTP``, with each header field's parsed form remembered by its name and value.

    ``EmailMessage.get()`` parses the field anew on every call, and the checks (and the email
    package's own walk over the parts) ask for ``Content-Type`` and friends a dozen times a
    message: a third of the checks' time on ordinary mail. Parsed fields are immutable, and the
    same values recur from message to message, so they are shared. Long values (rare, and a
    sender's to choose) are kept only a little while, few at a time: long enough for the
    checks of one message to read each once (a From of 8 KiB can take the parser half a
    second); the longest, only ever read as plain text, are not kept."""

    def header_fetch_parse(self, name: str, value: str) -> Any:
        if hasattr(value, "name") or len(value) > 8 * 1024:
            return super().header_fetch_parse(name, value)
        if len(value) > 512:
            return _parsed_long_field(self, name, value)
        return _parsed_field(self, name, value)


@functools.lru_cache(maxsize=4096)
def _parsed_field(policy: email.policy.EmailPolicy, name: str, value: str) -> Any:
    return email.policy.EmailPolicy.header_fetch_parse(policy, name, value)


@functools.lru_cache(maxsize=16)
def _parsed_long_field(policy: email.policy.EmailPolicy, name: str, value: str) -> Any:
    return email.policy.EmailPolicy.header_fetch_parse(policy, name, value)


READING_POLICY = _ReadingPolicy(linesep="\r\n")  # what policy.SMTP is


def parse_message(data: bytes | Content) -> EmailMessage:
    """Parse once with the SMTP policy; the result is an ``EmailMessage``.

    Fed a piece at a time: ``BytesParser.parsebytes`` decodes the whole message into one str
    and copies that into a ``StringIO`` (four bytes a character), about five times the
    message's size at once."""
    parser = FeedParser(policy=READING_POLICY)
    for chunk in Content.of(data).chunks(CHUNK):
        parser.feed(str(chunk, "ascii", "surrogateescape"))
    msg = parser.close()
    assert isinstance(msg, EmailMessage)
    return msg


_FIELD_NAME = re.compile(rb"^([!-9;-~]+)[ \t]*:", re.M)


def _trace_fields_on_top(before: Content, now: Content) -> bool:
    """Whether ``now`` is ``before`` with header fields put on top that no check reads: the
    gateway's own record of what it did (``Authentication-Results``, ``X-...`` fields)."""
    added = now.added_on_top_of(before)
    if not added:
        return False
    names = _FIELD_NAME.findall(added)
    return bool(names) and all(n.lower() == b"authentication-results"
                               or n[:2].lower() == b"x-" for n in names)


class _Data:
    """``ctx.data``: the message as one ``bytes``, joined from ``ctx.content`` the first time
    it is asked for after a change (and kept so, so the pieces are not held twice). It may be
    given as a :class:`Content`."""

    @overload
    def __get__(self, obj: None, owner: Any) -> _Data: ...

    @overload
    def __get__(self, obj: MessageContext, owner: Any) -> bytes: ...

    def __get__(self, obj: MessageContext | None, owner: Any) -> bytes | _Data:
        if obj is None:
            raise AttributeError("data")  # so the dataclass field has no default
        content = obj.content
        if not content.whole:
            obj.content = content = Content(content.joined())
        return content.buf

    def __set__(self, obj: MessageContext, value: bytes | Content) -> None:
        obj.content = Content.of(value)


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
    the pipeline applies its change. ``findings`` holds what earlier steps found. ``content`` is
    ``data`` as its pieces (the buffer from DATA and header bytes put on top since), for code
    that can take them without one joined copy: :meth:`Content.chunks`, :attr:`size`.
    """

    id: str
    side: Side
    envelope: Envelope
    data: _Data = _Data()
    client_address: str = ""
    client_helo: str = ""
    auth_user: str | None = None
    received_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    findings: list[Finding] = field(default_factory=list)
    _message: EmailMessage | None = field(default=None, repr=False)
    content: Content = field(init=False, repr=False)
    # What checks worked out ahead, in the pipeline's one worker visit: name -> (the message
    # it was worked out on, the result or what it raised).
    _prepared: dict[str, tuple[Content, object]] = field(default_factory=dict, repr=False)

    @property
    def direction(self) -> Side:
        return self.side

    @property
    def message(self) -> EmailMessage:
        """The parsed message (parsed here when it is not yet): for code running in a worker
        thread. Code on the event loop awaits :meth:`parsed` instead."""
        if self._message is None:
            self._message = parse_message(self.content)
        return self._message

    async def parsed(self) -> EmailMessage:
        """The parsed message, parsed in a worker thread when it is not yet, so a large or
        intricate message never holds up the event loop."""
        if self._message is None:
            content = self.content  # its pieces: parsing needs no joined copy
            msg = await in_worker(content.size, parse_message, content)
            if self.content is content:
                self._message = msg
            return msg
        return self._message

    def keep_prepared(self, name: str, content: Content, result: object) -> None:
        self._prepared[name] = (content, result)

    def prepared(self, name: str) -> Any:
        """What check ``name`` worked out ahead on the message as it still is (fields the
        gateway put on top since aside), or None: nothing was, or the message has changed.
        Raises what working it out raised, so a fault is met where it was before. Given once."""
        hit = self._prepared.pop(name, None)
        if hit is None:
            return None
        content, result = hit
        if content is not self.content and not _trace_fields_on_top(content, self.content):
            return None
        if isinstance(result, Exception):
            raise result
        return result

    def replace_data(self, data: bytes) -> None:
        if data is not self.content.buf or not self.content.whole:
            self.replace_content(Content(data))

    def replace_content(self, content: Content) -> None:
        if content is not self.content:
            if self._message is not None and not _trace_fields_on_top(self.content, content):
                self._message = None
            self.content = content

    @property
    def size(self) -> int:
        return self.content.size
