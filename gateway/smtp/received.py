"""The gateway's own trace field, and the line-ending rule that keeps one message one message."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from email.utils import format_datetime

__all__ = ["normalise_line_endings", "received_header"]


def normalise_line_endings(data: bytes) -> bytes:
    """Bare LF and bare CR become CRLF, so a stray ``<LF>.<LF>`` can never end a message
    downstream (SMTP smuggling): what the filters see is exactly what is passed on."""
    return re.sub(rb"\r\n|\r|\n", b"\r\n", data)


def _clean(text: str, limit: int = 100) -> str:
    return re.sub(r"[^\x21-\x7e]", "?", text)[:limit] or "unknown"


def received_header(*, helo: str, ip: str, hostname: str, protocol: str, msg_id: str,
                    rcpt_tos: Sequence[str], when: datetime) -> bytes:
    # "for" only with one recipient: naming several would disclose Bcc recipients to the others.
    for_part = f"\r\n\tfor <{rcpt_tos[0]}>" if len(rcpt_tos) == 1 else ""
    text = (f"Received: from {_clean(helo)} ([{ip}])\r\n\tby {hostname} (council-gateway) "
            f"with {protocol} id {msg_id}{for_part};\r\n\t{format_datetime(when)}\r\n")
    return text.encode("utf-8", "replace")
