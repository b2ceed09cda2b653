"""The gateway's counters, in one Prometheus registry per :class:`~gateway.smtp.server.Gateway`.

Instrumented code makes one small call where something happens (the handler after the audit
line, the login check, ``Gateway.count``); what the call adds to which series is decided here.
Nothing is read back by the gateway itself: these numbers are for the operator's dashboards.

The quarantine's size is counted when ``/metrics`` is scraped; the scrape runs the whole text
exposition in a thread (:func:`exposition`), so that folder listing never blocks the loop.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from gateway.delivery.nexthop import DeliveryResult
    from gateway.pipeline import Outcome

__all__ = ["ACTIONS", "CONTENT_TYPE", "Metrics", "hop_failure_kind"]

log = logging.getLogger(__name__)

# The classic text format every Prometheus reads (the library's own default answer when the
# scraper asks for nothing else); the gateway's names need none of the newer format's escaping.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SIDES = ("inbound", "outbound")
# The verdict words of the audit log (dispatch.Carried.word and the handler's own).
ACTIONS = ("deliver", "tag", "hold", "refuse", "tempfail", "deliver-failed")
HOP_FAILURES = ("unreachable", "tempfail", "refused")
# Filters run from a few milliseconds (a header check) to their deadline (120 s by default).
FILTER_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                  60.0, 120.0)
MESSAGE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


def hop_failure_kind(result: DeliveryResult) -> str:
    """``unreachable`` (no usable connection: the gateway's own 451 4.4.1), else what the next
    hop answered: ``tempfail`` (4xx) or ``refused`` (5xx)."""
    if result.code == 451 and result.text.startswith("4.4.1"):
        return "unreachable"
    return "tempfail" if 400 <= result.code < 500 else "refused"


class _Quarantine(Collector):
    """``gateway_quarantine_messages``: the files in the quarantine's new/ and cur/, counted at
    scrape time (not parsed: a count must stay cheap however much is held)."""

    NAME = "gateway_quarantine_messages"
    HELP = "Messages held in the quarantine for the clerk, counted when scraped"

    def __init__(self, path: Callable[[], Path]):
        self.path = path

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily(self.NAME, self.HELP)]

    def collect(self) -> Iterator[Metric]:
        root = self.path()
        held = 0
        try:
            for sub in ("new", "cur"):
                folder = root / sub
                if folder.is_dir():
                    with os.scandir(folder) as entries:
                        held += sum(1 for e in entries if e.is_file())
        except OSError as e:
            log.warning("metrics: the quarantine %s cannot be listed: %s", root, e)
            return  # no value rather than a wrong one
        yield GaugeMetricFamily(self.NAME, self.HELP, value=held)


class Metrics:
    """Every series the gateway exposes, in a registry of its own (never the process-wide
    default one, so two gateways in one test process do not share counts)."""

    def __init__(self, quarantine: Callable[[], Path]):
        r = self.registry = CollectorRegistry()
        self.messages = Counter(
            "gateway_messages", "Messages at end of data, by side and what was done with them "
            "(the audit log's verdict)", ["side", "action"], registry=r)
        self.message_seconds = Histogram(
            "gateway_message_seconds", "Time from end of data to the reply, by side", ["side"],
            buckets=MESSAGE_BUCKETS, registry=r)
        self.envelope_refusals = Counter(
            "gateway_envelope_refusals", "Senders and recipients refused before the message "
            "(by the gateway's envelope rules or the next hop), by side and stage",
            ["side", "stage"], registry=r)
        self.findings = Counter(
            "gateway_findings", "Findings in messages, by side and finding code",
            ["side", "code"], registry=r)
        self.filter_seconds = Histogram(
            "gateway_filter_seconds", "Time each filter took on a message",
            ["side", "filter"], buckets=FILTER_BUCKETS, registry=r)
        self.filter_runs = Counter(
            "gateway_filter_runs", "Filter runs by how they ended (ok, error, timeout, "
            "malformed, skipped)", ["side", "filter", "outcome"], registry=r)
        self.clamd_errors = Counter(
            "gateway_clamd_errors", "Messages clamd could not scan (scan-failed findings)",
            ["side"], registry=r)
        self.check_failures = Counter(
            "gateway_check_failures", "Checks that could not finish (check-failed findings: "
            "an error or a timeout, e.g. DNS or spamd trouble in junk)", ["side", "filter"],
            registry=r)
        self.next_hop_failures = Counter(
            "gateway_next_hop_failures", "Next-hop transactions that failed: unreachable "
            "(no connection, or it went away), tempfail (4xx) or refused (5xx) at MAIL, RCPT or "
            "DATA", ["side", "kind"], registry=r)
        self.connections_refused = Counter(
            "gateway_connections_refused", "Connections turned away at connect, by reason",
            ["reason"], registry=r)
        self.connections_closed = Counter(
            "gateway_connections_closed", "Connections the gateway ended, by reason",
            ["reason"], registry=r)
        self.events = Counter("gateway_events", "Other events the gateway counted", ["event"],
                              registry=r)
        self.login_failures = Counter(
            "gateway_login_failures", "Logins refused on the submission side: wrong password, "
            "locked (network or account), or as-another (acting as another login)",
            ["reason"], registry=r)
        self.login_locks = Counter(
            "gateway_login_locks", "Login locks set after repeated failures, by kind "
            "(network or account)", ["kind"], registry=r)
        self.connections_open = Gauge(
            "gateway_connections_open", "Open SMTP connections, by side", ["side"], registry=r)
        self.in_flight = Gauge("gateway_messages_in_flight",
                               "Messages being checked or delivered now", registry=r)
        r.register(_Quarantine(quarantine))
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        # Known series start at 0, so rate() and alerts work from the first scrape.
        for side in SIDES:
            for action in ACTIONS:
                self.messages.labels(side, action)
            for kind in HOP_FAILURES:
                self.next_hop_failures.labels(side, kind)
            self.clamd_errors.labels(side)
        for reason in ("password", "locked", "as-another"):
            self.login_failures.labels(reason)
        for kind in ("network", "account"):
            self.login_locks.labels(kind)

    # ------------------------------------------------------------------ instrumentation
    def message(self, side: str, verdict: str, outcome: Outcome | None, seconds: float,
                delivery: DeliveryResult | None = None) -> None:
        """One message answered at end of data: its verdict, its findings, each step's time,
        and the next hop's answer when the delivery failed."""
        self.messages.labels(side, verdict).inc()
        self.message_seconds.labels(side).observe(seconds)
        if outcome is not None:
            for f in outcome.findings:
                self.findings.labels(side, f.code).inc()
                if f.code == "scan-failed":
                    self.clamd_errors.labels(side).inc()
                elif f.code == "check-failed":
                    self.check_failures.labels(side, f.filter).inc()
            for step in outcome.steps:
                self.filter_seconds.labels(side, step.filter).observe(step.ms / 1000)
                self.filter_runs.labels(side, step.filter, step.outcome).inc()
        if verdict == "deliver-failed" and delivery is not None and not delivery.ok:
            self.next_hop_failed(side, delivery)

    def envelope_refused(self, side: str, stage: str) -> None:
        self.envelope_refusals.labels(side, stage).inc()

    def next_hop_failed(self, side: str, result: DeliveryResult) -> None:
        self.next_hop_failures.labels(side, hop_failure_kind(result)).inc()

    def event(self, event: str) -> None:
        """What ``Gateway.count`` counts: "connections refused: REASON", "connections closed:
        REASON", or anything else."""
        kind, sep, reason = event.partition(": ")
        if sep and kind == "connections refused":
            self.connections_refused.labels(reason).inc()
        elif sep and kind == "connections closed":
            self.connections_closed.labels(reason).inc()
        else:
            self.events.labels(event).inc()

    def login_failed(self, reason: str) -> None:
        self.login_failures.labels(reason).inc()

    def login_locked(self, lock: str) -> None:
        """``lock`` as LoginGuard.failed names it: "network 192.0.2.7", "account NAME"."""
        self.login_locks.labels(lock.partition(" ")[0]).inc()

    # ------------------------------------------------------------------ exposition
    def exposition(self) -> bytes:
        """The text exposition of every series (blocking: call it in a thread)."""
        return generate_latest(self.registry)
