"""Junk phrases in a message's words: chain letters, advertising, payment fraud.

Each list's phrases are found as whole words, case and spacing aside; each phrase found counts
(two of a kind make a strong signal, as an honest message may use one)."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.rules.junk import ADVERT_POINTS, CHAIN_POINTS, FRAUD_POINTS, Signal
from gateway.rules.phrases import word_set
from gateway.rules.wording import one_line
from gateway.verdicts import Severity

__all__ = ["phrase_signals"]


@dataclass(frozen=True)
class _Folded:
    """A text as phrases are looked for in it: case folded, with its set of words."""

    text: str
    words: frozenset[str]

    @classmethod
    def of(cls, text: str) -> _Folded:
        folded = text.casefold()
        return cls(folded, word_set(folded))


def _find(folded: _Folded, phrases: Iterable[str]) -> list[str]:
    """The phrases found in the text as whole words (case and spacing aside)."""
    found = []
    for p, needle, needed in _needles(tuple(phrases)):
        # Cheap tests first, as most phrases are absent from most mail: a phrase found as
        # whole words has each of its words among the text's.
        if (needed <= folded.words and needle in folded.text
                and _whole_words(needle).search(folded.text)):
            found.append(p)
    return found


@functools.lru_cache(maxsize=64)
def _needles(phrases: tuple[str, ...]) -> tuple[tuple[str, str, frozenset[str]], ...]:
    """Each phrase with the form it is looked for in (folded, single spaces) and its words."""
    return tuple((p, n, word_set(n))
                 for p in phrases if (n := " ".join(p.casefold().split())))


@functools.lru_cache(maxsize=1024)
def _whole_words(needle: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){re.escape(needle)}(?!\w)")


def phrase_signals(text: str, chain: Iterable[str], advert: Iterable[str],
                   fraud: Iterable[str] = ()) -> list[Signal]:
    out = []
    folded = _Folded.of(text)
    hits = _find(folded, chain)
    if hits:
        shown = ", ".join(f'"{one_line(h, 40)}"' for h in hits[:3])
        out.append(Signal("chain-letter", CHAIN_POINTS * len(hits),
                          f"Reads like a chain letter: {shown}.", Severity.LOW))
    hits = _find(folded, advert)
    if hits:
        shown = ", ".join(f'"{one_line(h, 40)}"' for h in hits[:3])
        out.append(Signal("advertising", ADVERT_POINTS * len(hits),
                          f"Reads like unsolicited advertising: {shown}.", Severity.LOW))
    hits = _find(folded, fraud)
    if hits:
        shown = ", ".join(f'"{one_line(h, 40)}"' for h in hits[:3])
        out.append(Signal("payment-fraud", FRAUD_POINTS * len(hits),
                          f"Reads like a request for money or gift cards that fraudsters make: "
                          f"{shown}.", Severity.HIGH))
    return out
