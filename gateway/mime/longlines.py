"""Outgoing mail made to keep RFC 5322's line limit (998 characters) without changing a word.

The gateway takes lines up to 2048 characters, as Postfix does, because real mail clients write
them. A server on the way out may break such a line, which changes the message under its DKIM
signature; so before signing, every text part with a longer line is re-encoded as
quoted-printable (only that part's bytes and its transfer-encoding field change). Parts under a
signature (multipart/signed, encrypted) are left alone: changing them would break that
signature instead.
"""

from __future__ import annotations

from gateway.mime.layout import Entity, locate
from gateway.mime.partcodec import MAX_LINE, decode_part, encode_body, rewrite_headers

__all__ = ["conform_line_length"]

_PROTECTED = frozenset({
    "multipart/signed", "multipart/encrypted", "application/pkcs7-mime",
    "application/x-pkcs7-mime", "application/pgp-encrypted",
})


def _longest(data: bytes, start: int, end: int) -> int:
    longest, pos = 0, start
    while pos < end:
        nl = data.find(b"\n", pos, end)
        stop = end if nl < 0 else nl
        longest = max(longest, stop - pos - (1 if stop > pos and data[stop - 1:stop] == b"\r"
                                             else 0))
        pos = stop + 1
    return longest


def _leaves(ent: Entity) -> list[Entity]:
    if ent.content_type in _PROTECTED:
        return []
    if not ent.children:
        return [ent]
    return [leaf for child in ent.children for leaf in _leaves(child)]


def conform_line_length(data: bytes) -> bytes | None:
    """The message with every over-long text part re-encoded; None when none needed it."""
    if _longest(data, 0, len(data)) <= MAX_LINE:
        return None
    root = locate(data)
    edits: list[tuple[int, int, bytes]] = []
    for leaf in _leaves(root):
        if _longest(data, leaf.body_start, leaf.end) <= MAX_LINE:
            continue
        decoded = decode_part(data, leaf)
        if decoded is None or decoded[2] not in ("7bit", "8bit", "binary"):
            continue
        text, charset, cte = decoded
        body, new_cte = encode_body(text.encode(charset), "7bit")
        block = rewrite_headers(data[leaf.start:leaf.body_start], leaf.headers, charset=None,
                                cte=new_cte if new_cte != cte else None,
                                top=leaf.start == 0)
        edits.append((leaf.start, leaf.end, block + body))
    if not edits:
        return None
    out, pos = [], 0
    for start, end, replacement in sorted(edits):
        out += [data[pos:start], replacement]
        pos = end
    out.append(data[pos:])
    return b"".join(out)
