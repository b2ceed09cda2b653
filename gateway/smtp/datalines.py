"""The content of DATA, read in bulk, made safe and Postfix-like.

aiosmtpd reads DATA a line at a time, in Python: a message of 200,000 short lines (50,000 MIME
parts) kept the event loop busy for half a second, the other connections waiting. Here the
stream is searched for ``.`` CRLF with the stream reader's own (C) search, and each piece read
is handled with bytes operations, so the loop is held for microseconds a piece:

- only CRLF "." CRLF ends the message (SMTP smuggling): a "." after a bare LF, or ended by one,
  is content, kept as a line of its own;
- a bare LF ends a line for counting its length (so a bare-LF message is not "one line too
  long") and is made CRLF; a leading "." is removed from every other line (RFC 5321 4.5.2);
- a line longer than ``line_limit`` (its CRLF included) makes the message "line too long", and
  more than ``size_limit`` bytes "too much": either is read through its end, kept no further,
  and answered at the end, so the dialogue stays in step;
- the idle timer (:class:`IdleTimer`, renewed by the protocol as bytes arrive) counts from the
  last bytes received, so a slow but steady upload succeeds and a stalled one ends after the
  timeout.

The content goes into a :class:`~gateway.smtp.spool.Spool` (memory up to a threshold, then a
private temporary file) as it is read, so a large or slow upload holds a write buffer's worth of
memory, not a list of its pieces; a spool that cannot be written (a full disk) is the problem
"room": the rest is still read, so the dialogue stays in step, and answered 451 at the end.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from gateway.smtp.spool import Spool

__all__ = ["REFUSALS", "YIELD_EVERY", "DataRead", "IdleTimer", "Problem", "read_data"]

log = logging.getLogger(__name__)

Problem = Literal["line", "size", "room"]
# aiosmtpd's own words for its refusals (given enhanced codes on the way out), and ours for a
# message the gateway has no room to keep.
REFUSALS: dict[Problem, str] = {
    "line": "500 Line too long (see RFC5321 4.5.3.1.6)",
    "size": "552 Error: Too much mail data",
    "room": "451 4.3.0 The gateway has no room for the message just now; please try again later",
}

# Pieces already received are read without waiting; this many, then other connections run.
YIELD_EVERY = 64
_DOT_END = b".\r\n"
_BATCH = 64 * 1024
_STUFFED = re.compile(rb"(?m)^\.(?!\r?\n)")  # a leading dot, unless the line is only a dot


@dataclass(frozen=True)
class DataRead:
    content: bytes  # the message, CRLF line endings, dots unstuffed (empty after a problem)
    problem: Problem | None = None


class IdleTimer:
    """Renews a connection's idle timer as bytes arrive: a new timer for every packet would
    cost more than reading it, so it is renewed a quarter-timeout at a time, and a stall ends
    between 1 and 1.25 timeouts after the last bytes."""

    def __init__(self, timeout: float, reset_timeout: Callable[[float], None]) -> None:
        self.timeout = timeout
        self._reset = reset_timeout
        self._loop = asyncio.get_running_loop()
        self._renewed = self._loop.time() - timeout  # the first bytes renew it

    def __call__(self) -> None:
        if self._loop.time() - self._renewed >= self.timeout / 4:
            self._renewed = self._loop.time()
            self._reset(self.timeout * 1.25)


class _Content:
    """What has been read so far, turned into the message a complete line at a time."""

    def __init__(self, line_limit: int, size_limit: int | None, spool: Spool):
        self.line_limit = line_limit
        self.size_limit = size_limit
        self.long_line = re.compile(rb"(?m)^[^\n]{%d,}" % (line_limit - 1))
        self.size = 0
        self.problem: Problem | None = None
        self.spool = spool
        self.partial = b""  # the start of a line whose end has not come yet

    def add(self, data: bytes) -> None:
        self.size += len(data)
        if self.problem is None and self.size_limit and self.size > self.size_limit:
            self._fail("size")
        end = data.rfind(b"\n") + 1
        if not end:
            self.partial += data
            if len(self.partial) >= self.line_limit:
                self._fail("line")
                self.partial = self.partial[-1:]  # a CR that a LF may yet end
            return
        lines, self.partial = self.partial + data[:end], data[end:]
        if self.problem is None and self._too_long(lines):
            self._fail("line")
        if self.problem is None:
            # Each step only when there is something to do: a search costs less than a copy.
            if lines[:1] == b"." or b"\n." in lines:
                lines = _STUFFED.sub(b"", lines)
            if lines.count(b"\n") != lines.count(b"\r\n"):
                lines = lines.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            try:
                self.spool.write(lines)
            except OSError as e:
                log.error("the message could not be spooled: %s", e)
                self._fail("room")

    def _too_long(self, lines: bytes) -> bool:
        if max(map(len, lines.split(b"\n"))) < self.line_limit - 1:
            return False
        for m in self.long_line.finditer(lines):
            length = len(m.group(0)) + 1  # with its LF
            if not m.group(0).endswith(b"\r"):
                length += 1  # a bare LF, made CRLF
            if length > self.line_limit:
                return True
        return False

    def _fail(self, problem: Problem) -> None:
        self.problem = self.problem or problem
        self.spool.discard()  # kept no further: a refused message must not take the memory

    def result(self) -> DataRead:
        if self.problem is not None:
            return DataRead(b"", self.problem)
        try:
            return DataRead(self.spool.take())
        except OSError as e:
            log.error("the spooled message could not be read back: %s", e)
            return DataRead(b"", "room")


async def read_data(reader: asyncio.StreamReader, *, line_limit: int, size_limit: int | None,
                    spool: Spool | None = None) -> DataRead:
    """Read DATA's content up to and including CRLF "." CRLF (the CRLF of the DATA command
    itself counts as the first), through ``spool`` (by default one in memory only). Raises
    ``asyncio.IncompleteReadError`` when the client goes away before the end; the caller closes
    the spool."""
    content = _Content(line_limit, size_limit, spool or Spool(threshold=2**62))
    before = b"\r\n"  # the two bytes before what is read next
    batch: list[bytes] = []  # pieces not yet handed to content: prose ends many lines in "."
    batched = pieces = 0
    while True:
        pieces += 1
        if pieces % YIELD_EVERY == 0:
            await asyncio.sleep(0)
        try:
            piece = await reader.readuntil(_DOT_END)
        except asyncio.LimitOverrunError as e:
            # No ". CRLF" in what the reader holds: take all of it but the bytes that may begin
            # one.
            piece = await reader.read(max(e.consumed, 1))
        else:
            text = piece[:-3]
            if (before + text)[-2:] == b"\r\n":
                batch.append(text)
                content.add(b"".join(batch))
                return content.result()
        batch.append(piece)
        batched += len(piece)
        if batched >= _BATCH:
            content.add(b"".join(batch))
            batch.clear()
            batched = 0
        before = piece[-2:] if len(piece) > 1 else (before + piece)[-2:]
