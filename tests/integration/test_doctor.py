"""``council-gateway doctor``'s checks against real things: the loopback DNS server with good,
missing and mismatched records, certificates made for the test, a real clamd and a closed port,
a real Postfix with STARTTLS as next hop and ports where nothing (or nothing useful) answers,
listen ports in use by a running gateway or by another program."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from gateway.adapters.dkim_signing import generate_key, txt_record, write_private_key
from gateway.config import Config, TlsConfig
from gateway.doctor.results import Result, Status
from gateway.doctor.runner import diagnose
from gateway.doctor.tls import check_tls
from tests.certkit import TestCa
from tests.conftest import build_config as _build_config
from tests.conftest import running_gateway
from tests.fixtures_clamd import ClamdInstance, free_port
from tests.fixtures_dns import DnsServer, SilentDns
from tests.postfix import PostfixInstance

DOMAIN = "stanion-pc.gov.uk"
HOST = "gw.stanion-pc.gov.uk"
GW_IP = "192.0.2.25"


def build_config(tmp_path: Path, overrides: dict[str, Any] | None = None) -> Config:
    """The tests' config; DNS that is not under test fails fast (nothing answers on port 9)."""
    overrides = dict(overrides or {})
    overrides.setdefault("dns", {"nameservers": ["127.0.0.1:9"], "timeout": 0.1})
    return _build_config(tmp_path, overrides)


def _of(results: list[Result], check: str) -> list[Result]:
    return [r for r in results if r.check == check]


def _one(results: list[Result], check: str) -> Result:
    found = _of(results, check)
    assert len(found) == 1, (check, found)
    return found[0]


def _dkim_key(tmp_path: Path, name: str = "dkim.key") -> tuple[Path, str]:
    pem, public = generate_key("rsa-sha256")
    path = tmp_path / name
    write_private_key(path, pem)
    return path, txt_record("rsa-sha256", public)


def _dns_config(tmp_path: Path, server: DnsServer | SilentDns, key: Path | None = None,
                **doctor: Any) -> Config:
    return build_config(tmp_path, {
        "dns": {"nameservers": [server.address], "timeout": 0.5},
        "dkim": {"domain": DOMAIN, "selector": "gw2026",
                 "private_key_file": str(key) if key else ""},
        "doctor": doctor,
    })


def _publish_good(server: DnsServer, dkim_txt: str) -> None:
    server.add(DOMAIN, "MX", f"10 {HOST}.")
    server.add(HOST, "A", GW_IP)
    server.add(DOMAIN, "TXT", f"v=spf1 ip4:{GW_IP} -all")
    server.add(DOMAIN, "TXT", "google-site-verification=abc")  # not SPF: ignored
    server.add(f"gw2026._domainkey.{DOMAIN}", "TXT", dkim_txt)
    server.add(f"_dmarc.{DOMAIN}", "TXT", f"v=DMARC1; p=reject; rua=mailto:dmarc@{DOMAIN}")


# --------------------------------------------------------------------------- DNS

async def test_good_dns_records_are_all_ok(tmp_path: Path, dns_server: DnsServer) -> None:
    key, txt = _dkim_key(tmp_path)
    _publish_good(dns_server, txt)
    results = await diagnose(_dns_config(tmp_path, dns_server, key), deadline=5)
    dns = [r for r in results if r.area == "dns"]
    assert {r.check for r in dns} == {"dns.address", "dns.mx", "dns.spf", "dns.dkim",
                                      "dns.dmarc"}
    assert all(r.status is Status.OK for r in dns), dns
    assert f"resolves to {GW_IP}" in _one(results, "dns.address").sentence
    assert "is the gateway" in _one(results, "dns.mx").sentence
    assert f"allows the gateway's address {GW_IP}" in _one(results, "dns.spf").sentence
    assert "matches" in _one(results, "dns.dkim").sentence
    assert "p=reject" in _one(results, "dns.dmarc").sentence


async def test_missing_dns_records_are_problems_with_the_record_to_publish(
        tmp_path: Path, dns_server: DnsServer) -> None:
    key, txt = _dkim_key(tmp_path)
    results = await diagnose(_dns_config(tmp_path, dns_server, key), deadline=5)
    address = _one(results, "dns.address")
    assert address.status is Status.WARNING and "does not resolve" in address.sentence
    for check in ("dns.mx", "dns.spf", "dns.dkim", "dns.dmarc"):
        assert _one(results, check).status is Status.PROBLEM, _of(results, check)
    assert _one(results, "dns.mx").fix.endswith(f"{DOMAIN}. IN MX 10 {HOST}.")
    # The fix for DKIM is the zone line for the configured key itself.
    dkim_fix = _one(results, "dns.dkim").fix
    assert f"gw2026._domainkey.{DOMAIN}. IN TXT" in dkim_fix
    assert txt[:200] in dkim_fix.replace('" "', "")
    assert f"_dmarc.{DOMAIN}. IN TXT" in _one(results, "dns.dmarc").fix


async def test_mismatched_dns_records_are_named(tmp_path: Path, dns_server: DnsServer) -> None:
    key, _ = _dkim_key(tmp_path)
    _, other_txt = _dkim_key(tmp_path, "other.key")
    dns_server.add(DOMAIN, "MX", "10 mail.elsewhere.example.")
    dns_server.add("mail.elsewhere.example", "A", "198.51.100.9")
    dns_server.add(DOMAIN, "TXT", "v=spf1 ip4:198.51.100.9 -all")
    dns_server.add(f"gw2026._domainkey.{DOMAIN}", "TXT", other_txt)
    dns_server.add(f"_dmarc.{DOMAIN}", "TXT", "v=DMARC1; p=none")
    config = _dns_config(tmp_path, dns_server, key, public_address=GW_IP)
    results = await diagnose(config, deadline=5)
    assert "[doctor] public_address" in _one(results, "dns.address").sentence
    mx = _one(results, "dns.mx")
    assert mx.status is Status.PROBLEM and "mail.elsewhere.example" in mx.sentence
    assert "goes around the gateway" in mx.sentence
    spf = _one(results, "dns.spf")
    assert spf.status is Status.PROBLEM and "(fail)" in spf.sentence
    assert f"v=spf1 ip4:198.51.100.9 ip4:{GW_IP} -all" in spf.fix
    dkim = _one(results, "dns.dkim")
    assert dkim.status is Status.PROBLEM and str(key) in dkim.sentence
    dmarc = _one(results, "dns.dmarc")
    assert dmarc.status is Status.WARNING and "p=none" in dmarc.sentence


async def test_a_backup_mx_around_the_gateway_and_a_softfail_are_warnings(
        tmp_path: Path, dns_server: DnsServer) -> None:
    key, txt = _dkim_key(tmp_path)
    _publish_good(dns_server, txt)
    dns_server.add(DOMAIN, "MX", "20 backup.isp.example.")
    dns_server.add("backup.isp.example", "A", "198.51.100.20")
    dns_server.remove(DOMAIN)
    dns_server.add(DOMAIN, "MX", f"10 {HOST}.")
    dns_server.add(DOMAIN, "MX", "20 backup.isp.example.")
    dns_server.add(DOMAIN, "TXT", "v=spf1 ip4:198.51.100.20 ~all")
    results = await diagnose(_dns_config(tmp_path, dns_server, key), deadline=5)
    mx = _one(results, "dns.mx")
    assert mx.status is Status.WARNING and "backup.isp.example is not" in mx.sentence
    spf = _one(results, "dns.spf")
    assert spf.status is Status.WARNING and "softfail" in spf.sentence


async def test_outgoing_mail_through_a_smarthost_makes_an_spf_fail_a_warning(
        tmp_path: Path, dns_server: DnsServer) -> None:
    dns_server.add(DOMAIN, "TXT", "v=spf1 include:smarthost.example -all")
    dns_server.add("smarthost.example", "TXT", "v=spf1 ip4:198.51.100.0/24 -all")
    config = build_config(tmp_path, {
        "dns": {"nameservers": [dns_server.address], "timeout": 0.5},
        "outbound": {"deliver_to": f"smtp://127.0.0.1:{free_port()}"},
        "doctor": {"public_address": [GW_IP, "2001:db8::25"]},
    })
    spf = _one(await diagnose(config, deadline=5), "dns.spf")
    assert spf.status is Status.WARNING and "smarthost 127.0.0.1" in spf.sentence
    assert f"{GW_IP}, 2001:db8::25" in spf.sentence


async def test_dns_that_never_answers_is_a_problem_within_the_deadline(
        tmp_path: Path, silent_dns: SilentDns) -> None:
    key, _ = _dkim_key(tmp_path)
    config = _dns_config(tmp_path, silent_dns, key, public_address=GW_IP)
    started = time.monotonic()
    results = await diagnose(config, deadline=3)
    assert time.monotonic() - started < 8
    for check in ("dns.mx", "dns.spf", "dns.dkim", "dns.dmarc"):
        r = _one(results, check)
        assert r.status is Status.PROBLEM and "could not be" in r.sentence, r
        assert "[dns] nameservers" in r.fix or "dig" in r.fix


# --------------------------------------------------------------------------- TLS

@pytest.fixture
def ca(tmp_path: Path) -> TestCa:
    return TestCa(tmp_path)


def _tls(results: list[Result]) -> dict[str, Result]:
    found = {r.check: r for r in results if r.area == "tls"}
    assert len(found) == len([r for r in results if r.area == "tls"])
    return found


async def test_a_good_certificate_with_its_chain_is_ok(tmp_path: Path, ca: TestCa) -> None:
    good = ca.issue("good", [HOST, "mail.stanion-pc.gov.uk"])
    config = build_config(tmp_path, {"gateway": {"hostname": HOST},
                                     "tls": {"cert_file": str(good.cert_file),
                                             "key_file": str(good.key_file)}})
    tls = _tls(await diagnose(config, deadline=5))
    assert set(tls) == {"tls.files", "tls.key", "tls.expiry", "tls.names", "tls.chain"}
    assert all(r.status is Status.OK for r in tls.values()), tls
    assert "Council Test CA" in tls["tls.chain"].sentence


@pytest.mark.parametrize("issue,check,status,words", [
    (dict(days=-2, start_days=-30), "tls.expiry", Status.PROBLEM, "expired on"),
    (dict(days=10), "tls.expiry", Status.WARNING, "in 9 days"),
    (dict(start_days=2), "tls.expiry", Status.PROBLEM, "is not valid until"),
    (dict(names=["www.stanion-pc.gov.uk"]), "tls.names", Status.PROBLEM,
     "is for www.stanion-pc.gov.uk, not for the gateway's hostname"),
    (dict(names=["*.stanion-pc.gov.uk"]), "tls.names", Status.OK, f"is for {HOST}"),
    (dict(chain=False), "tls.chain", Status.WARNING, "is not in the file"),
    (dict(self_signed=True), "tls.chain", Status.WARNING, "is self-signed"),
], ids=["expired", "expiring", "not-yet-valid", "wrong-name", "wildcard", "no-chain",
        "self-signed"])
async def test_certificate_faults(tmp_path: Path, ca: TestCa, issue: dict[str, Any], check: str,
                                  status: Status, words: str) -> None:
    names = issue.pop("names", [HOST])
    cert = ca.issue("cert", names, **issue)
    config = build_config(tmp_path, {"gateway": {"hostname": HOST},
                                     "tls": {"cert_file": str(cert.cert_file),
                                             "key_file": str(cert.key_file)}})
    tls = _tls(await diagnose(config, deadline=5))
    assert tls[check].status is status, tls[check]
    assert words in tls[check].sentence
    if status is not Status.OK:
        assert tls[check].fix
    assert tls["tls.key"].status is Status.OK


def test_a_key_that_does_not_match_is_a_problem_naming_both_files(ca: TestCa) -> None:
    one, other = ca.issue("one", [HOST]), ca.issue("other", [HOST])
    results = check_tls(TlsConfig(one.cert_file, other.key_file), HOST,
                        datetime.now(timezone.utc))
    key = _one(results, "tls.key")
    assert key.status is Status.PROBLEM
    assert str(one.cert_file) in key.sentence and str(other.key_file) in key.sentence


def test_unreadable_and_passphrase_protected_files_are_problems(tmp_path: Path,
                                                                ca: TestCa) -> None:
    from cryptography.hazmat.primitives import serialization

    from gateway.doctor.tls import check_tls as check

    good = ca.issue("good", [HOST])
    now = datetime.now(timezone.utc)
    missing = check(TlsConfig(tmp_path / "gone.pem", good.key_file), HOST, now)
    assert [(r.check, r.status) for r in missing] == [("tls.files", Status.PROBLEM)]
    assert "cannot be read" in missing[0].sentence
    locked = tmp_path / "locked.key"
    key = serialization.load_pem_private_key(good.key_file.read_bytes(), None)
    locked.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret")))
    passphrase = check(TlsConfig(good.cert_file, locked), HOST, now)
    assert passphrase[0].status is Status.PROBLEM and "passphrase" in passphrase[0].sentence


# --------------------------------------------------------------------------- clamd

def _clamd_config(tmp_path: Path, *addresses: str) -> Config:
    return build_config(tmp_path, {"clamav": {"address": list(addresses)},
                                   "inbound": {"filters": ["antivirus", "trace"]}})


async def test_a_real_clamd_answers_and_its_test_signatures_are_a_warning(
        tmp_path: Path, clamd: ClamdInstance) -> None:
    results = await diagnose(_clamd_config(tmp_path, clamd.address, clamd.unix_address),
                             deadline=10)
    pings = _of(results, "clamd.ping")
    assert [r.status for r in pings] == [Status.OK, Status.OK]
    assert "answers (ClamAV " in pings[0].sentence
    for r in _of(results, "clamd.signatures"):
        assert r.status is Status.WARNING and "ONLY TEST SIGNATURES" in r.sentence
        assert "freshclam" in r.fix


async def test_a_closed_clamd_port_is_a_problem_unless_another_clamd_answers(
        tmp_path: Path, clamd: ClamdInstance) -> None:
    closed = f"tcp://127.0.0.1:{free_port()}"
    alone = await diagnose(_clamd_config(tmp_path, closed), deadline=5)
    ping = _one(alone, "clamd.ping")
    assert ping.status is Status.PROBLEM and closed in ping.sentence
    assert "scripts/start-clamd" in ping.fix
    with_backup = await diagnose(_clamd_config(tmp_path, closed, clamd.address), deadline=10)
    assert [r.status for r in _of(with_backup, "clamd.ping")] == [Status.WARNING, Status.OK]


async def test_clamd_is_not_asked_when_no_side_runs_the_antivirus_filter(
        tmp_path: Path) -> None:
    results = await diagnose(build_config(tmp_path), deadline=5)
    assert [(r.check, r.status) for r in results if r.area == "clamd"] == [
        ("clamd.used", Status.WARNING)]


# --------------------------------------------------------------------------- next hops

@dataclass
class TlsPostfix:
    postfix: PostfixInstance
    ca: TestCa


@pytest.fixture(scope="module")
def tls_postfix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsPostfix]:
    """A real Postfix offering STARTTLS with a certificate for 127.0.0.1 from our own CA."""
    ca = TestCa(tmp_path_factory.mktemp("postfix-ca"))
    pf = PostfixInstance(mailboxes=["clerk"], relay_port=free_port())
    cert = ca.issue("postfix", ["localhost", "127.0.0.1"])
    with (pf.conf / "main.cf").open("a") as f:
        f.write(f"smtpd_tls_cert_file = {cert.cert_file}\n"
                f"smtpd_tls_key_file = {cert.key_file}\n"
                "smtpd_tls_security_level = may\n")
    with (pf.conf / "master.cf").open("a") as f:
        f.write("tlsmgr    unix  -       -       n       1000?   1       tlsmgr\n")
    try:
        pf.start()
        yield TlsPostfix(pf, ca)
    finally:
        try:
            pf.stop()
        finally:
            pf.remove()


def _hop_config(tmp_path: Path, deliver_to: str, **inbound: Any) -> Config:
    return build_config(tmp_path, {"inbound": {"deliver_to": deliver_to, **inbound}})


def _hop(results: list[Result]) -> dict[str, Result]:
    return {r.check: r for r in results
            if r.area == "next-hop" and r.subject.startswith("inbound")}


async def test_postfix_with_starttls_and_a_certificate_from_the_configured_ca_is_ok(
        tmp_path: Path, tls_postfix: TlsPostfix) -> None:
    url = f"smtp+starttls://127.0.0.1:{tls_postfix.postfix.port}"
    config = _hop_config(tmp_path, url, deliver_ca_file=str(tls_postfix.ca.ca_file))
    hop = _hop(await diagnose(config, deadline=10))
    assert set(hop) == {"next-hop.reach", "next-hop.tls", "next-hop.certificate",
                        "next-hop.extensions"}
    assert all(r.status is Status.OK for r in hop.values()), hop
    assert "220 mail.stanion-pc.gov.uk ESMTP" in hop["next-hop.reach"].sentence
    assert "issued by Council Test CA" in hop["next-hop.certificate"].sentence
    assert f'deliver_ca_file "{tls_postfix.ca.ca_file}"' in hop["next-hop.certificate"].sentence
    extensions = hop["next-hop.extensions"].sentence
    assert "SIZE 10240000" in extensions and "DSN" in extensions and "SMTPUTF8" in extensions
    # With the outbound side's Maildir checked too, nothing in the config is a problem.
    outbound = [r for r in _of(await diagnose(config, deadline=10), "next-hop.maildir")]
    assert [r.status for r in outbound] == [Status.OK]


async def test_a_certificate_the_gateway_cannot_verify_is_a_problem_and_unverified_a_warning(
        tmp_path: Path, tls_postfix: TlsPostfix) -> None:
    url = f"smtp+starttls://127.0.0.1:{tls_postfix.postfix.port}"
    hop = _hop(await diagnose(_hop_config(tmp_path, url), deadline=10))
    assert hop["next-hop.tls"].status is Status.PROBLEM
    assert "certificate" in hop["next-hop.tls"].sentence
    assert "deliver_ca_file" in hop["next-hop.tls"].fix
    hop = _hop(await diagnose(_hop_config(tmp_path, url, deliver_tls_verify=False), deadline=10))
    assert hop["next-hop.tls"].status is Status.OK
    assert hop["next-hop.certificate"].status is Status.WARNING
    assert "deliver_tls_verify = false" in hop["next-hop.certificate"].sentence


async def test_a_ca_file_that_is_not_there_is_a_problem_naming_it(
        tmp_path: Path, tls_postfix: TlsPostfix) -> None:
    url = f"smtp+starttls://127.0.0.1:{tls_postfix.postfix.port}"
    gone = tmp_path / "no-such-ca.pem"
    hop = _hop(await diagnose(_hop_config(tmp_path, url, deliver_ca_file=str(gone)),
                              deadline=10))
    assert list(hop) == ["next-hop.tls"]
    assert hop["next-hop.tls"].status is Status.PROBLEM
    assert f'deliver_ca_file "{gone}" cannot be used' in hop["next-hop.tls"].sentence


async def test_plain_smtp_to_a_server_offering_starttls_is_a_warning(
        tmp_path: Path, tls_postfix: TlsPostfix) -> None:
    url = f"smtp://127.0.0.1:{tls_postfix.postfix.port}"
    hop = _hop(await diagnose(_hop_config(tmp_path, url), deadline=10))
    assert hop["next-hop.reach"].status is Status.OK
    assert hop["next-hop.tls"].status is Status.WARNING
    assert "smtp+starttls://127.0.0.1" in hop["next-hop.tls"].fix


async def test_starttls_asked_of_a_server_without_it_is_a_problem(
        tmp_path: Path, smtp_sink: Any) -> None:
    hop = _hop(await diagnose(_hop_config(
        tmp_path, f"smtp+starttls://127.0.0.1:{smtp_sink.port}"), deadline=10))
    assert hop["next-hop.reach"].status is Status.OK
    assert hop["next-hop.tls"].status is Status.PROBLEM
    assert "does not offer STARTTLS" in hop["next-hop.tls"].sentence
    assert await smtp_sink.settle() == 0  # the probe said QUIT and closed


async def test_a_closed_next_hop_port_is_a_problem(tmp_path: Path) -> None:
    hop = _hop(await diagnose(_hop_config(tmp_path, f"smtp://127.0.0.1:{free_port()}"),
                              deadline=5))
    assert list(hop) == ["next-hop.reach"]
    assert hop["next-hop.reach"].status is Status.PROBLEM
    assert "connection refused" in hop["next-hop.reach"].sentence


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that takes connections (the kernel's backlog) and never says a word."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


async def test_a_next_hop_that_never_greets_is_a_problem_within_the_deadline(
        tmp_path: Path, silent_port: int) -> None:
    started = time.monotonic()
    hop = _hop(await diagnose(_hop_config(tmp_path, f"smtp://127.0.0.1:{silent_port}"),
                              deadline=2))
    assert time.monotonic() - started < 5
    assert hop["next-hop.reach"].status is Status.PROBLEM
    assert "did not greet" in hop["next-hop.reach"].sentence


async def test_a_maildir_under_a_file_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "plain-file").write_text("not a folder")
    hop = _hop(await diagnose(_hop_config(tmp_path, f"maildir:{tmp_path / 'plain-file' / 'box'}"),
                              deadline=5))
    assert hop["next-hop.maildir"].status is Status.PROBLEM
    assert "is a file, not a folder" in hop["next-hop.maildir"].sentence


# --------------------------------------------------------------------------- this machine

@pytest.fixture
async def other_program() -> AsyncIterator[int]:
    """Something else listening and greeting, as a system Postfix on port 25 would."""
    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 mail.example ESMTP Postfix (Debian/GNU)\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(greet, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def test_listen_ports_free_taken_by_the_gateway_or_by_another_program(
        tmp_path: Path, other_program: int) -> None:
    inbound, outbound = free_port(), free_port()
    ports = {"inbound": {"listen": f"127.0.0.1:{inbound}"},
             "outbound": {"listen": f"127.0.0.1:{outbound}"}}
    free = _of(await diagnose(build_config(tmp_path, ports), deadline=5), "listen.port")
    assert [r.status for r in free] == [Status.OK, Status.OK]
    assert f"can listen on 127.0.0.1:{inbound}" in free[0].sentence
    config = build_config(tmp_path, ports)
    async with running_gateway(config):
        busy = _of(await diagnose(config, deadline=5), "listen.port")
    assert [r.status for r in busy] == [Status.OK, Status.OK]
    assert "in use by a running gateway" in busy[0].sentence
    assert "council-gateway" in busy[0].sentence  # its greeting
    assert "process " in busy[0].sentence  # and which process it is (this one)
    taken = _of(await diagnose(build_config(tmp_path, {
        "inbound": {"listen": f"127.0.0.1:{other_program}"}}), deadline=5), "listen.port")
    assert taken[0].status is Status.PROBLEM
    assert "in use by another program" in taken[0].sentence
    assert "Postfix (Debian/GNU)" in taken[0].sentence
    elsewhere = _of(await diagnose(build_config(tmp_path, {
        "inbound": {"listen": "192.0.2.1:2525"}}), deadline=5), "listen.port")
    assert elsewhere[0].status is Status.PROBLEM
    assert "not an address of this machine" in elsewhere[0].sentence


async def test_loose_permissions_are_warnings_with_the_chmod(tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text("")
    users.chmod(0o644)
    results = await diagnose(build_config(tmp_path), deadline=5)
    loose = _one(results, "files.permissions")
    assert loose.status is Status.WARNING and str(users) in loose.sentence
    assert loose.fix == f"Make it private: chmod 600 {users}"
    users.chmod(0o600)
    assert _one(await diagnose(build_config(tmp_path), deadline=5),
                "files.permissions").status is Status.OK


async def test_free_disk_space_is_reported_once_for_one_disk(tmp_path: Path) -> None:
    import shutil

    from gateway.doctor.machine import PROBLEM_FREE, WARN_FREE

    results = _of(await diagnose(build_config(tmp_path), deadline=5), "disk.free")
    assert len(results) == 1  # the quarantine and the audit log share tmp_path's disk
    assert "the quarantine and the audit log" in results[0].sentence
    free = shutil.disk_usage(tmp_path).free
    expected = (Status.PROBLEM if free < PROBLEM_FREE else
                Status.WARNING if free < WARN_FREE else Status.OK)
    assert results[0].status is expected


async def test_every_check_has_a_sentence_and_every_fault_a_fix(tmp_path: Path) -> None:
    """The whole run on a config where much is missing: nothing raises, all are explained."""
    config = build_config(tmp_path, {
        "clamav": {"address": f"tcp://127.0.0.1:{free_port()}"},
        "inbound": {"deliver_to": f"smtp://127.0.0.1:{free_port()}",
                    "filters": ["antivirus", "trace"]},
    })
    results = await diagnose(config, deadline=3, now=datetime.now(timezone.utc)
                             + timedelta(seconds=1))
    assert {r.area for r in results} == {"dns", "tls", "clamd", "next-hop", "listen", "files",
                                         "disk"}
    for r in results:
        assert r.sentence.endswith("."), r
        assert bool(r.fix) is (r.status is not Status.OK), r
