"""A message larger than ``spool_threshold`` waits in a temporary file while it arrives: one no
other user can open, with no name in the folder, and closed (so gone) however the transaction
ends: passed on, refused as too big or for a line too long, or the client going away mid-DATA.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

import pytest

from gateway.smtp import spool as spool_module
from tests.conftest import SmtpSink, build_config, running_gateway
from tests.helpers import make_message

LINE = b"x" * 76 + b"\r\n"
# DATA is read in bulk: the stream reader holds up to its limit, and pieces are handed on 64 KiB
# at a time, so this much is written before the spool has seen enough to open its file.
EARLY = LINE * 1800  # about 140 KiB
TEMPORARY_FILE = tempfile.TemporaryFile


class Watched:
    """A real spool file that says when it is closed."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        self.gone = asyncio.Event()

    def write(self, data: bytes) -> int:
        return self.file.write(data)

    def flush(self) -> None:
        self.file.flush()

    def fileno(self) -> int:
        return self.file.fileno()

    @property
    def closed(self) -> bool:
        return self.file.closed

    def close(self) -> None:
        self.file.close()
        self.gone.set()


class Spied:
    """Every spool file the gateway opens, and an event once one is open."""

    def __init__(self) -> None:
        self.files: list[Watched] = []
        self.opened = asyncio.Event()

    def __call__(self, *args: Any, **kwargs: Any) -> Watched:
        file = Watched(TEMPORARY_FILE(*args, **kwargs))
        self.files.append(file)
        self.opened.set()
        return file


@pytest.fixture
def spied(monkeypatch: pytest.MonkeyPatch) -> Spied:
    spy = Spied()
    monkeypatch.setattr(spool_module.tempfile, "TemporaryFile", spy)
    return spy


@pytest.fixture
async def gateway_port(tmp_path: Path, smtp_sink: SmtpSink) -> AsyncIterator[int]:
    config = build_config(tmp_path, {
        "gateway": {"spool_threshold": "8KiB", "spool_dir": str(tmp_path / "spool"),
                    "max_message_size": "200KiB"},
        "inbound": {"deliver_to": smtp_sink.url}})
    (tmp_path / "spool").mkdir()
    async with running_gateway(config) as gw:
        yield gw.inbound_port


async def _into_data(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readline()
    for command in (b"EHLO mx.sender.example", b"MAIL FROM:<resident@example.org>",
                    b"RCPT TO:<clerk@stanion-pc.gov.uk>", b"DATA"):
        writer.write(command + b"\r\n")
        while (line := await reader.readline())[3:4] == b"-":
            pass
        assert line[:1] in (b"2", b"3"), line
    return reader, writer


async def _opened_privately(spied: Spied, spool_dir: Path) -> Watched:
    async with asyncio.timeout(10):
        await spied.opened.wait()
    (file,) = spied.files
    info = os.fstat(file.fileno())
    assert info.st_mode & 0o777 == 0o600
    assert info.st_nlink == 0  # no name anyone could open it by
    assert os.listdir(spool_dir) == []
    assert not file.closed
    return file


async def _reply(reader: asyncio.StreamReader) -> bytes:
    async with asyncio.timeout(10):
        return await reader.readline()


async def test_passed_on_from_the_spool_and_closed(
        tmp_path: Path, smtp_sink: SmtpSink, spied: Spied, gateway_port: int) -> None:
    message = make_message() + EARLY + LINE * 100
    reader, writer = await _into_data(gateway_port)
    writer.write(message[:len(message) - len(LINE) * 100])
    file = await _opened_privately(spied, tmp_path / "spool")
    writer.write(message[len(message) - len(LINE) * 100:] + b".\r\n")
    assert (await _reply(reader)).startswith(b"250")
    assert file.closed
    (got,) = await smtp_sink.wait_for(1)
    assert got.data.endswith(message)
    writer.close()


@pytest.mark.parametrize("how", ["too big", "line too long"])
async def test_refused_and_closed(tmp_path: Path, smtp_sink: SmtpSink, spied: Spied,
                                  gateway_port: int, how: str) -> None:
    reader, writer = await _into_data(gateway_port)
    writer.write(make_message() + EARLY)
    file = await _opened_privately(spied, tmp_path / "spool")
    tail = LINE * 1000 if how == "too big" else b"y" * 5000 + b"\r\n"
    writer.write(tail + b".\r\n")
    reply = await _reply(reader)
    assert reply.startswith(b"552" if how == "too big" else b"500"), reply
    assert file.closed
    assert smtp_sink.messages == []
    writer.close()


async def test_client_gone_mid_data_closes_it(
        tmp_path: Path, smtp_sink: SmtpSink, spied: Spied, gateway_port: int) -> None:
    reader, writer = await _into_data(gateway_port)
    writer.write(make_message() + EARLY)
    file = await _opened_privately(spied, tmp_path / "spool")
    writer.transport.abort()
    async with asyncio.timeout(10):
        await file.gone.wait()
    assert file.closed
    assert smtp_sink.messages == []


async def test_small_message_never_touches_the_disk(
        tmp_path: Path, smtp_sink: SmtpSink, spied: Spied, gateway_port: int) -> None:
    reader, writer = await _into_data(gateway_port)
    writer.write(make_message() + b".\r\n")
    assert (await _reply(reader)).startswith(b"250")
    assert spied.files == []
    writer.close()


class FullDisk(Watched):
    def write(self, data: bytes) -> int:
        raise OSError(28, "No space left on device")


async def test_a_full_disk_means_try_again_and_the_client_stays_in_step(
        tmp_path: Path, smtp_sink: SmtpSink, spied: Spied, gateway_port: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    full: list[FullDisk] = []

    def failing(*args: Any, **kwargs: Any) -> FullDisk:
        full.append(FullDisk(TEMPORARY_FILE(*args, **kwargs)))
        return full[-1]

    monkeypatch.setattr(spool_module.tempfile, "TemporaryFile", failing)
    reader, writer = await _into_data(gateway_port)
    writer.write(make_message() + LINE * 500 + b".\r\n")
    assert (await _reply(reader)).startswith(b"451 4.3.0")
    writer.write(b"NOOP\r\n")
    assert (await _reply(reader)).startswith(b"250")
    assert full and full[0].closed
    assert smtp_sink.messages == []
    writer.close()
