"""``council-gateway doctor`` as the IT volunteer runs it, as its own process: the exit status
(0 with warnings only, 1 with a problem, 2 for a config problem), the JSON list and the text;
and ``check-config`` refusing a certificate whose key does not match, naming both files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from gateway.adapters.dkim_signing import generate_key, txt_record, write_private_key
from tests.certkit import TestCa
from tests.conftest import write_config
from tests.fixtures_clamd import ClamdInstance, free_port
from tests.fixtures_dns import DnsServer

ROOT = Path(__file__).parents[2]
DOMAIN = "stanion-pc.gov.uk"
HOST = "gw.stanion-pc.gov.uk"
GW_IP = "192.0.2.25"


def _doctor(config: Path, *more: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", "doctor", *more, "--config",
                           str(config)], capture_output=True, text=True, cwd=ROOT, timeout=120)


def _healthy(tmp_path: Path, dns: DnsServer, clamd: ClamdInstance) -> dict[str, Any]:
    """A set-up with nothing wrong but the test clamd's test signatures (a warning)."""
    pem, public = generate_key("rsa-sha256")
    key = tmp_path / "dkim.key"
    write_private_key(key, pem)
    dns.add(DOMAIN, "MX", f"10 {HOST}.")
    dns.add(HOST, "A", GW_IP)
    dns.add(DOMAIN, "TXT", f"v=spf1 a:{HOST} -all")
    dns.add(f"gateway._domainkey.{DOMAIN}", "TXT", txt_record("rsa-sha256", public))
    dns.add(f"_dmarc.{DOMAIN}", "TXT", "v=DMARC1; p=quarantine")
    cert = TestCa(tmp_path).issue("gw", [HOST])
    return {
        "gateway": {"hostname": HOST},
        "dns": {"nameservers": [dns.address], "timeout": 1},
        "dkim": {"domain": DOMAIN, "private_key_file": str(key)},
        "tls": {"cert_file": str(cert.cert_file), "key_file": str(cert.key_file)},
        "clamav": {"address": clamd.address},
        "inbound": {"filters": ["antivirus", "trace"]},
    }


def test_warnings_only_is_exit_status_0_and_a_json_list(tmp_path: Path, dns_server: DnsServer,
                                                        clamd: ClamdInstance) -> None:
    done = _doctor(write_config(tmp_path, _healthy(tmp_path, dns_server, clamd)), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(done.stdout)
    assert isinstance(results, list)
    assert all(set(r) == {"check", "subject", "status", "sentence", "fix"} for r in results)
    statuses = {r["check"]: r["status"] for r in results}
    for check in ("dns.mx", "dns.spf", "dns.dkim", "dns.dmarc", "tls.key", "tls.expiry",
                  "tls.names", "clamd.ping", "next-hop.maildir", "listen.port"):
        assert statuses[check] == "ok", [r for r in results if r["check"] == check]
    assert statuses["clamd.signatures"] == "warning"  # the test clamd's test signatures
    assert statuses["tls.chain"] == "ok"
    assert "problem" not in statuses.values()


def test_a_problem_is_exit_status_1_and_the_text_says_what_to_do(
        tmp_path: Path, dns_server: DnsServer, clamd: ClamdInstance) -> None:
    config = _healthy(tmp_path, dns_server, clamd)
    closed = f"tcp://127.0.0.1:{free_port()}"
    config["clamav"] = {"address": closed}
    path = write_config(tmp_path, config)
    done = _doctor(path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.startswith(f"Checking the gateway's set-up ({path}):")
    assert f"  problem  clamd at {closed} does not answer" in done.stdout
    assert "Fix: Start clamd (scripts/start-clamd" in done.stdout
    assert done.stdout.splitlines()[-1].startswith("1 problem, ")
    as_json = json.loads(_doctor(path, "--json").stdout)
    assert [r["check"] for r in as_json if r["status"] == "problem"] == ["clamd.ping"]


def test_a_key_that_does_not_match_is_a_config_problem_naming_both_files(
        tmp_path: Path) -> None:
    ca = TestCa(tmp_path)
    one, other = ca.issue("one", [HOST]), ca.issue("other", [HOST])
    path = write_config(tmp_path, {"tls": {"cert_file": str(one.cert_file),
                                           "key_file": str(other.key_file)}})
    expected = (f'tls.key_file (line {_line(path, "key_file")}): the key "{other.key_file}" '
                f'does not match the certificate "{one.cert_file}"')
    check = subprocess.run([sys.executable, "-m", "gateway", "check-config", "--config",
                            str(path)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert check.returncode == 2
    assert expected in check.stderr
    done = _doctor(path, "--json")
    assert done.returncode == 2
    assert expected in done.stderr
    [only] = json.loads(done.stdout)
    assert only["check"] == "config" and only["status"] == "problem"
    assert only["subject"] == "tls.key_file" and str(one.cert_file) in only["sentence"]


def test_check_config_names_a_certificate_file_that_holds_no_certificate(
        tmp_path: Path) -> None:
    good = TestCa(tmp_path).issue("good", [HOST])
    path = write_config(tmp_path, {"tls": {"cert_file": str(good.key_file),
                                           "key_file": str(good.key_file)}})
    check = subprocess.run([sys.executable, "-m", "gateway", "check-config", "--config",
                            str(path)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert check.returncode == 2
    assert f'"{good.key_file}" holds no certificate in PEM form' in check.stderr


def _line(path: Path, key: str) -> int:
    lines = path.read_text().splitlines()
    start = lines.index("[tls]")
    return next(i for i, line in enumerate(lines[start:], start + 1)
                if line.startswith(f"{key} ="))
