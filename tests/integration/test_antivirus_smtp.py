"""Viruses and dangerous attachments through the real listeners: a real SMTP client, the gateway
on loopback, a real clamd and a recording next hop.

Stanion "Virus Protection" and "Email"; Kirkham rules 2 and 14.
"""

from __future__ import annotations

import json
import smtplib
from pathlib import Path
from typing import Any

from gateway.quarantine.store import QuarantineStore
from tests import samples
from tests.conftest import SmtpSink, build_config, running_gateway
from tests.fixtures_clamd import ClamdInstance
from tests.helpers import in_thread, send

CLERK = "clerk@stanion-pc.gov.uk"
CHAIR = "chair@stanion-pc.gov.uk"
COUNCILLOR = "cllr.jones@stanion-pc.gov.uk"
RESIDENT = "resident@example.org"
CHAIN = ["trace", "antivirus", "attachments"]


def _config(tmp_path: Path, sink: SmtpSink, address: str, **clamav: Any) -> Any:
    return build_config(tmp_path, {
        "inbound": {"deliver_to": sink.url, "filters": CHAIN},
        "outbound": {"deliver_to": sink.url, "filters": CHAIN},
        "clamav": {"address": address, "timeout": 5, **clamav},
    })


async def _send(port: int, mail_from: str, rcpt: str, data: bytes) -> Any:
    try:
        return await in_thread(send, port, mail_from, [rcpt], data)
    except smtplib.SMTPResponseException as e:
        return e


def _audit(tmp_path: Path) -> list[dict[str, Any]]:
    lines = (tmp_path / "logs" / "audit.jsonl").read_text().splitlines()
    return [json.loads(x) for x in lines]


async def test_eicar_from_outside_is_refused_with_554_and_the_clerk_is_told(
        clamd: ClamdInstance, tmp_path: Path, smtp_sink: SmtpSink) -> None:
    config = _config(tmp_path, smtp_sink, clamd.address, alert_to=[CLERK, CHAIR])
    msg = samples.message(("invoice.zip", "application/zip",
                           samples.zip_of({"invoice.txt": samples.EICAR})), sender=RESIDENT)
    async with running_gateway(config) as gw:
        err = await _send(gw.inbound_port, RESIDENT, CLERK, msg)
        alerts = await smtp_sink.wait_for(1)
    assert isinstance(err, smtplib.SMTPDataError)
    assert err.smtp_code == 554
    assert err.smtp_error == (b"5.7.1 Message rejected: the attachment invoice.zip contains "
                              b"Eicar-Test-Signature")
    # The only mail that went on is the alert, to the clerk and the chairman.
    assert len(alerts) == 1
    assert alerts[0].mail_from == "" and sorted(alerts[0].rcpt_tos) == sorted([CLERK, CHAIR])
    assert b"Virus stopped: Eicar-Test-Signature" in alerts[0].data
    record = _audit(tmp_path)[-1]
    assert record["verdict"] == "refuse"
    finding = {"filter": "antivirus", "code": "virus", "severity": "high",
               "text": "virus Eicar-Test-Signature in the attachment invoice.zip"}
    assert finding in record["findings"]


async def test_eicar_from_a_councillor_is_refused(clamd: ClamdInstance, tmp_path: Path,
                                                  smtp_sink: SmtpSink) -> None:
    config = _config(tmp_path, smtp_sink, clamd.address)
    msg = samples.message(body=samples.EICAR.decode() + "\n", sender=COUNCILLOR, to=RESIDENT)
    async with running_gateway(config) as gw:
        err = await _send(gw.outbound_port, COUNCILLOR, RESIDENT, msg)
    assert isinstance(err, smtplib.SMTPDataError) and err.smtp_code == 554
    assert err.smtp_error == b"5.7.1 Message rejected: the message contains Eicar-Test-Signature"
    assert smtp_sink.messages == []


async def test_clean_mail_is_delivered_with_the_scanner_header(clamd: ClamdInstance,
                                                               tmp_path: Path,
                                                               smtp_sink: SmtpSink) -> None:
    config = _config(tmp_path, smtp_sink, clamd.address)
    msg = samples.message(("minutes.pdf", "application/pdf", samples.pdf()))
    reply = samples.message(("minutes.pdf", "application/pdf", samples.pdf()),
                            sender=COUNCILLOR, to=RESIDENT)
    async with running_gateway(config) as gw:
        assert await _send(gw.inbound_port, RESIDENT, CLERK, msg) == {}
        assert await _send(gw.outbound_port, COUNCILLOR, RESIDENT, reply) == {}
    assert len(smtp_sink.messages) == 2
    for received, sent in zip(smtp_sink.messages, (msg, reply), strict=True):
        assert b"\r\nX-Virus-Scanned: ClamAV " in b"\r\n" + received.data
        assert received.data.endswith(sent)  # the message itself is untouched


async def test_clamd_killed_gives_451_and_the_retry_after_restart_is_delivered(
        own_clamd: ClamdInstance, tmp_path: Path, smtp_sink: SmtpSink) -> None:
    config = _config(tmp_path, smtp_sink, own_clamd.address)
    msg = samples.message(("minutes.pdf", "application/pdf", samples.pdf()))
    async with running_gateway(config) as gw:
        assert await _send(gw.inbound_port, RESIDENT, CLERK, msg) == {}
        own_clamd.kill()
        err = await _send(gw.inbound_port, RESIDENT, CLERK, msg)
        assert isinstance(err, smtplib.SMTPDataError)
        assert err.smtp_code == 451
        assert err.smtp_error == b"4.7.1 Virus scanner unavailable, try again later"
        assert len(smtp_sink.messages) == 1  # nothing went through unscanned
        await in_thread(own_clamd.start)
        assert await _send(gw.inbound_port, RESIDENT, CLERK, msg) == {}  # the sender's retry
    assert len(smtp_sink.messages) == 2
    assert all(m.data.endswith(msg) for m in smtp_sink.messages)


async def test_councillor_sending_a_program_is_refused_naming_the_file(
        clamd: ClamdInstance, tmp_path: Path, smtp_sink: SmtpSink) -> None:
    config = _config(tmp_path, smtp_sink, clamd.address)
    msg = samples.message(("invoice.pdf.exe", "application/octet-stream", samples.pdf()),
                          sender=COUNCILLOR, to=RESIDENT)
    async with running_gateway(config) as gw:
        err = await _send(gw.outbound_port, COUNCILLOR, RESIDENT, msg)
    assert isinstance(err, smtplib.SMTPDataError) and err.smtp_code == 554
    assert err.smtp_error == (b"5.7.1 Message rejected: the attachment invoice.pdf.exe has a "
                              b"double extension: it looks like a .pdf file but is really a "
                              b".exe file")
    assert smtp_sink.messages == []


async def test_locked_archive_from_outside_is_held_for_the_clerk(
        clamd: ClamdInstance, tmp_path: Path, smtp_sink: SmtpSink) -> None:
    config = _config(tmp_path, smtp_sink, clamd.address)
    locked = samples.encrypted_zip(tmp_path / "work", {"statement.pdf": samples.pdf()})
    msg = samples.message(("statement.zip", "application/zip", locked))
    async with running_gateway(config) as gw:
        assert await _send(gw.inbound_port, RESIDENT, CLERK, msg) == {}
    assert smtp_sink.messages == []
    held = QuarantineStore(tmp_path / "quarantine").list()
    assert len(held) == 1
    assert held[0].reasons == ("the attachment statement.zip is a password-protected archive, "
                               "which cannot be checked for viruses",)
