"""The audit log: one JSON line per message or clerk action (the council's monitoring record).

Writing a line never raises: an unwritable log is reported on stderr with the whole record, and
the message's fate (already decided by the next hop or the disk) stays as it is.
"""

from __future__ import annotations

import email.policy
import json
import logging
import os
import threading
from datetime import datetime, timezone
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

from gateway.context import MessageContext
from gateway.pipeline import Outcome

__all__ = ["AuditLog", "finding_entries", "message_event"]

log = logging.getLogger(__name__)
_lock = threading.Lock()


class AuditLog:
    def __init__(self, path: Path):
        self.path = Path(path)

    def writable(self, room: int = 64 * 1024) -> bool:
        """Whether a line can be added now: the file opens for appending and the disk has
        ``room`` bytes free. Asked before a message is passed on, so the monitoring record
        of it is not silently lost (a full disk turns mail away for now instead)."""
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                return os.fstatvfs(fd).f_bavail * os.fstatvfs(fd).f_frsize >= room
            finally:
                os.close(fd)
        except OSError:
            return False

    def write(self, record: dict[str, Any]) -> bool:
        """Append one line; False (and an error in the log) when it could not be written."""
        record = {"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), **record}
        try:
            line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
            data = line.encode("utf-8", "backslashreplace")
            with _lock:
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                with os.fdopen(fd, "ab") as f:
                    f.write(data)
        except Exception as e:
            log.error("audit log %s not writable: %s; record was: %r", self.path, e, record)
            return False
        return True


def finding_entries(findings: Any) -> list[dict[str, str]]:
    return [{"filter": f.filter, "code": f.code, "severity": f.severity.word, "text": f.text}
            for f in findings]


def _headline(head: bytes) -> tuple[str, str]:
    # Only the header block: parsing a large body again here would be wasted work.
    head = head[:256 * 1024]
    try:
        msg = BytesHeaderParser(policy=email.policy.SMTP).parsebytes(head)
        return (" ".join(str(msg.get("subject", "")).split()),
                str(msg.get("message-id", "")).strip())
    except Exception:
        return "", ""


def message_event(ctx: MessageContext, outcome: Outcome | None, *, verdict: str, reply: str,
                  hop_reply: str, size: int, ms: float) -> dict[str, Any]:
    """The audit record of one message: who, what, every finding, what was done and why."""
    subject, message_id = _headline(ctx.content.head())
    findings = outcome.findings if outcome else tuple(ctx.findings)
    return {
        "event": "message",
        "id": ctx.id,
        "direction": ctx.side,
        "client": ctx.client_address,
        "helo": ctx.client_helo,
        "auth_user": ctx.auth_user,
        "mail_from": ctx.envelope.mail_from,
        "rcpt_tos": list(ctx.envelope.rcpt_tos),
        "message_id": message_id,
        "subject": subject,
        "size": size,
        "verdict": verdict,
        "reasons": list(outcome.decision.reasons) if outcome else [],
        "findings": finding_entries(findings),
        "held_by": outcome.held.filter if outcome and outcome.held else "",
        "filters": [{"name": s.filter, "outcome": s.outcome, "action": s.action.value,
                     "ms": round(s.ms, 1)} for s in (outcome.steps if outcome else ())],
        "reply": reply,
        "next_hop_reply": hop_reply,
        "ms": round(ms, 1),
    }
