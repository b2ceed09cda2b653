"""The gateway's own trace field, and the line-ending rule that keeps one message one message."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from email.utils import format_datetime

__all__ = ["mailbox", "normalise_line_endings", "received_header"]


def normalise_line_endings(data: bytes) -> bytes:
    """Bare LF and bare CR become CRLF, so a stray ``<LF>.<LF>`` can never end a message
    downstream (SMTP smuggling): what the filters see is exactly what is passed on. The same
    object when it has none (the DATA reader already made bare LF CRLF): no copy."""
    crlf = data.count(b"\r\n")
    if data.count(b"\r") == crlf and data.count(b"\n") == crlf:
        return data
    return re.sub(rb"\r\n|\r|\n", b"\r\n", data)


def _clean(text: str, limit: int = 100) -> str:
    return re.sub(r"[^\x21-\x7e]", "?", text)[:limit] or "unknown"


_DOT_ATOM = re.compile(r"[\w!#$%&'*+/=?^`{|}~.-]+@[\w.-]+")


def mailbox(address: str) -> str:
    """An envelope address as it may stand in a trace field: as it is when it is a plain
    dot-atom, else its local part re-quoted, so nothing in it can end the field or open a
    comment (RFC 5321 4.4)."""
    if _DOT_ATOM.fullmatch(address):
        return address
    local, _, domain = address.rpartition("@")
    if len(local) >= 2 and local.startswith('"') and local.endswith('"'):
        local = re.sub(r"\\(.)", r"\1", local[1:-1])
    local = re.sub(r"[\x00-\x1f\x7f]", "?", local).replace("\\", "\\\\").replace('"', '\\"')
    domain = re.sub(r"[^\w.-]", "?", domain)
    return f'"{local}"@{domain}'


def received_header(*, helo: str, ip: str, hostname: str, protocol: str, msg_id: str,
                    rcpt_tos: Sequence[str], when: datetime) -> bytes:
    # "for" only with one recipient: naming several would disclose Bcc recipients to the others.
    for_part = f"\r\n\tfor <{mailbox(rcpt_tos[0])}>" if len(rcpt_tos) == 1 else ""
    text = (f"Received: from {_clean(helo)} ([{ip}])\r\n\tby {hostname} (council-gateway) "
            f"with {protocol} id {msg_id}{for_part};\r\n\t{format_datetime(when)}\r\n")
    return text.encode("utf-8", "replace")
