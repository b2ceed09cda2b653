"""DATA's line reader: lines as aiosmtpd expects them, and other connections served while a
message of many lines is read from the buffer."""

from __future__ import annotations

import asyncio

from gateway.smtp.datalines import YIELD_EVERY, DataLines


def _reader(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=2050)
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def _read_all(lines: DataLines) -> list[bytes]:
    out = []
    while (line := await lines.readuntil(b"\r\n")) != b".\r\n":
        out.append(line)
    return out


async def test_lines_come_back_crlf_and_a_bare_lf_dot_stays_content() -> None:
    lines = DataLines(_reader(b"one\ntwo\r\n.\nthree\r\n.\r\n"), 2050, 60, lambda _: None)
    assert await _read_all(lines) == [b"one\r\n", b"two\r\n", b"..\r\n", b"three\r\n"]


async def test_other_tasks_run_while_buffered_lines_are_read() -> None:
    total = YIELD_EVERY * 8
    lines = DataLines(_reader(b"x\r\n" * total + b".\r\n"), 2050, 60, lambda _: None)
    read: list[bytes] = []
    seen_by_other: list[int] = []

    async def read_message() -> None:
        while (line := await lines.readuntil(b"\r\n")) != b".\r\n":
            read.append(line)

    async def other_connection() -> None:
        seen_by_other.append(len(read))

    # Every line is already in the buffer, so without a pause the reader would finish before
    # the other task first ran.
    await asyncio.gather(read_message(), other_connection())
    assert len(read) == total
    assert seen_by_other and seen_by_other[0] < YIELD_EVERY


async def test_a_line_over_the_limit_is_handed_on_as_too_long() -> None:
    lines = DataLines(_reader(b"a" * 5000 + b"\r\nshort\r\n.\r\n"), 2050, 60, lambda _: None)
    got = await _read_all(lines)
    assert len(got) == 2
    assert len(got[0]) > 2050 and got[0].endswith(b"\r\n")
    assert got[1] == b"short\r\n"
