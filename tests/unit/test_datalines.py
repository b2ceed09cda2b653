"""DATA's content read in bulk: where it ends, what its lines become, the limits, and other
connections served while a message already received is read."""

from __future__ import annotations

import asyncio

import pytest

from gateway.smtp.datalines import YIELD_EVERY, DataRead, IdleTimer, read_data

LIMIT = 2050  # a line of 2048 characters and its CRLF


def _reader(*chunks: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=LIMIT)
    for chunk in chunks:
        reader.feed_data(chunk)
    return reader


async def _read(*chunks: bytes, size_limit: int | None = None) -> tuple[DataRead, bytes]:
    """What DATA reads, and what is left for the next command."""
    reader = _reader(*chunks, b"QUIT\r\n")
    reader.feed_eof()
    got = await read_data(reader, line_limit=LIMIT, size_limit=size_limit)
    return got, await reader.read()


@pytest.mark.parametrize("wire, content", [
    (b".\r\n", b""),
    (b"one\r\ntwo\r\n.\r\n", b"one\r\ntwo\r\n"),
    (b"bare\nlines\r\n.\r\n", b"bare\r\nlines\r\n"),
    (b"..dot-stuffed\r\n...\r\n.\r\n", b".dot-stuffed\r\n..\r\n"),
    (b"The end.\r\nof it.\r\n.\r\n", b"The end.\r\nof it.\r\n"),
    # A lone dot after a bare LF, or ended by one, is content (SMTP smuggling), a line of its own.
    (b"a\n.\r\nMAIL FROM:<x@y>\r\n.\r\n", b"a\r\n.\r\nMAIL FROM:<x@y>\r\n"),
    (b"a\r\n.\nb\r\n.\r\n", b"a\r\n.\r\nb\r\n"),
    (b"a\r.\r\nb\r\n.\r\n", b"a\r.\r\nb\r\n"),
])
async def test_content_ends_only_at_crlf_dot_crlf(wire: bytes, content: bytes) -> None:
    got, rest = await _read(wire)
    assert got == DataRead(content)
    assert rest == b"QUIT\r\n"  # the next command stays unread


async def test_the_end_split_between_packets_is_found() -> None:
    wire = b"x" * 3000 + b"\r\n" + b"line\r\n" * 1000 + b".\r\n"
    for cut in (3000, 3001, 3002, 3003, len(wire) - 2, len(wire) - 1):
        got, rest = await _read(wire[:cut], wire[cut:])
        assert got.problem == "line" and rest == b"QUIT\r\n"
    wire = b"line\r\n" * 1000 + b".\r\n"
    for cut in range(len(wire) - 6, len(wire)):
        got, rest = await _read(wire[:cut], wire[cut:])
        assert got == DataRead(b"line\r\n" * 1000) and rest == b"QUIT\r\n"


@pytest.mark.parametrize("line, problem", [
    (b"a" * 2048 + b"\r\n", None),
    (b"a" * 2049 + b"\r\n", "line"),
    (b"a" * 2048 + b"\n", None),  # made CRLF, it is 2050
    (b"a" * 2049 + b"\n", "line"),
    (b"a" * 100_000 + b"\r\n", "line"),
])
async def test_line_length_limit(line: bytes, problem: str | None) -> None:
    got, rest = await _read(b"before\r\n" + line + b"after\r\n.\r\n")
    assert got.problem == problem
    assert rest == b"QUIT\r\n"  # read through to its end, in step with the client
    if problem is None:
        assert got.content.endswith(b"a\r\nafter\r\n")


async def test_too_much_data_is_read_through_and_kept_no_further() -> None:
    got, rest = await _read(b"0123456789\r\n" * 1000, b".\r\n", size_limit=5000)
    assert got == DataRead(b"", "size") and rest == b"QUIT\r\n"


async def test_a_client_gone_before_the_end_is_an_incomplete_read() -> None:
    reader = _reader(b"half a message\r\n")
    reader.feed_eof()
    with pytest.raises(asyncio.IncompleteReadError):
        await read_data(reader, line_limit=LIMIT, size_limit=None)


async def test_other_tasks_run_while_received_content_is_read() -> None:
    # Short lines that each end in ". CRLF": one piece each, all already in the buffer.
    pieces = YIELD_EVERY * 8
    reader = _reader(b"end.\r\n" * pieces + b".\r\n")
    seen_by_other: list[bool] = []
    done = asyncio.Event()

    async def read_message() -> DataRead:
        try:
            return await read_data(reader, line_limit=LIMIT, size_limit=None)
        finally:
            done.set()

    async def other_connection() -> None:
        seen_by_other.append(done.is_set())

    got, _ = await asyncio.gather(read_message(), other_connection())
    assert got.content == b"end.\r\n" * pieces
    assert seen_by_other == [False]  # it ran before the whole message was read


async def test_the_idle_timer_is_renewed_a_quarter_timeout_at_a_time() -> None:
    renewals: list[float] = []
    timer = IdleTimer(60, renewals.append)
    for _ in range(100):  # packets in quick succession: one renewal
        timer()
    assert renewals == [75.0]
