"""No single client can hold more than its share of connections or time.

Real listeners on loopback; clients bind to different loopback addresses (127.0.0.2, .3 ...),
which the gateway counts as different networks. Every refusal and timeout is counted.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import socket
import ssl
import subprocess
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from gateway.adapters.clamd import ClamdClient, parse_address
from gateway.config import ConfigError
from gateway.delivery.maildir import unique_name
from tests.conftest import SmtpSink, build_config, running_gateway
from tests.helpers import in_thread

CLERK = "clerk@stanion-pc.gov.uk"


def connect(port: int, source: str) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10,
                                 source_address=(source, 0))
    return s


def greeting(s: socket.socket) -> bytes:
    return s.recv(4096)


async def greetings(*sockets: socket.socket) -> list[bytes]:
    return [await in_thread(greeting, s) for s in sockets]


async def test_one_network_gets_its_share_and_no_more(tmp_path: Path) -> None:
    config = build_config(tmp_path, {"inbound": {"max_connections_per_address": 3,
                                                 "max_connections": 5}})
    async with running_gateway(config) as gw:
        with ExitStack() as stack:
            held = [stack.enter_context(connect(gw.inbound_port, "127.0.0.2"))
                    for _ in range(3)]
            assert all(g.startswith(b"220 ") for g in await greetings(*held))
            extra = stack.enter_context(connect(gw.inbound_port, "127.0.0.2"))
            refused = await in_thread(greeting, extra)
            assert refused.startswith(b"421 4.7.0 Too many connections from your network")
            # Another client still gets in, up to the side's own pool...
            others = [stack.enter_context(connect(gw.inbound_port, f"127.0.0.{n}"))
                      for n in (3, 4)]
            assert all(g.startswith(b"220 ") for g in await greetings(*others))
            full = stack.enter_context(connect(gw.inbound_port, "127.0.0.5"))
            assert (await in_thread(greeting, full)).startswith(b"421 4.7.0 Too many conn")
            # ...and the councillors' side has a pool of its own.
            councillor = stack.enter_context(connect(gw.outbound_port, "127.0.0.2"))
            assert (await in_thread(greeting, councillor)).startswith(b"220 ")
        assert gw.counters["connections refused: per-address limit"] == 1
        assert gw.counters["connections refused: side full"] == 1


async def test_commands_that_move_no_mail_are_limited(tmp_path: Path) -> None:
    config = build_config(tmp_path)
    async with running_gateway(config) as gw:
        def noops() -> list[int]:
            codes = []
            with smtplib.SMTP("127.0.0.1", gw.inbound_port) as c:
                c.ehlo("x")
                try:
                    for _ in range(150):
                        codes.append(c.noop()[0])
                except smtplib.SMTPServerDisconnected:
                    pass
            return codes
        codes = await in_thread(noops)
        assert codes.count(250) == 99 and codes[-1] == 421  # EHLO counted too
        assert gw.counters["connections closed: junk commands"] == 1


async def test_a_connection_lives_only_so_long(tmp_path: Path) -> None:
    config = build_config(tmp_path, {"gateway": {"session_lifetime": 1}})
    async with running_gateway(config) as gw:
        def linger() -> bytes:
            with connect(gw.inbound_port, "127.0.0.2") as s:
                s.settimeout(10)
                data = b""
                while chunk := s.recv(4096):  # until the gateway ends the connection
                    data += chunk
                return data
        got = await in_thread(linger)
        assert b"421 4.4.2 This connection has been open too long" in got
        assert gw.counters["connections closed: lifetime"] == 1


async def test_a_slow_but_steady_upload_succeeds_and_a_stalled_one_ends(
        tmp_path: Path, smtp_sink: SmtpSink) -> None:
    config = build_config(tmp_path, {"gateway": {"command_timeout": 1, "data_timeout": 1},
                                     "inbound": {"deliver_to": smtp_sink.url}})
    lines = [f"Line {n} of a slow upload".encode() for n in range(12)]

    async with running_gateway(config) as gw:
        def slow(stall: bool) -> bytes:
            with connect(gw.inbound_port, "127.0.0.2") as s:
                s.settimeout(20)
                f = s.makefile("rb")
                f.readline()
                for cmd in (b"EHLO slow.example", b"MAIL FROM:<a@example.org>",
                            f"RCPT TO:<{CLERK}>".encode(), b"DATA"):
                    s.sendall(cmd + b"\r\n")
                    while (line := f.readline())[3:4] == b"-":
                        pass
                s.sendall(b"Subject: slow\r\n\r\n")
                for line in lines:
                    time.sleep(0.3)  # a slow sender: 3.6 s in all, over three times the timer
                    s.sendall(line + b"\r\n")
                if stall:
                    return f.read()  # the gateway gives up on a sender that stops
                s.sendall(b".\r\n")
                return f.readline()
        assert (await in_thread(slow, False)).startswith(b"250 ")
        assert (await in_thread(slow, True)).startswith(b"421 4.4.2")
    assert len(smtp_sink.messages) == 1
    assert smtp_sink.messages[0].data.endswith(b"Line 11 of a slow upload\r\n")


def _certificate(d: Path, name: str) -> tuple[Path, Path]:
    cert, key = d / f"{name}.pem", d / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def _served_name(port: int) -> str:
    with smtplib.SMTP("127.0.0.1", port) as c:
        c.ehlo("x")
        c.starttls(context=ssl._create_unverified_context())
        assert c.sock is not None
        cert = c.sock.getpeercert(binary_form=True)  # type: ignore[union-attr]
    done = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject"],
                          input=cert, capture_output=True, check=True)
    return done.stdout.decode().strip()


async def test_a_renewed_certificate_is_used_after_a_reload_and_a_bad_one_is_not(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    old = _certificate(tmp_path, "old.example")
    new = _certificate(tmp_path, "new.example")
    config = build_config(tmp_path, {"tls": {"cert_file": str(old[0]), "key_file": str(old[1])}})
    async with running_gateway(config) as gw:
        assert "old.example" in await in_thread(_served_name, gw.inbound_port)
        gw.reload(build_config(tmp_path, {"tls": {"cert_file": str(new[0]),
                                                  "key_file": str(new[1])}}))
        assert "new.example" in await in_thread(_served_name, gw.inbound_port)
        # A certificate with the wrong key: the config is refused (a reload keeps the running
        # one), and the certificate in use stays.
        with pytest.raises(ConfigError, match="does not match the certificate"):
            build_config(tmp_path, {"tls": {"cert_file": str(old[0]), "key_file": str(new[1])}})
        # One that stops loading after the config was read: the one in use is kept.
        broken = build_config(tmp_path, {"tls": {"cert_file": str(new[0]),
                                                 "key_file": str(new[1])}})
        new[0].write_text("not a certificate any more\n")
        with caplog.at_level(logging.ERROR, logger="gateway.smtp.server"):
            gw.reload(broken)
        assert "the one in use is kept" in caplog.text
        assert "new.example" in await in_thread(_served_name, gw.inbound_port)


def test_maildir_names_are_unique_across_threads() -> None:
    names: list[str] = []
    lock = threading.Lock()

    def many() -> None:
        mine = [unique_name() for _ in range(500)]
        with lock:
            names.extend(mine)

    threads = [threading.Thread(target=many) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(names) == len(set(names)) == 4000


async def test_a_clamd_that_does_not_tell_its_version_is_not_waited_on_again() -> None:
    served: list[bytes] = []
    waiting: set[asyncio.Task[None]] = set()

    async def hang_on_version(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        waiting.add(task)
        served.append(await r.readuntil(b"\0"))
        try:
            await asyncio.Event().wait()  # never answers
        finally:
            w.close()

    server = await asyncio.start_server(hang_on_version, "127.0.0.1", 0)
    address = f"tcp://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    client = ClamdClient((parse_address(address),), 5)
    try:
        started = time.monotonic()
        assert await client.version(wait=0.5) is None
        first = time.monotonic() - started
        started = time.monotonic()
        assert await client.version(wait=0.5) is None
        again = time.monotonic() - started
    finally:
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        server.close()
        await server.wait_closed()
    assert first >= 0.5 and again < 0.1
    assert len(served) == 1  # asked once, remembered as not answering
