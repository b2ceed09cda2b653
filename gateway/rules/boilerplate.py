"""Telling other people's confidentiality notices from confidential content.

Mail footers often say "CONFIDENTIALITY NOTICE: this e-mail is confidential and intended solely
for the addressee ...". Quoted in a reply, such a footer must not make the reply look
confidential. The rule: a paragraph (text between blank lines) is boilerplate when it contains
one of the cue phrases (``intended recipient``, ``received this email in error``, ...) and is no
longer than a footer usually is; a short heading paragraph with a cue ("Confidentiality
notice:") makes the paragraph after it boilerplate too. Marker *phrases* in boilerplate are not
counted. Identifiers are: a National Insurance number or a sort code in a footer is still a
National Insurance number or a sort code, so patterns and detectors see the whole text.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Collection

from gateway.rules.phrases import PhraseSet

__all__ = ["DEFAULT_CUES", "Boilerplate", "MAX_PARAGRAPH", "MAX_HEADING"]

DEFAULT_CUES: tuple[str, ...] = (
    "confidentiality notice",
    "confidentiality statement",
    "confidentiality note",
    "disclaimer",
    "intended recipient",
    "intended recipients",
    "intended solely for",
    "intended only for",
    "intended exclusively for",
    "received this email in error",
    "received this e-mail in error",
    "received this message in error",
    "received this communication in error",
    "addressee only",
)

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
MAX_PARAGRAPH = 1500  # characters; a longer paragraph is somebody's own writing
MAX_HEADING = 80


class Boilerplate:
    def __init__(self, cues: Collection[str] = DEFAULT_CUES):
        self.cues = PhraseSet(cues)

    def strip(self, text: str, words: Collection[str] | None = None) -> str:
        """``text`` without its boilerplate paragraphs (``words``: the words of ``text``)."""
        cue_starts = sorted(a for a, _ in self.cues.spans(text, words))
        if not cue_starts:
            return text
        kept: list[str] = []
        after_heading = False
        start = 0
        for end, next_start in [*((m.start(), m.end()) for m in
                                  _PARAGRAPH_BREAK.finditer(text)), (len(text), len(text))]:
            paragraph = text[start:end]
            i = bisect.bisect_left(cue_starts, start)
            has_cue = i < len(cue_starts) and cue_starts[i] < end
            short = len(paragraph) <= MAX_PARAGRAPH
            if short and (has_cue or after_heading):
                after_heading = has_cue and len(paragraph.strip()) <= MAX_HEADING
            else:
                after_heading = False
                kept.append(paragraph)
            start = next_start
        return "\n\n".join(kept)
