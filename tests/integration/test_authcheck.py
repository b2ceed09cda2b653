"""SPF, DKIM and DMARC against a real DNS server on loopback (Kirkham rule 15: phishing)."""

from __future__ import annotations

import pytest

from gateway.authcheck import AuthResults, authenticate, header_value
from gateway.authcheck.dkim import verify_dkim
from gateway.authcheck.resolver import DnsConfig, Resolver, _nameserver
from gateway.authcheck.spf import check_spf
from tests.mailmaker import dkim_sign, dkim_txt, make_mail


def resolver(server, timeout: float = 1.0) -> Resolver:
    return Resolver(DnsConfig(nameservers=(_nameserver(server.address),), timeout=timeout))


SPF_CASES = [
    # (records, client ip, expected)
    ({"a.test": "v=spf1 ip4:192.0.2.0/24 -all"}, "192.0.2.7", "pass"),
    ({"a.test": "v=spf1 ip4:192.0.2.0/24 -all"}, "198.51.100.1", "fail"),
    ({"a.test": "v=spf1 ip4:192.0.2.0/24 ~all"}, "198.51.100.1", "softfail"),
    ({"a.test": "v=spf1 ?all"}, "198.51.100.1", "neutral"),
    ({"a.test": "v=spf1 ip6:2001:db8::/32 -all"}, "2001:db8::5", "pass"),
    ({"a.test": "v=spf1 include:b.test -all", "b.test": "v=spf1 ip4:192.0.2.9 -all"},
     "192.0.2.9", "pass"),
    ({"a.test": "v=spf1 include:b.test -all", "b.test": "v=spf1 ip4:192.0.2.9 -all"},
     "192.0.2.10", "fail"),
    ({"a.test": "v=spf1 redirect=b.test", "b.test": "v=spf1 ip4:192.0.2.9 -all"},
     "192.0.2.9", "pass"),
    ({"a.test": "v=spf1 a -all", "A a.test": "192.0.2.44"}, "192.0.2.44", "pass"),
    ({"a.test": "v=spf1 a:web.a.test/24 -all", "A web.a.test": "192.0.2.1"}, "192.0.2.200",
     "pass"),
    ({"a.test": "v=spf1 mx -all", "MX a.test": "10 mx1.a.test.", "A mx1.a.test": "192.0.2.25"},
     "192.0.2.25", "pass"),
    ({"a.test": "v=spf1 exists:%{i}.ok.a.test -all", "A 192.0.2.3.ok.a.test": "127.0.0.2"},
     "192.0.2.3", "pass"),
    ({"a.test": "v=spf1 exists:%{i}.ok.a.test -all"}, "192.0.2.4", "fail"),
    ({}, "192.0.2.1", "none"),
    ({"a.test": "v=spf1 ip4:192.0.2.1 -all", "a.test ": "v=spf1 -all"}, "192.0.2.1", "permerror"),
    ({"a.test": "v=spf1 frobnicate -all"}, "192.0.2.1", "permerror"),
    ({"a.test": "v=spf1 redirect=nothing.test"}, "192.0.2.1", "permerror"),
]


def publish(server, records: dict[str, str]) -> None:
    for key, value in records.items():
        rtype, _, name = key.strip().rpartition(" ")
        server.add(name, rtype or "TXT", value)


@pytest.mark.parametrize("records,ip,expected", SPF_CASES)
async def test_spf_results(dns_server, records, ip, expected):
    publish(dns_server, records)
    result = await check_spf(resolver(dns_server), ip, "someone@a.test", "mx.a.test")
    assert result.result == expected, result.reason
    assert result.domain == "a.test"


async def test_spf_ten_lookup_limit_is_permerror(dns_server):
    # a chain of 11 includes goes over the RFC 7208 limit of 10 DNS-querying terms
    for i in range(11):
        dns_server.add(f"l{i}.test", "TXT", f"v=spf1 include:l{i + 1}.test -all")
    dns_server.add("l11.test", "TXT", "v=spf1 +all")
    result = await check_spf(resolver(dns_server), "192.0.2.1", "x@l0.test", "h")
    assert result.result == "permerror"
    assert "10 DNS lookups" in result.reason


async def test_spf_void_lookup_limit(dns_server):
    dns_server.add("v.test", "TXT", "v=spf1 a:n1.v.test a:n2.v.test a:n3.v.test -all")
    result = await check_spf(resolver(dns_server), "192.0.2.1", "x@v.test", "h")
    assert result.result == "permerror"


async def test_spf_null_sender_checks_helo(dns_server):
    dns_server.add("mx.h.test", "TXT", "v=spf1 ip4:192.0.2.8 -all")
    result = await check_spf(resolver(dns_server), "192.0.2.8", "", "mx.h.test")
    assert (result.result, result.identity, result.domain) == ("pass", "helo", "mx.h.test")


async def test_spf_dns_timeout_is_temperror(silent_dns):
    result = await check_spf(resolver(silent_dns, 0.3), "192.0.2.8", "x@a.test", "h")
    assert result.result == "temperror"


async def test_dkim_pass_and_tampered_fail(dns_server):
    dns_server.add("sel._domainkey.signer.test", "TXT", dkim_txt())
    signed = dkim_sign(make_mail(from_="a@signer.test"), "signer.test")
    [ok] = await verify_dkim(resolver(dns_server), signed)
    assert (ok.result, ok.domain, ok.selector) == ("pass", "signer.test", "sel")
    tampered = signed.replace(b"pothole", b"puddle")
    [bad] = await verify_dkim(resolver(dns_server), tampered)
    assert bad.result == "fail"


async def test_dkim_missing_key_is_permerror_and_unsigned_is_empty(dns_server):
    signed = dkim_sign(make_mail(from_="a@signer.test"), "signer.test")
    [r] = await verify_dkim(resolver(dns_server), signed)
    assert r.result == "permerror"
    assert await verify_dkim(resolver(dns_server), make_mail()) == []


async def test_dkim_dns_timeout_is_temperror(silent_dns):
    signed = dkim_sign(make_mail(from_="a@signer.test"), "signer.test")
    [r] = await verify_dkim(resolver(silent_dns, 0.3), signed)
    assert r.result == "temperror"


async def auth(server, data: bytes, ip: str, mail_from: str, from_domain: str,
               wait: float = 1.0) -> AuthResults:
    return await authenticate(resolver(server, wait), data=data, client_ip=ip,
                              mail_from=mail_from, helo="mx.sender.test",
                              from_domain=from_domain, deadline=5)


async def test_dmarc_pass_through_aligned_dkim(dns_server):
    dns_server.add("sel._domainkey.mail.bank.test", "TXT", dkim_txt())
    dns_server.add("_dmarc.bank.test", "TXT", "v=DMARC1; p=reject")
    signed = dkim_sign(make_mail(from_="b@bank.test"), "mail.bank.test")
    r = await auth(dns_server, signed, "198.51.100.1", "bounce@other.test", "bank.test")
    assert r.dmarc.result == "pass"
    assert r.authentic()


async def test_dmarc_strict_alignment_rejects_subdomain(dns_server):
    dns_server.add("sel._domainkey.mail.bank.test", "TXT", dkim_txt())
    dns_server.add("_dmarc.bank.test", "TXT", "v=DMARC1; p=reject; adkim=s")
    signed = dkim_sign(make_mail(from_="b@bank.test"), "mail.bank.test")
    r = await auth(dns_server, signed, "198.51.100.1", "bounce@other.test", "bank.test")
    assert (r.dmarc.result, r.dmarc.policy) == ("fail", "reject")
    assert not r.authentic()
    assert any("DMARC policy of 'reject'" in f for f in r.failures())


async def test_dmarc_policy_of_org_domain_applies_to_subdomain(dns_server):
    dns_server.add("_dmarc.bank.test", "TXT", "v=DMARC1; p=none; sp=quarantine")
    r = await auth(dns_server, make_mail(), "198.51.100.1", "x@news.bank.test", "news.bank.test")
    assert (r.dmarc.result, r.dmarc.policy) == ("fail", "quarantine")


async def test_no_dmarc_but_aligned_spf_is_authentic(dns_server):
    dns_server.add("small.test", "TXT", "v=spf1 ip4:192.0.2.50 -all")
    r = await auth(dns_server, make_mail(), "192.0.2.50", "a@small.test", "small.test")
    assert r.dmarc.result == "none"
    assert r.authentic()
    r2 = await auth(dns_server, make_mail(), "192.0.2.51", "a@small.test", "small.test")
    assert not r2.authentic()
    assert r2.failures() == ["the sending server is not allowed to send mail for small.test "
                             "(SPF fail)"]


async def test_everything_times_out_quietly(silent_dns):
    r = await auth(silent_dns, dkim_sign(make_mail(), "x.test"), "192.0.2.1", "a@x.test",
                   "x.test", wait=0.3)
    assert r.spf.result == "temperror" and r.dmarc.result == "temperror"
    assert r.dns_trouble() and not r.authentic()
    value = header_value("mx.council.test", r)
    assert value.startswith("mx.council.test;")
    assert "spf=temperror" in value and "dmarc=temperror" in value


async def test_header_value_records_each_method(dns_server):
    dns_server.add("sel._domainkey.signer.test", "TXT", dkim_txt())
    dns_server.add("signer.test", "TXT", "v=spf1 ip4:192.0.2.1 -all")
    dns_server.add("_dmarc.signer.test", "TXT", "v=DMARC1; p=quarantine")
    signed = dkim_sign(make_mail(from_="a@signer.test"), "signer.test")
    r = await auth(dns_server, signed, "192.0.2.1", "a@signer.test", "signer.test")
    value = header_value("mx.council.test", r)
    assert "spf=pass smtp.mailfrom=signer.test" in value
    assert "dkim=pass header.d=signer.test header.s=sel" in value
    assert "dmarc=pass header.from=signer.test" in value
