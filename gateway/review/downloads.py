"""Whether an attachment of a held message may be downloaded, and its bytes when it may.

Downloads are off unless ``[review] allow_downloads = true``, and even then never for mail the
clerk could not release (a virus, a scan that could not finish, a dangerous or uncheckable
attachment) nor for anything that looks dangerous: the clerk should not be the one to open what
the gateway could not clear.
"""

from __future__ import annotations

from email.message import Message
from email.parser import BytesParser

from gateway.mime.headers import SHOWING_POLICY
from gateway.quarantine.explain import Explanation
from gateway.quarantine.view import view
from gateway.review.settings import ReviewConfig
from gateway.rules.wording import show_hidden
from gateway.verdicts import Release, Severity

__all__ = ["attachment_bytes", "downloads_allowed"]


def downloads_allowed(cfg: ReviewConfig, why: Explanation) -> bool:
    return (cfg.allow_downloads and why.release is Release.YES
            and why.severity < Severity.HIGH)


def _parts(msg: Message) -> list[Message]:
    """The attachment parts, in the order :func:`gateway.quarantine.view.view` lists them."""
    body = msg.get_body(preferencelist=("plain", "html"))  # type: ignore[attr-defined]
    out = []
    for part in msg.walk():
        ctype = part.get_content_type()
        if (part.is_multipart() and ctype != "message/rfc822") or part is body:
            continue
        if part.get_content_maintype() == "text" and part.get_content_disposition() is None:
            continue
        out.append(part)
    return out


def attachment_bytes(data: bytes, n: int) -> tuple[str, bytes] | None:
    """(shown name, decoded bytes) of attachment ``n`` (0-based), or None."""
    msg = BytesParser(policy=SHOWING_POLICY).parsebytes(data)
    parts = _parts(msg)
    listed = view(data).attachments
    if len(parts) != len(listed) or not 0 <= n < len(parts):
        return None
    part = parts[n]
    if part.get_content_type() == "message/rfc822":
        payload = part.as_bytes()
    else:
        raw = part.get_payload(decode=True)
        payload = raw if isinstance(raw, bytes) else b""
    name = show_hidden(listed[n].name)
    return name, payload
