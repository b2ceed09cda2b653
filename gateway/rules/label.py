"""The "Restricted Distribution Private and Confidential" label (Stanion, "Security").

A message carries the label when it is in the Subject or at the top of the body (in its first
three lines that are not blank). Case, white space and punctuation between the words are
forgiven: "RESTRICTED DISTRIBUTION - Private and Confidential" and the words broken over two
lines both count.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["Label", "TOP_LINES"]

TOP_LINES = 3


class Label:
    def __init__(self, text: str):
        words = re.findall(r"\w+", text)
        if not words:
            raise ValueError(f'the label "{text}" has no words')
        self.text = text
        self._regex = re.compile(
            r"(?<!\w)" + r"[\W_]+".join(re.escape(w) for w in words) + r"(?!\w)", re.IGNORECASE)

    def in_text(self, text: str) -> bool:
        return self._regex.search(text) is not None

    def at_top(self, body: str) -> bool:
        """Whether the label is in the first lines of ``body`` that are not blank."""
        lines: list[str] = []
        for line in body.splitlines():
            if line.strip():
                lines.append(line)
                if len(lines) == TOP_LINES:
                    break
        return self.in_text(" ".join(lines))

    def present(self, subject: str, bodies: Iterable[str]) -> bool:
        """In the Subject, or at the top of one of the body parts (plain text or HTML)."""
        return self.in_text(subject) or any(self.at_top(b) for b in bodies)

    def remove(self, text: str) -> str:
        """``text`` without the label, so that its words are not taken for markers."""
        return self._regex.sub(" ", text)

    def remove_top(self, body: str) -> str:
        """``body`` without the label where it counts as the label: in the top lines."""
        end, seen = 0, 0
        for line in body.splitlines(keepends=True):
            end += len(line)
            if line.strip():
                seen += 1
                if seen == TOP_LINES:
                    break
        return self.remove(body[:end]) + body[end:]
