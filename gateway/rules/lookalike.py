"""Whether a domain imitates one the council knows: the skeleton a reader sees (Unicode UTS 39
confusables folded, hyphens dropped), small edits of the registered name, another ending on the
same name, or the known domain worn as the start of another. Pure functions; the junk signal that
uses them is :func:`gateway.rules.junk.lookalike_signal`.

What is *not* a look-alike, because a reader would be right to trust it:

* a domain of the same organisation (``mail.nalc.gov.uk`` beside ``nalc.gov.uk``);
* the same name under another ending when either is a well-known mail provider
  (``hotmail.com`` and ``hotmail.co.uk``) or both sit in registries that only admit public bodies
  (``lancashire.gov.uk`` and ``lancashire.police.uk``);
* a domain in such a registry that has shown it sent the message (``vetted``): a neighbouring
  council's name may well resemble this council's, and nobody else can register it.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections.abc import Iterable
from importlib import resources

import idna

from gateway.authcheck import org_domain
from gateway.authcheck.dmarc import public_suffix

__all__ = ["RESTRICTED_REGISTRIES", "in_restricted_registry", "lookalike", "skeleton"]

# Registries whose names only public bodies can hold.
RESTRICTED_REGISTRIES = ("gov.uk", "police.uk", "nhs.uk", "sch.uk", "ac.uk", "parliament.uk",
                         "mod.uk")


def in_restricted_registry(domain: str) -> bool:
    domain = domain.lower().rstrip(".")
    return any(domain.endswith("." + r) for r in RESTRICTED_REGISTRIES)


def _lower_ascii(s: str) -> bool:
    return s.isascii() and s.isalnum() and s == s.lower()


@functools.cache
def _confusables() -> tuple[dict[str, str], tuple[tuple[str, str], ...]]:
    """Each character's stand-in (one per UTS 39 class of look-alikes, an ASCII letter where
    the class has one) and the ASCII sequences that read as one letter (``rn`` as ``m``)."""
    data = json.loads(resources.files("confusable_homoglyphs").joinpath("confusables.json")
                      .read_text(encoding="utf-8"))
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for source, entries in data.items():
        for entry in entries:
            parent[find(source)] = find(entry["c"].strip("\u200e"))
    classes: dict[str, list[str]] = {}
    for member in list(parent):
        classes.setdefault(find(member), []).append(member)

    def rank(m: str) -> tuple[int, int, str]:
        folded = m.casefold()
        if len(m) == 1 and _lower_ascii(m):
            return (0 if m.isalpha() else 2, 0, m)
        if len(folded) == 1 and _lower_ascii(folded):
            return (1 if folded.isalpha() else 3, 0, folded)
        return (4, len(m), m)

    single: dict[str, str] = {}
    sequences: list[tuple[str, str]] = []
    for members in classes.values():
        best = min(rank(m) for m in members)
        if best[0] > 3:
            continue  # no ASCII letter or digit reads like these
        stand_in = best[2]
        for m in members:
            if len(m) == 1:
                single[m] = stand_in
            elif _lower_ascii(m) and m != stand_in:
                sequences.append((m, stand_in))
    return single, tuple(sorted(sequences, key=lambda p: -len(p[0])))


def _unicode(label: str) -> str:
    if "xn--" not in label:
        return label
    try:
        return idna.decode(label)
    except idna.IDNAError:
        try:
            return label.encode("ascii").decode("idna")
        except UnicodeError:
            return label


@functools.lru_cache(maxsize=4096)
def skeleton(label: str) -> str:
    """What a name looks like to a reader: look-alike characters folded to one stand-in,
    accents and hyphens dropped."""
    single, sequences = _confusables()
    text = "".join(single.get(c, c) for c in unicodedata.normalize("NFKC", _unicode(label)))
    text = unicodedata.normalize("NFKD", text.casefold())  # capital I reads as l, not i
    text = "".join(single.get(c, c) for c in text if not unicodedata.combining(c))
    for seq, stand_in in sequences:
        text = text.replace(seq, stand_in)
    return text.replace("-", "").replace("_", "")


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


@functools.lru_cache(maxsize=4096)
def _split(domain: str) -> tuple[str, str]:
    """The registered name and its public suffix: ``mail.stanion-pc.gov.uk`` ->
    (``stanion-pc``, ``gov.uk``)."""
    org = org_domain(domain)
    suffix = public_suffix(org)
    if suffix and org.endswith("." + suffix):
        return org[: -len(suffix) - 1], suffix
    name, _, rest = org.partition(".")
    return name, rest


# How UK councils name their domains: stanion-pc, kirkhamtowncouncil, corby-council.
_COUNCIL_NAME = re.compile(r"^(?:the-?)?(?P<core>.{3,}?)-?(?:(?:parish|town|city|community|"
                           r"district|county|borough)-?council|council|pc|tc)$")


def _core(name: str) -> str | None:
    m = _COUNCIL_NAME.match(name)
    return m.group("core") if m else None


def _resembles(domain: str, name: str, suffix: str, known: str,
               free_mail: frozenset[str]) -> bool:
    kname, ksuffix = _split(known)
    if len(kname) < 3:
        return False
    if skeleton(org_domain(domain).replace(".", "")) == skeleton(known.replace(".", "")):
        return True  # a dot made a hyphen: nalc-gov.uk
    core, kcore = _core(name), _core(kname)
    if core and kcore and skeleton(core) == skeleton(kcore):
        return True  # the same council named another way: stanion-parish-council
    if skeleton(name) == skeleton(kname):
        if name != kname or suffix == ksuffix:
            return True  # looks the same (or differs only by hyphens)
        # The same name under another ending.
        if known in free_mail or org_domain(domain) in free_mail:
            return False
        return not (in_restricted_registry(domain) and in_restricted_registry(known))
    if known in free_mail or len(kname) < 5:
        return False
    seen, kseen = skeleton(name), skeleton(kname)
    if _edit_distance(seen, kseen) <= (1 if len(kseen) < 10 else 2):
        return True
    return name.startswith(kname + "-") or name.endswith("-" + kname)


def lookalike(domain: str, known: Iterable[str], free_mail: frozenset[str], *,
              vetted: bool = False) -> str | None:
    """The known domain that ``domain`` imitates, or None. ``vetted``: ``domain`` has shown
    that it sent the message (it is then trusted when it sits in a restricted registry)."""
    domain = domain.lower().rstrip(".")
    if not domain or "." not in domain or (vetted and in_restricted_registry(domain)):
        return None
    org = org_domain(domain)
    known_orgs = sorted({org_domain(k.lower().rstrip(".")) for k in known if k})
    if org in known_orgs:
        return None
    name, suffix = _split(domain)
    for k in known_orgs:
        if domain.startswith(k + ".") or f".{k}." in domain:
            return k  # worn as the start of another domain: stanion-pc.gov.uk.example.com
        if _resembles(domain, name, suffix, k, free_mail):
            return k
    return None
