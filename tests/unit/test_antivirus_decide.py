"""What each scan outcome means for the message (pure), and the [clamav] section's checks.

Stanion "Virus Protection" and Kirkham rules 2 and 14: everything is virus-checked; a scanner that
cannot answer never lets mail through unchecked unless the council chose on_error = "accept".
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.adapters.clamd import ClamdAddress, Outcome, ScanReply
from gateway.config import ConfigError
from gateway.filters.antivirus import ClamavConfig, decide
from gateway.verdicts import Modify, Quarantine, Reject, TempFail
from tests.conftest import build_config

DEFAULT = ClamavConfig()
EICAR = ScanReply(Outcome.INFECTED, "Eicar-Test-Signature")

CASES = [
    # (reply, direction, config, expected type, code, enhanced, words in the text)
    (EICAR, "inbound", DEFAULT, Reject, 554, "5.7.1",
     "Message rejected: the attachment invoice.zip contains Eicar-Test-Signature"),
    (EICAR, "outbound", DEFAULT, Reject, 554, "5.7.1", "contains Eicar-Test-Signature"),
    (EICAR, "outbound", ClamavConfig(inbound_action="quarantine"), Reject, 554, "5.7.1",
     "Eicar-Test-Signature"),
    (ScanReply(Outcome.TOO_BIG), "inbound", DEFAULT, Reject, 552, "5.3.4",
     "too big for the virus scanner"),
    (ScanReply(Outcome.TOO_BIG), "inbound", ClamavConfig(too_big="tempfail"), TempFail, 451,
     "4.3.4", "too big for the virus scanner"),
    (ScanReply(Outcome.LIMITS, "Heuristics.Limits.Exceeded.MaxRecursion"), "outbound", DEFAULT,
     Reject, 554, "5.7.1", "could not be fully virus-checked"),
    (ScanReply(Outcome.ERROR, detail="connection refused"), "inbound", DEFAULT, TempFail, 451,
     "4.7.1", "Virus scanner unavailable, try again later"),
    (ScanReply(Outcome.ERROR, detail="timed out"), "outbound", DEFAULT, TempFail, 451, "4.7.1",
     "Virus scanner unavailable"),
]


@pytest.mark.parametrize(("reply", "direction", "cfg", "kind", "code", "enhanced", "words"),
                         CASES)
def test_outcomes_map_to_replies(reply: ScanReply, direction: str, cfg: ClamavConfig,
                                 kind: type, code: int, enhanced: str, words: str) -> None:
    d = decide(reply, direction=direction, cfg=cfg, where="the attachment invoice.zip")
    assert isinstance(d.verdict, kind)
    assert isinstance(d.verdict, Reject | TempFail)
    assert (d.verdict.code, d.verdict.enhanced) == (code, enhanced)
    assert words in d.verdict.text
    assert d.verdict.findings  # the audit log records why


def test_clean_mail_gets_the_scanner_header() -> None:
    d = decide(ScanReply(Outcome.CLEAN), direction="inbound", cfg=DEFAULT,
               header_value="ClamAV 1.4.6/27500 2023-11-20")
    assert d.verdict == Modify(add_headers=(("X-Virus-Scanned", "ClamAV 1.4.6/27500 2023-11-20"),))
    assert not d.alert


def test_scanner_failure_with_on_error_accept_marks_the_message() -> None:
    d = decide(ScanReply(Outcome.ERROR, detail="refused"), direction="inbound",
               cfg=ClamavConfig(on_error="accept"))
    assert isinstance(d.verdict, Modify)
    assert d.verdict.add_headers == (("X-Virus-Scanned", "failed"),)
    assert d.verdict.findings[0].code == "scan-failed"


def test_inbound_virus_can_be_quarantined_and_is_still_reported() -> None:
    d = decide(EICAR, direction="inbound", cfg=ClamavConfig(inbound_action="quarantine"),
               where="the attachment invoice.zip")
    assert isinstance(d.verdict, Quarantine)
    assert d.verdict.reasons == ("virus: the attachment invoice.zip contains "
                                 "Eicar-Test-Signature",)
    assert d.alert and "quarantine" in d.action


def test_a_virus_in_the_text_is_named_as_the_message() -> None:
    d = decide(EICAR, direction="inbound", cfg=DEFAULT)
    assert isinstance(d.verdict, Reject)
    assert d.verdict.text == "Message rejected: the message contains Eicar-Test-Signature"
    assert d.alert


def test_only_viruses_raise_an_alert() -> None:
    for reply in (ScanReply(Outcome.CLEAN), ScanReply(Outcome.TOO_BIG),
                  ScanReply(Outcome.ERROR, detail="x")):
        assert not decide(reply, direction="inbound", cfg=DEFAULT).alert


def test_non_ascii_file_names_do_not_break_the_reply_line() -> None:
    d = decide(EICAR, direction="outbound", cfg=DEFAULT, where="the attachment résumé.zip")
    assert isinstance(d.verdict, Reject)
    assert d.verdict.text.isascii() and "resume.zip" in d.verdict.text


# --------------------------------------------------------------------------- the [clamav] section

def _parse(tmp_path: Path, section: dict[str, object]) -> ClamavConfig:
    from gateway.config import section as read_section
    from gateway.filters.antivirus import parse_clamav

    return parse_clamav(read_section(build_config(tmp_path, {"clamav": section}), "clamav"))


def test_address_may_be_one_string_or_a_list(tmp_path: Path) -> None:
    one = _parse(tmp_path, {"address": "unix:/run/clamav/clamd.ctl"})
    assert one.addresses == (ClamdAddress("unix", path="/run/clamav/clamd.ctl"),)
    two = _parse(tmp_path, {"address": ["tcp://127.0.0.1:3310", "tcp://127.0.0.1:3311"],
                            "timeout": 5, "on_error": "accept", "too_big": "tempfail",
                            "inbound_action": "quarantine",
                            "alert_to": ["clerk@stanion-pc.gov.uk", "chair@stanion-pc.gov.uk"]})
    assert [a.port for a in two.addresses] == [3310, 3311]
    assert (two.timeout, two.on_error, two.too_big, two.inbound_action) == (
        5.0, "accept", "tempfail", "quarantine")
    assert len(two.alert_to) == 2


def test_defaults_fail_closed(tmp_path: Path) -> None:
    cfg = _parse(tmp_path, {})
    assert cfg == ClamavConfig()
    assert cfg.on_error == "tempfail" and str(cfg.addresses[0]) == "tcp://127.0.0.1:3310"


@pytest.mark.parametrize(("section", "problem"), [
    ({"address": "clamd"}, 'clamav.address[0] (line'),
    ({"address": []}, "clamav.address"),
    ({"timeout": -3}, "clamav.timeout (line"),
    ({"on_error": "ignore"}, 'clamav.on_error (line'),
    ({"too_big": "accept"}, "clamav.too_big"),
    ({"inbound_action": "delete"}, "clamav.inbound_action"),
    ({"alert_to": ["clerk"]}, "clamav.alert_to[0]"),
    ({"adress": "tcp://127.0.0.1:3310"}, 'did you mean "address"'),
])
def test_config_problems_are_reported_with_key_and_line(tmp_path: Path, section: dict,
                                                        problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_config(tmp_path, {"clamav": section})
    assert problem in str(err.value)
