"""From what a rule found to what the gateway does with the message: flag, hold or reject.

Rules report :class:`Hit` facts ("the phrase "personal data"" in "the message text"); a filter
words them into a :class:`Report` (trace header, quarantine reason, SMTP reply, notice to the
sender) and :func:`verdict` picks the one the configured action asks for. Everything a person
reads names what matched and where, never the matched secret itself (a password, an NI number).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gateway.verdicts import Finding, Modify, Quarantine, Reject, Verdict

__all__ = [
    "ACTIONS",
    "Hit",
    "Report",
    "ascii_safe",
    "describe",
    "group_hits",
    "reply_text",
    "unread_findings",
    "verdict",
]

# flag: deliver with a trace header (and a notice to the sender when asked);
# hold: quarantine for the clerk; reject: 550 5.7.1 to the sender's client.
ACTIONS = ("flag", "hold", "reject")


@dataclass(frozen=True)
class Hit:
    what: str  # 'the phrase "personal data"', 'a National Insurance number'
    where: str  # 'the message text', 'the attachment "minutes.docx"'

    def __str__(self) -> str:
        return f"{self.what} in {self.where}"


def ascii_safe(text: str) -> str:
    """Plain ASCII on one line, for SMTP replies and header fields: "Café" -> "Cafe"."""
    text = text.replace("\u2026", "...").replace("\u2019", "'").replace("\u2018", "'")
    text = text.replace("\u201c", '"').replace("\u201d", '"')
    flat = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return " ".join(flat.split())


def group_hits(hits: Iterable[Hit]) -> list[tuple[str, list[str]]]:
    """[(what, [where, ...])] in the order first seen, each place once."""
    grouped: dict[str, list[str]] = {}
    for hit in hits:
        places = grouped.setdefault(hit.what, [])
        if hit.where not in places:
            places.append(hit.where)
    return list(grouped.items())


def _and(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def describe(hits: Iterable[Hit], limit: int = 4) -> str:
    """'the phrase "x" in the Subject and the message text; a PIN in the attachment "a.pdf"'."""
    groups = group_hits(hits)
    parts = [f"{what} in {_and(places[:3])}" + (
        f" and {len(places) - 3} more places" if len(places) > 3 else "")
        for what, places in groups[:limit]]
    more = len(groups) - limit
    text = "; ".join(parts)
    if more > 0:
        text += f"; and {more} more"
    return text


# An SMTP reply line is at most 512 octets (RFC 5321 4.5.3.1.5), "550 5.7.1 " and CRLF included.
MAX_REPLY_TEXT = 480


def reply_text(what: str, advice: str, limit: int = MAX_REPLY_TEXT) -> str:
    """``what`` then ``advice`` in one reply line; ``what`` is shortened if the line is too long.

    The advice (what to do) is never cut: it is the part the sender needs.
    """
    what, advice = ascii_safe(what), ascii_safe(advice)
    room = limit - len(advice) - 1
    if len(what) > room:
        what = what[: max(room - 4, 0)].rstrip() + " ..."
    return f"{what} {advice}"


@dataclass(frozen=True)
class Report:
    """One filter's case against a message, worded for each way of acting on it."""

    findings: tuple[Finding, ...]
    header: tuple[str, str]  # trace header field for "flag"
    hold_reason: str  # quarantine reason (also in the 250 reply to the sender)
    reject_text: str  # 550 5.7.1 reply text
    notice_subject: str = ""
    notice_body: str = ""


def verdict(action: str, report: Report) -> Verdict:
    if action == "hold":
        return Quarantine((ascii_safe(report.hold_reason),), report.findings)
    if action == "reject":
        return Reject(ascii_safe(report.reject_text), 550, "5.7.1", report.findings)
    name, value = report.header
    return Modify(add_headers=((name, ascii_safe(value)),), findings=report.findings)


def unread_findings(unreadable: Iterable[object], name: str) -> tuple[Finding, ...]:
    """Attachments this filter could not look into: recorded, never taken as clean."""
    return tuple(Finding(name, "unreadable", str(u)) for u in unreadable)
