"""Bulkhead behaves the same through every driver: the decorator (sync and async),
``call``, ``acall``, and the simulator's (``try_acquire``/``release``, no queue)."""

from __future__ import annotations

import pytest

from stormproof import Bulkhead, BulkheadFull

from .drivers import BULKHEAD, Driver, driving, fail, interrupt, ok

drive = driving(BULKHEAD)


def make(drive: Driver, limit: int = 2) -> Bulkhead:
    return Bulkhead(limit, name="pool", clock=drive.clock)


def test_a_call_runs_and_gives_its_permit_back(drive: Driver) -> None:
    bulkhead = make(drive)
    assert drive.call(bulkhead, drive.script(ok("value")), "k") == "value"
    assert bulkhead.active == 0


def test_calls_beyond_the_limit_are_rejected_without_running(drive: Driver) -> None:
    bulkhead = make(drive)
    gate = drive.gate()
    held = [drive.start(bulkhead, drive.script(ok(n, gate=gate))) for n in (1, 2)]
    assert bulkhead.active == 2
    refused = drive.script(ok("value"))
    with pytest.raises(BulkheadFull) as first:
        drive.call(bulkhead, refused)
    with pytest.raises(BulkheadFull) as second:
        drive.call(bulkhead, refused)
    assert len(refused) == 0
    assert first.value is not second.value  # a fresh rejection each time
    assert first.value.policy == "pool"
    gate.open()
    assert [call.result() for call in held] == [1, 2]
    assert bulkhead.active == 0
    assert drive.call(bulkhead, drive.script(ok("value"))) == "value"


def test_an_error_gives_the_permit_back_and_propagates_unchanged(drive: Driver) -> None:
    bulkhead = make(drive, limit=1)
    error = ConnectionError("reset")
    with pytest.raises(ConnectionError) as raised:
        drive.call(bulkhead, drive.script(fail(error)))
    assert raised.value is error
    assert bulkhead.active == 0
    assert drive.call(bulkhead, drive.script(ok("value"))) == "value"


def test_an_interruption_gives_the_permit_back(drive: Driver) -> None:
    bulkhead = make(drive, limit=1)
    with pytest.raises(drive.interrupted):
        drive.call(bulkhead, drive.script(interrupt()))
    assert bulkhead.active == 0
    assert drive.call(bulkhead, drive.script(ok("value"))) == "value"


def test_an_interrupted_waiting_call_gives_the_permit_back(drive: Driver) -> None:
    bulkhead = make(drive, limit=1)
    gate = drive.gate()
    held = drive.start(bulkhead, drive.script(ok("held", gate=gate)))
    assert bulkhead.active == 1
    gate.interrupt()
    with pytest.raises(drive.interrupted):
        held.result()
    assert bulkhead.active == 0
    assert drive.call(bulkhead, drive.script(ok("value"))) == "value"


def test_an_error_after_time_taken_gives_the_permit_back(drive: Driver) -> None:
    bulkhead = make(drive, limit=1)
    with pytest.raises(TimeoutError):
        drive.call(bulkhead, drive.script(fail(TimeoutError(), after=3.0)))
    assert (bulkhead.active, drive.now()) == (0, 3.0)
