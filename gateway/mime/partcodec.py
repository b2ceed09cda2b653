"""Reading and re-encoding the bytes of one text part, changing nothing else.

:func:`decode_part` gives a part's text only when it can be read faithfully (a known charset,
a transfer encoding that decodes); :func:`encode_body` picks a transfer encoding that is safe for
new text; :func:`rewrite_headers` changes only the charset and transfer encoding fields of a
header block, keeping every other byte as it came.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email.policy
import re
from email.message import Message

from gateway.mime.layout import Entity, header_fields

__all__ = ["CRLF", "MAX_LINE", "decode_part", "encode_body", "field_name", "fold",
           "rewrite_headers"]

MAX_LINE = 998
CRLF = b"\r\n"
META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.IGNORECASE)


def decode_part(data: bytes, ent: Entity) -> tuple[str, str, str] | None:
    """(text with \\n line breaks, charset, transfer encoding), or None when it cannot be read
    faithfully."""
    body = data[ent.body_start:ent.end]
    cte = str(ent.headers.get("content-transfer-encoding", "7bit")).strip().lower() or "7bit"
    try:
        if cte in ("7bit", "8bit", "binary"):
            raw = body
        elif cte == "quoted-printable":
            raw = binascii.a2b_qp(body)
        elif cte == "base64":
            raw = binascii.a2b_base64(body)
        else:
            return None
    except (binascii.Error, ValueError):
        return None
    charset = ent.headers.get_content_charset()
    if charset is None and ent.content_type == "text/html":
        m = META_CHARSET.search(raw, 0, 4096)
        if m:
            charset = m.group(1).decode("ascii").lower()
    charset = charset or "us-ascii"
    try:
        codecs.lookup(charset)
        text = raw.decode(charset)
    except (LookupError, UnicodeDecodeError):
        return None
    return text.replace("\r\n", "\n"), charset, cte


def _max_line(data: bytes) -> int:
    return max((len(line) for line in data.split(b"\n")), default=0)


def encode_body(encoded: bytes, cte: str) -> tuple[bytes, str]:
    """The body in a transfer encoding that is safe for it, and that encoding's name."""
    if cte == "base64":
        crlf = encoded.replace(b"\n", CRLF)
        lines = [base64.b64encode(crlf[i:i + 57]) for i in range(0, len(crlf), 57)]
        return b"".join(line + CRLF for line in lines), "base64"
    fits = _max_line(encoded) <= MAX_LINE - 1  # room for the CR
    if cte in ("8bit", "binary") and fits:
        return encoded.replace(b"\n", CRLF), cte
    if cte == "7bit" and fits and encoded.isascii():
        return encoded.replace(b"\n", CRLF), "7bit"
    qp = binascii.b2a_qp(encoded, istext=True)
    return qp.replace(b"\n", CRLF), "quoted-printable"


def field_name(raw: bytes) -> str:
    return raw.split(b":", 1)[0].strip().decode("ascii", "replace").lower()


def fold(name: str, value: str) -> bytes:
    folded: str = email.policy.SMTP.fold(name, value)
    return folded.encode("ascii", "surrogateescape")


def rewrite_headers(block: bytes, headers: Message, *, charset: str | None, cte: str | None,
                     top: bool) -> bytes:
    """The header block with only the charset and transfer encoding changed as asked."""
    fields = [f if f.endswith(b"\n") else f + CRLF for f in header_fields(block)]
    replace: dict[str, bytes] = {}
    if charset is not None:
        ctype = Message()
        ctype["Content-Type"] = str(headers.get("content-type") or headers.get_content_type())
        ctype.set_param("charset", charset)
        replace["content-type"] = fold("Content-Type", str(ctype["Content-Type"]))
    if cte is not None:
        replace["content-transfer-encoding"] = fold("Content-Transfer-Encoding", cte)
    out: list[bytes] = []
    for f in fields:
        name = field_name(f)
        if name in replace:
            out.append(replace.pop(name))
        else:
            out.append(f)
    out.extend(replace.values())
    if top and (charset or cte) and not any(field_name(f) == "mime-version" for f in fields):
        out.append(b"MIME-Version: 1.0\r\n")
    return b"".join(out) + CRLF
