"""Every path that abandons a transaction closes the next-hop connection it opened; SMTPUTF8
works end to end or is refused with a reason; a slow but working next hop is waited for.

The next hop is a recording aiosmtpd sink that counts its open connections; clients are smtplib
over real sockets. Anyone on port 25 could otherwise use up the mailbox server's slots.
"""

from __future__ import annotations

import asyncio
import smtplib
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.certkit import openssl_self_signed
from tests.conftest import SmtpSink, build_config, running_gateway
from tests.helpers import in_thread, make_message

CLERK = "clerk@stanion-pc.gov.uk"
RESIDENT = "resident@example.org"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return openssl_self_signed(tmp_path_factory.mktemp("tls"), key="rsa")


def open_transaction(c: smtplib.SMTP, rcpt: str = CLERK) -> None:
    c.ehlo("mx.sender.example")
    assert c.mail(RESIDENT)[0] == 250
    assert c.rcpt(rcpt)[0] == 250  # the gateway now has a transaction open at the next hop


def rset(c: smtplib.SMTP) -> None:
    open_transaction(c)
    assert c.rset()[0] == 250


def ehlo_again(c: smtplib.SMTP) -> None:
    open_transaction(c)
    assert c.ehlo("mx.sender.example")[0] == 250


def starttls(c: smtplib.SMTP) -> None:
    open_transaction(c)
    c.starttls(context=ssl._create_unverified_context())
    c.ehlo("mx.sender.example")


def quit_(c: smtplib.SMTP) -> None:
    open_transaction(c)


def drop(c: smtplib.SMTP) -> None:
    open_transaction(c)
    c.sock.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]
    c.close()


def idle(c: smtplib.SMTP) -> None:
    open_transaction(c)
    assert c.sock is not None
    c.sock.settimeout(20)
    while c.sock.recv(4096):  # the gateway's 421 for an idle client, then its close
        pass


def refused_by_the_next_hop(c: smtplib.SMTP) -> None:
    c.ehlo("mx.sender.example")
    c.mail(RESIDENT)
    assert c.rcpt("nobody@stanion-pc.gov.uk")[0] == 550


def refused_by_a_check(c: smtplib.SMTP) -> None:
    open_transaction(c)
    code, _ = c.data(b"\tfrom nowhere\r\n" + make_message())
    assert code == 554


def delivered(c: smtplib.SMTP) -> None:
    open_transaction(c)
    assert c.data(make_message())[0] == 250


def delivered_then(then: Callable[[smtplib.SMTP], None]) -> Callable[[smtplib.SMTP], None]:
    """A message delivered (its next-hop connection kept for the next), then ``then``."""
    def path(c: smtplib.SMTP) -> None:
        delivered(c)
        then(c)
    return path


def nothing(c: smtplib.SMTP) -> None:
    pass


def rset_only(c: smtplib.SMTP) -> None:
    assert c.rset()[0] == 250


def close_idle(c: smtplib.SMTP) -> None:
    assert c.sock is not None
    c.sock.settimeout(20)
    while c.sock.recv(4096):
        pass


PATHS: dict[str, Callable[[smtplib.SMTP], None]] = {
    "RSET": rset, "EHLO again": ehlo_again, "STARTTLS": starttls, "QUIT": quit_,
    "disconnect": drop, "idle timeout": idle, "next hop refuses": refused_by_the_next_hop,
    "a check refuses": refused_by_a_check, "delivered": delivered,
    "delivered, then QUIT": delivered_then(nothing), "delivered, then RSET": delivered_then(
        rset_only), "delivered, then disconnect": delivered_then(drop),
    "delivered, then idle timeout": delivered_then(close_idle),
    "delivered, then STARTTLS": delivered_then(starttls),
    "delivered twice": delivered_then(delivered),
}


@pytest.mark.parametrize("path", PATHS, ids=list(PATHS))
async def test_no_next_hop_connection_is_left_open(
        tmp_path: Path, smtp_sink: SmtpSink, certificate: tuple[Path, Path], path: str) -> None:
    smtp_sink.refuse_rcpt.add("nobody@stanion-pc.gov.uk")
    cert, key = certificate
    config = build_config(tmp_path, {
        "gateway": {"command_timeout": 1},
        "inbound": {"deliver_to": smtp_sink.url},
        "tls": {"cert_file": str(cert), "key_file": str(key)}})
    async with running_gateway(config) as gw:
        for _ in range(5):
            def session() -> None:
                with smtplib.SMTP("127.0.0.1", gw.inbound_port, timeout=20) as c:
                    PATHS[path](c)
            try:
                await in_thread(session)
            except (smtplib.SMTPServerDisconnected, OSError):
                pass  # the paths that end the connection themselves
        assert await smtp_sink.settle() == 0, f"{smtp_sink.connections} left open after {path}"


async def test_an_smtputf8_sender_reaches_a_next_hop_that_offers_it(
        tmp_path: Path, smtp_sink: SmtpSink) -> None:
    config = build_config(tmp_path, {"inbound": {"deliver_to": smtp_sink.url}})
    data = make_message().replace(b"From: resident@example.org", "From: ré@exämple.org"
                                  .encode())
    async with running_gateway(config) as gw:
        def steps() -> Any:
            with smtplib.SMTP("127.0.0.1", gw.inbound_port) as c:
                c.ehlo("mx.sender.example")
                return c.sendmail("ré@exämple.org", [CLERK], data, mail_options=["SMTPUTF8"])
        assert await in_thread(steps) == {}
    [got] = smtp_sink.messages
    assert got.mail_from == "ré@exämple.org"
    assert await smtp_sink.settle() == 0


async def test_smtputf8_to_a_next_hop_without_it_is_refused_at_rcpt_and_closed(
        tmp_path: Path) -> None:
    sink = SmtpSink(enable_SMTPUTF8=False)
    await sink.start()
    try:
        config = build_config(tmp_path, {"inbound": {"deliver_to": sink.url}})
        async with running_gateway(config) as gw:
            def steps() -> tuple[int, bytes]:
                with smtplib.SMTP("127.0.0.1", gw.inbound_port) as c:
                    c.ehlo("mx.sender.example")
                    assert c.mail("ré@exämple.org", ["SMTPUTF8"])[0] == 250
                    return c.rcpt(CLERK)
            for _ in range(5):
                code, text = await in_thread(steps)
                assert (code, text[:5]) == (553, b"5.6.7")
                assert b"international" in text
            assert await sink.settle() == 0
    finally:
        await sink.stop()


async def test_a_council_domain_in_another_spelling_is_passed_on_as_checked(
        tmp_path: Path, smtp_sink: SmtpSink) -> None:
    # U+212A KELVIN SIGN maps to "k" (UTS 46): it is the council's domain, and the mailbox
    # server is given that domain as DNS spells it, not the look-alike.
    config = build_config(tmp_path, {"inbound": {"deliver_to": smtp_sink.url}})
    async with running_gateway(config) as gw:
        def steps() -> Any:
            with smtplib.SMTP("127.0.0.1", gw.inbound_port) as c:
                c.ehlo("mx.sender.example")
                return c.sendmail("ré@exämple.org", ["clerk@stanion-pc.gov.u\u212a"],
                                  make_message(), mail_options=["SMTPUTF8"])
        assert await in_thread(steps) == {}
    assert smtp_sink.messages[0].rcpt_tos == [CLERK]


async def test_a_slow_next_hop_is_waited_for_and_the_message_taken_once(
        tmp_path: Path, smtp_sink: SmtpSink) -> None:
    answered = asyncio.Event()
    original = smtp_sink.handler.handle_DATA

    async def slow(server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(2.5)  # the next hop's own slowness, longer than deliver_timeout
        answered.set()
        return await original(server, session, envelope)

    smtp_sink.handler.handle_DATA = slow  # type: ignore[method-assign]
    config = build_config(tmp_path, {"inbound": {"deliver_to": smtp_sink.url,
                                                 "deliver_timeout": 1}})
    async with running_gateway(config) as gw:
        def steps() -> Any:
            with smtplib.SMTP("127.0.0.1", gw.inbound_port, timeout=30) as c:
                c.ehlo("mx.sender.example")
                return c.sendmail(RESIDENT, [CLERK], make_message())
        assert await in_thread(steps) == {}
    assert answered.is_set() and len(smtp_sink.messages) == 1


async def _send_on_one_connection(port: int, messages: int) -> list[int]:
    def session() -> list[int]:
        with smtplib.SMTP("127.0.0.1", port, timeout=20) as c:
            c.ehlo("mx.sender.example")
            codes = []
            for _ in range(messages):
                c.mail(RESIDENT)
                c.rcpt(CLERK)
                codes.append(c.data(make_message())[0])
            return codes
    return await in_thread(session)


async def test_the_next_hop_connection_carries_the_clients_next_message(
        tmp_path: Path, smtp_sink: SmtpSink) -> None:
    config = build_config(tmp_path, {"inbound": {"deliver_to": smtp_sink.url}})
    async with running_gateway(config) as gw:
        # (the first connection also lets the gateway learn the next hop's SIZE and DSN)
        assert await _send_on_one_connection(gw.inbound_port, 1) == [250]
        before = smtp_sink.opened
        assert await _send_on_one_connection(gw.inbound_port, 3) == [250, 250, 250]
        assert len(await smtp_sink.wait_for(4)) == 4
        assert smtp_sink.opened == before + 1  # one connection to the next hop for the three
        assert await smtp_sink.settle() == 0  # and closed when the client quit


async def test_a_kept_connection_the_next_hop_ended_is_replaced(tmp_path: Path) -> None:
    sink = SmtpSink(timeout=0.5)  # ends idle connections after half a second
    await sink.start()
    try:
        config = build_config(tmp_path, {"inbound": {"deliver_to": sink.url}})
        async with running_gateway(config) as gw:
            def session() -> None:
                with smtplib.SMTP("127.0.0.1", gw.inbound_port, timeout=20) as c:
                    c.ehlo("mx.sender.example")
                    c.sendmail(RESIDENT, [CLERK], make_message())
                    asyncio.run_coroutine_threadsafe(sink.settle(), loop).result(20)
                    c.sendmail(RESIDENT, [CLERK], make_message())  # raises unless 250
            loop = asyncio.get_running_loop()
            await in_thread(session)
            assert len(await sink.wait_for(2)) == 2
            # the gateway's look at its SIZE and DSN, the first message's, and the new one
            assert sink.opened == 3
            assert await sink.settle() == 0
    finally:
        await sink.stop()


async def test_a_connection_whose_message_was_refused_is_not_kept(
        tmp_path: Path, smtp_sink: SmtpSink) -> None:
    smtp_sink.handler.data_reply = "452 4.3.1 Insufficient storage"
    config = build_config(tmp_path, {"inbound": {"deliver_to": smtp_sink.url}})
    async with running_gateway(config) as gw:
        def session() -> list[int]:
            with smtplib.SMTP("127.0.0.1", gw.inbound_port, timeout=20) as c:
                c.ehlo("mx.sender.example")
                codes = []
                for _ in range(2):
                    c.mail(RESIDENT)
                    c.rcpt(CLERK)
                    codes.append(c.data(make_message())[0])
                return codes
        before = smtp_sink.opened
        assert await in_thread(session) == [452, 452]
        assert smtp_sink.opened - before >= 2  # a new connection for each (and the probe)
        assert await smtp_sink.settle() == 0
