"""Mail over a limit of what the gateway reads (parts, nesting, text, HTML depth, header
fields) is a "too-complex" finding through the real listener: held for the clerk when it comes
in, refused when a councillor sends it, as the policy says; never a 451 that would have it sent
again."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from gateway.mime.headers import SHOWN
from gateway.quarantine.store import QuarantineStore
from tests.conftest import SmtpSink, build_config, running_gateway
from tests.helpers import in_thread, make_message, send

LIMITS = {"max_parts": 10, "max_depth": 4, "max_text_size": "64KiB",
          "max_header_field": "8KiB"}
COUNCIL = "clerk@stanion-pc.gov.uk"
RESIDENT = "resident@example.org"


def _head(subject: str, sender: str = RESIDENT, to: str = COUNCIL) -> bytes:
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
            "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n").encode()


def many_parts(n: int = 12, **head: str) -> bytes:
    parts = b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\npart\r\n" for _ in range(n))
    return (_head("Many parts", **head) + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
            + parts + b"--b--\r\n")


def nested(depth: int = 6, **head: str) -> bytes:
    out = [_head("Nested", **head)]
    for level in range(depth):
        out.append(f'Content-Type: multipart/mixed; boundary="n{level}"\r\n\r\n'
                   f"--n{level}\r\n".encode())
    out.append(b"Content-Type: text/plain\r\n\r\nat the bottom\r\n")
    out += [f"--n{level}--\r\n".encode() for level in reversed(range(depth))]
    return b"".join(out)


def much_text(**head: str) -> bytes:
    msg = EmailMessage()
    msg.set_content("The minutes of the meeting, at some length.\n" * 2000)  # 88 KB
    body = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
    return _head("Minutes", **head) + body


def deep_html(**head: str) -> bytes:
    html = "<div>\r\n" * 300 + "personal data of a resident" + "</div>\r\n" * 300
    return (_head("Newsletter", **head) + b"Content-Type: text/html; charset=utf-8\r\n\r\n"
            + html.encode())


def folded_subject(**head: str) -> bytes:
    """A Subject folded over 200,000 lines (600 KB): the email package's header parser took
    most of a minute over it."""
    return _head("Folded" + "\r\n x" * 200_000, **head) + b"\r\nhello\r\n"


def long_from(sender: str = RESIDENT, to: str = COUNCIL) -> bytes:
    head = _head("Comments", sender, to).replace(b"From: ", b"From: " + b"(x)" * 500 + b" ")
    return head + b"\r\nhello\r\n"


async def _send(port: int, sender: str, to: str, data: bytes) -> Any:
    try:
        return await in_thread(send, port, sender, [to], data)
    except smtplib.SMTPException as e:
        return e


def _config(tmp_path: Path, sink: SmtpSink, policy: dict[str, Any] | None = None) -> Any:
    return build_config(tmp_path, {
        "gateway": LIMITS,
        "inbound": {"deliver_to": sink.url, "filters": ["confidential", "trace"]},
        "outbound": {"deliver_to": sink.url, "filters": ["confidential", "trace"]},
        "policy": policy or {},
    })


MESSAGES = [
    pytest.param(many_parts, "more than 10 parts", id="parts"),
    pytest.param(nested, "nested more than 4 deep", id="depth"),
    pytest.param(much_text, "more than 0.0625 MiB of text", id="text"),
    pytest.param(deep_html, "HTML is nested too deep", id="html-depth"),
    pytest.param(folded_subject, "its Subject header field is longer than 8 KiB",
                 id="folded-subject"),
    pytest.param(long_from, "are too intricate to check safely", id="from"),
]


@pytest.mark.parametrize("make, why", MESSAGES)
async def test_inbound_mail_over_a_limit_is_held_for_the_clerk(
        tmp_path: Path, smtp_sink: SmtpSink, make: Any, why: str) -> None:
    async with running_gateway(_config(tmp_path, smtp_sink)) as gw:
        result = await _send(gw.inbound_port, RESIDENT, COUNCIL, make())
    assert result == {}, result
    assert smtp_sink.messages == []
    [held] = QuarantineStore(tmp_path / "quarantine").list()
    assert "too-complex" in [f.code for f in held.findings]
    assert any(why in r for r in held.reasons), held.reasons
    assert len(held.subject) <= SHOWN  # the clerk's list reads a long field only so far


@pytest.mark.parametrize("make, why", MESSAGES)
async def test_a_councillors_mail_over_a_limit_is_refused_saying_why(
        tmp_path: Path, smtp_sink: SmtpSink, make: Any, why: str) -> None:
    async with running_gateway(_config(tmp_path, smtp_sink)) as gw:
        err = await _send(gw.outbound_port, COUNCIL, RESIDENT,
                          make(sender=COUNCIL, to=RESIDENT))
    assert isinstance(err, smtplib.SMTPDataError), err
    assert err.smtp_code == 554 and err.smtp_error.startswith(b"5.6.0 Message rejected: ")
    assert why.encode() in err.smtp_error
    assert smtp_sink.messages == []


async def test_the_council_may_refuse_it_inbound_too(tmp_path: Path,
                                                    smtp_sink: SmtpSink) -> None:
    config = _config(tmp_path, smtp_sink, {"too-complex": "refuse"})
    async with running_gateway(config) as gw:
        err = await _send(gw.inbound_port, RESIDENT, COUNCIL, many_parts())
        ok = await _send(gw.inbound_port, RESIDENT, COUNCIL, make_message())
    assert isinstance(err, smtplib.SMTPDataError) and err.smtp_code == 554
    assert ok == {}
    assert len(smtp_sink.messages) == 1  # mail under the limits goes through
    assert QuarantineStore(tmp_path / "quarantine").list() == []


async def test_mail_just_under_the_limits_is_checked_and_passed_on(
        tmp_path: Path, smtp_sink: SmtpSink) -> None:
    async with running_gateway(_config(tmp_path, smtp_sink)) as gw:
        for data in (many_parts(8), nested(3)):
            assert await _send(gw.inbound_port, RESIDENT, COUNCIL, data) == {}
    assert len(smtp_sink.messages) == 2
    assert QuarantineStore(tmp_path / "quarantine").list() == []
