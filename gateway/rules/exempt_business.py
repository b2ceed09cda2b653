""""Part II" business: the part of a council meeting held in private, whose papers are exempt
from publication (Public Bodies (Admission to Meetings) Act 1960, s.1(2); councils call it Part
II or Part 2 of the agenda).

Found when "Part II" (or "Part 2", "Part two") is followed by an agenda word ("Part II items",
"Part 2 - exempt business") or follows "in", "under", "to" or "for" ("taken in Part II"), and
is not "Part II of" something (an Act, a report): "Part II of the Localism Act" is not a finding.
"""

from __future__ import annotations

import re

__all__ = ["count_part_ii"]

# Starts with a letter so that ``re`` can skip through a long text quickly.
_PART = re.compile(r"p(?<!\wp)art\s+(?:ii|2|two)(?!\w)", re.IGNORECASE)
_AGENDA_AFTER = re.compile(
    r"\s*[-:\u2013]?\s*(?:items?|agenda|business|session|reports?|papers?|minutes|matters?|"
    r"exempt|confidential)(?!\w)", re.IGNORECASE)
_OF_AFTER = re.compile(r"\s+of(?!\w)", re.IGNORECASE)
_BEFORE = re.compile(r"(?<!\w)(?:in|under|to|for)\s+$", re.IGNORECASE)


def count_part_ii(text: str, stop_at: int = 0) -> int:
    """How many mentions of Part II business ``text`` holds (up to ``stop_at``)."""
    count = 0
    for m in _PART.finditer(text):
        if _OF_AFTER.match(text, m.end()):
            continue
        if _AGENDA_AFTER.match(text, m.end()) or _BEFORE.search(text[max(0, m.start() - 12):
                                                                      m.start()]):
            count += 1
            if count == stop_at:
                break
    return count
