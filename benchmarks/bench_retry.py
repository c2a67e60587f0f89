"""Per-call cost of stormproof's ``Retry`` next to tenacity, stamina and backoff.

What is measured, in nanoseconds per call, all in one process run:

1. Success path, sync: a bare call of ``def f(x): return x``, then the same
   function decorated with stormproof ``Retry(on=ConnectionError)`` (default
   options), the same with a shared ``TokenBucketBudget()`` as ``budget=``,
   tenacity ``@retry(stop=stop_after_attempt(3), wait=wait_exponential_jitter(),
   retry=retry_if_exception_type(ConnectionError))``, stamina
   ``@stamina.retry(on=ConnectionError, attempts=3)`` and backoff
   ``@backoff.on_exception(backoff.expo, ConnectionError, max_tries=3)``.
2. Success path, async: the same set around ``async def f(x): return x``, timed
   inside one running event loop (one ``asyncio.run`` per section) as a loop of
   ``await f(1)``; the bare ``await`` is reported too and nothing is subtracted.
3. Fail twice, then succeed (sync and async): a function that raises
   ``ConnectionError`` on its first two calls, a counter being reset before every
   measured call, so each call makes three attempts. Sleeping is disabled:
   stormproof through ``clock=`` a clock whose ``sleep``/``asleep`` do nothing,
   tenacity through ``sleep=`` a no-op, stamina through
   ``stamina.set_testing(True, attempts=3)`` (its retry log hooks are switched off
   for that measurement, since they would print a warning per retry), backoff by
   swapping ``time.sleep`` / ``asyncio.sleep`` as seen from ``backoff._sync`` /
   ``backoff._async`` for no-ops; every switch is undone afterwards. A reference
   row times the same three attempts in a plain ``try``/``except`` loop.

Method: each case is warmed up, then timed over several repeats (7) of a loop of
N calls with ``time.perf_counter_ns`` and the garbage collector paused (as
``timeit`` does); the minimum per-call time is reported. "Overhead" is a case's
time minus the bare call's (or bare await's) time in the same section, so the
loop's own cost cancels out.

Run from the repository root::

    python benchmarks/bench_retry.py               # full run, about 40 s on 2 cores
    python benchmarks/bench_retry.py --quick       # smoke run, 10x fewer calls
    python benchmarks/bench_retry.py --json out.json

The peers are optional (``pip install -e '.[bench]'``); a missing one is skipped
with a note, so the script runs with only stormproof installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from time import perf_counter_ns
from types import ModuleType
from typing import Any

from stormproof import Retry, TokenBucketBudget

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for _common, run as a script

from _common import (
    INSTALL_HINT,
    REPEATS,
    Row,
    abest_ns,
    add_target,
    aloop,
    best_ns,
    find,
    loop,
    machine_info,
    optional,
    overheads,
    parse_args,
    print_header,
    print_overhead_table,
    print_ratio_table,
    print_targets,
    write_json,
)

# Targets the project compares against.
TARGET_SYNC_OVERHEAD_NS = 500.0
TARGET_TENACITY_RATIO = 30.0
TARGET_ASYNC_OVERHEAD_NS = 1000.0
TARGET_FAIL_TWICE_NS = 3000.0


tenacity = optional("tenacity")
stamina = optional("stamina")
backoff = optional("backoff")
PEERS: dict[str, ModuleType | None] = {
    "tenacity": tenacity,
    "stamina": stamina,
    "backoff": backoff,
}


# -- the functions under test -----------------------------------------------------


def f(x: Any) -> Any:
    return x


async def af(x: Any) -> Any:
    return x


_CALLS = [0]  # attempts since the last reset, for the fail-twice functions


def fail_twice(x: Any) -> Any:
    _CALLS[0] += 1
    if _CALLS[0] <= 2:
        raise ConnectionError("simulated failure")
    return x


async def afail_twice(x: Any) -> Any:
    _CALLS[0] += 1
    if _CALLS[0] <= 2:
        raise ConnectionError("simulated failure")
    return x


class NoSleepClock:
    """A stormproof clock that reads the real time and never waits."""

    __slots__ = ()

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float, /) -> None:
        return None

    async def asleep(self, seconds: float, /) -> None:
        return None


def _no_sleep(seconds: float) -> None:
    return None


async def _ano_sleep(seconds: float) -> None:
    return None


# -- decorators, one per library ----------------------------------------------------

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def _stormproof(fn: Callable[..., Any]) -> Callable[..., Any]:
    return Retry(on=ConnectionError)(fn)


_SHARED_BUDGET = TokenBucketBudget()


def _stormproof_budget(fn: Callable[..., Any]) -> Callable[..., Any]:
    return Retry(on=ConnectionError, budget=_SHARED_BUDGET)(fn)


def _stormproof_no_sleep(fn: Callable[..., Any]) -> Callable[..., Any]:
    return Retry(on=ConnectionError, clock=NoSleepClock())(fn)


def _tenacity(fn: Callable[..., Any], **options: Any) -> Callable[..., Any]:
    assert tenacity is not None
    decorate = tenacity.retry(
        stop=tenacity.stop_after_attempt(3),
        wait=tenacity.wait_exponential_jitter(),
        retry=tenacity.retry_if_exception_type(ConnectionError),
        **options,
    )
    return decorate(fn)  # type: ignore[no-any-return]


def _tenacity_no_sleep(fn: Callable[..., Any]) -> Callable[..., Any]:
    is_async = inspect.iscoroutinefunction(fn)
    return _tenacity(fn, sleep=_ano_sleep if is_async else _no_sleep)


def _stamina(fn: Callable[..., Any]) -> Callable[..., Any]:
    assert stamina is not None
    return stamina.retry(on=ConnectionError, attempts=3)(fn)  # type: ignore[no-any-return]


def _backoff(fn: Callable[..., Any]) -> Callable[..., Any]:
    assert backoff is not None
    decorate = backoff.on_exception(backoff.expo, ConnectionError, max_tries=3)
    return decorate(fn)  # type: ignore[no-any-return]


HAND_WRITTEN = "reference: plain loop"


def _hand_written(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Three attempts in a bare try/except loop: the floor for a fail-twice call."""
    if inspect.iscoroutinefunction(fn):

        async def aretrying(x: Any) -> Any:
            for _ in range(2):
                try:
                    return await fn(x)
                except ConnectionError:  # noqa: PERF203 (a plain retry loop is the point)
                    continue
            return await fn(x)

        return aretrying

    def retrying(x: Any) -> Any:
        for _ in range(2):
            try:
                return fn(x)
            except ConnectionError:  # noqa: PERF203 (a plain retry loop is the point)
                continue
        return fn(x)

    return retrying


@contextlib.contextmanager
def _stamina_testing() -> Iterator[None]:
    """Stamina without backoff (its test mode) and without its retry log hooks."""
    assert stamina is not None
    stamina.instrumentation.set_on_retry_hooks([])
    stamina.set_testing(True, attempts=3)
    try:
        yield
    finally:
        stamina.set_testing(False)
        stamina.instrumentation.set_on_retry_hooks(None)


@contextlib.contextmanager
def _patched(module: Any, attribute: str, replacement: Any) -> Iterator[None]:
    original = getattr(module, attribute)
    setattr(module, attribute, replacement)
    try:
        yield
    finally:
        setattr(module, attribute, original)


def _backoff_no_sleep() -> contextlib.AbstractContextManager[None]:
    # backoff._sync calls time.sleep(seconds) through its module-level `time` import.
    return _patched(importlib.import_module("backoff._sync").time, "sleep", _no_sleep)


def _backoff_no_asleep() -> contextlib.AbstractContextManager[None]:
    # backoff._async awaits asyncio.sleep(seconds) through its `asyncio` import.
    return _patched(importlib.import_module("backoff._async").asyncio, "sleep", _ano_sleep)


# -- cases ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    label: str
    library: str  # "stormproof", a peer's name, or "" for the bare call
    decorate: Decorator | None  # None: the bare function
    n: int  # calls per repeat in a full run
    context: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext


# Calls per repeat in a full run, chosen so a repeat takes about 0.2 s on a 2-core
# x86-64 VM (CPython 3.11); --quick divides them by 10.


def success_cases(*, is_async: bool) -> list[Case]:
    if is_async:
        return [
            Case("bare await", "", None, 3_000_000),
            Case("stormproof", "stormproof", _stormproof, 400_000),
            Case("stormproof + budget", "stormproof", _stormproof_budget, 400_000),
            Case("tenacity", "tenacity", _tenacity, 10_000),
            Case("stamina", "stamina", _stamina, 15_000),
            Case("backoff", "backoff", _backoff, 100_000),
        ]
    return [
        Case("bare call", "", None, 10_000_000),
        Case("stormproof", "stormproof", _stormproof, 700_000),
        Case("stormproof + budget", "stormproof", _stormproof_budget, 600_000),
        Case("tenacity", "tenacity", _tenacity, 20_000),
        Case("stamina", "stamina", _stamina, 20_000),
        Case("backoff", "backoff", _backoff, 120_000),
    ]


def fail_twice_cases(*, is_async: bool) -> list[Case]:
    return [
        Case(HAND_WRITTEN, "", _hand_written, 250_000),
        Case("stormproof", "stormproof", _stormproof_no_sleep, 30_000),
        Case("tenacity", "tenacity", _tenacity_no_sleep, 3_000 if is_async else 6_000),
        Case("stamina", "stamina", _stamina, 2_000 if is_async else 1_000, _stamina_testing),
        Case(
            "backoff",
            "backoff",
            _backoff,
            8_000,
            _backoff_no_asleep if is_async else _backoff_no_sleep,
        ),
    ]


def _skip(case: Case) -> Row | None:
    if case.library in PEERS and PEERS[case.library] is None:
        return Row(case.label, case.library, None, 0, f"not installed ({INSTALL_HINT})")
    return None


# -- timing loops ---------------------------------------------------------------------


def _loop_fail_twice(fn: Callable[[Any], Any], n: int) -> int:
    calls = _CALLS
    start = perf_counter_ns()
    for _ in repeat(None, n):
        calls[0] = 0
        fn(1)
    elapsed = perf_counter_ns() - start
    _check_fail_twice()
    return elapsed


async def _aloop_fail_twice(fn: Callable[[Any], Awaitable[Any]], n: int) -> int:
    calls = _CALLS
    start = perf_counter_ns()
    for _ in repeat(None, n):
        calls[0] = 0
        await fn(1)
    elapsed = perf_counter_ns() - start
    _check_fail_twice()
    return elapsed


def _check_fail_twice() -> None:
    if _CALLS[0] != 3:
        raise RuntimeError(f"expected 3 attempts per call, the last call made {_CALLS[0]}")


def _n(case: Case, scale: int) -> int:
    return max(1, case.n // scale)


def run_sync(cases: list[Case], fn: Callable[[Any], Any], loop: Any, scale: int) -> list[Row]:
    rows = []
    for case in cases:
        skipped = _skip(case)
        if skipped is not None:
            rows.append(skipped)
            continue
        target = fn if case.decorate is None else case.decorate(fn)
        n = _n(case, scale)
        with case.context():
            _CALLS[0] = 0
            if target(1) != 1:
                raise RuntimeError(f"{case.label}: wrong result")
            ns = best_ns(loop, target, n)
        rows.append(Row(case.label, case.library, ns, n))
    return rows


async def run_async(
    cases: list[Case], fn: Callable[[Any], Awaitable[Any]], loop: Any, scale: int
) -> list[Row]:
    rows = []
    for case in cases:
        skipped = _skip(case)
        if skipped is not None:
            rows.append(skipped)
            continue
        target = fn if case.decorate is None else case.decorate(fn)
        n = _n(case, scale)
        with case.context():
            _CALLS[0] = 0
            if await target(1) != 1:
                raise RuntimeError(f"{case.label}: wrong result")
            ns = await abest_ns(loop, target, n)
        rows.append(Row(case.label, case.library, ns, n))
    return rows


# -- reporting --------------------------------------------------------------------------


def check_targets(
    sync_extra: dict[str, float],
    async_extra: dict[str, float],
    fail_sync: list[Row],
    fail_async: list[Row],
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []

    def add(target: str, value: float | None, ok: bool | None, shown: str) -> None:
        add_target(results, target, value, ok, shown)

    sync_overhead = sync_extra["stormproof"]
    add(
        f"sync success overhead <= {TARGET_SYNC_OVERHEAD_NS:.0f} ns",
        round(sync_overhead, 1),
        sync_overhead <= TARGET_SYNC_OVERHEAD_NS,
        f"{sync_overhead:.1f} ns",
    )
    if "tenacity" in sync_extra:
        ratio = sync_extra["tenacity"] / sync_overhead
        add(
            f"tenacity sync overhead >= {TARGET_TENACITY_RATIO:.0f}x stormproof's",
            round(ratio, 1),
            ratio >= TARGET_TENACITY_RATIO,
            f"{ratio:.1f}x",
        )
    else:
        add(
            f"tenacity sync overhead >= {TARGET_TENACITY_RATIO:.0f}x stormproof's",
            None,
            None,
            "tenacity not installed",
        )
    async_overhead = async_extra["stormproof"]
    add(
        f"async success overhead <= {TARGET_ASYNC_OVERHEAD_NS:.0f} ns",
        round(async_overhead, 1),
        async_overhead <= TARGET_ASYNC_OVERHEAD_NS,
        f"{async_overhead:.1f} ns",
    )
    for kind, rows in (("sync", fail_sync), ("async", fail_async)):
        ns = find(rows, "stormproof")
        plain = find(rows, HAND_WRITTEN)
        assert ns is not None
        assert plain is not None
        # Strict reading: the whole call (three attempts, two retries) under the target.
        add(
            f"whole fail-twice call ({kind}, no sleeping) < {TARGET_FAIL_TWICE_NS:.0f} ns",
            round(ns, 1),
            ns < TARGET_FAIL_TWICE_NS,
            f"{ns:.1f} ns",
        )
        # Per retry: what stormproof adds to a plain loop, divided by the two retries.
        per_retry = (ns - plain) / 2
        add(
            f"cost of one retry ({kind}, no sleeping) < {TARGET_FAIL_TWICE_NS:.0f} ns",
            round(per_retry, 1),
            per_retry < TARGET_FAIL_TWICE_NS,
            f"{per_retry:.1f} ns over a plain try/except loop",
        )
    print_targets(results)
    return results


# -- main -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__, argv)
    scale = 10 if args.quick else 1

    info = machine_info(PEERS)
    print_header("retry", info, quick=args.quick)

    started = time.monotonic()
    sync_rows = run_sync(success_cases(is_async=False), f, loop, scale)
    async_rows = asyncio.run(run_async(success_cases(is_async=True), af, aloop, scale))
    fail_sync = run_sync(fail_twice_cases(is_async=False), fail_twice, _loop_fail_twice, scale)
    fail_async = asyncio.run(
        run_async(fail_twice_cases(is_async=True), afail_twice, _aloop_fail_twice, scale)
    )

    report: dict[str, Any] = {"machine": info, "repeats": REPEATS, "quick": args.quick}
    report["success_sync"] = print_overhead_table(
        "Success path, sync (overhead = ns/call - bare call)", sync_rows, "bare call", PEERS
    )
    report["success_async"] = print_overhead_table(
        "Success path, async, one event loop (overhead = ns/call - bare await)",
        async_rows,
        "bare await",
        PEERS,
    )
    report["fail_twice_sync"] = print_ratio_table(
        "Fail twice then succeed, sync, sleeping disabled", fail_sync
    )
    report["fail_twice_async"] = print_ratio_table(
        "Fail twice then succeed, async, sleeping disabled", fail_async
    )
    if stamina is not None:
        print(
            "  stamina runs in its test mode with its retry log hooks off; test mode still"
            " sleeps 0 s per retry\n  (sync: time.sleep(0), a system call; async:"
            " asyncio.sleep(0), one event-loop turn)"
        )
    report["targets"] = check_targets(
        overheads(sync_rows, "bare call"),
        overheads(async_rows, "bare await"),
        fail_sync,
        fail_async,
    )
    print(f"\nTotal time: {time.monotonic() - started:.1f} s")

    write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
