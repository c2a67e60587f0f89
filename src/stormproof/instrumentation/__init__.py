"""stormproof's events and counts where operators look: metrics and logs, each turned
on with one call.

- ``enable_otel()``: metrics through an OpenTelemetry SDK ``MeterProvider``;
- ``enable_prometheus()``: metrics in a prometheus_client registry;
- ``enable_logging()``: every event of every policy as one structured log line,
  through the standard library's ``logging`` or structlog.

Each returns a function that turns it off. The metrics ones meter every policy, those
already built included. Nothing here runs, and no metrics or logging library is
imported, until it is asked for. Names and attributes: ``stormproof._metric_names``,
listed in docs/observability.md.
"""

from __future__ import annotations

from ._logging import enable_logging
from ._otel import enable_otel
from ._prometheus import PrometheusCollector, enable_prometheus

__all__ = ["PrometheusCollector", "enable_logging", "enable_otel", "enable_prometheus"]
