"""Per-call cost of stormproof's ``CircuitBreaker`` and ``Pipeline`` next to pybreaker,
circuitbreaker, aiobreaker and purgatory (and tenacity, for a stacked peer pipeline).

What is measured, in nanoseconds per call, all in one process run:

1. Success path through a closed breaker, sync (``def f(x): return x``) and async
   (``async def af(x): return x``, awaited in one running event loop): the bare
   call, then the function decorated with stormproof ``CircuitBreaker("bench")``,
   pybreaker ``pybreaker.CircuitBreaker()`` (sync only: its async support runs
   through tornado), circuitbreaker ``@circuit``, aiobreaker ``CircuitBreaker()``
   and purgatory's ``SyncCircuitBreakerFactory()`` / ``AsyncCircuitBreakerFactory()``
   decorators (``@factory("bench")``), each with default options.
2. A rejected call while the breaker is open: the whole cost of one call that the
   breaker refuses, including raising the library's exception and catching it by
   that type (``CircuitOpen``, ``pybreaker.CircuitBreakerError``,
   ``circuitbreaker.CircuitBreakerError``, ``aiobreaker.CircuitBreakerError``,
   purgatory's ``OpenedState``); nothing is subtracted. Each breaker is opened for
   an hour: stormproof by 20 failures (its default ``minimum_calls``) and, in a
   second row, by ``force_open()``; pybreaker and aiobreaker by their ``open()``;
   circuitbreaker and purgatory by 5 failures (their default thresholds). A
   reference row raises and catches a fresh exception one call deep. The protected
   function counts its calls, and the run stops if one was let through.
3. ``Pipeline(Retry(on=ConnectionError), CircuitBreaker("b"), Bulkhead(10))`` on the
   success path, sync and async, next to the nearest peer stack: tenacity's retry
   decorator (as in ``bench_retry.py``) over pybreaker's (sync) or aiobreaker's
   (async) decorator; no peer has a bulkhead, so the peer stacks have one stage less.

After the tables, two correctness demos (not timings of the library code): 8 threads
each making one 5 ms call through one closed breaker (wall time and how many calls
were in flight at once), and a half-open herd: each breaker is tripped with a
0.05 s open timeout, the timeout is left to pass, then 20 concurrent calls (threads,
or tasks for async) are started at once and the calls that reach the protected
function are counted.

Method (shared with ``bench_retry.py``, see ``_common.py``): each case is warmed up,
then timed over 7 repeats of a loop of N calls with ``time.perf_counter_ns`` and the
garbage collector paused; the fastest repeat's time per call is reported. "Overhead"
is a row's time minus the bare call's (or bare await's) in the same table.

Run from the repository root::

    python benchmarks/bench_breaker.py               # full run, about a minute on 2 cores
    python benchmarks/bench_breaker.py --quick       # smoke run, 10x fewer calls
    python benchmarks/bench_breaker.py --json out.json

The peers are optional; a missing one is skipped with a note, so the script runs with
only stormproof installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import repeat
from pathlib import Path
from time import perf_counter_ns
from types import ModuleType
from typing import Any

from stormproof import Bulkhead, CircuitBreaker, CircuitOpen, Pipeline, Retry

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
    maybe_await,
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
TARGET_SUCCESS_OVERHEAD_NS = 300.0  # breaker success path over a bare call (sync)
TARGET_REJECTION_NS = 1500.0  # one rejected call in total, raise and catch included
TARGET_PIPELINE_OVERHEAD_NS = 1500.0  # Retry + CircuitBreaker + Bulkhead over a bare call

OPEN_FOR = 3600.0  # seconds a breaker stays open in the rejection cases
HERD_OPEN_FOR = 0.05  # seconds, in the half-open herd demo
HERD_CALLS = 20
HERD_CALL_SECONDS = 0.02  # how long the protected call (the probe) takes in the herd demo
PARALLEL_THREADS = 8
PARALLEL_CALL_SECONDS = 0.005

pybreaker = optional("pybreaker")
circuitbreaker = optional("circuitbreaker")
aiobreaker = optional("aiobreaker")
purgatory = optional("purgatory")
tenacity = optional("tenacity")
PEERS: dict[str, ModuleType | None] = {
    "pybreaker": pybreaker,
    "circuitbreaker": circuitbreaker,
    "aiobreaker": aiobreaker,
    "purgatory": purgatory,
    "tenacity": tenacity,
}
PEER_STACK_SYNC = "nearest peer stack: tenacity + pybreaker"
PEER_STACK_ASYNC = "nearest peer stack: tenacity + aiobreaker"
PEER_LIBRARIES = {*PEERS, PEER_STACK_SYNC, PEER_STACK_ASYNC}
REFERENCE_RAISE = "reference: raise + catch"
PYBREAKER_ASYNC_NOTE = (
    "not measured: its async support runs through tornado (tornado {});\n    a plain"
    " @breaker on an async def would time creating the coroutine, not awaiting it"
    " under the breaker"
)


# -- the functions under test -----------------------------------------------------


def f(x: Any) -> Any:
    return x


async def af(x: Any) -> Any:
    return x


_REACHED = [0]  # calls of the protected function in the rejection cases


def reached(x: Any) -> Any:
    _REACHED[0] += 1
    return x


async def areached(x: Any) -> Any:
    _REACHED[0] += 1
    return x


def fail(x: Any) -> Any:
    raise ConnectionError("simulated failure")


async def afail(x: Any) -> Any:
    raise ConnectionError("simulated failure")


class Refused(Exception):
    """The reference rejection: a fresh exception raised one call deep."""


def refuse(x: Any) -> Any:
    raise Refused(x)


async def arefuse(x: Any) -> Any:
    raise Refused(x)


# -- building the protected callables ---------------------------------------------------


@dataclass
class Built:
    """A protected callable; ``error`` is the exception type a rejection raises."""

    call: Callable[[Any], Any]
    error: type[BaseException] | None = None


@dataclass(frozen=True)
class Case:
    label: str
    library: str  # "stormproof", a peer's name (or peer stack label), "" for references
    build: Callable[[], Any] | None  # returns a Built (or an awaitable of one)
    n: int  # calls per repeat in a full run
    requires: tuple[str, ...] = ()
    note: str = ""  # why ``build`` is None


def _purgatory_error() -> type[BaseException]:
    from purgatory.domain.model import OpenedState  # noqa: PLC0415 (optional peer)

    return OpenedState


def _pybreaker_async_note() -> str:
    tornado = "installed" if getattr(pybreaker, "HAS_TORNADO_SUPPORT", False) else "not installed"
    return PYBREAKER_ASYNC_NOTE.format(tornado)


def _trip(call_fail: Callable[[Any], Any], error: type[BaseException], times: int) -> None:
    for _ in range(times):
        with contextlib.suppress(ConnectionError, error):
            call_fail(1)


async def _atrip(call_fail: Callable[[Any], Any], error: type[BaseException], times: int) -> None:
    for _ in range(times):
        with contextlib.suppress(ConnectionError, error):
            await call_fail(1)


# Calls per repeat in a full run, chosen so a repeat takes about 0.2 s on a 2-core
# x86-64 VM (CPython 3.11); --quick divides them by 10. purgatory's rejection repeats
# are kept shorter (about 0.07 s): each of its rejections adds entries to the traceback
# of one reused exception, which is only dropped between repeats.

# Success path.


def _sp_success(fn: Callable[..., Any]) -> Built:
    return Built(CircuitBreaker("bench")(fn))


def _pybreaker_success(fn: Callable[..., Any]) -> Built:
    assert pybreaker is not None
    return Built(pybreaker.CircuitBreaker()(fn))


def _circuitbreaker_success(fn: Callable[..., Any]) -> Built:
    assert circuitbreaker is not None
    return Built(circuitbreaker.circuit(fn))


def _aiobreaker_success(fn: Callable[..., Any]) -> Built:
    assert aiobreaker is not None
    return Built(aiobreaker.CircuitBreaker()(fn))


def _purgatory_success(fn: Callable[..., Any]) -> Built:
    assert purgatory is not None
    if asyncio.iscoroutinefunction(fn):
        return Built(purgatory.AsyncCircuitBreakerFactory()("bench")(fn))
    return Built(purgatory.SyncCircuitBreakerFactory()("bench")(fn))


def success_cases(*, is_async: bool) -> list[Case]:
    fn = af if is_async else f
    pybreaker_case = (
        Case("pybreaker", "pybreaker", None, 0, ("pybreaker",), _pybreaker_async_note())
        if is_async
        else Case("pybreaker", "pybreaker", lambda: _pybreaker_success(fn), 150_000)
    )
    return [
        Case("bare await", "", lambda: Built(fn), 3_000_000)
        if is_async
        else Case("bare call", "", lambda: Built(fn), 10_000_000),
        Case("stormproof", "stormproof", lambda: _sp_success(fn), 500_000 if is_async else 900_000),
        pybreaker_case,
        Case(
            "circuitbreaker",
            "circuitbreaker",
            lambda: _circuitbreaker_success(fn),
            300_000 if is_async else 350_000,
        ),
        Case(
            "aiobreaker",
            "aiobreaker",
            lambda: _aiobreaker_success(fn),
            150_000 if is_async else 180_000,
        ),
        Case(
            "purgatory",
            "purgatory",
            lambda: _purgatory_success(fn),
            150_000 if is_async else 250_000,
        ),
    ]


# Rejection while open.


def _sp_tripped(*, is_async: bool) -> Any:
    breaker = CircuitBreaker("bench-open", open_for=OPEN_FOR)
    if is_async:

        async def build() -> Built:
            await _atrip(breaker(afail), CircuitOpen, 20)
            return Built(breaker(areached), CircuitOpen)

        return build()
    _trip(breaker(fail), CircuitOpen, 20)
    return Built(breaker(reached), CircuitOpen)


def _sp_forced(*, is_async: bool) -> Built:
    breaker = CircuitBreaker("bench-forced")
    breaker.force_open()
    return Built(breaker(areached if is_async else reached), CircuitOpen)


def _pybreaker_open() -> Built:
    assert pybreaker is not None
    breaker = pybreaker.CircuitBreaker(reset_timeout=OPEN_FOR)
    breaker.open()
    return Built(breaker(reached), pybreaker.CircuitBreakerError)


def _circuitbreaker_open(*, is_async: bool) -> Any:
    assert circuitbreaker is not None
    breaker = circuitbreaker.CircuitBreaker(recovery_timeout=OPEN_FOR)
    error = circuitbreaker.CircuitBreakerError
    if is_async:

        async def build() -> Built:
            await _atrip(breaker(afail), error, 5)
            return Built(breaker(areached), error)

        return build()
    _trip(breaker(fail), error, 5)
    return Built(breaker(reached), error)


def _aiobreaker_open(*, is_async: bool) -> Built:
    assert aiobreaker is not None
    breaker = aiobreaker.CircuitBreaker(timeout_duration=timedelta(seconds=OPEN_FOR))
    breaker.open()
    return Built(breaker(areached if is_async else reached), aiobreaker.CircuitBreakerError)


def _purgatory_open(*, is_async: bool) -> Any:
    assert purgatory is not None
    error = _purgatory_error()
    if is_async:
        afactory = purgatory.AsyncCircuitBreakerFactory(default_ttl=OPEN_FOR)

        async def build() -> Built:
            await _atrip(afactory("bench-open")(afail), error, 5)
            return Built(afactory("bench-open")(areached), error)

        return build()
    factory = purgatory.SyncCircuitBreakerFactory(default_ttl=OPEN_FOR)
    _trip(factory("bench-open")(fail), error, 5)
    return Built(factory("bench-open")(reached), error)


def rejection_cases(*, is_async: bool) -> list[Case]:
    pybreaker_case = (
        Case("pybreaker", "pybreaker", None, 0, ("pybreaker",), _pybreaker_async_note())
        if is_async
        else Case("pybreaker", "pybreaker", _pybreaker_open, 80_000)
    )
    return [
        Case(
            REFERENCE_RAISE,
            "",
            lambda: Built(arefuse if is_async else refuse, Refused),
            700_000 if is_async else 900_000,
        ),
        Case(
            "stormproof",
            "stormproof",
            lambda: _sp_tripped(is_async=is_async),
            110_000 if is_async else 120_000,
        ),
        Case(
            "stormproof (forced open)",
            "stormproof",
            lambda: _sp_forced(is_async=is_async),
            140_000 if is_async else 150_000,
        ),
        pybreaker_case,
        Case(
            "circuitbreaker",
            "circuitbreaker",
            lambda: _circuitbreaker_open(is_async=is_async),
            240_000 if is_async else 250_000,
        ),
        Case(
            "aiobreaker",
            "aiobreaker",
            lambda: _aiobreaker_open(is_async=is_async),
            90_000 if is_async else 100_000,
        ),
        Case("purgatory", "purgatory", lambda: _purgatory_open(is_async=is_async), 60_000),
    ]


# The three-policy pipeline.


def _sp_pipeline(fn: Callable[..., Any]) -> Built:
    return Built(Pipeline(Retry(on=ConnectionError), CircuitBreaker("b"), Bulkhead(10))(fn))


def _tenacity_retry(fn: Callable[..., Any]) -> Callable[..., Any]:
    assert tenacity is not None
    decorate = tenacity.retry(
        stop=tenacity.stop_after_attempt(3),
        wait=tenacity.wait_exponential_jitter(),
        retry=tenacity.retry_if_exception_type(ConnectionError),
    )
    return decorate(fn)  # type: ignore[no-any-return]


def _peer_stack_sync() -> Built:
    assert pybreaker is not None
    return Built(_tenacity_retry(pybreaker.CircuitBreaker()(f)))


def _peer_stack_async() -> Built:
    assert aiobreaker is not None
    return Built(_tenacity_retry(aiobreaker.CircuitBreaker()(af)))


def pipeline_cases(*, is_async: bool) -> list[Case]:
    if is_async:
        return [
            Case("bare await", "", lambda: Built(af), 3_000_000),
            Case("stormproof Pipeline", "stormproof", lambda: _sp_pipeline(af), 110_000),
            Case(
                PEER_STACK_ASYNC,
                PEER_STACK_ASYNC,
                _peer_stack_async,
                10_000,
                ("tenacity", "aiobreaker"),
            ),
        ]
    return [
        Case("bare call", "", lambda: Built(f), 10_000_000),
        Case("stormproof Pipeline", "stormproof", lambda: _sp_pipeline(f), 180_000),
        Case(
            PEER_STACK_SYNC,
            PEER_STACK_SYNC,
            _peer_stack_sync,
            17_000,
            ("tenacity", "pybreaker"),
        ),
    ]


# -- timing -----------------------------------------------------------------------------


def _check_none_reached(label: str) -> None:
    if _REACHED[0]:
        raise RuntimeError(f"{label}: {_REACHED[0]} calls got through an open breaker")


def _reject_loop(error: type[BaseException]) -> Callable[[Callable[[Any], Any], int], int]:
    def timing_loop(fn: Callable[[Any], Any], n: int) -> int:
        start = perf_counter_ns()
        for _ in repeat(None, n):
            try:  # noqa: SIM105 (contextlib.suppress would add its own cost)
                fn(1)
            except error:  # noqa: PERF203 (raising and catching is what is measured)
                pass
        elapsed = perf_counter_ns() - start
        # Not timed: purgatory re-raises one exception instance, whose traceback grows by
        # a few entries per rejection; drop what it holds so memory stays flat.
        try:
            fn(1)
        except error as caught:
            caught.__traceback__ = None
        return elapsed

    return timing_loop


def _areject_loop(error: type[BaseException]) -> Callable[[Any, int], Awaitable[int]]:
    async def timing_loop(fn: Callable[[Any], Awaitable[Any]], n: int) -> int:
        start = perf_counter_ns()
        for _ in repeat(None, n):
            try:  # noqa: SIM105 (contextlib.suppress would add its own cost)
                await fn(1)
            except error:  # noqa: PERF203 (raising and catching is what is measured)
                pass
        elapsed = perf_counter_ns() - start
        try:  # not timed: see _reject_loop
            await fn(1)
        except error as caught:
            caught.__traceback__ = None
        return elapsed

    return timing_loop


def _skip(case: Case) -> Row | None:
    needed = case.requires or (case.library,)
    if any(name in PEERS and PEERS[name] is None for name in needed):
        return Row(case.label, case.library, None, 0, f"not installed ({INSTALL_HINT})")
    if case.build is None:
        return Row(case.label, case.library, None, 0, case.note)
    return None


def _n(case: Case, scale: int) -> int:
    return max(1, case.n // scale)


def run_sync(cases: list[Case], scale: int) -> list[Row]:
    rows = []
    for case in cases:
        skipped = _skip(case)
        if skipped is not None:
            rows.append(skipped)
            continue
        assert case.build is not None
        built: Built = case.build()
        n = _n(case, scale)
        _REACHED[0] = 0
        if built.error is None:
            if built.call(1) != 1:
                raise RuntimeError(f"{case.label}: wrong result")
            ns = best_ns(loop, built.call, n)
        else:
            timing_loop = _reject_loop(built.error)
            timing_loop(built.call, 1)  # raises anything but the expected rejection
            ns = best_ns(timing_loop, built.call, n)
            _check_none_reached(case.label)
        rows.append(Row(case.label, case.library, ns, n))
    return rows


async def run_async(cases: list[Case], scale: int) -> list[Row]:
    rows = []
    for case in cases:
        skipped = _skip(case)
        if skipped is not None:
            rows.append(skipped)
            continue
        assert case.build is not None
        built: Built = await maybe_await(case.build())
        n = _n(case, scale)
        _REACHED[0] = 0
        if built.error is None:
            if await built.call(1) != 1:
                raise RuntimeError(f"{case.label}: wrong result")
            ns = await abest_ns(aloop, built.call, n)
        else:
            timing_loop = _areject_loop(built.error)
            await timing_loop(built.call, 1)
            ns = await abest_ns(timing_loop, built.call, n)
            _check_none_reached(case.label)
        rows.append(Row(case.label, case.library, ns, n))
    return rows


# -- correctness demos (no timing of library code) --------------------------------------


@dataclass
class Tally:
    """What happened to a batch of concurrent calls."""

    reached: int = 0  # calls that ran the protected function
    rejected: int = 0  # calls refused with the library's exception
    other: dict[str, int] = field(default_factory=dict)  # any other outcome, by type
    in_flight: int = 0
    max_in_flight: int = 0
    wall_ms: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def enter(self) -> None:
        with self.lock:
            self.reached += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def outcome(self, error: BaseException | None, rejection: type[BaseException]) -> None:
        if error is None:
            return
        with self.lock:
            if isinstance(error, rejection):
                self.rejected += 1
            else:
                name = type(error).__name__
                self.other[name] = self.other.get(name, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "reached": self.reached,
            "rejected": self.rejected,
            "other": dict(self.other),
            "max_in_flight": self.max_in_flight,
            "wall_ms": round(self.wall_ms, 1),
        }


def _sleeper(tally: Tally, seconds: float) -> Callable[[Any], Any]:
    def protected(x: Any) -> Any:
        tally.enter()
        try:
            time.sleep(seconds)
        finally:
            tally.leave()
        return x

    return protected


def _asleeper(tally: Tally, seconds: float) -> Callable[[Any], Awaitable[Any]]:
    async def protected(x: Any) -> Any:
        tally.enter()
        try:
            await asyncio.sleep(seconds)
        finally:
            tally.leave()
        return x

    return protected


def _threads_at_once(call: Callable[[Any], Any], count: int, tally: Tally, error: type) -> None:
    """``count`` threads call ``call(1)`` together; fills in the tally and wall time."""
    barrier = threading.Barrier(count + 1)

    def worker() -> None:
        barrier.wait()
        try:
            call(1)
        except BaseException as caught:
            tally.outcome(caught, error)

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    tally.wall_ms = (time.perf_counter() - start) * 1e3


async def _tasks_at_once(call: Callable[[Any], Any], count: int, tally: Tally, error: type) -> None:
    async def one() -> None:
        try:
            await call(1)
        except Exception as caught:
            tally.outcome(caught, error)

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(count)))
    tally.wall_ms = (time.perf_counter() - start) * 1e3


# (a) 8 threads through one closed breaker.

Wrap = Callable[[Callable[..., Any]], Callable[..., Any]]


def _parallel_breakers() -> list[tuple[str, str, Wrap]]:
    """(label, library, a function wrapping the protected call in one fresh breaker)."""
    out: list[tuple[str, str, Wrap]] = [
        ("reference: no breaker", "", lambda fn: fn),
        ("stormproof", "stormproof", CircuitBreaker("parallel")),
    ]
    if pybreaker is not None:
        out.append(("pybreaker", "pybreaker", pybreaker.CircuitBreaker()))
    if circuitbreaker is not None:
        out.append(("circuitbreaker", "circuitbreaker", circuitbreaker.CircuitBreaker()))
    if aiobreaker is not None:
        out.append(("aiobreaker (sync)", "aiobreaker", aiobreaker.CircuitBreaker()))
    if purgatory is not None:
        out.append(
            ("purgatory (sync)", "purgatory", purgatory.SyncCircuitBreakerFactory()("parallel"))
        )
    return out


def demo_parallel() -> dict[str, Any]:
    print(
        f"\n(a) {PARALLEL_THREADS} threads, one call each, through one closed breaker; the"
        f" protected function sleeps {PARALLEL_CALL_SECONDS * 1e3:.0f} ms"
    )
    rows = _parallel_breakers()
    w = max(len(label) for label, _, _ in rows) + 2
    print(f"  {'library':<{w}}{'wall ms':>9}{'max in flight':>15}{'reached':>9}{'errors':>8}")
    section: dict[str, Any] = {}
    for label, _, wrap in rows:
        tally = Tally()
        protected = wrap(_sleeper(tally, PARALLEL_CALL_SECONDS))
        _threads_at_once(protected, PARALLEL_THREADS, tally, CircuitOpen)
        errors = tally.rejected + sum(tally.other.values())
        print(
            f"  {label:<{w}}{tally.wall_ms:>9.1f}{tally.max_in_flight:>15}{tally.reached:>9}"
            f"{errors:>8}"
        )
        section[label] = tally.as_dict()
    if pybreaker is None:
        print(f"  pybreaker: not installed ({INSTALL_HINT})")
    return section


# (b) Half-open herd.


@dataclass
class HerdBreaker:
    """One breaker, as two protected functions sharing it: one to trip it, one to probe."""

    label: str
    wrap: Wrap  # wraps a function in *the same* breaker every time
    error: type[BaseException]
    trip_failures: int
    setting: str


def _herd_breakers(*, is_async: bool) -> list[HerdBreaker]:
    timeout = HERD_OPEN_FOR
    kind = "async" if is_async else "sync"
    stormproof = CircuitBreaker(
        "herd", window=5, minimum_calls=5, open_for=timeout, half_open_calls=1
    )
    out = [
        HerdBreaker(
            "stormproof",
            stormproof,
            CircuitOpen,
            5,
            f"window=5, minimum_calls=5, open_for={timeout}, half_open_calls=1",
        )
    ]
    if pybreaker is not None and not is_async:
        breaker = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=timeout)
        out.append(
            HerdBreaker(
                "pybreaker",
                breaker,
                pybreaker.CircuitBreakerError,
                5,
                f"fail_max=5, reset_timeout={timeout}",
            )
        )
    if circuitbreaker is not None:
        cb = circuitbreaker.CircuitBreaker(failure_threshold=5, recovery_timeout=timeout)
        out.append(
            HerdBreaker(
                "circuitbreaker",
                cb,
                circuitbreaker.CircuitBreakerError,
                5,
                f"failure_threshold=5, recovery_timeout={timeout}",
            )
        )
    if aiobreaker is not None:
        ab = aiobreaker.CircuitBreaker(fail_max=5, timeout_duration=timedelta(seconds=timeout))
        out.append(
            HerdBreaker(
                f"aiobreaker ({kind})",
                ab,
                aiobreaker.CircuitBreakerError,
                5,
                f"fail_max=5, timeout_duration={timeout} s",
            )
        )
    if purgatory is not None:
        factory: Any = (
            purgatory.AsyncCircuitBreakerFactory(default_threshold=5, default_ttl=timeout)
            if is_async
            else purgatory.SyncCircuitBreakerFactory(default_threshold=5, default_ttl=timeout)
        )
        out.append(
            HerdBreaker(
                f"purgatory ({kind})",
                factory("herd"),
                _purgatory_error(),
                5,
                f"default_threshold=5, default_ttl={timeout}",
            )
        )
    return out


def _herd_sync(herd: HerdBreaker) -> tuple[Tally, bool]:
    _trip(herd.wrap(fail), herd.error, herd.trip_failures)
    try:
        herd.wrap(fail)(1)
        tripped = False
    except herd.error:
        tripped = True
    except ConnectionError:
        tripped = False
    time.sleep(HERD_OPEN_FOR * 2)
    tally = Tally()
    _threads_at_once(herd.wrap(_sleeper(tally, HERD_CALL_SECONDS)), HERD_CALLS, tally, herd.error)
    return tally, tripped


async def _herd_async(herd: HerdBreaker) -> tuple[Tally, bool]:
    await _atrip(herd.wrap(afail), herd.error, herd.trip_failures)
    try:
        await herd.wrap(afail)(1)
        tripped = False
    except herd.error:
        tripped = True
    except ConnectionError:
        tripped = False
    await asyncio.sleep(HERD_OPEN_FOR * 2)
    tally = Tally()
    await _tasks_at_once(
        herd.wrap(_asleeper(tally, HERD_CALL_SECONDS)), HERD_CALLS, tally, herd.error
    )
    return tally, tripped


def demo_herd() -> dict[str, Any]:
    print(
        f"\n(b) Half-open herd: trip the breaker (open timeout {HERD_OPEN_FOR} s), sleep"
        f" {HERD_OPEN_FOR * 2} s, then {HERD_CALLS} concurrent calls at once (threads for"
        f" sync, tasks for async);\n    the protected call takes {HERD_CALL_SECONDS * 1e3:.0f}"
        " ms. 'reached' = calls that ran the protected function."
    )
    results: list[tuple[str, str, Tally, bool, str]] = []
    for herd in _herd_breakers(is_async=False):
        tally, tripped = _herd_sync(herd)
        results.append((herd.label, "threads", tally, tripped, herd.setting))
    results.extend(asyncio.run(_async_herd_breakers()))
    w = max(len(label) for label, *_ in results) + 2
    print(
        f"  {'library':<{w}}{'callers':>8}{'reached':>9}{'rejected':>10}{'other':>7}"
        f"{'max in flight':>15}{'wall ms':>9}  settings"
    )
    section: dict[str, Any] = {}
    for label, kind, tally, tripped, setting in results:
        other = sum(tally.other.values())
        print(
            f"  {label:<{w}}{kind:>8}{tally.reached:>9}{tally.rejected:>10}{other:>7}"
            f"{tally.max_in_flight:>15}{tally.wall_ms:>9.1f}  {setting}"
            + ("" if tripped else "  (DID NOT TRIP: the row means nothing)")
        )
        if tally.other:
            print(f"  {'':<{w}}other outcomes: {tally.other}")
        section[label] = {**tally.as_dict(), "callers": kind, "tripped": tripped}
    if pybreaker is not None:
        print(
            "  pybreaker: sync only (its async support needs tornado); it holds its lock"
            " across the call, so its callers run one at a time"
        )
    return section


async def _async_herd_breakers() -> list[tuple[str, str, Tally, bool, str]]:
    out = []
    for herd in _herd_breakers(is_async=True):
        tally, tripped = await _herd_async(herd)
        out.append((herd.label, "tasks", tally, tripped, herd.setting))
    return out


# (c) purgatory's reused exception.


def demo_purgatory_traceback() -> dict[str, Any] | None:
    if purgatory is None:
        return None
    error = _purgatory_error()
    factory = purgatory.SyncCircuitBreakerFactory(default_threshold=5, default_ttl=OPEN_FOR)
    _trip(factory("tb")(fail), error, 5)
    call = factory("tb")(reached)
    caught: list[BaseException] = []
    rejections = 1000
    for _ in range(rejections):
        try:
            call(1)
        except error as exc:  # noqa: PERF203 (counting what each rejection leaves behind)
            caught.append(exc)
    distinct = len({id(exc) for exc in caught})
    depth = 0
    tb = caught[-1].__traceback__
    while tb is not None:
        depth += 1
        tb = tb.tb_next
    caught[-1].__traceback__ = None
    print(
        f"\n(c) purgatory: {rejections} rejections raised {distinct} distinct exception"
        f" object(s); the last one's traceback holds {depth} entries afterwards"
    )
    return {"rejections": rejections, "distinct_exceptions": distinct, "traceback_entries": depth}


# -- reporting ---------------------------------------------------------------------------


def check_targets(
    *,
    success_sync: list[Row],
    success_async: list[Row],
    reject_sync: list[Row],
    reject_async: list[Row],
    pipeline_sync: list[Row],
    pipeline_async: list[Row],
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []

    def report_only(target: str, value: float) -> None:
        add_target(results, target, round(value, 1), None, f"{value:.1f} ns")
        results[-1]["verdict"] = "reported (no target)"

    def at_most(target: str, value: float, limit: float) -> None:
        add_target(results, target, round(value, 1), value <= limit, f"{value:.1f} ns")

    at_most(
        f"breaker success overhead (sync) <= {TARGET_SUCCESS_OVERHEAD_NS:.0f} ns",
        overheads(success_sync, "bare call")["stormproof"],
        TARGET_SUCCESS_OVERHEAD_NS,
    )
    report_only(
        "breaker success overhead (async)", overheads(success_async, "bare await")["stormproof"]
    )
    for kind, rows in (("sync", reject_sync), ("async", reject_async)):
        for label, how in (("stormproof", "tripped"), ("stormproof (forced open)", "forced open")):
            ns = find(rows, label)
            assert ns is not None
            at_most(
                f"rejected call, total ({kind}, {how}) <= {TARGET_REJECTION_NS:.0f} ns",
                ns,
                TARGET_REJECTION_NS,
            )
    at_most(
        f"3-policy pipeline overhead (sync) <= {TARGET_PIPELINE_OVERHEAD_NS:.0f} ns",
        overheads(pipeline_sync, "bare call")["stormproof Pipeline"],
        TARGET_PIPELINE_OVERHEAD_NS,
    )
    report_only(
        "3-policy pipeline overhead (async)",
        overheads(pipeline_async, "bare await")["stormproof Pipeline"],
    )
    print_targets(results)
    return results


# -- main -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__, argv)
    scale = 10 if args.quick else 1

    info = machine_info(PEERS)
    print_header("circuit breaker", info, quick=args.quick)

    started = time.monotonic()
    success_sync = run_sync(success_cases(is_async=False), scale)
    success_async = asyncio.run(run_async(success_cases(is_async=True), scale))
    reject_sync = run_sync(rejection_cases(is_async=False), scale)
    reject_async = asyncio.run(run_async(rejection_cases(is_async=True), scale))
    pipeline_sync = run_sync(pipeline_cases(is_async=False), scale)
    pipeline_async = asyncio.run(run_async(pipeline_cases(is_async=True), scale))
    timed = time.monotonic() - started

    report: dict[str, Any] = {"machine": info, "repeats": REPEATS, "quick": args.quick}
    report["success_sync"] = print_overhead_table(
        "Breaker success path, sync (overhead = ns/call - bare call)",
        success_sync,
        "bare call",
        PEER_LIBRARIES,
    )
    report["success_async"] = print_overhead_table(
        "Breaker success path, async, one event loop (overhead = ns/call - bare await)",
        success_async,
        "bare await",
        PEER_LIBRARIES,
    )
    report["rejected_sync"] = print_ratio_table(
        "Rejected call while open, sync (total ns per call: call, raise, catch)", reject_sync
    )
    report["rejected_async"] = print_ratio_table(
        "Rejected call while open, async (total ns per call: await, raise, catch)", reject_async
    )
    report["pipeline_sync"] = print_overhead_table(
        "Pipeline(Retry(on=ConnectionError), CircuitBreaker, Bulkhead(10)), success, sync"
        " (overhead = ns/call - bare call)",
        pipeline_sync,
        "bare call",
        PEER_LIBRARIES,
        ours="stormproof Pipeline",
    )
    report["pipeline_async"] = print_overhead_table(
        "Pipeline(Retry(on=ConnectionError), CircuitBreaker, Bulkhead(10)), success, async"
        " (overhead = ns/call - bare await)",
        pipeline_async,
        "bare await",
        PEER_LIBRARIES,
        ours="stormproof Pipeline",
    )
    print(
        "  nearest peer stacks: tenacity's @retry (stop_after_attempt(3),"
        " wait_exponential_jitter(), retry_if_exception_type(ConnectionError)) over the"
        " breaker's decorator;\n  none of these peers has a bulkhead, so the stacks have"
        " two stages, not three"
    )

    print("\nCorrectness demos (wall-clock only, no per-call timing)")
    report["demo_parallel"] = demo_parallel()
    report["demo_herd"] = demo_herd()
    report["demo_purgatory_traceback"] = demo_purgatory_traceback()

    report["targets"] = check_targets(
        success_sync=success_sync,
        success_async=success_async,
        reject_sync=reject_sync,
        reject_async=reject_async,
        pipeline_sync=pipeline_sync,
        pipeline_async=pipeline_async,
    )
    print(f"\nTotal time: {time.monotonic() - started:.1f} s (timed sections {timed:.1f} s)")
    write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
