"""What the filters that look for words share: confidential markers, access codes, language.

Each reads the message's text once (shared by all three, see :func:`gateway.mime.reading.
examined_text`), finds :class:`~gateway.rules.wording.Hit` facts in it and words them into a
:class:`Case`: the findings, the header that marks the message when the policy tags it, and a
notice for the councillor who sent it. Everything a person reads names what matched and where,
never the matched secret itself (a password, an NI number). Reading the phrase lists and patterns
of their config sections is here too.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass

from gateway.config import Section
from gateway.context import MessageContext
from gateway.mime.reading import examined_text
from gateway.mime.text import Extraction
from gateway.mime.workers import in_worker
from gateway.pipeline import Stage
from gateway.rules.phrases import PhraseError, phrase_regex
from gateway.rules.wording import Hit, ascii_safe, group_hits
from gateway.verdicts import Action, Change, Finding, Kind, Notice, Report, Severity

__all__ = [
    "UNREADABLE",
    "Case",
    "TextRuleFilter",
    "hit_findings",
    "notice_body",
    "read_patterns",
    "read_phrases",
    "subject_of",
]

# The first paragraph of a notice to the sender: what happened to the message.
SENDER_OUTCOMES = (
    (Action.TAG, "Your message was delivered, marked for the clerk's attention."),
    (Action.HOLD, "Your message has NOT been sent yet: it is held for the clerk to review, who "
                  "will release or delete it."),
)
UNREADABLE = Kind("unreadable", "an attachment a word check could not read (recorded only)")
SIGN_OFF = ("-- \nThis notice was written by the council mail gateway. Ask the clerk if anything "
            "in it is unclear.")


@dataclass(frozen=True)
class Case:
    """A text rule's case against a message."""

    findings: tuple[Finding, ...]
    header: tuple[str, str] | None  # marks the message when the policy tags it
    notice_subject: str = ""
    notice_body: str = ""  # without the first paragraph, which says what happened


def hit_findings(name: str, code: str, hits: list[Hit], *, suffix: str = "",
                 reply: str = "") -> tuple[Finding, ...]:
    """One finding for each thing found, naming every place it was found."""
    return tuple(Finding(name, code, Severity.MEDIUM, f"{what} in {', '.join(places)}{suffix}",
                         reply) for what, places in group_hits(hits))


def notice_body(*paragraphs: str) -> str:
    return "\n\n".join([*paragraphs, SIGN_OFF])


class TextRuleFilter(ABC):
    """A check over the message's words; subclasses say what a case is."""

    stage = Stage.CHECK
    timeout: float | None = 60.0  # reading attachments is bounded well within this
    name: str

    def __init__(self, notify_sender: bool = False):
        self.notify_sender = notify_sender

    @abstractmethod
    def examine(self, extraction: Extraction, ctx: MessageContext) -> Case | None:
        """The case against the message, or None; runs in a worker thread (pure)."""

    def unread(self, extraction: Extraction) -> tuple[Finding, ...]:
        """Attachments this filter could not look into: recorded, never taken as clean."""
        return tuple(Finding(self.name, UNREADABLE.code, Severity.INFO, str(u))
                     for u in extraction.unreadable if not u.too_complex)

    def too_complex(self, extraction: Extraction) -> tuple[Finding, ...]:
        """Parts built beyond what the gateway reads: the words there were not checked."""
        return tuple(Finding(self.name, "too-complex", Severity.MEDIUM, str(u),
                             f"Message rejected: {u}")
                     for u in extraction.unreadable if u.too_complex)

    async def check(self, ctx: MessageContext) -> Report:
        # Matching 10 MB of text takes a noticeable fraction of a second: not on the event loop
        # (in the same visit to a thread as the reading, when the text is read now).
        extraction, examined = await examined_text(ctx, lambda e: self.examine(e, ctx))
        if examined is not None:
            case = examined[0]
        else:
            case = await in_worker(ctx.size, self.examine, extraction, ctx)
        beyond = self.too_complex(extraction)
        if case is None:
            return Report(beyond + self.unread(extraction))
        notices: tuple[Notice, ...] = ()
        if self.notify_sender and case.notice_subject:
            notices = (Notice(case.notice_subject, "{outcome}\n\n" + case.notice_body,
                              SENDER_OUTCOMES),)
        tag = None
        if case.header is not None:
            name, value = case.header
            tag = Change(add_headers=((name, ascii_safe(value)),))
        return Report(beyond + case.findings, tag=tag, notices=notices)


def subject_of(extraction: Extraction) -> str:
    """The message's Subject as the extraction read it ("" when it has none)."""
    subjects = extraction.of_kind("subject")
    return subjects[0].text if subjects else ""


# --------------------------------------------------------------------------- config readers

def read_patterns(s: Section, default: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """A ``patterns`` table of name = "regular expression", each checked by compiling it."""
    if not s.has("patterns"):
        s.seen.add("patterns")
        return default
    sub = s.sub("patterns")
    out = []
    for name in list(sub.raw):
        regex = sub.text(name, "")
        try:
            re.compile(regex)
        except re.error as e:
            sub.problem(name, f"is not a regular expression Python understands: {e}")
            continue
        if not regex:
            sub.problem(name, "is empty; remove it or give a regular expression")
            continue
        out.append((name, regex))
    return tuple(out)


def read_phrases(s: Section, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    phrases = s.str_list(key, default)
    for i, p in enumerate(phrases):
        try:
            phrase_regex(p)
        except PhraseError as e:
            s.problem(f"{key}[{i}]", str(e))
    return tuple(p for p in phrases if p.strip().rstrip("*").strip())
