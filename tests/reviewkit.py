"""Shared set-up for the review page tests: held mail put in place, a logged-in HTTP client."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

from gateway.quarantine.store import HeldMessage, QuarantineStore
from gateway.review.auth import hash_password, write_password_hash
from gateway.verdicts import Finding, Severity
from tests.junkkit import CLERK

PASSWORD = "parish pump 1894"
_hash_cache: dict[str, str] = {}


def review_overrides(tmp_path: Path, **review: Any) -> dict[str, Any]:
    # The tests talk plain http to loopback, where httpx (like some browsers) does not send a
    # Secure cookie: so secure_cookies = false unless a test asks for it.
    return {"review": {"password_file": str(tmp_path / "review-password"),
                       "secure_cookies": False, **review}}


def set_password(tmp_path: Path, password: str = PASSWORD) -> None:
    if password not in _hash_cache:
        _hash_cache[password] = hash_password(password)
    write_password_hash(tmp_path / "review-password", _hash_cache[password])


_counter = iter(range(10**9))


def junk_finding(text: str = "Held for a test") -> Finding:
    return Finding("junk", "junk", Severity.MEDIUM, text)


def hold(store_path: Path, data: bytes, *, mail_from: str = "pat@resident.example",
         rcpts: tuple[str, ...] = (CLERK,), reasons: tuple[str, ...] = ("Held for a test",),
         findings: tuple[Finding, ...] | None = None, held_by: str = "junk",
         direction: str = "inbound", minutes_ago: float = 0) -> str:
    """Put one message in the quarantine as the gateway would; returns its id. By default it
    was held by the junk check, with one ``junk`` finding per reason."""
    if findings is None:
        findings = tuple(junk_finding(r) for r in reasons)
    held = HeldMessage(
        id=f"t{next(_counter):011d}", received_at=datetime.now(timezone.utc)
        - timedelta(minutes=minutes_ago), direction=direction, mail_from=mail_from,
        rcpt_tos=rcpts, reasons=reasons, client_address="127.0.0.1", auth_user="",
        client_helo="mx.sender.example", held_by=held_by, findings=findings)
    return QuarantineStore(store_path).hold(held, data)


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1)


async def log_in(client: httpx.AsyncClient, password: str = PASSWORD) -> httpx.Response:
    page = await client.get("/login")
    return await client.post("/login", data={"csrf": csrf_of(page.text), "password": password,
                                             "next": "/"})
