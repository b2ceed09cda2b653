"""The policy the gateway parses with: policy.SMTP, with parsed header fields remembered."""

from __future__ import annotations

import email.policy
from email.parser import BytesParser

from gateway.context import READING_POLICY, parse_message

MESSAGE = (b"From: Pat <pat@example.org>\r\nTo: clerk@stanion-pc.gov.uk\r\n"
           b"Subject: =?utf-8?q?Caf=C3=A9?= plans\r\nMIME-Version: 1.0\r\n"
           b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
           b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello\r\n"
           b'--b\r\nContent-Type: application/pdf; name="a.pdf"\r\n'
           b'Content-Disposition: attachment; filename="a.pdf"\r\n\r\n%PDF\r\n--b--\r\n')


def test_reads_every_field_as_policy_smtp_does():
    ours = parse_message(MESSAGE)
    stdlib = BytesParser(policy=email.policy.SMTP).parsebytes(MESSAGE)
    for name in ("from", "to", "subject", "content-type"):
        assert str(ours[name]) == str(stdlib[name])
    assert ([(p.get_content_type(), p.get_filename(), p.get_content_disposition())
             for p in ours.walk()]
            == [(p.get_content_type(), p.get_filename(), p.get_content_disposition())
                for p in stdlib.walk()])
    assert ours.as_bytes() == stdlib.as_bytes()
    assert READING_POLICY.linesep == email.policy.SMTP.linesep == "\r\n"


def test_the_same_field_is_parsed_once_and_the_longest_every_time():
    a, b = parse_message(MESSAGE), parse_message(MESSAGE)
    assert a["content-type"] is b["content-type"]  # shared between messages: parsed once
    long = b"From: " + b"(x)" * 2000 + b" a@example.org\r\n\r\nbody\r\n"
    c = parse_message(long)
    assert c["from"] is c["from"]  # a long field, read by several checks: parsed once
    longest = b"Subject: " + b"x " * 5000 + b"\r\n\r\nbody\r\n"  # over 8 KiB: not kept
    e, f = parse_message(longest), parse_message(longest)
    assert str(e["subject"]) == str(f["subject"]) and e["subject"] is not f["subject"]
