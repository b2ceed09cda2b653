"""The clerk's daily digest and the daily purge."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from gateway.context import Envelope, MessageContext
from gateway.quarantine.digest import build_digest, next_run, purge_loop
from gateway.quarantine.store import HeldMessage, QuarantineStore
from tests.conftest import build_config
from tests.mailmaker import make_mail

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


def held(hours_ago: float, **kw) -> HeldMessage:
    base = dict(id=f"id{hours_ago}", received_at=NOW - timedelta(hours=hours_ago),
                direction="inbound", mail_from="x@y.example", rcpt_tos=("clerk@stanion-pc.gov.uk",),
                reasons=("A reason.",), client_address="192.0.2.1", auth_user="",
                subject="Hello", from_header="x@y.example", size=10)
    base.update(kw)
    return HeldMessage(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("now,at,expected", [
    (datetime(2026, 1, 1, 7, 0), "08:00", datetime(2026, 1, 1, 8, 0)),
    (datetime(2026, 1, 1, 8, 0), "08:00", datetime(2026, 1, 2, 8, 0)),
    (datetime(2026, 1, 1, 23, 59), "00:00", datetime(2026, 1, 2, 0, 0)),
])
def test_next_run(now, at, expected):
    assert next_run(now, at) == expected


def test_digest_sections_and_nothing_to_send(tmp_path):
    config = build_config(tmp_path, {"quarantine": {"digest_to": ["clerk@stanion-pc.gov.uk"]}})
    assert build_digest(config, [], NOW) is None
    msg = build_digest(config, [held(2, subject="New one"), held(50, subject="Old one")], NOW)
    assert msg is not None
    assert msg["Subject"] == "Mail held for review: 1 new, 2 in all"
    body = msg.get_content()
    assert body.index("New in the last 24 hours (1)") < body.index("New one")
    assert body.index("Still waiting from earlier (1)") < body.index("Old one")
    assert "Held mail is deleted after 30 days." in body
    no_one = build_config(tmp_path, {})
    assert build_digest(no_one, [held(1)], NOW) is None


async def test_purge_loop_removes_old_mail(tmp_path):
    config = build_config(tmp_path, {"quarantine": {"retention_days": 7}})
    store = QuarantineStore(tmp_path / "quarantine")
    store.hold(MessageContext(id="a", direction="inbound", envelope=Envelope("a@b.example", []),
                              data=make_mail(),
                              received_at=datetime.now(timezone.utc) - timedelta(days=8)), ("x",))
    keep = store.hold(MessageContext(id="b", direction="inbound",
                                     envelope=Envelope("a@b.example", []), data=make_mail()),
                      ("y",))
    passes: asyncio.Queue[int] = asyncio.Queue()
    task = asyncio.create_task(purge_loop(config, on_pass=passes.put_nowait))
    try:
        async with asyncio.timeout(10):
            assert await passes.get() == 1
    finally:
        task.cancel()
    assert [h.id for h in store.list()] == [keep]
