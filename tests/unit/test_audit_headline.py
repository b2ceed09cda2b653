"""The audit record's subject and Message-ID, read without the header parser when the fields
are plain ASCII: the same words as the email package reads, for every shape of header."""

from __future__ import annotations

import email.policy
from email.parser import BytesHeaderParser

import pytest

from gateway.audit import _headline
from gateway.mime.headers import SHOWING_POLICY, SHOWN

HEADS = {
    "plain": b"From: a@example.org\r\nSubject: Allotments\r\nMessage-ID: <1@example.org>\r\n",
    "folded subject": b"Subject: The footpath\r\n by the church\r\n\tand the bridge\r\n"
                      b"Message-ID: <2@example.org>\r\n",
    "folded id": b"Subject: x\r\nMessage-ID:\r\n <3@example.org>\r\n",
    "lower case, space before colon": b"subject : quiet\r\nmessage-id  :  <4@example.org>\r\n",
    "two subjects": b"Subject: first\r\nSubject: second\r\nMessage-ID: <5@example.org>\r\n",
    "no subject": b"From: a@example.org\r\nMessage-ID: <6@example.org>\r\n",
    "no message id": b"Subject: Hello   there\r\n",
    "nothing": b"From: a@example.org\r\n",
    "encoded word": b"Subject: =?utf-8?q?Caf=C3=A9?= meeting\r\nMessage-ID: <7@example.org>\r\n",
    "eight-bit": "Subject: Café meeting\r\nMessage-ID: <8@example.org>\r\n".encode(),
    "not a field": b"Subject: first\r\nthis is no field\r\nMessage-ID: <9@example.org>\r\n",
    "look-alike names": b"X-Subject: no\r\nSubjects: no\r\nMessage-IDs: <no>\r\n"
                        b"Subject: yes\r\n",
}


def _parsed(head: bytes) -> tuple[str, str]:
    msg = BytesHeaderParser(policy=email.policy.SMTP).parsebytes(head)
    return (" ".join(str(msg.get("subject", "")).split()),
            str(msg.get("message-id", "")).strip())


@pytest.mark.parametrize("name", list(HEADS))
def test_the_headline_reads_as_the_email_package_reads_it(name: str) -> None:
    head = HEADS[name]
    assert _headline(head + b"\r\nBody: not a header\r\n") == _parsed(head)


def test_encoded_subjects_are_decoded() -> None:
    assert _headline(HEADS["encoded word"] + b"\r\n") == ("Café meeting", "<7@example.org>")


@pytest.mark.parametrize("words", [b"plain", b"=?utf-8?q?Caf=C3=A9?="])
def test_a_long_subject_is_cut_the_same_way_on_both_paths(words: bytes) -> None:
    # A Subject folded over 200,000 lines: the header parser would take most of a minute.
    head = b"Message-ID: <10@example.org>\r\nSubject: " + words + b"\r\n x" * 200_000 + b"\r\n"
    subject, message_id = _headline(head + b"\r\nbody\r\n")
    assert subject.startswith(words.decode() if words == b"plain" else "Café")
    assert subject.endswith(" x x x") and len(subject) <= SHOWN
    assert message_id == "<10@example.org>"
    fields = BytesHeaderParser(policy=SHOWING_POLICY).parsebytes(head)
    assert subject == " ".join(str(fields["subject"]).split())
