"""The lines of a message as aiosmtpd's DATA loop reads them, made safe and Postfix-like.

aiosmtpd reads DATA with ``readuntil(b"\\r\\n")``; a :class:`DataLines` stands in for that call:

- one line at a time whatever ends it: a bare LF ends a line for counting its length (so a
  bare-LF message is not "one line too long") and is made CRLF;
- only CRLF "." CRLF ends the message (SMTP smuggling): a "." after a bare LF, or ended by one,
  is content, kept as a dot-stuffed line;
- a line longer than the reader holds is discarded through its real end and handed on as one
  over aiosmtpd's limit, so aiosmtpd refuses the message at the end and stays in step;
- the idle timer counts from the last line, so a slow but steady upload succeeds and a stalled
  one ends after the timeout;
- lines already received are read without waiting, so every ``YIELD_EVERY`` lines the reader
  lets the event loop run other connections: a message of many short lines (50,000 MIME parts
  is 200,000 lines) would otherwise hold it for tens of milliseconds each chunk the socket gives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["YIELD_EVERY", "DataLines"]

# A few hundred lines take well under a millisecond to read; the pause costs microseconds.
YIELD_EVERY = 256


class DataLines:
    def __init__(self, reader: asyncio.StreamReader, line_limit: int, timeout: float,
                 reset_timeout: Callable[[float], None]) -> None:
        self.reader = reader
        self._read_line = reader.readuntil
        self.timeout = timeout
        self._reset = reset_timeout
        self._too_long = b"\0" * (line_limit + 1) + b"\r\n"
        self._after_bare_lf = False
        self._loop = asyncio.get_running_loop()
        self._renewed = self._loop.time() - timeout  # the first line renews the timer
        self._lines = 0

    def _keep_alive(self) -> None:
        # A new timer per line would cost more than reading the line: it is renewed a
        # quarter-timeout at a time, so a stall ends between 1 and 1.25 timeouts after the last
        # line.
        if self._loop.time() - self._renewed >= self.timeout / 4:
            self._renewed = self._loop.time()
            self._reset(self.timeout * 1.25)

    async def _rest_of_long_line(self, error: asyncio.LimitOverrunError) -> bool:
        """Discard a line longer than the reader holds, through its end; whether CRLF ended
        it."""
        last = b""
        while True:
            skipped = await self.reader.read(max(error.consumed, 1))
            self._keep_alive()
            last = skipped[-1:] or last
            try:
                tail = await self._read_line(b"\n")
            except asyncio.LimitOverrunError as again:
                error = again
                continue
            return tail.endswith(b"\r\n") or (tail == b"\n" and last == b"\r")

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        self._lines += 1
        if self._lines % YIELD_EVERY == 0:
            await asyncio.sleep(0)
        try:
            line = await self._read_line(b"\n")
        except asyncio.LimitOverrunError as e:
            self._after_bare_lf = not await self._rest_of_long_line(e)
            return self._too_long
        self._keep_alive()
        bare = not line.endswith(b"\r\n")
        dot = line in (b".\n", b".\r\n") and (bare or self._after_bare_lf)
        self._after_bare_lf = bare
        if dot:
            return b"..\r\n"
        return line[:-1] + b"\r\n" if bare else line
