"""``[metrics]`` parsing and what each instrumentation call adds, read back with
prometheus_client's own text parser (no sockets: see tests/integration/test_metrics.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.assembly import parse_config
from gateway.config import ConfigError
from gateway.delivery.nexthop import DeliveryResult
from gateway.metrics import Metrics, MetricsConfig
from gateway.metrics.registry import hop_failure_kind
from gateway.pipeline import Outcome, StepRecord
from gateway.verdicts import Action, Decision, Finding, Severity

GOOD = '[gateway]\ncouncil_domains = ["stanion-pc.gov.uk"]\n'


def samples(m: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(m.exposition().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(m: Metrics, name: str, **labels: str) -> float | None:
    return samples(m).get((name, tuple(sorted(labels.items()))))


@pytest.mark.parametrize("section,listen", [
    ("", None),
    ('[metrics]\nlisten = ""\n', None),
    ('[metrics]\nlisten = "127.0.0.1:9125"\n', ("127.0.0.1", 9125)),
    ('[metrics]\nlisten = "[::1]:0"\n', ("::1", 0)),
])
def test_metrics_are_off_unless_listen_is_set(section: str, listen: object) -> None:
    assert parse_config(GOOD + section).section(MetricsConfig).listen == listen


def test_a_bad_listen_is_explained() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(GOOD + '[metrics]\nlisten = "9125"\nport = 1\n', "test.toml")
    assert [str(p) for p in err.value.problems] == [
        'metrics.listen (line 4): "9125" is not host:port, e.g. "127.0.0.1:2525"; or "" to '
        'serve no metrics',
        'metrics.port (line 5): is not a setting the gateway knows']


def _outcome(*findings: Finding, steps: tuple[StepRecord, ...] = ()) -> Outcome:
    return Outcome(Decision(Action.TEMPFAIL), findings, steps, b"", None, ())


def test_a_message_adds_its_verdict_findings_and_step_times(tmp_path: Path) -> None:
    m = Metrics(lambda: tmp_path / "quarantine")
    outcome = _outcome(
        Finding("antivirus", "scan-failed", Severity.MEDIUM, "the virus scanner was down"),
        Finding("junk", "check-failed", Severity.MEDIUM, "the junk check could not finish"),
        steps=(StepRecord("antivirus", "ok", Action.TEMPFAIL, 12.0),
               StepRecord("junk", "timeout", Action.TEMPFAIL, 2000.0)))
    m.message("inbound", "tempfail", outcome, 2.1)
    assert value(m, "gateway_messages_total", side="inbound", action="tempfail") == 1
    assert value(m, "gateway_messages_total", side="outbound", action="deliver") == 0
    assert value(m, "gateway_findings_total", side="inbound", code="scan-failed") == 1
    assert value(m, "gateway_clamd_errors_total", side="inbound") == 1
    assert value(m, "gateway_check_failures_total", side="inbound", filter="junk") == 1
    assert value(m, "gateway_filter_seconds_sum", side="inbound", filter="junk") == 2.0
    assert value(m, "gateway_filter_seconds_bucket", side="inbound", filter="junk",
                 le="1.0") == 0
    assert value(m, "gateway_filter_seconds_bucket", side="inbound", filter="junk",
                 le="2.5") == 1
    assert value(m, "gateway_filter_runs_total", side="inbound", filter="junk",
                 outcome="timeout") == 1
    assert value(m, "gateway_message_seconds_count", side="inbound") == 1


def test_a_refusal_before_any_check_counts_without_findings(tmp_path: Path) -> None:
    m = Metrics(lambda: tmp_path / "quarantine")
    m.message("outbound", "refuse", None, 0.001)
    assert value(m, "gateway_messages_total", side="outbound", action="refuse") == 1


@pytest.mark.parametrize("result,kind", [
    (DeliveryResult(False, 451, "4.4.1 The next mail server could not be reached"),
     "unreachable"),
    (DeliveryResult(False, 451, "4.4.1 The next mail server went away"), "unreachable"),
    (DeliveryResult(False, 452, "4.3.1 Insufficient storage"), "tempfail"),
    (DeliveryResult(False, 451, "4.3.0 The mail folder could not be written"), "tempfail"),
    (DeliveryResult(False, 554, "5.7.1 Rejected"), "refused"),
])
def test_next_hop_failures_by_kind(result: DeliveryResult, kind: str, tmp_path: Path) -> None:
    assert hop_failure_kind(result) == kind
    m = Metrics(lambda: tmp_path / "quarantine")
    m.message("inbound", "deliver-failed", _outcome(), 1.0, result)
    assert value(m, "gateway_next_hop_failures_total", side="inbound", kind=kind) == 1


def test_events_logins_and_locks(tmp_path: Path) -> None:
    m = Metrics(lambda: tmp_path / "quarantine")
    m.event("connections refused: side full")
    m.event("connections closed: junk commands")
    m.event("something else")
    m.login_failed("password")
    m.login_locked("network 192.0.2.7")
    m.login_locked("account cllr.jones@stanion-pc.gov.uk")
    assert value(m, "gateway_connections_refused_total", reason="side full") == 1
    assert value(m, "gateway_connections_closed_total", reason="junk commands") == 1
    assert value(m, "gateway_events_total", event="something else") == 1
    assert value(m, "gateway_login_failures_total", reason="password") == 1
    assert value(m, "gateway_login_failures_total", reason="locked") == 0
    assert value(m, "gateway_login_locks_total", kind="network") == 1
    assert value(m, "gateway_login_locks_total", kind="account") == 1


def test_the_quarantine_is_counted_when_scraped(tmp_path: Path) -> None:
    root = tmp_path / "quarantine"
    m = Metrics(lambda: root)
    assert value(m, "gateway_quarantine_messages") == 0  # no folder yet: nothing held
    for sub, names in (("new", ["a", "b"]), ("cur", ["c:2,S"]), ("tmp", ["half-written"])):
        (root / sub).mkdir(parents=True)
        for name in names:
            (root / sub / name).write_text("x")
    assert value(m, "gateway_quarantine_messages") == 3  # tmp/ is not held mail


def test_two_gateways_do_not_share_counts(tmp_path: Path) -> None:
    a, b = Metrics(lambda: tmp_path), Metrics(lambda: tmp_path)
    a.login_failed("password")
    assert value(b, "gateway_login_failures_total", reason="password") == 0
