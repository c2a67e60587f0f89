from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from stormproof import Bulkhead, CircuitBreaker, CircuitOpen, ConfigError, Rejected
from stormproof.breaker import BreakerState
from stormproof.events import BreakerRejected, BreakerStateChanged, Recorder
from stormproof.testing import FakeClock


class Down(Exception):
    pass


def ok() -> str:
    return "ok"


def down() -> None:
    raise Down("dependency down")


def outcomes(breaker: CircuitBreaker, pattern: str) -> None:
    """Run calls through the breaker: 's' succeeds, 'f' fails."""
    for step in pattern:
        if step == "s":
            breaker.call(ok)
        else:
            with pytest.raises(Down):
                breaker.call(down)


def breaker(clock: FakeClock, **options: Any) -> CircuitBreaker:
    settings: dict[str, Any] = {"window": 10, "minimum_calls": 10, "clock": clock}
    settings.update(options)
    return CircuitBreaker("db", **settings)


# -- tripping --------------------------------------------------------------------


def test_trips_on_the_failure_rate_not_on_consecutive_failures(clock: FakeClock) -> None:
    b = breaker(clock, failure_rate=0.5)
    outcomes(b, "sfsfsfsfs")  # 4 of 9 failed: below minimum_calls anyway
    assert b.state == "closed"
    outcomes(b, "f")  # 5 of 10 failed: 50%, interleaved with successes
    assert b.state == BreakerState.OPEN
    with pytest.raises(CircuitOpen):
        b.call(ok)


def test_needs_minimum_calls(clock: FakeClock) -> None:
    b = breaker(clock, window=100, minimum_calls=20)
    outcomes(b, "f" * 19)
    assert b.state == "closed"
    outcomes(b, "f")
    assert b.state == "open"


def test_stays_closed_below_the_rate(clock: FakeClock) -> None:
    b = breaker(clock, failure_rate=0.5)
    outcomes(b, "ssffsssfss" * 5)  # 30% failing
    assert b.state == "closed"
    assert b.metrics().failure_rate == pytest.approx(0.3)


def test_count_window_forgets_old_outcomes(clock: FakeClock) -> None:
    b = breaker(clock, failure_rate=0.5)
    outcomes(b, "ffff" + "s" * 10)  # the failures have left the 10-call window
    assert b.metrics().failures == 0
    outcomes(b, "ffff")
    assert b.state == "closed"  # 4 of the last 10


def test_time_window_forgets_old_outcomes(clock: FakeClock) -> None:
    b = CircuitBreaker("db", window_seconds=10, minimum_calls=5, clock=clock)
    outcomes(b, "ffff")
    clock.advance(11)
    outcomes(b, "sf")
    metrics = b.metrics()
    assert (metrics.calls, metrics.failures) == (2, 1)
    assert b.state == "closed"
    outcomes(b, "fff")
    assert b.state == "open"


def test_slow_calls_trip_it(clock: FakeClock) -> None:
    b = breaker(clock, slow_call_duration=1.0, slow_call_rate=0.5)

    def slow() -> str:
        clock.advance(2.0)
        return "late"

    for _ in range(5):
        b.call(ok)
        assert b.state == "closed"
        b.call(slow)
    assert b.state == "open"


def test_errors_not_in_on_count_as_answers(clock: FakeClock) -> None:
    b = breaker(clock, on=Down)

    def not_found() -> None:
        raise KeyError("no such item")

    for _ in range(20):
        with pytest.raises(KeyError):
            b.call(not_found)
    assert b.state == "closed"
    assert b.metrics().calls == 10


def test_ignored_errors_and_rejections_are_not_recorded(clock: FakeClock) -> None:
    b = breaker(clock, ignore=ValueError)

    def invalid() -> None:
        raise ValueError("bad input")

    full = Bulkhead(1)
    assert full.try_acquire()
    for _ in range(20):
        with pytest.raises(ValueError):
            b.call(invalid)
        with pytest.raises(Rejected):
            b.call(full.call, ok)
    assert b.metrics().calls == 0


# -- open, half-open, closed -----------------------------------------------------


def test_rejections_are_fresh_and_say_when_to_come_back(clock: FakeClock) -> None:
    b = breaker(clock, open_for=30)
    outcomes(b, "f" * 10)
    clock.advance(12)
    errors = []
    for _ in range(2):
        with pytest.raises(CircuitOpen) as caught:
            b.call(ok)
        errors.append(caught.value)
    assert errors[0] is not errors[1]
    assert errors[0].policy == "db"
    assert errors[0].retry_after == pytest.approx(18)
    assert errors[0].__traceback__ is not errors[1].__traceback__


def test_half_open_probe_success_closes(clock: FakeClock) -> None:
    b = breaker(clock, open_for=30)
    outcomes(b, "f" * 10)
    clock.advance(30)
    assert b.state == "half_open"
    assert b.call(ok) == "ok"
    assert b.state == "closed"
    assert b.metrics().calls == 0  # a fresh window


def test_half_open_needs_every_probe_to_succeed(clock: FakeClock) -> None:
    b = breaker(clock, open_for=30, half_open_calls=3)
    outcomes(b, "f" * 10)
    clock.advance(30)
    outcomes(b, "ss")
    assert b.state == "half_open"
    outcomes(b, "s")
    assert b.state == "closed"


def test_half_open_failure_reopens_for_longer(clock: FakeClock) -> None:
    b = breaker(clock, open_for=10, open_for_max=35)
    outcomes(b, "f" * 10)
    openings = []
    for _ in range(4):
        with pytest.raises(CircuitOpen) as caught:
            b.call(ok)
        openings.append(caught.value.retry_after)
        assert caught.value.retry_after is not None
        clock.advance(caught.value.retry_after)
        outcomes(b, "f")  # the probe fails
    assert openings == [10, 20, 35, 35]
    with pytest.raises(CircuitOpen) as caught:
        b.call(ok)
    clock.advance(35)
    outcomes(b, "s")
    assert b.state == "closed"
    outcomes(b, "f" * 10)
    with pytest.raises(CircuitOpen) as caught:
        b.call(ok)
    assert caught.value.retry_after == 10  # growth starts over after a close


def test_half_open_admits_only_its_probes(clock: FakeClock) -> None:
    b = breaker(clock, half_open_calls=2)
    outcomes(b, "f" * 10)
    clock.advance(30)
    first, second = b.acquire(), b.acquire()
    with pytest.raises(CircuitOpen) as caught:
        b.acquire()
    assert caught.value.retry_after is None
    b.release(first)  # a probe ended without an outcome (cancelled): its slot returns
    third = b.acquire()
    b.on_success(second)
    b.on_success(third)
    assert b.state == "closed"


def test_outcomes_from_before_a_transition_are_ignored(clock: FakeClock) -> None:
    b = breaker(clock)
    late = b.acquire()  # admitted while closed...
    outcomes(b, "f" * 10)  # ...the breaker trips meanwhile...
    clock.advance(30)
    probe = b.acquire()
    b.on_failure(late)  # ...its failure must not reopen the half-open breaker
    assert b.state == "half_open"
    b.on_success(probe)
    assert b.state == "closed"


# -- manual states ---------------------------------------------------------------


def test_forced_open_disabled_metrics_only_and_reset(clock: FakeClock) -> None:
    b = breaker(clock)
    b.force_open()
    assert b.state == "forced_open"
    with pytest.raises(CircuitOpen) as caught:
        b.call(ok)
    assert caught.value.retry_after is None

    b.disable()
    outcomes(b, "f" * 30)
    assert b.state == "disabled"
    assert b.metrics().calls == 0

    b.metrics_only()
    outcomes(b, "f" * 30)
    assert b.state == "metrics_only"
    assert b.metrics().failures == 10

    b.reset()
    assert b.state == "closed"
    assert b.metrics().calls == 0
    outcomes(b, "f" * 10)
    assert b.state == "open"


def test_state_is_a_str_enum() -> None:
    assert BreakerState.HALF_OPEN == "half_open"
    assert str(BreakerState.OPEN) == "open"
    assert {s.value for s in BreakerState} == {
        "closed",
        "open",
        "half_open",
        "forced_open",
        "disabled",
        "metrics_only",
    }


# -- events ----------------------------------------------------------------------


def test_state_change_events(clock: FakeClock) -> None:
    recorder = Recorder()
    b = breaker(clock, listeners=[recorder], open_for=5)
    outcomes(b, "s" * 5 + "f" * 5)
    with pytest.raises(CircuitOpen):
        b.call(ok)
    clock.advance(5)
    b.call(ok)
    changes = [(e.previous.value, e.state.value) for e in recorder.of(BreakerStateChanged)]
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    trip = recorder.of(BreakerStateChanged)[0]
    assert (trip.failure_rate, trip.open_for, trip.policy) == (0.5, 5, "db")
    (rejected,) = recorder.of(BreakerRejected)
    assert rejected.retry_after == 5


# -- async -----------------------------------------------------------------------


def test_async_calls_trip_it_too(clock: FakeClock) -> None:
    """pybreaker silently never trips on async functions; this one does."""
    b = breaker(clock)

    @b
    async def fetch() -> None:
        raise Down

    async def main() -> None:
        for _ in range(10):
            with pytest.raises(Down):
                await fetch()
        with pytest.raises(CircuitOpen):
            await fetch()

    asyncio.run(main())
    assert b.state == "open"


def test_cancelled_probe_gives_its_slot_back(clock: FakeClock) -> None:
    b = breaker(clock)
    outcomes(b, "f" * 10)
    clock.advance(30)

    async def main() -> None:
        started = asyncio.Event()

        async def hang() -> None:
            started.set()
            await asyncio.Event().wait()

        task = asyncio.create_task(b.acall(hang))
        await started.wait()
        with pytest.raises(CircuitOpen):
            await b.acall(ok_async)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await b.acall(ok_async) == "ok"

    async def ok_async() -> str:
        return "ok"

    asyncio.run(main())
    assert b.state == "closed"


# -- concurrency -----------------------------------------------------------------


def test_no_lock_is_held_across_the_call(clock: FakeClock) -> None:
    """8 threads must be inside the protected call at the same time."""
    b = breaker(clock)
    barrier = threading.Barrier(8, timeout=10)
    results: list[int] = []

    def work() -> int:
        return barrier.wait()

    threads = [threading.Thread(target=lambda: results.append(b.call(work))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == list(range(8))


@pytest.mark.parametrize("probes", [1, 3])
def test_half_open_admits_exactly_its_probes_across_threads(clock: FakeClock, probes: int) -> None:
    b = breaker(clock, half_open_calls=probes)
    outcomes(b, "f" * 10)
    clock.advance(30)
    release = threading.Event()
    admitted: list[int] = []
    rejected: list[int] = []
    barrier = threading.Barrier(20)

    def probe() -> str:
        admitted.append(1)
        release.wait(10)
        return "ok"

    def caller() -> None:
        barrier.wait()
        try:
            b.call(probe)
        except CircuitOpen:
            rejected.append(1)
            if len(rejected) == 20 - probes:
                release.set()

    threads = [threading.Thread(target=caller) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(admitted), len(rejected)) == (probes, 20 - probes)
    assert b.state == "closed"


@pytest.mark.parametrize("probes", [1, 3])
def test_half_open_admits_exactly_its_probes_across_tasks(clock: FakeClock, probes: int) -> None:
    b = breaker(clock, half_open_calls=probes)
    outcomes(b, "f" * 10)
    clock.advance(30)

    async def main() -> tuple[int, int]:
        release = asyncio.Event()
        admitted = 0

        async def probe() -> str:
            nonlocal admitted
            admitted += 1
            await release.wait()
            return "ok"

        tasks = [asyncio.create_task(b.acall(probe)) for _ in range(20)]
        for _ in range(3):
            await asyncio.sleep(0)
        release.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        return admitted, sum(isinstance(r, CircuitOpen) for r in results)

    assert asyncio.run(main()) == (probes, 20 - probes)
    assert b.state == "closed"


# -- validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"failure_rate": 1.5}, "failure_rate must be in (0, 1], got 1.5"),
        ({"failure_rate": 0}, "failure_rate must be in (0, 1], got 0"),
        ({"window": 0}, "window must be an integer in [1, 1000000], got 0"),
        ({"window": 10**13}, "window must be an integer in [1, 1000000], got 10000000000000"),
        ({"window": 10, "minimum_calls": 20}, "minimum_calls must be <= window (10)"),
        ({"minimum_calls": 0}, "minimum_calls must be an integer >= 1, got 0"),
        ({"window_seconds": -5}, "window_seconds must be >= 0.001, got -5"),
        ({"window_seconds": 1e-305}, "window_seconds must be >= 0.001, got 1e-305"),
        ({"slow_call_duration": 0}, "slow_call_duration must be > 0, got 0"),
        ({"slow_call_rate": 2}, "slow_call_rate must be in (0, 1], got 2"),
        ({"open_for": 0}, "open_for must be > 0, got 0"),
        ({"open_for": 10, "open_for_max": 5}, "open_for_max must be >= 10, got 5"),
        ({"half_open_calls": 0}, "half_open_calls must be an integer >= 1, got 0"),
        ({"on": KeyboardInterrupt}, "on must be an exception type"),
        ({"ignore": "ValueError"}, "ignore must be an exception type"),
        ({"clock": 3}, "clock must be an object with now()"),
    ],
)
def test_bad_options(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        CircuitBreaker("db", **kwargs)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("name", ["", "  ", None, 5])
def test_name_is_required(name: Any) -> None:
    with pytest.raises(ConfigError, match="name must be a non-empty string"):
        CircuitBreaker(name)


def test_repr_shows_configuration_and_state(clock: FakeClock) -> None:
    text = repr(breaker(clock))
    assert text.startswith("CircuitBreaker('db', failure_rate=0.5, window=10")
    assert text.endswith("state=closed)")


@pytest.mark.parametrize("windowed", ["count", "time"])
def test_the_thresholds_are_evaluated_after_every_outcome_a_success_included(
    clock: FakeClock, windowed: str
) -> None:
    window: dict[str, Any] = {"window": 4} if windowed == "count" else {"window_seconds": 60}
    b = breaker(clock, failure_rate=0.5, minimum_calls=4, **window)
    outcomes(b, "fff")  # not enough calls yet
    assert b.state == "closed"
    outcomes(b, "s")  # the fourth call is a success: 3 of 4 failed
    assert b.state == "open"


@pytest.mark.parametrize("windowed", ["count", "time"])
def test_the_slow_call_rate_is_evaluated_after_every_outcome(
    clock: FakeClock, windowed: str
) -> None:
    window: dict[str, Any] = {"window": 4} if windowed == "count" else {"window_seconds": 60}
    b = breaker(clock, minimum_calls=4, slow_call_duration=1.0, slow_call_rate=0.5, **window)
    for _ in range(3):
        permit = b.acquire()
        b.on_success(permit, duration=2.0)  # slow
    assert b.state == "closed"
    b.on_success(b.acquire(), duration=0.1)
    assert b.state == "open"


@pytest.mark.parametrize(
    ("failures", "calls", "rate"),
    [(55, 100, 0.55), (7, 100, 0.07), (14, 25, 0.56), (1, 3, 0.33), (29, 100, 0.29)],
)
@pytest.mark.parametrize("kind", ["failure", "slow"])
def test_a_rate_exactly_at_the_threshold_trips(
    clock: FakeClock, failures: int, calls: int, rate: float, kind: str
) -> None:
    if kind == "failure":
        b = breaker(clock, failure_rate=rate, window=calls, minimum_calls=calls)
    else:
        b = breaker(
            clock,
            window=calls,
            minimum_calls=calls,
            slow_call_duration=1.0,
            slow_call_rate=rate,
        )
    for n in range(calls):
        assert b.state == "closed"
        permit = b.acquire()
        bad = n < failures
        if kind == "failure" and bad:
            b.on_failure(permit)
        else:
            b.on_success(permit, duration=2.0 if bad else 0.1)
    assert b.state == "open"


def test_one_call_below_the_threshold_stays_closed(clock: FakeClock) -> None:
    b = breaker(clock, failure_rate=0.55, window=100, minimum_calls=100)
    outcomes(b, "f" * 54 + "s" * 46)
    assert b.state == "closed"
    assert b.metrics().failures == 54


def test_after_the_clock_steps_back_an_open_breaker_stays_open_at_most_open_for(
    clock: FakeClock,
) -> None:
    clock.advance(2000.0)
    b = breaker(clock, window=2, minimum_calls=2, open_for=30.0)
    outcomes(b, "ff")
    assert b.state == "open"
    clock._now -= 1000.0  # the clock steps back 1000 s
    with pytest.raises(CircuitOpen) as rejected:
        b.call(ok)
    assert rejected.value.retry_after == 30.0
    clock.advance(30.0)
    assert b.state == "half_open"
    assert b.call(ok) == "ok"
    assert b.state == "closed"
