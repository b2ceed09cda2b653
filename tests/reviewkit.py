"""Shared set-up for the review page tests: held mail put in place, a logged-in HTTP client."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

import gateway.review.settings  # noqa: F401  (registers the [review] section before loading)
from gateway.context import Envelope, MessageContext
from gateway.quarantine.store import QuarantineStore
from gateway.review.auth import hash_password, write_password_hash
from tests.junkkit import CLERK

PASSWORD = "parish pump 1894"
_hash_cache: dict[str, str] = {}


def review_overrides(tmp_path: Path, **review: Any) -> dict[str, Any]:
    return {"review": {"password_file": str(tmp_path / "review-password"), **review}}


def set_password(tmp_path: Path, password: str = PASSWORD) -> None:
    if password not in _hash_cache:
        _hash_cache[password] = hash_password(password)
    write_password_hash(tmp_path / "review-password", _hash_cache[password])


def hold(store_path: Path, data: bytes, *, mail_from: str = "pat@resident.example",
         rcpts: tuple[str, ...] = (CLERK,), reasons: tuple[str, ...] = ("Held for a test",),
         minutes_ago: float = 0) -> str:
    """Put one message in the quarantine as the gateway would; returns its id."""
    ctx = MessageContext(
        id="test", direction="inbound", envelope=Envelope(mail_from, list(rcpts)), data=data,
        client_address="127.0.0.1", client_helo="mx.sender.example",
        received_at=datetime.now(timezone.utc) - timedelta(minutes=minutes_ago))
    return QuarantineStore(store_path).hold(ctx, reasons)


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1)


async def log_in(client: httpx.AsyncClient, password: str = PASSWORD) -> httpx.Response:
    page = await client.get("/login")
    return await client.post("/login", data={"csrf": csrf_of(page.text), "password": password,
                                             "next": "/"})
