"""The quarantine: held mail in a Maildir, self-describing.

Each held message is one Maildir file named by the message's id. Its top lines are
``X-Quarantine-*`` fields: the id, the side, the envelope, the client, when it arrived, every
finding of every check (also those after the one that held it), the reasons it was held and the
check that held it; then the message as it stood after that check. The store is written
atomically and fsynced before the client is told 250. How held mail leaves is
:mod:`gateway.quarantine.resolve`.
"""

from __future__ import annotations

import email.header
import email.policy
import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from email.parser import BytesHeaderParser
from email.utils import parseaddr
from pathlib import Path

from gateway.content import Content
from gateway.delivery.maildir import ensure_maildir, write_message
from gateway.mime.headers import SHOWING_POLICY
from gateway.verdicts import Finding, Severity

__all__ = ["HeldMessage", "NotFound", "QuarantineStore"]

log = logging.getLogger(__name__)

PREFIX = "X-Quarantine-"
_ID_RE = re.compile(r"^[A-Za-z0-9._\\-]+$")
_HEADER_LIMIT = 256 * 1024  # the metadata and the message's own headers are read from this much


class NotFound(KeyError):
    pass


@dataclass(frozen=True)
class HeldMessage:
    id: str
    received_at: datetime
    direction: str  # the side: "inbound" or "outbound"
    mail_from: str
    rcpt_tos: tuple[str, ...]
    reasons: tuple[str, ...]
    client_address: str
    auth_user: str
    subject: str = ""
    from_header: str = ""
    size: int = 0
    smtputf8: bool = False
    client_helo: str = ""
    held_by: str = ""  # the check that held it; "" for mail held before findings were kept
    findings: tuple[Finding, ...] = ()

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.code for f in self.findings))

    @property
    def sender(self) -> str:
        """The address the junk filter judges by: the From: address, else the envelope sender."""
        return parseaddr(self.from_header)[1].strip().lower() or self.mail_from.lower()


def _encode(value: str) -> str:
    """Header-safe one-line value (RFC 2047 for non-ASCII, control characters removed)."""
    value = " ".join(re.sub(r"[\x00-\x1f\x7f]", " ", value).split())
    if value.isascii():
        return value
    return email.header.Header(value, "utf-8").encode(maxlinelen=10_000)


def _decode(value: str) -> str:
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except Exception:
        return value


def _finding_field(f: Finding) -> str:
    return json.dumps({"filter": f.filter, "code": f.code, "severity": f.severity.word,
                       "text": f.text}, ensure_ascii=True)


def _finding_of(value: str) -> Finding | None:
    try:
        d = json.loads(value)
        return Finding(str(d["filter"]), str(d["code"]), Severity[str(d["severity"]).upper()],
                       str(d["text"]))
    except (ValueError, KeyError, TypeError):
        return None


def _legacy_findings(reasons: list[str]) -> tuple[Finding, ...]:
    """Mail held before findings were recorded kept only reason sentences; a virus among them
    is recognised so it can still never be released."""
    out = []
    for r in reasons:
        if r.lower().startswith("virus:"):
            out.append(Finding("antivirus", "virus", Severity.HIGH, r[6:].strip()))
    return tuple(out)


class QuarantineStore:
    def __init__(self, path: Path):
        self.path = Path(path)

    # ------------------------------------------------------------------ writing
    def hold(self, held: HeldMessage, data: bytes | Content) -> str:
        """Store the message durably under its id (replacing an earlier copy of it, as when a
        released message is held again by a later check). Raises OSError when it cannot."""
        fields = [
            ("Id", held.id),
            ("Direction", held.direction),
            ("Received-At", held.received_at.astimezone(timezone.utc).isoformat()),
            ("Mail-From", held.mail_from or "<>"),
            *(("Rcpt-To", r) for r in held.rcpt_tos),
            *(("Reason", r) for r in held.reasons),
            ("Held-By", held.held_by),
            *(("Finding", _finding_field(f)) for f in held.findings),
            ("Client", held.client_address),
            ("Helo", held.client_helo),
            ("Auth-User", held.auth_user or ""),
            ("Smtputf8", "yes" if held.smtputf8 else "no"),
        ]
        top = "".join(f"{PREFIX}{k}: {_encode(v)}\r\n" for k, v in fields).encode("ascii")
        try:
            old = self._file(held.id)
        except NotFound:
            old = None
        path = write_message(self.path, Content.of(data).prepend(top), name=held.id)
        if old is not None and old != path:
            old.unlink(missing_ok=True)
        return held.id

    # ------------------------------------------------------------------ reading
    def _file(self, qid: str) -> Path:
        if not _ID_RE.match(qid):
            raise NotFound(qid)
        for sub in ("new", "cur"):
            p = self.path / sub / qid
            if p.is_file():
                return p
            for cand in (self.path / sub).glob(f"{qid}:2,*"):
                return cand
        raise NotFound(qid)

    def _parse(self, path: Path) -> HeldMessage:
        with open(path, "rb") as f:
            head = f.read(_HEADER_LIMIT)
        size = path.stat().st_size
        meta: dict[str, list[str]] = {}
        msg_start = 0
        for line in head.split(b"\n"):
            text = line.decode("ascii", "replace").rstrip("\r")
            if not text.startswith(PREFIX):
                break
            key, _, value = text[len(PREFIX):].partition(":")
            meta.setdefault(key.strip().lower(), []).append(_decode(value.strip()))
            msg_start += len(line) + 1
        headers = BytesHeaderParser(policy=SHOWING_POLICY).parsebytes(head[msg_start:])

        def one(key: str, default: str = "") -> str:
            return meta.get(key, [default])[0]

        try:
            received = datetime.fromisoformat(one("received-at"))
        except ValueError:
            received = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
        mail_from = one("mail-from")
        reasons = meta.get("reason", [])
        if "finding" in meta:
            findings = tuple(f for f in map(_finding_of, meta["finding"]) if f is not None)
        else:
            findings = _legacy_findings(reasons)
        return HeldMessage(
            id=path.name.split(":")[0],
            received_at=received,
            direction=one("direction", "inbound"),
            mail_from="" if mail_from == "<>" else mail_from,
            rcpt_tos=tuple(meta.get("rcpt-to", [])),
            reasons=tuple(reasons),
            client_address=one("client"),
            auth_user=one("auth-user"),
            subject=_safe_header(headers, "subject"),
            from_header=_safe_header(headers, "from"),
            size=size - msg_start,
            smtputf8=one("smtputf8") == "yes",
            client_helo=one("helo"),
            held_by=one("held-by"),
            findings=findings,
        )

    def list(self) -> list[HeldMessage]:
        """Everything held, newest first; unreadable files are logged and skipped."""
        ensure_maildir(self.path)
        out = []
        for sub in ("new", "cur"):
            for p in (self.path / sub).iterdir():
                if not p.is_file():
                    continue
                try:
                    out.append(self._parse(p))
                except OSError as e:
                    log.warning("quarantine file %s unreadable: %s", p, e)
        out.sort(key=lambda h: h.received_at, reverse=True)
        return out

    def get(self, qid: str) -> HeldMessage:
        return self._parse(self._file(qid))

    def read(self, qid: str) -> bytes:
        """The message as held (CRLF line endings), without the X-Quarantine-* fields."""
        data = self._file(qid).read_bytes()
        lines = data.split(b"\n")
        i = 0
        while i < len(lines) and lines[i].startswith(PREFIX.encode()):
            i += 1
        body = b"\n".join(lines[i:])
        return body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")

    def delete(self, qid: str) -> None:
        path = self._file(qid)
        path.unlink()

    def purge(self, days: int, now: float | None = None) -> int:
        """Remove held mail older than ``days``; returns how many were removed."""
        cutoff = (now if now is not None else time.time()) - days * 86400
        removed = 0
        for held in self.list():
            if held.received_at.timestamp() < cutoff:
                try:
                    self.delete(held.id)
                    removed += 1
                except (NotFound, OSError):
                    pass
        return removed


def _safe_header(headers: object, name: str) -> str:
    try:
        value = headers.get(name, "")  # type: ignore[attr-defined]
        return " ".join(str(value).split())
    except Exception:
        return ""
