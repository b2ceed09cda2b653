"""The milter path next to the proxy path: the same messages, the same filters, one gateway.

The proxy path is bench.throughput's: N messages over C SMTP connections into the gateway's
inbound side, which checks each one and hands it to a recording sink before it answers. The
milter path sends the same messages over C milter connections as an MTA would (each message:
MAIL, RCPT, its header fields, the end of the header, the body in 64 KiB chunks, the end of the
message; packed with kilter.protocol) and waits for the gateway's final answer and its edits.
The milter never delivers (Postfix would), so its figure leaves out the next hop; both figures
include the checks, the decision and the audit line.

    python -m bench.milter                              # 500 messages, 10 connections, "trace"
    python -m bench.milter -n 2000 -c 20 --filters trace,antivirus --extra-toml clamav.toml

Run from the repository root. Figures go to docs/benchmarks.md ("Milter and proxy").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import struct
import tempfile
import time
from email import message_from_bytes
from email.policy import compat32
from ipaddress import IPv4Address
from pathlib import Path

from kilter.protocol import (
    ActionFlags,
    Body,
    Connect,
    EndOfHeaders,
    EndOfMessage,
    EnvelopeFrom,
    EnvelopeRecipient,
    Header,
    Helo,
    Message,
    Negotiate,
    ProtocolFlags,
)
from kilter.protocol.buffer import SimpleBuffer

from bench.throughput import (
    RECIPIENT,
    SENDER,
    gateway_toml,
    measure,
    message_arguments,
    prepare,
)
from gateway.assembly import parse_config
from gateway.milter.server import running_milter
from gateway.milter.settings import MilterConfig
from gateway.smtp.server import Gateway

# The answers that end a message: accept, discard, a reply line, tempfail, reject. Before one,
# "continue" answers each step and the edits come.
ENDS = frozenset({b"a", b"d", b"y", b"t", b"r"})


def _packed(*messages: Message) -> bytes:
    buf = SimpleBuffer(1 << 20)
    for m in messages:
        m.pack(buf)
    return buf[:].tobytes()


def _transaction(data: bytes) -> bytes:
    """One message as an MTA hands it to a milter."""
    head, _, body = data.partition(b"\r\n\r\n")
    parsed = message_from_bytes(head + b"\r\n\r\n", policy=compat32)
    frames: list[Message] = [EnvelopeFrom(f"<{SENDER}>".encode()),
                             EnvelopeRecipient(f"<{RECIPIENT}>".encode())]
    frames += [Header(name, b" " + str(value).encode()) for name, value in parsed.items()]
    frames.append(EndOfHeaders())
    frames += [Body(body[i:i + 65535]) for i in range(0, len(body), 65535)]
    frames.append(EndOfMessage(b""))
    return _packed(*frames)


async def _reply(reader: asyncio.StreamReader) -> bytes:
    size = struct.unpack("!L", await reader.readexactly(4))[0]
    return (await reader.readexactly(size))[:1]


async def send_milter(port: int, messages: list[bytes], connections: int) -> float:
    """Send ``messages`` over ``connections`` milter connections; seconds taken. Every message
    must be accepted."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for m in messages:
        queue.put_nowait(_transaction(m))
    opening = _packed(Negotiate(6, ActionFlags.ALL, ProtocolFlags(0x1FFFFF)),
                      Connect("bench.example.org", IPv4Address("198.51.100.30"), 4000),
                      Helo("bench.example.org"))

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(opening)
            for _ in range(3):  # negotiation, connect, helo
                await _reply(reader)
            while not queue.empty():
                writer.write(queue.get_nowait())
                # Replies to MAIL, RCPT, the end of the header and each body chunk, then the
                # edits and the final answer.
                while (kind := await _reply(reader)) not in ENDS:
                    pass
                if kind != b"a":
                    raise RuntimeError(f"the milter answered {kind!r}, not accept")
        finally:
            writer.close()
            await writer.wait_closed()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return time.perf_counter() - started


async def main(args: argparse.Namespace) -> None:
    run = await prepare(args)
    filters, sink, server, warmup, messages, header = (run.filters, run.sink, run.server,
                                                       run.warmup, run.messages, run.header)
    with tempfile.TemporaryDirectory(prefix="bench-milter-") as tmp:
        root = Path(tmp)
        toml = gateway_toml(root, run.sink_port, filters, 0, run.extra) + (
            '\n[milter]\nlisten = "127.0.0.1:0"\n')
        # The bench client is not the office: mail from it is inbound on both paths.
        toml = toml.replace('users_file =', 'trusted_networks = []\nusers_file =', 1)
        config = parse_config(toml)
        gw = Gateway(config)
        await gw.start()
        try:
            async with running_milter(gw, config.section(MilterConfig)) as milter:
                await measure(sink, gw.inbound_port, warmup, args.connections, header)
                proxy = await measure(sink, gw.inbound_port, messages, args.connections, header)
                await send_milter(milter.port, warmup, args.connections)
                milter_rate = len(messages) / await send_milter(milter.port, messages,
                                                                args.connections)
        finally:
            await gw.stop()
    server.close()
    print(f"messages: {args.messages} of {len(messages[0])} bytes over {args.connections} "
          f"connections; filters: {','.join(filters) or '(none)'}; {os.cpu_count()} CPUs")
    print(f"proxy (checked and delivered):  {proxy:8.1f} messages/s")
    print(f"milter (checked, edits back):   {milter_rate:8.1f} messages/s")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    message_arguments(p)  # -c: connections on each path
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
