"""The junk signals: pure functions, each a named fact about a message in plain English.

Each function looks at one thing (an attachment, a display name, a domain, a link, a phrase) and
returns :class:`Signal` objects with points; the junk filter adds the points up and compares them
with ``[junk] threshold``. Nothing here does I/O, so each signal is tested with a table of inputs.
The signals from who a message says it is from are in :mod:`gateway.rules.junk_names`, its
phrases in :mod:`gateway.rules.junk_phrases`.

Policy: Stanion "Email" (junk from unknown sources; attachments only from trusted sources;
list-serve mail unrelated to council business, chain letters and unsolicited advertising are
unacceptable) and Kirkham rule 15 (spam and phishing).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.utils import parseaddr
from urllib.parse import urlsplit

from gateway.authcheck import AuthResults, org_domain
from gateway.mime.html import HtmlReading, read_html
from gateway.people.senders import SenderBook
from gateway.rules.lookalike import (
    normalise_domain,
)
from gateway.rules.wording import one_line
from gateway.verdicts import Severity

__all__ = [
    "Signal",
    "attachment_names",
    "attachments_signal",
    "auth_signals",
    "blocked_signal",
    "bulk_signal",
    "forged_known_signal",
    "link_signal",
    "own_domain_signal",
    "body_text",
    "html_readings",
    "reads_list",
    "STRONG",
]

STRONG = 5.0  # one strong signal alone reaches the default threshold
CHAIN_POINTS = 2.5  # a resident may ask for a message to be passed on: two phrases needed
ADVERT_POINTS = 2.5  # advertising phrases count half: two of them make a strong signal
FRAUD_POINTS = 2.5  # so do the words of payment fraud: an honest invoice may use one
SOFTFAIL_POINTS = 2.0
LOOKALIKE_POINTS = 2.5  # a correspondent's look-alike: strong only with something else
MAX_TEXT = 200_000


@dataclass(frozen=True)
class Signal:
    code: str  # short tag, e.g. "attachment-unknown-sender"
    points: float
    text: str  # one plain-English sentence for the clerk
    severity: Severity = Severity.MEDIUM


# ---------------------------------------------------------------------- helpers

def _addr(value: str) -> str:
    return parseaddr(value)[1].strip().lower()


def _domain(address: str) -> str:
    return normalise_domain(address.rpartition("@")[2]) if "@" in address else ""


def _visible(text: str, limit: int = 80) -> str:
    return one_line(text, limit)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# ---------------------------------------------------------------------- authentication

def auth_signals(auth: AuthResults) -> list[Signal]:
    """Authentication that positively failed (DNS trouble is not failure)."""
    out = []
    if auth.dmarc.result == "fail" and auth.dmarc.policy in ("reject", "quarantine"):
        out.append(Signal("dmarc-fail", STRONG,
                          f"Failed authentication: {auth.dmarc.domain} asks receivers to "
                          f"{auth.dmarc.requested} mail that cannot be shown to come from it, "
                          "and this message cannot.", Severity.HIGH))
    if auth.spf.result == "fail":
        out.append(Signal("spf-fail", STRONG,
                          "Failed authentication: the server that sent it is not one that "
                          f"{auth.spf.domain} allows to send its mail."))
    elif auth.spf.result == "softfail":
        out.append(Signal("spf-softfail", SOFTFAIL_POINTS,
                          "The server that sent it is probably not one that "
                          f"{auth.spf.domain} uses for its mail.", Severity.LOW))
    bad = [d for d in auth.dkim if d.result == "fail"]
    if bad and not any(d.result == "pass" for d in auth.dkim):
        out.append(Signal("dkim-fail", 3.0,
                          f"Failed authentication: its digital signature from {bad[0].domain} "
                          "does not match the message (it was changed on the way, or forged)."))
    return out


def forged_known_signal(book: SenderBook, from_addr: str, auth: AuthResults) -> Signal | None:
    """A known sender's address on mail that cannot be shown to be theirs."""
    source = book.known_source(from_addr)
    if source is None or auth.authentic() or auth.dns_trouble():
        return None
    who = "a council address" if source == "council" else "a known sender"
    return Signal("forged-known-sender", STRONG,
                  f"Claims to come from {who} ({_visible(from_addr)}), but nothing shows that it "
                  "really does: it has no valid digital signature of that domain, and the "
                  "server that sent it is not one the domain names.", Severity.HIGH)


def own_domain_signal(council_domains: Iterable[str], from_addr: str, mail_from: str,
                      auth: AuthResults) -> Signal | None:
    """Mail from outside that uses the council's own domain, without a valid DKIM signature of
    that domain: whatever SPF says (a shared provider's servers may pass it) or DNS answers."""
    own = {d.lower() for d in council_domains}
    for address in (from_addr, mail_from):
        domain = _domain(address)
        if domain not in own:
            continue
        signed = any(d.result == "pass" and (d.domain.lower() == domain
                                             or d.domain.lower().endswith("." + domain))
                     for d in auth.dkim)
        if not signed:
            return Signal("council-domain-from-outside", STRONG,
                          f"Claims to come from the council ({_visible(address)}), but it came "
                          "from outside and has no valid digital signature of the council's "
                          "domain.", Severity.HIGH)
    return None


def blocked_signal(book: SenderBook, from_addr: str, mail_from: str) -> Signal | None:
    for address in (from_addr, mail_from):
        if address and book.is_blocked(address):
            return Signal("blocked-sender", STRONG,
                          f"The clerk has blocked this sender ({_visible(address)}).",
                          Severity.MEDIUM)
    return None


# ---------------------------------------------------------------------- attachments

def attachment_names(msg: Message) -> list[str]:
    """Names of the parts a person would see as attachments (inline images are not)."""
    out = []
    for part in msg.walk():
        ctype = part.get_content_type()
        if part.is_multipart() and ctype != "message/rfc822":
            continue
        disposition = part.get_content_disposition()
        try:
            filename = part.get_filename()
        except Exception:
            filename = None
        if ctype == "message/rfc822":
            out.append(filename or "a forwarded message")
        elif disposition == "attachment" or (filename and disposition != "inline"):
            out.append(filename or f"an unnamed {ctype} file")
        elif disposition is None and part.get_content_maintype() not in ("text", "image"):
            out.append(f"an unnamed {ctype} file")
    return out


def attachments_signal(names: list[str]) -> Signal | None:
    if not names:
        return None
    shown = ", ".join(_visible(n, 60) for n in names[:3]) + (" …" if len(names) > 3 else "")
    return Signal("attachment-unknown-sender", STRONG,
                  f"Has {_plural(len(names), 'attachment')} ({shown}) from a sender the council "
                  "does not know; attachments are opened only from trusted sources.")


# ---------------------------------------------------------------------- lists

def list_ident(msg: Message) -> str:
    """The mailing list's identifier from List-Id (``weekly.lists.nalc.gov.uk``), or ""."""
    list_id = " ".join(str(msg.get("list-id", "") or "").split())
    m = re.search(r"<([^<>]+)>", list_id)
    return (m.group(1) if m else list_id).strip().lower()


def reads_list(msg: Message, known_lists: Iterable[str], from_domain: str = "") -> bool:
    """The message comes from a mailing list the council has said it reads. With
    ``from_domain``, only when the list is that domain's own (anyone can write a List-Id)."""
    ident = list_ident(msg)
    if not ident or not any(ident == k.strip().strip("<>").lower() for k in known_lists):
        return False
    return not from_domain or org_domain(ident) == org_domain(from_domain)


def bulk_signal(msg: Message, known_lists: Iterable[str]) -> Signal | None:
    """Mailing-list or bulk mail from a list the council has not said it reads."""
    ident = list_ident(msg)
    precedence = str(msg.get("precedence", "") or "").strip().lower()
    if not ident and precedence not in ("bulk", "list", "junk"):
        return None
    if reads_list(msg, known_lists):
        return None
    what = (f"from the mailing list {_visible(ident)}" if ident
            else "that its sender marks as sent in bulk")
    return Signal("bulk-mail", STRONG,
                  f"Mailing-list or bulk mail {what}, which the council has not said it reads.",
                  Severity.LOW)


# ---------------------------------------------------------------------- body

def _parts(msg: Message, subtype: str) -> list[str]:
    out = []
    for part in msg.walk():
        if part.get_content_type() != f"text/{subtype}":
            continue
        if part.get_content_disposition() == "attachment":
            continue
        try:
            content = part.get_content() if isinstance(part, EmailMessage) else part.get_payload()
        except Exception:
            payload = part.get_payload(decode=True)
            content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
        if isinstance(content, str):
            out.append(content[:MAX_TEXT])
    return out


def html_readings(msg: Message) -> tuple[HtmlReading, ...]:
    """Each HTML body part read once (its first ``MAX_TEXT`` characters), for
    :func:`body_text` and :func:`link_signal` alike."""
    return tuple(read_html(html) for html in _parts(msg, "html"))


def body_text(msg: Message, html: Sequence[HtmlReading] | None = None) -> str:
    """Subject and the readable text of the body (HTML parts reduced to their text)."""
    chunks = [str(msg.get("subject", "") or "")]
    chunks += _parts(msg, "plain")
    chunks += [r.text for r in (html_readings(msg) if html is None else html)]
    return " ".join(" ".join(chunks).split())


_URLISH = re.compile(r"^\s*(?:https?://)?((?:[\w-]+\.)+[a-z]{2,})(?:[/:?#]\S*)?\s*$", re.I)


def link_signal(msg: Message, html: Sequence[HtmlReading] | None = None) -> Signal | None:
    """A link whose text shows one web address and whose target is another."""
    for reading in html_readings(msg) if html is None else html:
        for link in reading.links:
            m = _URLISH.match(link.shown)
            if not m:
                continue
            href = link.href.strip()
            try:
                target = (urlsplit(href).hostname or "").lower()
            except ValueError:
                continue
            if not target or href.lower().startswith("mailto:"):
                continue
            if org_domain(m.group(1)) != org_domain(target):
                return Signal("link-mismatch", STRONG,
                              f'Looks like phishing: a link shows "{_visible(link.shown, 60)}" '
                              f"but leads to {_visible(target, 60)}.", Severity.HIGH)
    return None


def address_of(header: str) -> str:
    return _addr(header)
