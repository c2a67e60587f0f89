"""Metrics (OpenTelemetry, Prometheus) from every policy, each turned on with one call.

``enable_otel()`` and ``enable_prometheus()`` meter every policy, those already built
included, and return a function that stops the export. Nothing is imported or counted
until one is called. Names and attributes: ``stormproof._metric_names``, listed in
docs/observability.md.
"""

from __future__ import annotations

from ._otel import enable_otel
from ._prometheus import PrometheusCollector, enable_prometheus

__all__ = ["PrometheusCollector", "enable_otel", "enable_prometheus"]
