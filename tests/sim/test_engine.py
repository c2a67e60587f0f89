from __future__ import annotations

import math
import statistics
from collections.abc import Generator
from typing import Any

import pytest

from stormproof import ConfigError, Retry
from stormproof.clock import Clock
from stormproof.sim import TIMED_OUT, Process, Signal, SimClock, Simulation, Within
from stormproof.sim._series import Series
from stormproof.sim._service import Distribution, Service


def test_events_at_the_same_instant_run_in_the_order_scheduled() -> None:
    sim = Simulation()
    seen: list[str] = []
    for name in "abcde":
        sim.at(5.0, seen.append, name)
    sim.at(1.0, seen.append, "first")
    sim.run(10)
    assert seen == ["first", "a", "b", "c", "d", "e"]
    assert sim.now == 10


class _Timer:
    """A timer that notes when it expires; it ends (no longer live) when ``end`` runs."""

    def __init__(self, sim: Simulation, seen: list[tuple[float, int]], number: int) -> None:
        self.sim = sim
        self.seen = seen
        self.number = number
        self.live = True

    def expire(self) -> None:
        self.seen.append((self.sim.now, self.number))

    def end(self, _: object = None) -> None:
        self.live = False


def _fixed_delay_events(use_lane: bool) -> tuple[list[tuple[float, int]], int]:
    """Events at random whole seconds; each sets, 1 s later, a timer (in the lane or
    as an event on the heap), many at the same instant as others; returns the order
    they ran in and how many were pending half-way."""
    import random

    sim = Simulation()
    rng = random.Random(7)
    lane = sim.lane(1.0)
    seen: list[tuple[float, int]] = []

    def follow_up(number: int) -> None:
        seen.append((sim.now, number))

    def event(number: int) -> None:
        seen.append((sim.now, number))
        if use_lane and number % 2:  # the others: on the heap, set between lane events
            lane.add(_Timer(sim, seen, -number))
        else:
            sim.after(1.0, follow_up, -number)

    for number in range(1, 400):
        sim.at(float(rng.randint(0, 20)), event, number)  # whole seconds: many ties
        if number % 3 == 0:
            sim.after(1.0, follow_up, 1000 + number)
    sim.run(10.0)
    pending = sim.pending
    sim.run(30.0)
    return seen, pending


def test_a_lane_runs_events_in_the_same_order_as_the_heap() -> None:
    through_lane, pending_lane = _fixed_delay_events(use_lane=True)
    through_heap, pending_heap = _fixed_delay_events(use_lane=False)
    assert len(through_lane) == 2 * 399 + 133
    assert through_lane == through_heap
    assert pending_lane == pending_heap > 0


def test_pending_counts_the_events_not_yet_run() -> None:
    sim = Simulation()
    ran: list[object] = []
    assert sim.pending == 0
    lane = sim.lane(2.0)
    assert sim.lane(2.0) is lane
    sim.after(1.0, ran.append, "heap")
    seen: list[tuple[float, int]] = []
    lane.add(_Timer(sim, seen, 1))
    lane.add(_Timer(sim, seen, 2))
    assert sim.pending == 3
    sim.run(1.5)
    assert (ran, seen, sim.pending) == (["heap"], [], 2)
    sim.run(2.5)
    assert (seen, sim.pending) == ([(2.0, 1), (2.0, 2)], 0)


def test_a_lane_drops_timers_that_ended_and_keeps_the_order_of_the_rest() -> None:
    sim = Simulation()
    lane = sim.lane(1.0)
    seen: list[tuple[float, int]] = []
    timers = []
    for number in range(6):  # set at 0.0, 0.1, ... 0.5: due at 1.0, 1.1, ... 1.5
        timer = _Timer(sim, seen, number)
        sim.at(number / 10, lambda _, timer=timer: lane.add(timer))
        timers.append(timer)
    for number in (0, 2, 3):  # 0 ends first of all; 3 ends after 2's time came
        sim.at(0.9 if number < 3 else 1.25, timers[number].end)
    # An event on the heap at 1's instant, set before 1 was: it runs first.
    sim.at(1.1, lambda _: seen.append((sim.now, 100)))
    assert 0.1 + 1.0 == 1.1
    sim.run(1.05)
    # 0 came due ended, and was not run; 2 ended too but waits until 1 comes due.
    assert sim.pending == 5 + 2  # timers 1-5; 3's end and the event at 1.1
    sim.run(1.15)
    assert sim.pending == 3 + 1  # 1 ran and 2 was dropped: timers 3-5; 3's end
    sim.run(5.0)
    assert seen == [(1.1, 100), (1.1, 1), (1.4, 4), (1.5, 5)]
    assert sim.pending == 0


def test_every_event_sees_the_second_it_falls_in() -> None:
    sim = Simulation()
    seen: list[tuple[float, int]] = []

    def look(_: object) -> None:
        seen.append((sim.now, sim.second))

    for instant in (0.0, 0.5, 1.0, 1.0, 2.999, 3.0, 7.0):  # set long before their second
        sim.at(instant, look)
    sim.run(8.5)
    assert len(seen) == 7
    assert [second for _, second in seen] == [int(now) for now, _ in seen]
    assert sim.second == 8


def test_processes_wait_for_time_and_signals() -> None:
    sim = Simulation()
    log: list[tuple[float, str]] = []
    ready = sim.signal()

    def waiter() -> Generator[Any, Any, None]:
        value = yield ready
        log.append((sim.now, f"got {value}"))
        outcome = yield Within(sim.signal(), 2.5)
        log.append((sim.now, "timed out" if outcome is TIMED_OUT else "?"))

    def sleeper() -> Generator[Any, Any, None]:
        yield 3.0
        log.append((sim.now, "slept"))
        ready.succeed("go")

    sim.start(waiter())
    sim.start(sleeper())
    sim.run(100)
    assert log == [(3.0, "slept"), (3.0, "got go"), (5.5, "timed out")]


def test_a_failed_signal_raises_in_the_waiter() -> None:
    sim = Simulation()
    caught: list[BaseException] = []
    failing = sim.signal()

    def waiter() -> Generator[Any, Any, None]:
        try:
            yield Within(failing, 10)
        except KeyError as error:
            caught.append(error)

    sim.start(waiter())
    sim.after(1, lambda _: failing.fail(KeyError("gone")))
    sim.run(5)
    assert isinstance(caught[0], KeyError)


def test_a_signal_fires_once_and_late_waiters_get_its_value() -> None:
    sim = Simulation()
    signal = Signal(sim)
    signal.succeed(1)
    signal.succeed(2)
    got: list[Any] = []

    def late() -> Generator[Any, Any, None]:
        got.append((yield signal))

    sim.start(late())
    sim.run(1)
    assert got == [1]


def test_waiters_resume_after_the_event_that_fired_their_signal_in_the_order_they_waited() -> None:
    sim = Simulation()
    log: list[str] = []
    first, second = sim.signal(), sim.signal()

    def waiter(name: str, signal: Signal) -> Generator[Any, Any, None]:
        log.append(f"{name} waits")
        value = yield signal
        log.append(f"{name} got {value}")
        if name == "a":  # fires another signal while the others still wait their turn
            second.succeed("two")
            log.append("a fired the second")
        yield 1.0

    for name in "abc":
        sim.start(waiter(name, first))
    sim.start(waiter("d", second))
    sim.at(0.0, lambda _: log.append("an event due at the same instant, set before"))

    def fire(_: object) -> None:
        first.succeed("one")
        log.append("succeed returned")  # nothing resumed inside the call

    sim.at(5.0, fire)
    sim.at(5.0, lambda _: log.append("the next event of the instant"))
    sim.run(10)
    assert log == [
        "a waits",
        "b waits",
        "c waits",
        "d waits",
        "an event due at the same instant, set before",
        "succeed returned",
        "a got one",
        "a fired the second",
        "b got one",
        "c got one",
        "d got two",  # made ready by ready work: after the work ready before it
        "the next event of the instant",
    ]


def test_ready_work_runs_before_events_due_at_the_same_instant() -> None:
    sim = Simulation()
    log: list[str] = []

    def event(_: object) -> None:
        sim.call_soon(log.append, "soon 1")
        sim.after(0.0, log.append, "an event due now")
        sim.call_soon(log.append, "soon 2")
        log.append("event")

    sim.at(1.0, event)
    sim.at(1.0, log.append, "set before, due at the same instant")
    sim.run(2)
    assert log == [
        "event",
        "soon 1",
        "soon 2",
        "set before, due at the same instant",
        "an event due now",
    ]


def test_signals_fired_outside_events_resume_their_waiters_when_the_run_goes_on() -> None:
    sim = Simulation()
    got: list[Any] = []
    signal = sim.signal()

    def waiter() -> Generator[Any, Any, None]:
        got.append((yield signal))

    sim.start(waiter())
    signal.succeed("now")
    assert got == []
    assert (sim.pending, sim.peek()) == (1, 0.0)
    sim.run(0.0)
    assert got == ["now"]
    assert sim.peek() == math.inf


def test_a_process_returns_a_value_its_waiters_receive() -> None:
    sim = Simulation()
    log: list[Any] = []

    def child(seconds: float) -> Generator[Any, Any, str]:
        yield seconds
        return f"slept {seconds:g}"

    def parent() -> Generator[Any, Any, None]:
        quick = sim.start(child(1.0))
        slow = sim.start(child(5.0))
        for wait in (quick, Within(slow, 1.0), slow, quick):  # quick has ended: at once
            got = yield wait
            log.append((sim.now, got))

    handle = sim.start(parent())
    assert not handle.fired
    sim.run(10)
    assert log == [(1.0, "slept 1"), (2.0, TIMED_OUT), (5.0, "slept 5"), (5.0, "slept 1")]
    assert (handle.fired, handle.value, handle.error) == (True, None, None)


def test_a_process_error_goes_to_its_waiters_or_out_of_the_engine() -> None:
    sim = Simulation()
    caught: list[BaseException] = []

    def failing() -> Generator[Any, Any, None]:
        yield 1.0
        raise KeyError("lost")

    def waiter(process: Any) -> Generator[Any, Any, None]:
        try:
            yield process
        except KeyError as error:
            caught.append(error)

    watched = sim.start(failing())
    sim.start(waiter(watched))
    sim.run(2)
    assert isinstance(caught[0], KeyError)
    assert watched.error is caught[0]
    unwatched = sim.start(failing())
    with pytest.raises(KeyError, match="lost"):
        sim.run(4)
    assert unwatched.fired
    assert isinstance(unwatched.error, KeyError)
    # A waiter whose time ran out is no longer waiting: the error goes out too.
    impatient = sim.start(failing())
    sim.start(waiter(Within(impatient, 0.5)))  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="lost"):
        sim.run(6)
    with pytest.raises(TypeError, match=r"made by Simulation.start"):
        Process(sim)


def test_other_waitable_kinds() -> None:
    from fractions import Fraction

    sim = Simulation()
    log: list[tuple[float, Any]] = []

    class Both:
        """Wait for two signals: a process that waits for each, as a Waitable."""

        def __init__(self, first: Signal, second: Signal) -> None:
            self.signals = (first, second)

        def as_wait(self, sim: Simulation) -> Signal:
            def both() -> Generator[Any, Any, tuple[Any, Any]]:
                first = yield self.signals[0]
                second = yield self.signals[1]
                return first, second

            return sim.start(both())

    one, two = sim.signal(), sim.signal()

    def process() -> Generator[Any, Any, None]:
        yield Fraction(1, 2)  # any real number of seconds
        log.append((sim.now, "half a second"))
        got = yield Both(one, two)
        log.append((sim.now, got))

    sim.start(process())
    sim.at(3.0, lambda _: two.succeed(2))
    sim.at(4.0, lambda _: one.succeed(1))
    sim.run(5)
    assert log == [(0.5, "half a second"), (4.0, (1, 2))]


@pytest.mark.parametrize("wait", [True, "soon", None])
def test_bad_yields_are_raised_in_the_process(wait: Any) -> None:
    sim = Simulation()
    caught: list[BaseException] = []

    def wrong() -> Generator[Any, Any, None]:
        try:
            yield wait
        except TypeError as error:
            caught.append(error)

    sim.start(wrong())
    assert "yield seconds (a number), a Signal, Within(signal, seconds) or a Waitable" in str(
        caught[0]
    )


def test_peek_says_when_the_next_event_is_due() -> None:
    sim = Simulation()
    assert sim.peek() == math.inf  # the engine's tick does not count
    sim.at(2.5, print)
    sim.schedule(1.5, print)
    assert sim.peek() == 1.5
    sim.run(1.7)
    assert sim.peek() == 2.5


def test_bad_yields_are_reported() -> None:
    sim = Simulation()

    def wrong() -> Generator[Any, Any, None]:
        yield "soon"

    with pytest.raises(TypeError, match="yield seconds"):
        sim.start(wrong())


def test_seed_is_validated() -> None:
    with pytest.raises(ConfigError, match="seed must be an integer"):
        Simulation(seed=1.5)  # type: ignore[arg-type]


def test_time_never_runs_backwards_and_lanes_need_a_delay() -> None:
    sim = Simulation()
    sim.run(5.0)
    with pytest.raises(ConfigError, match=r"until must be a time from now \(5\) on, got 4.0"):
        sim.run(4.0)
    for bad in (float("nan"), float("inf"), "6", True):
        with pytest.raises(ConfigError, match="until must be"):
            sim.run(bad)  # type: ignore[arg-type]
    assert (sim.now, sim.second) == (5.0, 5)
    for bad in (-1.0, float("nan"), float("inf"), "1", None):
        with pytest.raises(ConfigError, match="delay must be a number of seconds >= 0"):
            sim.lane(bad)  # type: ignore[arg-type]


def test_the_clock_is_a_clock_and_policies_run_on_it() -> None:
    sim = Simulation()
    assert isinstance(sim.clock, Clock)
    retry = Retry(on=ConnectionError, clock=sim.clock)
    sim.run(42)
    state = retry.begin()
    assert state.on_exception(ConnectionError(), sim.now) is not None
    with pytest.raises(RuntimeError, match="yield their waits"):
        sim.clock.sleep(1)


def test_mm1_response_time_matches_theory() -> None:
    """M/M/1 with arrival rate 0.5 and service rate 1: mean response time 1/(mu-lambda) = 2."""
    sim = Simulation(seed=7)
    series = Series(200_000)
    service = Service(
        sim,
        "server",
        capacity=1,
        service_time=Distribution("exponential", 1.0),
        queue=10**9,
        slowdown=None,
        drop_expired=False,
        setup_time=0.0,
        error_rate=0.0,
        series=series,
    )
    times: list[float] = []

    def customer() -> Generator[Any, Any, None]:
        arrived = sim.now
        yield Within(service.submit(1e18, setup=False), 1e18)
        times.append(sim.now - arrived)

    def arrivals(_: object) -> None:
        sim.start(customer())
        sim.after(sim.random.expovariate(0.5), arrivals)

    sim.after(0.0, arrivals)
    sim.run(200_000)
    mean = statistics.fmean(times[1000:])  # after a short warm-up
    assert mean == pytest.approx(2.0, rel=0.05)
    wait_in_queue = mean - 1.0
    assert wait_in_queue == pytest.approx(1.0, rel=0.1)  # Wq = rho / (mu - lambda)


@pytest.mark.parametrize(
    ("build", "parameter"),
    [
        (lambda sim: sim.after(math.nan, print), "delay"),
        (lambda sim: sim.after(-1, print), "delay"),
        (lambda sim: sim.after(math.inf, print), "delay"),
        (lambda sim: sim.after("1", print), "delay"),
        (lambda sim: sim.at(math.nan, print), "time"),
        (lambda sim: sim.at(math.inf, print), "time"),
        (lambda sim: Within(sim.signal(), -1), "seconds"),
        (lambda sim: Within(sim.signal(), math.nan), "seconds"),
        (lambda sim: Within(sim.signal(), math.inf), "seconds"),
        (lambda sim: Within(1, 1), "signal"),  # type: ignore[arg-type]
        (lambda sim: Signal(1), "sim"),  # type: ignore[arg-type]
        (lambda sim: SimClock(1), "sim"),  # type: ignore[arg-type]
        (lambda sim: sim.start(1), "process"),
        (lambda sim: sim.start(print), "process"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_bad_engine_input_is_refused_at_once(build: Any, parameter: str) -> None:
    sim = Simulation(seed=1)
    with pytest.raises(ConfigError, match=parameter):
        build(sim)
    assert sim.pending == 0  # nothing half-done


@pytest.mark.parametrize("wait", [-1.0, math.nan])
def test_a_process_yielding_a_negative_or_nan_wait_is_an_error(wait: float) -> None:
    sim = Simulation(seed=1)

    def process() -> Generator[Any, Any, None]:
        yield wait

    with pytest.raises(ValueError, match="a wait of seconds >= 0"):
        sim.start(process())
    assert sim.now == 0.0
