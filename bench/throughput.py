"""Throughput of the inbound side: messages per second through the gateway against a direct send.

N messages go over C concurrent client connections (aiosmtplib) into a recording SMTP sink
(aiosmtpd on loopback, in this process), once directly and once through the gateway's inbound
side with the chosen filters. The sink checks that every message arrived (and, through the
gateway, carries the trace header), so a fast run that lost mail cannot pass for a good one.

    python -m bench.throughput                         # 500 messages, 10 connections, "trace"
    python -m bench.throughput -n 2000 -c 20 --filters trace,antivirus --extra-toml clamav.toml
    python -m bench.throughput --gateway-process       # gateway in its own process, as deployed

Run from the repository root. Figures go to docs/benchmarks.md ("Throughput").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import aiosmtplib
from aiosmtpd.smtp import SMTP as AioSMTP

from gateway.assembly import parse_config
from gateway.config import Config
from gateway.smtp.server import Gateway

SENDER = "resident@example.org"
RECIPIENT = "clerk@stanion-pc.gov.uk"


@dataclass
class RecordingSink:
    """aiosmtpd handler that keeps what it was given, and says when ``expected`` have arrived."""

    expected: int = 0
    messages: list[bytes] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.original_content)
        if len(self.messages) >= self.expected:
            self.done.set()
        return "250 2.0.0 Stored"

    def reset(self, expected: int) -> None:
        self.expected = expected
        self.messages = []
        self.done = asyncio.Event()


def make_message(i: int, size: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = RECIPIENT
    msg["Subject"] = f"Benchmark message {i}"
    msg["Message-ID"] = make_msgid(domain="example.org")
    msg["Date"] = "Mon, 23 Nov 2026 10:00:00 +0000"
    line = "The parish council meets on the first Tuesday of the month in the village hall.\n"
    msg.set_content(line * max(1, size // len(line)))
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


async def send_all(port: int, messages: list[bytes], connections: int) -> float:
    """Send ``messages`` over ``connections`` concurrent connections; seconds taken."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for m in messages:
        queue.put_nowait(m)

    async def worker() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60,
                                 local_hostname="bench.example.org")
        await client.connect()
        try:
            while not queue.empty():
                data = queue.get_nowait()
                errors, reply = await client.sendmail(SENDER, [RECIPIENT], data)
                if errors:
                    raise RuntimeError(f"recipient refused: {errors}")
        finally:
            await client.quit()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return time.perf_counter() - started


def gateway_toml(root: Path, sink_port: int, filters: list[str], listen_port: int = 0,
                 extra: str = "") -> str:
    names = ", ".join(f'"{f}"' for f in filters)
    return f"""
[gateway]
council_domains = ["stanion-pc.gov.uk"]
hostname = "gw.stanion-pc.gov.uk"
audit_log = "{root / 'audit.jsonl'}"
max_connections = 1000

[inbound]
listen = "127.0.0.1:{listen_port}"
deliver_to = "smtp://127.0.0.1:{sink_port}"
filters = [{names}]

[outbound]
listen = "127.0.0.1:0"
deliver_to = "maildir:{root / 'outbox'}"
users_file = "{root / 'users'}"

[quarantine]
path = "{root / 'quarantine'}"
{extra}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_gateway_process(conf: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "gateway", "run", "--config", str(conf)],
                            stderr=subprocess.DEVNULL)


async def wait_for_greeting(port: int, proc: subprocess.Popen[bytes], deadline: float) -> None:
    end = time.monotonic() + deadline
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the gateway exited with {proc.returncode}")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            line = await reader.readline()
            writer.close()
            if line.startswith(b"220"):
                return
        except OSError:
            pass
        if time.monotonic() > end:
            raise RuntimeError("the gateway did not greet in time")
        await asyncio.sleep(0.05)  # polling interval of a deadline-bound wait


async def measure(sink: RecordingSink, port: int, messages: list[bytes], connections: int,
                  expect_header: bytes | None) -> float:
    sink.reset(len(messages))
    seconds = await send_all(port, messages, connections)
    await asyncio.wait_for(sink.done.wait(), 30)
    if len(sink.messages) != len(messages):
        raise RuntimeError(f"sink holds {len(sink.messages)} of {len(messages)} messages")
    if expect_header and not all(expect_header in m for m in sink.messages):
        raise RuntimeError("a message reached the sink without the gateway's trace header")
    return len(messages) / seconds


@dataclass
class Run:
    """What a message-sending benchmark sets up from its options: the recording sink, the
    messages, and the gateway's filters."""

    filters: list[str]
    extra: str
    sink: RecordingSink
    server: asyncio.Server
    sink_port: int
    warmup: list[bytes]
    messages: list[bytes]
    header: bytes | None  # what every message through the gateway must carry


async def prepare(args: argparse.Namespace) -> Run:
    filters = [f.strip() for f in args.filters.split(",") if f.strip()]
    extra = args.extra_toml.read_text(encoding="utf-8") if args.extra_toml else ""
    sink = RecordingSink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: AioSMTP(sink, hostname="sink.test"),
                                      host="127.0.0.1", port=0)
    return Run(filters, extra, sink, server, server.sockets[0].getsockname()[1],
               [make_message(-i, args.size) for i in range(args.connections)],
               [make_message(i, args.size) for i in range(args.messages)],
               b"X-Council-Gateway: " if "trace" in filters else None)


async def main(args: argparse.Namespace) -> None:
    run = await prepare(args)
    filters, extra, sink, server, sink_port = (run.filters, run.extra, run.sink, run.server,
                                               run.sink_port)
    warmup, messages, header = run.warmup, run.messages, run.header

    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        root = Path(tmp)
        await measure(sink, sink_port, warmup, args.connections, None)
        direct = await measure(sink, sink_port, messages, args.connections, None)

        proc: subprocess.Popen[bytes] | None = None
        gw: Gateway | None = None
        if args.gateway_process:
            port = free_port()
            conf = root / "gateway.toml"
            conf.write_text(gateway_toml(root, sink_port, filters, port, extra), encoding="utf-8")
            proc = start_gateway_process(conf)
            await wait_for_greeting(port, proc, 20)
        else:
            config: Config = parse_config(gateway_toml(root, sink_port, filters, 0, extra))
            gw = Gateway(config)
            await gw.start()
            port = gw.inbound_port
        try:
            await measure(sink, port, warmup, args.connections, header)
            via = await measure(sink, port, messages, args.connections, header)
        finally:
            if gw is not None:
                await gw.stop()
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                await asyncio.to_thread(proc.wait, 30)
    server.close()

    where = "its own process" if args.gateway_process else "this process"
    size = len(messages[0])
    print(f"messages: {args.messages} of {size} bytes over {args.connections} connections; "
          f"filters: {','.join(filters) or '(none)'}; gateway in {where}; "
          f"{os.cpu_count()} CPUs")
    print(f"direct to sink:   {direct:8.1f} messages/s")
    print(f"through gateway:  {via:8.1f} messages/s")
    print(f"ratio:            {via / direct:8.2f}")


def message_arguments(p: argparse.ArgumentParser) -> None:
    """The options every message-sending benchmark takes."""
    p.add_argument("-n", "--messages", type=int, default=500, help="messages to send (500)")
    p.add_argument("-c", "--connections", type=int, default=10,
                   help="concurrent client connections (10)")
    p.add_argument("--filters", default="trace",
                   help="comma-separated inbound filters for the gateway (trace)")
    p.add_argument("--size", type=int, default=4096, help="approximate body size in bytes (4096)")
    p.add_argument("--extra-toml", type=Path,
                   help="TOML appended to the gateway config (filter sections)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    message_arguments(p)
    p.add_argument("--gateway-process", action="store_true",
                   help="run the gateway as its own process (council-gateway run)")
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
