"""Only the gateway writes its own trust headers: every forged spelling of them is removed
before anything reads the message, and everything else is kept byte for byte."""

from __future__ import annotations

import pytest

from gateway.mime.headers import authserv_id, strip_trust_headers

OWN = "mail.stanion-pc.gov.uk"
REST = b"Subject: hi\r\nFrom: a@example.org\r\n\r\nbody\r\n"

FORGED = [
    b"Authentication-Results: mail.stanion-pc.gov.uk; dmarc=pass header.from=paypal.com",
    b"Authentication-Results: MAIL.Stanion-PC.gov.uk; dkim=pass header.d=paypal.com",
    b"Authentication-Results: mail.stanion-pc.gov.uk.; dkim=pass header.d=paypal.com",
    b"Authentication-Results: ((x)) mail.stanion-pc.gov.uk; dkim=pass header.d=paypal.com",
    b"Authentication-Results: (a (nested) comment) mail.stanion-pc.gov.uk (more);\r\n"
    b" spf=pass smtp.mailfrom=paypal.com",
    b"Authentication-Results:\r\n\tmail.stanion-pc.gov.uk; dmarc=pass",
    b"authentication-results : mail.stanion-pc.gov.uk; dmarc=pass",
    b"Authentication-Results: mail.stanion-pc.gov.uk 1; dmarc=pass",  # a version number
    b"ARC-Authentication-Results: i=1; mail.stanion-pc.gov.uk; dmarc=pass",
    b"ARC-Authentication-Results: i=2; (c) MAIL.stanion-pc.gov.uk.; dkim=pass",
    b"X-Virus-Scanned: ClamAV 1.4.6",
    b"X-Council-Junk: no",
    b"X-Council-Gateway: mail.stanion-pc.gov.uk inbound id=1 version=0.1.0",
    b"x-council-confidential: label=present",
    b"X-Quarantine-Reason: released by the clerk",
]
KEPT = [
    b"Authentication-Results: mx.google.com; dkim=pass header.d=example.org",
    b"Authentication-Results: mail.stanion-pc.gov.uk.evil.example; dkim=pass",
    b"Authentication-Results: evil.example; note=mail.stanion-pc.gov.uk",
    b"ARC-Authentication-Results: i=1; mx.microsoft.com; dmarc=pass",
    b"X-Councillor: a heading of our own, not the gateway's",
    b"Received: from mail.stanion-pc.gov.uk by mx.example",
]


@pytest.mark.parametrize("field", FORGED)
def test_each_forged_spelling_is_removed(field: bytes) -> None:
    assert strip_trust_headers(field + b"\r\n" + REST, OWN) == REST


@pytest.mark.parametrize("field", KEPT)
def test_other_servers_fields_are_kept_byte_for_byte(field: bytes) -> None:
    data = field + b"\r\n" + REST
    assert strip_trust_headers(data, OWN) == data


def test_only_the_forged_ones_go_and_the_order_stays() -> None:
    data = (KEPT[0] + b"\r\n" + FORGED[0] + b"\r\n" + KEPT[3] + b"\r\n" + FORGED[8] + b"\r\n"
            + REST)
    assert strip_trust_headers(data, OWN) == KEPT[0] + b"\r\n" + KEPT[3] + b"\r\n" + REST


def test_a_body_line_that_looks_like_a_header_is_not_touched() -> None:
    data = REST + b"X-Virus-Scanned: in the body\r\n"
    assert strip_trust_headers(data, OWN) == data


@pytest.mark.parametrize("name,value,expected", [
    ("authentication-results", " a.example; spf=pass", "a.example"),
    ("authentication-results", " (c) A.Example. ; spf=pass", "a.example"),
    ("authentication-results", " a.example 1; spf=pass", "a.example"),
    ("arc-authentication-results", " i=1; (x (y)) b.example; dmarc=fail", "b.example"),
    ("authentication-results", " ; nothing", ""),
])
def test_authserv_id(name: str, value: str, expected: str) -> None:
    assert authserv_id(name, value) == expected
