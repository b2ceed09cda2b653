"""Confidential material without the "Restricted Distribution Private and Confidential" label.

Policy: Stanion Parish Council, "Security": e-mail with confidential information is sent only
when nothing else will do, only to those who need to know, and "in all cases" marked
'Restricted Distribution Private and Confidential'; "Email": confidential information is not
mailed outside the council. Kirkham Town Council rule 13: highly sensitive information is not
sent by e-mail.

What it reports (the ``[policy]`` table decides what happens; the defaults are given):

* markers (or an attachment that could not be read) and no label: ``confidential.marker`` and
  ``confidential.unreadable``, with ``confidential.outside`` when it is addressed outside the
  council. Tagged by default (delivered with an ``X-Council-Confidential`` header, and a notice to
  the sender when ``notify_sender`` is true); ``hold`` quarantines it for the clerk, ``refuse``
  answers 550 5.7.1 saying what matched, where, and what to do;
* outbound, a labelled message to addresses outside the council, or to more than
  ``max_recipients`` addresses: ``labelled.outside`` and ``labelled.many-recipients``, tagged. The
  sender did what the policy asks by marking it, so it is not stopped, but the clerk can see it
  in the audit log and the sender is reminded;
* a labelled message that goes only to a few council addresses: ``label-present``, recorded
  only;
* inbound the default is to tag too: the council cannot hold other people to its policy, but
  a header lets the mailbox sort and mark such mail, and the audit log records it. Senders outside
  the council are never sent notices.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import Section
from gateway.context import MessageContext
from gateway.filters.textrule import (
    Case,
    TextRuleFilter,
    hit_findings,
    notice_body,
    read_patterns,
    read_phrases,
    subject_of,
)
from gateway.mime.text import Extraction
from gateway.rules.boilerplate import DEFAULT_CUES
from gateway.rules.markers import DETECTORS, MarkerResult, MarkerRules
from gateway.rules.wording import ascii_safe, describe, group_hits, reply_text
from gateway.verdicts import Action, Finding, Kind, Severity, SmtpCode

__all__ = [
    "HEADER",
    "KINDS",
    "ConfidentialConfig",
    "ConfidentialFilter",
    "Situation",
    "examine",
    "parse_confidential",
]

NAME = "confidential"
HEADER = "X-Council-Confidential"
LABEL = "Restricted Distribution Private and Confidential"
_ASK = ("Ask the sender whether it should go as it is: release it if so; if not, delete it and "
        "let them send it again with the label.")
KINDS = (
    Kind("confidential.marker", "confidential material without the label", Action.TAG,
         Action.TAG, refuse=SmtpCode(550, "5.7.1"), advice=_ASK),
    Kind("confidential.unreadable", "an attachment that could not be checked for confidential "
         "material, without the label", Action.TAG, Action.TAG, refuse=SmtpCode(550, "5.7.1"),
         advice=_ASK),
    Kind("confidential.outside", "unlabelled confidential material addressed outside the "
         "council", Action.TAG, Action.TAG, refuse=SmtpCode(550, "5.7.1"), advice=_ASK),
    Kind("labelled.outside", "labelled confidential mail addressed outside the council",
         Action.TAG, Action.TAG, advice=_ASK),
    Kind("labelled.many-recipients", "labelled confidential mail to more people than "
         "[confidential] max_recipients", Action.TAG, Action.TAG, advice=_ASK),
    Kind("label-present", "labelled confidential mail to a few council addresses (recorded "
         "only)"),
)

DEFAULT_MARKERS: tuple[str, ...] = (
    "confidential",
    "private and confidential",
    "strictly confidential",
    "in strict confidence",
    "personal data",
    "special category data",
    "highly sensitive",
    "sensitive information",
    "sensitive personal",
    "commercially sensitive",
    "not for publication",
    "exempt information",
)
DEFAULT_PATTERNS: tuple[tuple[str, str], ...] = ()
DEFAULT_DETECTORS: tuple[str, ...] = tuple(DETECTORS)


@dataclass(frozen=True)
class ConfidentialConfig:
    markers: tuple[str, ...] = DEFAULT_MARKERS
    patterns: tuple[tuple[str, str], ...] = DEFAULT_PATTERNS
    detectors: tuple[str, ...] = DEFAULT_DETECTORS
    label: str = LABEL
    notify_sender: bool = False
    max_recipients: int = 15
    boilerplate: tuple[str, ...] = DEFAULT_CUES


def parse_confidential(s: Section) -> ConfidentialConfig:
    """Read and check the ``[confidential]`` section."""
    markers = read_phrases(s, "markers", DEFAULT_MARKERS)
    patterns = read_patterns(s, DEFAULT_PATTERNS)
    detectors = s.str_list("detectors", DEFAULT_DETECTORS)
    for i, d in enumerate(detectors):
        if d not in DETECTORS:
            known = ", ".join(f'"{k}"' for k in DETECTORS)
            s.problem(f"detectors[{i}]", f'"{d}" is not a detector the gateway has ({known})')
    detectors = tuple(d for d in detectors if d in DETECTORS)
    label = s.text("label", LABEL)
    if not any(c.isalnum() for c in label):
        s.problem("label", "must have words in it, e.g. "
                           '"Restricted Distribution Private and Confidential"')
        label = LABEL
    cfg = ConfidentialConfig(
        markers=markers,
        patterns=patterns,
        detectors=detectors,
        label=label,
        notify_sender=s.flag("notify_sender", False),
        max_recipients=s.integer("max_recipients", 15, minimum=1),
        boilerplate=read_phrases(s, "boilerplate", DEFAULT_CUES),
    )
    s.finish()
    return cfg


# --------------------------------------------------------------------------- deciding

@dataclass(frozen=True)
class Situation:
    """The facts about one message that the case rests on."""

    side: str
    result: MarkerResult
    subject: str
    recipients: tuple[str, ...]
    outside: tuple[str, ...]  # recipients outside the council's domains


def examine(cfg: ConfidentialConfig, s: Situation) -> Case | None:
    """The case against the message, or None when there is nothing to say."""
    r = s.result
    if not r.labelled and (r.hits or r.unreadable):
        return _unlabelled(cfg, s)
    if r.labelled and s.side == "outbound":
        worries = []
        if s.outside:
            worries.append(("outside", f"it is addressed outside the council "
                                       f"({_addresses(s.outside)})"))
        if len(s.recipients) > cfg.max_recipients:
            worries.append(("many-recipients",
                            f"it is addressed to {len(s.recipients)} people, more than the "
                            f"{cfg.max_recipients} the council allows for confidential mail"))
        if worries:
            return _labelled(cfg, s, worries)
    return None


def _addresses(addresses: tuple[str, ...], limit: int = 3) -> str:
    shown = ", ".join(addresses[:limit])
    return shown + (f" and {len(addresses) - limit} more" if len(addresses) > limit else "")




def _unlabelled(cfg: ConfidentialConfig, s: Situation) -> Case:
    r = s.result
    label = f'"{cfg.label}"'
    found = describe(r.hits) if r.hits else ""
    unread = "; ".join(f"{u.place} ({u.reason})" for u in r.unreadable[:3])
    what = (f"contains {describe(r.hits, limit=2)}" if r.hits else
            f"has an attachment the gateway could not check: {unread}")
    outside = " and is addressed outside the council" if s.outside else ""
    reply = reply_text(
        f"Not sent: the message {what}{outside} but is not marked {label}.",
        "Council policy: confidential e-mail must carry it and go only to those who need to "
        "know, never outside the council. Remove the material, or add the label to the Subject "
        "or the top of the message, then send it again.")
    findings = list(hit_findings(NAME, "confidential.marker", list(r.hits),
                                 suffix=f", without the label {label}", reply=reply))
    findings += [Finding(NAME, "confidential.unreadable", Severity.MEDIUM,
                         f"{u}; the message is not labelled {label}", reply)
                 for u in r.unreadable]
    if s.outside:
        findings.append(Finding(NAME, "confidential.outside", Severity.INFO,
                                f"addressed outside the council: {_addresses(s.outside)}", reply))
    header = "label=absent"
    if found:
        header += f"; found: {found}"
    if unread:
        header += f"; not checked: {unread}"
    if s.outside:
        n = len(s.outside)
        header += f"; {n} recipient{'s' if n > 1 else ''} outside the council"
    lines = [f"  - {what} in {', '.join(places)}" for what, places in group_hits(r.hits)]
    lines += [f"  - {u}" for u in r.unreadable]
    subject, body = _notice(cfg, s, lines, f"and it is not marked {label}.", (
        f"If the message is confidential, please put {label} in the Subject or at the top of "
        "the message, and send it only to those who need to know and never outside the "
        "council. If it is not confidential, there is nothing to do."))
    return Case(tuple(findings), (HEADER, header), subject, body)


def _labelled(cfg: ConfidentialConfig, s: Situation, worries: list[tuple[str, str]]) -> Case:
    findings = tuple(Finding(NAME, f"labelled.{code}", Severity.MEDIUM,
                             f'labelled "{cfg.label}" but {text}') for code, text in worries)
    header = "label=present; " + "; ".join(ascii_safe(text) for _, text in worries)
    subject, body = _notice(cfg, s, [f"  - {text}" for _, text in worries], (
        f'It is marked "{cfg.label}", as the policy asks.'), (
        "Confidential information is not to be e-mailed outside the council, and only to those "
        "who need to know. If this was a mistake, please tell the clerk."))
    return Case(findings, (HEADER, header), subject, body)


def _notice(cfg: ConfidentialConfig, s: Situation, lines: list[str], after: str,
            advice: str) -> tuple[str, str]:
    title = f'"{s.subject}"' if s.subject else "without a subject"
    body = notice_body(
        f"Your message {title} to {_addresses(s.recipients)} went through the council mail "
        "gateway, which noticed:\n\n" + "\n".join(lines),
        after,
        "The council's IT policy (Stanion Parish Council, \"Security\" and \"Email\") says that "
        "e-mail containing confidential information is sent only when no other way will do, "
        "only to those who need to know, never outside the council, and always marked "
        f'"{cfg.label}".',
        advice)
    return f"Confidential material in your message {title}", body


# --------------------------------------------------------------------------- the filter

class ConfidentialFilter(TextRuleFilter):
    name = NAME

    def __init__(self, cfg: ConfidentialConfig, council_domains: tuple[str, ...]):
        super().__init__(cfg.notify_sender)
        self.cfg = cfg
        self.council_domains = council_domains
        self.rules = MarkerRules(markers=cfg.markers, patterns=cfg.patterns,
                                 detectors=cfg.detectors, label=cfg.label,
                                 boilerplate=cfg.boilerplate)

    def examine(self, extraction: Extraction, ctx: MessageContext) -> Case | None:
        result = self.rules.examine(extraction)
        rcpts = tuple(ctx.envelope.rcpt_tos)
        situation = Situation(
            side=ctx.side,
            result=result,
            subject=subject_of(extraction),
            recipients=rcpts,
            outside=tuple(r for r in rcpts
                          if r.rpartition("@")[2].lower() not in self.council_domains),
        )
        case = examine(self.cfg, situation)
        if case is None and result.hits:
            return Case((Finding(NAME, "label-present", Severity.INFO,
                                 f"labelled; contains {describe(result.hits)}"),), None)
        return case

    def unread(self, extraction: Extraction) -> tuple[Finding, ...]:
        return ()  # an unreadable attachment is part of this filter's case, not a side note
