"""How the clerk's page is drawn: templates, the security headers on every response, and the
wording of each decision's confirmation.

Message content is hostile: it reaches the page only through Jinja2's autoescaping, after
:func:`gateway.rules.wording.show_hidden` has made control and bidi-override characters visible.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.quarantine.store import HeldMessage
from gateway.rules.wording import human_size, show_hidden

__all__ = ["CONFIRM", "CSP", "Confirm", "SecurityHeaders", "environment", "matches", "safe"]

HERE = Path(__file__).parent
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), interest-cohort=()"),
]


@dataclass(frozen=True)
class Confirm:
    """The confirmation page of one decision."""

    title: str  # "Release this message?"
    explain: str  # what will happen, in plain English; {sender} is filled in
    button: str  # "Yes, release it"
    bulk: bool = False
    releases: bool = False  # passes the message on (so only for what may be released)


CONFIRM: dict[str, Confirm] = {
    "release": Confirm(
        "Release this message?",
        "The checks it has not been through yet will look at it, then it will be delivered to "
        "its recipients, with the council's footer and signature if it is going out. What "
        "held it will not hold it again.",
        "Yes, release it", releases=True),
    "release_and_trust": Confirm(
        "Release this message and trust the sender?",
        "It will be delivered to its recipients as with Release, and {sender} will be added to "
        "the known senders, so their mail is no longer held just because the council does not "
        "know them.",
        "Yes, release it and trust the sender", releases=True),
    "block_sender": Confirm(
        "Block this sender?",
        "Mail from {sender} will always be held from now on, and this message will be deleted.",
        "Yes, block the sender"),
    "delete": Confirm(
        "Delete this message?",
        "It will be deleted for good. Nobody will receive it, and this cannot be undone.",
        "Yes, delete it", bulk=True),
}

_SURROGATES = re.compile("[\ud800-\udfff]")


def safe(value: Any) -> Any:
    """Every value written into a page: visible control characters, no lone surrogates."""
    if isinstance(value, str):
        return show_hidden(_SURROGATES.sub("\ufffd", value))
    return value


def when(dt: datetime) -> str:
    return dt.astimezone().strftime("%a %d %b %Y, %H:%M")


def matches(h: HeldMessage, query: str) -> bool:
    hay = " ".join((h.from_header, h.mail_from, " ".join(h.rcpt_tos), h.subject,
                    " ".join(h.reasons))).casefold()
    return all(word in hay for word in query.casefold().split())


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True,
                      undefined=StrictUndefined, finalize=safe, trim_blocks=True,
                      lstrip_blocks=True)
    env.filters.update(when=when, size=human_size)
    return env


class SecurityHeaders:
    """Adds the CSP and friends to every response, and forbids caching of pages."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += SECURITY_HEADERS
                if not is_static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
