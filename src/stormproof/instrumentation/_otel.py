"""stormproof's metrics through OpenTelemetry (extra ``[otel]``).

Counters and gauges are asynchronous instruments on a meter named ``stormproof``:
their callbacks read the counts when a reader collects, so nothing is recorded in
the SDK on the call path (one synchronous ``Counter.add`` costs about 10 us in the
Python SDK). The two duration histograms are handed to each of the MeterProvider's
readers with its collection (the OpenTelemetry API has no asynchronous histogram),
as cumulative or delta points, whichever the reader asks for.
"""

# The optional libraries are imported where used, so that importing stormproof never does.
# ruff: noqa: PLC0415

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from stormproof import _metering
from stormproof._core.errors import ConfigError
from stormproof._metric_names import DESCRIPTIONS, KINDS, UNITS

__all__ = ["enable_otel"]

SCOPE = "stormproof"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("stormproof")
    except PackageNotFoundError:  # pragma: no cover - a source tree without metadata
        return "0"


def _sdk() -> Any:
    try:
        from opentelemetry.sdk import metrics as sdk_metrics
    except ImportError:  # pragma: no cover - exercised without the extra installed
        raise ImportError(
            "stormproof's OpenTelemetry metrics need the OpenTelemetry SDK: "
            "pip install 'stormproof[otel]'"
        ) from None
    return sdk_metrics


class _Snapshots:
    """The counts as of the collection in progress: taken when a reader starts
    collecting, so that every instrument of one collection reports the same moment."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._points: list[_metering.Point] = []

    def take(self) -> list[_metering.Point]:
        points = _metering.snapshot()
        with self._lock:
            self._points = points
        return points

    def points(self, instrument: str) -> list[_metering.Point]:
        with self._lock:
            return [point for point in self._points if point.instrument == instrument]


_lock = threading.Lock()
_providers: dict[int, Any] = {}


def enable_otel(meter_provider: Any = None) -> Callable[[], None]:
    """Export stormproof's metrics through an OpenTelemetry SDK ``MeterProvider`` (the
    global one if None; set it first with ``opentelemetry.metrics.set_meter_provider``).
    Every policy is metered from now on, those already built included. Returns a
    function that stops the export."""
    sdk_metrics = _sdk()
    from opentelemetry import metrics as api

    provider = api.get_meter_provider() if meter_provider is None else meter_provider
    if not isinstance(provider, sdk_metrics.MeterProvider):
        raise ConfigError(
            "meter_provider",
            "an OpenTelemetry SDK MeterProvider (pass one, or set the global one with "
            "opentelemetry.metrics.set_meter_provider before enabling)",
            provider,
        )
    readers = _readers(provider)
    if any(getattr(reader, "_collect", None) is None for reader in readers):
        raise ConfigError(
            "meter_provider", "a MeterProvider whose readers are registered", provider
        )
    with _lock:
        if id(provider) in _providers:
            raise ConfigError(
                "meter_provider",
                "a MeterProvider stormproof is not exporting to already (call the function "
                "the first enable_otel returned to stop that export)",
                provider,
            )
        _providers[id(provider)] = provider
        meter = provider.get_meter(SCOPE, _version())
        snapshots = _Snapshots()
        instruments = [
            _observable(meter, name, snapshots)
            for name, kind in KINDS.items()
            if kind != "histogram"
        ]
        bridges = [_HistogramBridge(reader, provider, snapshots) for reader in readers]
        handle = _metering.start()

    def stop() -> None:
        with _lock:
            if _providers.pop(id(provider), None) is None:
                return
            for bridge in bridges:
                bridge.close()
            for instrument in instruments:
                instrument.stopped = True
            handle.close()

    return stop


def _readers(provider: Any) -> list[Any]:
    """The provider's metric readers (the SDK keeps them on the provider, or in its
    configuration in older versions)."""
    readers: Iterable[Any] | None = getattr(provider, "_metric_readers", None)
    if readers is None:
        readers = getattr(getattr(provider, "_sdk_config", None), "metric_readers", ())
    return list(readers or ())


class _Callback:
    """An asynchronous instrument's callback; yields nothing once its export stopped
    (the OpenTelemetry API cannot remove an instrument from a meter)."""

    def __init__(self, instrument: str, snapshots: _Snapshots) -> None:
        self.instrument = instrument
        self.snapshots = snapshots
        self.stopped = False

    def __call__(self, options: Any) -> Iterable[Any]:
        from opentelemetry.metrics import Observation

        if self.stopped:
            return []
        return [
            Observation(point.value, point.attributes)
            for point in self.snapshots.points(self.instrument)
        ]


def _observable(meter: Any, instrument: str, snapshots: _Snapshots) -> _Callback:
    callback = _Callback(instrument, snapshots)
    create = (
        meter.create_observable_counter
        if KINDS[instrument] == "counter"
        else meter.create_observable_gauge
    )
    create(
        instrument,
        callbacks=[callback],
        unit=UNITS[instrument],
        description=DESCRIPTIONS[instrument],
    )
    return callback


class _HistogramBridge:
    """Takes the snapshot each collection of one reader reports, and adds the
    duration histograms to what it collected."""

    def __init__(self, reader: Any, provider: Any, snapshots: _Snapshots) -> None:
        self.reader = reader
        self.snapshots = snapshots
        self.resource = provider._sdk_config.resource
        self.original = reader._collect
        self.start_ns = time.time_ns()
        self.last_ns = self.start_ns
        self.previous: dict[tuple[str, tuple[tuple[str, str], ...]], _metering.Histogram] = {}
        self.lock = threading.Lock()
        reader._collect = self.collect

    def close(self) -> None:
        if self.reader._collect == self.collect:
            self.reader._collect = self.original

    def collect(self, reader: Any, timeout_millis: float = 10_000) -> Any:
        points = self.snapshots.take()  # read by the callbacks the collection runs
        data = self.original(reader, timeout_millis=timeout_millis)
        metrics = self.metrics(points)
        return data if not metrics else _with(data, metrics, self.resource)

    def metrics(self, points: list[_metering.Point]) -> list[Any]:
        from opentelemetry.sdk.metrics import Histogram as HistogramInstrument
        from opentelemetry.sdk.metrics.export import (
            AggregationTemporality,
            Histogram,
            HistogramDataPoint,
            Metric,
        )

        temporality = next(
            (
                chosen
                for instrument, chosen in self.reader._instrument_class_temporality.items()
                if issubclass(instrument, HistogramInstrument)
            ),
            AggregationTemporality.CUMULATIVE,
        )
        delta = temporality == AggregationTemporality.DELTA
        points = [p for p in points if p.histogram is not None]
        now_ns = time.time_ns()
        by_name: dict[str, list[Any]] = {}
        with self.lock:
            start_ns = self.last_ns if delta else self.start_ns
            for point in points:
                histogram = point.histogram
                assert histogram is not None
                key = (point.instrument, tuple(sorted(point.attributes.items())))
                counts, count, total = list(histogram.counts), histogram.count, histogram.sum
                if delta:
                    before = self.previous.get(key)
                    self.previous[key] = histogram
                    if before is not None:
                        counts = [a - b for a, b in zip(counts, before.counts, strict=True)]
                        count -= before.count
                        total -= before.sum
                    if count == 0:
                        continue
                by_name.setdefault(point.instrument, []).append(
                    HistogramDataPoint(
                        attributes=dict(point.attributes),
                        start_time_unix_nano=start_ns,
                        time_unix_nano=now_ns,
                        count=count,
                        sum=total,
                        bucket_counts=counts,
                        explicit_bounds=list(_metering.BOUNDS),
                        min=histogram.min,
                        max=histogram.max,
                    )
                )
            self.last_ns = now_ns
        return [
            Metric(
                name=name,
                description=DESCRIPTIONS[name],
                unit=UNITS[name],
                data=Histogram(data_points=data_points, aggregation_temporality=temporality),
            )
            for name, data_points in by_name.items()
        ]


def _with(data: Any, metrics: list[Any], resource: Any) -> Any:
    """``data`` (a collection, or None) with ``metrics`` in stormproof's scope."""
    from opentelemetry.sdk.metrics.export import MetricsData, ResourceMetrics, ScopeMetrics
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    resource_metrics = list(data.resource_metrics) if data is not None else []
    if not resource_metrics:
        resource_metrics = [ResourceMetrics(resource=resource, scope_metrics=[], schema_url="")]
    first = resource_metrics[0]
    scopes = list(first.scope_metrics)
    for index, scope in enumerate(scopes):
        if scope.scope.name == SCOPE:
            scopes[index] = ScopeMetrics(
                scope=scope.scope, metrics=[*scope.metrics, *metrics], schema_url=scope.schema_url
            )
            break
    else:
        scopes.append(
            ScopeMetrics(
                scope=InstrumentationScope(SCOPE, _version()), metrics=metrics, schema_url=""
            )
        )
    resource_metrics[0] = ResourceMetrics(
        resource=first.resource, scope_metrics=scopes, schema_url=first.schema_url
    )
    return MetricsData(resource_metrics=resource_metrics)
