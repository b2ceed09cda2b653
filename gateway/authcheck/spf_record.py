"""SPF records and macros (RFC 7208 sections 4.6, 5 and 7), pure: parsing a record whole,
checking domain-specs, and expanding macros. The evaluator is :mod:`gateway.authcheck.spf`."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import quote

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

__all__ = [
    "DOMAIN_LETTERS", "EXPLAIN_LETTERS", "QUALIFIERS", "MacroContext", "Mechanism",
    "SpfPermError", "SpfRecord", "check_domain_spec", "dns_name", "expand", "expand_tokens",
    "in_net", "parse_record", "reverse_name", "select_record", "macro_tokens", "uses_p",
    "valid_domain", "within",
]


class SpfPermError(Exception):
    """The published policy cannot be evaluated: ``permerror``."""


# ----------------------------------------------------------------------------- records

@dataclass(frozen=True)
class Mechanism:
    qualifier: str  # + - ~ ?
    kind: str  # all include a mx ptr ip4 ip6 exists
    domain_spec: str = ""  # "" means the current domain (a, mx, ptr)
    network: IPNetwork | None = None  # ip4 and ip6
    v4: int = 32  # prefix lengths for a and mx
    v6: int = 128


@dataclass(frozen=True)
class SpfRecord:
    mechanisms: tuple[Mechanism, ...]
    redirect: str = ""
    exp: str = ""


def select_record(texts: list[str]) -> str | None:
    """The one SPF record among a name's TXT strings, None when there is none (4.5)."""
    records = [t for t in texts if t[:6].lower() == "v=spf1" and t[6:7] in ("", " ")]
    if len(records) > 1:
        raise SpfPermError("more than one SPF record")
    return records[0] if records else None


_MODIFIER = re.compile(r"([A-Za-z][A-Za-z0-9_.\-]*)=(.*)", re.S)
_MECHANISM = re.compile(r"([+\-~?]?)([A-Za-z][A-Za-z0-9_.\-]*)(.*)", re.S)
_DUAL_CIDR = re.compile(r"(?::(.*?))?((?:/\d+)?(?://\d+)?)", re.S)
_CIDR = re.compile(r"/(\d+)(?://(\d+))?|//(\d+)|")
_IP4 = re.compile(r":((?:0|[1-9]\d{0,2})(?:\.(?:0|[1-9]\d{0,2})){3})(?:/(\d+))?")
_IP6 = re.compile(r":([0-9A-Fa-f:.]+)(?:/(\d+))?")
QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}

# Section 7.2: c, r and t only in explanation text; unknown modifiers take any ABNF letter.
DOMAIN_LETTERS = "slodiphv"
EXPLAIN_LETTERS = "slodiphvcrt"


def _prefix(digits: str, limit: int, term: str) -> int:
    # no leading zeros, like the address itself (RFC 7208 5.6 grammar)
    if (digits.startswith("0") and digits != "0") or int(digits) > limit:
        raise SpfPermError(f"bad prefix length in {term!r}")
    return int(digits)


def _dual_cidr(cidr: str, term: str) -> tuple[int, int]:
    m = _CIDR.fullmatch(cidr)
    if not m:
        raise SpfPermError(f"bad prefix length in {term!r}")
    v4 = m.group(1)
    v6 = m.group(2) or m.group(3)
    return (_prefix(v4, 32, term) if v4 else 32), (_prefix(v6, 128, term) if v6 else 128)


def _mechanism(qualifier: str, kind: str, rest: str, term: str) -> Mechanism:
    if kind == "all":
        if rest:
            raise SpfPermError(f"'all' takes no argument: {term!r}")
        return Mechanism(qualifier, kind)
    if kind in ("include", "exists"):
        if not rest.startswith(":") or not rest[1:]:
            raise SpfPermError(f"{kind} needs ':' and a domain: {term!r}")
        check_domain_spec(rest[1:])
        return Mechanism(qualifier, kind, rest[1:])
    if kind == "ptr":
        if rest and (not rest.startswith(":") or not rest[1:]):
            raise SpfPermError(f"bad ptr: {term!r}")
        if rest:
            check_domain_spec(rest[1:])
        return Mechanism(qualifier, kind, rest[1:])
    if kind in ("a", "mx"):
        m = _DUAL_CIDR.fullmatch(rest)
        if not m:
            raise SpfPermError(f"bad {kind}: {term!r}")
        spec, cidr = m.group(1), m.group(2)
        if spec is not None:
            if not spec:
                raise SpfPermError(f"empty domain after '{kind}:'")
            check_domain_spec(spec)
        v4, v6 = _dual_cidr(cidr, term)
        return Mechanism(qualifier, kind, spec or "", v4=v4, v6=v6)
    if kind in ("ip4", "ip6"):
        m = (_IP4 if kind == "ip4" else _IP6).fullmatch(rest)
        if not m:
            raise SpfPermError(f"bad {kind} address: {term!r}")
        limit = 32 if kind == "ip4" else 128
        try:
            address = ipaddress.ip_address(m.group(1))
        except ValueError:
            raise SpfPermError(f"bad {kind} address: {term!r}") from None
        if address.version != (4 if kind == "ip4" else 6):
            raise SpfPermError(f"bad {kind} address: {term!r}")
        length = _prefix(m.group(2), limit, term) if m.group(2) else limit
        return Mechanism(qualifier, kind,
                         network=ipaddress.ip_network(f"{address}/{length}", strict=False))
    raise SpfPermError(f"unknown mechanism {kind!r}")


def parse_record(text: str) -> SpfRecord:
    """Every term of an SPF record (which starts ``v=spf1``), or :class:`SpfPermError`."""
    if text[:6].lower() != "v=spf1" or text[6:7] not in ("", " "):
        raise SpfPermError("not an SPF record")
    if not all(" " <= c <= "~" for c in text):
        raise SpfPermError("the record is not printable 7-bit ASCII")
    mechanisms: list[Mechanism] = []
    modifiers: dict[str, str] = {}
    for term in text[6:].split(" "):
        if not term:
            continue
        modifier = _MODIFIER.fullmatch(term)
        if modifier:
            name, value = modifier.group(1).lower(), modifier.group(2)
            if name in ("redirect", "exp"):
                if name in modifiers:
                    raise SpfPermError(f"{name}= given twice")
                check_domain_spec(value)
                modifiers[name] = value
            else:
                macro_tokens(value, EXPLAIN_LETTERS, spaces=False)  # ignored, but must parse
            continue
        m = _MECHANISM.fullmatch(term)
        if not m:
            raise SpfPermError(f"bad term {term!r}")
        mechanisms.append(_mechanism(m.group(1) or "+", m.group(2).lower(), m.group(3), term))
    return SpfRecord(tuple(mechanisms), modifiers.get("redirect", ""), modifiers.get("exp", ""))


# ----------------------------------------------------------------------------- macros

@dataclass(frozen=True)
class _Macro:
    letter: str  # as written: upper case asks for URL escaping
    digits: int  # 0: keep every part
    reverse: bool
    delimiters: str


_MACRO_BODY = re.compile(r"\{([A-Za-z])(\d*)([rR]?)([.\-+,/_=]*)\}")
_LITERAL_ESCAPES = {"%": "%", "_": " ", "-": "%20"}


def _scan(text: str, letters: str, *, spaces: bool) -> tuple[list[str | _Macro], str]:
    """A macro-string as literal runs and macros, and the literal text after its last
    macro-expand (``%%``, ``%_`` and ``%-`` count as ones); :class:`SpfPermError` if it is
    not a macro-string."""
    out: list[str | _Macro] = []
    literal: list[str] = []
    tail_from = 0
    i = 0
    while i < len(text):
        c = text[i]
        if c == "%":
            nxt = text[i + 1:i + 2]
            if nxt in _LITERAL_ESCAPES:
                literal.append(_LITERAL_ESCAPES[nxt])
                i += 2
                tail_from = i
                continue
            m = _MACRO_BODY.match(text, i + 1)
            if not m or m.group(1).lower() not in letters:
                raise SpfPermError(f"bad macro in {text!r}")
            if m.group(2) and int(m.group(2)) == 0:
                raise SpfPermError(f"a macro may not keep zero parts: {text!r}")
            if literal:
                out.append("".join(literal))
                literal = []
            out.append(_Macro(m.group(1), int(m.group(2) or 0), bool(m.group(3)),
                              m.group(4) or "."))
            i = tail_from = m.end()
            continue
        if not ("!" <= c <= "~" or (spaces and c == " ")):
            raise SpfPermError(f"character {c!r} not allowed in {text!r}")
        literal.append(c)
        i += 1
    if literal:
        out.append("".join(literal))
    return out, text[tail_from:]


def macro_tokens(text: str, letters: str, *, spaces: bool) -> list[str | _Macro]:
    return _scan(text, letters, spaces=spaces)[0]


_TOPLABEL = re.compile(r"[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*|[A-Za-z0-9]+-[A-Za-z0-9\-]*[A-Za-z0-9]")


def check_domain_spec(spec: str) -> None:
    """A domain-spec ends in a macro or in '.' and a top label, with an optional dot (7.1)."""
    if not spec:
        raise SpfPermError("empty domain-spec")
    tail = _scan(spec, DOMAIN_LETTERS, spaces=False)[1]
    if not tail:
        return
    tail = tail[:-1] if tail.endswith(".") else tail
    _, dot, top = tail.rpartition(".")
    if not dot or not _TOPLABEL.fullmatch(top):
        raise SpfPermError(f"{spec!r} does not end in a valid top label")


@dataclass(frozen=True)
class MacroContext:
    """The values the macro letters stand for, apart from the current domain and ``p``."""
    ip: IPAddress
    sender: str  # local@domain, "postmaster" when the local part is empty
    helo: str
    receiver: str = "unknown"
    now: int = 0

    def value(self, letter: str, domain: str, p: str) -> str:
        ip = self.ip
        match letter:
            case "s":
                return self.sender
            case "l":
                return self.sender.rpartition("@")[0]
            case "o":
                return self.sender.rpartition("@")[2]
            case "d":
                return domain
            case "i":
                if ip.version == 4:
                    return str(ip)
                return ".".join(ip.exploded.replace(":", "").upper())
            case "p":
                return p
            case "v":
                return "in-addr" if ip.version == 4 else "ip6"
            case "h":
                return self.helo
            case "c":
                return str(ip)
            case "r":
                return self.receiver
            case "t":
                return str(self.now)
        raise SpfPermError(f"macro letter {letter!r}")  # tokens lets no other through


def uses_p(tokens: list[str | _Macro]) -> bool:
    return any(isinstance(t, _Macro) and t.letter.lower() == "p" for t in tokens)


def expand_tokens(tokens: list[str | _Macro], ctx: MacroContext, domain: str, p: str) -> str:
    out = []
    for t in tokens:
        if isinstance(t, str):
            out.append(t)
            continue
        value = ctx.value(t.letter.lower(), domain, p)
        parts = re.split("[" + re.escape(t.delimiters) + "]", value)
        if t.reverse:
            parts.reverse()
        if t.digits:
            parts = parts[-t.digits:]
        text = ".".join(parts)
        out.append(quote(text, safe="-._~") if t.letter.isupper() else text)
    return "".join(out)


def expand(text: str, ctx: MacroContext, domain: str, *, p: str = "unknown",
           letters: str = DOMAIN_LETTERS, spaces: bool = False) -> str:
    """Expand the macros of a domain-spec (or, with the explanation letters, of exp text)."""
    return expand_tokens(macro_tokens(text, letters, spaces=spaces), ctx, domain, p)


def dns_name(expanded: str) -> str | None:
    """What to look up for an expanded domain-spec: no final dot, at most 253 characters (the
    leftmost labels go, 7.3); None when DNS cannot carry it (an empty or over-long label)."""
    name = expanded[:-1] if expanded.endswith(".") else expanded
    while len(name) > 253 and "." in name:
        name = name.split(".", 1)[1]
    labels = name.split(".")
    if len(name) > 253 or not all(0 < len(lb) <= 63 for lb in labels):
        return None
    return name


def valid_domain(domain: str) -> bool:
    """A name check_host() can start from: several labels of 1..63 octets, no address literal."""
    name = domain[:-1] if domain.endswith(".") else domain
    labels = name.split(".")
    return (name.isascii() and not name.startswith("[") and len(name) <= 253
            and len(labels) >= 2 and all(0 < len(lb) <= 63 for lb in labels))


def reverse_name(ip: IPAddress) -> str:
    """Where the PTR records of ``ip`` live."""
    if ip.version == 4:
        return ".".join(reversed(str(ip).split("."))) + ".in-addr.arpa"
    return ".".join(reversed(ip.exploded.replace(":", ""))) + ".ip6.arpa"


def in_net(ip: IPAddress, address: str, v4: int, v6: int) -> bool:
    try:
        addr = ipaddress.ip_address(address)
    except ValueError:
        return False
    if addr.version != ip.version:
        return False
    return ip in ipaddress.ip_network(f"{addr}/{v4 if ip.version == 4 else v6}", strict=False)


def within(name: str, domain: str) -> bool:
    name, domain = name.lower().rstrip("."), domain.lower().rstrip(".")
    return name == domain or name.endswith("." + domain)
