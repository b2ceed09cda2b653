"""A hosted mailbox (Microsoft 365, Google Workspace) relays through the outbound side because
of the name on its verified TLS client certificate, not its address (real gateway, smtplib)."""

from __future__ import annotations

import logging
import smtplib
import ssl
from pathlib import Path
from typing import Any

import pytest

from tests.certkit import Issued, TestCa
from tests.conftest import SmtpSink, build_config, running_gateway
from tests.helpers import in_thread, make_message, smtp_session

TENANT = "mail.protection.outlook.example"
SENDER = "clerk@stanion-pc.gov.uk"
OUTSIDE = "supplier@example.org"


@pytest.fixture
def ca(tmp_path: Path) -> TestCa:
    folder = tmp_path / "pki"
    folder.mkdir()
    return TestCa(folder)


def _config(tmp_path: Path, ca: TestCa, sink: SmtpSink, trusted: list[str]) -> Any:
    server = ca.issue("gateway", ["gw.stanion-pc.gov.uk", "127.0.0.1"])
    return build_config(tmp_path, {
        "outbound": {"trusted_networks": [], "deliver_to": sink.url,
                     "trusted_client_certificates": trusted,
                     "client_ca_file": str(ca.ca_file)},
        "tls": {"cert_file": str(server.cert_file), "key_file": str(server.key_file)},
    })


def _client_context(ca: TestCa, client: Issued | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca.ca_file))
    if client is not None:
        ctx.load_cert_chain(str(client.cert_file), str(client.key_file))
    return ctx


def _relay(port: int, ctx: ssl.SSLContext) -> tuple[int, bytes]:
    """STARTTLS with ``ctx``, then MAIL, RCPT to an outside address and DATA; the first reply
    that is not a success, or DATA's."""
    def steps(c: smtplib.SMTP) -> tuple[int, bytes]:
        c.ehlo("tenant.example")
        c.starttls(context=ctx)
        c.ehlo("tenant.example")
        code, text = c.mail(SENDER)
        if code != 250:
            return code, text
        code, text = c.rcpt(OUTSIDE)
        if code != 250:
            return code, text
        return c.data(make_message(sender=SENDER, to=OUTSIDE, subject="Invoice 42"))
    return smtp_session(port, steps)


async def test_the_tenant_named_on_a_verified_certificate_may_relay(
        tmp_path: Path, ca: TestCa, smtp_sink: SmtpSink,
        caplog: pytest.LogCaptureFixture) -> None:
    client = ca.issue("tenant", [TENANT])
    async with running_gateway(_config(tmp_path, ca, smtp_sink, [TENANT])) as gw:
        with caplog.at_level(logging.INFO, logger="gateway.smtp.handler"):
            code, text = await in_thread(_relay, gw.outbound_port, _client_context(ca, client))
        assert code == 250, text
        got = await smtp_sink.wait_for(1)
    assert got[0].mail_from == SENDER and got[0].rcpt_tos == [OUTSIDE]
    assert b"Subject: Invoice 42" in got[0].data
    assert f"names={TENANT} trusted={TENANT}" in caplog.text


@pytest.mark.parametrize("who", ["another name", "no certificate"])
async def test_other_names_and_no_certificate_must_log_in(
        tmp_path: Path, ca: TestCa, smtp_sink: SmtpSink, who: str) -> None:
    client = ca.issue("other", ["mail.other-tenant.example"]) if who == "another name" else None
    async with running_gateway(_config(tmp_path, ca, smtp_sink, [TENANT])) as gw:
        code, text = await in_thread(_relay, gw.outbound_port, _client_context(ca, client))
    # Exactly what an outside client that has not logged in is told.
    assert (code, text.split(b" ")[0]) == (530, b"5.7.0")
    assert smtp_sink.messages == []


async def test_a_self_signed_certificate_ends_the_handshake(
        tmp_path: Path, ca: TestCa, smtp_sink: SmtpSink) -> None:
    """A certificate the CAs cannot verify is refused by TLS itself, so it never gets as far
    as MAIL (and never counts), even when it carries the trusted name."""
    forged = ca.issue("forged", [TENANT], self_signed=True)
    async with running_gateway(_config(tmp_path, ca, smtp_sink, [TENANT])) as gw:
        # TLS 1.3: the client hears of it at its next command, as the connection closing.
        with pytest.raises((ssl.SSLError, smtplib.SMTPServerDisconnected, ConnectionError)):
            await in_thread(_relay, gw.outbound_port, _client_context(ca, forged))
    assert smtp_sink.messages == []


async def test_without_the_setting_a_certificate_means_nothing(
        tmp_path: Path, ca: TestCa, smtp_sink: SmtpSink) -> None:
    client = ca.issue("tenant", [TENANT])
    async with running_gateway(_config(tmp_path, ca, smtp_sink, [])) as gw:
        code, text = await in_thread(_relay, gw.outbound_port, _client_context(ca, client))
    assert (code, text.split(b" ")[0]) == (530, b"5.7.0")


async def test_the_inbound_side_asks_for_no_certificate(
        tmp_path: Path, ca: TestCa, smtp_sink: SmtpSink) -> None:
    """A sending server's own certificate, which our CAs cannot verify, must not stop mail
    arriving at the MX side."""
    stranger = ca.issue("stranger", ["mx.example.org"], self_signed=True)
    ctx = _client_context(ca, stranger)
    async with running_gateway(_config(tmp_path, ca, smtp_sink, [TENANT])) as gw:
        def steps(c: smtplib.SMTP) -> tuple[int, bytes]:
            c.ehlo("mx.example.org")
            c.starttls(context=ctx)
            c.ehlo("mx.example.org")
            return c.mail("resident@example.org")
        code, _ = await in_thread(smtp_session, gw.inbound_port, steps)
    assert code == 250
