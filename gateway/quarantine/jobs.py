"""The quarantine's background jobs: the daily digest and the daily purge of old held mail.

Both follow the gateway's live assembly, so a reloaded config applies from their next pass.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from gateway.config import Config
from gateway.quarantine.digest import send_digest
from gateway.quarantine.store import QuarantineStore

if TYPE_CHECKING:
    from gateway.assembly import Assembly
    from gateway.smtp.server import Gateway

__all__ = ["digest_job", "digest_loop", "next_run", "purge_job", "purge_loop"]

log = logging.getLogger(__name__)


def next_run(now: datetime, at: str) -> datetime:
    """The next time of day ``at`` ("08:00") after ``now`` (an aware local datetime)."""
    hour, minute = (int(x) for x in at.split(":"))
    run = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return run if run > now else run + timedelta(days=1)


async def digest_loop(live: Callable[[], Assembly]) -> None:
    """Send the digest every day at ``digest_time``, until cancelled. Errors are logged."""
    while True:
        now = datetime.now().astimezone()
        await asyncio.sleep((next_run(now, live().config.quarantine.digest_time)
                             - now).total_seconds())
        try:
            current = live()
            await send_digest(current.config, current.policy)
        except Exception:
            log.exception("the daily digest failed")


async def purge_loop(live: Callable[[], Config], every: float = 86400.0,
                     on_pass: Callable[[int], None] | None = None) -> None:
    """Remove held mail older than ``retention_days`` now and then once a day, until cancelled.

    ``on_pass`` is told how many were removed after each pass.
    """
    while True:
        removed = 0
        cfg = live()
        store = QuarantineStore(cfg.quarantine.path)
        try:
            removed = await asyncio.to_thread(store.purge, cfg.quarantine.retention_days)
            if removed:
                log.info("purged %d held message(s) older than %d days", removed,
                         cfg.quarantine.retention_days)
        except OSError as e:
            log.error("quarantine purge failed: %s", e)
        if on_pass is not None:
            on_pass(removed)
        await asyncio.sleep(every)


async def digest_job(gateway: Gateway) -> None:
    await digest_loop(lambda: gateway.assembly)


async def purge_job(gateway: Gateway) -> None:
    await purge_loop(lambda: gateway.config)
