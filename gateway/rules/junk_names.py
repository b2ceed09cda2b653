"""Junk signals from who a message says it is from: a display name that borrows a council
title or a known person's name, a domain that looks like the council's or a correspondent's,
replies diverted to free mail. See :mod:`gateway.rules.junk` for the others."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import getaddresses, parseaddr

from gateway.people.senders import SenderBook
from gateway.rules.junk import LOOKALIKE_POINTS, STRONG, Signal, _domain, _visible
from gateway.rules.lookalike import (
    Resemblance,
    in_restricted_registry,
    normalise_domain,
    resemblance,
)
from gateway.verdicts import Severity

__all__ = ["Likeness", "display_name_signal", "likenesses", "lookalike_signal",
           "lookalike_verdict", "reply_to_signal"]


def _odd_letters(domain: str) -> str:
    """For a domain written with letters that are not the usual ones, a sentence saying which
    (a Cyrillic "і" looks just like "i" on the clerk's screen); otherwise nothing. Each is
    named by its code too, as some show as nothing at all; invisible controls and spaces are
    already shown by their code in the domain itself."""
    notes = []
    for ch in dict.fromkeys(domain):
        category = unicodedata.category(ch)
        if ch.isascii() or category[0] in "CZ":
            continue
        code = f"U+{ord(ch):04X}"
        name = unicodedata.name(ch, "")
        if category[0] == "M":
            notes.append(f"{code} is a mark added to the letter before it")
        else:
            if name.startswith(("FULLWIDTH", "HALFWIDTH", "IDEOGRAPHIC")):
                kind = "a wide form used in East Asian writing"
            elif name.startswith("LATIN"):
                kind = "a Latin letter not used in English"
            elif name.startswith("CJK"):
                kind = "a Chinese, Japanese or Korean character"
            elif name:
                kind = f"a {name.split()[0].title()} character"
            else:
                kind = "an unusual character"
            notes.append(f'"{ch}" ({code}) is {kind}')
        if len(notes) == 3:
            break
    return f" Its {', '.join(notes)}." if notes else ""



_EMAILISH = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def display_name_signal(from_header: str, book: SenderBook, protected: Iterable[str],
                        free_mail: frozenset[str], *,
                        allowed: frozenset[str] = frozenset()) -> Signal | None:
    """A display name that borrows a council title, a known person's name or another address.
    ``allowed``: titles this sender may use (a public body's clerk may sign as "Clerk")."""
    name, address = parseaddr(from_header)
    address = address.lower()
    name = " ".join(name.split())
    if not name or not address:
        return None
    domain = _domain(address)
    if domain in book.council_domains:
        return None
    if domain in free_mail:
        where = f"a free-mail one ({_visible(address)})"
    else:
        where = f"{_visible(address)}, not a council address"
    for shown in _EMAILISH.findall(name):
        if shown.lower() != address:
            return Signal("display-name-impersonation", STRONG,
                          f'Looks like phishing: the name shows the address "{_visible(shown)}" '
                          f"but the mail comes from {_visible(address)}.", Severity.HIGH)
    folded = name.casefold()
    for title in protected:
        if title.casefold() in allowed:
            continue
        if re.search(rf"(?<!\w){re.escape(title.casefold())}(?!\w)", folded):
            return Signal("display-name-impersonation", STRONG,
                          f'Looks like phishing: the name says "{_visible(name)}" but the '
                          f"address is {where}.", Severity.HIGH)
    for known_name, known_addr in book.names:
        if known_name.casefold() == folded and known_addr != address:
            return Signal("display-name-impersonation", STRONG,
                          f'Looks like phishing: "{_visible(name)}" is the name of a known sender '
                          f"({known_addr}), but this mail comes from {_visible(address)}.",
                          Severity.HIGH)
    return None


@dataclass(frozen=True)
class Likeness:
    """How one of a message's domains resembles the council's own (``own``) or a domain the
    council writes to (``other``), before anyone knows whether it showed that it sent the
    message: worked out from the message alone, so ahead of the DNS checks."""

    role: str  # "sender's", "envelope sender's", "Reply-To"
    domain: str
    normalised: str
    restricted: bool  # in a restricted registry: trusted once it shows it sent the message
    own: Resemblance | None
    other: Resemblance | None
    odd_letters: str


def likenesses(domains: Iterable[tuple[str, str]], known: Iterable[str],
               free_mail: frozenset[str], council: Iterable[str] = ()) -> tuple[Likeness, ...]:
    """``domains`` are (role, domain) pairs, e.g. ("sender's", "stanion-pc.gov.co")."""
    own = frozenset(council)
    others = frozenset(known) - own
    out = []
    for role, domain in domains:
        normalised = normalise_domain(domain)
        out.append(Likeness(role, domain, normalised, in_restricted_registry(normalised),
                            resemblance(domain, own, free_mail),
                            resemblance(domain, others, free_mail), _odd_letters(domain)))
    return tuple(out)


def lookalike_verdict(likes: Iterable[Likeness], vetted: frozenset[str] = frozenset()
                      ) -> Signal | None:
    """The look-alike signal, once ``vetted`` (the domains that showed they sent the message)
    is known.

    A look-alike of the council's own domain is strong, unless it is only a letter or two away
    from a sender that showed it is who it says (a neighbour with a similar name, on a domain
    anyone can register). A look-alike of a correspondent's is weak on its own: a different
    organisation may have a similar name, or the same one under another ending."""
    weak: Signal | None = None
    for like in likes:
        shown = like.normalised in vetted
        trusted = shown and like.restricted
        r = None if trusted else like.own
        if r and not (r.how == "an edit" and shown):
            return Signal("lookalike-domain", STRONG,
                          f"Looks like phishing: the {like.role} domain {_visible(like.domain)} "
                          f"looks like the council's own {r.target} but is not it."
                          f"{like.odd_letters}", Severity.HIGH)
        r = r or (None if trusted else like.other)
        if weak is None and r:
            weak = Signal("lookalike-domain", LOOKALIKE_POINTS,
                          f"The {like.role} domain {_visible(like.domain)} looks like "
                          f"{r.target}, a domain the council writes to, but is not it."
                          f"{like.odd_letters}", Severity.MEDIUM)
    return weak


def lookalike_signal(domains: Iterable[tuple[str, str]], known: Iterable[str],
                     free_mail: frozenset[str], council: Iterable[str] = (),
                     vetted: frozenset[str] = frozenset()) -> Signal | None:
    """``domains`` are (role, domain) pairs, e.g. ("sender's", "stanion-pc.gov.co"); ``vetted``
    the domains that showed they sent the message (see :func:`lookalike_verdict`)."""
    return lookalike_verdict(likenesses(domains, known, free_mail, council), vetted)


def reply_to_signal(from_addr: str, reply_to_header: str,
                    free_mail: frozenset[str]) -> Signal | None:
    """Replies diverted to a free-mail address other than the sender's own."""
    for _, address in getaddresses([reply_to_header]):
        address = address.lower()
        if address and address != from_addr and _domain(address) in free_mail:
            return Signal("reply-to-free-mail", STRONG,
                          f"Replies would go to a free-mail address ({_visible(address)}), not to "
                          f"the sender ({_visible(from_addr) or 'unknown'}).")
    return None
