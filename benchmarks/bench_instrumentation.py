"""What metrics cost on the success path: each policy with nothing exported, with
OpenTelemetry, and with Prometheus, in alternating rounds of one process.

Cases (decorated functions; overhead over a bare call, in ns):

- ``retry``: ``Retry(on=ConnectionError)`` (counts the call and its attempt, and times
  both);
- ``breaker``: ``CircuitBreaker``;
- ``pipeline``: ``Pipeline(Retry, CircuitBreaker, Bulkhead)`` (four policies, each
  counted: the pipeline and its three stages);
- ``cache hit``: ``Cache`` answering from a fresh entry;
- ``async retry``: the retry around an ``async def``, awaited.

Modes, alternated round by round (the machine's changes of speed touch every mode):

- ``off``: nothing exported: the policies' own classes run;
- ``otel``: ``enable_otel`` with an OpenTelemetry SDK ``MeterProvider`` and an
  in-memory reader (collected once per round, outside the timing);
- ``prometheus``: ``enable_prometheus`` with a fresh ``CollectorRegistry`` (scraped
  once per round, outside the timing);
- for reference, ``otel direct``: what a listener that records each call in the SDK's
  own instruments costs (a ``Counter.add`` and a ``Histogram.record`` per call, the
  form Polly and resilience4j use on their platforms), timed around the bare call.

Timed in CPU time of the benchmark's thread (``time.thread_time_ns``), so other
processes on the machine slow it less than they would a wall clock. Reported: per
case and mode, the median over rounds of the best-of-repeats overhead, and the added
cost of each mode over ``off``. The goal for ``otel``: under +1 us per
call over the same policy without it.

Run from the repository root (needs ``pip install -e '.[otel,prometheus]'``)::

    python benchmarks/bench_instrumentation.py             # about 1 minute
    python benchmarks/bench_instrumentation.py --rounds 3  # quicker
    python benchmarks/bench_instrumentation.py --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
from collections.abc import Awaitable, Callable
from itertools import repeat
from pathlib import Path
from time import perf_counter, thread_time_ns
from typing import Any

CALLS = 50_000
REPEATS = 5


def _best(loop: Callable[[], int], calls: int) -> float:
    best = None
    for _ in range(REPEATS):
        gc.collect()
        gc.disable()
        try:
            elapsed = loop()
        finally:
            gc.enable()
        best = elapsed if best is None else min(best, elapsed)
    assert best is not None
    return best / calls


def _sync(fn: Callable[[int], Any], calls: int) -> Callable[[], int]:
    def loop() -> int:
        start = thread_time_ns()
        for _ in repeat(None, calls):
            fn(1)
        return thread_time_ns() - start

    return loop


def _async(
    fn: Callable[[int], Awaitable[Any]], calls: int, loop: asyncio.AbstractEventLoop
) -> Callable[[], int]:
    async def timed() -> int:
        start = thread_time_ns()
        for _ in repeat(None, calls):
            await fn(1)
        return thread_time_ns() - start

    return lambda: loop.run_until_complete(timed())


def _cases() -> dict[str, Callable[[int], Any]]:
    from stormproof import Bulkhead, Cache, CircuitBreaker, Pipeline, Retry  # noqa: PLC0415

    def f(x: int) -> int:
        return x

    cache = Cache(ttl=3600, name="bench-cache")
    cached = cache(f)
    cached(1)  # the entry every timed call finds fresh
    return {
        "retry": Retry(on=ConnectionError, name="bench-retry")(f),
        "breaker": CircuitBreaker("bench-breaker")(f),
        "pipeline": Pipeline(
            Retry(on=ConnectionError, name="r"), CircuitBreaker("b"), Bulkhead(10, name="h")
        )(f),
        "cache hit": cached,
    }


def _direct() -> Callable[[int], Any]:
    """A bare call recorded in the OpenTelemetry SDK's synchronous instruments."""
    from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: PLC0415

    meter = MeterProvider(metric_readers=[InMemoryMetricReader()]).get_meter("direct")
    calls = meter.create_counter("calls")
    durations = meter.create_histogram("duration", unit="s")
    attributes = {"policy": "db", "policy.kind": "retry", "outcome": "success"}

    def f(x: int) -> int:
        start = perf_counter()
        result = x
        durations.record(perf_counter() - start, attributes)
        calls.add(1, attributes)
        return result

    return f


def _round(mode: str, loop: asyncio.AbstractEventLoop) -> dict[str, float]:
    from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: PLC0415
    from prometheus_client import CollectorRegistry, generate_latest  # noqa: PLC0415

    from stormproof import Retry  # noqa: PLC0415
    from stormproof.instrumentation import enable_otel, enable_prometheus  # noqa: PLC0415

    def bare(x: int) -> int:
        return x

    async def abare(x: int) -> int:
        return x

    cases = _cases()
    aretry = Retry(on=ConnectionError, name="bench-aretry")(abare)
    stop: Callable[[], None] | None = None
    collect: Callable[[], object] = lambda: None  # noqa: E731
    if mode == "otel":
        reader = InMemoryMetricReader()
        stop = enable_otel(MeterProvider(metric_readers=[reader]))
        collect = reader.get_metrics_data
    elif mode == "prometheus":
        registry = CollectorRegistry()
        stop = enable_prometheus(registry)
        collect = lambda: generate_latest(registry)  # noqa: E731
    try:
        out: dict[str, float] = {}
        base = _best(_sync(bare, CALLS), CALLS)
        for name, fn in cases.items():
            out[name] = _best(_sync(fn, CALLS), CALLS) - base
        abase = _best(_async(abare, CALLS // 2, loop), CALLS // 2)
        out["async retry"] = _best(_async(aretry, CALLS // 2, loop), CALLS // 2) - abase
        if mode == "off":
            out["otel direct"] = _best(_sync(_direct(), CALLS), CALLS) - base
        collected = collect()
        assert mode == "off" or collected, "the exporter collected nothing"
    finally:
        if stop is not None:
            stop()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds per mode (default 7)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    try:
        import opentelemetry.sdk  # noqa: F401, PLC0415
        import prometheus_client  # noqa: F401, PLC0415
    except ImportError:
        parser.error("needs the exporters: pip install -e '.[otel,prometheus]'")
    modes = ("off", "otel", "prometheus")
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
    loop = asyncio.new_event_loop()
    try:
        for number in range(args.rounds):
            for mode in modes:
                results[mode].append(_round(mode, loop))
            print(f"round {number + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        loop.close()
    median = {
        mode: {case: statistics.median(r[case] for r in rounds) for case in rounds[0]}
        for mode, rounds in results.items()
    }
    off = median["off"]
    print(f"Success-path overhead over a bare call, ns (median of {args.rounds} rounds)\n")
    print("| case | off | otel | prometheus | otel added | prometheus added |")
    print("| --- | --- | --- | --- | --- | --- |")
    for case in median["otel"]:
        otel, prom = median["otel"][case], median["prometheus"][case]
        print(
            f"| {case} | {off[case]:.0f} | {otel:.0f} | {prom:.0f} | "
            f"+{otel - off[case]:.0f} | +{prom - off[case]:.0f} |"
        )
    direct = off["otel direct"]
    print(f"\nReference: a call recorded in the OpenTelemetry SDK's instruments: +{direct:.0f} ns")
    worst = max(median["otel"][c] - off[c] for c in median["otel"] if c != "pipeline")
    print(f"Goal: OpenTelemetry adds under 1000 ns per policy call; worst policy: +{worst:.0f} ns")
    if args.json is not None:
        args.json.write_text(json.dumps({"rounds": results, "median": median}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
