"""SPF evaluation, case by case, against what RFC 7208 requires.

The cases are those of the public RFC 7208 test suite (same case ids, so each one can be traced),
written here as our own table: per scenario a DNS zone, then per case the client address, MAIL
FROM, HELO, the result or results the RFC allows (the first is the preferred one), and, where the
case is about it, the explanation a ``fail`` carries. The zone is answered by :class:`FakeDns`
behind the resolver interface, exactly as our resolver would give the answers (text, joined TXT
strings, MX names by preference): this tests evaluation, not DNS.

Zone entries: ``(type, value)``; ``SPF`` is the retired record type 99, there to show it is never
asked for; ``TIMEOUT`` makes every question of a type the name has no entry for time out.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.authcheck.resolver import DnsTempError
from gateway.authcheck.spf import (
    MacroContext,
    SpfPermError,
    check_spf,
    expand,
    parse_record,
    select_record,
)

Entry = tuple[str, object]
Zone = dict[str, list[Entry]]
TIMEOUT: Entry = ("TIMEOUT", None)


def TXT(value: str | tuple[str, ...]) -> Entry:
    return ("TXT", value)


def SPF(value: str) -> Entry:
    return ("SPF", value)


def A(address: str) -> Entry:
    return ("A", address)


def AAAA(address: str) -> Entry:
    return ("AAAA", address)


def MX(preference: int, exchange: str) -> Entry:
    return ("MX", (preference, exchange))


def PTR(name: str) -> Entry:
    return ("PTR", name)


def CNAME(name: str) -> Entry:
    return ("CNAME", name)


def wire(octets: bytes) -> str:
    """What our resolver makes of a TXT string holding these octets."""
    return octets.decode("utf-8", "replace")


class FakeDns:
    """A zone behind the DnsLookup interface; it refuses names DNS could not carry."""

    def __init__(self, zone: Zone):
        self.zone = {name.lower(): entries for name, entries in zone.items()}
        self.asked: list[tuple[str, str]] = []

    async def query(self, name: str, rdtype: str) -> list[str]:
        self.asked.append((name, rdtype))
        labels = name.rstrip(".").split(".")
        assert len(name) <= 254 and all(0 < len(lb) <= 63 for lb in labels), (
            f"asked DNS for a name it cannot carry: {name!r}")
        return self._answer(name.lower().rstrip("."), rdtype, hops=0)

    async def txt(self, name: str) -> list[str]:
        return await self.query(name, "TXT")

    def _answer(self, name: str, rdtype: str, hops: int) -> list[str]:
        entries = self.zone.get(name)
        if entries is None:
            return []
        values = [v for t, v in entries if t == rdtype]
        if values:
            return _render(rdtype, values)
        aliases = [str(v) for t, v in entries if t == "CNAME"]
        if aliases:
            if hops >= 8:
                raise DnsTempError(f"CNAME loop at {name}")
            return self._answer(aliases[0].lower().rstrip("."), rdtype, hops + 1)
        if TIMEOUT in entries:
            raise DnsTempError(f"{name} {rdtype} timed out")
        return []


def _render(rdtype: str, values: list[object]) -> list[str]:
    if rdtype == "TXT":
        return [v if isinstance(v, str) else "".join(v) for v in values]  # type: ignore[arg-type]
    if rdtype == "MX":
        exchanges = sorted(values)  # type: ignore[type-var]
        return [str(host).rstrip(".") or "." for _, host in exchanges]
    if rdtype in ("A", "AAAA"):
        return [str(ipaddress.ip_address(str(v))) for v in values]
    return [str(v).rstrip(".") for v in values]


@dataclass(frozen=True)
class Case:
    name: str
    section: str  # of RFC 7208
    about: str
    host: str
    mailfrom: str
    results: tuple[str, ...]
    helo: str
    zone: Zone
    explanation: str | None = None  # None: not what the case is about; "": no explanation


def scenario(zone: Zone, helo: str, host: str, rows: list[tuple]) -> list[Case]:
    """Rows of (name, section, about, mailfrom, result(s)[, overrides]) against one zone."""
    out = []
    for name, section, about, mailfrom, results, *rest in rows:
        extra = rest[0] if rest else {}
        out.append(Case(
            name=name, section=section, about=about, mailfrom=mailfrom,
            results=(results,) if isinstance(results, str) else tuple(results),
            helo=extra.get("helo", helo), host=extra.get("host", host), zone=zone,
            explanation=extra.get("explanation")))
    return out


LABEL63 = "A" + "1234567890" * 6 + "12"
LABEL64 = LABEL63 + "3"

# ---------------------------------------------------------------- initial processing (3, 4.3)
INITIAL: Zone = {
    "example.com": [TIMEOUT],
    "example.net": [TXT("v=spf1 -all exp=exp.example.net")],
    "a.example.net": [TXT("v=spf1 -all exp=exp.example.net")],
    "exp.example.net": [TXT("%{l}")],
    f"{LABEL63}.example.com": [TXT("v=spf1 -all")],
    "hosed.example.com": [TXT(wire(b"v=spf1 a:\xef\xbb\xbfgarbage.example.net -all"))],
    "hosed2.example.com": [TXT(wire(b"v=spf1 \x80a:example.net -all"))],
    "hosed3.example.com": [TXT(wire(b"v=spf1 a:example.net \x96all"))],
    "nothosed.example.com": [TXT("v=spf1 a:example.net -all"), TXT(wire(b"\x96"))],
    "ctrl.example.com": [TXT("v=spf1 a:ctrl.example.com\rptr -all"), A("192.0.2.3")],
    "fine.example.com": [TXT("v=spf1 a  -all")],
    "trail.example.com": [TXT("v=spf1 a -all ")],
    "null.example.com": [TXT(("v=spf1 ip4:", "192.0.2.5 -all")), TXT(())],
}
CASES = scenario(INITIAL, "mail.example.net", "1.2.3.4", [
    ("toolonglabel", "4.3", "a 64-octet label makes the sender domain malformed: none, never "
     "a DNS error", f"lyme.eater@{LABEL64}.example.com", "none", {"host": "1.2.3.5"}),
    ("longlabel", "4.3", "a 63-octet label is still a domain, and its policy applies",
     f"lyme.eater@{LABEL63}.example.com", "fail", {"host": "1.2.3.5"}),
    ("emptylabel", "4.3", "empty labels in the sender domain: none",
     "lyme.eater@A...example.com", "none", {"host": "1.2.3.5"}),
    ("helo-not-fqdn", "4.3", "a one-label HELO name for a null sender: none", "", "none",
     {"helo": "A2345678", "host": "1.2.3.5"}),
    ("helo-domain-literal", "4.3", "an address literal as HELO for a null sender: none", "",
     "none", {"helo": "[1.2.3.5]", "host": "1.2.3.5"}),
    ("nolocalpart", "4.3", "a sender with no local part is checked as postmaster",
     "@example.net", "fail", {"explanation": "postmaster"}),
    ("domain-literal", "4.3", "an address literal as sender domain: none", "foo@[1.2.3.5]",
     "none", {"helo": "OEMCOMPUTER", "host": "1.2.3.5"}),
    ("non-ascii-policy", "3.1", "octets beyond 7-bit ASCII inside a mechanism's domain",
     "foobar@hosed.example.com", "permerror", {"helo": "hosed"}),
    ("non-ascii-mech", "3.1", "a non-ASCII octet in front of a mechanism",
     "foobar@hosed2.example.com", "permerror", {"helo": "hosed"}),
    ("non-ascii-result", "3.1", "a non-ASCII octet in place of a qualifier",
     "foobar@hosed3.example.com", "permerror", {"helo": "hosed"}),
    ("non-ascii-non-spf", "4.5", "non-ASCII in a TXT record that is not SPF is not our business",
     "foobar@nothosed.example.com", "fail", {"helo": "hosed", "explanation": ""}),
    ("control-char-policy", "4.6.1", "a carriage return does not separate terms: only spaces do",
     "foobar@ctrl.example.com", "permerror", {"helo": "hosed", "host": "192.0.2.3"}),
    ("two-spaces", "4.6.1", "terms may be separated by several spaces",
     "actually@fine.example.com", "fail", {"helo": "hosed"}),
    ("trailing-space", "4.5", "spaces may follow the last term", "silly@trail.example.com",
     "fail", {"helo": "hosed", "host": "192.0.2.5"}),
    ("null-text", "3.3", "TXT strings are joined with nothing between them; a TXT record of no "
     "strings is harmless", "silly@null.example.com", "pass",
     {"helo": "hosed", "host": "192.0.2.5"}),
])

# ---------------------------------------------------------------- record lookup (4.4)
LOOKUP: Zone = {
    "both.example.net": [TXT("v=spf1 -all"), SPF("v=spf1 -all")],
    "txtonly.example.net": [TXT("v=spf1 -all")],
    "spfonly.example.net": [SPF("v=spf1 -all")],
    "spftimeout.example.net": [TXT("v=spf1 -all"), TIMEOUT],
    "txttimeout.example.net": [SPF("v=spf1 -all"), TIMEOUT],
    "nospftxttimeout.example.net": [SPF("v=spf3 !a:yahoo.com -all"), TIMEOUT],
    "alltimeout.example.net": [TIMEOUT],
}
CASES += scenario(LOOKUP, "mail.example.net", "1.2.3.4", [
    ("both", "4.4", "the TXT record is the one evaluated", "foo@both.example.net", "fail"),
    ("txtonly", "4.4", "a TXT record alone is enough", "foo@txtonly.example.net", "fail"),
    ("spfonly", "4.4", "a record of the retired SPF type alone is no policy",
     "foo@spfonly.example.net", "none"),
    ("spftimeout", "4.4", "SPF-type questions are never asked, so their timeout cannot matter",
     "foo@spftimeout.example.net", "fail"),
    ("txttimeout", "4.4", "the TXT question times out: temperror", "foo@txttimeout.example.net",
     "temperror"),
    ("nospftxttimeout", "4.4", "the TXT question times out and nothing else helps",
     "foo@nospftxttimeout.example.net", "temperror"),
    ("alltimeout", "4.4", "every question times out", "foo@alltimeout.example.net",
     "temperror"),
])

# ---------------------------------------------------------------- selecting records (4.5)
SELECTING: Zone = {
    "example3.com": [TXT("v=spf10"), TXT("v=spf1 mx"), MX(0, "mail.example1.com")],
    "example1.com": [TXT("v=spf1")],
    "example2.com": [TXT(("v=spf1", "mx"))],
    "mail.example1.com": [A("1.2.3.4")],
    "example4.com": [SPF("v=spf1 +all"), TXT("v=spf1 -all")],
    "example5.com": [SPF("v=spf1 +all"), TXT("v=spf1 -all"), TXT("v=spf1 +all")],
    "example6.com": [TXT("v=spf1 -all"), TXT("V=sPf1 +all")],
    "example7.com": [TXT("v=spf1 -all"), TXT("v=spf1 -all")],
    "example8.com": [SPF("V=spf1 -all"), SPF("v=spf1 -all"), TXT("v=spf1 +all")],
    "example9.com": [TXT("v=SpF1 ~all")],
}
CASES += scenario(SELECTING, "mail.example1.com", "1.2.3.4", [
    ("nospace1", "4.5", "'v=spf1' must be followed by a space or the end: strings joined into "
     "'v=spf1mx' are no record", "foo@example2.com", "none"),
    ("empty", "4.5", "a record with no terms gives neutral", "foo@example1.com", "neutral",
     {"helo": "mail1.example1.com"}),
    ("nospace2", "4.5", "'v=spf10' is not a version 1 record; the real one is used",
     "foo@example3.com", "pass"),
    ("spfoverride", "4.5", "an SPF-type record does not override the TXT one",
     "foo@example4.com", "fail"),
    ("multitxt1", "4.5", "two SPF records in TXT: permerror", "foo@example5.com", "permerror"),
    ("multitxt2", "4.5", "the version tag matches in any case, so these are two records",
     "foo@example6.com", "permerror"),
    ("multispf1", "4.5", "two identical records are still two (a cache may merge them)",
     "foo@example7.com", ("permerror", "fail")),
    ("multispf2", "4.5", "SPF-type records are ignored; the single TXT record counts",
     "foo@example8.com", "pass"),
    ("nospf", "4.5", "no SPF record at all: none", "foo@mail.example1.com", "none"),
    ("case-insensitive", "4.5", "'v=SpF1' is a version 1 record", "foo@example9.com",
     "softfail"),
])

# ---------------------------------------------------------------- record evaluation (4.6, 4.7)
EVALUATION: Zone = {
    "mail.example.com": [A("1.2.3.4")],
    "t1.example.com": [TXT("v=spf1 ip4:1.2.3.4 -all moo")],
    "t2.example.com": [TXT("v=spf1 moo.cow-far_out=man:dog/cat ip4:1.2.3.4 -all")],
    "t3.example.com": [TXT("v=spf1 moo.cow/far_out=man:dog/cat ip4:1.2.3.4 -all")],
    "t4.example.com": [TXT("v=spf1 moo.cow:far_out=man:dog/cat ip4:1.2.3.4 -all")],
    "t5.example.com": [TXT("v=spf1 redirect=t5.example.com ~all")],
    "t6.example.com": [TXT("v=spf1 ip4:1.2.3.4 redirect=t2.example.com")],
    "t7.example.com": [TXT("v=spf1 ip4:1.2.3.4")],
    "t8.example.com": [TXT("v=spf1 ip4:1.2.3.4 redirect:t2.example.com")],
    "t9.example.com": [TXT("v=spf1 a:foo-bar -all")],
    "t10.example.com": [TXT("v=spf1 a:mail.example...com -all")],
    "t11.example.com": [TXT(f"v=spf1 a:{LABEL64.lower()}.example.com -all")],
    "t12.example.com": [TXT("v=spf1 a:%{H}.bar -all")],
}
CASES += scenario(EVALUATION, "mail.example.com", "1.2.3.4", [
    ("detect-errors-anywhere", "4.6", "a bad term after the matching one still makes the "
     "record a permerror", "foo@t1.example.com", "permerror"),
    ("modifier-charset-good", "4.6.1", "a modifier name may hold letters, digits, '-', '_' and "
     "'.'; unknown modifiers are ignored", "foo@t2.example.com", "pass"),
    ("modifier-charset-bad1", "4.6.1", "a '/' before the '=' makes the term a mechanism, and "
     "an unknown one", "foo@t3.example.com", "permerror"),
    ("modifier-charset-bad2", "4.6.1", "a ':' before the '=' makes the term a mechanism, and "
     "an unknown one", "foo@t4.example.com", "permerror"),
    ("redirect-after-mechanisms1", "4.6.3", "redirect is only followed when no mechanism "
     "matched, wherever it is written", "foo@t5.example.com", "softfail"),
    ("redirect-after-mechanisms2", "4.6.3", "no mechanism matches, so the redirect decides",
     "foo@t6.example.com", "fail", {"host": "1.2.3.5"}),
    ("default-result", "4.7", "nothing matches and there is no redirect: neutral",
     "foo@t7.example.com", "neutral", {"host": "1.2.3.5"}),
    ("redirect-is-modifier", "4.6.1", "'redirect:' is an unknown mechanism, not the modifier",
     "foo@t8.example.com", "permerror"),
    ("invalid-domain", "7.1", "a domain-spec must end in a macro or in '.' and a top label",
     "foo@t9.example.com", "permerror"),
    ("invalid-domain-empty-label", "4.8", "a target with an empty label cannot be looked up: "
     "no match (or permerror)", "foo@t10.example.com", ("fail", "permerror")),
    ("invalid-domain-long", "4.8", "a target with a 64-octet label cannot be looked up: no "
     "match (or permerror)", "foo@t11.example.com", ("fail", "permerror")),
    ("invalid-domain-long-via-macro", "4.8", "an over-long label made by macro expansion: no "
     "match (or permerror)", "foo@t12.example.com", ("fail", "permerror"),
     {"helo": "%" * 22}),
])

# ---------------------------------------------------------------- all (5.1)
ALL: Zone = {
    "mail.example.com": [A("1.2.3.4")],
    "e1.example.com": [TXT("v=spf1 -all.")],
    "e2.example.com": [TXT("v=spf1 -all:foobar")],
    "e3.example.com": [TXT("v=spf1 -all/8")],
    "e4.example.com": [TXT("v=spf1 ?all")],
    "e5.example.com": [TXT("v=spf1 all -all")],
}
CASES += scenario(ALL, "mail.example.com", "1.2.3.4", [
    ("all-dot", "5.1", "'all.' is not 'all'", "foo@e1.example.com", "permerror"),
    ("all-arg", "5.1", "'all' takes no domain", "foo@e2.example.com", "permerror"),
    ("all-cidr", "5.1", "'all' takes no prefix length", "foo@e3.example.com", "permerror"),
    ("all-neutral", "5.1", "'?all' gives neutral", "foo@e4.example.com", "neutral"),
    ("all-double", "5.1", "the first 'all' decides", "foo@e5.example.com", "pass"),
])

# ---------------------------------------------------------------- ptr (5.5)
V6_CAFE_BABE_1 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.E.B.A.B.E.F.A.C.ip6.arpa"
V6_CAFE_BABE_3 = "3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.E.B.A.B.E.F.A.C.ip6.arpa"
PTR_ZONE: Zone = {
    "mail.example.com": [A("1.2.3.4"), AAAA("2001:db8::1")],
    "e1.example.com": [TXT("v=spf1 ptr/0 -all")],
    "e2.example.com": [TXT("v=spf1 ptr:example.com -all")],
    "4.3.2.1.in-addr.arpa": [PTR("e3.example.com"), PTR("e4.example.com"),
                             PTR("mail.example.com")],
    V6_CAFE_BABE_1: [PTR("e3.example.com")],
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.D.0.1.0.0.2.ip6.arpa": [
        PTR("mail.Example.com")],
    "e3.example.com": [TXT("v=spf1 ptr -all"), A("1.2.3.4"), AAAA("CAFE:BABE::1")],
    "e4.example.com": [TXT("v=spf1 ptr -all")],
    "e5.example.com": [TXT("v=spf1 ptr:")],
    "e6.example.com": [TXT("v=spf1 ptr:example.Com -all")],
    "loop.example.com": [TXT("v=spf1 ptr")],
    "4.2.0.192.in-addr.arpa": [PTR("loop4.example.com.")],
    "loop4.example.com": [CNAME("CNAME.example.com.")],
    "cname.example.com": [CNAME("CNAME.example.com.")],
}
CASES += scenario(PTR_ZONE, "mail.example.com", "1.2.3.4", [
    ("ptr-cidr", "5.5", "ptr takes no prefix length", "foo@e1.example.com", "permerror"),
    ("ptr-match-target", "5.5", "a validated PTR name under the given domain matches",
     "foo@e2.example.com", "pass"),
    ("ptr-match-implicit", "5.5", "without a domain, the current domain is the target",
     "foo@e3.example.com", "pass"),
    ("ptr-nomatch-invalid", "5.5", "a PTR name whose addresses do not include the client is "
     "not validated", "foo@e4.example.com", "fail"),
    ("ptr-match-ip6", "5.5", "the same for an IPv6 client, through AAAA", "foo@e3.example.com",
     "pass", {"host": "CAFE:BABE::1"}),
    ("ptr-empty-domain", "5.5", "'ptr:' with nothing after it", "foo@e5.example.com",
     "permerror"),
    ("ptr-case-change", "5.5", "names compare without regard to case",
     "bar@e6.example.com", "pass", {"host": "2001:db8::1"}),
    ("ptr-cname-loop", "5.5", "a PTR name whose address look-up fails (a CNAME loop) is "
     "skipped, not an error", "postmaster@loop.example.com", "neutral",
     {"helo": "loop.example.com", "host": "192.0.2.4"}),
])

# ---------------------------------------------------------------- a (5.3)
E8_ADDRESSES = [A("1.2.3.5"), AAAA("2001:db8:1234::dead:beef")]
A_ZONE: Zone = {
    "mail.example.com": [A("1.2.3.4")],
    "e1.example.com": [TXT("v=spf1 a/0 -all")],
    "e2.example.com": [A("1.1.1.1"), AAAA("1234::2"), TXT("v=spf1 a/0 -all")],
    "e2a.example.com": [AAAA("1234::1"), TXT("v=spf1 a//0 -all")],
    "e2b.example.com": [A("1.1.1.1"), TXT("v=spf1 a//0 -all")],
    "ipv6.example.com": [AAAA("1234::1"), A("1.1.1.1"), TXT("v=spf1 a -all")],
    "e3.example.com": [TXT("v=spf1 a:foo.example.com\0")],
    "e4.example.com": [TXT("v=spf1 a:111.222.33.44")],
    "e5.example.com": [TXT("v=spf1 a:abc.123")],
    "e5a.example.com": [TXT("v=spf1 a:museum")],
    "e5b.example.com": [TXT("v=spf1 a:museum.")],
    "e6.example.com": [TXT("v=spf1 a//33 -all")],
    "e6a.example.com": [TXT("v=spf1 a/33 -all")],
    "e7.example.com": [TXT("v=spf1 a//129 -all")],
    "e8.example.com": [*E8_ADDRESSES, TXT("v=spf1 a/24//64 -all")],
    "e8e.example.com": [*E8_ADDRESSES, TXT("v=spf1 a/24/64 -all")],
    "e8a.example.com": [*E8_ADDRESSES, TXT("v=spf1 a/24 -all")],
    "e8b.example.com": [*E8_ADDRESSES, TXT("v=spf1 a//64 -all")],
    "e9.example.com": [TXT("v=spf1 a:example.com:8080")],
    "e10.example.com": [TXT("v=spf1 a:foo.example.com/24")],
    "foo.example.com": [A("1.1.1.1"), A("1.2.3.5")],
    "e11.example.com": [TXT("v=spf1 a:foo:bar/baz.example.com")],
    "foo:bar/baz.example.com": [A("1.2.3.4")],
    "e12.example.com": [TXT("v=spf1 a:example.-com")],
    "e13.example.com": [TXT("v=spf1 a:")],
    "e14.example.com": [TXT("v=spf1 a:foo.example.xn--zckzah -all")],
    "foo.example.xn--zckzah": [A("1.2.3.4")],
}
V6_HOST = "2001:db8:1234::cafe:babe"
CASES += scenario(A_ZONE, "mail.example.com", "1.2.3.4", [
    ("a-cidr6", "5.3", "'//33' is an IPv6 prefix, harmless for an IPv4 client",
     "foo@e6.example.com", "fail"),
    ("a-bad-cidr4", "5.3", "an IPv4 prefix over 32", "foo@e6a.example.com", "permerror"),
    ("a-bad-cidr6", "5.3", "an IPv6 prefix over 128", "foo@e7.example.com", "permerror"),
    ("a-dual-cidr-ip4-match", "5.3", "both prefixes given; the IPv4 one applies",
     "foo@e8.example.com", "pass"),
    ("a-dual-cidr-ip4-err", "5.3", "'/24/64': the IPv6 prefix needs two slashes",
     "foo@e8e.example.com", "permerror"),
    ("a-dual-cidr-ip6-match", "5.3", "both prefixes given; the IPv6 one applies",
     "foo@e8.example.com", "pass", {"host": V6_HOST}),
    ("a-dual-cidr-ip4-default", "5.3", "only an IPv6 prefix: IPv4 compares all 32 bits",
     "foo@e8b.example.com", "fail"),
    ("a-dual-cidr-ip6-default", "5.3", "only an IPv4 prefix: IPv6 compares all 128 bits",
     "foo@e8a.example.com", "fail", {"host": V6_HOST}),
    ("a-multi-ip1", "5.3", "any of the returned addresses may match", "foo@e10.example.com",
     "pass"),
    ("a-multi-ip2", "5.3", "any of the returned addresses may match, whatever their order",
     "foo@e10.example.com", "pass"),
    ("a-bad-domain", "7.1", "':8080' after the top label makes it invalid",
     "foo@e9.example.com", "permerror"),
    ("a-nxdomain", "5.3", "no addresses, no match, even with '/0'", "foo@e1.example.com",
     "fail"),
    ("a-cidr4-0", "5.3", "'/0' matches when any A record exists", "foo@e2.example.com",
     "pass"),
    ("a-cidr4-0-ip6", "5.3", "an IPv4 prefix says nothing about IPv6 clients",
     "foo@e2.example.com", "fail", {"host": "1234::1"}),
    ("a-cidr6-0-ip4", "5.3", "'//0' does not make AAAA records match an IPv4 client",
     "foo@e2a.example.com", "fail"),
    ("a-cidr6-0-ip4mapped", "5.3", "an IPv4-mapped client is an IPv4 client",
     "foo@e2a.example.com", "fail", {"host": "::FFFF:1.2.3.4"}),
    ("a-cidr6-0-ip6", "5.3", "'//0' matches an IPv6 client when any AAAA record exists",
     "foo@e2a.example.com", "pass", {"host": "1234::1"}),
    ("a-ip6-dualstack", "5.3", "an IPv6 client is compared with the AAAA records",
     "foo@ipv6.example.com", "pass", {"host": "1234::1"}),
    ("a-cidr6-0-nxdomain", "5.3", "no AAAA records, no match for an IPv6 client",
     "foo@e2b.example.com", "fail", {"host": "1234::1"}),
    ("a-null", "7.1", "a NUL octet in the record", "foo@e3.example.com", "permerror",
     {"host": "1.2.3.5"}),
    ("a-numeric", "7.1", "an address written where a domain belongs (all-digit top label)",
     "foo@e4.example.com", "permerror"),
    ("a-numeric-toplabel", "7.1", "an all-digit top label", "foo@e5.example.com", "permerror"),
    ("a-dash-in-toplabel", "7.1", "a top label may hold dashes (IDN top-level domains)",
     "foo@e14.example.com", "pass"),
    ("a-bad-toplabel", "7.1", "a top label may not start with a dash", "foo@e12.example.com",
     "permerror"),
    ("a-only-toplabel", "7.1", "a bare top label is not a domain-spec", "foo@e5a.example.com",
     "permerror"),
    ("a-only-toplabel-trailing-dot", "7.1", "nor with a dot after it", "foo@e5b.example.com",
     "permerror"),
    ("a-colon-domain", "7.1", "':' and '/' may appear before the last label",
     "foo@e11.example.com", "pass"),
    ("a-colon-domain-ip4mapped", "7.1", "the same for an IPv4-mapped client",
     "foo@e11.example.com", "pass", {"host": "::FFFF:1.2.3.4"}),
    ("a-empty-domain", "5.3", "'a:' with nothing after it", "foo@e13.example.com",
     "permerror"),
])

# ---------------------------------------------------------------- include (5.2)
INCLUDE: Zone = {
    "mail.example.com": [A("1.2.3.4")],
    "ip5.example.com": [TXT("v=spf1 ip4:1.2.3.5 -all")],
    "ip6.example.com": [TXT("v=spf1 ip4:1.2.3.6 ~all")],
    "ip7.example.com": [TXT("v=spf1 ip4:1.2.3.7 ?all")],
    "ip8.example.com": [TIMEOUT],
    "erehwon.example.com": [TXT("v=spfl am not an SPF record")],
    "e1.example.com": [TXT("v=spf1 include:ip5.example.com ~all")],
    "e2.example.com": [TXT("v=spf1 include:ip6.example.com all")],
    "e3.example.com": [TXT("v=spf1 include:ip7.example.com -all")],
    "e4.example.com": [TXT("v=spf1 include:ip8.example.com -all")],
    "e5.example.com": [TXT("v=spf1 include:e6.example.com -all")],
    "e6.example.com": [TXT("v=spf1 include +all")],
    "e7.example.com": [TXT("v=spf1 include:erehwon.example.com -all")],
    "e8.example.com": [TXT("v=spf1 include: -all")],
    "e9.example.com": [TXT("v=spf1 include:ip5.example.com/24 -all")],
}
CASES += scenario(INCLUDE, "mail.example.com", "1.2.3.4", [
    ("include-fail", "5.2", "a fail inside the include is just no match",
     "foo@e1.example.com", "softfail"),
    ("include-softfail", "5.2", "a softfail inside is no match", "foo@e2.example.com", "pass"),
    ("include-neutral", "5.2", "a neutral inside is no match", "foo@e3.example.com", "fail"),
    ("include-temperror", "5.2", "a DNS timeout inside is a temperror", "foo@e4.example.com",
     "temperror"),
    ("include-permerror", "5.2", "a broken included record is a permerror",
     "foo@e5.example.com", "permerror"),
    ("include-syntax-error", "5.2", "include needs ':' and a domain", "foo@e6.example.com",
     "permerror"),
    ("include-cidr", "5.2", "include takes no prefix length", "foo@e9.example.com",
     "permerror"),
    ("include-none", "5.2", "including a domain with no SPF record is a permerror",
     "foo@e7.example.com", "permerror"),
    ("include-empty-domain", "5.2", "'include:' with nothing after it", "foo@e8.example.com",
     "permerror"),
])

# ---------------------------------------------------------------- mx (5.4)
MX_ZONE: Zone = {
    "mail.example.com": [A("1.2.3.4"), MX(0, ""), TXT("v=spf1 mx")],
    "e1.example.com": [TXT("v=spf1 mx/0 -all"), MX(0, "e1.example.com")],
    "e2.example.com": [A("1.1.1.1"), AAAA("1234::2"), MX(0, "e2.example.com"),
                       TXT("v=spf1 mx/0 -all")],
    "e2a.example.com": [AAAA("1234::1"), MX(0, "e2a.example.com"), TXT("v=spf1 mx//0 -all")],
    "e2b.example.com": [A("1.1.1.1"), MX(0, "e2b.example.com"), TXT("v=spf1 mx//0 -all")],
    "e3.example.com": [TXT("v=spf1 mx:foo.example.com\0")],
    "e4.example.com": [TXT("v=spf1 mx"), A("1.2.3.4")],
    "e5.example.com": [TXT("v=spf1 mx:abc.123")],
    "e6.example.com": [TXT("v=spf1 mx//33 -all")],
    "e6a.example.com": [TXT("v=spf1 mx/33 -all")],
    "e7.example.com": [TXT("v=spf1 mx//129 -all")],
    "e9.example.com": [TXT("v=spf1 mx:example.com:8080")],
    "e10.example.com": [TXT("v=spf1 mx:foo.example.com/24")],
    "foo.example.com": [MX(0, "foo1.example.com")],
    "foo1.example.com": [A("1.1.1.1"), A("1.2.3.5")],
    "e11.example.com": [TXT("v=spf1 mx:foo:bar/baz.example.com")],
    "foo:bar/baz.example.com": [MX(0, "foo:bar/baz.example.com"), A("1.2.3.4")],
    "e12.example.com": [TXT("v=spf1 mx:example.-com")],
    "e13.example.com": [TXT("v=spf1 mx: -all")],
}
CASES += scenario(MX_ZONE, "mail.example.com", "1.2.3.4", [
    ("mx-cidr6", "5.4", "'//33' is an IPv6 prefix, harmless for an IPv4 client",
     "foo@e6.example.com", "fail"),
    ("mx-bad-cidr4", "5.4", "an IPv4 prefix over 32", "foo@e6a.example.com", "permerror"),
    ("mx-bad-cidr6", "5.4", "an IPv6 prefix over 128", "foo@e7.example.com", "permerror"),
    ("mx-multi-ip1", "5.4", "any address of any exchange may match", "foo@e10.example.com",
     "pass"),
    ("mx-multi-ip2", "5.4", "any address of any exchange may match, whatever their order",
     "foo@e10.example.com", "pass"),
    ("mx-bad-domain", "7.1", "':8080' after the top label makes it invalid",
     "foo@e9.example.com", "permerror"),
    ("mx-nxdomain", "5.4", "an exchange without addresses matches nothing, even with '/0'",
     "foo@e1.example.com", "fail"),
    ("mx-cidr4-0", "5.4", "'/0' matches when an exchange has any A record",
     "foo@e2.example.com", "pass"),
    ("mx-cidr4-0-ip6", "5.4", "an IPv4 prefix says nothing about IPv6 clients",
     "foo@e2.example.com", "fail", {"host": "1234::1"}),
    ("mx-cidr6-0-ip4", "5.4", "'//0' does not make AAAA records match an IPv4 client",
     "foo@e2a.example.com", "fail"),
    ("mx-cidr6-0-ip4mapped", "5.4", "an IPv4-mapped client is an IPv4 client",
     "foo@e2a.example.com", "fail", {"host": "::FFFF:1.2.3.4"}),
    ("mx-cidr6-0-ip6", "5.4", "'//0' matches an IPv6 client when an exchange has any AAAA",
     "foo@e2a.example.com", "pass", {"host": "1234::1"}),
    ("mx-cidr6-0-nxdomain", "5.4", "no AAAA records, no match for an IPv6 client",
     "foo@e2b.example.com", "fail", {"host": "1234::1"}),
    ("mx-null", "7.1", "a NUL octet in the record", "foo@e3.example.com", "permerror",
     {"host": "1.2.3.5"}),
    ("mx-numeric-top-label", "7.1", "an all-digit top label", "foo@e5.example.com",
     "permerror"),
    ("mx-colon-domain", "7.1", "':' and '/' may appear before the last label",
     "foo@e11.example.com", "pass"),
    ("mx-colon-domain-ip4mapped", "7.1", "the same for an IPv4-mapped client",
     "foo@e11.example.com", "pass", {"host": "::FFFF:1.2.3.4"}),
    ("mx-bad-toplab", "7.1", "a top label may not start with a dash", "foo@e12.example.com",
     "permerror"),
    ("mx-empty", "5.4", "a null MX ('.') names no host to match", "", "neutral"),
    ("mx-implicit", "5.4", "no MX records: the domain's own address is not used instead",
     "foo@e4.example.com", "neutral"),
    ("mx-empty-domain", "5.4", "'mx:' with nothing after it", "foo@e13.example.com",
     "permerror"),
])

# ---------------------------------------------------------------- exists (5.7)
EXISTS: Zone = {
    "mail.example.com": [A("1.2.3.4")],
    "mail6.example.com": [AAAA("CAFE:BABE::4")],
    "err.example.com": [TIMEOUT],
    "e1.example.com": [TXT("v=spf1 exists:")],
    "e2.example.com": [TXT("v=spf1 exists")],
    "e3.example.com": [TXT("v=spf1 exists:mail.example.com/24")],
    "e4.example.com": [TXT("v=spf1 exists:mail.example.com")],
    "e5.example.com": [TXT("v=spf1 exists:mail6.example.com -all")],
    "e6.example.com": [TXT("v=spf1 exists:err.example.com -all")],
}
CASES += scenario(EXISTS, "mail.example.com", "1.2.3.4", [
    ("exists-empty-domain", "5.7", "'exists:' with nothing after it", "foo@e1.example.com",
     "permerror"),
    ("exists-implicit", "5.7", "exists needs a domain", "foo@e2.example.com", "permerror"),
    ("exists-cidr", "5.7", "exists takes no prefix length", "foo@e3.example.com", "permerror"),
    ("exists-ip4", "5.7", "any A record makes it match", "foo@e4.example.com", "pass"),
    ("exists-ip6", "5.7", "the question is for A records even for an IPv6 client",
     "foo@e4.example.com", "pass", {"host": "CAFE:BABE::3"}),
    ("exists-ip6only", "5.7", "AAAA records alone do not make it match", "foo@e5.example.com",
     "fail", {"host": "CAFE:BABE::3"}),
    ("exists-dnserr", "5", "a timeout on its look-up is a temperror", "foo@e6.example.com",
     "temperror", {"host": "CAFE:BABE::3"}),
])

# ---------------------------------------------------------------- ip4 (5.6)
IP4: Zone = {
    "mail.example.com": [A("1.2.3.4")],
    "e1.example.com": [TXT("v=spf1 ip4:1.1.1.1/0 -all")],
    "e2.example.com": [TXT("v=spf1 ip4:1.2.3.4/32 -all")],
    "e3.example.com": [TXT("v=spf1 ip4:1.2.3.4/33 -all")],
    "e4.example.com": [TXT("v=spf1 ip4:1.2.3.4/032 -all")],
    "e5.example.com": [TXT("v=spf1 ip4")],
    "e6.example.com": [TXT("v=spf1 ip4:1.2.3.4//32")],
    "e7.example.com": [TXT("v=spf1 -ip4:1.2.3.4 ip6:::FFFF:1.2.3.4")],
    "e8.example.com": [TXT("v=spf1 ip4:1.2.3.4:8080")],
    "e9.example.com": [TXT("v=spf1 ip4:1.2.3")],
}
CASES += scenario(IP4, "mail.example.com", "1.2.3.4", [
    ("cidr4-0", "5.6", "'/0' matches every IPv4 client", "foo@e1.example.com", "pass"),
    ("cidr4-32", "5.6", "'/32' is the one address", "foo@e2.example.com", "pass"),
    ("cidr4-33", "5.6", "a prefix over 32", "foo@e3.example.com", "permerror"),
    ("cidr4-032", "5.6", "a prefix with a leading zero", "foo@e4.example.com", "permerror"),
    ("bare-ip4", "5.6", "ip4 needs an address", "foo@e5.example.com", "permerror"),
    ("bad-ip4-port", "5.6", "an address with a port", "foo@e8.example.com", "permerror"),
    ("bad-ip4-short", "5.6", "an address with a part left out", "foo@e9.example.com",
     "permerror"),
    ("ip4-dual-cidr", "5.6", "ip4 takes no IPv6 prefix", "foo@e6.example.com", "permerror"),
    ("ip4-mapped-ip6", "5", "an IPv4-mapped client is matched by ip4",
     "foo@e7.example.com", "fail", {"host": "::FFFF:1.2.3.4"}),
])

# ---------------------------------------------------------------- ip6 (5.6)
IP6: Zone = {
    "mail.example.com": [A("1.2.3.4")],
    "e1.example.com": [TXT("v=spf1 -all ip6")],
    "e2.example.com": [TXT("v=spf1 ip6:::1.1.1.1/0")],
    "e3.example.com": [TXT("v=spf1 ip6:::1.1.1.1/129")],
    "e4.example.com": [TXT("v=spf1 ip6:::1.1.1.1//33")],
    "e5.example.com": [TXT("v=spf1 ip6:Cafe:Babe:8000::/33")],
    "e6.example.com": [TXT("v=spf1 ip6::CAFE::BABE")],
}
CASES += scenario(IP6, "mail.example.com", "1.2.3.4", [
    ("bare-ip6", "5.6", "ip6 needs an address, even after the deciding term",
     "foo@e1.example.com", "permerror"),
    ("cidr6-0-ip4", "5", "an IPv4 client never matches ip6", "foo@e2.example.com",
     "neutral"),
    ("cidr6-ip4", "5", "nor does an IPv4-mapped one", "foo@e2.example.com", "neutral",
     {"host": "::FFFF:1.2.3.4"}),
    ("cidr6-0", "5.6", "'/0' matches every IPv6 client", "foo@e2.example.com", "pass",
     {"host": "DEAF:BABE::CAB:FEE"}),
    ("cidr6-129", "5.6", "a prefix over 128", "foo@e3.example.com", "permerror"),
    ("cidr6-bad", "5.6", "ip6 takes a single slash", "foo@e4.example.com", "permerror"),
    ("cidr6-33", "5.6", "an IPv6 prefix of 33 is fine", "foo@e5.example.com", "pass",
     {"host": "CAFE:BABE:8000::"}),
    ("cidr6-33-ip4", "5.6", "and matches no IPv4 client", "foo@e5.example.com", "neutral"),
    ("ip6-bad1", "5.6", "not an IPv6 address", "foo@e6.example.com", "permerror"),
])

# ---------------------------------------------------------------- modifiers (6)
MODIFIERS: Zone = {
    "mail.example.com": [A("1.2.3.4")],
    "e1.example.com": [TXT("v=spf1 exp=exp1.example.com redirect=e2.example.com")],
    "e2.example.com": [TXT("v=spf1 -all")],
    "e3.example.com": [TXT("v=spf1 exp=exp1.example.com redirect=e4.example.com")],
    "e4.example.com": [TXT("v=spf1 -all exp=exp2.example.com")],
    "exp1.example.com": [TXT("never shown")],
    "exp2.example.com": [TXT("shown after the redirect")],
    "exp3.example.com": [TXT("the including domain speaks")],
    "exp4.example.com": [TXT("%{l} in implementation")],
    "e5.example.com": [TXT("v=spf1 1up=foo")],
    "e6.example.com": [TXT("v=spf1 =all")],
    "e7.example.com": [TXT("v=spf1 include:e3.example.com -all exp=exp3.example.com")],
    "e8.example.com": [TXT("v=spf1 -all exp=exp4.example.com")],
    "e9.example.com": [TXT("v=spf1 -all foo=%abc")],
    "e10.example.com": [TXT("v=spf1 redirect=erehwon.example.com")],
    "e11.example.com": [TXT("v=spf1 -all exp=e11msg.example.com")],
    "e11msg.example.com": [TXT("first of two"), TXT("second of two")],
    "e12.example.com": [TXT("v=spf1 exp= -all")],
    "e13.example.com": [TXT("v=spf1 exp=e13msg.example.com -all")],
    "e13msg.example.com": [TXT("no such letter as %{x} here")],
    "e14.example.com": [TXT("v=spf1 exp=e13msg.example.com -all exp=e11msg.example.com")],
    "e15.example.com": [TXT("v=spf1 redirect=e12.example.com -all redirect=e12.example.com")],
    "e16.example.com": [TXT("v=spf1 exp=-all")],
    "e17.example.com": [TXT("v=spf1 redirect=-all ?all")],
    "e18.example.com": [TXT("v=spf1 ?all redirect=")],
    "e19.example.com": [TXT("v=spf1 default=pass")],
    "e20.example.com": [TXT("v=spf1 default=+")],
    "e21.example.com": [TXT("v=spf1 exp=e21msg.example.com -all")],
    "e21msg.example.com": [TIMEOUT],
    "e22.example.com": [TXT("v=spf1 exp=mail.example.com -all")],
    "nonascii.example.com": [TXT("v=spf1 exp=badexp.example.com -all")],
    "badexp.example.com": [TXT(wire(b"\xef\xbb\xbfExplanation"))],
    "tworecs.example.com": [TXT("v=spf1 exp=twoexp.example.com -all")],
    "twoexp.example.com": [TXT("one"), TXT("two")],
    "e23.example.com": [TXT("v=spf1 a:erehwon.example.com a:foobar.com exp=nxdomain.com -all")],
    "e24.example.com": [TXT("v=spf1 redirect=testimplicit.example.com"), A("192.0.2.1")],
    "testimplicit.example.com": [TXT("v=spf1 a -all"), A("192.0.2.2")],
}
CASES += scenario(MODIFIERS, "mail.example.com", "1.2.3.4", [
    ("redirect-none", "6.1", "a redirect to a domain without SPF is a permerror, not none",
     "foo@e10.example.com", "permerror"),
    ("redirect-cancels-exp", "6.2", "after a redirect the first record's exp= is not used",
     "foo@e1.example.com", "fail", {"explanation": ""}),
    ("redirect-syntax-error", "6.1", "redirect needs a valid domain-spec",
     "foo@e17.example.com", "permerror"),
    ("include-ignores-exp", "6.2", "an included record's exp= is not used; ours is",
     "foo@e7.example.com", "fail", {"explanation": "the including domain speaks"}),
    ("redirect-cancels-prior-exp", "6.2", "the redirect target's own exp= is used",
     "foo@e3.example.com", "fail", {"explanation": "shown after the redirect"}),
    ("invalid-modifier", "A", "a modifier name starts with a letter", "foo@e5.example.com",
     "permerror"),
    ("empty-modifier-name", "A", "a modifier needs a name", "foo@e6.example.com",
     "permerror"),
    ("dorky-sentinel", "7.2", "a local part with a space expands as it is",
     "Macro Error@e8.example.com", "fail",
     {"explanation": "Macro Error in implementation"}),
    ("exp-multiple-txt", "6.2", "two TXT records for the explanation: none is used",
     "foo@e11.example.com", "fail", {"explanation": ""}),
    ("exp-no-txt", "6.2", "no TXT record for the explanation: none is used",
     "foo@e22.example.com", "fail", {"explanation": ""}),
    ("exp-dns-error", "6.2", "a timeout fetching the explanation: none is used",
     "foo@e21.example.com", "fail", {"explanation": ""}),
    ("exp-empty-domain", "6.2", "'exp=' with nothing after it is a syntax error",
     "foo@e12.example.com", "permerror"),
    ("explanation-syntax-error", "6.2", "a bad macro in the explanation text: it is ignored",
     "foo@e13.example.com", "fail", {"explanation": ""}),
    ("exp-syntax-error", "6.2", "exp needs a valid domain-spec", "foo@e16.example.com",
     "permerror"),
    ("exp-twice", "6", "exp= at most once", "foo@e14.example.com", "permerror"),
    ("redirect-empty-domain", "6.1", "'redirect=' with nothing after it",
     "foo@e18.example.com", "permerror"),
    ("redirect-twice", "6", "redirect= at most once", "foo@e15.example.com", "permerror"),
    ("unknown-modifier-syntax", "A", "an unknown modifier is ignored only if it parses",
     "foo@e9.example.com", "permerror"),
    ("default-modifier-obsolete", "6", "an old draft's default= is just an unknown modifier",
     "foo@e19.example.com", "neutral"),
    ("default-modifier-obsolete2", "6", "the same with a qualifier as its value",
     "foo@e20.example.com", "neutral"),
    ("non-ascii-exp", "6.2", "explanation text must be ASCII, or it is ignored",
     "foobar@nonascii.example.com", "fail", {"helo": "hosed", "explanation": ""}),
    ("two-exp-records", "6.2", "two explanation records: none is used",
     "foobar@tworecs.example.com", "fail", {"helo": "hosed", "explanation": ""}),
    ("exp-void", "4.6.4", "an explanation look-up finding nothing is not a void look-up",
     "foo@e23.example.com", "fail"),
    ("redirect-implicit", "6.1", "after a redirect, the current domain is the target",
     "bar@e24.example.com", "pass", {"helo": "e24.example.com", "host": "192.0.2.2"}),
])

# ---------------------------------------------------------------- macros (7)
LONG = "somewhat.long.exp.example.com"
MACROS: Zone = {
    "example.com.d.spf.example.com": [TXT("v=spf1 redirect=a.spf.example.com")],
    "a.spf.example.com": [TXT("v=spf1 include:o.spf.example.com. ~all")],
    "o.spf.example.com": [TXT("v=spf1 ip4:192.168.218.40")],
    "msgbas2x.cos.example.com": [A("192.168.218.40")],
    "example.com": [A("192.168.90.76"), TXT("v=spf1 redirect=%{d}.d.spf.example.com.")],
    "exp.example.com": [TXT("v=spf1 exp=msg.example.com. -all")],
    "msg.example.com": [TXT("ends with a dot.")],
    "e1.example.com": [TXT("v=spf1 -exists:%(ir).sbl.example.com ?all")],
    "e1e.example.com": [TXT("v=spf1 exists:foo%(ir).sbl.example.com ?all")],
    "e1t.example.com": [TXT("v=spf1 exists:foo%.sbl.example.com ?all")],
    "e1a.example.com": [TXT("v=spf1 a:macro%%percent%_%_space%-url-space.example.com -all")],
    "macro%percent  space%20url-space.example.com": [A("1.2.3.4")],
    "e2.example.com": [TXT("v=spf1 -all exp=%{r}.example.com")],
    "e3.example.com": [TXT("v=spf1 -all exp=%{ir}.example.com")],
    "40.218.168.192.example.com": [TXT("refused for %{c}.")],
    LONG: [TXT("v=spf1 -all exp=foobar." + "%{o}." * 8 + "example.com")],
    ".".join([LONG] * 8) + ".example.com": [TXT("truncated from the left")],
    "e4.example.com": [TXT("v=spf1 -all exp=e4msg.example.com")],
    "e4msg.example.com": [TXT("%{c} is queried as %{ir}.%{v}.arpa")],
    "e5.example.com": [TXT("v=spf1 a:%{a}.example.com -all")],
    "e6.example.com": [TXT("v=spf1 -all exp=e6msg.example.com")],
    "e6msg.example.com": [TXT("connect from %{p}")],
    "mx.example.com": [A("192.168.218.41"), A("192.168.218.42"), AAAA("CAFE:BABE::2"),
                       AAAA("CAFE:BABE::3")],
    "40.218.168.192.in-addr.arpa": [PTR("mx.example.com")],
    "41.218.168.192.in-addr.arpa": [PTR("mx.example.com")],
    "42.218.168.192.in-addr.arpa": [PTR("mx.example.com"), PTR("mx.e7.example.com")],
    V6_CAFE_BABE_1: [PTR("mx.example.com")],
    V6_CAFE_BABE_3: [PTR("mx.example.com")],
    "mx.e7.example.com": [A("192.168.218.42")],
    "mx.e7.example.com.should.example.com": [A("127.0.0.2")],
    "mx.example.com.ok.example.com": [A("127.0.0.2")],
    "e7.example.com": [TXT("v=spf1 exists:%{p}.should.example.com ~exists:%{p}.ok.example.com")],
    "e8.example.com": [TXT("v=spf1 -all exp=msg8.%{D2}")],
    "msg8.example.com": [TXT("http://example.com/why.html?l=%{L}")],
    "e9.example.com": [TXT("v=spf1 a:%{H} -all")],
    "e10.example.com": [TXT("v=spf1 -include:_spfh.%{d2} ip4:1.2.3.0/24 -all")],
    "_spfh.example.com": [TXT("v=spf1 -a:%{h} +all")],
    "e11.example.com": [TXT("v=spf1 exists:%{i}.%{l2r-}.user.%{d2}")],
    "1.2.3.4.gladstone.philip.user.example.com": [A("127.0.0.2")],
    "e12.example.com": [TXT("v=spf1 exists:%{l2r+-}.user.%{d2}")],
    "bar.foo.user.example.com": [A("127.0.0.2")],
}
IR6 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.E.B.A.B.E.F.A.C"
MAIL = {"helo": "mail.example.com", "host": "1.2.3.4"}
CASES += scenario(MACROS, "msgbas2x.cos.example.com", "192.168.218.40", [
    ("trailing-dot-domain", "7.1", "a final dot on an expanded domain is dropped",
     "test@example.com", "pass"),
    ("trailing-dot-exp", "6.2", "but a final dot in explanation text stays",
     "test@exp.example.com", "fail", {"explanation": "ends with a dot."}),
    ("exp-only-macro-char", "7.2", "%{r} belongs in explanation text only, not in exp=",
     "test@e2.example.com", "permerror"),
    ("invalid-macro-char", "7.1", "'%' must be followed by '{', '%', '-' or '_'",
     "test@e1.example.com", "permerror"),
    ("invalid-embedded-macro-char", "7.1", "the same inside a label", "test@e1e.example.com",
     "permerror"),
    ("invalid-trailing-macro-char", "7.1", "the same at the end of a label",
     "test@e1t.example.com", "permerror"),
    ("macro-mania-in-domain", "7.1", "'%%', '%_' and '%-' stand for '%', a space and '%20'",
     "test@e1a.example.com", "pass", MAIL),
    ("exp-txt-macro-char", "7.2", "%{c} in explanation text is the dotted IPv4 address",
     "test@e3.example.com", "fail", {"explanation": "refused for 192.168.218.40."}),
    ("domain-name-truncation", "7.3", "an expansion over 253 characters loses labels from the "
     "left", f"test@{LONG}", "fail", {"explanation": "truncated from the left"}),
    ("v-macro-ip4", "7.2", "%{v} is 'in-addr' for IPv4; %{ir} reverses the address",
     "test@e4.example.com", "fail",
     {"explanation": "192.168.218.40 is queried as 40.218.168.192.in-addr.arpa"}),
    ("v-macro-ip6", "7.2", "%{v} is 'ip6'; %{i} gives nibbles, %{c} the compressed address",
     "test@e4.example.com", "fail",
     {"host": "CAFE:BABE::1", "explanation": f"cafe:babe::1 is queried as {IR6}.ip6.arpa"}),
    ("undef-macro", "7.1", "%{a} is no macro letter", "test@e5.example.com", "permerror",
     {"host": "CAFE:BABE::192.168.218.40"}),
    ("p-macro-ip4-novalid", "7.3", "a PTR name that does not resolve back gives 'unknown'",
     "test@e6.example.com", "fail", {"explanation": "connect from unknown"}),
    ("p-macro-ip4-valid", "7.3", "a PTR name that resolves back to the client",
     "test@e6.example.com", "fail",
     {"host": "192.168.218.41", "explanation": "connect from mx.example.com"}),
    ("p-macro-ip6-novalid", "7.3", "the same for IPv6: not validated",
     "test@e6.example.com", "fail",
     {"host": "CAFE:BABE::1", "explanation": "connect from unknown"}),
    ("p-macro-ip6-valid", "7.3", "the same for IPv6: validated", "test@e6.example.com",
     "fail", {"host": "CAFE:BABE::3", "explanation": "connect from mx.example.com"}),
    ("p-macro-multiple", "7.3", "of several validated names, one under the current domain "
     "is preferred", "test@e7.example.com", ("pass", "softfail"), {"host": "192.168.218.42"}),
    ("upper-macro", "7.3", "an upper-case letter URL-escapes everything outside the "
     "unreserved characters", "~jack&jill=up-a_b3.c@e8.example.com", "fail",
     {"host": "192.168.218.42",
      "explanation": "http://example.com/why.html?l=~jack%26jill%3Dup-a_b3.c"}),
    ("hello-macro", "7.2", "%{h} is the HELO name", "test@e9.example.com", "pass"),
    ("invalid-hello-macro", "7.1", "a HELO that is no domain is looked up as expanded, and "
     "simply does not match", "test@e9.example.com", "fail", {"helo": "JUMPIN' JUPITER"}),
    ("hello-domain-literal", "7.1", "the same for an address literal as HELO",
     "test@e9.example.com", "fail", {"helo": "[192.168.218.40]"}),
    ("require-valid-helo", "7.2", "a policy that fails clients whose HELO has no address",
     "test@e10.example.com", "fail", {"helo": "OEMCOMPUTER", "host": "1.2.3.4"}),
    ("macro-reverse-split-on-dash", "7.3", "split on '-', reverse, keep the right two parts",
     "philip-gladstone-test@e11.example.com", "pass", MAIL),
    ("macro-multiple-delimiters", "7.3", "split on any of several delimiters",
     "foo-bar+zip+quux@e12.example.com", "pass", MAIL),
])

# ---------------------------------------------------------------- limits (4.6.4)
LIMITS: Zone = {
    "mail.example.com": [A("1.2.3.4")],
    "e1.example.com": [TXT("v=spf1 ip4:1.1.1.1 redirect=e1.example.com"), A("1.2.3.6")],
    "e2.example.com": [TXT("v=spf1 include:e3.example.com"), A("1.2.3.7")],
    "e3.example.com": [TXT("v=spf1 include:e2.example.com"), A("1.2.3.8")],
    "e4.example.com": [TXT("v=spf1 mx"), *[MX(i, "mail.example.com") for i in range(10)],
                       MX(10, "e4.example.com"), A("1.2.3.5")],
    "e5.example.com": [TXT("v=spf1 ptr"), A("1.2.3.5")],
    "5.3.2.1.in-addr.arpa": [PTR(f"e{i}.example.com.") for i in (1, 2, 3, 4)]
    + [PTR("example.com.")] + [PTR(f"e{i}.example.com.") for i in (6, 7, 8, 9, 10, 5)],
    "e6.example.com": [TXT("v=spf1 a mx a mx a mx a mx a ptr ip4:1.2.3.4 -all"), A("1.2.3.8"),
                       MX(10, "e6.example.com")],
    "e7.example.com": [TXT("v=spf1 a mx a mx a mx a mx a ptr a ip4:1.2.3.4 -all"),
                       A("1.2.3.20")],
    "e8.example.com": [TXT("v=spf1 a include:inc.example.com ip4:1.2.3.4 mx -all"),
                       A("1.2.3.4")],
    "inc.example.com": [TXT("v=spf1 a a a a a a a a"), A("1.2.3.10")],
    "e9.example.com": [TXT("v=spf1 a include:inc.example.com a ip4:1.2.3.4 -all"),
                       A("1.2.3.21")],
    "e10.example.com": [TXT("v=spf1 a -all"), *[A(f"1.2.3.{i}") for i in range(1, 13)]],
    "e11.example.com": [TXT("v=spf1 a:err.example.com a:err1.example.com a:err2.example.com "
                            "?all")],
    "e12.example.com": [TXT("v=spf1 a:err.example.com a:err1.example.com ?all")],
}
CASES += scenario(LIMITS, "mail.example.com", "1.2.3.4", [
    ("redirect-loop", "4.6.4", "a record redirecting to itself runs out of look-ups",
     "foo@e1.example.com", "permerror"),
    ("include-loop", "4.6.4", "two records including each other run out of look-ups",
     "foo@e2.example.com", "permerror"),
    ("mx-limit", "4.6.4", "more than 10 MX names is a permerror, even if one would match",
     "foo@e4.example.com", "permerror", {"host": "1.2.3.5"}),
    ("ptr-limit", "4.6.4", "only the first 10 PTR names are tried, and that is no error",
     "foo@e5.example.com", ("neutral", "pass"), {"host": "1.2.3.5"}),
    ("false-a-limit", "4.6.4", "there is no limit on the addresses an 'a' look-up returns",
     "foo@e10.example.com", "pass", {"host": "1.2.3.12"}),
    ("mech-at-limit", "4.6.4", "exactly 10 terms that query DNS is allowed",
     "foo@e6.example.com", "pass"),
    ("mech-over-limit", "4.6.4", "an eleventh is a permerror", "foo@e7.example.com",
     "permerror"),
    ("include-at-limit", "4.6.4", "terms inside an include count towards the 10",
     "foo@e8.example.com", "pass"),
    ("include-over-limit", "4.6.4", "and can push the total over", "foo@e9.example.com",
     "permerror"),
    ("void-at-limit", "4.6.4", "two look-ups that find nothing are allowed",
     "foo@e12.example.com", "neutral"),
    ("void-over-limit", "4.6.4", "a third is a permerror", "foo@e11.example.com", "permerror"),
])

# ---------------------------------------------------------------- an old implementation bug
BYTES: Zone = {
    "example.org": [TXT("v=spf1 mx redirect=_spf.example.com"), MX(10, "smtp.example.org"),
                    MX(10, "smtp1.example.com")],
    "smtp.example.org": [A("198.51.100.2"), AAAA("2001:db8:ff0:100::3")],
    "smtp1.example.com": [A("192.0.2.26"), AAAA("2001:db8:ff0:200::2")],
    "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.F.F.0.8.B.D.0.1.0.0.2.ip6.arpa": [
        PTR("smtp6-v.fe.example.org")],
    "smtp6-v.fe.example.org": [AAAA("2001:db8:ff0:100::2")],
    "_spf.example.com": [TXT("v=spf1 ptr:fe.example.org ptr:sgp.example.com "
                             "exp=_expspf.example.org -all")],
    "_expspf.example.org": [TXT("not from this host: https://example.org/why?s=%{S}&ip=%{C}"
                                "&r=%{R}")],
}
CASES += scenario(BYTES, "example.org", "2001:db8:ff0:100::2", [
    ("bytes-bug", "5.5", "no MX matches, the redirect's ptr does, for an IPv6 client",
     "test@example.org", "pass"),
])


# ============================================================================== the tests

def test_the_table_holds_every_case_of_the_suite_once():
    names = [c.name for c in CASES]
    assert len(names) == len(set(names)) == 201
    assert len(LABEL63) == 63 and len(LABEL64) == 64
    for zone in (PTR_ZONE, MACROS, BYTES):
        for name in zone:
            if name.endswith(".ip6.arpa"):
                assert len(name.split(".")) == 34, name


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_rfc7208(case: Case):
    dns = FakeDns(case.zone)
    got = await check_spf(dns, case.host, case.mailfrom, case.helo, explain=True)
    assert got.result in case.results, f"{case.section}: {case.about} ({got.reason})"
    if case.explanation is not None:
        assert got.explanation == case.explanation
    assert not any(rdtype == "SPF" for _, rdtype in dns.asked)


async def test_no_explanation_lookup_unless_asked():
    dns = FakeDns(MODIFIERS)
    got = await check_spf(dns, "1.2.3.4", "foo@e7.example.com", "mail.example.com")
    assert (got.result, got.explanation) == ("fail", "")
    assert ("exp3.example.com", "TXT") not in dns.asked


async def test_receiver_name_fills_r_in_explanations():
    zone: Zone = {"r.example.com": [TXT("v=spf1 -all exp=why.example.com")],
                  "why.example.com": [TXT("%{r} refused %{i}")]}
    got = await check_spf(FakeDns(zone), "192.0.2.9", "x@r.example.com", "h.example.com",
                          receiver="mx.council.example", explain=True)
    assert got.explanation == "mx.council.example refused 192.0.2.9"


# ---------------------------------------------------------------- pure parts, in tables

@pytest.mark.parametrize("record", [
    "v=spf1",
    "v=spf1 -all",
    "V=SPF1 +A:mail.example.com/24//64 MX ~PTR ?exists:%{ir}.%{v}.x.example.com -ALL",
    "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 include:_spf.example.com",
    "v=spf1 a:%{d}  redirect=%{d2}.example.com. exp=explain._spf.%{d}",
    "v=spf1 unknown-mod=%{c}%{r}%{t}",
])
def test_records_that_parse(record):
    parse_record(record)


@pytest.mark.parametrize("record,why", [
    ("v=spf1 -all\tip4:192.0.2.1", "a tab is not a term separator"),
    ("v=spf1 a:example.com\n-all", "nor a line break"),
    ("v=spf1 a:ex\u00e4mple.com", "non-ASCII"),
    ("v=spf1 all:example.com", "all with an argument"),
    ("v=spf1 exists:%{i}.example.com/24", "exists with a prefix"),
    ("v=spf1 ptr/24", "ptr with a prefix"),
    ("v=spf1 ip4:192.0.2.0/024", "leading zero in a prefix"),
    ("v=spf1 ip4:192.0.2.01", "leading zero in an address"),
    ("v=spf1 ip6:fe80::1%eth0", "a zone index is no address"),
    ("v=spf1 a:", "empty domain after ':'"),
    ("v=spf1 a:example.123", "all-digit top label"),
    ("v=spf1 a:%{d}.", "a final dot may only follow a top label, not a macro"),
    ("v=spf1 a:%{d0}.example.com", "a macro keeping zero parts"),
    ("v=spf1 include:%{c}.example.com", "c is for explanations only"),
    ("v=spf1 exp=", "empty exp"),
    ("v=spf1 redirect=a.example.com redirect=b.example.com", "redirect twice"),
    ("v=spf1 -all foo=%", "unknown modifier that is no macro-string"),
    ("v=spf1 +redirect=example.com", "a qualifier on a modifier"),
])
def test_records_that_are_permerrors(record, why):
    with pytest.raises(SpfPermError):
        parse_record(record)


@given(st.text(alphabet=st.characters(max_codepoint=0x7f) | st.sampled_from("%{}:/=.\u00e9")))
def test_any_record_text_parses_or_is_a_permerror(rest):
    try:
        parse_record("v=spf1 " + rest)
    except SpfPermError:
        pass


@pytest.mark.parametrize("texts,expected", [
    ([], None),
    (["google-site-verification=x", "v=spf1 -all"], "v=spf1 -all"),
    (["v=spf1"], "v=spf1"),
    (["v=spf1-all"], None),
    (["v=spf2.0/pra -all"], None),
])
def test_select_record(texts, expected):
    assert select_record(texts) == expected


def test_select_record_refuses_two():
    with pytest.raises(SpfPermError):
        select_record(["v=spf1 -all", "v=SPF1 +all"])


# RFC 7208 section 7.4's own examples.
CTX4 = MacroContext(ipaddress.ip_address("192.0.2.3"), "strong-bad@email.example.com",
                    "mx.example.org")
CTX6 = MacroContext(ipaddress.ip_address("2001:db8::cb01"), "strong-bad@email.example.com",
                    "mx.example.org")


@pytest.mark.parametrize("ctx,spec,expanded", [
    (CTX4, "%{s}", "strong-bad@email.example.com"),
    (CTX4, "%{o}", "email.example.com"),
    (CTX4, "%{d}", "email.example.com"),
    (CTX4, "%{d4}", "email.example.com"),
    (CTX4, "%{d3}", "email.example.com"),
    (CTX4, "%{d2}", "example.com"),
    (CTX4, "%{d1}", "com"),
    (CTX4, "%{dr}", "com.example.email"),
    (CTX4, "%{d2r}", "example.email"),
    (CTX4, "%{l}", "strong-bad"),
    (CTX4, "%{l-}", "strong.bad"),
    (CTX4, "%{lr}", "strong-bad"),
    (CTX4, "%{lr-}", "bad.strong"),
    (CTX4, "%{l1r-}", "strong"),
    (CTX4, "%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
    (CTX4, "%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
    (CTX4, "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"),
    (CTX4, "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"),
    (CTX4, "%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"),
    (CTX6, "%{ir}.%{v}._spf.%{d2}",
     "1.0.B.C.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2.ip6._spf.example.com"),
    (CTX4, "%{h}-%{H}", "mx.example.org-mx.example.org"),
    (CTX4, "%%-%_-%-", "%- -%20"),
])
def test_macro_expansion(ctx, spec, expanded):
    assert expand(spec, ctx, "email.example.com") == expanded


def test_explanation_letters_are_refused_in_domain_specs():
    with pytest.raises(SpfPermError):
        expand("%{c}", CTX4, "email.example.com")
    assert expand("%{c} %{C}", CTX6, "x", letters="slodiphvcrt", spaces=True) == (
        "2001:db8::cb01 2001%3Adb8%3A%3Acb01")


async def test_an_smtputf8_senders_domain_is_checked_as_dns_has_it() -> None:
    # RFC 8616: the domain of a sender such as ré@exämple.org is looked up as A-labels.
    zone: Zone = {"xn--exmple-cua.org": [TXT("v=spf1 ip4:192.0.2.9 -all")]}
    dns = FakeDns(zone)
    got = await check_spf(dns, "192.0.2.9", "ré@exämple.org", "h.example.com")
    assert (got.result, got.domain) == ("pass", "xn--exmple-cua.org")
    assert dns.asked == [("xn--exmple-cua.org", "TXT")]
    wrong = await check_spf(FakeDns(zone), "192.0.2.10", "ré@EXÄMPLE.org", "h.example.com")
    assert wrong.result == "fail"
