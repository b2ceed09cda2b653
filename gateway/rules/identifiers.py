"""Personal identifiers written in text: UK National Insurance numbers and bank details.

Each finder returns how many it found, never the numbers themselves, so that findings, headers
and replies do not spread what they warn about.

National Insurance numbers follow HMRC's format rules (NIM39110): two prefix letters, six digits,
a suffix letter A-D, spaces allowed in the usual places; the first letter is not D, F, I, Q, U or
V, the second not D, F, I, O, Q, U or V, and the prefixes BG, GB, KN, NK, NT, TN and ZZ are never
issued. So HMRC's own example "QQ 12 34 56 C" is not counted.

Bank details are a sort code (12-34-56, 12 34 56 or 123456) and an eight-digit account number
within a short distance of each other, with words such as "sort code", "account" or "a/c" near
them. The words are required because a date ("12-03-24") next to an invoice number looks the
same as a sort code next to an account number.
"""

from __future__ import annotations

import bisect
import re

__all__ = ["count_ni_numbers", "count_bank_details"]

_NI = re.compile(
    r"(?<![A-Za-z0-9])"
    r"([A-CEGHJ-PR-TW-Z])([A-CEGHJ-NPR-TW-Z])"
    r"[ \t]?(\d{2})[ \t]?(\d{2})[ \t]?(\d{2})[ \t]?([A-D])"
    r"(?![A-Za-z0-9])",
    re.IGNORECASE,
)
_NI_NEVER = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})
# Nothing to find without six digits close together: a fast test before the full search.
_SIX_DIGITS = re.compile(r"\d\d[ \t-]?\d\d[ \t-]?\d\d")


def count_ni_numbers(text: str, stop_at: int = 0) -> int:
    """How many valid-looking National Insurance numbers ``text`` holds (up to ``stop_at``)."""
    if not _SIX_DIGITS.search(text):
        return 0
    count = 0
    for m in _NI.finditer(text):
        if (m.group(1) + m.group(2)).upper() not in _NI_NEVER:
            count += 1
            if count == stop_at:
                break
    return count


_SORT_CODE = re.compile(r"(?<![\d-])\d{2}([- ]?)\d{2}\1\d{2}(?![\d-])")
_ACCOUNT = re.compile(r"(?<![\d-])\d{8}(?![\d-])")
_BANK_WORDS = re.compile(
    r"sort[\s-]*code|\baccount\b|\bacc(?:t|ount)?\.?\s*(?:no|number)\b|\ba/c\b|\bbank\b"
    r"|\biban\b",
    re.IGNORECASE,
)
_NEAR = 60  # characters between a sort code and its account number
_CONTEXT = 60  # characters around the pair in which the bank words must appear


def count_bank_details(text: str, stop_at: int = 0) -> int:
    """How many sort code + account number pairs ``text`` holds (up to ``stop_at``)."""
    if not _SIX_DIGITS.search(text):
        return 0
    accounts = [m.span() for m in _ACCOUNT.finditer(text)]
    if not accounts:
        return 0
    starts = [a for a, _ in accounts]
    pairs = 0
    used: set[tuple[int, int]] = set()
    for sc in _SORT_CODE.finditer(text):
        a, b = sc.span()
        # The nearest account number on either side, within _NEAR characters.
        for j in range(bisect.bisect_left(starts, a - _NEAR - 8), len(accounts)):
            acc = accounts[j]
            if acc[0] > b + _NEAR:
                break
            if acc in used or _overlaps(acc, (a, b)):
                continue
            gap = acc[0] - b if acc[0] >= b else a - acc[1]
            if gap > _NEAR:
                continue
            lo, hi = min(a, acc[0]), max(b, acc[1])
            if _BANK_WORDS.search(text, max(0, lo - _CONTEXT), hi + _CONTEXT):
                used.add(acc)
                pairs += 1
                break
        if pairs == stop_at:
            break
    return pairs


def _overlaps(x: tuple[int, int], y: tuple[int, int]) -> bool:
    return x[0] < y[1] and y[0] < x[1]
