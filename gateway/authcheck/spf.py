"""An async SPF evaluator (RFC 7208) on top of :class:`Resolver`.

Why not pyspf: its last release is from 2020, it resolves synchronously through module-level
settings (so the configured name servers and deadlines could not be honoured per call without
patching globals) and would need a thread per message. The parts of RFC 7208 that real records
use fit in this one module: ip4, ip6, a, mx, include, exists, all, redirect, macros, the limit of
10 DNS-querying terms and of 2 void lookups. ``ptr`` is counted but never matches (RFC 7208
5.5: "SHOULD NOT be used"); ``exp`` is ignored (explanations are for rejecting servers).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import quote

from gateway.authcheck.resolver import DnsTempError, Resolver

__all__ = ["SpfResult", "check_spf", "expand_macros", "SpfPermError"]

MAX_LOOKUPS = 10
MAX_VOID = 2
MAX_MX = 10

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class SpfResult:
    result: str  # pass fail softfail neutral none temperror permerror
    domain: str  # the domain whose policy was checked
    identity: str  # "mailfrom" or "helo"
    reason: str = ""


class SpfPermError(Exception):
    pass


class _State:
    def __init__(self, ip: IPAddress, sender: str, helo: str):
        self.ip = ip
        self.sender = sender
        self.helo = helo
        self.lookups = 0
        self.void = 0

    def count(self) -> None:
        self.lookups += 1
        if self.lookups > MAX_LOOKUPS:
            raise SpfPermError(f"more than {MAX_LOOKUPS} DNS lookups")

    def void_lookup(self, records: list[str]) -> list[str]:
        if not records:
            self.void += 1
            if self.void > MAX_VOID:
                raise SpfPermError(f"more than {MAX_VOID} lookups found nothing")
        return records


_MACRO = re.compile(r"%\{([slodiphcrtv])(\d*)(r?)([.\-+,/_=]*)\}|%%|%_|%-|%", re.I)


def expand_macros(spec: str, st: _State, domain: str) -> str:
    """Expand RFC 7208 section 7 macros in a domain-spec."""
    local, _, sender_domain = st.sender.rpartition("@")

    def letter_value(letter: str) -> str:
        ip = st.ip
        if letter == "s":
            return st.sender
        if letter == "l":
            return local
        if letter == "o":
            return sender_domain
        if letter == "d":
            return domain
        if letter == "i":
            if ip.version == 4:
                return str(ip)
            return ".".join(ip.exploded.replace(":", ""))
        if letter == "p":
            return "unknown"
        if letter == "v":
            return "in-addr" if ip.version == 4 else "ip6"
        if letter == "h":
            return st.helo
        raise SpfPermError(f"macro letter {letter!r} is not allowed here")

    def repl(m: re.Match[str]) -> str:
        token = m.group(0)
        if token == "%%":
            return "%"
        if token == "%_":
            return " "
        if token == "%-":
            return "%20"
        if token == "%":
            raise SpfPermError(f"bad macro in {spec!r}")
        letter, digits, reverse, delims = m.groups()
        value = letter_value(letter.lower())
        parts = re.split("[" + re.escape(delims or ".") + "]", value)
        if reverse:
            parts.reverse()
        if digits:
            n = int(digits)
            if n == 0:
                raise SpfPermError("macro keeps zero labels")
            parts = parts[-n:]
        out = ".".join(parts)
        return quote(out, safe="") if letter.isupper() else out

    return _MACRO.sub(repl, spec)


def _valid_domain(domain: str) -> bool:
    labels = domain.rstrip(".").split(".")
    return len(labels) >= 2 and all(0 < len(lb) <= 63 for lb in labels) and len(domain) <= 253


async def _spf_record(resolver: Resolver, domain: str) -> str | None:
    records = [r for r in await resolver.txt(domain)
               if r.lower() == "v=spf1" or r.lower().startswith("v=spf1 ")]
    if len(records) > 1:
        raise SpfPermError(f"{domain} publishes more than one SPF record")
    return records[0] if records else None


def _cidr(spec: str, default_domain: str) -> tuple[str, int, int]:
    """Split ``domain/24//64`` into (domain, v4 prefix, v6 prefix)."""
    v4, v6 = 32, 128
    m = re.match(r"^(.*?)(?:/(\d+))?(?://(\d+))?$", spec)
    assert m
    name = m.group(1) or default_domain
    if m.group(2):
        v4 = int(m.group(2))
    if m.group(3):
        v6 = int(m.group(3))
    if v4 > 32 or v6 > 128:
        raise SpfPermError(f"bad prefix length in {spec!r}")
    return name, v4, v6


def _in_net(ip: IPAddress, address: str, v4: int, v6: int) -> bool:
    try:
        addr = ipaddress.ip_address(address)
    except ValueError:
        return False
    if addr.version != ip.version:
        return False
    prefix = v4 if ip.version == 4 else v6
    return ip in ipaddress.ip_network(f"{addr}/{prefix}", strict=False)


_QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}


async def _check_host(resolver: Resolver, st: _State, domain: str, depth: int) -> str:
    if depth > MAX_LOOKUPS:
        raise SpfPermError("include loop")
    if not _valid_domain(domain):
        return "none"
    record = await _spf_record(resolver, domain)
    if record is None:
        return "none"
    redirect = None
    terms = record.split()[1:]
    for term in terms:
        m = re.match(r"^([a-zA-Z][a-zA-Z0-9_.\-]*)=(.*)$", term)
        if m:
            name = m.group(1).lower()
            if name == "redirect":
                if redirect is not None:
                    raise SpfPermError("redirect given twice")
                redirect = m.group(2)
            continue  # exp and unknown modifiers are ignored
        qualifier = "+"
        if term[0] in _QUALIFIERS:
            qualifier, term = term[0], term[1:]
        mech, sep, arg = term.partition(":")
        if not sep and "/" in mech:
            mech, _, rest = mech.partition("/")
            arg = "/" + rest
        mech = mech.lower()
        if await _matches(resolver, st, domain, mech, arg, depth):
            return _QUALIFIERS[qualifier]
    if redirect is not None:
        st.count()
        target = expand_macros(redirect, st, domain)
        result = await _check_host(resolver, st, target, depth + 1)
        if result == "none":
            raise SpfPermError(f"redirect to {target}, which has no SPF record")
        return result
    return "neutral"


async def _matches(resolver: Resolver, st: _State, domain: str, mech: str, arg: str,
                   depth: int) -> bool:
    ip = st.ip
    if mech == "all":
        return True
    if mech in ("ip4", "ip6"):
        try:
            net = ipaddress.ip_network(arg, strict=False)
        except ValueError:
            raise SpfPermError(f"bad address {arg!r} in {mech}") from None
        if (mech == "ip4") != (net.version == 4):
            raise SpfPermError(f"{arg!r} is not an {mech} address")
        return ip.version == net.version and ip in net
    if mech == "include":
        if not arg:
            raise SpfPermError("include without a domain")
        st.count()
        target = expand_macros(arg, st, domain)
        result = await _check_host(resolver, st, target, depth + 1)
        if result == "pass":
            return True
        if result in ("fail", "softfail", "neutral"):
            return False
        if result == "temperror":
            raise DnsTempError(f"include:{target}")
        raise SpfPermError(f"include:{target} gave {result}")
    if mech == "a":
        st.count()
        name, v4, v6 = _cidr(arg, domain)
        target = expand_macros(name, st, domain)
        rtype = "A" if ip.version == 4 else "AAAA"
        found = st.void_lookup(await resolver.query(target, rtype))
        return any(_in_net(ip, a, v4, v6) for a in found)
    if mech == "mx":
        st.count()
        name, v4, v6 = _cidr(arg, domain)
        target = expand_macros(name, st, domain)
        exchanges = st.void_lookup(await resolver.query(target, "MX"))
        if len(exchanges) > MAX_MX:
            raise SpfPermError(f"{target} has more than {MAX_MX} MX records")
        rtype = "A" if ip.version == 4 else "AAAA"
        for host in exchanges:
            for a in await resolver.query(host, rtype):
                if _in_net(ip, a, v4, v6):
                    return True
        return False
    if mech == "exists":
        if not arg:
            raise SpfPermError("exists without a domain")
        st.count()
        target = expand_macros(arg, st, domain)
        return bool(st.void_lookup(await resolver.query(target, "A")))
    if mech == "ptr":
        st.count()
        return False
    raise SpfPermError(f"unknown mechanism {mech!r}")


async def check_spf(resolver: Resolver, client_ip: str, mail_from: str, helo: str) -> SpfResult:
    """Is ``client_ip`` allowed to send for the MAIL FROM domain (or the HELO name for ``<>``)?"""
    identity = "mailfrom"
    sender = mail_from
    if not sender:
        identity = "helo"
        sender = f"postmaster@{helo}"
    local, _, domain = sender.rpartition("@")
    if not local:
        sender = f"postmaster@{domain}"
    domain = domain.lower().rstrip(".")
    try:
        ip = ipaddress.ip_address(client_ip.split("%")[0])
    except ValueError:
        return SpfResult("none", domain, identity, "no client address")
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    st = _State(ip, sender, helo)
    try:
        result = await _check_host(resolver, st, domain, 0)
    except DnsTempError as e:
        return SpfResult("temperror", domain, identity, str(e))
    except SpfPermError as e:
        return SpfResult("permerror", domain, identity, str(e))
    return SpfResult(result, domain, identity)
