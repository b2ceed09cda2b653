"""Insulting, threatening, obscene or discriminating language in outgoing mail.

Policy: Kirkham Town Council rule 12 ("No e-mail must be sent containing insulting, threatening,
obscene, discriminating or otherwise inappropriate comments"); Stanion Parish Council,
"Unacceptable Use" (obscene language; offensive or abusive material). Words come from a list
(the built-in ``gateway/data/offensive-words.txt``, or ``[language] words_file``), matched as
whole words so that Scunthorpe, Penistone and Cockermouth are safe. Outbound only; by default
such a message is tagged (``[policy] language``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gateway.config import Section
from gateway.context import MessageContext
from gateway.filters.textrule import (
    Case,
    TextRuleFilter,
    hit_findings,
    notice_body,
    read_phrases,
    subject_of,
)
from gateway.mime.text import Extraction
from gateway.rules.language import LanguageRules, default_words, read_word_list
from gateway.rules.wording import Hit, describe, group_hits, reply_text
from gateway.verdicts import Action, Kind, SmtpCode

__all__ = ["HEADER", "KINDS", "LanguageConfig", "LanguageFilter", "case", "parse_language"]

NAME = "language"
HEADER = "X-Council-Language"
KINDS = (
    Kind("language", "insulting, threatening or obscene language in outgoing mail",
         Action.DELIVER, Action.TAG, refuse=SmtpCode(550, "5.7.1"),
         advice="Ask the councillor to reword it, then delete it."),
)
POLICY = ("The council's IT policy (Kirkham Town Council rule 12; Stanion Parish Council, "
          "\"Unacceptable Use\") does not allow insulting, threatening, obscene or "
          "discriminating language in e-mail.")


@dataclass(frozen=True)
class LanguageConfig:
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
        notify_sender=s.flag("notify_sender", False),
        words_file=words_file,
        extra_words=read_phrases(s, "extra_words", ()),
        allowed_words=s.str_list("allowed_words", ()),
    )
    s.finish()
    return cfg


def case(hits: list[Hit], subject: str) -> Case:
    """The case against a message with offensive language in it."""
    reply = reply_text(f"Not sent: the message contains {describe(hits, limit=2)}.",
                       f"{POLICY} Please reword it and send it again.")
    title = f'"{subject}"' if subject else "without a subject"
    body = notice_body(
        f"The council mail gateway noticed language in your message {title} that the council's "
        "policy does not allow:\n\n"
        + "\n".join(f"  - {what} in {', '.join(places)}" for what, places in group_hits(hits)),
        POLICY,
        "If the words are quoted from a message you are reporting, or used in an innocent "
        "sense, there is nothing to do; otherwise please take care with future messages.")
    return Case(hit_findings(NAME, "language", hits, reply=reply),
                (HEADER, f"found: {describe(hits)}"), f"Language in your message {title}", body)


class LanguageFilter(TextRuleFilter):
    name = NAME

    def __init__(self, cfg: LanguageConfig):
        super().__init__(cfg.notify_sender)
        self.rules = LanguageRules(cfg.words(), cfg.allowed_words)

    def examine(self, extraction: Extraction, ctx: MessageContext) -> Case | None:
        hits = [Hit(f'"{word}"', piece.place) for piece in extraction.pieces
                for word in self.rules.find(piece.text, piece.words)]
        return case(hits, subject_of(extraction)) if hits else None
