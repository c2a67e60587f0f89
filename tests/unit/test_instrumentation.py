"""Metrics read back from the real OpenTelemetry SDK (an in-memory reader) and a real
prometheus_client registry, after driving each policy through success, retry,
rejection, breaker transitions, cache hit/stale/miss/negative and failover.

Durations come from each policy's clock, so with a ``FakeClock`` they are exact.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import Histogram as OtelHistogram
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from prometheus_client import CollectorRegistry

from stormproof import (
    AdaptiveThrottle,
    Backoff,
    Bulkhead,
    BulkheadFull,
    Cache,
    CircuitBreaker,
    CircuitOpen,
    ConfigError,
    Failover,
    Pipeline,
    Retry,
    Throttled,
    TokenBucketBudget,
    _metering,
)
from stormproof import _metric_names as names
from stormproof.events import CacheStaleServed
from stormproof.instrumentation import enable_otel, enable_prometheus
from stormproof.testing import FakeClock, capture_events

NO_WAIT = Backoff(base=0.1, cap=0.1, jitter="none")


@pytest.fixture(autouse=True)
def _fresh_counts() -> Iterator[None]:
    gc.collect()  # the gauges read live objects: none left from other tests
    _metering.reset()
    yield
    _metering.reset()


@pytest.fixture
def reader() -> Iterator[InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    stop = enable_otel(MeterProvider(metric_readers=[reader]))
    yield reader
    stop()


@pytest.fixture
def registry() -> Iterator[CollectorRegistry]:
    registry = CollectorRegistry()
    stop = enable_prometheus(registry)
    yield registry
    stop()


class Otel:
    """One collection, by instrument name."""

    def __init__(self, reader: InMemoryMetricReader) -> None:
        data = reader.get_metrics_data()
        assert data is not None
        self.metrics = {
            metric.name: metric
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            if scope.scope.name == "stormproof"
            for metric in scope.metrics
        }

    def points(self, name: str) -> list[Any]:
        return list(self.metrics[name].data.data_points)

    def value(self, name: str, **attributes: str) -> float:
        """The value (or a histogram's count) of the one point with these attributes."""
        wanted = {key.replace("__", "."): value for key, value in attributes.items()}
        found = [p for p in self.points(name) if dict(p.attributes) == wanted]
        assert len(found) == 1, (wanted, [dict(p.attributes) for p in self.points(name)])
        point = found[0]
        return float(point.count if hasattr(point, "bucket_counts") else point.value)

    def histogram(self, name: str, **attributes: str) -> Any:
        wanted = {key.replace("__", "."): value for key, value in attributes.items()}
        (point,) = [p for p in self.points(name) if dict(p.attributes) == wanted]
        return point


def fails(clock: FakeClock, outcomes: list[Any], seconds: float = 0.0) -> Callable[..., Any]:
    """A function that takes ``seconds`` of the clock, then raises or returns the next
    outcome."""
    queue = list(outcomes)

    def work(*args: Any) -> Any:
        clock.advance(seconds)
        outcome = queue.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return work


def test_a_retried_call_is_counted_with_its_attempts_retries_and_durations(
    reader: InMemoryMetricReader, clock: FakeClock
) -> None:
    retry = Retry(on=ConnectionError, attempts=3, backoff=NO_WAIT, clock=clock, name="db")
    work = fails(clock, [ConnectionError("reset"), "row"], seconds=0.2)
    assert retry.call(work) == "row"

    otel = Otel(reader)
    base = {"policy": "db", "policy__kind": "retry"}
    assert otel.value(names.CALLS, **base, outcome="success") == 1
    assert (
        otel.value(names.ATTEMPTS, **base, outcome="failure", error__type="transient", attempt="1")
        == 1
    )
    assert otel.value(names.ATTEMPTS, **base, outcome="success", attempt="2") == 1
    assert otel.value(names.RETRIES, **base, reason="transient") == 1
    first = otel.histogram(names.ATTEMPT_DURATION, **base, outcome="failure", attempt="1")
    assert (first.count, first.sum, first.min, first.max) == (1, pytest.approx(0.2), 0.2, 0.2)
    assert list(first.explicit_bounds) == list(_metering.BOUNDS)
    assert first.bucket_counts[list(_metering.BOUNDS).index(0.25)] == 1  # 0.2 s: le 0.25
    call = otel.histogram(names.CALL_DURATION, **base, outcome="success")
    assert call.sum == pytest.approx(0.2 + 0.1 + 0.2)  # attempt, backoff, attempt
    units = {name: metric.unit for name, metric in otel.metrics.items()}
    assert units[names.CALL_DURATION] == units[names.ATTEMPT_DURATION] == "s"
    assert units[names.CALLS] == "{call}"
    assert units[names.ATTEMPTS] == "{attempt}"
    assert units[names.RETRIES] == "{retry}"


def test_a_call_that_fails_is_counted_by_error_type_and_its_attempts_bucketed(
    reader: InMemoryMetricReader, clock: FakeClock
) -> None:
    retry = Retry(
        on=(ConnectionError, TimeoutError), attempts=5, backoff=NO_WAIT, clock=clock, name="db"
    )
    with pytest.raises(TimeoutError):
        retry.call(fails(clock, [TimeoutError("read timed out")] * 5))
    otel = Otel(reader)
    base = {"policy": "db", "policy__kind": "retry"}
    assert otel.value(names.CALLS, **base, outcome="failure", error__type="timeout") == 1
    for attempt, count in (("1", 1), ("2", 1), ("3", 1), ("4+", 2)):
        assert (
            otel.value(
                names.ATTEMPTS, **base, outcome="failure", error__type="timeout", attempt=attempt
            )
            == count
        )
    # durations are per outcome: the error type is on the counters only
    assert otel.value(names.CALL_DURATION, **base, outcome="failure") == 1


def test_every_rejection_reason_is_counted(reader: InMemoryMetricReader, clock: FakeClock) -> None:
    # breaker_open
    breaker = CircuitBreaker("dep", window=2, minimum_calls=2, open_for=30, clock=clock)
    for _ in range(2):
        with pytest.raises(ConnectionError):
            breaker.call(fails(clock, [ConnectionError()]))
    with pytest.raises(CircuitOpen):
        breaker.call(lambda: "never")
    # budget: a bucket with room for one retry
    budget = TokenBucketBudget(capacity=5, retry_cost=5, name="bucket")
    budgeted = Retry(
        on=ConnectionError, attempts=5, backoff=NO_WAIT, budget=budget, clock=clock, name="b"
    )
    with pytest.raises(ConnectionError):
        budgeted.call(fails(clock, [ConnectionError()] * 5))
    # deadline: the next backoff would end past it
    late = Retry(
        on=ConnectionError, attempts=5, deadline=0.15, backoff=NO_WAIT, clock=clock, name="late"
    )
    with pytest.raises(ConnectionError):
        late.call(fails(clock, [ConnectionError()] * 5, seconds=0.1))
    # throttled: adaptive throttling that rejects every request
    throttle = AdaptiveThrottle(
        k=1.0, minimum_requests=1, clock=clock, random=lambda: 0.0, name="adaptive"
    )
    throttled = Retry(on=ConnectionError, attempts=1, budget=throttle, clock=clock, name="t")
    for _ in range(20):
        with pytest.raises((ConnectionError, Throttled)):
            throttled.call(fails(clock, [ConnectionError()]))
    # bulkhead_full: a second call while the only slot is held
    bulkhead = Bulkhead(1, name="pool", clock=clock)
    with pytest.raises(BulkheadFull):
        bulkhead.call(lambda: bulkhead.call(lambda: "inner"))

    otel = Otel(reader)
    assert (
        otel.value(names.REJECTIONS, policy="dep", policy__kind="breaker", reason="breaker_open")
        == 1
    )
    assert otel.value(names.REJECTIONS, policy="b", policy__kind="retry", reason="budget") == 1
    assert otel.value(names.REJECTIONS, policy="late", policy__kind="retry", reason="deadline") == 1
    assert (
        otel.value(names.REJECTIONS, policy="pool", policy__kind="bulkhead", reason="bulkhead_full")
        == 1
    )
    throttled_count = otel.value(
        names.REJECTIONS, policy="adaptive", policy__kind="adaptive_throttle", reason="throttled"
    )
    assert throttled_count >= 1
    assert (
        otel.value(
            names.CALLS,
            policy="t",
            policy__kind="retry",
            outcome="failure",
            error__type="throttled",
        )
        == throttled_count
    )
    assert (
        otel.value(
            names.CALLS,
            policy="dep",
            policy__kind="breaker",
            outcome="failure",
            error__type="breaker_open",
        )
        == 1
    )
    assert (
        otel.value(
            names.CALLS,
            policy="pool",
            policy__kind="bulkhead",
            outcome="failure",
            error__type="bulkhead_full",
        )
        == 2  # the call refused, and the call around it, which it failed
    )


def test_breaker_state_and_transitions(reader: InMemoryMetricReader, clock: FakeClock) -> None:
    breaker = CircuitBreaker("flaky-dep", window=2, minimum_calls=2, open_for=30, clock=clock)
    for _ in range(2):
        with pytest.raises(ConnectionError):
            breaker.call(fails(clock, [ConnectionError()]))
    otel = Otel(reader)
    states = {
        p.attributes["state"]: p.value
        for p in otel.points(names.BREAKER_STATE)
        if p.attributes["policy"] == "flaky-dep"
    }
    assert states["open"] == 1
    assert states["closed"] == 0
    assert states["half_open"] == 0
    assert set(states) == {"closed", "open", "half_open", "forced_open", "disabled", "metrics_only"}
    assert otel.metrics[names.BREAKER_STATE].unit == "{state}"
    clock.advance(30)
    assert breaker.call(lambda: "ok") == "ok"  # the probe closes it
    otel = Otel(reader)
    states = {
        p.attributes["state"]: p.value
        for p in otel.points(names.BREAKER_STATE)
        if p.attributes["policy"] == "flaky-dep"
    }
    assert states["closed"] == 1
    assert states["open"] == 0
    transitions = {
        p.attributes["state"]: p.value
        for p in otel.points(names.BREAKER_TRANSITIONS)
        if p.attributes["policy"] == "flaky-dep"
    }
    assert transitions == {"open": 1, "half_open": 1, "closed": 1}
    assert {tuple(sorted(p.attributes)) for p in otel.points(names.BREAKER_TRANSITIONS)} == {
        ("policy", "state")
    }


def test_cache_lookups_hit_stale_miss_and_negative(
    reader: InMemoryMetricReader, clock: FakeClock
) -> None:
    cache = Cache(
        ttl=10, stale_ttl=100, negative_ttl=10, negative_on=KeyError, clock=clock, name="users"
    )
    state = {"down": False}

    def origin(key: str) -> str:
        if key == "nobody":
            raise KeyError(key)
        if state["down"]:
            raise ConnectionError("origin down")
        return key.upper()

    assert cache.call(origin, "ann") == "ANN"  # miss
    assert cache.call(origin, "ann") == "ANN"  # hit
    for _ in range(2):
        with pytest.raises(KeyError):
            cache.call(origin, "nobody")  # miss, then negative
    clock.advance(20)
    state["down"] = True
    assert cache.call(origin, "ann") == "ANN"  # stale
    otel = Otel(reader)
    lookups = {
        p.attributes["result"]: p.value
        for p in otel.points(names.CACHE_LOOKUPS)
        if p.attributes["policy"] == "users"
    }
    assert lookups == {"hit": 1, "miss": 2, "negative": 1, "stale": 1}
    assert otel.metrics[names.CACHE_LOOKUPS].unit == "{lookup}"
    assert {tuple(sorted(p.attributes)) for p in otel.points(names.CACHE_LOOKUPS)} == {
        ("policy", "result")
    }


def test_failover_switches_and_gauges(reader: InMemoryMetricReader, clock: FakeClock) -> None:
    def east(key: str) -> str:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    def west(key: str) -> str:
        return "west"

    breaker = CircuitBreaker("region", window=2, minimum_calls=2, open_for=60, clock=clock)
    failover = Failover({"east": east, "west": west}, breaker=breaker, clock=clock, name="regions")
    for _ in range(3):
        assert failover("k") == "west"
    budget = TokenBucketBudget(capacity=50, name="fleet")
    bulkhead = Bulkhead(4, name="workers", clock=clock)
    inside: dict[str, float] = {}

    def work() -> str:
        otel = Otel(reader)
        inside["in_flight"] = otel.value(names.BULKHEAD_IN_FLIGHT, policy="workers")
        return "done"

    assert bulkhead.call(work) == "done"
    otel = Otel(reader)
    assert otel.value(names.FAILOVER_SWITCHES, policy="regions") == 1
    assert inside["in_flight"] == 1
    assert otel.value(names.BULKHEAD_IN_FLIGHT, policy="workers") == 0
    assert otel.value(names.BUDGET_AVAILABLE, policy="fleet", policy__kind="token_bucket") == 50
    assert otel.metrics[names.BUDGET_AVAILABLE].unit == "{token}"
    del budget


def test_prometheus_names_types_and_labels(registry: CollectorRegistry, clock: FakeClock) -> None:
    retry = Retry(on=ConnectionError, attempts=3, backoff=NO_WAIT, clock=clock, name="db")
    assert retry.call(fails(clock, [ConnectionError(), "row"], seconds=0.2)) == "row"
    cache = Cache(ttl=10, clock=clock, name="users")
    cache.call(str.upper, "a")
    cache.call(str.upper, "a")
    breaker = CircuitBreaker("dep", clock=clock)
    breaker.call(lambda: 1)

    sample = registry.get_sample_value
    labels = {"policy": "db", "policy_kind": "retry"}
    assert sample("stormproof_calls_total", {**labels, "outcome": "success"}) == 1
    assert (
        sample(
            "stormproof_attempts_total",
            {**labels, "outcome": "failure", "error_type": "transient", "attempt": "1"},
        )
        == 1
    )
    assert sample("stormproof_retries_total", {**labels, "reason": "transient"}) == 1
    assert sample("stormproof_cache_lookups_total", {"policy": "users", "result": "hit"}) == 1
    assert sample("stormproof_cache_lookups_total", {"policy": "users", "result": "miss"}) == 1
    assert sample("stormproof_breaker_state", {"policy": "dep", "state": "closed"}) == 1
    duration = {**labels, "outcome": "failure", "attempt": "1"}
    assert sample("stormproof_attempt_duration_seconds_bucket", {**duration, "le": "0.1"}) == 0
    assert sample("stormproof_attempt_duration_seconds_bucket", {**duration, "le": "0.25"}) == 1
    assert sample("stormproof_attempt_duration_seconds_bucket", {**duration, "le": "+Inf"}) == 1
    assert sample("stormproof_attempt_duration_seconds_count", duration) == 1
    assert sample("stormproof_attempt_duration_seconds_sum", duration) == pytest.approx(0.2)
    types = {family.name: family.type for family in registry.collect()}
    assert types["stormproof_calls"] == "counter"
    assert types["stormproof_call_duration_seconds"] == "histogram"
    assert types["stormproof_breaker_state"] == "gauge"
    exposed_labels = {
        key for family in registry.collect() for s in family.samples for key in s.labels
    }
    assert exposed_labels <= {
        "policy",
        "policy_kind",
        "outcome",
        "error_type",
        "attempt",
        "reason",
        "result",
        "state",
        "le",
    }


def test_distinct_arguments_and_messages_make_no_new_attribute_values(
    reader: InMemoryMetricReader, registry: CollectorRegistry, clock: FakeClock
) -> None:
    retry = Retry(on=ConnectionError, attempts=2, backoff=NO_WAIT, clock=clock, name="db")
    cache = Cache(ttl=10, clock=clock, name="users")

    def flaky(key: str) -> str:
        number = int(key.split("-")[1])
        if number % 3 == 0:
            raise ConnectionError(f"connection to https://db-{number}.internal:5432 reset")
        return key

    def drive(start: int, stop: int) -> None:
        for number in range(start, stop):
            key = f"user-{number}"
            try:
                retry.call(flaky, key)
            except ConnectionError:
                pass
            cache.call(str.upper, key)

    def values() -> set[tuple[str, str]]:
        otel = Otel(reader)
        found = {
            (key, str(value))
            for metric in otel.metrics.values()
            for point in metric.data.data_points
            for key, value in point.attributes.items()
        }
        found |= {
            (key, value)
            for family in registry.collect()
            for sample in family.samples
            for key, value in sample.labels.items()
            if key != "le"
        }
        return found

    drive(0, 100)
    before = values()
    drive(100, 10_000)
    after = values()
    assert after == before
    assert len(after) < 40
    assert not any("user-" in value or "https" in value for _, value in after)


def test_counts_are_exact_under_threads(reader: InMemoryMetricReader) -> None:
    retry = Retry(on=ConnectionError, name="shared")
    calls = 3000
    threads = [
        threading.Thread(target=lambda: [retry.call(int, "1") for _ in range(calls)])
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    otel = Otel(reader)
    base = {"policy": "shared", "policy__kind": "retry"}
    assert otel.value(names.CALLS, **base, outcome="success") == 8 * calls
    assert otel.value(names.ATTEMPTS, **base, outcome="success", attempt="1") == 8 * calls
    histogram = otel.histogram(names.CALL_DURATION, **base, outcome="success")
    assert sum(histogram.bucket_counts) == histogram.count == 8 * calls


def test_functions_decorated_before_enabling_are_counted_and_none_after_stopping(
    clock: FakeClock,
) -> None:
    retry = Retry(on=ConnectionError, clock=clock, name="early")
    pipeline = Pipeline(
        Retry(on=ConnectionError, clock=clock, name="outer"), CircuitBreaker("inner", clock=clock)
    )

    @retry
    def decorated() -> str:
        return "ok"

    @pipeline
    def piped() -> str:
        return "ok"

    assert type(retry) is Retry
    reader = InMemoryMetricReader()
    stop = enable_otel(MeterProvider(metric_readers=[reader]))
    try:
        assert type(retry) is not Retry
        assert isinstance(retry, Retry)
        assert decorated() == piped() == "ok"
        otel = Otel(reader)
        assert otel.value(names.CALLS, policy="early", policy__kind="retry", outcome="success") == 1
        assert otel.value(names.CALLS, policy="outer", policy__kind="retry", outcome="success") == 1
        assert (
            otel.value(names.CALLS, policy="inner", policy__kind="breaker", outcome="success") == 1
        )
        assert (
            otel.value(names.CALLS, policy="pipeline", policy__kind="pipeline", outcome="success")
            == 1
        )
    finally:
        stop()
    assert type(retry) is Retry
    assert retry.name == "early"
    assert repr(retry).startswith("Retry(")
    assert decorated() == piped() == "ok"
    assert _metering.snapshot() == [] or all(
        p.value in (0, 1) for p in _metering.snapshot() if p.instrument == names.CALLS
    )


def test_async_calls_are_counted(reader: InMemoryMetricReader, clock: FakeClock) -> None:
    retry = Retry(on=ConnectionError, attempts=3, backoff=NO_WAIT, clock=clock, name="adb")
    outcomes: list[Any] = [ConnectionError(), "row"]

    @retry
    async def query() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return str(outcome)

    assert asyncio.run(query()) == "row"
    otel = Otel(reader)
    base = {"policy": "adb", "policy__kind": "retry"}
    assert otel.value(names.CALLS, **base, outcome="success") == 1
    assert otel.value(names.ATTEMPTS, **base, outcome="success", attempt="2") == 1
    assert (
        otel.value(names.ATTEMPTS, **base, outcome="failure", error__type="transient", attempt="1")
        == 1
    )


def test_a_delta_reader_gets_only_what_is_new(clock: FakeClock) -> None:
    reader = InMemoryMetricReader(
        preferred_temporality={OtelHistogram: AggregationTemporality.DELTA}
    )
    stop = enable_otel(MeterProvider(metric_readers=[reader]))
    try:
        retry = Retry(on=ConnectionError, clock=clock, name="d")
        retry.call(lambda: 1)
        retry.call(lambda: 1)
        first = Otel(reader).histogram(
            names.CALL_DURATION, policy="d", policy__kind="retry", outcome="success"
        )
        retry.call(lambda: 1)
        second = Otel(reader).histogram(
            names.CALL_DURATION, policy="d", policy__kind="retry", outcome="success"
        )
        assert (first.count, second.count) == (2, 1)
        assert second.start_time_unix_nano == first.time_unix_nano
    finally:
        stop()


def test_bad_arguments_are_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="registry"):
        enable_prometheus("default")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="meter_provider"):
        enable_otel(object())
    registry = CollectorRegistry()
    stop = enable_prometheus(registry)
    try:
        with pytest.raises(ConfigError, match="already"):
            enable_prometheus(registry)
    finally:
        stop()
    stop()  # stopping twice is harmless
    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    stop = enable_otel(provider)
    try:
        with pytest.raises(ConfigError, match="already"):
            enable_otel(provider)
    finally:
        stop()


def test_a_failed_background_refresh_is_not_a_second_stale_lookup(
    reader: InMemoryMetricReader, clock: FakeClock
) -> None:
    cache = Cache(ttl=10, stale_ttl=100, stale_while_revalidate=True, clock=clock, name="swr")
    state = {"down": False}

    async def origin(key: str) -> str:
        if state["down"]:
            raise ConnectionError("origin down")
        return key.upper()

    async def main() -> None:
        assert await cache.acall(origin, "k") == "K"  # miss
        clock.advance(20)
        state["down"] = True
        assert await cache.acall(origin, "k") == "K"  # stale; the refresh fails behind it
        for _ in range(20):
            await asyncio.sleep(0)

    with capture_events() as events:
        asyncio.run(main())
    assert len(events.of(CacheStaleServed)) == 2  # revalidating, then the refresh's error
    otel = Otel(reader)
    lookups = {
        p.attributes["result"]: p.value
        for p in otel.points(names.CACHE_LOOKUPS)
        if p.attributes["policy"] == "swr"
    }
    assert lookups == {"miss": 1, "stale": 1}


def test_opentelemetry_instrument_finds_and_runs_the_instrumentor(clock: FakeClock) -> None:
    from importlib.metadata import entry_points

    (entry,) = [
        e for e in entry_points(group="opentelemetry_instrumentor") if e.name == "stormproof"
    ]
    instrumentor = entry.load()()
    reader = InMemoryMetricReader()
    instrumentor.instrument(meter_provider=MeterProvider(metric_readers=[reader]))
    try:
        retry = Retry(on=ConnectionError, clock=clock, name="auto")
        assert retry.call(lambda: "ok") == "ok"
        otel = Otel(reader)
        assert otel.value(names.CALLS, policy="auto", policy__kind="retry", outcome="success") == 1
    finally:
        instrumentor.uninstrument()
    assert type(retry) is Retry


def test_the_docs_list_every_metric_with_its_prometheus_name_type_and_unit() -> None:
    from pathlib import Path

    page = Path(__file__).parents[2] / "docs" / "observability.md"
    rows = {}
    for line in page.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`stormproof."):
            rows[cells[0].strip("`")] = cells[1:]
    assert set(rows) == set(names.KINDS)
    for instrument, (prometheus, kind_and_unit, _) in rows.items():
        suffix = "_total" if names.KINDS[instrument] == "counter" else ""
        assert prometheus == f"`{names.prometheus_name(instrument)}{suffix}`"
        assert kind_and_unit == f"{names.KINDS[instrument]}, `{names.UNITS[instrument]}`"


def test_attempts_are_counted_on_every_path_of_a_retry(
    reader: InMemoryMetricReader, clock: FakeClock
) -> None:
    # a result judged retryable, then a good one
    judged = Retry(
        on=ConnectionError,
        retry_on_result=lambda value: value == "busy",
        backoff=NO_WAIT,
        clock=clock,
        name="judged",
    )
    assert judged.call(fails(clock, ["busy", "ok"], seconds=0.01)) == "ok"
    # refused before any attempt: adaptive throttling that rejects everything
    throttle = AdaptiveThrottle(k=1.0, minimum_requests=1, clock=clock, random=lambda: 0.0)
    refused = Retry(on=ConnectionError, attempts=1, budget=throttle, clock=clock, name="refused")
    made = 0

    def counted() -> str:
        nonlocal made
        made += 1
        raise ConnectionError("down")

    for _ in range(20):
        with pytest.raises((ConnectionError, Throttled)):
            refused.call(counted)
    # nested: the inner Retry makes one attempt and leaves the rest to the outer one
    inner = Retry(on=ConnectionError, backoff=NO_WAIT, clock=clock, name="inner")
    outer = Retry(on=ConnectionError, attempts=2, backoff=NO_WAIT, clock=clock, name="outer")
    with pytest.raises(ConnectionError):
        outer.call(lambda: inner.call(fails(clock, [ConnectionError("a")])))

    otel = Otel(reader)
    base = {"policy": "judged", "policy__kind": "retry"}
    assert otel.value(names.ATTEMPTS, **base, outcome="success", attempt="1") == 1
    assert otel.value(names.ATTEMPTS, **base, outcome="success", attempt="2") == 1
    attempts = sum(
        p.value for p in otel.points(names.ATTEMPTS) if p.attributes["policy"] == "refused"
    )
    assert attempts == made < 20  # refused calls made no attempt
    assert (
        otel.value(
            names.ATTEMPTS,
            policy="inner",
            policy__kind="retry",
            outcome="failure",
            error__type="transient",
            attempt="1",
        )
        == 2
    )
    assert (
        otel.value(
            names.CALLS,
            policy="inner",
            policy__kind="retry",
            outcome="failure",
            error__type="transient",
        )
        == 2
    )
    assert (
        otel.value(
            names.ATTEMPTS,
            policy="outer",
            policy__kind="retry",
            outcome="failure",
            error__type="transient",
            attempt="2",
        )
        == 1
    )


def test_an_interrupted_retry_is_counted_and_leaves_nothing_behind(
    reader: InMemoryMetricReader, clock: FakeClock
) -> None:
    class Interrupted(BaseException):
        pass

    retry = Retry(on=ConnectionError, attempts=5, backoff=NO_WAIT, clock=clock, name="stopped")
    with pytest.raises(Interrupted):
        retry.call(fails(clock, [ConnectionError("down"), Interrupted()]))
    assert _metering._FIRST_ATTEMPT.get() is None
    assert retry.call(lambda: "ok") == "ok"  # counted as a first-attempt success
    otel = Otel(reader)
    base = {"policy": "stopped", "policy__kind": "retry"}
    assert (
        otel.value(names.ATTEMPTS, **base, outcome="failure", error__type="transient", attempt="1")
        == 1
    )
    assert otel.value(names.ATTEMPTS, **base, outcome="success", attempt="1") == 1
    assert otel.value(names.CALLS, **base, outcome="success") == 1
    assert {
        p.attributes["outcome"]
        for p in otel.points(names.CALLS)
        if p.attributes["policy"] == "stopped"
    } == {"success"}

    async def cancelled() -> None:
        outcomes: list[Any] = [ConnectionError("down")]

        async def work() -> str:
            if outcomes:
                raise outcomes.pop()
            await asyncio.Event().wait()  # the second attempt hangs until cancelled
            return "never"

        task = asyncio.ensure_future(retry.acall(work))
        for _ in range(10):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled())
    otel = Otel(reader)
    assert (
        otel.value(names.ATTEMPTS, **base, outcome="failure", error__type="transient", attempt="1")
        == 2
    )


def test_a_breaker_decorated_before_enabling_takes_the_metered_path_then_its_own(
    clock: FakeClock,
) -> None:
    breaker = CircuitBreaker("gated", clock=clock)

    @breaker
    def work() -> str:
        return "ok"

    reader = InMemoryMetricReader()
    stop = enable_otel(MeterProvider(metric_readers=[reader]))
    try:
        assert work() == "ok"
        decorated_later = breaker(lambda: "late")
        assert decorated_later() == "late"
        otel = Otel(reader)
        assert (
            otel.value(names.CALLS, policy="gated", policy__kind="breaker", outcome="success") == 2
        )
    finally:
        stop()
    assert work() == "ok"
    assert decorated_later() == "late"
    assert type(breaker) is CircuitBreaker
    closed = work.__closure__[work.__code__.co_freevars.index("closed")].cell_contents
    assert closed is breaker._state  # the fast path is open again


def test_a_degraded_fleet_backend_is_a_gauge(reader: InMemoryMetricReader) -> None:
    from stormproof.fleet import FleetBudget, MemoryBackend

    with MemoryBackend(flusher=False, name="orders-fleet") as backend:
        budget = FleetBudget(backend, name="orders", capacity=50, retry_cost=5, lease=2)
        backend.flush()
        assert Otel(reader).value(names.FLEET_DEGRADED, policy="orders-fleet") == 0
        backend.unreachable = True
        assert budget.try_retry("transient") is not None  # spends from the lease: news
        backend.flush()
        assert Otel(reader).value(names.FLEET_DEGRADED, policy="orders-fleet") == 1
        assert Otel(reader).metrics[names.FLEET_DEGRADED].unit == "{backend}"
        backend.unreachable = False
        backend.flush(only_due=False)
        assert Otel(reader).value(names.FLEET_DEGRADED, policy="orders-fleet") == 0
        assert (
            Otel(reader).value(names.BUDGET_AVAILABLE, policy="orders", policy__kind="fleet_budget")
            >= 0
        )


def test_nothing_imports_an_exporter_library_until_it_is_enabled() -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    import stormproof

    code = """
import sys
import stormproof, stormproof.instrumentation, stormproof.fleet, stormproof.cache
from stormproof import Retry
Retry(on=ConnectionError, name="db").call(lambda: "ok")
loaded = {"opentelemetry", "prometheus_client", "structlog", "redis"} & {
    name.split(".")[0] for name in sys.modules
}
assert not loaded, loaded
"""
    source = str(Path(stormproof.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": source + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
