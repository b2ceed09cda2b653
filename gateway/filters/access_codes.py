"""Passwords, PINs and door codes written into outgoing mail.

Policy: Stanion Parish Council, "Disclosure Rules and Individual's Liability": "computer & network
access codes and similar or related information that might assist unauthorised access" are not
to be revealed via the Internet. What counts as an access code is in
:mod:`gateway.rules.access_codes`; by default a message with one is tagged (``[policy]
access-code``). Outbound only.
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
    subject_of,
)
from gateway.mime.text import Extraction
from gateway.rules.access_codes import AccessCodeRules
from gateway.rules.wording import Hit, describe, group_hits, reply_text
from gateway.verdicts import Action, Kind, SmtpCode

__all__ = ["HEADER", "KINDS", "AccessCodesConfig", "AccessCodesFilter", "case",
           "parse_access_codes"]

NAME = "access_codes"
HEADER = "X-Council-Access-Codes"
KINDS = (
    Kind("access-code", "a password, PIN or door code in outgoing mail", Action.DELIVER,
         Action.TAG, refuse=SmtpCode(550, "5.7.1"),
         advice="Ask the councillor to pass the code on by telephone instead, then delete it."),
)
POLICY = ("The council's IT policy (Stanion Parish Council, \"Disclosure Rules\") does not "
          "allow computer and network access codes, such as passwords, PINs and door or alarm "
          "codes, to be sent by e-mail.")


@dataclass(frozen=True)
class AccessCodesConfig:
    notify_sender: bool = False
    patterns: tuple[tuple[str, str], ...] = ()


def parse_access_codes(s: Section) -> AccessCodesConfig:
    """Read and check the ``[access_codes]`` section."""
    cfg = AccessCodesConfig(notify_sender=s.flag("notify_sender", False),
                            patterns=read_patterns(s, ()))
    s.finish()
    return cfg


def case(hits: list[Hit], subject: str) -> Case:
    """The case against a message with access codes in it."""
    reply = reply_text(
        f"Not sent: the message appears to contain {describe(hits, limit=2)}.",
        f"{POLICY} Remove it and pass it on another way, such as by telephone, then send the "
        "message again.")
    title = f'"{subject}"' if subject else "without a subject"
    body = notice_body(
        f"The council mail gateway noticed that your message {title} appears to contain:\n\n"
        + "\n".join(f"  - {what} in {', '.join(places)}" for what, places in group_hits(hits)),
        POLICY,
        "Please pass such codes on another way, for example by telephone or in person, and "
        "change any code that has already gone out by e-mail.",
        "If this is a mistake (there is no real code in the message), there is nothing to do.")
    return Case(hit_findings(NAME, "access-code", hits, reply=reply),
                (HEADER, f"found: {describe(hits)}"),
                f"A password or code in your message {title}", body)


class AccessCodesFilter(TextRuleFilter):
    name = NAME

    def __init__(self, cfg: AccessCodesConfig):
        super().__init__(cfg.notify_sender)
        self.rules = AccessCodeRules(cfg.patterns)

    def examine(self, extraction: Extraction, ctx: MessageContext) -> Case | None:
        hits = [Hit(what, piece.place) for piece in extraction.pieces
                for what in self.rules.find(piece.text, piece.words)]
        return case(hits, subject_of(extraction)) if hits else None
