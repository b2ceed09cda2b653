"""Puts the SMTP connection id on every log line written while that connection is served, and
writes log lines from a thread of their own while the gateway serves."""

from __future__ import annotations

import logging
import logging.handlers
import queue
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["conn_id", "ConnIdFilter", "logging_off_the_loop"]

conn_id: ContextVar[str] = ContextVar("conn_id", default="-")


class ConnIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.conn = conn_id.get()
        return True


@contextmanager
def logging_off_the_loop() -> Iterator[None]:
    """While inside, the root logger's lines are queued and written, in order, by a thread of
    their own: a slow or stalled stderr (a journal that lags) cannot hold up the event loop.
    The connection id is taken where the line is logged; every queued line is written on the
    way out."""
    root = logging.getLogger()
    handlers = root.handlers[:]
    if not handlers:
        yield
        return
    moved = {h: [f for f in h.filters if isinstance(f, ConnIdFilter)] for h in handlers}
    lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    queued = logging.handlers.QueueHandler(lines)
    if any(moved.values()):
        queued.addFilter(ConnIdFilter())
    for handler, filters in moved.items():
        for f in filters:
            handler.removeFilter(f)
    writer = logging.handlers.QueueListener(lines, *handlers, respect_handler_level=True)
    root.handlers = [queued]
    writer.start()
    try:
        yield
    finally:
        root.handlers = handlers
        writer.stop()
        for handler, filters in moved.items():
            for f in filters:
                handler.addFilter(f)
