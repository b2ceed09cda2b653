"""Confidential markers in a message's text, and whether it carries the label.

Policy: Stanion Parish Council, "Security" (confidential e-mail only when nothing else will do,
only to those who need to know, always marked "Restricted Distribution Private and
Confidential") and "Email" (confidential information is not mailed outside the council);
Kirkham Town Council rule 13 (highly sensitive information is not sent by e-mail).

Three kinds of marker:

* phrases ("personal data"), found as whole words in any case (:mod:`gateway.rules.phrases`),
  except in other people's confidentiality notices (:mod:`gateway.rules.boilerplate`);
* named regular expressions from the configuration;
* detectors for personal identifiers (:mod:`gateway.rules.identifiers`) and for business
  taken in private (:mod:`gateway.rules.exempt_business`).

The label's own words ("... Private and Confidential") are taken out of the Subject and the top
of the body before the phrases are looked for, so a labelled message with no other marker has
none. A label-like line lower down, or inside an attachment, still counts as a marker.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gateway.mime.text import Extraction, TextPiece, Unreadable
from gateway.rules.boilerplate import DEFAULT_CUES, Boilerplate
from gateway.rules.exempt_business import count_part_ii
from gateway.rules.identifiers import count_bank_details, count_ni_numbers
from gateway.rules.label import Label
from gateway.rules.phrases import PhraseSet
from gateway.rules.wording import Hit

__all__ = ["DETECTORS", "MarkerResult", "MarkerRules"]

# name -> (counter, what one is called in a finding)
DETECTORS: dict[str, tuple[Callable[[str, int], int], str]] = {
    "ni_number": (count_ni_numbers, "a National Insurance number"),
    "bank_details": (count_bank_details, "a bank sort code and account number"),
    "part_ii": (count_part_ii, 'a mention of "Part II" (private) business'),
}


@dataclass(frozen=True)
class MarkerResult:
    hits: tuple[Hit, ...]
    labelled: bool
    unreadable: tuple[Unreadable, ...]


class MarkerRules:
    def __init__(self, *, markers: Iterable[str], patterns: Iterable[tuple[str, str]],
                 detectors: Iterable[str], label: str,
                 boilerplate: Iterable[str] = DEFAULT_CUES):
        self.phrases = PhraseSet(markers)
        self.patterns = tuple((name, re.compile(rx, re.IGNORECASE)) for name, rx in patterns)
        self.detectors = tuple(DETECTORS[d] for d in detectors)
        self.label = Label(label)
        self.boilerplate = Boilerplate(tuple(boilerplate))

    def labelled(self, extraction: Extraction) -> bool:
        subject = " ".join(p.text for p in extraction.of_kind("subject"))
        return self.label.present(subject, (p.text for p in extraction.of_kind("body")))

    def piece_hits(self, piece: TextPiece) -> list[Hit]:
        text = piece.text
        if piece.kind == "subject":
            text = self.label.remove(text)
        elif piece.kind == "body":
            text = self.label.remove_top(text)
        prose = text if piece.kind == "name" else self.boilerplate.strip(text, piece.words)
        hits = [Hit(f'the phrase "{p}"', piece.place)
                for p in self.phrases.search(prose, piece.words)]
        hits += [Hit(f"text matching the pattern {name!r}", piece.place)
                 for name, regex in self.patterns if regex.search(text)]
        hits += [Hit(what, piece.place) for count, what in self.detectors if count(text, 1)]
        return hits

    def examine(self, extraction: Extraction) -> MarkerResult:
        hits = [h for piece in extraction.pieces for h in self.piece_hits(piece)]
        return MarkerResult(tuple(hits), self.labelled(extraction), extraction.unreadable)
