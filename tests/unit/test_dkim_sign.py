"""DKIM signing of outgoing council mail (RFC 6376), checked with dkimpy's verifier."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path

import dkim
import pytest

from gateway.adapters.dkim_signing import (
    KeyError_,
    SigningKey,
    generate_key,
    header_list,
    load_private_key,
    sign,
    txt_record,
    write_private_key,
)
from gateway.assembly import BY_NAME, FILTERS, chain_names, parse_config
from gateway.config import ConfigError
from gateway.filters.dkim import DkimConfig, DkimFilter, signing_keys
from gateway.pipeline import Stage, apply_change
from gateway.verdicts import Action, Report
from tests.conftest import build_config
from tests.footer_support import config_text
from tests.policykit import build, check, context

DOMAIN = "stanion-pc.gov.uk"
MESSAGE = (b"From: Clerk <clerk@stanion-pc.gov.uk>\r\nTo: Resident <r@example.org>\r\n"
           b"Cc: chair@stanion-pc.gov.uk\r\nSubject: Hall booking\r\n"
           b"Date: Mon, 06 Jan 2025 10:00:00 +0000\r\nMessage-ID: <1@stanion-pc.gov.uk>\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n"
           b"Received: from client by gateway\r\n\r\n"
           b"The hall is booked.\r\n  Spaced   line.\r\n")


@pytest.fixture(scope="module")
def rsa_key() -> tuple[bytes, str]:
    return generate_key("rsa-sha256")


@pytest.fixture(scope="module")
def ed_key() -> tuple[bytes, str]:
    return generate_key("ed25519-sha256")


DnsFunc = Callable[..., bytes | None]  # dkimpy's dnsfunc(name, timeout=5)


def dns_for(records: dict[str, str]) -> DnsFunc:
    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        value = records.get(name.decode().rstrip("."))
        return value.encode() if value else None
    return dnsfunc


def rsa_dns(rsa_key: tuple[bytes, str], selector: str = "gateway") -> DnsFunc:
    return dns_for({f"{selector}._domainkey.{DOMAIN}": txt_record("rsa-sha256", rsa_key[1])})


@pytest.mark.parametrize("names,expected", [
    # Absent fields are not named: a next hop may add the Date: or Message-ID: a client left out.
    (["from", "to", "subject"], ["from", "from", "subject", "subject", "to", "to"]),
    (["From", "To", "To", "Received", "List-Id"], ["from", "from", "to", "to", "to", "list-id"]),
    (["from", "date", "message-id", "mime-version"],
     ["from", "from", "date", "date", "message-id", "message-id", "mime-version",
      "mime-version"]),
])
def test_header_list_signs_what_is_there_and_oversigns_singletons(
        names: list[str], expected: list[str]) -> None:
    assert header_list(names) == expected


def test_rsa_signature_verifies_with_dkimpy(rsa_key: tuple[bytes, str]) -> None:
    header = sign(MESSAGE, [SigningKey(DOMAIN, "gateway", "rsa-sha256", rsa_key[0])])
    assert header.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;")
    assert header.endswith(b"\r\n") and b"\r\n " in header
    assert max(len(line) for line in header.split(b"\r\n")) <= 78 + 2
    signed = header + MESSAGE
    assert dkim.verify(signed, dnsfunc=rsa_dns(rsa_key))
    d = dkim.DKIM(signed)
    assert d.verify(dnsfunc=rsa_dns(rsa_key))
    h = d.signature_fields[b"h"].replace(b" ", b"").split(b":")
    assert b"received" not in h and h.count(b"from") == 2 and h.count(b"subject") == 2


@pytest.mark.parametrize("change", [
    lambda m: b"From: Mallory <m@example.com>\r\n" + m,             # a second From on top
    lambda m: b"Subject: Pay this invoice\r\n" + m,                 # a second Subject
    lambda m: m.replace(b"The hall is booked.", b"The hall is free."),
    lambda m: m + b"Extra line added on the way.\r\n",
], ids=["added From", "added Subject", "changed body", "appended body"])
def test_changes_after_signing_break_the_signature(rsa_key: tuple[bytes, str],
                                                   change: Callable[[bytes], bytes]) -> None:
    header = sign(MESSAGE, [SigningKey(DOMAIN, "gateway", "rsa-sha256", rsa_key[0])])
    assert not dkim.verify(header + change(MESSAGE), dnsfunc=rsa_dns(rsa_key))


def test_relaxed_canonicalisation_survives_refolding_and_trailing_space(
        rsa_key: tuple[bytes, str]) -> None:
    header = sign(MESSAGE, [SigningKey(DOMAIN, "gateway", "rsa-sha256", rsa_key[0])])
    moved = (header + MESSAGE).replace(b"Subject: Hall booking", b"Subject:  Hall\r\n booking")
    assert dkim.verify(moved.replace(b"booked.\r\n", b"booked.   \r\n"), dnsfunc=rsa_dns(rsa_key))


def test_ed25519_second_signature_verifies_too(rsa_key: tuple[bytes, str],
                                               ed_key: tuple[bytes, str]) -> None:
    keys = [SigningKey(DOMAIN, "gateway", "rsa-sha256", rsa_key[0]),
            SigningKey(DOMAIN, "gateway-ed", "ed25519-sha256", ed_key[0].strip())]
    signed = sign(MESSAGE, keys) + MESSAGE
    dns = dns_for({f"gateway._domainkey.{DOMAIN}": txt_record("rsa-sha256", rsa_key[1]),
                   f"gateway-ed._domainkey.{DOMAIN}": txt_record("ed25519-sha256", ed_key[1])})
    d = dkim.DKIM(signed)
    assert d.verify(0, dnsfunc=dns) and d.signature_fields[b"a"] == b"rsa-sha256"
    assert d.verify(1, dnsfunc=dns) and d.signature_fields[b"a"] == b"ed25519-sha256"


def test_private_key_is_written_for_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "k.pem"
    write_private_key(path, b"secret")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        write_private_key(path, b"other")
    write_private_key(path, b"new", replace=True)
    assert path.read_bytes() == b"new" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(os.listdir(path.parent)) == ["k.pem"]


def test_key_loading_refuses_what_dkimpy_cannot_sign_with(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN RSA PRIVATE KEY-----\nbm90IGEga2V5\n-----END RSA PRIVATE KEY-----\n")
    with pytest.raises(KeyError_):
        load_private_key(bad)
    bad.write_text("c2hvcnQ=\n")
    with pytest.raises(KeyError_):
        load_private_key(bad, "ed25519-sha256")


# --------------------------------------------------------------------------- the filter

def _key_file(tmp_path: Path, rsa_key: tuple[bytes, str], name: str = "k.pem") -> Path:
    path = tmp_path / name
    write_private_key(path, rsa_key[0])
    return path


def test_the_very_last_step_of_the_outbound_side(tmp_path: Path) -> None:
    entry = BY_NAME["dkim"]
    assert entry.sides == ("outbound",) and entry.stage is Stage.FINISH
    assert FILTERS[-1] is entry
    config = build_config(tmp_path, {"outbound": {"filters": ["dkim", "footer", "trace",
                                                               "confidential"]}})
    assert chain_names(config, "outbound")[-1] == "dkim"  # over the final bytes


async def test_filter_signs_council_mail(tmp_path: Path, rsa_key: tuple[bytes, str]) -> None:
    key = _key_file(tmp_path, rsa_key)
    flt = build(parse_config(config_text(tmp_path, f"""
[dkim]
selector = "s2025"
private_key_file = "{key}"
""")), "dkim")
    checked = await check(flt, context(MESSAGE))
    change = checked.report.change
    # The signature on top of the exact bytes, nothing else moved (and no copy of them made).
    assert change is not None and change.new_bytes is None and not change.add_headers
    assert change.top.startswith(b"DKIM-Signature:")
    assert dkim.verify(apply_change(MESSAGE, change), dnsfunc=rsa_dns(rsa_key, "s2025"))
    assert checked.codes == ["dkim.signed"] and checked.action is Action.DELIVER
    assert checked.report.findings[0].text == f"DKIM-signed for d={DOMAIN} s=s2025"


def test_signing_keys_use_the_first_council_domain_unless_told(
        tmp_path: Path, rsa_key: tuple[bytes, str]) -> None:
    key = _key_file(tmp_path, rsa_key)
    cfg = DkimConfig(domain="", selector="gateway", private_key_file=key)
    domain, keys = signing_keys(cfg, (DOMAIN, "stanion.org.uk"))
    assert domain == DOMAIN
    assert [(k.domain, k.selector, k.algorithm) for k in keys] == [
        (DOMAIN, "gateway", "rsa-sha256")]
    other = DkimConfig(domain="mail.stanion.org.uk", selector="gateway", private_key_file=key)
    assert signing_keys(other, (DOMAIN,))[0] == "mail.stanion.org.uk"
    # The signing domain may sign its own From addresses too.
    assert "mail.stanion.org.uk" in DkimFilter.from_config(other, (DOMAIN,)).domains


@pytest.mark.parametrize("sender,signed", [
    (b"clerk@stanion-pc.gov.uk", True),
    (b"Chair <chair@STANION.org.uk>", True),           # another council domain
    (b"someone@gmail.com", False),
    (b"clerk@stanion-pc.gov.uk.evil.example", False),
    (b"clerk@stanion-pc.gov.uk, x@gmail.com", False),  # every From address must be the council's
])
async def test_filter_signs_only_mail_from_council_domains(
        tmp_path: Path, rsa_key: tuple[bytes, str], sender: bytes, signed: bool) -> None:
    flt = DkimFilter((SigningKey(DOMAIN, "gateway", "rsa-sha256", rsa_key[0]),),
                     frozenset({DOMAIN, "stanion.org.uk"}))
    data = MESSAGE.replace(b"Clerk <clerk@stanion-pc.gov.uk>", sender, 1)
    checked = await check(flt, context(data))
    assert (checked.report.change is not None) is signed
    assert checked.codes == (["dkim.signed"] if signed else ["dkim.not-signed"])
    assert checked.action is Action.DELIVER  # unsigned mail still goes


async def test_no_key_means_unsigned_and_one_log_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = parse_config(config_text(tmp_path))
    with caplog.at_level(logging.INFO, logger="gateway.filters.dkim"):
        flt = build(config, "dkim")
    assert [r.getMessage() for r in caplog.records if "not DKIM-signed" in r.getMessage()] \
        and len(caplog.records) == 1
    assert await flt.check(context(MESSAGE)) == Report()


@pytest.mark.parametrize("section,expected", [
    ('private_key_file = "/nonexistent.pem"',
     'dkim.private_key_file: the file "/nonexistent.pem" does not exist (make a key with: '
     "council-gateway dkim-keygen)"),
    ('selector = "bad selector!"',
     'dkim.selector: "bad selector!" is not a DKIM selector; use letters, digits and hyphens, '
     'e.g. "gateway"'),
    ('domain = "not a domain"', 'dkim.domain: "not a domain" is not a domain name'),
    ('ed25519_private_key_file = "{ed}"\ned25519_selector = "ed"',
     "dkim.ed25519_private_key_file: goes with an RSA key: set private_key_file too, as many "
     "receivers cannot check ed25519 yet"),
    ('private_key_file = "{open}"',
     'dkim.private_key_file: the private key "{open}" can be read by other users of this '
     "machine; make it private with: chmod 600 {open}"),
])
def test_dkim_config_problems(tmp_path: Path, rsa_key: tuple[bytes, str],
                              ed_key: tuple[bytes, str], section: str, expected: str) -> None:
    ed = tmp_path / "ed.key"
    write_private_key(ed, ed_key[0])
    readable = tmp_path / "open.pem"
    readable.write_bytes(rsa_key[0])
    readable.chmod(0o644)
    fill = {"ed": ed, "open": readable}
    with pytest.raises(ConfigError) as err:
        parse_config(config_text(tmp_path, "\n[dkim]\n" + section.format(**fill) + "\n"))
    problems = [f"{p.key}: {p.message}" for p in err.value.problems]
    assert expected.format(**fill) in problems
