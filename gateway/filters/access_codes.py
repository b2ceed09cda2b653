"""Passwords, PINs and door codes written into outgoing mail.

Policy: Stanion Parish Council, "Disclosure Rules and Individual's Liability": "computer & network
access codes and similar or related information that might assist unauthorised access" are not
to be revealed via the Internet. What counts as an access code is in
:mod:`gateway.rules.access_codes`; the action (``[access_codes] action``: flag, hold or reject,
default flag) is the same as for the confidential filter. Outbound only.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from gateway.config import Config, Section, register_section, section
from gateway.context import MessageContext
from gateway.filters import register
from gateway.mime.text import Extraction, message_text
from gateway.rules.access_codes import AccessCodeRules
from gateway.rules.actions import (
    ACTIONS,
    Hit,
    Report,
    describe,
    group_hits,
    reply_text,
    unread_findings,
    verdict,
)
from gateway.rules.notify import notify_sender
from gateway.rules.sections import read_patterns
from gateway.verdicts import Accept, Finding, Verdict

__all__ = ["AccessCodesConfig", "AccessCodesFilter", "parse_access_codes", "report", "HEADER"]

NAME = "access_codes"
HEADER = "X-Council-Access-Codes"


@dataclass(frozen=True)
class AccessCodesConfig:
    action: str = "flag"
    notify_sender: bool = False
    patterns: tuple[tuple[str, str], ...] = ()


def parse_access_codes(s: Section) -> AccessCodesConfig:
    """Read and check the ``[access_codes]`` section."""
    cfg = AccessCodesConfig(
        action=s.choice("action", "flag", ACTIONS),
        notify_sender=s.flag("notify_sender", False),
        patterns=read_patterns(s, ()),
    )
    s.finish()
    return cfg


register_section(NAME)(parse_access_codes)


def find(rules: AccessCodeRules, extraction: Extraction) -> list[Hit]:
    return [Hit(what, piece.place) for piece in extraction.pieces
            for what in rules.find(piece.text, piece.words)]


def report(hits: list[Hit], subject: str) -> Report:
    """The case against a message with access codes in it, worded for each action."""
    found = describe(hits)
    findings = tuple(Finding(NAME, "access-code", f"{what} in {', '.join(places)}")
                     for what, places in group_hits(hits))
    policy = ("The council's IT policy (Stanion Parish Council, \"Disclosure Rules\") does not "
              "allow computer and network access codes, such as passwords, PINs and door or "
              "alarm codes, to be sent by e-mail.")
    advice = ("Please pass such codes on another way, for example by telephone or in person, "
              "and change any code that has already gone out by e-mail.")
    title = f'"{subject}"' if subject else "without a subject"
    body = "\n".join([
        f"The council mail gateway noticed that your message {title} appears to contain:",
        "",
        *(f"  - {what} in {', '.join(places)}" for what, places in group_hits(hits)),
        "",
        policy,
        "",
        advice,
        "",
        "If this is a mistake (there is no real code in the message), there is nothing to do.",
        "",
        "-- ",
        "This notice was written by the council mail gateway. Ask the clerk if anything in it "
        "is unclear.",
    ])
    return Report(
        findings=findings,
        header=(HEADER, f"found: {found}"),
        hold_reason=f"it appears to contain {describe(hits, limit=2)}",
        reject_text=reply_text(
            f"Not sent: the message appears to contain {describe(hits, limit=2)}.",
            f"{policy} Remove it and pass it on another way, such as by telephone, then send "
            "the message again."),
        notice_subject=f"A password or code in your message {title}",
        notice_body=body,
    )


class AccessCodesFilter:
    name = NAME
    timeout = 60.0

    def __init__(self, config: Config, cfg: AccessCodesConfig):
        self.config = config
        self.cfg = cfg
        self.rules = AccessCodeRules(cfg.patterns)

    async def check(self, ctx: MessageContext) -> Verdict:
        extraction = await message_text(ctx)
        hits = await asyncio.to_thread(find, self.rules, extraction)
        if not hits:
            return Accept(findings=unread_findings(extraction.unreadable, NAME))
        subjects = extraction.of_kind("subject")
        rep = report(hits, subjects[0].text if subjects else "")
        if self.cfg.notify_sender:
            notify_sender(self.config, ctx, self.cfg.action, rep.notice_subject, rep.notice_body)
        return verdict(self.cfg.action, rep)


@register(NAME, order=55, sides=("outbound",),
          summary="flags, holds or rejects passwords, PINs and door codes in outgoing mail")
def build(config: Config) -> AccessCodesFilter:
    return AccessCodesFilter(config, parse_access_codes(section(config, NAME)))
