"""A login sends only as its own addresses; the gateway's trust headers are its own on every
path; its Received field cannot be written into; what it writes is private.

Real listeners on loopback, real clients (smtplib), a recording SMTP sink as the next hop, the
clerk's release through the one resolve function. Stanion "Security": council mail is the
council's; the gateway must not lend its signature or its word to anyone else.
"""

from __future__ import annotations

import base64
import json
import smtplib
import stat
from pathlib import Path

import pytest

from gateway.assembly import assemble
from gateway.people.users import UsersFile
from gateway.quarantine.resolve import resolve
from gateway.quarantine.store import QuarantineStore
from tests.conftest import SmtpSink, build_config, running_gateway
from tests.helpers import in_thread, smtp_session
from tests.mailmaker import make_mail

CLLR = "cllr.jones@stanion-pc.gov.uk"
OTHER = "cllr.brown@stanion-pc.gov.uk"
CLERK = "clerk@stanion-pc.gov.uk"
PASSWORD = "correct horse battery"
RESIDENT = "pat@resident.example"
HOST = "gw.stanion-pc.gov.uk"  # the test config's hostname: the gateway's authserv-id


def audit(tmp_path: Path) -> list[dict]:
    return [json.loads(x) for x in (tmp_path / "logs" / "audit.jsonl").read_text().splitlines()]


def logged_in_config(tmp_path: Path, sink: SmtpSink, **addresses: tuple[str, ...]):
    users = UsersFile(tmp_path / "users")
    users.add(CLLR, PASSWORD, addresses.get("jones"))
    users.add("brown", PASSWORD)  # no address recorded: sends as brown@<first council domain>
    return build_config(tmp_path, {"outbound": {"trusted_networks": [],
                                                "deliver_to": sink.url}})


def submit(port: int, login: str | None, mail_from: str, data: bytes,
           authzid: str = "") -> tuple[int, bytes]:
    """One submission; the reply to MAIL if refused there, else to the end of DATA."""
    def steps(c: smtplib.SMTP) -> tuple[int, bytes]:
        c.ehlo("laptop")
        if login is not None:
            token = base64.b64encode(f"{authzid}\0{login}\0{PASSWORD}".encode()).decode()
            code, text = c.docmd("AUTH", f"PLAIN {token}")
            if code != 235:
                return code, text
        code, text = c.mail(mail_from)
        if code != 250:
            return code, text
        c.rcpt(RESIDENT)
        return c.data(data)
    return smtp_session(port, steps)


@pytest.mark.parametrize("login,mail_from,from_header,code,words", [
    # A login sends as its own address...
    (CLLR, CLLR, f"Cllr Jones <{CLLR}>", 250, b""),
    (CLLR, CLLR.upper(), CLLR, 250, b""),
    # ...and as no one else: not another councillor, not the clerk, not outside.
    (CLLR, OTHER, OTHER, 553, b"may not send as cllr.brown@stanion-pc.gov.uk"),
    (CLLR, CLERK, CLERK, 553, b"may not send as clerk@stanion-pc.gov.uk"),
    (CLLR, "refunds@hmrc.gov.uk", "refunds@hmrc.gov.uk", 553, b"may not send as"),
    # The From: line is held to the same rule as MAIL FROM.
    (CLLR, CLLR, f"Parish Clerk <{CLERK}>", 553,
     b"may not send a message From: clerk@stanion-pc.gov.uk"),
    (CLLR, CLLR, "HMRC Refunds <refunds@hmrc.gov.uk>", 553, b"refunds@hmrc.gov.uk"),
    (CLLR, CLLR, f"{CLLR}, {CLERK}", 553, b"clerk@stanion-pc.gov.uk"),
    # A login without recorded addresses sends as login@ the council's first domain.
    ("brown", "brown@stanion-pc.gov.uk", "brown@stanion-pc.gov.uk", 250, b""),
    ("brown", CLLR, CLLR, 553, b"it sends as brown@stanion-pc.gov.uk"),
])
async def test_a_login_sends_only_as_its_own_addresses(
        tmp_path: Path, smtp_sink: SmtpSink, login: str, mail_from: str, from_header: str,
        code: int, words: bytes) -> None:
    config = logged_in_config(tmp_path, smtp_sink)
    data = make_mail(from_=from_header, to=RESIDENT)
    async with running_gateway(config) as gw:
        got, text = await in_thread(submit, gw.outbound_port, login, mail_from, data)
    assert got == code, text
    assert words in text
    assert len(smtp_sink.messages) == (1 if code == 250 else 0)
    if code != 250 and b"From:" in words:
        assert audit(tmp_path)[-1]["verdict"] == "refuse"  # refused at end of data: audited


async def test_may_send_as_grants_a_shared_address(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    config = logged_in_config(tmp_path, smtp_sink, jones=(CLLR, CLERK))
    async with running_gateway(config) as gw:
        assert (await in_thread(submit, gw.outbound_port, CLLR, CLERK,
                                make_mail(from_=CLERK, to=RESIDENT)))[0] == 250
        assert (await in_thread(submit, gw.outbound_port, CLLR, OTHER,
                                make_mail(from_=OTHER, to=RESIDENT)))[0] == 553


async def test_an_authorisation_identity_of_another_login_is_refused(
        tmp_path: Path, smtp_sink: SmtpSink) -> None:
    config = logged_in_config(tmp_path, smtp_sink)
    async with running_gateway(config) as gw:
        code, text = await in_thread(submit, gw.outbound_port, CLLR, CLLR,
                                     make_mail(from_=CLLR, to=RESIDENT), "brown")
        same, _ = await in_thread(submit, gw.outbound_port, CLLR, CLLR,
                                  make_mail(from_=CLLR, to=RESIDENT), CLLR)
    assert (code, text) == (535, b"5.7.8 Logging in on behalf of another login is not allowed")
    assert same == 250  # naming oneself is allowed (RFC 4616)


async def test_a_trusted_office_server_sends_as_any_council_address_but_no_other(
        tmp_path: Path, smtp_sink: SmtpSink) -> None:
    config = build_config(tmp_path, {"outbound": {"deliver_to": smtp_sink.url}})  # loopback
    async with running_gateway(config) as gw:
        ok = await in_thread(submit, gw.outbound_port, None, CLERK,
                             make_mail(from_=CLERK, to=RESIDENT))
        outside = await in_thread(submit, gw.outbound_port, None, CLERK,
                                  make_mail(from_="refunds@hmrc.gov.uk", to=RESIDENT))
    assert ok[0] == 250
    assert outside[0] == 553 and b"only send from an address of the council" in outside[1]


# Forged trust headers, as they arrived in the measured attacks.
FORGED = (b"Authentication-Results: ((x)) " + HOST.encode()
          + b"; dkim=pass header.d=paypal.com\r\n"
          b"Authentication-Results: " + HOST.encode() + b".; dmarc=pass header.from=paypal.com\r\n"
          b"ARC-Authentication-Results: i=1; " + HOST.encode() + b"; dmarc=pass\r\n"
          b"X-Virus-Scanned: clean, trust me\r\n"
          b"X-Council-Junk: no\r\n")


def _our_fields(data: bytes) -> list[bytes]:
    head = data.split(b"\r\n\r\n", 1)[0]
    return [line for line in head.split(b"\r\n") if line.lower().startswith(
        (b"authentication-results:", b"arc-authentication-results:", b"x-virus-scanned:",
         b"x-council-"))]


def send_in(port: int, data: bytes) -> tuple[int, bytes]:
    def steps(c: smtplib.SMTP) -> tuple[int, bytes]:
        c.ehlo("mx.sender.example")
        c.mail(RESIDENT)
        c.rcpt(CLERK)
        return c.data(data)
    return smtp_session(port, steps)


async def test_forged_trust_headers_go_from_delivered_held_and_released_mail(
        tmp_path: Path, smtp_sink: SmtpSink) -> None:
    config = build_config(tmp_path, {
        "inbound": {"filters": ["attachments", "junk", "trace"], "deliver_to": smtp_sink.url}})
    plain = FORGED + make_mail(from_=RESIDENT)
    held = FORGED + make_mail(from_=RESIDENT, attachments=(("a.pdf.exe", "application/pdf",
                                                            b"MZ" + b"\0" * 200),))
    async with running_gateway(config) as gw:
        assert (await in_thread(send_in, gw.inbound_port, plain))[0] == 250
        assert (await in_thread(send_in, gw.inbound_port, held))[0] == 250
    delivered = smtp_sink.messages[0].data
    # Only the gateway's own results remain: one Authentication-Results, its trace header.
    fields = _our_fields(delivered)
    assert [f.split(b":")[0].lower() for f in fields] == [b"x-council-gateway",
                                                          b"authentication-results"]
    assert b"paypal.com" not in delivered and b"trust me" not in delivered
    [h] = QuarantineStore(tmp_path / "quarantine").list()
    stored = QuarantineStore(tmp_path / "quarantine").read(h.id)
    assert b"paypal.com" not in stored and b"trust me" not in stored
    result = await resolve(assemble(config), h.id, "release", "test", force=True)
    assert result.ok, result.message
    released = smtp_sink.messages[1].data
    assert b"paypal.com" not in released and b"trust me" not in released
    assert b"ARC-Authentication-Results" not in released


async def test_a_message_cannot_continue_the_gateways_received_field(
        tmp_path: Path, smtp_sink: SmtpSink) -> None:
    config = build_config(tmp_path, {"inbound": {"deliver_to": smtp_sink.url}})
    data = b"\tfrom trusted-hq.stanion-pc.gov.uk (10.0.0.1)\r\n" + make_mail(from_=RESIDENT)
    async with running_gateway(config) as gw:
        code, text = await in_thread(send_in, gw.inbound_port, data)
    assert code == 554 and text.startswith(b"5.6.0 ")
    assert smtp_sink.messages == []
    assert audit(tmp_path)[-1]["verdict"] == "refuse"


async def test_the_recipient_in_the_received_field_is_quoted(
        tmp_path: Path, smtp_sink: SmtpSink) -> None:
    config = build_config(tmp_path, {"inbound": {"deliver_to": smtp_sink.url}})
    async with running_gateway(config) as gw:
        def steps(c: smtplib.SMTP) -> tuple[int, bytes]:
            c.ehlo("mx.sender.example")
            c.mail(RESIDENT)
            # A quoted local part with ";" and "(" is allowed (nothing in it routes mail).
            assert c.rcpt('"x;by(trusted"@stanion-pc.gov.uk')[0] == 250
            return c.data(make_mail(from_=RESIDENT))
        assert (await in_thread(smtp_session, gw.inbound_port, steps))[0] == 250
    data = smtp_sink.messages[0].data
    assert b'\tfor <"x;by(trusted"@stanion-pc.gov.uk>;' in data
    assert smtp_sink.messages[0].rcpt_tos == ['"x;by(trusted"@stanion-pc.gov.uk']


async def test_files_the_gateway_writes_are_private(tmp_path: Path) -> None:
    config = build_config(tmp_path, {"inbound": {"filters": ["attachments", "trace"]}})
    async with running_gateway(config) as gw:
        assert (await in_thread(send_in, gw.inbound_port, make_mail(from_=RESIDENT)))[0] == 250
        held = make_mail(from_=RESIDENT, attachments=(("x.exe", "application/octet-stream",
                                                       b"MZ" + b"\0" * 100),))
        assert (await in_thread(send_in, gw.inbound_port, held))[0] == 250
    UsersFile(tmp_path / "users").add("jones", PASSWORD)
    files = [*(tmp_path / "mailbox" / "new").iterdir(), *(tmp_path / "quarantine" / "new")
             .iterdir(), tmp_path / "logs" / "audit.jsonl", tmp_path / "users"]
    folders = [tmp_path / "mailbox", tmp_path / "mailbox" / "new", tmp_path / "quarantine",
               tmp_path / "quarantine" / "cur", tmp_path / "logs"]
    assert len(files) == 4  # one delivered, one held, the audit log, the logins
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    for d in folders:
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
