"""CircuitBreaker behaves the same through every driver: the decorator (sync and async),
``call``, ``acall``, and the simulator's breaker driver."""

from __future__ import annotations

import pytest

from stormproof import BulkheadFull, CircuitBreaker, CircuitOpen
from stormproof.events import BreakerStateChanged, Recorder

from .drivers import BREAKER, Driver, driving, fail, interrupt, ok

drive = driving(BREAKER)


def make(drive: Driver, **options: object) -> CircuitBreaker:
    options = {"failure_rate": 0.5, "window": 4, "minimum_calls": 4, "open_for": 10.0, **options}
    return CircuitBreaker("dependency", clock=drive.clock, **options)  # type: ignore[arg-type]


def outcomes(drive: Driver, breaker: CircuitBreaker, pattern: str) -> None:
    """Calls that fail (F) or succeed (S), in order; their errors are swallowed here."""
    for outcome in pattern:
        if outcome == "F":
            with pytest.raises(ConnectionError):
                drive.call(breaker, drive.script(fail(ConnectionError())))
        else:
            assert drive.call(breaker, drive.script(ok("value"))) == "value"


def trip(drive: Driver, breaker: CircuitBreaker) -> None:
    outcomes(drive, breaker, "FFFF")
    assert breaker.state == "open"


# -- closed: when it trips ----------------------------------------------------------------------


def test_it_stays_closed_below_minimum_calls(drive: Driver) -> None:
    breaker = make(drive)
    outcomes(drive, breaker, "FFF")
    assert breaker.state == "closed"


def test_it_trips_at_the_failure_rate_once_minimum_calls_is_reached(drive: Driver) -> None:
    breaker = make(drive)
    outcomes(drive, breaker, "SFSF")
    assert breaker.state == "open"


def test_it_stays_closed_below_the_failure_rate(drive: Driver) -> None:
    breaker = make(drive)
    outcomes(drive, breaker, "FSSS")
    assert breaker.state == "closed"
    assert (breaker.metrics().calls, breaker.metrics().failures) == (4, 1)


def test_the_thresholds_are_evaluated_after_a_success_too(drive: Driver) -> None:
    breaker = make(drive)
    outcomes(drive, breaker, "FFFS")  # 3 failures in 4 once the success fills the window
    assert breaker.state == "open"


def test_rates_are_compared_exactly(drive: Driver) -> None:
    breaker = make(drive, failure_rate=0.55, window=100, minimum_calls=100)
    outcomes(drive, breaker, "S" * 45 + "F" * 54)
    assert breaker.state == "closed"
    outcomes(drive, breaker, "F")  # 55 failures in 100: exactly 0.55
    assert breaker.state == "open"


def test_slow_calls_trip_it(drive: Driver) -> None:
    breaker = make(drive, slow_call_duration=1.0, slow_call_rate=0.5, window=2, minimum_calls=2)
    assert drive.call(breaker, drive.script(ok("fast"))) == "fast"
    assert drive.call(breaker, drive.script(ok("slow", after=2.0))) == "slow"
    assert breaker.state == "open"
    assert drive.now() == 2.0


# -- what counts ------------------------------------------------------------------------------


def test_errors_on_does_not_match_count_as_successes(drive: Driver) -> None:
    breaker = make(drive, on=ConnectionError)
    error = KeyError("not found")
    for _ in range(4):
        with pytest.raises(KeyError) as raised:
            drive.call(breaker, drive.script(fail(error)))
        assert raised.value is error
    metrics = breaker.metrics()
    assert (metrics.calls, metrics.failures, breaker.state) == (4, 0, "closed")


def test_ignored_errors_are_not_recorded(drive: Driver) -> None:
    breaker = make(drive, ignore=KeyError)
    for _ in range(4):
        with pytest.raises(KeyError):
            drive.call(breaker, drive.script(fail(KeyError("k"))))
    assert breaker.metrics().calls == 0
    assert breaker.state == "closed"


def test_rejections_by_inner_policies_are_not_recorded(drive: Driver) -> None:
    breaker = make(drive)
    rejection = BulkheadFull("pool")
    with pytest.raises(BulkheadFull) as raised:
        drive.call(breaker, drive.script(fail(rejection)))
    assert raised.value is rejection
    assert breaker.metrics().calls == 0


def test_an_interruption_is_not_recorded(drive: Driver) -> None:
    breaker = make(drive)
    with pytest.raises(drive.interrupted):
        drive.call(breaker, drive.script(interrupt()))
    assert breaker.metrics().calls == 0


# -- open --------------------------------------------------------------------------------------


def test_an_open_breaker_rejects_without_calling(drive: Driver) -> None:
    breaker = make(drive)
    trip(drive, breaker)
    drive.advance(4.0)
    script = drive.script(ok("value"))
    with pytest.raises(CircuitOpen) as first:
        drive.call(breaker, script)
    with pytest.raises(CircuitOpen) as second:
        drive.call(breaker, script)
    assert len(script) == 0
    assert first.value is not second.value  # a fresh rejection each time
    assert first.value.policy == "dependency"
    assert first.value.retry_after == 6.0


def test_it_is_half_open_after_open_for(drive: Driver) -> None:
    breaker = make(drive)
    trip(drive, breaker)
    drive.advance(10.0)
    assert breaker.state == "half_open"


# -- half-open ---------------------------------------------------------------------------------


def test_half_open_admits_exactly_half_open_calls_probes(drive: Driver) -> None:
    breaker = make(drive, half_open_calls=2)
    trip(drive, breaker)
    drive.advance(10.0)
    gate = drive.gate()
    probes = [drive.start(breaker, drive.script(ok(f"probe {n}", gate=gate))) for n in (1, 2)]
    refused = drive.script(ok("value"))
    with pytest.raises(CircuitOpen):
        drive.call(breaker, refused)
    assert len(refused) == 0
    gate.open()
    assert [probe.result() for probe in probes] == ["probe 1", "probe 2"]
    assert breaker.state == "closed"  # every probe succeeded


def test_probes_all_succeeding_close_it_with_an_empty_window(drive: Driver) -> None:
    breaker = make(drive)
    trip(drive, breaker)
    drive.advance(10.0)
    outcomes(drive, breaker, "S")
    assert breaker.state == "closed"
    assert breaker.metrics().calls == 0
    outcomes(drive, breaker, "FFF")  # a fresh window: three failures are not enough
    assert breaker.state == "closed"


def test_a_failed_probe_reopens_it(drive: Driver) -> None:
    breaker = make(drive, half_open_calls=2)
    trip(drive, breaker)
    drive.advance(10.0)
    outcomes(drive, breaker, "SF")
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen) as raised:
        drive.call(breaker, drive.script(ok()))
    assert raised.value.retry_after == 10.0


def test_an_interrupted_probe_gives_its_slot_back(drive: Driver) -> None:
    breaker = make(drive)
    trip(drive, breaker)
    drive.advance(10.0)
    with pytest.raises(drive.interrupted):
        drive.call(breaker, drive.script(interrupt()))
    assert breaker.state == "half_open"
    assert drive.call(breaker, drive.script(ok("value"))) == "value"  # admitted as the probe
    assert breaker.state == "closed"


def test_an_interrupted_waiting_probe_gives_its_slot_back(drive: Driver) -> None:
    breaker = make(drive)
    trip(drive, breaker)
    drive.advance(10.0)
    gate = drive.gate()
    probe = drive.start(breaker, drive.script(ok("probe", gate=gate)))
    with pytest.raises(CircuitOpen):
        drive.call(breaker, drive.script(ok()))
    gate.interrupt()
    with pytest.raises(drive.interrupted):
        probe.result()
    assert drive.call(breaker, drive.script(ok("value"))) == "value"
    assert breaker.state == "closed"


def test_an_ignored_error_gives_the_probe_slot_back(drive: Driver) -> None:
    breaker = make(drive, ignore=KeyError)
    trip(drive, breaker)
    drive.advance(10.0)
    with pytest.raises(KeyError):
        drive.call(breaker, drive.script(fail(KeyError("k"))))
    assert drive.call(breaker, drive.script(ok("value"))) == "value"
    assert breaker.state == "closed"


# -- events --------------------------------------------------------------------------------------


def test_state_changes_are_announced(drive: Driver) -> None:
    recorder = Recorder()
    breaker = make(drive, listeners=[recorder])
    outcomes(drive, breaker, "SFSF")
    drive.advance(10.0)
    outcomes(drive, breaker, "S")
    changes = [
        (e.time, str(e.previous), str(e.state), e.failure_rate, e.open_for)
        for e in recorder.of(BreakerStateChanged)
    ]
    assert changes == [
        (0.0, "closed", "open", 0.5, 10.0),
        (10.0, "open", "half_open", None, None),
        (10.0, "half_open", "closed", None, None),
    ]
