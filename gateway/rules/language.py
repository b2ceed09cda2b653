"""Insulting, threatening, obscene or discriminating words (Kirkham rule 12; Stanion
"Unacceptable Use"), from a word list: one entry a line, ``#`` comments, phrases and a trailing
``*`` as :mod:`gateway.rules.phrases` explains. The built-in list is
``gateway/data/offensive-words.txt``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from importlib.resources import files
from pathlib import Path

from gateway.rules.phrases import PhraseSet

__all__ = ["LanguageRules", "default_words", "parse_word_list", "read_word_list"]


def parse_word_list(text: str) -> list[str]:
    """Entries of a word list file: blank lines and ``#`` comments left out."""
    out = []
    for line in text.splitlines():
        entry = " ".join(line.split("#", 1)[0].split())
        if entry:
            out.append(entry)
    return out


def default_words() -> list[str]:
    return parse_word_list(
        files("gateway").joinpath("data/offensive-words.txt").read_text(encoding="utf-8"))


def read_word_list(path: Path) -> list[str]:
    return parse_word_list(path.read_text(encoding="utf-8"))


class LanguageRules:
    def __init__(self, words: Iterable[str], allowed: Iterable[str] = ()):
        allow = {" ".join(a.lower().split()) for a in allowed}
        self.phrases = PhraseSet(w for w in words if " ".join(w.lower().split()) not in allow)

    def find(self, text: str, words: Collection[str] | None = None) -> list[str]:
        """The list entries in ``text``, each once."""
        return self.phrases.search(text, words)
