"""The quarantine: held mail in a Maildir, self-describing, and the one function that resolves it.

Each held message is one Maildir file whose top lines are ``X-Quarantine-*`` fields (id,
direction, envelope, time, reasons, client), followed by the message exactly as received. The
store is written atomically and fsynced before the client is told 250.

:func:`resolve` is the single way held mail leaves the quarantine: the command line, the web page
and the digest links all call it, so every action is audited the same way.
"""

from __future__ import annotations

import asyncio
import email.header
import email.policy
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.parser import BytesHeaderParser
from pathlib import Path

from gateway.config import Config
from gateway.context import MessageContext
from gateway.delivery.maildir import ensure_maildir, unique_name, write_message

__all__ = [
    "HeldMessage",
    "QuarantineStore",
    "ResolveResult",
    "NotFound",
    "resolve",
    "ACTIONS",
    "register_action",
]

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
    direction: str
    mail_from: str
    rcpt_tos: tuple[str, ...]
    reasons: tuple[str, ...]
    client_address: str
    auth_user: str
    subject: str
    from_header: str
    size: int
    smtputf8: bool = False


def _encode(value: str) -> str:
    """Header-safe one-line value (RFC 2047 for non-ASCII, control characters removed)."""
    value = " ".join(re.sub(r"[\x00-\x1f\x7f]", " ", value).split())
    try:
        value.encode("ascii")
        return value
    except UnicodeEncodeError:
        return email.header.Header(value, "utf-8").encode(maxlinelen=10_000)


def _decode(value: str) -> str:
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except Exception:
        return value


class QuarantineStore:
    def __init__(self, path: Path):
        self.path = Path(path)

    # ------------------------------------------------------------------ writing
    def hold(self, ctx: MessageContext, reasons: tuple[str, ...]) -> str:
        """Store the message durably; returns its id. Raises OSError when it cannot."""
        qid = unique_name()
        fields = [
            ("Id", qid),
            ("Direction", ctx.direction),
            ("Received-At", ctx.received_at.astimezone(timezone.utc).isoformat()),
            ("Mail-From", ctx.envelope.mail_from or "<>"),
            *(("Rcpt-To", r) for r in ctx.envelope.rcpt_tos),
            *(("Reason", r) for r in reasons),
            ("Client", ctx.client_address),
            ("Auth-User", ctx.auth_user or ""),
            ("Gateway-Id", ctx.id),
            ("Smtputf8", "yes" if ctx.envelope.smtputf8 else "no"),
        ]
        top = "".join(f"{PREFIX}{k}: {_encode(v)}\r\n" for k, v in fields).encode("ascii")
        write_message(self.path, top + ctx.data, name=qid)
        return qid

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
        headers = BytesHeaderParser(policy=email.policy.default).parsebytes(head[msg_start:])

        def one(key: str, default: str = "") -> str:
            return meta.get(key, [default])[0]

        try:
            received = datetime.fromisoformat(one("received-at"))
        except ValueError:
            received = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
        mail_from = one("mail-from")
        return HeldMessage(
            id=path.name.split(":")[0],
            received_at=received,
            direction=one("direction", "inbound"),
            mail_from="" if mail_from == "<>" else mail_from,
            rcpt_tos=tuple(meta.get("rcpt-to", [])),
            reasons=tuple(meta.get("reason", [])),
            client_address=one("client"),
            auth_user=one("auth-user"),
            subject=_safe_header(headers, "subject"),
            from_header=_safe_header(headers, "from"),
            size=size - msg_start,
            smtputf8=one("smtputf8") == "yes",
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
        """The message as received (CRLF line endings), without the X-Quarantine-* fields."""
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


# ---------------------------------------------------------------------- resolving

@dataclass(frozen=True)
class ResolveResult:
    ok: bool
    message: str  # plain English, for the clerk


Action = Callable[[Config, QuarantineStore, HeldMessage, str], Awaitable[ResolveResult]]
ACTIONS: dict[str, Action] = {}


def register_action(name: str) -> Callable[[Action], Action]:
    def deco(fn: Action) -> Action:
        if name in ACTIONS:
            raise ValueError(f"quarantine action {name!r} registered twice")
        ACTIONS[name] = fn
        return fn
    return deco


@register_action("release")
async def _release(config: Config, store: QuarantineStore, held: HeldMessage,
                   actor: str) -> ResolveResult:
    from gateway.delivery.nexthop import deliver

    if any(r.lower().startswith("virus:") for r in held.reasons):
        # Stanion "Virus Protection": the council must not pass viruses on, not even to itself.
        return ResolveResult(False, "Not released: this message contains a virus, so it cannot "
                                    "be delivered. Delete it.")
    data = await asyncio.to_thread(store.read, held.id)
    result = await deliver(config, held.direction, held.mail_from, list(held.rcpt_tos), data,
                           smtputf8=held.smtputf8)
    if not result.ok:
        detail = result.reply
        if result.refused:
            detail = "; ".join(f"{r}: {c} {t}" for r, (c, t) in result.refused.items())
        return ResolveResult(False, f"Not released: the mail server answered {detail}. "
                                    "The message is still in the quarantine.")
    await asyncio.to_thread(store.delete, held.id)
    return ResolveResult(True, f"Released: delivered to {', '.join(held.rcpt_tos)}.")


@register_action("delete")
async def _delete(config: Config, store: QuarantineStore, held: HeldMessage,
                  actor: str) -> ResolveResult:
    await asyncio.to_thread(store.delete, held.id)
    return ResolveResult(True, "Deleted.")


def _sender_of(held: HeldMessage) -> str:
    """The address the junk filter judges by: the From: address, else the envelope sender."""
    from email.utils import parseaddr

    return parseaddr(held.from_header)[1].strip().lower() or held.mail_from.lower()


@register_action("release_and_trust")
async def _release_and_trust(config: Config, store: QuarantineStore, held: HeldMessage,
                             actor: str) -> ResolveResult:
    """Release, then (only once delivered) add the sender to the known-senders file."""
    from gateway.people.senders import trust_sender

    result = await _release(config, store, held, actor)
    sender = _sender_of(held)
    if not result.ok:
        return result
    try:
        added = await asyncio.to_thread(trust_sender, config, sender)
    except ValueError:
        return ResolveResult(True, f"{result.message} The sender's address {sender!r} cannot be "
                                   "added to the known senders.")
    except OSError as e:
        return ResolveResult(False, f"{result.message} But {sender} could not be added to the "
                                    f"known senders: {e.strerror or e}.")
    note = "is now a known sender" if added else "was already a known sender"
    return ResolveResult(True, f"{result.message} {sender} {note}.")


@register_action("block_sender")
async def _block_sender(config: Config, store: QuarantineStore, held: HeldMessage,
                        actor: str) -> ResolveResult:
    """Block the sender (their mail is always held from now on) and delete this message."""
    from gateway.people.senders import block_sender

    sender = _sender_of(held)
    try:
        await asyncio.to_thread(block_sender, config, sender)
    except ValueError:
        return ResolveResult(False, f"The sender's address {sender!r} cannot be blocked; "
                                    "the message is still in the quarantine.")
    await asyncio.to_thread(store.delete, held.id)
    return ResolveResult(True, f"Blocked {sender}: their mail will always be held. "
                               "This message was deleted.")


async def resolve(config: Config, qid: str, action: str, actor: str) -> ResolveResult:
    """Apply ``action`` to held message ``qid`` on behalf of ``actor``; audited."""
    from gateway.audit import AuditLog

    store = QuarantineStore(config.quarantine.path)
    if action not in ACTIONS:
        return ResolveResult(False, f"Unknown action {action!r}.")
    try:
        held = await asyncio.to_thread(store.get, qid)
    except NotFound:
        return ResolveResult(False, f"No held message with id {qid}.")
    try:
        result = await ACTIONS[action](config, store, held, actor)
    except OSError as e:
        result = ResolveResult(False, f"Could not {action} the message: {e.strerror or e}.")
    AuditLog(config.gateway.audit_log).write({
        "event": "quarantine-" + action.replace("_", "-"),
        "quarantine_id": qid,
        "actor": actor,
        "ok": result.ok,
        "result": result.message,
        "mail_from": held.mail_from,
        "rcpt_tos": list(held.rcpt_tos),
        "subject": held.subject,
        "pid": os.getpid(),
    })
    log.info("quarantine id=%s action=%s actor=%s ok=%s", qid, action, actor, result.ok)
    return result
