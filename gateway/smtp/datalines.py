"""The lines of a message as DATA brings them, made safe and Postfix-like, and the DATA loop.

:meth:`DataLines.readuntil` gives one line at a time:

- one line at a time whatever ends it: a bare LF ends a line for counting its length (so a
  bare-LF message is not "one line too long") and is made CRLF;
- only CRLF "." CRLF ends the message (SMTP smuggling): a "." after a bare LF, or ended by one,
  is content, kept as a dot-stuffed line;
- a line longer than the reader holds is discarded through its real end and handed on as one
  over aiosmtpd's limit, so aiosmtpd refuses the message at the end and stays in step;
- the idle timer counts from the last line, so a slow but steady upload succeeds and a stalled
  one ends after the timeout.

:meth:`DataLines.receive` is aiosmtpd's DATA loop (limits, a line too long, the transparency
dots of RFC 5321 4.5.2) writing into a :class:`~gateway.smtp.spool.Spool` rather than a list
of lines: aiosmtpd's list costs about twice the message (an object a line) and its join a third
copy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from gateway.smtp.spool import Spool

__all__ = ["LINE_TOO_LONG", "NO_ROOM", "TOO_MUCH", "DataLines"]

log = logging.getLogger(__name__)

# aiosmtpd's own words (the gateway's protocol gives them enhanced codes on the way out).
LINE_TOO_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"
TOO_MUCH = "552 Error: Too much mail data"
NO_ROOM = "451 4.3.0 The gateway has no room for the message just now; please try again later"


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

    async def receive(self, spool: Spool, size_limit: int | None, line_limit: int) -> str | None:
        """Read the message through its final dot into ``spool``, dots of transparency taken
        off; None, or the refusal when it was too big, had a line too long or could not be
        kept (a full disk: the rest is still read, so the client stays in step, but not
        kept)."""
        refusal: str | None = None
        while True:
            line = await self.readuntil(b"\r\n")
            if line == b".\r\n":
                return refusal
            if refusal is None:
                if size_limit and spool.size + len(line) > size_limit:
                    refusal = TOO_MUCH
                elif len(line) > line_limit:
                    refusal = LINE_TOO_LONG
                if refusal is not None:
                    spool.discard()
                    continue
                try:
                    spool.write(line[1:] if line.startswith(b".") else line)
                except OSError as e:
                    log.error("the message could not be spooled: %s", e)
                    refusal = NO_ROOM
                    spool.discard()
