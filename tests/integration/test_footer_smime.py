"""Signed mail keeps a valid signature after the footer is added (Kirkham rule 11 without
breaking S/MIME): real signatures made and checked by the openssl command."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from gateway.mime.footer import add_footer, apply_footer
from tests.footer_support import FOOTERS, crlf, parse, text_of

F = FOOTERS["intl"]

CONTENT = (
    "Content-Type: multipart/mixed; boundary=\"inner\"\n\n"
    "--inner\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
    "Signed minutes attached.\n  Trailing spaces stay.   \n"
    "--inner\nContent-Type: application/pdf; name=minutes.pdf\n"
    "Content-Disposition: attachment; filename=minutes.pdf\nContent-Transfer-Encoding: base64\n\n"
    "JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSL0ZpbHRlci9GbGF0ZURlY29kZT4+\n"
    "--inner--\n"
)


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("smime")
    key, cert = d / "key.pem", d / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=Clerk/emailAddress=clerk@stanion-pc.gov.uk",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return key, cert


def smime_sign(tmp_path: Path, signer: tuple[Path, Path], *, opaque: bool) -> bytes:
    key, cert = signer
    content = tmp_path / "content.eml"
    content.write_bytes(crlf(CONTENT.encode()))
    args = ["openssl", "smime", "-sign", "-in", str(content), "-signer", str(cert),
            "-inkey", str(key), "-from", "clerk@stanion-pc.gov.uk", "-to", "r@example.org",
            "-subject", "Signed minutes"]
    if opaque:
        args.append("-nodetach")
    return crlf(subprocess.run(args, check=True, capture_output=True).stdout)


def smime_verify(tmp_path: Path, data: bytes) -> subprocess.CompletedProcess[bytes]:
    path = tmp_path / "check.eml"
    path.write_bytes(data)
    return subprocess.run(["openssl", "smime", "-verify", "-noverify", "-in", str(path)],
                          capture_output=True)


def signed_part_of(wrapped: bytes) -> bytes:
    """The first part of the new multipart/mixed, exactly as it is in the bytes."""
    boundary = parse(wrapped).get_boundary()
    assert boundary is not None
    delimiter = b"--" + boundary.encode()
    first = wrapped.index(delimiter + b"\r\n") + len(delimiter) + 2
    end = wrapped.index(b"\r\n" + delimiter, first)
    return wrapped[first:end]


@pytest.mark.parametrize("opaque", [False, True], ids=["multipart/signed", "pkcs7-mime"])
def test_signed_message_still_verifies_after_the_footer(
        tmp_path: Path, signer: tuple[Path, Path], opaque: bool) -> None:
    signed = smime_sign(tmp_path, signer, opaque=opaque)
    assert smime_verify(tmp_path, signed).returncode == 0
    result = apply_footer(signed, F)
    assert result.outcome == "signed-wrapped" and result.data is not None
    out = result.data
    msg = parse(out)
    assert msg.get_content_type() == "multipart/mixed"
    parts = msg.get_payload()
    assert [p.get_content_type() for p in parts][1] == "text/plain"
    assert " ".join(text_of(parts[1]).split()) == F.text_norm
    inner = signed_part_of(out)
    check = smime_verify(tmp_path, inner)
    assert check.returncode == 0, check.stderr
    assert b"Verification successful" in check.stderr
    assert b"Trailing spaces stay.   " in check.stdout
    assert msg["Subject"] == "Signed minutes" and msg["From"] == "clerk@stanion-pc.gov.uk"
    assert add_footer(out, F.text, F.html) is None  # twice adds nothing


def test_the_check_would_catch_a_footer_put_inside_the_signed_part(
        tmp_path: Path, signer: tuple[Path, Path]) -> None:
    signed = smime_sign(tmp_path, signer, opaque=False)
    tampered = signed.replace(b"Signed minutes attached.", b"Signed minutes attached. " +
                              F.text.encode().split(b"\n")[0][:10])
    assert smime_verify(tmp_path, tampered).returncode != 0


@pytest.mark.parametrize("policy,outcome", [("skip", "signed-skipped"),
                                            ("reject", "signed-rejected")])
def test_signed_policy_skip_and_reject_leave_the_message_alone(
        tmp_path: Path, signer: tuple[Path, Path], policy: str, outcome: str) -> None:
    signed = smime_sign(tmp_path, signer, opaque=False)
    result = apply_footer(signed, F, policy)
    assert result.outcome == outcome and result.data is None


def test_a_signed_message_inside_a_mixed_message_is_not_touched(
        tmp_path: Path, signer: tuple[Path, Path]) -> None:
    signed = smime_sign(tmp_path, signer, opaque=False)
    headers, _, body = signed.partition(b"\r\n\r\n")
    ctype = re.search(rb"(?im)^Content-Type:.*(?:\r\n[ \t].*)*", headers)
    assert ctype is not None
    outer = (b"From: clerk@stanion-pc.gov.uk\r\nSubject: fwd\r\nMIME-Version: 1.0\r\n"
             b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\n"
             + ctype.group(0) + b"\r\n\r\n" + body + b"\r\n--outer--\r\n")
    out = add_footer(outer, F.text, F.html)
    assert out is not None
    assert ctype.group(0) + b"\r\n\r\n" + body in out
    parts = parse(out).get_payload()
    assert [p.get_content_type() for p in parts] == ["multipart/signed", "text/plain"]
