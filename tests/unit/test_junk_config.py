"""The junk filter's place in the chain, what the policy does with junk, and its config problems
in plain words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.assembly import BY_NAME, KINDS, default_chain
from gateway.authcheck.resolver import DnsConfig, Resolver
from gateway.config import Config, ConfigError
from gateway.context import Envelope, MessageContext
from gateway.filters.junk import JunkConfig, JunkFilter
from gateway.people.senders import SendersConfig
from gateway.pipeline import Outcome, Pipeline, Stage
from gateway.policy import Policy, PolicyConfig
from gateway.verdicts import Action, SmtpCode
from tests.conftest import build_config
from tests.mailmaker import make_mail

CLERK = "clerk@stanion-pc.gov.uk"
PDF = ("minutes.pdf", "application/pdf", b"%PDF-1.4")
OLD_SPELLING = "is the old spelling (still read); in [policy] write: "


def policy_of(config: Config) -> Policy:
    return Policy(KINDS, config.section(PolicyConfig))


class NoRecords(Resolver):
    """DNS that knows no records at all: SPF, DKIM and DMARC come out "none", at once."""

    def __init__(self) -> None:
        super().__init__(DnsConfig())

    async def query(self, name: str, rdtype: str) -> list[str]:
        return []


async def _run_junk(config: Config, data: bytes) -> Outcome:
    """The inbound side with only the junk check, for a message from an unknown resident."""
    flt = JunkFilter(config.section(JunkConfig), config.section(SendersConfig), NoRecords(),
                     hostname=config.gateway.hostname,
                     council_domains=config.gateway.council_domains)
    ctx = MessageContext(id="m1", side="inbound",
                         envelope=Envelope("pat@resident.example", (CLERK,)), data=data,
                         client_address="192.0.2.1", client_helo="mx.resident.example")
    return await Pipeline("inbound", [flt], policy_of(config)).run(ctx)


def test_junk_runs_inbound_only_after_attachments() -> None:
    entry = BY_NAME["junk"]
    assert (entry.stage, entry.sides) == (Stage.CHECK, ("inbound",))
    inbound = default_chain("inbound")
    assert inbound.index("attachments") < inbound.index("junk")
    assert "junk" not in default_chain("outbound")


def test_defaults(tmp_path: Path) -> None:
    config = build_config(tmp_path)
    cfg = config.section(JunkConfig)
    assert (cfg.threshold, cfg.spamd) == (5.0, None)
    assert "gmail.com" in cfg.free_mail_domains and "chairman" in cfg.protected_names
    # Junk and blocked senders are held for the clerk by default; outbound mail is not judged.
    policy = policy_of(config)
    assert policy.action_for("junk", "inbound") is Action.HOLD
    assert policy.action_for("blocked-sender", "inbound") is Action.HOLD
    assert policy.action_for("junk", "outbound") is Action.DELIVER
    # One signal alone only counts towards the threshold; it decides nothing by itself.
    assert policy.action_for("attachment-unknown-sender", "inbound") is Action.DELIVER


# Each old [junk] action word, the [policy] line it now is, and what the policy does.
OLD_ACTIONS = [
    ("quarantine", "hold", Action.HOLD),
    ("reject", "refuse", Action.REFUSE),
    ("tag", "tag", Action.TAG),
]


@pytest.mark.parametrize(("old", "new", "action"), OLD_ACTIONS)
async def test_old_junk_action_still_works_and_names_the_new_spelling(
        tmp_path: Path, old: str, new: str, action: Action) -> None:
    old_config = build_config(tmp_path, {"junk": {"action": old}})
    [note] = old_config.notes
    assert note.line is not None
    assert (note.key, note.message) == ("junk.action",
                                        OLD_SPELLING + f'junk = {{ inbound = "{new}" }}')
    new_config = build_config(tmp_path, {"policy": {"junk": {"inbound": new}}})
    assert new_config.notes == ()
    data = make_mail(attachments=(PDF,))
    by_old, by_new = await _run_junk(old_config, data), await _run_junk(new_config, data)
    assert by_old.decision.action is action
    assert (by_old.decision, by_old.data) == (by_new.decision, by_new.data)
    assert [f.code for f in by_old.findings] == ["junk", "attachment-unknown-sender"]


async def test_junk_refused_by_the_policy_says_why(tmp_path: Path) -> None:
    config = build_config(tmp_path, {"policy": {"junk": "refuse"}})
    outcome = await _run_junk(config, make_mail(attachments=(PDF,)))
    assert outcome.decision.action is Action.REFUSE
    assert outcome.decision.smtp == SmtpCode(554, "5.7.1")
    assert outcome.decision.text == (
        "This message looks like junk and was refused: Has 1 attachment (minutes.pdf) from a "
        "sender the council does not know; attachments are opened only from trusted sources.")


async def test_junk_held_by_the_policy_keeps_every_reason(tmp_path: Path) -> None:
    outcome = await _run_junk(build_config(tmp_path), make_mail(attachments=(PDF,)))
    assert outcome.decision.action is Action.HOLD
    assert outcome.held is not None and outcome.held.filter == "junk"
    assert outcome.decision.reasons == (
        "Looks like junk from a sender the council does not know.",
        "Has 1 attachment (minutes.pdf) from a sender the council does not know; attachments "
        "are opened only from trusted sources.")
    # The held copy carries the authentication results, but no junk tag.
    head = outcome.held.data.split(b"\r\n\r\n")[0]
    assert head.startswith(b"Authentication-Results: gw.stanion-pc.gov.uk; spf=none")
    assert b"X-Council-Junk" not in head and b"Subject: Pothole on Church Lane" in head


async def test_junk_tagged_by_the_policy_is_marked_and_keeps_its_authentication_results(
        tmp_path: Path) -> None:
    config = build_config(tmp_path, {"policy": {"junk": "tag"},
                                     "junk": {"tag_prefix": "[Junk?]"}})
    outcome = await _run_junk(config, make_mail(attachments=(PDF,)))
    assert outcome.decision.action is Action.TAG
    head = outcome.data.split(b"\r\n\r\n")[0]
    assert b"X-Council-Junk: yes; score=5; attachment-unknown-sender\r\n" in head
    assert b"\r\nSubject: [Junk?] Pothole on Church Lane\r\n" in head
    # Tagged mail is delivered: the next hop needs the results as much as untagged mail does.
    assert b"Authentication-Results: gw.stanion-pc.gov.uk; spf=none" in head


async def test_mail_below_the_threshold_is_delivered_untagged(tmp_path: Path) -> None:
    config = build_config(tmp_path, {"junk": {"threshold": 6}, "policy": {"junk": "tag"}})
    outcome = await _run_junk(config, make_mail(attachments=(PDF,)))
    assert outcome.decision.action is Action.DELIVER
    assert [f.code for f in outcome.findings] == ["attachment-unknown-sender"]
    head = outcome.data.split(b"\r\n\r\n")[0]
    assert head.startswith(b"Authentication-Results: gw.stanion-pc.gov.uk; spf=none")
    assert b"X-Council-Junk" not in head
    assert b"\r\nSubject: Pothole on Church Lane\r\n" in head


@pytest.mark.parametrize(("overrides", "problem"), [
    ({"junk": {"action": "bin"}}, "junk.action (line"),
    ({"policy": {"junk": "bin"}}, '"bin" is not an action'),
    ({"junk": {"threshold": 0}}, "junk.threshold (line"),
    ({"junk": {"spamd": "nowhere"}}, "is not host:port"),
    ({"junk": {"treshold": 4}}, 'did you mean "threshold"'),
    ({"dns": {"nameservers": ["dns.example"]}}, "is not a name server address"),
    ({"dns": {"timeout": 0}}, "dns.timeout (line"),
])
def test_config_problems(tmp_path: Path, overrides: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_config(tmp_path, overrides)
    assert problem in str(err.value)


def test_nameserver_forms(tmp_path: Path) -> None:
    config = build_config(tmp_path, {"dns": {"nameservers": ["127.0.0.1", "127.0.0.1:5353",
                                                             "::1", "[::1]:5353"]}})
    assert config.section(DnsConfig).nameservers == (
        ("127.0.0.1", 53), ("127.0.0.1", 5353), ("::1", 53), ("::1", 5353))
