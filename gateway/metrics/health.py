"""``/health``: can the gateway do its work right now?

Healthy means: clamd answers PING (when the antivirus filter is in either side's chain), every
SMTP next hop accepts a connection (connect, greeting and EHLO, STARTTLS when configured, QUIT),
and every Maildir the gateway writes to (a Maildir next hop, the quarantine) takes a file. Each
probe runs under its own deadline, all at once; the answer lists what failed, one line each.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.adapters.clamd import ClamdClient
from gateway.delivery.maildir import ensure_maildir, unique_name
from gateway.delivery.nexthop import Upstream
from gateway.filters.antivirus import ClamavConfig

if TYPE_CHECKING:
    from gateway.assembly import Assembly
    from gateway.config import Config, ListenerConfig

__all__ = ["PROBE_SECONDS", "problems"]

# Each probe's deadline. The container's HEALTHCHECK waits 10 seconds for the whole answer.
PROBE_SECONDS = 5.0


async def _clamd(cfg: ClamavConfig, seconds: float) -> str | None:
    client = ClamdClient(cfg.addresses, cfg.timeout)
    names = ", ".join(str(a) for a in cfg.addresses)
    try:
        async with asyncio.timeout(seconds):
            # Each address gets its share of the deadline, so a hung first one leaves time
            # for the next.
            if await client.ping(wait=seconds / len(cfg.addresses)):
                return None
    except TimeoutError:
        pass
    return f"clamd: no answer to PING from {names} within {seconds:g} seconds"


async def _smtp(config: Config, side: str, listener: ListenerConfig,
                seconds: float) -> str | None:
    up: Upstream | None = None
    try:
        async with asyncio.timeout(seconds):
            up = Upstream(config, listener)
            await up.client.connect()
            await up.client.quit()
    except TimeoutError:
        return (f"{side} next hop {listener.deliver_to}: no answer within {seconds:g} "
                "seconds")
    except Exception as e:
        return f"{side} next hop {listener.deliver_to}: cannot be reached ({e})"
    finally:
        if up is not None:
            up.client.close()
    return None


def _write_probe(root: Path) -> None:
    """Create a file in the Maildir's tmp/ and remove it again (mail readers ignore tmp/)."""
    ensure_maildir(root)
    probe = root / "tmp" / f"health-{unique_name()}"
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, b"probe\n")
    finally:
        os.close(fd)
        probe.unlink(missing_ok=True)


async def _maildir(what: str, root: Path, seconds: float) -> str | None:
    try:
        async with asyncio.timeout(seconds):
            await asyncio.to_thread(_write_probe, root)
    except TimeoutError:
        return f"{what} {root}: not written within {seconds:g} seconds"
    except OSError as e:
        return f"{what} {root}: cannot be written ({e.strerror or e})"
    return None


async def problems(assembly: Assembly, seconds: float = PROBE_SECONDS) -> list[str]:
    """What stops the gateway from working now, one sentence each; empty when healthy."""
    config = assembly.config
    probes = []
    if any("antivirus" in p.names for p in assembly.pipelines.values()):
        probes.append(_clamd(config.section(ClamavConfig), seconds))
    hops: set[str] = set()
    for side in ("inbound", "outbound"):
        listener = config.listener(side)
        hop = listener.deliver_to
        if str(hop) in hops:
            continue  # both sides deliver to the same place: one probe
        hops.add(str(hop))
        if hop.kind == "smtp":
            probes.append(_smtp(config, side, listener, seconds))
        elif hop.path is not None:
            probes.append(_maildir(f"{side} mail folder", hop.path, seconds))
    probes.append(_maildir("quarantine folder", config.quarantine.path, seconds))
    found = await asyncio.gather(*probes)
    return [p for p in found if p is not None]
