"""The confidential, access_codes and language filters through the real outbound listener:
a councillor's mail program (smtplib) -> the gateway -> a recording SMTP server."""

from __future__ import annotations

import json
import smtplib
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from pathlib import Path
from typing import Any

from gateway.quarantine.store import QuarantineStore
from tests.conftest import SmtpSink, build_config, running_gateway
from tests.documents import DOCX, as_bytes, make_docx, message_with
from tests.helpers import in_thread, smtp_session

CLLR = "cllr.smith@stanion-pc.gov.uk"
CLERK = "clerk@stanion-pc.gov.uk"
LABEL = "Restricted Distribution Private and Confidential"


def settings(sink: SmtpSink, **sections: Any) -> dict[str, Any]:
    return {
        # notices go out through the inbound next hop, here the same recording server
        "inbound": {"deliver_to": sink.url},
        "outbound": {"deliver_to": sink.url,
                     "filters": ["trace", "confidential", "access_codes", "language"]},
        **sections,
    }


def submit(port: int, msg: EmailMessage, rcpts: list[str]) -> tuple[int, bytes]:
    """MAIL, RCPT, DATA as a mail program does; returns the reply to DATA."""
    def steps(c: smtplib.SMTP) -> tuple[int, bytes]:
        c.ehlo("laptop.stanion-pc.gov.uk")
        assert c.mail(CLLR)[0] == 250
        for r in rcpts:
            assert c.rcpt(r)[0] == 250
        return c.data(as_bytes(msg))
    return smtp_session(port, steps)


def parsed(data: bytes) -> EmailMessage:
    msg = BytesParser(policy=default).parsebytes(data)
    assert isinstance(msg, EmailMessage)
    return msg


def audit(tmp_path: Path) -> list[dict[str, Any]]:
    lines = (tmp_path / "logs" / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


async def test_flag_delivers_with_header_and_sends_the_notice(tmp_path: Path,
                                                              smtp_sink: SmtpSink) -> None:
    config = build_config(tmp_path, settings(smtp_sink, confidential={"notify_sender": True}))
    msg = message_with(subject="Staffing", body="Notes attached.\n", attachments=(
        ("staffing.docx", make_docx("Jo's sickness record is personal data."), DOCX),))
    async with running_gateway(config) as gw:
        code, reply = await in_thread(submit, gw.outbound_port, msg, [CLERK, "hr@example.org"])
        assert code == 250
        await smtp_sink.wait_for(2)
    delivered = next(m for m in smtp_sink.messages if m.mail_from == CLLR)
    assert delivered.rcpt_tos == [CLERK, "hr@example.org"]
    assert parsed(delivered.data)["X-Council-Confidential"] == (
        'label=absent; found: the phrase "personal data" in the attachment "staffing.docx"; '
        "1 recipient outside the council")
    notice = next(m for m in smtp_sink.messages if m.mail_from == "")
    assert notice.rcpt_tos == [CLLR]
    body = parsed(notice.data).get_content()
    assert "delivered, marked for the clerk's attention" in body
    assert 'the phrase "personal data" in the attachment "staffing.docx"' in body
    record = audit(tmp_path)[-1]
    assert record["verdict"] == "tag"
    assert any(f["filter"] == "confidential" and f["code"] == "confidential.marker"
               for f in record["findings"])


async def test_hold_quarantines_and_answers_250(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    config = build_config(tmp_path, settings(smtp_sink, confidential={"action": {
        "outbound": "hold"}}))
    msg = message_with(subject="Tender", body="Commercially sensitive tender figures.\n")
    async with running_gateway(config) as gw:
        code, reply = await in_thread(submit, gw.outbound_port, msg, [CLERK])
    assert code == 250
    assert reply.startswith(b"2.0.0 Held for the clerk to review before it is sent: the phrase "
                            b'"commercially sensitive" in the message text, without the label')
    assert smtp_sink.messages == []
    (held,) = QuarantineStore(tmp_path / "quarantine").list()
    assert held.direction == "outbound" and held.rcpt_tos == (CLERK,)
    assert held.reasons[0].startswith('the phrase "commercially sensitive" in the message text')
    assert audit(tmp_path)[-1]["verdict"] == "hold"


async def test_reject_answers_550_with_what_to_do(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    config = build_config(tmp_path, settings(smtp_sink, confidential={"action": "reject"}))
    msg = message_with(subject="Hardship grant", body="Her NI number is AB 12 34 56 C.\n")
    async with running_gateway(config) as gw:
        code, reply = await in_thread(submit, gw.outbound_port, msg, [CLERK])
    assert code == 550
    assert reply.startswith(b"5.7.1 Not sent: the message contains a National Insurance number "
                            b"in the message text but is not marked "
                            b'"Restricted Distribution Private and Confidential".')
    assert reply.endswith(b"add the label to the Subject or the top of the message, then send "
                          b"it again.")
    assert smtp_sink.messages == []


async def test_labelled_mail_to_the_council_goes_through_untouched(tmp_path: Path,
                                                                   smtp_sink: SmtpSink) -> None:
    config = build_config(tmp_path, settings(smtp_sink, confidential={"action": "reject"}))
    msg = message_with(subject=f"{LABEL}: hardship grant",
                       body="Her NI number is AB 12 34 56 C.\n")
    async with running_gateway(config) as gw:
        code, _ = await in_thread(submit, gw.outbound_port, msg, [CLERK])
        await smtp_sink.wait_for(1)
    assert code == 250
    delivered = parsed(smtp_sink.messages[0].data)
    assert delivered["X-Council-Confidential"] is None
    assert delivered["X-Council-Gateway"] is not None
    assert smtp_sink.messages[0].data.endswith(as_bytes(msg))  # only header fields added


async def test_access_code_rejected_and_language_flagged(tmp_path: Path,
                                                         smtp_sink: SmtpSink) -> None:
    config = build_config(tmp_path, settings(smtp_sink, access_codes={"action": "reject"}))
    async with running_gateway(config) as gw:
        code, reply = await in_thread(submit, gw.outbound_port, message_with(
            body="The alarm code is 4512.\n"), [CLERK])
        assert code == 550
        assert reply.startswith(b"5.7.1 Not sent: the message appears to contain a door, alarm "
                                b"or key safe code in the message text.")
        code, _ = await in_thread(submit, gw.outbound_port, message_with(
            subject="Scunthorpe trip", body="The driver was a complete pillock.\n"), [CLERK])
        assert code == 250
        await smtp_sink.wait_for(1)
    delivered = parsed(smtp_sink.messages[0].data)
    assert delivered["X-Council-Language"] == 'found: "pillock" in the message text'
