"""The gateway's own DATA writer against a real next hop (the recording aiosmtpd sink) and
against peers that misbehave on purpose: what arrives is byte for byte what was sent, and a next
hop that drops or stalls mid-DATA ends in a clean "try again later" with the connection closed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from gateway.config import Config
from gateway.content import CHUNK, Content
from gateway.delivery.nexthop import DeliveryResult, Upstream
from tests.conftest import SmtpSink, build_config

CLERK = "clerk@stanion-pc.gov.uk"
RESIDENT = "resident@example.org"
HEAD = b"From: <resident@example.org>\r\nTo: <clerk@stanion-pc.gov.uk>\r\nSubject: dots\r\n\r\n"


def _config(tmp_path: Path, port: int, data_timeout: float = 600) -> Config:
    return build_config(tmp_path, {"inbound": {
        "deliver_to": f"smtp://127.0.0.1:{port}", "deliver_timeout": 5,
        "deliver_data_timeout": data_timeout}})


async def _send(config: Config, data: bytes | Content) -> tuple[DeliveryResult, Upstream]:
    up = Upstream(config, config.inbound)
    assert (await up.open(RESIDENT, smtputf8=False)).ok
    assert (await up.rcpt(CLERK)).ok
    return await up.data(data), up


async def _through_sink(tmp_path: Path, sink: SmtpSink, data: bytes | Content) -> bytes:
    result, up = await _send(_config(tmp_path, sink.port), data)
    assert result.ok, result
    assert not up.client.is_connected
    (got,) = await sink.wait_for(1)
    return got.data


def _body_with_dot_at_chunk_edges() -> bytes:
    """Lines that start with "." everywhere a chunk boundary can cut: right after it, right
    before it, and with the CRLF before the dot split across it."""
    body = bytearray(b".\r\n..\r\n.hidden line\r\n")
    for edge in range(1, 4):
        while len(HEAD) + len(body) < CHUNK * edge - 3:
            body += b"x" * 60 + b"\r\n"
        body += b"y" * (CHUNK * edge - len(HEAD) - len(body) - (edge - 1)) + b"\r\n"
        body += b".starts a line\r\n"
    return HEAD + bytes(body) + b".\r\n.. two\r\nlast\r\n"


async def test_lines_starting_with_a_dot_arrive_byte_for_byte(tmp_path: Path,
                                                               smtp_sink: SmtpSink) -> None:
    data = _body_with_dot_at_chunk_edges()
    assert await _through_sink(tmp_path, smtp_sink, data) == data


async def test_a_message_without_a_last_crlf_gets_one(tmp_path: Path,
                                                      smtp_sink: SmtpSink) -> None:
    data = HEAD + b"line one\r\n.no end of line"
    assert await _through_sink(tmp_path, smtp_sink, data) == data + b"\r\n"


async def test_eight_bit_content_is_passed_untouched(tmp_path: Path,
                                                     smtp_sink: SmtpSink) -> None:
    data = (b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
            + HEAD + "Café, Straße, \u20ac 5\r\n".encode() + bytes(range(128, 256)) + b"\r\n")
    assert await _through_sink(tmp_path, smtp_sink, data) == data


async def test_pieces_are_sent_as_one_message(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    """Fields put on top and a buffer read from an offset: nothing joined before sending."""
    buf = b"X-Old: dropped\r\n" + HEAD + b"body\r\n" * 50_000
    content = Content(buf, (b"Received: by gw\r\n", b"X-Added: 1\r\n"), len(b"X-Old: dropped\r\n"))
    assert await _through_sink(tmp_path, smtp_sink, content) == content.joined()


async def test_a_refusal_after_the_message_is_passed_on(tmp_path: Path,
                                                        smtp_sink: SmtpSink) -> None:
    smtp_sink.handler.data_reply = "554 5.6.0 Not for us"
    result, up = await _send(_config(tmp_path, smtp_sink.port), HEAD + b"hi\r\n")
    assert (result.ok, result.code, result.text) == (False, 554, "5.6.0 Not for us")
    assert not up.client.is_connected


# ---------------------------------------------------------------- next hops that misbehave

Peer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _dialogue(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Greeting to 354, as a real server would answer."""
    writer.write(b"220 peer.test ESMTP\r\n")
    while True:
        line = await reader.readline()
        if line.upper().startswith(b"EHLO"):
            writer.write(b"250-peer.test\r\n250 8BITMIME\r\n")
        elif line.upper().startswith(b"DATA"):
            writer.write(b"354 Go ahead\r\n")
            await writer.drain()
            return
        elif line:
            writer.write(b"250 OK\r\n")
        else:
            raise ConnectionError("client left")


@pytest.fixture
async def peer() -> AsyncIterator[Callable[[Peer], Awaitable[int]]]:
    servers: list[asyncio.Server] = []
    done: list[asyncio.Event] = []

    async def start(after_354: Peer) -> int:
        finished = asyncio.Event()
        done.append(finished)

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await _dialogue(reader, writer)
                await after_354(reader, writer)
            except ConnectionError:
                pass
            finally:
                writer.close()
                finished.set()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()
    async with asyncio.timeout(10):
        for finished in done:
            await finished.wait()


BIG = HEAD + (b"z" * 76 + b"\r\n") * 40_000  # far more than a socket buffer holds


async def test_a_next_hop_that_drops_mid_data_means_try_again(
        tmp_path: Path, peer: Callable[[Peer], Awaitable[int]]) -> None:
    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(100_000)
        writer.transport.abort()

    port = await peer(drop)
    result, up = await _send(_config(tmp_path, port), BIG)
    assert (result.ok, result.code) == (False, 451)
    assert result.text.startswith("4.4.1")
    assert not up.client.is_connected


@pytest.mark.parametrize("how", ["stops reading", "never answers"])
async def test_a_next_hop_that_stalls_past_the_data_timeout_means_try_again(
        tmp_path: Path, peer: Callable[[Peer], Awaitable[int]], how: str) -> None:
    released = asyncio.Event()

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if how == "never answers":
            while not (await reader.readline()).startswith(b".\r\n"):
                pass
        else:
            await reader.readexactly(1000)
        await released.wait()

    port = await peer(stall)
    started = time.monotonic()
    try:
        result, up = await _send(_config(tmp_path, port, data_timeout=1), BIG)
    finally:
        released.set()
    assert (result.ok, result.code) == (False, 451)
    assert not up.client.is_connected
    assert 1 <= time.monotonic() - started < 5


async def test_a_refusal_before_the_end_is_passed_on_as_given(
        tmp_path: Path, peer: Callable[[Peer], Awaitable[int]]) -> None:
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(100_000)
        writer.write(b"554 5.3.4 Message too big for this mailbox\r\n")
        writer.write_eof()  # after the reply, in order: the gateway hears it, then the end
        while await reader.read(65536):
            pass

    port = await peer(refuse)
    result, up = await _send(_config(tmp_path, port), BIG)
    assert (result.ok, result.code, result.text) == (
        False, 554, "5.3.4 Message too big for this mailbox")
    assert not up.client.is_connected
