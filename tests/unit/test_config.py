"""check-config: every problem with its key path and line, in plain words."""

from __future__ import annotations

import pytest

from gateway.assembly import KINDS, parse_config
from gateway.config import ConfigError, parse_size
from gateway.policy import Policy, PolicyConfig
from gateway.verdicts import Action

GOOD = '[gateway]\ncouncil_domains = ["stanion-pc.gov.uk"]\n'


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config(text, "test.toml")
    return [str(p) for p in err.value.problems]


def test_minimal_config_is_valid_and_gets_defaults() -> None:
    config = parse_config(GOOD)
    assert config.inbound.listen == ("127.0.0.1", 2525)
    assert config.outbound.listen == ("127.0.0.1", 2587)
    assert str(config.inbound.deliver_to) == "maildir:mailbox"
    assert config.gateway.max_message_size == 25 * 1024 * 1024
    assert config.inbound.filters is None  # the full default chain


@pytest.mark.parametrize("text,expected", [
    # 1. a bad port
    (GOOD + '[outbound]\nlisten = "127.0.0.1:99999"\n',
     'outbound.listen (line 4): "127.0.0.1:99999" is not a valid port (ports go from 1 to 65535)'),
    # 2. not host:port at all
    (GOOD + '[inbound]\nlisten = "localhost"\n',
     'inbound.listen (line 4): "localhost" is not host:port, e.g. "127.0.0.1:2525"'),
    # 3. a wrong type
    (GOOD + 'max_message_size = true\n',
     'gateway.max_message_size (line 3): must be a size such as "25MiB", not true/false'),
    # 4. a size that is not a size
    (GOOD + 'max_message_size = "lots"\n',
     'gateway.max_message_size (line 3): "lots" is not a size; write it like "25MiB", '
     '"500KB" or 1048576'),
    # 5. a misspelt key, with a suggestion
    (GOOD + 'hostnme = "mail.example"\n',
     'gateway.hostnme (line 3): is not a setting the gateway knows; did you mean "hostname"?'),
    # 6. a misspelt section
    (GOOD + '[inbund]\nlisten = "127.0.0.1:25"\n',
     'inbund (line 3): is not a section the gateway knows; did you mean "[inbound]"?'),
    # 7. a bad next hop
    (GOOD + '[inbound]\ndeliver_to = "imap://mail"\n',
     'inbound.deliver_to (line 4): "imap://mail" is not a next hop; use "maildir:FOLDER", '
     '"smtp://host:port", "smtp+starttls://host:port" or "smtps://host:port"'),
    # 8. an unknown filter
    (GOOD + '[inbound]\nfilters = ["trace", "antivirs"]\n',
     'inbound.filters[1] (line 4): "antivirs" is not a filter the inbound side has; '
     'did you mean "antivirus"?'),
    # 9. a bad network
    (GOOD + '[outbound]\ntrusted_networks = ["10.0.0.300/8"]\n',
     'outbound.trusted_networks[0] (line 4): "10.0.0.300/8" is not a network like '
     '"192.168.1.0/24"'),
    # 10. TLS half set
    (GOOD + '[tls]\ncert_file = "/nonexistent/cert.pem"\n',
     'tls.key_file (line 3): cert_file and key_file go together: set both or neither'),
    # 11. no council domain
    ('[gateway]\ncouncil_domains = []\n',
     'gateway.council_domains (line 2): must name at least one domain, e.g. '
     '["stanion-pc.gov.uk"]'),
    # 12. broken TOML
    ('[gateway\n', None),
])
def test_each_kind_of_mistake_is_explained(text: str, expected: str | None) -> None:
    found = problems(text)
    if expected is None:
        assert found[0].startswith("(file) (line 1): is not valid TOML")
    else:
        assert expected in found, found


def test_all_problems_are_reported_at_once() -> None:
    found = problems('[gateway]\ncouncil_domains = ["x"]\nmax_message_size = "lots"\n'
                     '[outbound]\nlisten = "127.0.0.1:99999"\nfoo = 1\n')
    assert len(found) == 4


@pytest.mark.parametrize("value,size", [
    ("25MiB", 25 * 1048576), ("10MB", 10_000_000), ("500KB", 500_000), ("1 GiB", 1024**3),
    (1048576, 1048576), ("2048", 2048),
])
def test_sizes(value: str | int, size: int) -> None:
    assert parse_size(value) == size


def test_shipped_config_is_valid_and_is_the_embedded_default() -> None:
    from importlib.resources import files
    from pathlib import Path

    shipped = Path(__file__).parents[2] / "config" / "gateway.toml"
    embedded = files("gateway").joinpath("data/gateway.toml").read_text(encoding="utf-8")
    assert shipped.read_text(encoding="utf-8") == embedded
    config = parse_config(embedded, "shipped")
    assert config.inbound.listen == ("127.0.0.1", 2525)
    assert str(config.outbound.deliver_to) == "maildir:outbox"


def test_the_shipped_config_uses_no_old_spelling_and_documents_the_policy() -> None:
    from pathlib import Path

    text = (Path(__file__).parents[2] / "config" / "gateway.toml").read_text(encoding="utf-8")
    config = parse_config(text, "shipped")
    assert config.notes == ()
    policy = Policy(KINDS, config.section(PolicyConfig))
    assert policy.action_for("virus", "inbound") is Action.REFUSE
    assert policy.action_for("attachment.macro", "inbound") is Action.HOLD
    assert policy.action_for("attachment.macro", "outbound") is Action.REFUSE
    assert policy.action_for("junk", "inbound") is Action.HOLD


# Each old key, its old value, and what the policy now does (finding, side, action), plus the
# new spelling check-config gives.
OLD_SPELLINGS = [
    ("clamav", "inbound_action", '"quarantine"', "virus", "inbound", Action.HOLD,
     'virus = { inbound = "hold" }'),
    ("clamav", "too_big", '"tempfail"', "unscannable.too-big", "outbound", Action.TEMPFAIL,
     'unscannable = "tempfail"'),
    ("clamav", "on_error", '"accept"', "scan-failed", "inbound", Action.DELIVER,
     'scan-failed = "deliver"'),
    ("attachments", "inbound_action", '"reject"', "attachment.macro", "inbound",
     Action.REFUSE, 'attachment = { inbound = "refuse" }'),
    ("attachments", "outbound_action", '"quarantine"', "attachment.blocked-type", "outbound",
     Action.HOLD, 'attachment = { outbound = "hold" }'),
    ("junk", "action", '"tag"', "junk", "inbound", Action.TAG, 'junk = { inbound = "tag" }'),
    ("confidential", "action", '{ outbound = "hold", inbound = "flag" }',
     "confidential.marker", "outbound", Action.HOLD,
     'confidential = { inbound = "tag", outbound = "hold" }'),
    ("confidential", "action", '"reject"', "confidential.marker", "inbound", Action.REFUSE,
     'confidential = "refuse"'),
    ("access_codes", "action", '"hold"', "access-code", "outbound", Action.HOLD,
     'access-code = { outbound = "hold" }'),
    ("language", "action", '"reject"', "language", "outbound", Action.REFUSE,
     'language = { outbound = "refuse" }'),
]


@pytest.mark.parametrize("section,key,value,code,side,action,spelling", OLD_SPELLINGS,
                         ids=[f"{s[0]}.{s[1]}={s[2]}" for s in OLD_SPELLINGS])
def test_old_action_keys_still_work_and_name_the_new_spelling(
        section: str, key: str, value: str, code: str, side: str, action: Action,
        spelling: str) -> None:
    config = parse_config(GOOD + f"[{section}]\n{key} = {value}\n", "old.toml")
    policy = Policy(KINDS, config.section(PolicyConfig))
    assert policy.action_for(code, side) is action  # type: ignore[arg-type]
    [note] = config.notes
    assert note.key == f"{section}.{key}" and note.line == 4
    assert "old spelling (still read)" in note.message and spelling in note.message


def test_an_old_key_gives_way_to_the_policy_table() -> None:
    config = parse_config(GOOD + '[policy]\njunk = "refuse"\n[junk]\naction = "tag"\n')
    assert Policy(KINDS, config.section(PolicyConfig)).action_for("junk", "inbound") \
        is Action.REFUSE
    assert "is ignored: [policy] junk already says" in config.notes[0].message


def test_a_wrong_old_value_is_still_a_problem() -> None:
    assert any('clamav.inbound_action (line 4): "bin" is not one of the allowed values' in p
               for p in problems(GOOD + '[clamav]\ninbound_action = "bin"\n'))
