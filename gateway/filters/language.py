"""Insulting, threatening, obscene or discriminating language in outgoing mail.

Policy: Kirkham Town Council rule 12 ("No e-mail must be sent containing insulting, threatening,
obscene, discriminating or otherwise inappropriate comments"); Stanion Parish Council,
"Unacceptable Use" (obscene language; offensive or abusive material). Words come from a list
(the built-in ``gateway/data/offensive-words.txt``, or ``[language] words_file``), matched as
whole words so that Scunthorpe, Penistone and Cockermouth are safe. Outbound only; the action
(``[language] action``: flag, hold or reject) defaults to flag.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from gateway.config import Config, Section, register_section, section
from gateway.context import MessageContext
from gateway.filters import register
from gateway.mime.text import Extraction, message_text
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
from gateway.rules.language import LanguageRules, default_words, read_word_list
from gateway.rules.notify import notify_sender
from gateway.rules.sections import read_phrases
from gateway.verdicts import Accept, Finding, Verdict

__all__ = ["LanguageConfig", "LanguageFilter", "parse_language", "report", "HEADER"]

NAME = "language"
HEADER = "X-Council-Language"


@dataclass(frozen=True)
class LanguageConfig:
    action: str = "flag"
    notify_sender: bool = False
    words_file: Path | None = None  # None: the built-in list
    extra_words: tuple[str, ...] = ()
    allowed_words: tuple[str, ...] = ()

    def words(self) -> list[str]:
        base = read_word_list(self.words_file) if self.words_file else default_words()
        return base + list(self.extra_words)


def parse_language(s: Section) -> LanguageConfig:
    """Read and check the ``[language]`` section."""
    words_file = s.optional_path("words_file", "")
    if words_file is not None:
        try:
            read_word_list(words_file)
        except (OSError, UnicodeDecodeError) as e:
            s.problem("words_file", f'"{words_file}" cannot be read: {e}')
            words_file = None
    cfg = LanguageConfig(
        action=s.choice("action", "flag", ACTIONS),
        notify_sender=s.flag("notify_sender", False),
        words_file=words_file,
        extra_words=read_phrases(s, "extra_words", ()),
        allowed_words=s.str_list("allowed_words", ()),
    )
    s.finish()
    return cfg


register_section(NAME)(parse_language)


def find(rules: LanguageRules, extraction: Extraction) -> list[Hit]:
    return [Hit(f'"{word}"', piece.place) for piece in extraction.pieces
            for word in rules.find(piece.text, piece.words)]


def report(hits: list[Hit], subject: str) -> Report:
    """The case against a message with offensive language in it, worded for each action."""
    findings = tuple(Finding(NAME, "language", f"{what} in {', '.join(places)}")
                     for what, places in group_hits(hits))
    policy = ("The council's IT policy (Kirkham Town Council rule 12; Stanion Parish Council, "
              "\"Unacceptable Use\") does not allow insulting, threatening, obscene or "
              "discriminating language in e-mail.")
    title = f'"{subject}"' if subject else "without a subject"
    body = "\n".join([
        f"The council mail gateway noticed language in your message {title} that the council's "
        "policy does not allow:",
        "",
        *(f"  - {what} in {', '.join(places)}" for what, places in group_hits(hits)),
        "",
        policy,
        "",
        "If the words are quoted from a message you are reporting, or used in an innocent "
        "sense, there is nothing to do; otherwise please take care with future messages.",
        "",
        "-- ",
        "This notice was written by the council mail gateway. Ask the clerk if anything in it "
        "is unclear.",
    ])
    return Report(
        findings=findings,
        header=(HEADER, f"found: {describe(hits)}"),
        hold_reason=f"it contains language the council's policy does not allow: "
                    f"{describe(hits, limit=2)}",
        reject_text=reply_text(f"Not sent: the message contains {describe(hits, limit=2)}.",
                               f"{policy} Please reword it and send it again."),
        notice_subject=f"Language in your message {title}",
        notice_body=body,
    )


class LanguageFilter:
    name = NAME
    timeout = 60.0

    def __init__(self, config: Config, cfg: LanguageConfig):
        self.config = config
        self.cfg = cfg
        self.rules = LanguageRules(cfg.words(), cfg.allowed_words)

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


@register(NAME, order=56, sides=("outbound",),
          summary="flags, holds or rejects insulting, threatening or obscene language in "
                  "outgoing mail")
def build(config: Config) -> LanguageFilter:
    return LanguageFilter(config, parse_language(section(config, NAME)))
