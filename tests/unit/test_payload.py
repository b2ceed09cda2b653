"""A part's decoded bytes are what the email package's own decoding gives, for well-formed and
damaged base64 alike, and for the other transfer encodings."""

from __future__ import annotations

import email.policy
from email.message import Message
from email.parser import BytesParser

import pytest

from gateway.mime.payload import decoded_payload


def _part(cte: str, body: bytes) -> Message:
    raw = (b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: "
           + cte.encode() + b"\r\n\r\n" + body + b"\r\n")
    return BytesParser(policy=email.policy.SMTP).parsebytes(raw)


@pytest.mark.parametrize(("cte", "body"), [
    ("base64", b"aGVsbG8gd29y\r\nbGQ="),
    ("base64", b"aGVsbG8"),  # padding missing
    ("base64", b"aGVs*bG8="),  # a character outside the alphabet
    ("base64", b"aGVsbG8=aGVsbG8="),  # data after the padding
    ("base64", b"aGV\xffsbG8="),  # an 8-bit byte
    ("base64", b""),
    ("quoted-printable", b"caf=C3=A9 =\r\nnext"),
    ("7bit", b"plain text"),
    ("8bit", "café".encode()),
])
def test_as_the_email_package_decodes(cte: str, body: bytes) -> None:
    part = _part(cte, body)
    assert decoded_payload(part) == part.get_payload(decode=True)


def test_multipart_has_no_payload_of_its_own() -> None:
    msg = BytesParser(policy=email.policy.SMTP).parsebytes(
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n')
    assert decoded_payload(msg) is None
