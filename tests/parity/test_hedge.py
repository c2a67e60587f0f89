"""Hedge behaves the same through its drivers, ``acall`` and the async decorator (it
works on async calls only), and the simulator's ``hedging`` (attempts as processes, a
loser ended as a cancelled task is). Time is virtual (a FakeClock's, the simulation's):
an attempt taking 10 s and a hedge started after 1 s race as they would on a real clock."""

from __future__ import annotations

import pytest

from stormproof import Hedge, TokenBucketBudget
from stormproof.events import HedgeStarted, Recorder

from .drivers import HEDGE, Driver, driving, fail, hang, ok

drive = driving(HEDGE)


def make(drive: Driver, **options: object) -> Hedge:
    options = {"delay": 1.0, **options}
    return Hedge(clock=drive.clock, **options)  # type: ignore[arg-type]


def test_a_quick_answer_is_not_hedged(drive: Driver) -> None:
    script = drive.script(ok("value"))
    assert drive.call(make(drive), script, "k") == "value"
    assert script.times == [0.0]
    assert drive.now() == 0.0


def test_a_slow_attempt_is_hedged_and_the_first_success_wins(drive: Driver) -> None:
    recorder = Recorder()
    script = drive.script(ok("slow", after=10.0), ok("fast"))
    assert drive.call(make(drive, listeners=[recorder]), script, "k") == "fast"
    assert script.times == [0.0, 1.0]
    assert [call.args for call in script.calls] == [("k",), ("k",)]
    assert script.calls[0].cancelled  # the loser is cancelled
    assert drive.now() == 1.0
    (started,) = recorder.of(HedgeStarted)
    assert (started.attempt, started.reason, started.time) == (2, "delay", 1.0)


def test_the_slow_attempt_may_still_win(drive: Driver) -> None:
    script = drive.script(ok("first", after=3.0), ok("second", after=5.0))
    assert drive.call(make(drive), script) == "first"
    assert script.times == [0.0, 1.0]
    assert script.calls[1].cancelled
    assert drive.now() == 3.0


def test_max_hedges_bounds_the_attempts(drive: Driver) -> None:
    script = drive.script(ok("first", after=10.0), hang())
    assert drive.call(make(drive, max_hedges=1), script) == "first"
    assert script.times == [0.0, 1.0]
    assert drive.now() == 10.0


def test_a_failure_starts_the_next_attempt_at_once(drive: Driver) -> None:
    recorder = Recorder()
    script = drive.script(fail(ConnectionError()), ok("value"))
    assert drive.call(make(drive, listeners=[recorder]), script) == "value"
    assert script.times == [0.0, 0.0]
    assert [event.reason for event in recorder.of(HedgeStarted)] == ["failure"]


def test_a_failure_starts_the_next_attempt_while_another_is_pending(drive: Driver) -> None:
    script = drive.script(ok("slow", after=10.0), fail(ConnectionError()), ok("third"))
    assert drive.call(make(drive, max_hedges=2), script) == "third"
    assert script.times == [0.0, 1.0, 1.0]
    assert drive.now() == 1.0


def test_an_error_on_does_not_match_ends_the_call_unchanged(drive: Driver) -> None:
    error = KeyError("k")
    script = drive.script(fail(error), ok("value"))
    with pytest.raises(KeyError) as raised:
        drive.call(make(drive, on=ConnectionError), script)
    assert raised.value is error
    assert len(script) == 1


def test_when_every_attempt_fails_the_last_failure_is_raised(drive: Driver) -> None:
    first, last = ConnectionError("first"), ConnectionError("last")
    script = drive.script(fail(first), fail(last))
    with pytest.raises(ConnectionError) as raised:
        drive.call(make(drive, max_hedges=1), script)
    assert raised.value is last
    assert len(script) == 2


def test_each_hedge_is_paid_for_and_a_win_is_a_plain_success(drive: Driver) -> None:
    budget = TokenBucketBudget(capacity=100, retry_cost=10)
    script = drive.script(ok("slow", after=10.0), ok("fast"))
    assert drive.call(make(drive, budget=budget), script) == "fast"
    assert budget.available == 91  # the hedge's 10, then the success's reward: no refund


def test_a_budget_that_refuses_means_no_hedge(drive: Driver) -> None:
    budget = TokenBucketBudget(capacity=5, retry_cost=10)
    script = drive.script(ok("slow", after=10.0), ok("fast"))
    assert drive.call(make(drive, budget=budget), script) == "slow"
    assert script.times == [0.0]
    assert drive.now() == 10.0
