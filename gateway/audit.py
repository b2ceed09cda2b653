"""The audit log: one JSON line per message or clerk action (the council's monitoring record).

Writing a line never raises: an unwritable log is reported on stderr with the whole record, and
the message's fate (already decided by the next hop or the disk) stays as it is.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import threading
from datetime import datetime, timezone
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

from gateway.context import MessageContext
from gateway.mime.headers import SHOWING_POLICY, SHOWN
from gateway.pipeline import Outcome

__all__ = ["AuditLog", "finding_entries", "message_event"]

log = logging.getLogger(__name__)
_lock = threading.Lock()


class AuditLog:
    def __init__(self, path: Path):
        self.path = Path(path)

    def _open(self) -> int:
        # The folder is made only when it is missing: once a message, every message, is
        # the common case, and a mkdir call each time was a third of what a line cost.
        try:
            return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except FileNotFoundError:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def writable(self, room: int = 64 * 1024) -> bool:
        """Whether a line can be added now: the file opens for appending and the disk has
        ``room`` bytes free. Asked before a message is passed on, so the monitoring record
        of it is not silently lost (a full disk turns mail away for now instead)."""
        try:
            fd = self._open()
            try:
                st = os.fstatvfs(fd)
                return st.f_bavail * st.f_frsize >= room
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
                fd = self._open()
                try:
                    # One write of the whole line (O_APPEND): a short one means a full disk.
                    if os.write(fd, data) != len(data):
                        raise OSError(errno.ENOSPC, "the line was written only in part")
                finally:
                    os.close(fd)
        except Exception as e:
            log.error("audit log %s not writable: %s; record was: %r", self.path, e, record)
            return False
        return True


def finding_entries(findings: Any) -> list[dict[str, str]]:
    return [{"filter": f.filter, "code": f.code, "severity": f.severity.word, "text": f.text}
            for f in findings]


_FIELD = re.compile(rb"^(subject|message-id):(.*(?:\r?\n[ \t].*)*)",
                    re.IGNORECASE | re.MULTILINE)
# A line that is neither a field nor a continuation: the email package ends the header there.
_NOT_A_FIELD = re.compile(rb"^(?![ \t]|[\x21-\x39\x3b-\x7e]+:)", re.MULTILINE)


def _plain_field(head: bytes, name: bytes) -> str | None:
    """The first ``name`` field's value, unfolded, when it is plain ASCII without encoded
    words; None when only the email package can say what it reads as."""
    for m in _FIELD.finditer(head):
        if m.group(1).lower() == name:
            value = m.group(2)
            if not value.isascii() or b"=?" in value:
                return None
            return value.decode("ascii")
    return ""


def _headline(head: bytes) -> tuple[str, str]:
    # Only the header block (the caller gives no more): parsing a large body would be wasted.
    head = head.split(b"\r\n\r\n", 1)[0][:256 * 1024]
    subject, message_id = _plain_field(head, b"subject"), _plain_field(head, b"message-id")
    if subject is not None and message_id is not None and not _NOT_A_FIELD.search(head):
        # Most mail: no need for the header parser (a tenth of a millisecond a message).
        return " ".join(subject[:SHOWN].split()), re.sub(r"\r?\n", "", message_id).strip()
    try:
        msg = BytesHeaderParser(policy=SHOWING_POLICY).parsebytes(head)
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
