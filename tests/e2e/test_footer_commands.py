"""The console script: ``council-gateway footer`` and ``council-gateway dkim-keygen``."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import dkim

from gateway.mime.footer import Footer
from tests.footer_support import config_text, parse, text_of

ROOT = Path(__file__).resolve().parent.parent.parent
SHIPPED = Footer((ROOT / "config" / "footer.txt").read_text())


def gateway(cwd: Path, *args: str,
            stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "gateway", *args], cwd=cwd, env=env,
                          input=stdin, capture_output=True, timeout=60)


MESSAGE = (b"From: Clerk <clerk@stanion-pc.gov.uk>\nTo: r@example.org\nSubject: Hall\n"
           b"MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\nBooked.\n")


def test_footer_command_prints_the_message_as_it_would_leave(tmp_path: Path) -> None:
    (tmp_path / "m.eml").write_bytes(MESSAGE)
    done = gateway(tmp_path, "footer", "m.eml")  # run away from the project: shipped footer
    assert done.returncode == 0, done.stderr
    assert b"footer: footer added" in done.stderr
    assert b"\r\n" not in done.stdout
    text = text_of(parse(done.stdout.replace(b"\n", b"\r\n")))
    assert text.startswith("Booked.\n\n") and " ".join(text.split()) .endswith(SHIPPED.text_norm)
    again = gateway(tmp_path, "footer", "-", stdin=done.stdout)
    assert b"already ends with the footer" in again.stderr and again.stdout == done.stdout


def test_footer_command_writes_exact_bytes_and_signs_with_dkim(tmp_path: Path) -> None:
    keygen = gateway(tmp_path, "dkim-keygen", "--selector", "s1", "--out", "k.pem", "--json")
    assert keygen.returncode == 0, keygen.stderr
    info = json.loads(keygen.stdout)
    (tmp_path / "gw.toml").write_text(config_text(tmp_path, f"""
[dkim]
selector = "s1"
private_key_file = "{tmp_path}/k.pem"
"""))
    (tmp_path / "m.eml").write_bytes(MESSAGE)
    done = gateway(tmp_path, "footer", "m.eml", "--dkim", "-c", "gw.toml", "-o", "out.eml")
    assert done.returncode == 0, done.stderr
    out = (tmp_path / "out.eml").read_bytes()
    assert out.startswith(b"DKIM-Signature:") and b"\r\n" in out

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return info["txt"].encode() if name.decode().rstrip(".") == info["dns_name"] else None

    assert dkim.verify(out, dnsfunc=dns)


def test_dkim_keygen_prints_the_dns_record_and_keeps_the_key_private(tmp_path: Path) -> None:
    done = gateway(tmp_path, "dkim-keygen", "--domain", "kirkham-tc.gov.uk")
    assert done.returncode == 0, done.stderr
    key = tmp_path / "config" / "dkim-gateway.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    out = done.stdout.decode()
    assert "gateway._domainkey.kirkham-tc.gov.uk" in out
    assert "v=DKIM1; k=rsa; p=MIIBIjAN" in out  # a 2048-bit RSA public key
    assert 'private_key_file = "config/dkim-gateway.key"' in out
    # Asked again, it does not destroy the key in use.
    again = gateway(tmp_path, "dkim-keygen", "--domain", "kirkham-tc.gov.uk")
    assert again.returncode == 1 and b"already exists" in again.stderr
    assert key.read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")


def test_dkim_keygen_ed25519(tmp_path: Path) -> None:
    done = gateway(tmp_path, "dkim-keygen", "--algorithm", "ed25519", "--selector", "ed",
                   "--json")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["txt"].startswith("v=DKIM1; k=ed25519; p=")
    assert info["domain"] == "stanion-pc.gov.uk"  # the shipped config's first council domain


def test_commands_have_help(tmp_path: Path) -> None:
    for command in ("footer", "dkim-keygen"):
        done = gateway(tmp_path, command, "--help")
        assert done.returncode == 0 and b"usage:" in done.stdout
