"""DMARC (RFC 7489) step by step: records, policy discovery, alignment, result, sp and pct.

DNS is a table of TXT answers behind the DnsLookup interface; the pct draw is handed in.
"""

from __future__ import annotations

import pytest

from gateway.authcheck import AuthResults, a_labels, header_value
from gateway.authcheck.dkim import DkimResult
from gateway.authcheck.dmarc import (
    DmarcRecord,
    DmarcResult,
    aligned,
    check_dmarc,
    discover,
    disposition,
    evaluate,
    org_domain,
    parse_record,
    requested_policy,
)
from gateway.authcheck.resolver import DnsTempError
from gateway.authcheck.spf import SpfResult

TIMEOUT = object()


class FakeTxt:
    """TXT answers by name; a name mapped to TIMEOUT times out."""

    def __init__(self, zone: dict[str, object]):
        self.zone = zone
        self.asked: list[str] = []

    async def query(self, name: str, rdtype: str) -> list[str]:
        assert rdtype == "TXT"
        return await self.txt(name)

    async def txt(self, name: str) -> list[str]:
        self.asked.append(name)
        answer = self.zone.get(name.lower(), [])
        if answer is TIMEOUT:
            raise DnsTempError(f"{name} timed out")
        assert isinstance(answer, list)
        return answer


class Draws:
    """A pct draw that returns the given values and counts its calls."""

    def __init__(self, *values: float):
        self.values = list(values)
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return self.values.pop(0)


# ---------------------------------------------------------------- records (6.3, 6.6.3)

@pytest.mark.parametrize("text,expected", [
    ("v=DMARC1; p=reject", DmarcRecord(p="reject")),
    ("v=DMARC1;p=quarantine;sp=none;adkim=s;aspf=s;pct=20",
     DmarcRecord("quarantine", "none", "s", "s", 20)),
    # tag names and policy values in any case, spaces around '=' and ';'
    ("V = DMARC1 ; P=Reject; SP=Quarantine; ADKIM=S", DmarcRecord("reject", "quarantine", "s")),
    ("v=DMARC1; p=none; rua=mailto:agg@example.com", DmarcRecord(p="none")),
    ("v=DMARC1; p=reject; fo=1; ri=3600; x-unknown=yes", DmarcRecord(p="reject")),
    # a bad optional tag falls back to its default
    ("v=DMARC1; p=reject; pct=101", DmarcRecord(p="reject")),
    ("v=DMARC1; p=reject; pct=-5", DmarcRecord(p="reject")),
    ("v=DMARC1; p=reject; pct=5.5", DmarcRecord(p="reject")),
    ("v=DMARC1; p=reject; pct=0", DmarcRecord(p="reject", pct=0)),
    ("v=DMARC1; p=reject; adkim=x; aspf=", DmarcRecord(p="reject")),
    # no valid p= or a bad sp=, but a valid rua=: as if p=none (6.6.3 step 6.1)
    ("v=DMARC1; rua=mailto:agg@example.com", DmarcRecord(p="none")),
    ("v=DMARC1; p=block; rua=mailto:a@example.com!10m", DmarcRecord(p="none")),
    ("v=DMARC1; p=reject; sp=bogus; rua=junk,mailto:a@example.com", DmarcRecord(p="none")),
    # ... and without one, not applied at all (6.6.3 step 6.2)
    ("v=DMARC1", DmarcRecord(problem="its DMARC record has no valid p= and no valid rua=")),
    ("v=DMARC1; p=reject; sp=bogus",
     DmarcRecord(problem="its DMARC record has an invalid sp= and no valid rua=")),
    # not DMARC records at all: the version tag comes first, its value exactly "DMARC1"
    ("v=dmarc1; p=reject", None),
    ("p=reject; v=DMARC1", None),
    ("v=DMARC10; p=reject", None),
    (" v=DMARC1; p=reject", None),
    ("v=spf1 -all", None),
])
def test_parse_record(text, expected):
    assert parse_record(text) == expected


# ---------------------------------------------------------------- the organisational domain (3.2)

@pytest.mark.parametrize("domain,org", [
    ("example.com", "example.com"),
    ("mail.example.com", "example.com"),
    ("Mail.Example.COM.", "example.com"),
    ("a.b.example.co.uk", "example.co.uk"),
    ("co.uk", "co.uk"),  # a public suffix is its own
    ("x.foo.blogspot.com", "foo.blogspot.com"),  # the list's private entries count
    ("a.b.kawasaki.jp", "a.b.kawasaki.jp"),  # *.kawasaki.jp is a suffix ...
    ("www.city.kawasaki.jp", "city.kawasaki.jp"),  # ... but !city.kawasaki.jp is not
])
def test_org_domain(domain, org):
    assert org_domain(domain) == org


# ---------------------------------------------------------------- discovery (6.6.3)

DISCOVERY = {
    "_dmarc.news.example.co.uk": ["v=DMARC1; p=quarantine"],
    "_dmarc.example.co.uk": ["v=DMARC1; p=reject; sp=none"],
    "_dmarc.shop.example.co.uk": ["google-site-verification=abc", "v=spf1 -all"],
    "_dmarc.two.example.co.uk": ["v=DMARC1; p=none", "v=DMARC1; p=reject"],
    "_dmarc.broken.example.co.uk": ["v=DMARC1; p=maybe"],
    "_dmarc.example.org": ["v=DMARC1; p=reject", "v=DMARC1; p=none"],
    "_dmarc.slow.example.net": TIMEOUT,
    "_dmarc.example.net": TIMEOUT,
    "_dmarc.co.uk": ["v=DMARC1; p=reject"],
}


@pytest.mark.parametrize("from_domain,record,policy_domain,reason,asked", [
    ("news.example.co.uk", DmarcRecord(p="quarantine"), "news.example.co.uk", "",
     ["_dmarc.news.example.co.uk"]),
    ("www.example.co.uk", DmarcRecord("reject", "none"), "example.co.uk", "",
     ["_dmarc.www.example.co.uk", "_dmarc.example.co.uk"]),
    # TXT records that are not DMARC are discarded before deciding to go on
    ("shop.example.co.uk", DmarcRecord("reject", "none"), "example.co.uk", "",
     ["_dmarc.shop.example.co.uk", "_dmarc.example.co.uk"]),
    # two records at the From domain end discovery: no going on to the org domain
    ("two.example.co.uk", None, "two.example.co.uk",
     "_dmarc.two.example.co.uk publishes more than one DMARC record",
     ["_dmarc.two.example.co.uk"]),
    ("mail.example.org", None, "example.org",
     "_dmarc.example.org publishes more than one DMARC record",
     ["_dmarc.mail.example.org", "_dmarc.example.org"]),
    # a DMARC record that cannot be applied also ends it
    ("broken.example.co.uk", None, "broken.example.co.uk",
     "broken.example.co.uk: its DMARC record has no valid p= and no valid rua=",
     ["_dmarc.broken.example.co.uk"]),
    # the From domain is the organisational domain: one question only
    ("example.com", None, "", "", ["_dmarc.example.com"]),
    ("co.uk", DmarcRecord(p="reject"), "co.uk", "", ["_dmarc.co.uk"]),
])
async def test_discover(from_domain, record, policy_domain, reason, asked):
    dns = FakeTxt(DISCOVERY)
    found = await discover(dns, from_domain)
    assert (found.record, found.policy_domain, found.reason) == (record, policy_domain, reason)
    assert dns.asked == asked


@pytest.mark.parametrize("from_domain", ["slow.example.net", "mail.example.net"])
async def test_discover_passes_dns_trouble_on(from_domain):
    with pytest.raises(DnsTempError):
        await discover(FakeTxt(DISCOVERY), from_domain)


# ---------------------------------------------------------------- sp (6.3)

@pytest.mark.parametrize("record,from_domain,policy_domain,expected", [
    (DmarcRecord("reject", "none"), "news.example.com", "example.com", "none"),
    (DmarcRecord("none", "reject"), "news.example.com", "example.com", "reject"),
    (DmarcRecord("reject"), "news.example.com", "example.com", "reject"),  # no sp: p
    (DmarcRecord("reject", "none"), "example.com", "example.com", "reject"),  # not a subdomain
    # a subdomain with a record of its own: its p, whatever its sp says
    (DmarcRecord("quarantine", "reject"), "news.example.com", "news.example.com", "quarantine"),
    (DmarcRecord("reject", "none"), "News.Example.com.", "example.com", "none"),
])
def test_requested_policy(record, from_domain, policy_domain, expected):
    assert requested_policy(record, from_domain, policy_domain) == expected


# ---------------------------------------------------------------- pct (6.6.4)

@pytest.mark.parametrize("policy,pct,draws,expected,calls", [
    ("reject", 100, (), "reject", 0),
    ("reject", 0, (), "quarantine", 0),  # never sampled: the next milder policy
    ("quarantine", 0, (), "none", 0),
    ("none", 50, (), "none", 0),
    ("reject", 50, (0.49,), "reject", 1),
    ("reject", 50, (0.5,), "quarantine", 1),
    ("quarantine", 20, (0.1999,), "quarantine", 1),
    ("quarantine", 20, (0.2,), "none", 1),
    ("reject", 1, (0.0,), "reject", 1),
    ("reject", 1, (0.01,), "quarantine", 1),
    ("reject", 99, (0.999,), "quarantine", 1),
])
def test_disposition(policy, pct, draws, expected, calls):
    draw = Draws(*draws)
    assert disposition(policy, pct, draw) == expected
    assert draw.calls == calls


# ---------------------------------------------------------------- alignment (3.1)

@pytest.mark.parametrize("identity,from_domain,mode,expected", [
    ("example.com", "example.com", "s", True),
    ("Example.COM.", "example.com", "s", True),
    ("mail.example.com", "example.com", "s", False),
    ("mail.example.com", "example.com", "r", True),
    ("mail.example.com", "news.example.com", "r", True),
    ("example.co.uk", "other.co.uk", "r", False),  # same public suffix is not enough
    ("a.example.co.uk", "b.example.co.uk", "r", True),
    ("foo.blogspot.com", "bar.blogspot.com", "r", False),
    ("example.com", "example.net", "r", False),
    ("", "example.com", "r", False),
])
def test_aligned(identity, from_domain, mode, expected):
    assert aligned(identity, from_domain, mode) is expected


# ---------------------------------------------------------------- the result (4.2)

def spf(result: str, domain: str, identity: str = "mailfrom") -> SpfResult:
    return SpfResult(result, domain, identity)


def dkim(result: str, domain: str) -> DkimResult:
    return DkimResult(result, domain, "sel")


RELAXED = DmarcRecord(p="reject")
STRICT = DmarcRecord(p="reject", adkim="s", aspf="s")
FROM = "example.com"


@pytest.mark.parametrize("record,spf_result,dkim_results,expected", [
    (RELAXED, spf("pass", "example.com"), [], "pass"),
    (RELAXED, spf("pass", "bounces.example.com"), [], "pass"),
    (STRICT, spf("pass", "bounces.example.com"), [], "fail"),
    (RELAXED, spf("pass", "mailer.example.net"), [], "fail"),  # passes, but not aligned
    (RELAXED, spf("none", "x.example"), [dkim("pass", "mail.example.com")], "pass"),
    (STRICT, spf("none", "x.example"), [dkim("pass", "mail.example.com")], "fail"),
    (STRICT, spf("none", "x.example"), [dkim("pass", "mail.example.com"),
                                        dkim("pass", "example.com")], "pass"),
    (RELAXED, spf("fail", "example.com"), [dkim("fail", "example.com")], "fail"),
    (RELAXED, spf("softfail", "example.com"), [dkim("pass", "other.example")], "fail"),
    # a null sender: SPF checked postmaster@HELO, which is then the MAIL FROM identity
    (RELAXED, spf("pass", "mx.example.com", "helo"), [], "pass"),
    # an aligned check that met DNS trouble: not a forgery, try again later
    (RELAXED, spf("temperror", "example.com"), [], "temperror"),
    (RELAXED, spf("fail", "example.com"), [dkim("temperror", "example.com")], "temperror"),
    (RELAXED, spf("temperror", "example.com"), [dkim("pass", "example.com")], "pass"),
    # DNS trouble for a domain that could not align changes nothing
    (RELAXED, spf("temperror", "mailer.example.net"), [], "fail"),
])
def test_evaluate(record, spf_result, dkim_results, expected):
    assert evaluate(FROM, record, spf_result, dkim_results) == expected


# ---------------------------------------------------------------- all together

CHECK = {
    "_dmarc.bank.example": ["v=DMARC1; p=reject; sp=quarantine; pct=50; adkim=s"],
    "_dmarc.shop.example": ["v=DMARC1; p=quarantine"],
    "_dmarc.slow.example": TIMEOUT,
}
NOTHING = spf("none", "bounce.other.example")


@pytest.mark.parametrize("from_domain,spf_result,dkim_results,draws,expected", [
    # strict DKIM alignment: the signer's subdomain does not do
    ("bank.example", NOTHING, [dkim("pass", "mail.bank.example")], (0.1,),
     ("fail", "reject", "reject", "bank.example")),
    # ... and half the failures get the policy; the other half the next milder one
    ("bank.example", NOTHING, [dkim("pass", "mail.bank.example")], (0.7,),
     ("fail", "quarantine", "reject", "bank.example")),
    ("bank.example", NOTHING, [dkim("pass", "bank.example")], (),
     ("pass", "reject", "reject", "bank.example")),
    # a subdomain without a record of its own: sp, then pct
    ("news.bank.example", NOTHING, [], (0.2,),
     ("fail", "quarantine", "quarantine", "bank.example")),
    ("news.bank.example", NOTHING, [], (0.6,), ("fail", "none", "quarantine", "bank.example")),
    ("shop.example", spf("pass", "shop.example"), [], (), ("pass", "quarantine", "quarantine",
                                                             "shop.example")),
    ("nowhere.example", NOTHING, [], (), ("none", "none", "none", "")),
    ("slow.example", NOTHING, [], (), ("temperror", "none", "none", "")),
    ("shop.example", spf("temperror", "shop.example"), [], (),
     ("temperror", "none", "quarantine", "shop.example")),
])
async def test_check_dmarc(from_domain, spf_result, dkim_results, draws, expected):
    draw = Draws(*draws)
    got = await check_dmarc(FakeTxt(CHECK), from_domain, spf_result, dkim_results, draw=draw)
    assert (got.result, got.policy, got.requested, got.policy_domain) == expected
    assert got.domain == from_domain
    assert draw.calls == len(draws)


async def test_no_from_domain_is_a_permerror():
    got = await check_dmarc(FakeTxt({}), "", NOTHING, [])
    assert got.result == "permerror"


async def test_the_header_still_reads_as_before():
    dm = await check_dmarc(FakeTxt(CHECK), "news.bank.example", NOTHING, [], draw=Draws(0.2))
    value = header_value("mx.council.example", AuthResults(NOTHING, (), dm, "news.bank.example"))
    assert value.startswith("mx.council.example;")
    assert "dmarc=fail" in value and "header.from=news.bank.example" in value


async def test_a_domain_in_other_letters_is_written_as_dns_has_it() -> None:
    # The field is ASCII: "stan?on-pc.gov.uk" would tell a reader nothing.
    dm = await check_dmarc(FakeTxt({}), "stanіon-pc.gov.uk", NOTHING, [])
    value = header_value("mx.council.example", AuthResults(NOTHING, (), dm, "stanіon-pc.gov.uk"))
    assert value.isascii() and "?" not in value, value
    assert "header.from=xn--stanon-pc-y9h.gov.uk" in value
    # and in a reason, such as a look-up that timed out (the "_dmarc" label is left as it is)
    assert (a_labels("_dmarc.stanіon-pc.gov.uk TXT timed out; ré@exämple.org")
            == "_dmarc.xn--stanon-pc-y9h.gov.uk TXT timed out; ré@xn--exmple-cua.org")


@pytest.mark.parametrize("domain", ["bücher.example。de", "x" * 70 + "ü.de", "a\u200db.de",
                                    "😀.de", "[a;dkim=pass]", 'a"; spf=pass'])
def test_the_field_stays_ascii_and_one_result_a_check(domain: str) -> None:
    dm = DmarcResult("none", domain, "none", f"no record at _dmarc.{domain}")
    value = header_value("mx.council.example", AuthResults(NOTHING, (), dm, domain))
    assert value.isascii(), value
    results = [r.strip().split("=")[0] for r in value.split(";")[1:]]
    assert results == ["spf", "dkim", "dmarc"], value
