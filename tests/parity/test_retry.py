"""Retry behaves the same through every driver: the decorator, ``call``, the async
decorator, ``acall``, the block forms (sync and async), and the simulator's two drivers
(``retrying``, a process, and ``RetryCall``, a chain of calls).

The block forms retry on exceptions only (``retry_on_result`` needs the call's result),
so the tests of results run through the other six."""

from __future__ import annotations

import pytest

from stormproof import (
    Backoff,
    BulkheadFull,
    CircuitOpen,
    DeadlineExceeded,
    Retry,
    Throttled,
    TokenBucketBudget,
    deadline,
)
from stormproof.events import Recorder, RetryGaveUp, RetryScheduled

from .drivers import RETRY, Driver, driving, fail, interrupt, ok, retry_backoff

drive = driving(RETRY)
drive_with_results = driving(tuple(kind for kind in RETRY if kind.results))


class Hinted(ConnectionError):
    """A failure carrying a server's ``retry_after`` hint (seconds)."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"come back in {retry_after}s")
        self.retry_after = retry_after


def make(drive: Driver, **options: object) -> Retry:
    options.setdefault("on", ConnectionError)
    options.setdefault("backoff", retry_backoff())
    return Retry(clock=drive.clock, **options)  # type: ignore[arg-type]


# -- attempts -------------------------------------------------------------------------------


def test_a_success_is_returned_after_one_attempt(drive: Driver) -> None:
    script = drive.script(ok("value"))
    assert drive.call(make(drive), script, "k") == "value"
    assert script.times == [0.0]
    assert script.calls[0].args == ("k",)


def test_a_failure_is_retried_until_the_work_succeeds(drive: Driver) -> None:
    script = drive.script(fail(ConnectionError()), fail(ConnectionError()), ok("value"))
    assert drive.call(make(drive, attempts=3), script) == "value"
    assert script.times == [0.0, 1.0, 3.0]
    assert drive.now() == 3.0


def test_attempts_are_bounded_and_the_last_error_is_reraised_unchanged(drive: Driver) -> None:
    errors = [ConnectionError(f"attempt {n}") for n in (1, 2, 3)]
    script = drive.script(*(fail(error) for error in errors), ok("too late"))
    with pytest.raises(ConnectionError) as raised:
        drive.call(make(drive, attempts=3), script)
    assert raised.value is errors[2]
    assert raised.value.__cause__ is None
    assert script.times == [0.0, 1.0, 3.0]


def test_one_attempt_means_no_retry(drive: Driver) -> None:
    error = ConnectionError()
    script = drive.script(fail(error), ok())
    with pytest.raises(ConnectionError) as raised:
        drive.call(make(drive, attempts=1), script)
    assert raised.value is error
    assert len(script) == 1


# -- what is retried ------------------------------------------------------------------------


def test_an_error_on_does_not_match_propagates_at_once_unchanged(drive: Driver) -> None:
    error = KeyError("not found")
    script = drive.script(fail(error), ok())
    with pytest.raises(KeyError) as raised:
        drive.call(make(drive, on=(ConnectionError, TimeoutError)), script)
    assert raised.value is error
    assert len(script) == 1


def test_on_as_a_predicate(drive: Driver) -> None:
    retryable, final = ValueError("retryable"), ValueError("final")
    script = drive.script(fail(retryable), fail(final), ok())
    retry = make(drive, on=lambda error: "retryable" in str(error), attempts=5)
    with pytest.raises(ValueError) as raised:
        drive.call(retry, script)
    assert raised.value is final
    assert script.times == [0.0, 1.0]


def test_rejections_are_not_retried(drive: Driver) -> None:
    rejection = CircuitOpen("breaker", retry_after=5.0)
    script = drive.script(fail(rejection), ok())
    with pytest.raises(CircuitOpen) as raised:
        drive.call(make(drive, on=Exception), script)
    assert raised.value is rejection
    assert len(script) == 1


def test_retry_rejected_retries_rejections_even_when_on_does_not_match(drive: Driver) -> None:
    script = drive.script(fail(BulkheadFull("pool")), ok("value"))
    retry = make(drive, on=ConnectionError, retry_rejected=True)
    assert drive.call(retry, script) == "value"
    assert script.times == [0.0, 1.0]


def test_retry_rejected_honours_the_rejections_retry_after(drive: Driver) -> None:
    script = drive.script(fail(CircuitOpen("breaker", retry_after=5.0)), ok("value"))
    retry = make(drive, on=ConnectionError, retry_rejected=True)
    assert drive.call(retry, script) == "value"
    assert script.times == [0.0, 5.0]


# -- results --------------------------------------------------------------------------------


def test_retry_on_result_judges_the_first_attempt(drive_with_results: Driver) -> None:
    drive = drive_with_results
    script = drive.script(ok(None), ok("value"))
    retry = make(drive, retry_on_result=lambda result: result is None)
    assert drive.call(retry, script) == "value"
    assert script.times == [0.0, 1.0]


def test_retry_on_result_judges_later_attempts(drive_with_results: Driver) -> None:
    drive = drive_with_results
    script = drive.script(fail(ConnectionError()), ok(None), ok("value"))
    retry = make(drive, retry_on_result=lambda result: result is None)
    assert drive.call(retry, script) == "value"
    assert script.times == [0.0, 1.0, 3.0]


def test_the_last_result_is_returned_when_attempts_run_out(drive_with_results: Driver) -> None:
    drive = drive_with_results
    script = drive.script(ok("pending 1"), ok("pending 2"))
    retry = make(drive, attempts=2, retry_on_result=lambda result: result.startswith("pending"))
    assert drive.call(retry, script) == "pending 2"
    assert len(script) == 2


# -- the budget -------------------------------------------------------------------------------


SUCCESSES = pytest.mark.parametrize("value", ["value", None], ids=["value", "none"])


@SUCCESSES
def test_each_retry_is_paid_for_and_a_success_refunds_the_last(
    drive: Driver, value: str | None
) -> None:
    budget = TokenBucketBudget(capacity=100, retry_cost=10, timeout_cost=10)
    script = drive.script(fail(ConnectionError()), fail(ConnectionError()), ok(value))
    assert drive.call(make(drive, budget=budget), script) == value
    assert budget.available == 90  # two retries paid, the last one refunded


@SUCCESSES
def test_a_success_at_the_first_attempt_earns_the_reward(drive: Driver, value: str | None) -> None:
    budget = TokenBucketBudget(capacity=100, retry_cost=10, timeout_cost=10)
    retry = make(drive, budget=budget, attempts=3)
    failing = drive.script(fail(ConnectionError()))
    with pytest.raises(ConnectionError):
        drive.call(retry, failing)
    assert budget.available == 80
    assert drive.call(retry, drive.script(ok(value))) == value
    assert budget.available == 81


def test_a_budget_that_refuses_stops_the_retries(drive: Driver) -> None:
    budget = TokenBucketBudget(capacity=10, retry_cost=10, timeout_cost=10)
    recorder = Recorder()
    retry = make(drive, budget=budget, attempts=5, listeners=[recorder])
    errors = [ConnectionError(n) for n in range(5)]
    script = drive.script(*(fail(error) for error in errors))
    with pytest.raises(ConnectionError) as raised:
        drive.call(retry, script)
    assert raised.value is errors[1]
    assert script.times == [0.0, 1.0]
    assert budget.available == 0
    (gave_up,) = recorder.of(RetryGaveUp)
    assert (gave_up.reason, gave_up.attempts, gave_up.error) == ("budget", 2, errors[1])


def test_an_error_on_does_not_match_is_not_charged(drive: Driver) -> None:
    budget = TokenBucketBudget(capacity=100, retry_cost=10, timeout_cost=10)
    with pytest.raises(KeyError):
        drive.call(make(drive, budget=budget), drive.script(fail(KeyError("k"))))
    assert budget.available == 100


# -- time -----------------------------------------------------------------------------------


def test_no_retry_whose_backoff_ends_at_or_past_the_deadline(drive: Driver) -> None:
    recorder = Recorder()
    retry = make(drive, attempts=10, deadline=3.0, listeners=[recorder])
    errors = [ConnectionError(n) for n in range(10)]
    script = drive.script(*(fail(error) for error in errors))
    with pytest.raises(ConnectionError) as raised:
        drive.call(retry, script)
    assert raised.value is errors[1]
    assert script.times == [0.0, 1.0]  # the next wait, 2 s, would end at 3.0
    assert [e.reason for e in recorder.of(RetryGaveUp)] == ["deadline"]


def test_the_current_deadline_bounds_the_retries_too(drive: Driver) -> None:
    script = drive.script(fail(ConnectionError()))
    with deadline(4.0, clock=drive.clock), pytest.raises(ConnectionError):
        drive.call(make(drive, attempts=10), script)
    assert script.times == [0.0, 1.0, 3.0]
    assert [call.remaining for call in script.calls] == [4.0, 3.0, 1.0]


def test_an_attempt_that_ends_at_the_deadline_is_the_last(drive: Driver) -> None:
    # The Outage Lab's strategies that honour the caller's deadline rely on it: an
    # attempt cut at the deadline leaves no time, so no attempt follows (none is sent
    # with no time left).
    script = drive.script(fail(ConnectionError(), after=1.5))
    retry = make(drive, attempts=5, backoff=Backoff(base=0.0, cap=0.0, jitter="none"))
    with deadline(3.0, clock=drive.clock), pytest.raises(ConnectionError):
        drive.call(retry, script)
    assert script.times == [0.0, 1.5]
    assert [call.remaining for call in script.calls] == [3.0, 1.5]
    assert drive.now() == 3.0


def test_a_deadline_already_passed_raises_before_any_attempt(drive: Driver) -> None:
    script = drive.script(ok("value"))
    with deadline(1.0, clock=drive.clock):
        drive.advance(1.0)
        with pytest.raises(DeadlineExceeded):
            drive.call(make(drive), script)
    assert len(script) == 0


def test_retry_after_is_a_lower_bound_on_the_wait(drive: Driver) -> None:
    script = drive.script(fail(Hinted(5.0)), fail(Hinted(0.5)), ok("value"))
    assert drive.call(make(drive), script) == "value"
    assert script.times == [0.0, 5.0, 7.0]  # 5 s as hinted, then the backoff's 2 s


def test_retry_after_is_clamped_to_max_retry_after(drive: Driver) -> None:
    script = drive.script(fail(Hinted(3600.0)), ok("value"))
    assert drive.call(make(drive, max_retry_after=30.0), script) == "value"
    assert script.times == [0.0, 30.0]


# -- nesting --------------------------------------------------------------------------------


def test_a_retry_inside_a_retry_makes_one_attempt(drive: Driver) -> None:
    script = drive.script(fail(ConnectionError()))
    inner = make(drive, attempts=3)
    outer = make(drive, attempts=3)
    with pytest.raises(ConnectionError):
        drive.call(outer, drive.nest(inner, script))
    assert script.times == [0.0, 1.0, 3.0]  # 3 attempts, not 9


def test_retry_when_nested_opts_back_in(drive: Driver) -> None:
    script = drive.script(fail(ConnectionError()))
    inner = make(drive, attempts=2, retry_when_nested=True)
    outer = make(drive, attempts=2)
    with pytest.raises(ConnectionError):
        drive.call(outer, drive.nest(inner, script))
    assert script.times == [0.0, 1.0, 2.0, 3.0]


# -- events -----------------------------------------------------------------------------------


def test_events_for_every_retry_and_the_give_up(drive: Driver) -> None:
    recorder = Recorder()
    errors = [ConnectionError(n) for n in range(3)]
    script = drive.script(*(fail(error) for error in errors))
    with pytest.raises(ConnectionError):
        drive.call(make(drive, attempts=3, name="reads", listeners=[recorder]), script)
    scheduled = recorder.of(RetryScheduled)
    assert [(e.policy, e.time, e.attempt, e.delay, e.error) for e in scheduled] == [
        ("reads", 0.0, 1, 1.0, errors[0]),
        ("reads", 1.0, 2, 2.0, errors[1]),
    ]
    (gave_up,) = recorder.of(RetryGaveUp)
    assert (gave_up.time, gave_up.attempts, gave_up.reason, gave_up.error) == (
        3.0,
        3,
        "attempts",
        errors[2],
    )
    assert recorder.kinds() == ["retry.scheduled", "retry.scheduled", "retry.gave_up"]


# -- cancellation -----------------------------------------------------------------------------


def test_an_interruption_is_never_retried_nor_swallowed(drive: Driver) -> None:
    budget = TokenBucketBudget(capacity=100, retry_cost=10, timeout_cost=10)
    script = drive.script(fail(ConnectionError()), interrupt(), ok("value"))
    with pytest.raises(drive.interrupted):
        drive.call(make(drive, on=Exception, attempts=5, budget=budget), script)
    assert script.times == [0.0, 1.0]
    assert budget.available == 90  # the retry was paid; nothing else was recorded


def test_a_throttled_request_is_refused_before_any_attempt(drive: Driver) -> None:
    class Refusing(TokenBucketBudget):
        def on_request(self) -> None:
            raise Throttled("throttle", retry_after=1.0)

    script = drive.script(ok("value"))
    with pytest.raises(Throttled):
        drive.call(make(drive, budget=Refusing()), script)
    assert len(script) == 0
