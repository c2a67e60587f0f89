"""Timeout keeps the same rules through every driver: ``call``, ``acall`` and the
decorators. A sync timeout is cooperative by design (Python cannot stop a thread): the
shared rules are the deadline it sets; cancelling (async) and reporting an overrun
(sync) are each driver kind's own, tested for those drivers only."""

from __future__ import annotations

import pytest

from stormproof import DeadlineExceeded, Timeout, deadline, remaining
from stormproof.events import Recorder, TimeoutExpired, TimeoutOverran

from .drivers import TIMEOUT, Driver, driving, fail, hang, interrupt, ok

drive = driving(TIMEOUT)
async_drive = driving(tuple(kind for kind in TIMEOUT if kind.kind == "async"))
sync_drive = driving(tuple(kind for kind in TIMEOUT if kind.kind == "sync"))


def make(drive: Driver, seconds: float = 5.0, **options: object) -> Timeout:
    return Timeout(seconds, clock=drive.clock, **options)  # type: ignore[arg-type]


# -- the shared rules ---------------------------------------------------------------------------


def test_the_deadline_is_visible_inside(drive: Driver) -> None:
    script = drive.script(ok("value"))
    assert drive.call(make(drive), script, "k") == "value"
    assert [(call.args, call.remaining) for call in script.calls] == [(("k",), 5.0)]
    assert remaining() is None  # and gone after the call


def test_a_nearer_outer_deadline_wins(drive: Driver) -> None:
    script = drive.script(ok("value"))
    with deadline(2.0, clock=drive.clock):
        assert drive.call(make(drive), script) == "value"
    assert script.calls[0].remaining == 2.0


def test_its_own_limit_wins_over_a_farther_outer_deadline(drive: Driver) -> None:
    script = drive.script(ok("value"))
    with deadline(10.0, clock=drive.clock):
        assert drive.call(make(drive), script) == "value"
        assert remaining() == 10.0  # the outer deadline is back after the call
    assert script.calls[0].remaining == 5.0


def test_an_outer_deadline_already_passed_raises_without_calling(drive: Driver) -> None:
    script = drive.script(ok("value"))
    with deadline(1.0, clock=drive.clock):
        drive.advance(1.0)
        with pytest.raises(DeadlineExceeded):
            drive.call(make(drive), script)
    assert len(script) == 0


def test_an_instant_call_takes_no_time(drive: Driver) -> None:
    assert drive.call(make(drive), drive.script(ok("value"))) == "value"
    assert drive.now() == 0.0


def test_a_call_within_its_time_returns_at_its_end(drive: Driver) -> None:
    assert drive.call(make(drive), drive.script(ok("value", after=3.0))) == "value"
    assert drive.now() == 3.0


def test_the_works_error_propagates_unchanged(drive: Driver) -> None:
    error = ConnectionError("reset")
    with pytest.raises(ConnectionError) as raised:
        drive.call(make(drive), drive.script(fail(error, after=1.0)))
    assert raised.value is error
    assert drive.now() == 1.0


def test_an_interruption_propagates(drive: Driver) -> None:
    with pytest.raises(drive.interrupted):
        drive.call(make(drive), drive.script(interrupt()))


# -- async: the work is cancelled when time is up ---------------------------------------------


def test_async_a_hung_call_is_cancelled_at_the_timeout(async_drive: Driver) -> None:
    drive = async_drive
    recorder = Recorder()
    script = drive.script(hang())
    with pytest.raises(DeadlineExceeded) as raised:
        drive.call(make(drive, name="read", listeners=[recorder]), script)
    assert isinstance(raised.value, TimeoutError)
    assert script.calls[0].cancelled
    assert drive.now() == 5.0
    (expired,) = recorder.of(TimeoutExpired)
    assert (expired.policy, expired.seconds) == ("read", 5.0)


def test_async_a_slow_call_is_cancelled_at_the_nearer_outer_deadline(async_drive: Driver) -> None:
    drive = async_drive
    script = drive.script(ok("late", after=10.0))
    with deadline(2.0, clock=drive.clock), pytest.raises(DeadlineExceeded):
        drive.call(make(drive), script)
    assert script.calls[0].cancelled
    assert drive.now() == 2.0


# -- sync: cooperative; an overrun is reported --------------------------------------------------


def test_sync_an_overrunning_call_returns_and_is_reported(sync_drive: Driver) -> None:
    drive = sync_drive
    recorder = Recorder()
    script = drive.script(ok("late", after=7.0))
    assert drive.call(make(drive, name="read", listeners=[recorder]), script) == "late"
    (overran,) = recorder.of(TimeoutOverran)
    assert (overran.policy, overran.seconds, overran.elapsed) == ("read", 5.0, 7.0)


def test_sync_a_call_within_its_time_is_not_reported(sync_drive: Driver) -> None:
    drive = sync_drive
    recorder = Recorder()
    drive.call(make(drive, listeners=[recorder]), drive.script(ok("value", after=5.0)))
    assert recorder.events == []
