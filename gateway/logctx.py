"""Puts the SMTP connection id on every log line written while that connection is served, and
writes log lines from a thread of their own while the gateway serves."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

__all__ = ["conn_id", "ConnIdFilter", "logging_off_the_loop"]

conn_id: ContextVar[str] = ContextVar("conn_id", default="-")


class ConnIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.conn = conn_id.get()
        return True


FLUSH_SECONDS = 0.05
MAX_PENDING = 10_000  # lines waiting for a stalled stderr; beyond this they are counted, not kept


class _Background(logging.Handler):
    """Formats each line where it is logged (with that context's connection id) and leaves the
    writing to a thread that writes whatever has gathered every FLUSH_SECONDS. The event loop
    never waits on the stream, and is not woken or interrupted for every line."""

    def __init__(self, target: logging.StreamHandler[Any]):
        super().__init__(target.level)
        self.target = target
        self.setFormatter(target.formatter)
        self.filters = target.filters[:]
        self._lines: deque[str] = deque()
        self._dropped = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.target.terminator
        except Exception:
            self.handleError(record)
            return
        if len(self._lines) >= MAX_PENDING:
            self._dropped += 1
            return
        self._lines.append(line)

    def _run(self) -> None:
        while not self._done.wait(FLUSH_SECONDS):
            self._write()
        self._write()

    def _write(self) -> None:
        lines = []
        while self._lines:
            lines.append(self._lines.popleft())
        if self._dropped:
            dropped, self._dropped = self._dropped, 0
            lines.append(f"WARNING gateway.logctx: {dropped} log lines were dropped: the log "
                         f"stream did not take them{self.target.terminator}")
        if not lines:
            return
        try:
            self.target.stream.write("".join(lines))
            self.target.flush()
        except Exception:  # a closed or broken stream: as logging itself does, carry on
            pass

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


@contextmanager
def logging_off_the_loop() -> Iterator[None]:
    """While inside, the root logger's stream handlers (stderr) are written by a thread of
    their own: a slow or stalled stderr (a journal that lags) cannot hold up the event loop.
    Lines are formatted where they are logged and written in order; every one is written on
    the way out."""
    root = logging.getLogger()
    saved = root.handlers[:]
    # Only plain stream handlers (setup_logging's): others, a test's capture say, keep records.
    plain: dict[logging.Handler, _Background] = {
        h: _Background(h) for h in saved if type(h) is logging.StreamHandler}
    if not plain:
        yield
        return
    background = list(plain.values())
    root.handlers = [plain.get(h, h) for h in saved]
    for b in background:
        b.start()
    try:
        yield
    finally:
        root.handlers = saved
        for b in background:
            b.stop()
