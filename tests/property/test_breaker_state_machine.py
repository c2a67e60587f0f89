"""The circuit breaker against a plain model, under any sequence of calls and time."""

from __future__ import annotations

from collections import deque
from fractions import Fraction

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from stormproof import CircuitBreaker, CircuitOpen
from stormproof.testing import FakeClock

WINDOW, MINIMUM, RATE, OPEN_FOR, OPEN_MAX, PROBES = 8, 4, 0.5, 10.0, 40.0, 2


class Model:
    def __init__(self) -> None:
        self.window: deque[bool] = deque(maxlen=WINDOW)  # True: failed
        self.state = "closed"
        self.epoch = 0
        self.open_until = 0.0
        self.trips = 0
        self.probes = 0
        self.probe_successes = 0

    def move(self, state: str, now: float) -> None:
        if state == "open":
            self.open_until = now + min(OPEN_MAX, OPEN_FOR * 2**self.trips)
            self.trips += 1
        if state == "closed":
            self.trips = 0
        if state == "half_open":
            self.probes = self.probe_successes = 0
        else:
            self.window.clear()
        self.state = state
        self.epoch += 1

    def acquire(self, now: float) -> int | None:
        if self.state == "open" and now >= self.open_until:
            self.move("half_open", now)
        if self.state == "closed":
            return self.epoch
        if self.state == "half_open" and self.probes < PROBES:
            self.probes += 1
            return self.epoch
        return None

    def outcome(self, permit: int, failed: bool, now: float) -> None:
        if permit != self.epoch:
            return
        if self.state == "closed":
            self.window.append(failed)
            calls, failures = len(self.window), sum(self.window)
            if calls >= MINIMUM and Fraction(failures, calls) >= Fraction(repr(RATE)):
                self.move("open", now)
        elif self.state == "half_open":
            if failed:
                self.move("open", now)
            else:
                self.probe_successes += 1
                if self.probe_successes >= PROBES:
                    self.move("closed", now)

    def release(self, permit: int) -> None:
        if self.state == "half_open" and permit == self.epoch and self.probes > 0:
            self.probes -= 1


class BreakerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.breaker = CircuitBreaker(
            "model",
            failure_rate=RATE,
            window=WINDOW,
            minimum_calls=MINIMUM,
            open_for=OPEN_FOR,
            open_for_max=OPEN_MAX,
            half_open_calls=PROBES,
            clock=self.clock,
        )
        self.model = Model()
        self.held: list[tuple[int, int]] = []  # (real permit, model permit)

    def _acquire(self) -> tuple[int, int] | None:
        now = self.clock.now()
        expected = self.model.acquire(now)
        try:
            permit = self.breaker.acquire()
        except CircuitOpen:
            assert expected is None
            return None
        assert expected is not None
        return permit, expected

    @rule(seconds=st.sampled_from([0.5, 3.0, 10.0, 25.0]))
    def time_passes(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule(failed=st.booleans())
    def call(self, failed: bool) -> None:
        permits = self._acquire()
        if permits is not None:
            self._finish(permits, failed)

    @rule()
    def hold(self) -> None:
        permits = self._acquire()
        if permits is not None:
            self.held.append(permits)

    @precondition(lambda self: self.held)
    @rule(data=st.data(), outcome=st.sampled_from(["ok", "failed", "cancelled"]))
    def finish_held(self, data: st.DataObject, outcome: str) -> None:
        index = data.draw(st.integers(min_value=0, max_value=len(self.held) - 1))
        permits = self.held.pop(index)
        if outcome == "cancelled":
            self.breaker.release(permits[0])
            self.model.release(permits[1])
        else:
            self._finish(permits, outcome == "failed")

    def _finish(self, permits: tuple[int, int], failed: bool) -> None:
        permit, expected = permits
        if failed:
            self.breaker.on_failure(permit)
        else:
            self.breaker.on_success(permit)
        self.model.outcome(expected, failed, self.clock.now())

    @invariant()
    def same_state_and_counts(self) -> None:
        metrics = self.breaker.metrics()
        assert metrics.state.value == self.model.state
        if self.model.state == "closed":
            assert metrics.calls == len(self.model.window)
            assert metrics.failures == sum(self.model.window)


TestBreaker = BreakerMachine.TestCase
TestBreaker.settings = settings(max_examples=400, stateful_step_count=40, deadline=None)
