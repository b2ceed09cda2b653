"""The doctor's pure decisions, with tables: what DNS answers, clamd's VERSION, free space, a
bind error and an EHLO answer mean."""

from __future__ import annotations

import errno
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from gateway.adapters.clamd import ClamdVersion
from gateway.authcheck.dmarc import Discovery, DmarcRecord
from gateway.authcheck.spf import SpfResult
from gateway.commands.doctor import format_text
from gateway.config import ListenerConfig, NextHop
from gateway.doctor.domains import GatewayAddress, assess_dmarc, assess_mx, assess_spf
from gateway.doctor.hops import SmtpProbe, assess_smtp
from gateway.doctor.machine import assess_free, assess_listen
from gateway.doctor.results import Result, Status, exit_status, ok, problem, warning
from gateway.doctor.scanner import assess_clamd
from gateway.doctor.tls import name_matches

D = "stanion-pc.gov.uk"
GW = GatewayAddress(("192.0.2.25", "2001:db8::25"))
MIB = 1024 * 1024


@pytest.mark.parametrize("hosts,resolved,gateway,status,words", [
    ([], {}, GW, Status.PROBLEM, "publishes no MX record"),
    (["."], {}, GW, Status.PROBLEM, "null MX"),
    (["gw.example"], {"gw.example": ["192.0.2.25"]}, GW, Status.OK, "is the gateway"),
    # Addresses are compared as addresses, not as text.
    (["gw.example"], {"gw.example": ["2001:0db8:0:0::25"]}, GW, Status.OK, "is the gateway"),
    (["gw.example", "backup.example"], {"gw.example": ["192.0.2.25"],
                                        "backup.example": ["198.51.100.1"]}, GW,
     Status.WARNING, "backup.example is not"),
    (["gw.example", "gone.example"], {"gw.example": ["192.0.2.25"]}, GW, Status.WARNING,
     "gone.example (which does not resolve) is not"),
    (["isp.example"], {"isp.example": ["198.51.100.1"]}, GW, Status.PROBLEM,
     "goes around the gateway"),
    (["isp.example"], {}, GatewayAddress(), Status.OK, "is not known"),
])
def test_mx(hosts: list[str], resolved: dict[str, list[str]], gateway: GatewayAddress,
            status: Status, words: str) -> None:
    r = assess_mx(D, hosts, resolved, gateway, "gw.example")
    assert r.status is status and words in r.sentence, r
    assert (r.fix == "") is (status is Status.OK)


def _spf(result: str, reason: str = "") -> SpfResult:
    return SpfResult(result, D, "mailfrom", reason)


@pytest.mark.parametrize("results,smarthost,status,words", [
    ([("192.0.2.25", _spf("pass"))], "", Status.OK, "allows the gateway's address 192.0.2.25"),
    ([("192.0.2.25", _spf("fail"))], "", Status.PROBLEM, "(fail)"),
    ([("192.0.2.25", _spf("softfail"))], "", Status.WARNING, "(softfail)"),
    ([("192.0.2.25", _spf("neutral"))], "", Status.WARNING, "(neutral)"),
    ([("192.0.2.25", _spf("pass")), ("2001:db8::25", _spf("fail"))], "", Status.PROBLEM,
     "address 2001:db8::25 (fail)"),
    ([("192.0.2.25", _spf("fail"))], "smarthost.example", Status.WARNING,
     "leaves through the smarthost smarthost.example"),
    ([("192.0.2.25", _spf("permerror", "more than 10 DNS lookups"))], "", Status.PROBLEM,
     "permerror (more than 10 DNS lookups)"),
    ([], "", Status.OK, "is not known"),
])
def test_spf(results: list[tuple[str, SpfResult]], smarthost: str, status: Status,
             words: str) -> None:
    r = assess_spf(D, "v=spf1 mx -all", results, smarthost)
    assert r.status is status and words in r.sentence, r


def test_spf_fix_adds_the_gateway_before_all() -> None:
    r = assess_spf(D, "v=spf1 mx include:isp.example ~all",
                   [("192.0.2.25", _spf("softfail")), ("2001:db8::25", _spf("softfail"))])
    assert r.fix.endswith('"v=spf1 mx include:isp.example ip4:192.0.2.25 ip6:2001:db8::25 '
                          '~all"')


@pytest.mark.parametrize("found,status,words", [
    (Discovery(None), Status.PROBLEM, "publishes no DMARC record"),
    (Discovery(None, D, f"_dmarc.{D} publishes more than one DMARC record"), Status.PROBLEM,
     "more than one"),
    (Discovery(DmarcRecord(p="none"), D), Status.WARNING, "p=none"),
    (Discovery(DmarcRecord(p="quarantine"), D), Status.OK, "treat as junk"),
    (Discovery(DmarcRecord(p="reject", pct=50), D), Status.OK, "for 50% of failing mail"),
    # A subdomain takes sp= from its organisational domain's record.
    (Discovery(DmarcRecord(p="reject", sp="none"), D), Status.WARNING,
     f"(from {D}'s record)"),
])
def test_dmarc(found: Discovery, status: Status, words: str) -> None:
    domain = f"parish.{D}" if found.record and found.record.sp else D
    r = assess_dmarc(domain, found)
    assert r.status is status and words in r.sentence, r


@pytest.mark.parametrize("pattern,host,matches", [
    ("gw.example.org", "GW.example.org.", True),
    ("*.example.org", "gw.example.org", True),
    ("*.example.org", "example.org", False),
    ("*.example.org", "a.gw.example.org", False),
    ("*.org", "example.org", False),
    ("127.0.0.1", "127.0.0.1", True),
    ("other.example.org", "gw.example.org", False),
])
def test_certificate_names(pattern: str, host: str, matches: bool) -> None:
    assert name_matches(pattern, host) is matches


TODAY = date(2026, 11, 23)


@pytest.mark.parametrize("answered,version,others,statuses,words", [
    (False, None, False, [Status.PROBLEM], "does not answer"),
    (False, None, True, [Status.WARNING], "other clamd"),
    (True, None, False, [Status.OK, Status.WARNING], "did not say"),
    (True, ClamdVersion("1.4.3"), False, [Status.OK, Status.WARNING], "ONLY TEST SIGNATURES"),
    (True, ClamdVersion("1.4.3", "27831", date(2026, 11, 22)), False, [Status.OK, Status.OK],
     "up-to-date"),
    (True, ClamdVersion("1.4.3", "27831", date(2026, 11, 20)), False, [Status.OK, Status.OK],
     "up-to-date"),
    (True, ClamdVersion("1.4.3", "27800", date(2026, 11, 19)), False,
     [Status.OK, Status.WARNING], "4 days old"),
])
def test_clamd(answered: bool, version: ClamdVersion | None, others: bool,
               statuses: list[Status], words: str) -> None:
    results = assess_clamd("tcp://127.0.0.1:3310", answered, version, TODAY,
                           others_answer=others)
    assert [r.status for r in results] == statuses
    assert words in results[-1].sentence


@pytest.mark.parametrize("free,status", [
    (50 * MIB, Status.PROBLEM), (100 * MIB - 1, Status.PROBLEM), (100 * MIB, Status.WARNING),
    (1024 * MIB - 1, Status.WARNING), (1024 * MIB, Status.OK), (80 * 1024 * MIB, Status.OK),
])
def test_free_space(free: int, status: Status) -> None:
    assert assess_free("the quarantine", Path("quarantine"), free).status is status


@pytest.mark.parametrize("error,greeting,status,words", [
    (None, "", Status.OK, "can listen on 0.0.0.0:25"),
    (OSError(errno.EADDRINUSE, "in use"), "220 gw ESMTP council-gateway", Status.OK,
     "in use by a running gateway (process 7 (council-gateway run); it greets"),
    (OSError(errno.EADDRINUSE, "in use"), "220 mx ESMTP Postfix", Status.PROBLEM,
     "another program"),
    (OSError(errno.EACCES, "denied"), "", Status.PROBLEM, "CAP_NET_BIND_SERVICE"),
    (OSError(errno.EADDRNOTAVAIL, "no"), "", Status.PROBLEM, "not an address of this machine"),
])
def test_listen(error: OSError | None, greeting: str, status: Status, words: str) -> None:
    owner = "process 7 (council-gateway run)" if greeting else ""
    r = assess_listen("inbound", "0.0.0.0", 25, error, greeting, owner)
    assert r.status is status and words in r.sentence, r


def _listener(hop: NextHop, **kw: object) -> ListenerConfig:
    return ListenerConfig(listen=("127.0.0.1", 0), deliver_to=hop, filters=None,
                          **kw)  # type: ignore[arg-type]


NOW = datetime(2026, 11, 23, tzinfo=timezone.utc)


@pytest.mark.parametrize("tls,probe,user,checks", [
    ("none", SmtpProbe(error="connection refused"), "",
     {"next-hop.reach": Status.PROBLEM}),
    ("none", SmtpProbe(True, greeting="220 mx", extensions={"size": "", "smtputf8": ""}), "",
     {"next-hop.reach": Status.OK, "next-hop.tls": Status.OK,
      "next-hop.extensions": Status.OK}),
    ("none", SmtpProbe(True, greeting="220 mx", extensions={"dsn": ""}), "",
     {"next-hop.reach": Status.OK, "next-hop.tls": Status.OK,
      "next-hop.extensions": Status.WARNING}),
    ("starttls", SmtpProbe(True, greeting="220 mx", extensions={"smtputf8": ""}), "",
     {"next-hop.reach": Status.OK, "next-hop.tls": Status.PROBLEM}),
    ("starttls", SmtpProbe(True, greeting="220 mx", starttls_offered=True, encrypted=True,
                           extensions={"smtputf8": ""}), "relay-user",
     {"next-hop.reach": Status.OK, "next-hop.tls": Status.OK,
      "next-hop.extensions": Status.PROBLEM}),
    ("implicit", SmtpProbe(tls_error="certificate has expired"), "",
     {"next-hop.tls": Status.PROBLEM}),
])
def test_smtp_next_hop(tls: str, probe: SmtpProbe, user: str,
                       checks: dict[str, Status]) -> None:
    hop = NextHop("smtp", host="mx.example", port=25, tls=tls)
    listener = _listener(hop, deliver_user=user, deliver_password_file=Path("pw"))
    results = assess_smtp("inbound", hop, listener, probe, NOW, 10 * MIB)
    assert {r.check: r.status for r in results} == checks
    assert len(results) == len(checks)


def test_smtp_extensions_are_named() -> None:
    hop = NextHop("smtp", host="mx.example", port=25)
    probe = SmtpProbe(True, greeting="220 mx", extensions={"size": "5242880", "dsn": "",
                                                           "smtputf8": ""})
    [_, _, ext] = assess_smtp("inbound", hop, _listener(hop), probe, NOW, 10 * MIB)
    assert "offers SIZE 5242880, DSN, SMTPUTF8" in ext.sentence
    assert "the gateway offers its clients the smaller one" in ext.sentence


def test_exit_status_and_the_text_for_people() -> None:
    results = [ok("dns.mx", D, "The MX is the gateway."),
               warning("dns.dmarc", D, "The DMARC policy is p=none.", "Change it."),
               problem("clamd.ping", "tcp://x", "clamd does not answer.", "Start it.")]
    assert exit_status(results[:2]) == 0
    assert exit_status(results) == 1
    text = format_text(results, "gateway.toml")
    assert "DNS for the council's domains\n  ok       The MX is the gateway." in text
    assert "  problem  clamd does not answer.\n           Fix: Start it." in text
    assert text.endswith("1 problem, 1 warning, 1 ok.")
    assert Result("x.y", "s", Status.OK, "z").as_dict() == {
        "check": "x.y", "subject": "s", "status": "ok", "sentence": "z", "fix": ""}


@pytest.mark.parametrize("value,found,error", [
    ('"203.0.113.7"', ("203.0.113.7",), ""),
    ('["203.0.113.7", "2001:DB8::25", "203.0.113.7"]', ("203.0.113.7", "2001:db8::25"), ""),
    ('"mail.example"', (), 'doctor.public_address (line 4): "mail.example" is not an IP address'),
    ('["203.0.113.7", "x"]', (), 'doctor.public_address[1] (line 4): "x" is not an IP address'),
])
def test_the_doctor_section(value: str, found: tuple[str, ...], error: str) -> None:
    from gateway.assembly import parse_config
    from gateway.config import ConfigError
    from gateway.doctor.settings import DoctorConfig

    text = f'[gateway]\ncouncil_domains = ["{D}"]\n[doctor]\npublic_address = {value}\n'
    if error:
        with pytest.raises(ConfigError) as caught:
            parse_config(text)
        assert any(str(p).startswith(error) for p in caught.value.problems), caught.value
        return
    config = parse_config(text)
    assert tuple(str(a) for a in config.section(DoctorConfig).public_addresses) == found
