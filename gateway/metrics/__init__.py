"""Prometheus metrics and a health answer for the operator (``[metrics]``).

- :mod:`~gateway.metrics.settings`: the ``[metrics]`` section.
- :mod:`~gateway.metrics.registry`: the counters, one registry per gateway, and the small calls
  the SMTP front-end makes where things happen.
- :mod:`~gateway.metrics.health`: the probes behind ``/health`` (clamd, next hops, folders).
- :mod:`~gateway.metrics.serve`: the listener and the background job ``run`` starts.
"""

from gateway.metrics.registry import Metrics
from gateway.metrics.settings import MetricsConfig, parse_metrics

__all__ = ["Metrics", "MetricsConfig", "parse_metrics"]
