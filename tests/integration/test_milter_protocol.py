"""The milter listener against a peer that breaks the protocol.

The peer here is a scripted MTA (the messages packed by ``kilter.protocol``, as Postfix would
send them, or deliberately not): a frame larger than the milter reads, an unknown command, and
a connection dropped in the middle of a message. Each must close that connection only, leave
no message counted as in flight, and leave the listener serving the next peer normally.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import struct
import sys
from collections.abc import AsyncIterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest
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
    Macro,
    Message,
    Negotiate,
    ProtocolFlags,
)
from kilter.protocol.buffer import SimpleBuffer

from gateway.milter.server import MilterServer, running_milter
from gateway.milter.settings import MilterConfig
from gateway.smtp.server import Gateway
from tests.conftest import build_config, running_gateway, write_config
from tests.postfix import free_port

ROOT = Path(__file__).resolve().parents[2]

OFFER = Negotiate(6, ActionFlags.ALL, ProtocolFlags(0x1FFFFF))


def _packed(*messages: Message) -> bytes:
    buf = SimpleBuffer(1 << 20)
    for m in messages:
        m.pack(buf)
    return buf[:].tobytes()


def _frames(data: bytes) -> list[bytes]:
    """The command letters of the milter's replies, in order."""
    out = []
    while len(data) >= 5:
        size = struct.unpack("!L", data[:4])[0]
        out.append(data[4:5])
        data = data[4 + size:]
    return out


@pytest.fixture
async def milter(tmp_path: Path) -> AsyncIterator[tuple[Gateway, MilterServer]]:
    config = build_config(tmp_path, {"milter": {"listen": "127.0.0.1:0"},
                                     "outbound": {"trusted_networks": ["192.0.2.0/24"]}})
    async with running_gateway(config) as gw, running_milter(
            gw, config.section(MilterConfig)) as server:
        yield gw, server


async def _exchange(port: int, data: bytes, *, then_close: bool = False) -> bytes:
    """Send ``data``; everything the milter writes until it closes (or, with
    ``then_close``, until we do after reading what it sent)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        if then_close:
            writer.write_eof()
        async with asyncio.timeout(10):
            return await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()


async def test_a_frame_larger_than_the_milter_reads_closes_the_connection(
        milter: tuple[Gateway, MilterServer]) -> None:
    gw, server = milter
    huge = struct.pack("!L", 10 * 1024 * 1024) + b"B" + b"x" * 300_000
    answer = await _exchange(server.port, _packed(OFFER) + huge)
    assert _frames(answer) == [b"O"]  # the negotiation reply, then the connection closed
    assert gw.in_flight == 0


async def test_an_unknown_command_closes_the_connection(
        milter: tuple[Gateway, MilterServer]) -> None:
    _, server = milter
    answer = await _exchange(server.port, _packed(OFFER) + struct.pack("!L", 1) + b"Z")
    assert _frames(answer) == [b"O"]


async def test_a_peer_gone_mid_message_leaves_nothing_behind_and_the_next_is_served(
        milter: tuple[Gateway, MilterServer]) -> None:
    gw, server = milter
    start = _packed(OFFER, Connect("client.example", IPv4Address("198.51.100.7"), 4000),
                    Helo("client.example"), EnvelopeFrom(b"<resident@example.org>"),
                    EnvelopeRecipient(b"<clerk@stanion-pc.gov.uk>"),
                    Header("From", b" resident@example.org"),
                    Header("Subject", b" Half a message"), EndOfHeaders(), Body(b"Hello\r\n"))
    half = await _exchange(server.port, start, then_close=True)
    assert _frames(half) == [b"O", b"c", b"c", b"c", b"c", b"c", b"c"]
    assert gw.in_flight == 0
    whole = await _exchange(server.port, start + _packed(EndOfMessage(b"")), then_close=True)
    frames = _frames(whole)
    assert frames[:7] == [b"O", b"c", b"c", b"c", b"c", b"c", b"c"]
    assert b"i" in frames[7:]  # the gateway's fields inserted at the top
    assert frames[-1] == b"a"  # accepted
    assert gw.in_flight == 0


def _reply_text(data: bytes) -> list[str]:
    """The texts of the milter's reply-code frames."""
    out = []
    while len(data) >= 5:
        size = struct.unpack("!L", data[:4])[0]
        if data[4:5] == b"y":
            out.append(data[5:4 + size].rstrip(b"\0").decode())
        data = data[4 + size:]
    return out


async def test_a_login_sends_only_as_its_own_addresses(
        milter: tuple[Gateway, MilterServer]) -> None:
    """Postfix passes the SASL login as {auth_authen}: the side is outbound, and the login's
    addresses bind the envelope sender and the From: field as on the submission side."""
    _, server = milter
    login = Macro(ord("M"), {"{auth_authen}": "cllr.jones"})
    opening = (OFFER, Connect("home.example", IPv4Address("198.51.100.9"), 4000),
               Helo("home.example"))
    forged = await _exchange(server.port, _packed(
        *opening, login, EnvelopeFrom(b"<clerk@stanion-pc.gov.uk>")), then_close=True)
    assert _reply_text(forged) == ["553 5.7.1 Your login may not send as "
                                   "clerk@stanion-pc.gov.uk; it sends as "
                                   "cllr.jones@stanion-pc.gov.uk"]
    own = await _exchange(server.port, _packed(
        *opening, login, EnvelopeFrom(b"<cllr.jones@stanion-pc.gov.uk>"),
        EnvelopeRecipient(b"<resident@example.org>"),
        Header("From", b" Clerk <clerk@stanion-pc.gov.uk>"), EndOfHeaders(),
        Body(b"Hello\r\n"), EndOfMessage(b"")), then_close=True)
    assert _reply_text(own) == ["553 5.7.1 Your login may not send a message From: "
                                "clerk@stanion-pc.gov.uk; it sends as "
                                "cllr.jones@stanion-pc.gov.uk"]


class _Running:
    """``python -m gateway run`` in its own process, its log read line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    async def wait_for(self, text: str, deadline: float = 30) -> None:
        assert self.proc.stderr is not None
        async with asyncio.timeout(deadline):
            while not any(text in line for line in self.lines):
                line = (await self.proc.stderr.readline()).decode()
                assert line, "the gateway stopped:\n" + "".join(self.lines)
                self.lines.append(line)


@contextlib.asynccontextmanager
async def _running(path: Path) -> AsyncIterator[_Running]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "run", "--config", str(path), cwd=ROOT,
        stderr=asyncio.subprocess.PIPE)
    running = _Running(proc)
    try:
        await running.wait_for("milter listening on")
        yield running
    finally:
        proc.send_signal(signal.SIGTERM)
        rest = (await proc.communicate())[1].decode()
        running.lines.append(rest)
    assert proc.returncode == 0, rest


async def test_a_config_with_only_the_milter_runs_without_smtp_listeners(tmp_path: Path) -> None:
    """``listen = ""`` on both sides: ``council-gateway run`` serves the milter alone."""
    port = free_port()
    path = write_config(tmp_path, {"inbound": {"listen": ""}, "outbound": {"listen": ""},
                                   "milter": {"listen": f"127.0.0.1:{port}"}})
    async with _running(path) as gateway:
        assert _frames(await _exchange(port, _packed(OFFER), then_close=True)) == [b"O"]
    log = "".join(gateway.lines)
    assert "side=inbound does not listen" in log and "side=outbound does not listen" in log
    assert "listening side=" not in log


async def test_sighup_applies_a_new_config_to_the_next_milter_connection(
        tmp_path: Path) -> None:
    port = free_port()
    settings = {"inbound": {"listen": ""}, "outbound": {"listen": "",
                                                        "trusted_networks": []},
                "milter": {"listen": f"127.0.0.1:{port}"}}
    path = write_config(tmp_path, settings)
    session = _packed(OFFER, Connect("mx.example", IPv4Address("198.51.100.40"), 4000),
                      Helo("mx.example"), EnvelopeFrom(b"<resident@example.org>"),
                      EnvelopeRecipient(b"<office@parish-hall.example>"))
    async with _running(path) as gateway:
        before = await _exchange(port, session, then_close=True)
        write_config(tmp_path, {**settings, "gateway": {
            "council_domains": ["stanion-pc.gov.uk", "parish-hall.example"]}})
        gateway.proc.send_signal(signal.SIGHUP)
        await gateway.wait_for("configuration reloaded")
        after = await _exchange(port, session, then_close=True)
    # A domain that is not the council's is refused at RCPT; once the reloaded config makes it
    # one of the council's, the same recipient is taken.
    assert _frames(before)[-1] == b"y"
    assert _frames(after)[-1] == b"c"
