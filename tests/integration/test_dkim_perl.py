"""The gateway's DKIM signatures, checked by an independent implementation: Perl's Mail::DKIM,
with its DNS answered offline by Net::DNS::Resolver::Mock from a zone file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gateway.adapters.dkim_signing import SigningKey, generate_key, sign, txt_record, zone_line
from gateway.mime.footer import apply_footer
from tests.footer_support import FOOTERS
from tests.unit.test_footer_corpus import CORPUS

SCRIPT = Path(__file__).parent.parent / "tools" / "dkim_verify.pl"
DOMAIN = "stanion-pc.gov.uk"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[SigningKey], Path]:
    rsa_private, rsa_public = generate_key("rsa-sha256")
    ed_private, ed_public = generate_key("ed25519-sha256")
    zone = tmp_path_factory.mktemp("dns") / "zone"
    zone.write_text(
        zone_line("gateway", DOMAIN, txt_record("rsa-sha256", rsa_public)) + "\n"
        + zone_line("gateway-ed", DOMAIN, txt_record("ed25519-sha256", ed_public)) + "\n")
    return [SigningKey(DOMAIN, "gateway", "rsa-sha256", rsa_private),
            SigningKey(DOMAIN, "gateway-ed", "ed25519-sha256", ed_private.strip())], zone


def perl_verify(tmp_path: Path, data: bytes, zone: Path) -> list[str]:
    message = tmp_path / "signed.eml"
    message.write_bytes(data)
    done = subprocess.run(["perl", str(SCRIPT), str(message), str(zone)],
                          capture_output=True, text=True, check=True)
    return done.stdout.splitlines()


@pytest.mark.parametrize("shape", ["plain iso-8859-1 8bit", "mixed with attachments",
                                   "html one 3000-character line", "format=flowed",
                                   "no MIME headers at all", "apple interleaved text and image"])
def test_mail_dkim_verifies_footered_and_signed_mail(
        tmp_path: Path, keys: tuple[list[SigningKey], Path], shape: str) -> None:
    signing, zone = keys
    data = apply_footer(CORPUS[shape](), FOOTERS["intl"]).data
    assert data is not None
    lines = perl_verify(tmp_path, sign(data, signing[:1]) + data, zone)
    assert lines == [f"pass {DOMAIN} gateway rsa-sha256 pass", "overall pass"]


def test_mail_dkim_sees_a_changed_message_fail(
        tmp_path: Path, keys: tuple[list[SigningKey], Path]) -> None:
    signing, zone = keys
    data = CORPUS["plain 7bit ascii"]()
    signed = sign(data, signing[:1]) + data
    lines = perl_verify(tmp_path, signed.replace(b"Monday", b"Friday"), zone)
    assert lines[0].startswith(f"fail {DOMAIN} gateway rsa-sha256")
    assert lines[-1] == "overall fail"


def test_rsa_passes_beside_an_ed25519_signature(
        tmp_path: Path, keys: tuple[list[SigningKey], Path]) -> None:
    # Debian 12's Mail::DKIM does not know ed25519 (RFC 8463): it must still pass the RSA one.
    signing, zone = keys
    data = CORPUS["alternative"]()
    lines = perl_verify(tmp_path, sign(data, signing) + data, zone)
    assert f"pass {DOMAIN} gateway rsa-sha256 pass" in lines
    assert lines[-1] == "overall pass"
