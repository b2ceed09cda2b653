"""DATA read in bulk through the real listener: the next hop gets the message as written, and
commands pipelined behind the end of a message are read as commands."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.conftest import SmtpSink, build_config, running_gateway

CLERK = "clerk@stanion-pc.gov.uk"
RESIDENT = "resident@example.org"


def _message(subject: str, body: bytes) -> bytes:
    return (f"From: {RESIDENT}\r\nTo: {CLERK}\r\nSubject: {subject}\r\n"
            "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\n").encode() + body


def _stuffed(message: bytes) -> bytes:
    """The message as a client writes it after DATA: leading dots doubled, then the end."""
    lines = message.split(b"\r\n")[:-1]
    return b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n"
                    for line in lines) + b".\r\n"


async def _replies(reader: asyncio.StreamReader, n: int) -> list[bytes]:
    out = []
    while len(out) < n:
        line = await reader.readline()
        assert line, out
        if line[3:4] != b"-":
            out.append(line[:3])
    return out


async def test_a_long_message_of_short_lines_arrives_as_written(
        tmp_path: Path, smtp_sink: SmtpSink) -> None:
    body = b"".join(b"--b\r\n.hidden %d\r\n..two dots\r\n\r\n" % n for n in range(20_000))
    message = _message("Many lines", body + b"last line\r\n")
    config = build_config(tmp_path, {"inbound": {"deliver_to": smtp_sink.url}})
    async with running_gateway(config) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.inbound_port)
        writer.write(f"EHLO client.example.org\r\nMAIL FROM:<{RESIDENT}>\r\n"
                     f"RCPT TO:<{CLERK}>\r\nDATA\r\n".encode())
        assert await _replies(reader, 5) == [b"220", b"250", b"250", b"250", b"354"]
        writer.write(_stuffed(message))
        assert await _replies(reader, 1) == [b"250"]
        writer.close()
    [got] = smtp_sink.messages
    assert got.data.endswith(body + b"last line\r\n")  # below the headers the gateway adds


async def test_commands_pipelined_behind_the_end_of_a_message_are_commands(
        tmp_path: Path, smtp_sink: SmtpSink) -> None:
    first, second = _message("First", b"one\r\n"), _message("Second", b"two\r\n")
    transaction = f"MAIL FROM:<{RESIDENT}>\r\nRCPT TO:<{CLERK}>\r\nDATA\r\n".encode()
    config = build_config(tmp_path, {"inbound": {"deliver_to": smtp_sink.url}})
    async with running_gateway(config) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.inbound_port)
        writer.write(b"EHLO client.example.org\r\n" + transaction)
        assert await _replies(reader, 5) == [b"220", b"250", b"250", b"250", b"354"]
        # The end of the first message, the whole next transaction and QUIT in one write.
        writer.write(_stuffed(first) + transaction)
        assert await _replies(reader, 4) == [b"250", b"250", b"250", b"354"]
        writer.write(_stuffed(second) + b"QUIT\r\n")
        assert await _replies(reader, 2) == [b"250", b"221"]
        writer.close()
    assert [m.data.endswith(b) for m, b in zip(smtp_sink.messages, (b"\r\n\r\none\r\n",
                                                                     b"\r\n\r\ntwo\r\n"),
                                                strict=True)] == [True, True]
