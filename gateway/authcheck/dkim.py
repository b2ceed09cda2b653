"""DKIM verification with dkimpy, its key lookups answered by our async resolver.

dkimpy looks keys up synchronously through a ``dnsfunc``. We read the selectors and domains from
the DKIM-Signature fields first, fetch their keys asynchronously (short deadline, temperror on
failure), then let dkimpy verify in a worker thread with a ``dnsfunc`` that answers from what was
fetched: the event loop never waits on DNS or on RSA arithmetic.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass

import dkim

from gateway.authcheck.resolver import DnsTempError, Resolver
from gateway.content import Content

__all__ = ["DkimResult", "verify_dkim", "signature_tags"]

MAX_SIGNATURES = 5

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DkimResult:
    result: str  # pass fail neutral temperror permerror (none: no signature at all)
    domain: str = ""  # d=
    selector: str = ""  # s=
    reason: str = ""


def _signature_fields(data: bytes) -> list[bytes]:
    end = data.find(b"\r\n\r\n")  # split() would copy the body too
    head = (data if end < 0 else data[:end]).replace(b"\r\n", b"\n")
    fields = re.split(rb"\n(?![ \t])", head)
    return [f.split(b":", 1)[1] for f in fields if f.lower().startswith(b"dkim-signature:")]


def signature_tags(value: bytes) -> dict[str, str]:
    """The tag=value pairs of one DKIM-Signature field, whitespace removed."""
    tags = {}
    for part in value.split(b";"):
        name, sep, val = part.partition(b"=")
        if sep:
            tags[name.strip().decode("ascii", "replace")] = re.sub(
                rb"\s+", b"", val).decode("ascii", "replace")
    return tags


async def verify_dkim(resolver: Resolver, data: bytes | Content) -> list[DkimResult]:
    """One result per DKIM-Signature (at most 5); [] when the message is not signed. Given
    a :class:`Content`, the whole message is joined only when it is signed."""
    content = Content.of(data)
    signatures = _signature_fields(content.head())[:MAX_SIGNATURES]
    if not signatures:
        return []
    keys: dict[bytes, bytes | None] = {}
    failed: dict[int, DkimResult] = {}
    for i, sig in enumerate(signatures):
        tags = signature_tags(sig)
        d, s = tags.get("d", ""), tags.get("s", "")
        if not d or not s:
            failed[i] = DkimResult("permerror", d, s, "signature lacks d= or s=")
            continue
        name = f"{s}._domainkey.{d}."
        try:
            records = await resolver.txt(name)
        except DnsTempError as e:
            failed[i] = DkimResult("temperror", d, s, str(e))
            continue
        keys[name.lower().encode()] = records[0].encode() if records else None

    def dnsfunc(name: bytes | str, timeout: float = 5) -> bytes | None:
        key = name if isinstance(name, bytes) else name.encode()
        return keys.get(key.lower())

    def verify_all() -> list[DkimResult]:
        results = []
        checker = dkim.DKIM(content.joined(), minkey=1024)
        for i, sig in enumerate(signatures):
            if i in failed:
                results.append(failed[i])
                continue
            tags = signature_tags(sig)
            d, s = tags["d"], tags["s"]
            if keys.get(f"{s}._domainkey.{d}.".lower().encode()) is None:
                results.append(DkimResult("permerror", d, s, "no key published"))
                continue
            try:
                ok = checker.verify(idx=i, dnsfunc=dnsfunc)
            except dkim.ValidationError as e:  # e.g. the body was changed after signing
                results.append(DkimResult("fail", d, s, str(e)))
                continue
            except dkim.DKIMException as e:
                results.append(DkimResult("permerror", d, s, str(e)))
                continue
            results.append(DkimResult("pass" if ok else "fail", d, s,
                                      "" if ok else "signature did not verify"))
        return results

    return await asyncio.to_thread(verify_all)
