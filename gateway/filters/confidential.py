"""Confidential material without the "Restricted Distribution Private and Confidential" label.

Policy: Stanion Parish Council, "Security": e-mail with confidential information is sent only
when nothing else will do, only to those who need to know, and "in all cases" marked
'Restricted Distribution Private and Confidential'; "Email": confidential information is not
mailed outside the council. Kirkham Town Council rule 13: highly sensitive information is not
sent by e-mail.

What it does, per direction (``[confidential] action``):

* a message with markers (or an attachment that could not be read) and no label: ``flag``
  (deliver with an ``X-Council-Confidential`` header, and a notice to the sender when
  ``notify_sender`` is true), ``hold`` (quarantine for the clerk) or ``reject`` (550 5.7.1 saying
  what matched, where, and what to do);
* outbound, whatever the action: a labelled message to addresses outside the council, or to more
  than ``max_recipients`` addresses, is flagged. The sender did what the policy asks by marking it,
  so it is not stopped, but the clerk can see it in the audit log and the sender is reminded;
* a labelled message that goes only to a few council addresses passes untouched (its markers are
  recorded in the audit log);
* inbound the default is ``flag`` too: the council cannot hold other people to its policy, but
  a header lets the mailbox sort and mark such mail, and the audit log records it. Senders outside
  the council are never sent notices.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from gateway.config import Config, Section, register_section, section
from gateway.context import MessageContext
from gateway.filters import register
from gateway.mime.text import message_text
from gateway.rules.actions import (
    Hit,
    Report,
    ascii_safe,
    describe,
    group_hits,
    reply_text,
    verdict,
)
from gateway.rules.boilerplate import DEFAULT_CUES
from gateway.rules.markers import DETECTORS, MarkerResult, MarkerRules
from gateway.rules.notify import notify_sender
from gateway.rules.sections import read_action, read_patterns, read_phrases
from gateway.verdicts import Accept, Finding, Verdict

__all__ = [
    "HEADER",
    "ConfidentialConfig",
    "ConfidentialFilter",
    "Situation",
    "decide",
    "parse_confidential",
]

NAME = "confidential"
HEADER = "X-Council-Confidential"
LABEL = "Restricted Distribution Private and Confidential"

# Each earns its place; see docs/confidential.md for what was left out and why ("sensitive" on
# its own: "time-sensitive", "sensitive to residents' needs").
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
    action_outbound: str = "flag"
    action_inbound: str = "flag"
    notify_sender: bool = False
    max_recipients: int = 15
    boilerplate: tuple[str, ...] = DEFAULT_CUES


def parse_confidential(s: Section) -> ConfidentialConfig:
    """Read and check the ``[confidential]`` section (registered for check-config below)."""
    markers = read_phrases(s, "markers", DEFAULT_MARKERS)
    patterns = read_patterns(s, DEFAULT_PATTERNS)
    detectors = s.str_list("detectors", DEFAULT_DETECTORS)
    for i, d in enumerate(detectors):
        if d not in DETECTORS:
            known = ", ".join(f'"{k}"' for k in DETECTORS)
            s.problem(f"detectors[{i}]", f'"{d}" is not a detector the gateway has ({known})')
    detectors = tuple(d for d in detectors if d in DETECTORS)
    label = s.text("label", LABEL)
    if not re.search(r"\w", label):
        s.problem("label", "must have words in it, e.g. "
                           '"Restricted Distribution Private and Confidential"')
        label = LABEL
    outbound, inbound = read_action(s)
    cfg = ConfidentialConfig(
        markers=markers,
        patterns=patterns,
        detectors=detectors,
        label=label,
        action_outbound=outbound,
        action_inbound=inbound,
        notify_sender=s.flag("notify_sender", False),
        max_recipients=s.integer("max_recipients", 15, minimum=1),
        boilerplate=read_phrases(s, "boilerplate", DEFAULT_CUES),
    )
    s.finish()
    return cfg


register_section(NAME)(parse_confidential)


# --------------------------------------------------------------------------- deciding

@dataclass(frozen=True)
class Situation:
    """The facts about one message that the decision rests on."""

    direction: str
    result: MarkerResult
    subject: str
    recipients: tuple[str, ...]
    outside: tuple[str, ...]  # recipients outside the council's domains


def _finding(code: str, text: str) -> Finding:
    return Finding(NAME, code, text)


def decide(cfg: ConfidentialConfig, s: Situation) -> tuple[str, Report] | None:
    """What to do (an action and the report behind it), or None to let the message pass."""
    r = s.result
    label = f'"{cfg.label}"'
    if not r.labelled and (r.hits or r.unreadable):
        action = cfg.action_outbound if s.direction == "outbound" else cfg.action_inbound
        return action, _unlabelled_report(cfg, s, label)
    if r.labelled and s.direction == "outbound":
        worries = []
        if s.outside:
            worries.append(f"it is addressed outside the council ({_addresses(s.outside)})")
        if len(s.recipients) > cfg.max_recipients:
            worries.append(f"it is addressed to {len(s.recipients)} people, more than the "
                           f"{cfg.max_recipients} the council allows for confidential mail")
        if worries:
            return "flag", _labelled_report(cfg, s, worries)
    return None


def _addresses(addresses: tuple[str, ...], limit: int = 3) -> str:
    shown = ", ".join(addresses[:limit])
    return shown + (f" and {len(addresses) - limit} more" if len(addresses) > limit else "")


def _unlabelled_report(cfg: ConfidentialConfig, s: Situation, label: str) -> Report:
    r = s.result
    findings = [_finding("marker", f"{what} in {', '.join(places)}, without the label {label}")
                for what, places in group_hits(r.hits)]
    findings += [_finding("unreadable", f"{u}; the message is not labelled {label}")
                 for u in r.unreadable]
    if s.outside:
        findings.append(_finding("outside", f"addressed outside the council: "
                                             f"{_addresses(s.outside)}"))
    found = describe(r.hits) if r.hits else ""
    unread = "; ".join(f"{u.place} ({u.reason})" for u in r.unreadable[:3])
    header = "label=absent"
    if found:
        header += f"; found: {found}"
    if unread:
        header += f"; not checked: {unread}"
    if s.outside:
        n = len(s.outside)
        header += f"; {n} recipient{'s' if n > 1 else ''} outside the council"
    what = (f"contains {describe(r.hits, limit=2)}" if r.hits else
            f"has an attachment the gateway could not check: {unread}")
    outside = " and is addressed outside the council" if s.outside else ""
    hold = f"it {what}{outside}, without the {label} label"
    reject = reply_text(
        f"Not sent: the message {what}{outside} but is not marked {label}.",
        "Council policy: confidential e-mail must carry it and go only to those who need to "
        "know, never outside the council. Remove the material, or add the label to the Subject "
        "or the top of the message, then send it again.")
    lines = [f"  - {h}" for h in _lines(r.hits)] + [f"  - {u}" for u in r.unreadable]
    subject, body = _notice(cfg, s, lines, (
        f"and it is not marked {label}."), (
        f"If the message is confidential, please put {label} in the Subject or at the top of "
        "the message, and send it only to those who need to know and never outside the "
        "council. If it is not confidential, there is nothing to do."))
    return Report(tuple(findings), (HEADER, header), hold, reject, subject, body)


def _labelled_report(cfg: ConfidentialConfig, s: Situation, worries: list[str]) -> Report:
    findings = [_finding("labelled-" + ("outside" if "outside" in w else "many"),
                         f'labelled "{cfg.label}" but {w}') for w in worries]
    header = "label=present; " + "; ".join(ascii_safe(w) for w in worries)
    hold = f'labelled "{cfg.label}" but ' + " and ".join(worries)
    subject, body = _notice(cfg, s, [f"  - {w}" for w in worries], (
        f'It is marked "{cfg.label}", as the policy asks.'), (
        "Confidential information is not to be e-mailed outside the council, and only to those "
        "who need to know. If this was a mistake, please tell the clerk."))
    return Report(tuple(findings), (HEADER, header), hold, hold, subject, body)


def _lines(hits: tuple[Hit, ...]) -> list[str]:
    return [f"{what} in {', '.join(places)}" for what, places in group_hits(hits)]


def _notice(cfg: ConfidentialConfig, s: Situation, lines: list[str], after: str,
            advice: str) -> tuple[str, str]:
    title = f'"{s.subject}"' if s.subject else "without a subject"
    subject = f"Confidential material in your message {title}"
    body = "\n".join([
        f"Your message {title} to {_addresses(s.recipients)} went through the council mail "
        "gateway, which noticed:",
        "",
        *lines,
        "",
        after,
        "",
        "The council's IT policy (Stanion Parish Council, \"Security\" and \"Email\") says that "
        "e-mail containing confidential information is sent only when no other way will do, "
        "only to those who need to know, never outside the council, and always marked "
        f'"{cfg.label}".',
        "",
        advice,
        "",
        "-- ",
        "This notice was written by the council mail gateway. Ask the clerk if anything in it is "
        "unclear.",
    ])
    return subject, body


# --------------------------------------------------------------------------- the filter

class ConfidentialFilter:
    name = NAME
    timeout = 60.0  # reading attachments is bounded well within this (TextLimits.seconds)

    def __init__(self, config: Config, cfg: ConfidentialConfig):
        self.config = config
        self.cfg = cfg
        self.rules = MarkerRules(markers=cfg.markers, patterns=cfg.patterns,
                                 detectors=cfg.detectors, label=cfg.label,
                                 boilerplate=cfg.boilerplate)

    async def check(self, ctx: MessageContext) -> Verdict:
        extraction = await message_text(ctx)
        # Matching 10 MB of text takes a noticeable fraction of a second: not on the event loop.
        result = await asyncio.to_thread(self.rules.examine, extraction)
        subjects = extraction.of_kind("subject")
        rcpts = tuple(ctx.envelope.rcpt_tos)
        situation = Situation(
            direction=ctx.direction,
            result=result,
            subject=subjects[0].text if subjects else "",
            recipients=rcpts,
            outside=tuple(r for r in rcpts if not self.config.gateway.is_council_address(r)),
        )
        decision = decide(self.cfg, situation)
        if decision is None:
            if result.hits:
                return Accept(findings=(_finding(
                    "labelled", f"labelled; contains {describe(result.hits)}"),))
            return Accept()
        action, report = decision
        if self.cfg.notify_sender:
            notify_sender(self.config, ctx, action, report.notice_subject, report.notice_body)
        return verdict(action, report)


@register(NAME, order=50, summary="flags, holds or rejects confidential material sent without "
                                  "the 'Restricted Distribution Private and Confidential' label")
def build(config: Config) -> ConfidentialFilter:
    return ConfidentialFilter(config, parse_confidential(section(config, NAME)))

