"""Whether a domain imitates one the council knows: the skeleton a reader sees (Unicode UTS 39
confusables folded, hyphens dropped), small edits of the registered name, the same council named
another way, another ending on the same name, or the known domain or name worn inside another.
Pure functions; the junk signal that uses them is :func:`gateway.rules.junk_names.lookalike_signal`.

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
from dataclasses import dataclass
from importlib import resources

import idna
from rapidfuzz.distance import OSA

from gateway.authcheck import org_domain
from gateway.authcheck.dmarc import public_suffix

__all__ = ["RESTRICTED_REGISTRIES", "Resemblance", "in_public_body_registry",
           "in_restricted_registry", "lookalike", "normalise_domain", "resemblance", "skeleton"]

# Registries whose names only public bodies can hold.
RESTRICTED_REGISTRIES = ("gov.uk", "police.uk", "nhs.uk", "sch.uk", "ac.uk", "parliament.uk",
                         "mod.uk")


def in_restricted_registry(domain: str) -> bool:
    domain = domain.lower().rstrip(".")
    return any(domain.endswith("." + r) for r in RESTRICTED_REGISTRIES)


def in_public_body_registry(domain: str) -> bool:
    """A restricted registry whose addresses are given only to a body's officers and staff
    (ac.uk and sch.uk also give them to students and pupils)."""
    domain = domain.lower().rstrip(".")
    return in_restricted_registry(domain) and not domain.endswith((".ac.uk", ".sch.uk"))


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


_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


@functools.lru_cache(maxsize=65536)
def normalise_domain(domain: str) -> str:
    """A domain as a mail program shows it and DNS reads it: compatibility forms folded, the
    ideographic and full-width dots made dots, invisible characters dropped, lower case, IDNA
    A-labels where the name is valid. An invalid name comes back folded but otherwise as given."""
    text = unicodedata.normalize("NFKC", domain).translate(_DOTS)
    text = "".join(c for c in text if unicodedata.category(c) != "Cf").lower().rstrip(".")
    try:
        return idna.encode(text, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return text


def _valid(domain: str) -> bool:
    labels = domain.split(".")
    return len(domain) <= 253 and len(labels) > 1 and all(0 < len(lb) <= 63 for lb in labels)


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


@functools.lru_cache(maxsize=65536)
def skeleton(label: str) -> str:
    """What a name looks like to a reader: look-alike characters folded to one stand-in,
    accents and hyphens dropped."""
    single, sequences = _confusables()
    text = "".join(single.get(c, c) for c in unicodedata.normalize("NFKC", _unicode(label)))
    text = unicodedata.normalize("NFKD", text.casefold())  # capital I reads as l, not i
    text = "".join(single.get(c, c) for c in text if not unicodedata.combining(c))
    for seq, stand_in in sequences:
        text = text.replace(seq, stand_in)
    # Beyond UTS 39: what readers mistake in the sans-serif fonts mail programs use.
    return text.translate(_READ_ALIKE).replace("vv", "w").replace("cl", "d")


_READ_ALIKE = str.maketrans({"i": "l", "-": None, "_": None})


def _edit_distance(a: str, b: str, limit: int) -> int:
    """Edits between two names, adjacent swaps counting one (optimal string alignment), or
    ``limit + 1`` as soon as it is more than ``limit``."""
    return int(OSA.distance(a, b, score_cutoff=limit))


def _allowed_edits(seen: str) -> int:
    return 1 if len(seen) < 10 else 2


# How UK councils name their domains: stanion-pc, kirkhamtowncouncil, corby-council.
_COUNCIL_NAME = re.compile(r"^(?:the-?)?(?P<core>.{3,}?)-?(?:(?:parish|town|city|community|"
                           r"district|county|borough)-?council|council|parish|pc|tc)$")


def _core(name: str) -> str | None:
    m = _COUNCIL_NAME.match(name)
    return m.group("core") if m else None


@dataclass(frozen=True)
class _Name:
    """One domain's parts, skeletons made once."""

    domain: str  # normalised
    org: str  # its organisational domain
    name: str  # the registered name without the public suffix
    suffix: str
    seen: str  # skeleton of name
    flat: str  # skeleton of the whole domain, dots dropped
    host: str  # skeleton of the labels before the organisational domain
    core: str | None  # skeleton of the council name inside name, if it is one


@functools.lru_cache(maxsize=65536)
def _name(domain: str) -> _Name:
    org = org_domain(domain)
    suffix = public_suffix(org)
    if suffix and org.endswith("." + suffix):
        name = org[: -len(suffix) - 1]
    else:
        name, _, suffix = org.partition(".")
    host = domain[: -len(org) - 1] if domain.endswith("." + org) else ""
    core = _core(name)
    return _Name(domain, org, name, suffix, skeleton(name), _flat(domain), _flat(host),
                 skeleton(core) if core else None)


def _flat(domain: str) -> str:
    """The skeleton of every label (each decoded from IDNA on its own), dots dropped."""
    return "".join(skeleton(label) for label in domain.split("."))


@functools.lru_cache(maxsize=16)
def _known(known: frozenset[str]) -> tuple[_Name, ...]:
    """The known domains' organisations, once per version of the senders lists."""
    orgs = {org_domain(normalise_domain(k)) for k in known if k}
    return tuple(_name(o) for o in sorted(orgs) if _valid(o))


@dataclass(frozen=True)
class Resemblance:
    """``target`` is the known domain imitated; ``how`` is one of "looks the same", "inside",
    "another name for it", "another ending" or "an edit"."""

    target: str
    how: str


def _compare(d: _Name, k: _Name, free_mail: frozenset[str]) -> str | None:
    if len(k.seen) < 3:
        return None
    # Long enough that a chance prefix is implausible (unlike bt.com in btcomms.example).
    if len(k.flat) >= 10 and (d.flat.startswith(k.flat)
                              or _edit_distance(d.flat[:len(k.flat)], k.flat, 1) <= 1):
        return "inside"  # stanion-pc.gov.uk.docs.example, stanion-pc-gov-uk.example
    if (len(k.flat) >= 10 and k.flat in d.host) or (len(k.seen) >= 5 and k.seen in d.host):
        return "inside"  # stanion-pc.mail.example, stanionpc.onmicrosoft.com
    if d.seen == k.seen:
        if d.name != k.name or d.suffix == k.suffix:
            return "looks the same"
        if k.org in free_mail or d.org in free_mail:
            return None
        both_public = in_restricted_registry(d.org) and in_restricted_registry(k.org)
        return None if both_public else "another ending"
    if _flat(d.org) == k.flat:
        return "looks the same"  # a dot made a hyphen: nalc-gov.uk
    if d.core and k.core and d.core == k.core:
        return "another name for it"  # stanion-parish-council beside stanion-pc
    if k.org in free_mail or len(k.seen) < 5:
        return None
    if len(k.seen) >= 6 and k.seen in d.seen:
        return "another name for it"  # a word added: securestanion-pc, stanion-pc-payments
    if _edit_distance(d.seen, k.seen, _allowed_edits(k.seen)) <= _allowed_edits(k.seen):
        return "an edit"
    return None


def resemblance(domain: str, known: Iterable[str], free_mail: frozenset[str], *,
                vetted: bool = False) -> Resemblance | None:
    """How ``domain`` imitates a known domain, or None. ``vetted``: ``domain`` has shown that
    it sent the message (it is then trusted when it sits in a restricted registry)."""
    domain = normalise_domain(domain)
    if not _valid(domain) or (vetted and in_restricted_registry(domain)):
        return None
    names = _known(known if isinstance(known, frozenset) else frozenset(known))
    d = _name(domain)
    if any(k.org == d.org for k in names):
        return None  # the same organisation (or a subdomain of it)
    for k in names:
        how = _compare(d, k, free_mail)
        if how:
            return Resemblance(k.org, how)
    return None


def lookalike(domain: str, known: Iterable[str], free_mail: frozenset[str], *,
              vetted: bool = False) -> str | None:
    """The known domain that ``domain`` imitates, or None."""
    r = resemblance(domain, known, free_mail, vetted=vetted)
    return r.target if r else None
