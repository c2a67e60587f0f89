"""AdaptiveThrottle on its own behaves the same through every driver. The library uses
a throttle on its own as the budget of a Retry that makes one attempt,
``Retry(on=..., attempts=1, budget=AdaptiveThrottle(...))``; the simulator's
``throttling`` driver (the Outage Lab's ``throttle`` table) takes the same decisions.

The rejection draw is fixed at 0.5: a request is refused once the probability
``(requests - k * accepts) / (requests + 1)`` is above it."""

from __future__ import annotations

import pytest

from stormproof import AdaptiveThrottle, CircuitOpen, Retry, Throttled
from stormproof.events import Recorder, ThrottleRejected

from .drivers import THROTTLE, Driver, driving, fail, interrupt, ok

drive = driving(THROTTLE)


def make(drive: Driver, **options: object) -> tuple[Retry, AdaptiveThrottle]:
    options = {"minimum_requests": 0, **options}
    throttle = AdaptiveThrottle(clock=drive.clock, random=lambda: 0.5, **options)  # type: ignore[arg-type]
    return Retry(on=ConnectionError, attempts=1, budget=throttle, clock=drive.clock), throttle


def test_failures_on_matches_are_not_accepted_and_then_requests_are_refused(
    drive: Driver,
) -> None:
    recorder = Recorder()
    retry, throttle = make(drive, listeners=[recorder])
    script = drive.script(fail(ConnectionError()))
    with pytest.raises(ConnectionError):
        drive.call(retry, script)
    assert throttle.rejection_probability == 0.5  # (1 - 2 * 0) / (1 + 1)
    with pytest.raises(ConnectionError):
        drive.call(retry, script)  # the draw, 0.5, is not below 0.5: sent
    assert throttle.rejection_probability == pytest.approx(2 / 3)
    with pytest.raises(Throttled) as refused:
        drive.call(retry, script)
    assert refused.value.policy == "adaptive-throttle"
    assert len(script) == 2  # refused locally: never sent
    assert throttle.rejection_probability == pytest.approx(3 / 4)  # it counts as a request
    (rejected,) = recorder.of(ThrottleRejected)
    assert (rejected.probability, rejected.retry) == (pytest.approx(2 / 3), False)


def test_successes_and_errors_on_does_not_match_are_accepted(drive: Driver) -> None:
    retry, throttle = make(drive)
    assert drive.call(retry, drive.script(ok("value"))) == "value"
    error = KeyError("k")
    with pytest.raises(KeyError) as raised:
        drive.call(retry, drive.script(fail(error)))  # the dependency answered
    assert raised.value is error
    assert throttle.rejection_probability == 0.0  # (2 - 2 * 2) / 3 < 0
    for _ in range(3):
        with pytest.raises(ConnectionError):
            drive.call(retry, drive.script(fail(ConnectionError())))
    assert throttle.rejection_probability == pytest.approx(1 / 6)  # (5 - 2 * 2) / 6


def test_a_rejection_inside_teaches_it_nothing(drive: Driver) -> None:
    retry, throttle = make(drive)
    rejection = CircuitOpen("breaker", retry_after=1.0)
    with pytest.raises(CircuitOpen) as raised:
        drive.call(retry, drive.script(fail(rejection)))
    assert raised.value is rejection
    assert throttle.rejection_probability == 0.5  # a request, not accepted


def test_the_window_forgets(drive: Driver) -> None:
    retry, throttle = make(drive, window=10.0)
    for _ in range(2):
        with pytest.raises(ConnectionError):
            drive.call(retry, drive.script(fail(ConnectionError(), after=1.0)))
    assert throttle.rejection_probability == pytest.approx(2 / 3)
    drive.advance(20.0)
    assert throttle.rejection_probability == 0.0
    assert drive.call(retry, drive.script(ok("back"))) == "back"


def test_an_interruption_is_never_recorded_nor_swallowed(drive: Driver) -> None:
    retry, throttle = make(drive)
    with pytest.raises(drive.interrupted):
        drive.call(retry, drive.script(interrupt()))
    assert throttle.rejection_probability == 0.5  # the request only
