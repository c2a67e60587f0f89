"""Failover behaves the same through every driver: the direct call ``failover(...)``,
``await failover.acall(...)``, and the simulator's failover driver."""

from __future__ import annotations

import pytest

from stormproof import CircuitBreaker, CircuitOpen, Failover, deadline
from stormproof.events import FailoverSwitched, Recorder

from .drivers import FAILOVER, Driver, Script, driving, fail, interrupt, ok

drive = driving(FAILOVER)


def make(drive: Driver, east: Script, west: Script, **options: object) -> Failover:
    breaker = CircuitBreaker(
        "db", failure_rate=0.5, window=4, minimum_calls=2, open_for=10.0, clock=drive.clock
    )
    options = {"breaker": breaker, "failback_after": 30.0, "probe_interval": 5.0, **options}
    return drive.failover({"east": east, "west": west}, **options)


def test_the_first_region_of_the_plan_answers(drive: Driver) -> None:
    east, west = drive.script(ok("from east")), drive.script(ok("from west"))
    failover = make(drive, east, west)
    assert drive.call(failover, None, "k") == "from east"
    assert [call.args for call in east.calls] == [("k",)]
    assert len(west) == 0


def test_a_regional_failure_moves_the_call_to_the_next_region(drive: Driver) -> None:
    east = drive.script(fail(ConnectionError("no route")))
    west = drive.script(ok("from west"))
    failover = make(drive, east, west)
    assert drive.call(failover, None, "k") == "from west"
    assert [call.args for call in west.calls] == [("k",)]
    assert failover.active_region == "east"  # one failure does not move traffic


def test_traffic_moves_when_the_active_regions_breaker_opens(drive: Driver) -> None:
    recorder = Recorder()
    east = drive.script(fail(ConnectionError("no route")))
    west = drive.script(ok("from west"))
    failover = make(drive, east, west, listeners=[recorder])
    for _ in range(2):
        assert drive.call(failover, None) == "from west"
    assert failover.breaker("east").state == "open"
    assert failover.active_region == "west"
    assert drive.call(failover, None) == "from west"
    assert len(east) == 2  # the third call went straight to west
    (switched,) = recorder.of(FailoverSwitched)
    assert (switched.previous, switched.region, switched.reason) == ("east", "west", "failover")


def test_a_non_regional_error_propagates_unchanged(drive: Driver) -> None:
    error = KeyError("not found")
    east, west = drive.script(fail(error)), drive.script(ok("from west"))
    failover = make(drive, east, west)
    with pytest.raises(KeyError) as raised:
        drive.call(failover, None)
    assert raised.value is error
    assert len(west) == 0
    assert failover.breaker("east").metrics().failures == 0  # the region answered


def test_when_every_region_fails_the_last_error_propagates(drive: Driver) -> None:
    last = ConnectionError("west down too")
    east, west = drive.script(fail(ConnectionError("east down"))), drive.script(fail(last))
    with pytest.raises(ConnectionError) as raised:
        drive.call(make(drive, east, west), None)
    assert raised.value is last


def test_an_open_breaker_moves_the_call_on_without_calling_the_region(drive: Driver) -> None:
    east, west = drive.script(ok("from east")), drive.script(ok("from west"))
    failover = make(drive, east, west)
    failover.breaker("east").force_open()
    assert drive.call(failover, None) == "from west"
    assert len(east) == 0
    failover.breaker("west").force_open()
    with pytest.raises(CircuitOpen):
        drive.call(failover, None)


def test_no_further_region_once_the_deadline_has_passed(drive: Driver) -> None:
    error = ConnectionError("slow and down")
    east = drive.script(fail(error, after=2.0))
    west = drive.script(ok("from west"))
    with deadline(1.0, clock=drive.clock), pytest.raises(ConnectionError) as raised:
        drive.call(make(drive, east, west), None)
    assert raised.value is error
    assert len(west) == 0


def test_the_next_region_while_time_is_left(drive: Driver) -> None:
    east = drive.script(fail(ConnectionError(), after=2.0))
    west = drive.script(ok("from west"))
    with deadline(3.0, clock=drive.clock):
        assert drive.call(make(drive, east, west), None) == "from west"
    assert west.times == [2.0]


def test_traffic_fails_back_after_probes_answer_for_failback_after(drive: Driver) -> None:
    recorder = Recorder()
    east = drive.script(fail(ConnectionError()), fail(ConnectionError()), ok("from east"))
    west = drive.script(ok("from west"))
    failover = make(drive, east, west, listeners=[recorder])
    for _ in range(2):
        drive.call(failover, None)
    assert failover.active_region == "west"
    drive.advance(10.0)  # east's breaker is half-open: a probe may go there
    answers = []
    for _ in range(13):  # a call every 2.5 s: one in two is a probe of east
        answers.append(drive.call(failover, None))
        drive.advance(2.5)
    assert answers == ["from east", "from west"] * 6 + ["from east"]
    assert failover.active_region == "east"  # 30 s of healthy probes, from t=10 to t=40
    assert east.times[2:] == [10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0]
    assert [e.reason for e in recorder.of(FailoverSwitched)] == ["failover", "failback"]
    assert drive.call(failover, None) == "from east"


def test_a_failed_probe_restarts_the_failback_clock(drive: Driver) -> None:
    east = drive.script(
        fail(ConnectionError()), fail(ConnectionError()), ok(), fail(ConnectionError()), ok()
    )
    west = drive.script(ok("from west"))
    failover = make(drive, east, west)
    for _ in range(2):
        drive.call(failover, None)
    drive.advance(10.0)
    for _ in range(8):  # probes at 10 (ok), 15 (fails), 20, 25, ..., 45
        drive.call(failover, None)
        drive.advance(5.0)
    assert failover.active_region == "west"  # healthy only since 20: 25 s, not 30


def test_an_interruption_propagates_and_tries_no_other_region(drive: Driver) -> None:
    east, west = drive.script(interrupt()), drive.script(ok("from west"))
    failover = make(drive, east, west)
    with pytest.raises(drive.interrupted):
        drive.call(failover, None)
    assert len(west) == 0
    assert failover.breaker("east").metrics().calls == 0
