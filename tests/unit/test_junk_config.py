"""The junk filter's place in the chain and its config problems in plain words."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, section
from gateway.filters import REGISTRY, default_chain
from gateway.filters.junk import parse_junk
from tests.conftest import build_config


def test_junk_runs_inbound_only_after_attachments():
    spec = REGISTRY["junk"]
    assert (spec.order, spec.sides) == (40, ("inbound",))
    assert "junk" in default_chain("inbound") and "junk" not in default_chain("outbound")


def test_defaults(tmp_path):
    cfg = parse_junk(section(build_config(tmp_path), "junk"))
    assert (cfg.threshold, cfg.action, cfg.spamd) == (5.0, "quarantine", None)
    assert "gmail.com" in cfg.free_mail_domains and "chairman" in cfg.protected_names


@pytest.mark.parametrize("overrides,problem", [
    ({"junk": {"action": "bin"}}, 'junk.action (line'),
    ({"junk": {"threshold": 0}}, "junk.threshold (line"),
    ({"junk": {"spamd": "nowhere"}}, 'is not host:port'),
    ({"junk": {"treshold": 4}}, 'did you mean "threshold"'),
    ({"dns": {"nameservers": ["dns.example"]}}, 'is not a name server address'),
    ({"dns": {"timeout": 0}}, "dns.timeout (line"),
])
def test_config_problems(tmp_path, overrides, problem):
    with pytest.raises(ConfigError) as err:
        build_config(tmp_path, overrides)
    assert problem in str(err.value)


def test_nameserver_forms(tmp_path):
    from gateway.authcheck.resolver import parse_dns
    config = build_config(tmp_path, {"dns": {"nameservers": ["127.0.0.1", "127.0.0.1:5353",
                                                             "::1", "[::1]:5353"]}})
    assert parse_dns(section(config, "dns")).nameservers == (
        ("127.0.0.1", 53), ("127.0.0.1", 5353), ("::1", 53), ("::1", 5353))
