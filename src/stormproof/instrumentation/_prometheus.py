"""stormproof's metrics in a prometheus_client registry (extra ``[prometheus]``).

A collector, read at each scrape: nothing is recorded in prometheus_client's own
instruments on the call path. Names follow Prometheus' conventions: the
OpenTelemetry name with underscores, ``_total`` on counters, ``_seconds`` on
durations; attribute names with underscores (``policy_kind``, ``error_type``).
"""

# The optional libraries are imported where used, so that importing stormproof never does.
# ruff: noqa: PLC0415

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from stormproof import _metering
from stormproof import _metric_names as names
from stormproof._core.errors import ConfigError
from stormproof._metric_names import DESCRIPTIONS, KINDS, prometheus_label, prometheus_name

__all__ = ["PrometheusCollector", "enable_prometheus"]


def _prometheus_client() -> Any:
    try:
        import prometheus_client
    except ImportError:  # pragma: no cover - exercised without the extra installed
        raise ImportError(
            "stormproof's Prometheus metrics need prometheus_client: "
            "pip install 'stormproof[prometheus]'"
        ) from None
    return prometheus_client


class PrometheusCollector:
    """A prometheus_client collector of every stormproof metric (see ``_metric_names``)."""

    def describe(self) -> list[Any]:
        return []  # described at collection only: the label sets depend on the policies

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import Metric

        families: dict[str, Any] = {}
        for point in _metering.snapshot():
            kind = KINDS[point.instrument]
            name = prometheus_name(point.instrument)
            family = families.get(name)
            if family is None:
                family = families[name] = Metric(
                    name, DESCRIPTIONS[point.instrument], "counter" if kind == "counter" else kind
                )
            labels = {prometheus_label(key): value for key, value in point.attributes.items()}
            if kind == "counter":
                family.add_sample(name + "_total", labels, point.value)
            elif kind == "gauge":
                family.add_sample(name, labels, point.value)
            else:
                histogram = point.histogram
                assert histogram is not None
                running = 0
                for bound, count in zip(_metering.BOUNDS, histogram.counts, strict=False):
                    running += count
                    family.add_sample(name + "_bucket", {**labels, "le": _le(bound)}, running)
                family.add_sample(name + "_bucket", {**labels, "le": "+Inf"}, histogram.count)
                family.add_sample(name + "_count", labels, histogram.count)
                family.add_sample(name + "_sum", labels, histogram.sum)
        yield from families.values()


def _le(bound: float) -> str:
    return repr(float(bound))


_lock = threading.Lock()
_registries: dict[int, Any] = {}


def enable_prometheus(registry: Any = None) -> Callable[[], None]:
    """Export stormproof's metrics to ``registry`` (prometheus_client's default
    registry if None), read at each scrape. Every policy is metered from now on, those
    already built included. Returns a function that stops the export."""
    client = _prometheus_client()
    if registry is None:
        registry = client.REGISTRY
    elif not isinstance(registry, client.CollectorRegistry):
        raise ConfigError("registry", "a prometheus_client.CollectorRegistry or None", registry)
    with _lock:
        if id(registry) in _registries:
            raise ConfigError(
                "registry",
                "a registry stormproof is not exporting to already (call the function "
                "the first enable_prometheus returned to stop that export)",
                registry,
            )
        collector = PrometheusCollector()
        registry.register(collector)
        handle = _metering.start()
        _registries[id(registry)] = registry

    def stop() -> None:
        with _lock:
            if _registries.pop(id(registry), None) is None:
                return
            registry.unregister(collector)
            handle.close()

    return stop


assert set(KINDS) >= {names.CALLS, names.CALL_DURATION}
