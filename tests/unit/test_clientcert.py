"""Trusting a relaying client by its certificate name: the matching, and the config keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.config.core import parse_listener
from gateway.config.reader import Problem, Section
from gateway.smtp.clientcert import certificate_names, name_matches, trusted_certificate_name

M365 = "mail.protection.outlook.com"


@pytest.mark.parametrize(("on_cert", "listed", "match"), [
    (M365, M365, True),
    ("MAIL.Protection.Outlook.COM.", M365, True),  # case and a final dot do not matter
    ("*.protection.outlook.com", M365, True),  # one label
    ("*.outlook.com", M365, False),  # not two
    ("*.mail.protection.outlook.com", M365, False),  # not none
    ("*.com", "outlook.com", False),  # never a whole top-level domain
    ("mail.*.outlook.com", M365, False),  # only a leading wildcard
    ("*", M365, False),
    ("protection.outlook.com", M365, False),
    ("evilmail.protection.outlook.com", M365, False),
    ("mail.protection.outlook.com.evil.example", M365, False),
    ("", M365, False),
])
def test_name_matching(on_cert: str, listed: str, match: bool) -> None:
    assert name_matches(on_cert, listed) is match


def _cert(cn: str, *dns: str) -> dict[str, Any]:
    cert: dict[str, Any] = {"subject": ((("commonName", cn),),)}
    if dns:
        cert["subjectAltName"] = tuple(("DNS", d) for d in dns) + (("IP Address", "192.0.2.1"),)
    return cert


def test_names_come_from_the_san_and_the_cn_only_without_one() -> None:
    assert certificate_names(_cert(M365)) == (M365,)
    assert certificate_names(_cert(M365, "other.example")) == ("other.example",)
    assert trusted_certificate_name(_cert(M365, "other.example"), [M365]) is None
    assert trusted_certificate_name(_cert("x", "a.example", "*.protection.outlook.com"),
                                    ["smtp.example", M365]) == M365


@pytest.mark.parametrize("cert", [None, {}])
def test_an_absent_or_unverified_certificate_never_counts(cert: dict[str, Any] | None) -> None:
    assert certificate_names(cert) == ()
    assert trusted_certificate_name(cert, [M365]) is None


def _outbound(raw: dict[str, Any]) -> tuple[Any, list[Problem]]:
    problems: list[Problem] = []
    cfg = parse_listener(Section(raw, "outbound", problems), "outbound", ["trace"])
    return cfg, problems


def test_config_keys(tmp_path: Path) -> None:
    cfg, problems = _outbound({})
    assert (cfg.trusted_client_certificates, cfg.client_ca_file, problems) == ((), None, [])
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate")
    cfg, problems = _outbound({"trusted_client_certificates": ["Mail.Protection.Outlook.com",
                                                               "*.google.com", "not a name"],
                               "client_ca_file": str(ca)})
    assert cfg.trusted_client_certificates == (M365,)
    said = {p.key: p.message for p in problems}
    assert set(said) == {"outbound.trusted_client_certificates[1]",
                         "outbound.trusted_client_certificates[2]", "outbound.client_ca_file"}
    assert "exact name" in said["outbound.trusted_client_certificates[1]"]
    assert "PEM" in said["outbound.client_ca_file"]
    _, problems = _outbound({"client_ca_file": str(tmp_path / "missing.pem")})
    assert "does not exist" in problems[0].message


def test_the_inbound_side_has_no_such_keys() -> None:
    problems: list[Problem] = []
    parse_listener(Section({"trusted_client_certificates": [M365]}, "inbound", problems),
                   "inbound", ["trace"])
    assert [p.key for p in problems] == ["inbound.trusted_client_certificates"]
