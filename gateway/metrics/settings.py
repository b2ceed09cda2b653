"""The ``[metrics]`` section: where ``/metrics`` and ``/health`` are served, if anywhere."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import Section, parse_hostport

__all__ = ["MetricsConfig", "parse_metrics"]


@dataclass(frozen=True)
class MetricsConfig:
    # None: nothing is served (the default). Port 0 picks a free port (the tests use it).
    listen: tuple[str, int] | None = None


def parse_metrics(s: Section) -> MetricsConfig:
    text = s.text("listen", "").strip()
    listen: tuple[str, int] | None = None
    if text:
        try:
            listen = parse_hostport(text)
        except ValueError as e:
            s.problem("listen", f'{e}; or "" to serve no metrics')
    cfg = MetricsConfig(listen=listen)
    s.finish()
    return cfg
