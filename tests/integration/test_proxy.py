"""The proxy spine against real sockets: relay rules, addresses, size, next-hop behaviour."""

from __future__ import annotations

import json
import smtplib
import socket
from pathlib import Path

import pytest

from tests.conftest import SmtpSink, build_config, running_gateway
from tests.helpers import in_thread, make_message, send, smtp_session


def _maildir_files(path: Path) -> list[Path]:
    return sorted((path / "new").iterdir()) if (path / "new").exists() else []


async def test_inbound_refuses_relay_to_other_domains(tmp_path: Path) -> None:
    config = build_config(tmp_path)
    async with running_gateway(config) as gw:
        def steps(c: smtplib.SMTP) -> tuple[int, bytes]:
            c.ehlo("client.example.org")
            c.mail("someone@example.org")
            return c.rcpt("victim@elsewhere.example")
        code, text = await in_thread(smtp_session, gw.inbound_port, steps)
    assert code == 550
    assert text.startswith(b"5.7.1 Relay access denied")


async def test_inbound_delivers_to_maildir_durably_before_250(tmp_path: Path) -> None:
    config = build_config(tmp_path)
    data = make_message()
    async with running_gateway(config) as gw:
        refused = await in_thread(send, gw.inbound_port, "resident@example.org",
                                  ["clerk@stanion-pc.gov.uk"], data)
        # 250 has been received: the file must already be in new/.
        files = _maildir_files(tmp_path / "mailbox")
    assert refused == {}
    assert len(files) == 1
    stored = files[0].read_bytes()
    assert stored.startswith(b"Return-Path: <resident@example.org>\nDelivered-To: clerk@stanion")
    assert b"Received: from " in stored
    assert b"X-Council-Gateway: gw.stanion-pc.gov.uk inbound" in stored
    # The message itself passes byte for byte (LF line endings in the Maildir).
    assert stored.endswith(data.replace(b"\r\n", b"\n"))
    assert not list((tmp_path / "mailbox" / "tmp").iterdir())


async def test_audit_log_has_one_line_per_message(tmp_path: Path) -> None:
    config = build_config(tmp_path)
    async with running_gateway(config) as gw:
        await in_thread(send, gw.inbound_port, "resident@example.org",
                        ["clerk@stanion-pc.gov.uk"], make_message(subject="Allotments"))
    lines = (tmp_path / "logs" / "audit.jsonl").read_text().splitlines()
    assert len(lines) == 1
    rec = json.loads(lines[0])
    assert rec["direction"] == "inbound"
    assert rec["mail_from"] == "resident@example.org"
    assert rec["rcpt_tos"] == ["clerk@stanion-pc.gov.uk"]
    assert rec["subject"] == "Allotments"
    assert rec["verdict"] == "deliver"
    assert rec["reply"].startswith("250 2.0.0")
    assert rec["message_id"].startswith("<") and rec["client"] == "127.0.0.1"
    assert rec["size"] > 0 and rec["ms"] >= 0


@pytest.mark.parametrize("address,code,enhanced", [
    ("no-at-sign", 501, b"5.1.7"),
    ("two@@example.org", 501, b"5.1.7"),
    ("dots..here@example.org", 501, b"5.1.7"),
])
async def test_bad_sender_address_is_refused_with_reason(tmp_path: Path, address: str, code: int,
                                                         enhanced: bytes) -> None:
    config = build_config(tmp_path)
    async with running_gateway(config) as gw:
        def steps(c: smtplib.SMTP) -> tuple[int, bytes]:
            c.ehlo("client.example.org")
            return c.mail(address)
        got_code, text = await in_thread(smtp_session, gw.inbound_port, steps)
    assert got_code == code
    assert text.startswith(enhanced + b" Bad sender address:")


async def test_bad_recipient_address_is_refused_with_reason(tmp_path: Path) -> None:
    config = build_config(tmp_path)
    async with running_gateway(config) as gw:
        def steps(c: smtplib.SMTP) -> tuple[int, bytes]:
            c.ehlo("client.example.org")
            c.mail("resident@example.org")
            return c.rcpt("clerk@@stanion-pc.gov.uk")
        code, text = await in_thread(smtp_session, gw.inbound_port, steps)
    assert code == 553 and text.startswith(b"5.1.3 Bad recipient address:")


async def test_null_sender_allowed_inbound_but_not_outbound(tmp_path: Path) -> None:
    config = build_config(tmp_path)
    async with running_gateway(config) as gw:
        def steps(c: smtplib.SMTP) -> tuple[int, bytes]:
            c.ehlo("client.example.org")
            return c.mail("<>")
        inbound = await in_thread(smtp_session, gw.inbound_port, steps)
        outbound = await in_thread(smtp_session, gw.outbound_port, steps)
    assert inbound[0] == 250
    assert outbound[0] == 553 and outbound[1].startswith(b"5.7.1")


async def test_smtputf8_address_needs_smtputf8(tmp_path: Path) -> None:
    config = build_config(tmp_path)
    async with running_gateway(config) as gw:
        def steps(c: smtplib.SMTP) -> tuple[tuple[int, bytes], tuple[int, bytes]]:
            c.ehlo("client.example.org")
            c.command_encoding = "utf-8"
            without = c.mail("jöe@example.org")
            c.rset()
            with_utf8 = c.mail("jöe@example.org", ["SMTPUTF8"])
            return without, with_utf8
        without, with_utf8 = await in_thread(smtp_session, gw.inbound_port, steps)
    assert without[0] == 501 and without[1].startswith(b"5.1.7")
    assert with_utf8[0] == 250


async def test_size_is_advertised_and_enforced(tmp_path: Path) -> None:
    config = build_config(tmp_path)  # 1 MiB limit
    big = make_message(body="x" * 70 + "\n") + (b"y" * 76 + b"\r\n") * 14000
    async with running_gateway(config) as gw:
        def steps(c: smtplib.SMTP) -> tuple[str, tuple[int, bytes], tuple[int, bytes]]:
            c.ehlo("client.example.org")
            size = c.esmtp_features.get("size", "")
            declared = c.mail("resident@example.org", [f"SIZE={2 * 1048576}"])
            c.rset()
            c.mail("resident@example.org")
            c.rcpt("clerk@stanion-pc.gov.uk")
            actual = c.data(big)
            return size, declared, actual
        size, declared, actual = await in_thread(smtp_session, gw.inbound_port, steps)
    assert size == str(1048576)
    assert declared[0] == 552 and declared[1].startswith(b"5.3.4")
    assert actual[0] == 552 and actual[1].startswith(b"5.3.4")
    assert not _maildir_files(tmp_path / "mailbox")
    # both refusals are in the audit log, with the reply the sender got
    audit = [json.loads(line) for line in
             (tmp_path / "logs" / "audit.jsonl").read_text().splitlines()]
    sizes = [e for e in audit if e["event"] == "refused" and e["stage"] == "size"]
    assert [e["reply"][:9] for e in sizes] == ["552 5.3.4", "552 5.3.4"], audit
    assert all(e["mail_from"] == "resident@example.org" for e in sizes[1:])


async def test_upstream_down_gives_451_and_nothing_is_accepted(tmp_path: Path) -> None:
    # A port nobody listens on: bind, note it, close.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead_port = s.getsockname()[1]
    s.close()
    config = build_config(tmp_path, {"inbound": {"deliver_to": f"smtp://127.0.0.1:{dead_port}"}})
    async with running_gateway(config) as gw:
        def steps(c: smtplib.SMTP) -> tuple[int, bytes]:
            c.ehlo("client.example.org")
            c.mail("resident@example.org")
            return c.rcpt("clerk@stanion-pc.gov.uk")
        code, text = await in_thread(smtp_session, gw.inbound_port, steps)
    assert code == 451 and text.startswith(b"4.4.1")


async def test_upstream_refusing_one_recipient_reaches_the_client(tmp_path: Path,
                                                                  smtp_sink: SmtpSink) -> None:
    smtp_sink.refuse_rcpt.add("nobody@stanion-pc.gov.uk")
    config = build_config(tmp_path, {"inbound": {"deliver_to": smtp_sink.url}})
    async with running_gateway(config) as gw:
        refused = await in_thread(send, gw.inbound_port, "resident@example.org",
                                  ["clerk@stanion-pc.gov.uk", "nobody@stanion-pc.gov.uk"],
                                  make_message())
    assert refused == {"nobody@stanion-pc.gov.uk": (550, b"5.1.1 No such mailbox here")}
    assert len(smtp_sink.messages) == 1
    assert smtp_sink.messages[0].rcpt_tos == ["clerk@stanion-pc.gov.uk"]
    assert b"X-Council-Gateway:" in smtp_sink.messages[0].data


async def test_upstream_refusing_data_temporarily_is_passed_on(tmp_path: Path,
                                                              smtp_sink: SmtpSink) -> None:
    smtp_sink.handler.data_reply = "452 4.3.1 Mailbox server out of space"
    config = build_config(tmp_path, {"inbound": {"deliver_to": smtp_sink.url}})
    async with running_gateway(config) as gw:
        with pytest.raises(smtplib.SMTPDataError) as err:
            await in_thread(send, gw.inbound_port, "resident@example.org",
                            ["clerk@stanion-pc.gov.uk"], make_message())
    assert err.value.smtp_code == 452
    assert err.value.smtp_error == b"4.3.1 Mailbox server out of space"


async def test_smtp_next_hop_receives_message_unchanged_but_for_headers(
        tmp_path: Path, smtp_sink: SmtpSink) -> None:
    config = build_config(tmp_path, {"inbound": {"deliver_to": smtp_sink.url}})
    data = make_message(body="Line one\nLine two\n")
    async with running_gateway(config) as gw:
        await in_thread(send, gw.inbound_port, "resident@example.org",
                        ["clerk@stanion-pc.gov.uk"], data)
    got = smtp_sink.messages[0]
    assert got.mail_from == "resident@example.org"
    assert got.data.endswith(data)
    top = got.data[: len(got.data) - len(data)]
    # The gateway's Received field on top, as an MTA writes it; its trace header below it, with
    # the same id.
    assert top.startswith(b"Received: from client.example.org ([127.0.0.1])\r\n\tby gw.stanion-pc")
    msg_id = top.split(b" id ", 1)[1].split(b"\r\n", 1)[0].split(b";", 1)[0]
    assert b"\r\nX-Council-Gateway: gw.stanion-pc.gov.uk inbound id=" + msg_id + b" " in top


async def test_unknown_command_errors_carry_enhanced_codes(tmp_path: Path) -> None:
    config = build_config(tmp_path)
    async with running_gateway(config) as gw:
        def steps(c: smtplib.SMTP) -> tuple[int, bytes]:
            c.ehlo("client.example.org")
            return c.docmd("RCPT TO:<clerk@stanion-pc.gov.uk>")
        code, text = await in_thread(smtp_session, gw.inbound_port, steps)
    assert code == 503 and text.startswith(b"5.5.1")
