"""The audit log: one JSON line per message or clerk action (the council's monitoring record)."""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["AuditLog"]

log = logging.getLogger(__name__)
_lock = threading.Lock()


class AuditLog:
    def __init__(self, path: Path):
        self.path = Path(path)

    def write(self, record: dict[str, Any]) -> None:
        """Append one line; an unwritable log is reported but never stops mail flowing."""
        record = {"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), **record}
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        try:
            with _lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.path, "a", encoding="utf-8") as f:
                    f.write(line)
        except OSError as e:
            log.error("audit log %s not writable: %s; record was: %s", self.path, e, line.strip())
