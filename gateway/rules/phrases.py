"""Phrases found as whole words, case-insensitively, whatever white space or line breaks part them.

A phrase is written as a person would write it: ``"personal data"``. Its words match with any
run of white space between them (so across line breaks, and across HTML tags once the HTML is
reduced to text), in any case, and only as whole words: "sensitive" is not found in
"insensitive", "cunt" is not found in "Scunthorpe". A word joined on by a hyphen in front does
not count either ("non-confidential", "time-sensitive"): that is a different word. A trailing
``*`` allows any ending (``"wank*"`` finds "wanker"); use it only where no ordinary word or
place name starts the same way.

Speed: one regular expression with many alternatives is slow in Python's ``re`` (seconds for a
10 MB text). The text's set of words is built once instead, and only the phrases whose words are
all in it are looked for, each with its own expression.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass

__all__ = ["PhraseError", "PhraseSet", "phrase_regex", "word_set"]

# Not part of a longer word: no letter or digit before (nor "word-" before), none after.
_BEFORE = r"(?<!\w)(?<!\w-)"
_AFTER = r"(?!\w)"
_WORD = re.compile(r"\w+")


class PhraseError(ValueError):
    """A phrase that cannot be matched (empty, or only a "*")."""


def phrase_regex(phrase: str) -> str:
    """The regular expression (without flags) that finds ``phrase`` as whole words."""
    text = phrase.strip()
    wildcard = text.endswith("*")
    words = text.rstrip("*").split()
    if not words:
        raise PhraseError(f'"{phrase}" has no words to look for')
    body = r"\s+".join(re.escape(w) for w in words)
    tail = (r"\w*" if wildcard else "") + _AFTER
    first = words[0][0]
    if re.match(r"\w", first):
        # The same test written after the first letter: an expression that starts with a
        # letter lets ``re`` skip ahead quickly (three times faster on a long text).
        f = re.escape(first)
        return f"{f}(?<!\\w{f})(?<!\\w-{f})" + body[len(f):] + tail
    return _BEFORE + body + tail


def word_set(text: str) -> frozenset[str]:
    """Every word of ``text``, lower-cased: a quick test of which phrases could be there."""
    words: set[str] = set()
    # Splitting at white space first is twice as fast as a regex over the whole text: most
    # pieces are plain words, and each distinct piece is looked at once.
    for piece in set(text.lower().split()):
        if piece.isalnum():
            words.add(piece)
        else:
            words.update(_WORD.findall(piece))
    return frozenset(words)


@dataclass(frozen=True)
class _Phrase:
    text: str  # as configured, white space tidied
    regex: re.Pattern[str]
    keys: frozenset[str]  # words that must all be in the text for the phrase to be there
    prefix: str  # a one-word phrase with "*": some word of the text must start with this


def _compile(phrase: str) -> _Phrase:
    tidy = " ".join(phrase.split())
    regex = re.compile(phrase_regex(tidy), re.IGNORECASE)
    wildcard = tidy.endswith("*")
    words = tidy.rstrip("*").split()
    fixed = words[:-1] if wildcard else words
    keys = frozenset(t for w in fixed for t in _WORD.findall(w.lower()))
    prefix = ""
    if wildcard:
        # "wank*" needs a word starting "wank"; "e-mail*" needs "e" and a word starting "mail".
        last = _WORD.findall(words[-1].lower())
        keys |= frozenset(last[:-1])
        prefix = last[-1] if last else ""
    return _Phrase(tidy, regex, keys, prefix)


class PhraseSet:
    """A set of phrases to look for; :meth:`search` says which are in a text."""

    def __init__(self, phrases: Iterable[str]):
        unique: dict[str, str] = {}
        for p in phrases:
            key = " ".join(p.lower().split())
            if key and key not in unique:
                unique[key] = p
        self._entries = tuple(sorted((_compile(p) for p in unique.values()),
                                     key=lambda e: (-len(e.text), e.text.lower())))
        self.phrases: tuple[str, ...] = tuple(e.text for e in self._entries)

    def __bool__(self) -> bool:
        return bool(self._entries)

    def _candidates(self, words: Collection[str]) -> list[_Phrase]:
        """The phrases whose words are all among ``words`` (the others cannot be there)."""
        sorted_words: list[str] | None = None
        out = []
        for entry in self._entries:
            if not entry.keys.issubset(words):
                continue
            if entry.prefix:
                if sorted_words is None:
                    sorted_words = sorted(words)
                i = bisect.bisect_left(sorted_words, entry.prefix)
                if i == len(sorted_words) or not sorted_words[i].startswith(entry.prefix):
                    continue
            out.append(entry)
        return out

    def spans(self, text: str, words: Collection[str] | None = None) -> list[tuple[int, int]]:
        """Where the phrases are in ``text`` (start, end), in no particular order."""
        if words is None:
            words = word_set(text)
        return [m.span() for e in self._candidates(words) for m in e.regex.finditer(text)]

    def search(self, text: str, words: Collection[str] | None = None) -> list[str]:
        """The phrases in ``text``, longest first.

        ``words`` may give the words of ``text`` (or of any text it was cut from) when the
        caller has them already. A phrase found only inside a longer phrase that was found
        ("confidential" inside "private and confidential") is not reported again.
        """
        if not self._entries:
            return []
        if words is None:
            words = word_set(text)
        found: list[str] = []
        taken = _Cover()  # where the phrases found so far are
        for entry in self._candidates(words):
            spans = [m.span() for m in entry.regex.finditer(text)]
            if not spans:
                continue
            if any(not taken.covers(s) for s in spans):
                found.append(entry.text)
            taken.add(spans)
        return found


class _Cover:
    """Spans of text, asked whether one of them holds a given span."""

    def __init__(self) -> None:
        self._spans: list[tuple[int, int]] = []
        self._starts: list[int] = []
        self._reach: list[int] = []  # the furthest end among spans starting at or before

    def add(self, spans: list[tuple[int, int]]) -> None:
        self._spans = sorted(self._spans + spans)
        self._starts = [a for a, _ in self._spans]
        reach, furthest = [], -1
        for _, b in self._spans:
            furthest = max(furthest, b)
            reach.append(furthest)
        self._reach = reach

    def covers(self, span: tuple[int, int]) -> bool:
        i = bisect.bisect_right(self._starts, span[0]) - 1
        return i >= 0 and self._reach[i] >= span[1]
