"""The time virus and attachment checks add to a 50 KB and a 10 MB message.

Two views, both with a real clamd (project test signatures):
1. the two filters alone (antivirus, attachments), as the pipeline runs them;
2. a whole SMTP transaction through the real inbound listener, with and without the two
   filters, delivering into a Maildir: the difference is what a sender waits extra.
Figures go to docs/benchmarks.md.

    python -m bench.scan_overhead
"""

from __future__ import annotations

import asyncio
import logging
import os
import smtplib
import statistics
import tempfile
import time
from pathlib import Path

import tomli_w

from bench._clamd import bench_clamd
from gateway.assembly import BY_NAME, assemble, load_config
from gateway.config import Config
from gateway.context import Envelope, MessageContext
from gateway.pipeline import Pipeline
from gateway.smtp.server import Gateway
from gateway.verdicts import Action
from tests import samples

ROUNDS = 9
SENDER, RCPT = "resident@example.org", "clerk@stanion-pc.gov.uk"


def message_of(total: int) -> bytes:
    # A PDF attachment padded with random bytes: base64 makes it 4/3 larger on the wire.
    attachment = samples.pdf() + os.urandom(max(0, total * 3 // 4 - 2000))
    return samples.message(("report.pdf", "application/pdf", attachment))


def config_for(tmp: Path, clamd_address: str, chain: list[str]) -> Config:
    path = tmp / f"gateway-{len(chain)}.toml"
    path.write_text(tomli_w.dumps({
        "gateway": {"council_domains": ["stanion-pc.gov.uk"], "max_message_size": "25MiB",
                    "audit_log": str(tmp / "audit.jsonl")},
        "inbound": {"listen": "127.0.0.1:0", "deliver_to": f"maildir:{tmp / 'mailbox'}",
                    "filters": chain},
        "outbound": {"listen": "127.0.0.1:0", "deliver_to": f"maildir:{tmp / 'outbox'}",
                     "filters": ["trace"], "users_file": str(tmp / "users")},
        "quarantine": {"path": str(tmp / "quarantine")},
        "clamav": {"address": clamd_address},
    }))
    return load_config(path)


async def filters_alone(config: Config, size: int) -> float:
    flts = [BY_NAME[n].build(config) for n in ("antivirus", "attachments")]
    pipeline = Pipeline("inbound", flts, assemble(config).policy)
    times = []
    for i in range(ROUNDS):
        data = message_of(size)  # new content each time: clamd caches clean files' hashes
        ctx = MessageContext(id=f"b{i}", side="inbound", envelope=Envelope(SENDER, (RCPT,)),
                             data=data)
        started = time.perf_counter()
        result = await pipeline.run(ctx)
        times.append(time.perf_counter() - started)
        assert result.decision.action is Action.DELIVER, result.decision
    return statistics.median(times)


def smtp_send(port: int, data: bytes) -> float:
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as c:
        c.sendmail(SENDER, [RCPT], data)
    return time.perf_counter() - started


async def through_listener(config: object, size: int) -> float:
    gw = Gateway(config)  # type: ignore[arg-type]
    await gw.start()
    try:
        times = [await asyncio.to_thread(smtp_send, gw.inbound_port, message_of(size))
                 for _ in range(ROUNDS)]
    finally:
        await gw.stop(grace=5)
    return statistics.median(times)


async def main() -> None:
    # aiosmtpd logs a deprecation notice for every message; it is not what is measured here.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    sizes = [("50 KB", 50_000), ("10 MB", 10_000_000)]
    with bench_clamd() as setup, tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        bare = config_for(tmp, setup.tcp_address, ["trace"])
        full = config_for(tmp, setup.tcp_address, ["trace", "antivirus", "attachments"])
        print(f"median of {ROUNDS}; clamd with test signatures at {setup.tcp_address}")
        print(f"{'message':9} {'filters alone':>14} {'SMTP without':>13} {'SMTP with':>10} "
              f"{'added':>8}")
        for label, size in sizes:
            alone = await filters_alone(full, size)
            without = await through_listener(bare, size)
            with_scan = await through_listener(full, size)
            print(f"{label:9} {alone * 1000:12.1f}ms "
                  f"{without * 1000:11.1f}ms {with_scan * 1000:8.1f}ms "
                  f"{(with_scan - without) * 1000:6.1f}ms")


if __name__ == "__main__":
    asyncio.run(main())
