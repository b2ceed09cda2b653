"""SMTP smuggling (CVE-2023-51764 family): a bare-LF end-of-data trick never splits one message
into two at the next hop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import SmtpSink, build_config, running_gateway


async def _talk(port: int, payload: bytes) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    replies = [await reader.readline()]

    async def cmd(line: bytes) -> bytes:
        writer.write(line)
        await writer.drain()
        while True:
            reply = await reader.readline()
            if reply[3:4] != b"-":
                return reply

    replies.append(await cmd(b"EHLO attacker.example\r\n"))
    replies.append(await cmd(b"MAIL FROM:<resident@example.org>\r\n"))
    replies.append(await cmd(b"RCPT TO:<clerk@stanion-pc.gov.uk>\r\n"))
    replies.append(await cmd(b"DATA\r\n"))
    replies.append(await cmd(payload))
    replies.append(await cmd(b"QUIT\r\n"))
    writer.close()
    return replies


@pytest.mark.parametrize("trick", [b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\r.\r\n", b"\r\n.\r"])
async def test_smuggled_second_message_stays_inside_the_first(
        tmp_path: Path, smtp_sink: SmtpSink, trick: bytes) -> None:
    config = build_config(tmp_path, {"inbound": {"deliver_to": smtp_sink.url}})
    payload = (b"From: resident@example.org\r\nTo: clerk@stanion-pc.gov.uk\r\n"
               b"Subject: hello\r\n\r\nfirst body" + trick +
               b"MAIL FROM:<ceo@stanion-pc.gov.uk>\r\nRCPT TO:<clerk@stanion-pc.gov.uk>\r\n"
               b"DATA\r\nFrom: ceo@stanion-pc.gov.uk\r\nSubject: smuggled\r\n\r\npay now\r\n"
               b".\r\n")
    async with running_gateway(config) as gw:
        replies = await _talk(gw.inbound_port, payload)
    assert replies[5].startswith(b"250 "), replies
    assert len(smtp_sink.messages) == 1
    got = smtp_sink.messages[0]
    assert got.mail_from == "resident@example.org"
    # The would-be second message is body text of the first, its lone dot dot-stuffed on the
    # wire and restored by the next hop: one message, nothing split off.
    assert b"first body\r\n" in got.data
    assert b"Subject: smuggled" in got.data
    assert b"\n" not in got.data.replace(b"\r\n", b"")
    assert b"\r" not in got.data.replace(b"\r\n", b"")
