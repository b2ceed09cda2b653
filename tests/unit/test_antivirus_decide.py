"""What each scan outcome means for the message (pure), and the [clamav] section's checks.

``assess`` turns a scan reply into findings; the one policy decides over them, by default or as
the ``[policy]`` table says. Stanion "Virus Protection" and Kirkham rules 2 and 14: everything is
virus-checked; a scanner that cannot answer never lets mail through unchecked unless the council
chose to deliver it (``scan-failed = "deliver"``, formerly ``on_error = "accept"``).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from gateway.adapters.clamd import ClamdAddress, ClamdClient, ClamdVersion, Outcome, ScanReply
from gateway.assembly import KINDS, parse_config
from gateway.config import Config, ConfigError
from gateway.context import Envelope, MessageContext
from gateway.filters.antivirus import AntivirusFilter, ClamavConfig, assess
from gateway.policy import Policy, PolicyConfig, Side
from gateway.verdicts import Action, Change, Release, Report, SmtpCode
from tests import samples
from tests.conftest import build_config

BASE = '[gateway]\ncouncil_domains = ["stanion-pc.gov.uk"]\n'
EICAR = ScanReply(Outcome.INFECTED, "Eicar-Test-Signature")
INVOICE = "the attachment invoice.zip"
OLD_SPELLING = "is the old spelling (still read); in [policy] write: "


def config(text: str = "") -> Config:
    return parse_config(BASE + text, "test.toml")


def policy_of(cfg: Config) -> Policy:
    return Policy(KINDS, cfg.section(PolicyConfig))


def policy(table: str = "") -> Policy:
    """The policy with these lines in its [policy] table ("" for the defaults)."""
    return policy_of(config("[policy]\n" + table))


CASES = [
    # (reply, side, [policy] table, action, code, enhanced, words in the reply text)
    (EICAR, "inbound", "", Action.REFUSE, 554, "5.7.1",
     "Message rejected: the attachment invoice.zip contains Eicar-Test-Signature"),
    (EICAR, "outbound", "", Action.REFUSE, 554, "5.7.1", "contains Eicar-Test-Signature"),
    (EICAR, "outbound", 'virus = { inbound = "hold" }', Action.REFUSE, 554, "5.7.1",
     "Eicar-Test-Signature"),
    (ScanReply(Outcome.TOO_BIG), "inbound", "", Action.REFUSE, 552, "5.3.4",
     "too big for the virus scanner"),
    (ScanReply(Outcome.TOO_BIG), "inbound", 'unscannable = "tempfail"', Action.TEMPFAIL, 451,
     "4.3.4", "too big for the virus scanner"),
    (ScanReply(Outcome.LIMITS, "Heuristics.Limits.Exceeded.MaxRecursion"), "outbound", "",
     Action.REFUSE, 554, "5.7.1", "could not be fully virus-checked"),
    (ScanReply(Outcome.LIMITS, "Heuristics.Limits.Exceeded.MaxRecursion"), "inbound",
     'unscannable = "tempfail"', Action.TEMPFAIL, 451, "4.7.1",
     "could not be fully virus-checked"),
    (ScanReply(Outcome.ERROR, detail="connection refused"), "inbound", "", Action.TEMPFAIL, 451,
     "4.7.1", "Virus scanner unavailable, try again later"),
    (ScanReply(Outcome.ERROR, detail="timed out"), "outbound", "", Action.TEMPFAIL, 451,
     "4.7.1", "Virus scanner unavailable"),
]


@pytest.mark.parametrize(("reply", "side", "table", "action", "code", "enhanced", "words"),
                         CASES)
def test_outcomes_map_to_replies(reply: ScanReply, side: Side, table: str, action: Action,
                                 code: int, enhanced: str, words: str) -> None:
    report = assess(reply, where=INVOICE)
    decision = policy(table).decide(report.findings, side)
    assert decision.action is action
    assert decision.smtp == SmtpCode(code, enhanced)
    assert words in decision.text
    assert decision.because == report.findings  # the audit log records why


def test_a_reply_the_council_defers_says_so() -> None:
    report = assess(ScanReply(Outcome.TOO_BIG))
    decision = policy('unscannable = "tempfail"').decide(report.findings, "inbound")
    assert decision.text == ("Message not accepted for now: the message is too big for the virus "
                             "scanner; try again later")


def test_clean_mail_gets_the_scanner_header() -> None:
    report = assess(ScanReply(Outcome.CLEAN), header_value="ClamAV 1.4.6/27500 2023-11-20")
    assert report == Report(change=Change(add_headers=(("X-Virus-Scanned",
                                                        "ClamAV 1.4.6/27500 2023-11-20"),)))
    assert policy().decide(report.findings, "inbound").action is Action.DELIVER


def test_scanner_failure_the_council_delivers_is_marked() -> None:
    report = assess(ScanReply(Outcome.ERROR, detail="refused"))
    assert policy('scan-failed = "deliver"').decide(report.findings, "inbound").action \
        is Action.DELIVER
    assert report.change == Change(add_headers=(("X-Virus-Scanned", "failed"),))
    assert [f.code for f in report.findings] == ["scan-failed"]
    assert report.findings[0].text == "the virus scanner was unavailable: refused"


def test_inbound_virus_can_be_held_and_is_never_released() -> None:
    report = assess(EICAR, where=INVOICE)
    held = policy('virus = { inbound = "hold" }')
    decision = held.decide(report.findings, "inbound")
    assert decision.action is Action.HOLD
    assert decision.reasons == ("virus Eicar-Test-Signature in the attachment invoice.zip",)
    assert held.release_of(f.code for f in report.findings) is Release.NEVER


def test_a_virus_in_the_text_is_named_as_the_message() -> None:
    decision = policy().decide(assess(EICAR).findings, "inbound")
    assert decision.action is Action.REFUSE
    assert decision.text == "Message rejected: the message contains Eicar-Test-Signature"


def test_non_ascii_file_names_do_not_break_the_reply_line() -> None:
    report = assess(EICAR, where="the attachment résumé.zip")
    decision = policy().decide(report.findings, "outbound")
    assert decision.action is Action.REFUSE
    assert decision.text.isascii() and "resume.zip" in decision.text


# --------------------------------------------------------------------------- the alert

class ScriptedClamd(ClamdClient):
    """Answers every scan with one reply, without a socket."""

    def __init__(self, reply: ScanReply):
        super().__init__([ClamdAddress("tcp", host="127.0.0.1", port=3310)], 5)
        self.reply = reply

    async def scan(self, data: bytes | memoryview, *, budget: float | None = None) -> ScanReply:
        return self.reply

    async def version(self, address: str | None = None, *, wait: float = 5.0
                      ) -> ClamdVersion | None:
        return ClamdVersion("1.4.6", "27500", date(2023, 11, 20))


async def _check(reply: ScanReply, cfg: Config) -> Report:
    flt = AntivirusFilter(ClamavConfig(alert_to=("clerk@stanion-pc.gov.uk",)), cfg.gateway,
                          ScriptedClamd(reply))
    msg = samples.message(("invoice.zip", "application/zip", b"PK\x05\x06" + bytes(18)))
    ctx = MessageContext(id="m1", side="inbound",
                         envelope=Envelope("resident@example.org", ("clerk@stanion-pc.gov.uk",)),
                         data=msg)
    return await flt.check(ctx)


@pytest.mark.parametrize(("table", "words"), [
    ("", "refused the message; the sending server was told why"),
    ('virus = { inbound = "hold" }', "held the message in quarantine; nobody received it"),
    ('virus = "tempfail"', "turned the message away for now; nobody received it"),
])
async def test_a_virus_alert_says_what_the_policy_did(table: str, words: str) -> None:
    cfg = config("[policy]\n" + table)
    report = await _check(EICAR, cfg)
    action = policy_of(cfg).decide(report.findings, "inbound").action
    [alert] = report.notices
    assert alert.to == ("clerk@stanion-pc.gov.uk",)
    assert alert.subject == "Virus stopped: Eicar-Test-Signature"
    body = alert.for_action(action)
    assert body is not None and words in body
    assert "Virus:       Eicar-Test-Signature, in the attachment invoice.zip" in body


async def test_only_viruses_raise_an_alert() -> None:
    for reply in (ScanReply(Outcome.CLEAN), ScanReply(Outcome.TOO_BIG),
                  ScanReply(Outcome.LIMITS, "Heuristics.Limits.Exceeded"),
                  ScanReply(Outcome.ERROR, detail="x")):
        assert (await _check(reply, config())).notices == (), reply
    assert len((await _check(EICAR, config())).notices) == 1


# --------------------------------------------------------------------------- the [clamav] section

def _parse(tmp_path: Path, section: dict[str, object]) -> ClamavConfig:
    return build_config(tmp_path, {"clamav": section}).section(ClamavConfig)


def test_address_may_be_one_string_or_a_list(tmp_path: Path) -> None:
    one = _parse(tmp_path, {"address": "unix:/run/clamav/clamd.ctl"})
    assert one.addresses == (ClamdAddress("unix", path="/run/clamav/clamd.ctl"),)
    two = _parse(tmp_path, {"address": ["tcp://127.0.0.1:3310", "tcp://127.0.0.1:3311"],
                            "timeout": 5,
                            "alert_to": ["clerk@stanion-pc.gov.uk", "chair@stanion-pc.gov.uk"]})
    assert [a.port for a in two.addresses] == [3310, 3311]
    assert two.timeout == 5.0
    assert two.alert_to == ("clerk@stanion-pc.gov.uk", "chair@stanion-pc.gov.uk")


def test_defaults_fail_closed(tmp_path: Path) -> None:
    cfg = _parse(tmp_path, {})
    assert cfg == ClamavConfig()
    assert str(cfg.addresses[0]) == "tcp://127.0.0.1:3310"
    defaults = policy()
    for side in ("inbound", "outbound"):
        assert defaults.action_for("scan-failed", side) is Action.TEMPFAIL
        assert defaults.action_for("virus", side) is Action.REFUSE
        assert defaults.action_for("unscannable.too-big", side) is Action.REFUSE
        assert defaults.action_for("unscannable.limits", side) is Action.REFUSE


# Each old [clamav] action key, the [policy] line it now is, and a reply it decides.
OLD_KEYS = [
    ('inbound_action = "quarantine"', "clamav.inbound_action", 'virus = { inbound = "hold" }',
     EICAR, "inbound", Action.HOLD),
    ('inbound_action = "reject"', "clamav.inbound_action", 'virus = { inbound = "refuse" }',
     EICAR, "inbound", Action.REFUSE),
    ('too_big = "tempfail"', "clamav.too_big", 'unscannable = "tempfail"',
     ScanReply(Outcome.TOO_BIG), "outbound", Action.TEMPFAIL),
    ('too_big = "quarantine"', "clamav.too_big", 'unscannable = "hold"',
     ScanReply(Outcome.LIMITS, "Heuristics.Limits.Exceeded"), "inbound", Action.HOLD),
    ('too_big = "reject"', "clamav.too_big", 'unscannable = "refuse"',
     ScanReply(Outcome.TOO_BIG), "inbound", Action.REFUSE),
    ('on_error = "accept"', "clamav.on_error", 'scan-failed = "deliver"',
     ScanReply(Outcome.ERROR, detail="refused"), "outbound", Action.DELIVER),
    ('on_error = "tempfail"', "clamav.on_error", 'scan-failed = "tempfail"',
     ScanReply(Outcome.ERROR, detail="refused"), "inbound", Action.TEMPFAIL),
]


@pytest.mark.parametrize(("old", "key", "new", "reply", "side", "action"), OLD_KEYS)
def test_old_clamav_action_keys_still_work_and_name_the_new_spelling(
        old: str, key: str, new: str, reply: ScanReply, side: Side, action: Action) -> None:
    old_config = config(f"[clamav]\n{old}\n")
    [note] = old_config.notes
    assert (note.key, note.message, note.line) == (key, OLD_SPELLING + new, 4)
    findings = assess(reply, where=INVOICE).findings
    by_old = policy_of(old_config).decide(findings, side)
    assert by_old.action is action
    assert by_old == policy(new).decide(findings, side)
    assert policy(new).action_for(findings[0].code, side) is action
    assert config(f"[policy]\n{new}\n").notes == ()


def test_policy_table_wins_over_an_old_key() -> None:
    both = config('[policy]\nvirus = "refuse"\n[clamav]\ninbound_action = "quarantine"\n')
    assert policy_of(both).action_for("virus", "inbound") is Action.REFUSE
    [note] = both.notes
    assert note.key == "clamav.inbound_action" and "is ignored" in note.message


@pytest.mark.parametrize(("overrides", "problem"), [
    ({"clamav": {"address": "clamd"}}, "clamav.address[0] (line"),
    ({"clamav": {"address": []}}, "clamav.address"),
    ({"clamav": {"timeout": -3}}, "clamav.timeout (line"),
    ({"clamav": {"on_error": "ignore"}}, "clamav.on_error (line"),
    ({"clamav": {"too_big": "accept"}}, "clamav.too_big"),
    ({"clamav": {"inbound_action": "delete"}}, "clamav.inbound_action"),
    ({"clamav": {"alert_to": ["clerk"]}}, "clamav.alert_to[0]"),
    ({"clamav": {"adress": "tcp://127.0.0.1:3310"}}, 'did you mean "address"'),
    ({"policy": {"virus": {"inbound": "deliver"}}}, "virus is never passed on"),
    ({"policy": {"unscanable": "hold"}}, 'did you mean "unscannable"'),
])
def test_config_problems_are_reported_with_key_and_line(tmp_path: Path,
                                                        overrides: dict[str, object],
                                                        problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_config(tmp_path, overrides)
    assert problem in str(err.value)
