"""Whether a domain imitates one the council knows: the skeleton a reader sees (homoglyphs
folded, hyphens dropped) and small edits of the registered name. Pure functions; the junk
signal that uses them is :func:`gateway.rules.junk.lookalike_signal`."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from gateway.authcheck import org_domain
from gateway.authcheck.dmarc import public_suffix

__all__ = ["lookalike", "skeleton"]


_CONFUSABLES = str.maketrans({
    "0": "o", "1": "l", "i": "l", "|": "l", "3": "e", "5": "s", "7": "t", "8": "b", "@": "a",
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "l", "ј": "j",
    "ѕ": "s", "ԁ": "d", "ɡ": "g", "ν": "v", "ο": "o", "α": "a", "ı": "l", "ӏ": "l", "-": None,
    "_": None,
})


def skeleton(label: str) -> str:
    """What a name looks like to a reader: homoglyphs folded, hyphens dropped (UTS 39 in small)."""
    try:
        if label.startswith("xn--") or ".xn--" in label:
            label = label.encode("ascii").decode("idna")
    except UnicodeError:
        pass
    text = unicodedata.normalize("NFKC", label).casefold()
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = text.translate(_CONFUSABLES)
    return text.replace("rn", "m").replace("vv", "w").replace("cl", "d")


def _edit_distance(a: str, b: str) -> int:
    """Damerau-Levenshtein distance (adjacent swaps count one)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def _label(domain: str) -> str:
    """The registered name without its public suffix: ``stanion-pc.gov.uk`` -> ``stanion-pc``."""
    org = org_domain(domain)
    suffix = public_suffix(org)
    return org[: -len(suffix) - 1] if suffix and org.endswith("." + suffix) else org.split(".")[0]


def lookalike(domain: str, known: Iterable[str], free_mail: frozenset[str]) -> str | None:
    """The known domain that ``domain`` imitates, or None."""
    domain = domain.lower().rstrip(".")
    if not domain or "." not in domain:
        return None
    org = org_domain(domain)
    label = _label(domain)
    for k in sorted(known):
        korg = org_domain(k)
        if korg == org:
            return None  # the same organisation (or a subdomain of it)
    for k in sorted(known):
        korg, klabel = org_domain(k), _label(k)
        if skeleton(label) == skeleton(klabel) and len(klabel) >= 3:
            return k
        if k in free_mail or len(klabel) < 5:
            continue
        if _edit_distance(label, klabel) <= (1 if len(klabel) < 10 else 2):
            return k
        if klabel in label.split("-") or label.startswith(klabel + "-"):
            return k
    return None
