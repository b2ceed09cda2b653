"""The clerk's daily digest and the daily purge."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timezone
from pathlib import Path

import pytest

from gateway.assembly import KINDS
from gateway.config import Config
from gateway.policy import Policy, PolicyConfig
from gateway.quarantine.digest import Week, build_digest
from gateway.quarantine.jobs import next_run, purge_loop
from gateway.quarantine.store import HeldMessage, QuarantineStore
from tests.conftest import build_config
from tests.mailmaker import make_mail
from tests.reviewkit import hold

DAY = 24 * 60  # minutes


def policy_of(config: Config) -> Policy:
    return Policy(KINDS, config.section(PolicyConfig))


def held_now(config: Config) -> list[HeldMessage]:
    return QuarantineStore(config.quarantine.path).list()


@pytest.mark.parametrize("now,at,expected", [
    (datetime(2026, 1, 1, 7, 0), "08:00", datetime(2026, 1, 1, 8, 0)),
    (datetime(2026, 1, 1, 8, 0), "08:00", datetime(2026, 1, 2, 8, 0)),
    (datetime(2026, 1, 1, 23, 59), "00:00", datetime(2026, 1, 2, 0, 0)),
])
def test_next_run(now: datetime, at: str, expected: datetime) -> None:
    assert next_run(now, at) == expected


def test_digest_sections_and_nothing_to_send(tmp_path: Path) -> None:
    config = build_config(tmp_path, {"quarantine": {"digest_to": ["clerk@stanion-pc.gov.uk"]}})
    policy = policy_of(config)
    now = datetime.now(timezone.utc)
    assert build_digest(config, policy, [], Week(), now) is None
    hold(config.quarantine.path, make_mail(subject="New one"), reasons=("A new reason.",),
         minutes_ago=2 * 60)
    hold(config.quarantine.path, make_mail(subject="Old one"), reasons=("An old reason.",),
         minutes_ago=50 * 60)
    week = Week(delivered=12, held=2, refused=1)
    msg = build_digest(config, policy, held_now(config), week, now)
    assert msg is not None
    assert msg["Subject"] == "Mail held for review: 1 new, 2 in all"
    body = msg.get_content()
    assert body.index("New in the last 24 hours (1)") < body.index("New one") \
        < body.index("A new reason.")
    assert body.index("Still waiting from earlier (1)") < body.index("Old one") \
        < body.index("An old reason.")
    assert "Held mail is deleted after 30 days." in body
    assert ("12 delivered, 2 held for review, 1 refused, 0 turned away for now "
            "(the sender's server tries again)") in body
    no_one = build_config(tmp_path, {})
    assert build_digest(no_one, policy_of(no_one), held_now(config), week, now) is None


def test_only_old_mail_is_still_waiting(tmp_path: Path) -> None:
    config = build_config(tmp_path, {"quarantine": {"digest_to": ["clerk@stanion-pc.gov.uk"],
                                                    "retention_days": 7}})
    hold(config.quarantine.path, make_mail(subject="Old one"), minutes_ago=3 * DAY)
    msg = build_digest(config, policy_of(config), held_now(config), Week(),
                       datetime.now(timezone.utc))
    assert msg is not None
    assert msg["Subject"] == "Mail held for review: 1 waiting"
    body = msg.get_content()
    assert "New in the last 24 hours" not in body and "Still waiting from earlier (1)" in body
    assert "Held mail is deleted after 7 days." in body


async def test_purge_loop_removes_old_mail(tmp_path: Path) -> None:
    config = build_config(tmp_path, {"quarantine": {"retention_days": 7}})
    hold(config.quarantine.path, make_mail(), minutes_ago=8 * DAY)
    keep = hold(config.quarantine.path, make_mail())
    passes: asyncio.Queue[int] = asyncio.Queue()
    task = asyncio.create_task(purge_loop(lambda: config, on_pass=passes.put_nowait))
    try:
        async with asyncio.timeout(10):
            assert await passes.get() == 1
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert [h.id for h in held_now(config)] == [keep]


async def test_purge_loop_follows_the_live_config(tmp_path: Path) -> None:
    # A reload that shortens retention_days applies from the next pass.
    month = build_config(tmp_path, {"quarantine": {"retention_days": 30}})
    week = build_config(tmp_path, {"quarantine": {"retention_days": 7}})
    hold(month.quarantine.path, make_mail(), minutes_ago=8 * DAY)
    keep = hold(month.quarantine.path, make_mail(), minutes_ago=6 * DAY)
    live = [month]
    passes: asyncio.Queue[int] = asyncio.Queue()

    def after_pass(removed: int) -> None:
        live[0] = week
        passes.put_nowait(removed)

    task = asyncio.create_task(purge_loop(lambda: live[0], every=0, on_pass=after_pass))
    try:
        async with asyncio.timeout(10):
            assert await passes.get() == 0  # nothing is 30 days old
            assert await passes.get() == 1  # the 8-day-old one, under the reloaded config
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert [h.id for h in held_now(month)] == [keep]
