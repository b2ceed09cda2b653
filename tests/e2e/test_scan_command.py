"""``council-gateway scan`` through the console script, against the real clamd."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests import samples
from tests.conftest import write_config
from tests.fixtures_clamd import ClamdInstance, free_port


def _scan(config: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway", "scan", "--config", str(config),
                           *args], input=stdin, capture_output=True, timeout=60)


def test_scan_prints_each_verdict(clamd: ClamdInstance, tmp_path: Path) -> None:
    config = write_config(tmp_path, {"clamav": {"address": clamd.address}})
    virus = tmp_path / "invoice.eml"
    virus.write_bytes(samples.message(("invoice.zip", "application/zip",
                                       samples.zip_of({"invoice.txt": samples.EICAR}))))
    clean = tmp_path / "minutes.eml"
    clean.write_bytes(samples.message(("minutes.pdf", "application/pdf", samples.pdf())))
    result = _scan(config, str(virus), str(clean))
    out = result.stdout.decode()
    assert result.returncode == 1
    assert (f"{virus}: REFUSE (554 5.7.1 Message rejected: the attachment invoice.zip contains "
            "Eicar-Test-Signature)") in out
    assert f"{clean}: DELIVER" in out
    assert "X-Virus-Scanned: ClamAV" in out


def test_scan_reads_stdin_and_prints_json(clamd: ClamdInstance, tmp_path: Path) -> None:
    config = write_config(tmp_path, {"clamav": {"address": clamd.address}})
    msg = samples.message(("setup.exe", "application/octet-stream", b"@echo off\r\n"),
                          sender="cllr@stanion-pc.gov.uk", to="someone@example.org")
    result = _scan(config, "--json", "--direction", "outbound", "-", stdin=msg)
    report = json.loads(result.stdout)
    assert result.returncode == 1
    assert report["file"] == "(stdin)"
    assert report["verdict"] == "refuse"
    assert report["reply"].startswith("554 5.7.1 Message rejected: the attachment setup.exe")
    assert [f["name"] for f in report["filters"]] == ["antivirus", "attachments"]


def test_scan_says_when_the_scanner_is_unreachable(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"clamav": {"address": f"tcp://127.0.0.1:{free_port()}",
                                                "timeout": 2}})
    eml = tmp_path / "m.eml"
    eml.write_bytes(samples.message())
    result = _scan(config, str(eml))
    assert result.returncode == 3
    assert "451 4.7.1 Virus scanner unavailable, try again later" in result.stdout.decode()


def test_scan_reports_config_problems(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"clamav": {"address": "nowhere"}})
    result = _scan(config, "-", stdin=b"")
    assert result.returncode == 2
    assert b"clamav.address[0]" in result.stderr
