"""Reading the settings that rule-based filters share: phrase lists, named patterns, actions."""

from __future__ import annotations

import re

from gateway.config import Section
from gateway.rules.actions import ACTIONS
from gateway.rules.phrases import PhraseError, phrase_regex

__all__ = ["read_action", "read_patterns", "read_phrases"]


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


def read_action(s: Section, name: str = "action") -> tuple[str, str]:
    """``action = "hold"`` (both directions) or ``action = {outbound = "...", inbound = "..."}``."""
    if isinstance(s.raw.get(name), str):
        both = s.choice(name, "flag", ACTIONS)
        return both, both
    sub = s.sub(name)
    outbound = sub.choice("outbound", "flag", ACTIONS)
    inbound = sub.choice("inbound", "flag", ACTIONS)
    sub.finish()
    return outbound, inbound
