"""Puts the SMTP connection id on every log line written while that connection is served."""

from __future__ import annotations

import logging
from contextvars import ContextVar

__all__ = ["conn_id", "ConnIdFilter"]

conn_id: ContextVar[str] = ContextVar("conn_id", default="-")


class ConnIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.conn = conn_id.get()
        return True
