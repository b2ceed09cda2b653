"""A part's decoded bytes, without the copies the email package makes on the way."""

from __future__ import annotations

import binascii
from email.message import Message

__all__ = ["decoded_payload"]


def decoded_payload(part: Message) -> bytes | None:
    """What ``part.get_payload(decode=True)`` gives (None for a multipart). For base64 the
    email package encodes the payload's str to bytes, splits that into a bytes object a line
    and joins them again before decoding: about three times the part at once. ``binascii``
    reads the str as it is; anything it refuses (bad padding, stray 8-bit characters) goes the
    email package's forgiving way."""
    if part.is_multipart():
        return None
    # Not get_payload(): it encodes the whole str once just to look for 8-bit characters.
    payload = getattr(part, "_payload", None)
    cte = str(part.get("content-transfer-encoding", "")).lower()
    if cte == "base64" and isinstance(payload, str):
        try:
            return binascii.a2b_base64(payload)
        except (binascii.Error, ValueError):
            pass
    decoded = part.get_payload(decode=True)
    return decoded if isinstance(decoded, bytes) else None
