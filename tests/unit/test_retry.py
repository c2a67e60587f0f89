from __future__ import annotations

import asyncio
import inspect
import math
import threading
import traceback
from typing import Any

import pytest

from stormproof import (
    Backoff,
    BulkheadFull,
    CircuitBreaker,
    ConfigError,
    Pipeline,
    Retry,
    RetryThrottle,
    Throttled,
    TokenBucketBudget,
)
from stormproof.events import Recorder, RetryGaveUp, RetryScheduled
from stormproof.testing import FakeClock

NO_JITTER = Backoff(base=0.1, cap=10.0, jitter="none")


class Flaky:
    """Fails ``failures`` times with ``error``, then returns ``value``."""

    def __init__(
        self, failures: int, error: type[Exception] = ConnectionError, value: object = "ok"
    ) -> None:
        self.failures = failures
        self.error = error
        self.value = value
        self.calls = 0
        self.raised: list[BaseException] = []

    def __call__(self, *args: object, **kwargs: object) -> object:
        self.calls += 1
        if self.calls <= self.failures:
            error = self.error(f"failure {self.calls}")
            self.raised.append(error)
            raise error
        return self.value

    async def async_call(self, *args: object, **kwargs: object) -> object:
        await asyncio.sleep(0)
        return self(*args, **kwargs)


# -- the basic contract ---------------------------------------------------------


def test_success_needs_one_attempt_and_no_sleep(clock: FakeClock) -> None:
    fn = Flaky(0)
    assert Retry(on=ConnectionError, clock=clock).call(fn) == "ok"
    assert fn.calls == 1
    assert clock.sleeps == []


def test_retries_then_succeeds(clock: FakeClock) -> None:
    fn = Flaky(2)
    retry = Retry(on=ConnectionError, attempts=3, backoff=NO_JITTER, clock=clock)
    assert retry.call(fn) == "ok"
    assert fn.calls == 3
    assert clock.sleeps == pytest.approx([0.1, 0.2])


def test_reraises_the_callers_own_exception_unchanged(clock: FakeClock) -> None:
    fn = Flaky(10)
    with pytest.raises(ConnectionError) as caught:
        Retry(on=ConnectionError, attempts=3, clock=clock).call(fn)
    assert caught.value is fn.raised[-1]
    assert fn.calls == 3
    # No implicit chaining from earlier attempts, and the traceback reaches the raise site.
    assert caught.value.__context__ is None
    assert caught.value.__cause__ is None
    frames = traceback.extract_tb(caught.value.__traceback__)
    assert frames[-1].name == "__call__"


def test_exceptions_not_listed_propagate_at_once(clock: FakeClock) -> None:
    fn = Flaky(5, error=KeyError)
    with pytest.raises(KeyError):
        Retry(on=ConnectionError, clock=clock).call(fn)
    assert fn.calls == 1


def test_tuple_and_predicate(clock: FakeClock) -> None:
    fn = Flaky(2, error=TimeoutError)
    assert Retry(on=(ConnectionError, TimeoutError), clock=clock).call(fn) == "ok"

    fn = Flaky(2, error=ValueError)
    retry = Retry(on=lambda e: "failure 1" in str(e), clock=clock)
    with pytest.raises(ValueError, match="failure 2"):
        retry.call(fn)
    assert fn.calls == 2


def test_attempts_one_means_no_retry(clock: FakeClock) -> None:
    fn = Flaky(1)
    with pytest.raises(ConnectionError):
        Retry(on=ConnectionError, attempts=1, clock=clock).call(fn)
    assert fn.calls == 1


def test_arguments_are_passed_through(clock: FakeClock) -> None:
    seen: list[tuple[Any, ...]] = []

    def fn(a: int, b: int = 0, *, c: int) -> int:
        seen.append((a, b, c))
        if len(seen) < 2:
            raise ConnectionError
        return a + b + c

    assert Retry(on=ConnectionError, clock=clock).call(fn, 1, 2, c=3) == 6
    assert seen == [(1, 2, 3), (1, 2, 3)]


@pytest.mark.parametrize("error", [KeyboardInterrupt, SystemExit, GeneratorExit])
def test_base_exceptions_are_never_retried_or_swallowed(
    clock: FakeClock, error: type[BaseException]
) -> None:
    calls = []

    def fn() -> None:
        calls.append(1)
        raise error

    with pytest.raises(error):
        Retry(on=lambda e: True, clock=clock).call(fn)
    assert len(calls) == 1


# -- deadline and hints ----------------------------------------------------------


def test_deadline_stops_a_retry_whose_backoff_would_end_past_it(clock: FakeClock) -> None:
    def slow_failure() -> None:
        clock.advance(1.0)  # each attempt takes a second
        raise ConnectionError

    recorder = Recorder()
    retry = Retry(
        on=ConnectionError,
        attempts=10,
        deadline=3.0,
        clock=clock,
        backoff=Backoff(base=0.5, jitter="none"),
        listeners=[recorder],
    )
    with pytest.raises(ConnectionError):
        retry.call(slow_failure)
    # t=1 fail, sleep .5 -> t=1.5; t=2.5 fail, sleep 1 would end at 3.5 > 3: stop.
    assert clock.sleeps == [0.5]
    assert clock.now() == 2.5
    gave_up = recorder.of(RetryGaveUp)
    assert [(e.reason, e.attempts) for e in gave_up] == [("deadline", 2)]


def test_deadline_counts_from_the_start_of_the_call(clock: FakeClock) -> None:
    clock.advance(1000)
    fn = Flaky(2)
    retry = Retry(on=ConnectionError, deadline=1.0, clock=clock, backoff=NO_JITTER)
    assert retry.call(fn) == "ok"


class Throttle(Exception):
    def __init__(self, retry_after: object) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


def test_retry_after_hint_is_honoured_and_never_shortens(clock: FakeClock) -> None:
    errors = iter(
        [Throttle(2.5), Throttle(0.01), Throttle("soon"), Throttle(-3), Throttle(math.nan)]
    )

    def fn() -> str:
        error = next(errors, None)
        if error is not None:
            raise error
        return "ok"

    retry = Retry(on=Throttle, attempts=6, clock=clock, backoff=Backoff(base=0.1, jitter="none"))
    assert retry.call(fn) == "ok"
    # 2.5 honoured; 0.01 never shortens the 0.2 backoff; invalid hints are ignored.
    assert clock.sleeps == pytest.approx([2.5, 0.2, 0.4, 0.8, 1.6])


def test_retry_after_hint_is_clamped(clock: FakeClock) -> None:
    fn_errors = iter([Throttle(3600)])

    def fn() -> str:
        error = next(fn_errors, None)
        if error is not None:
            raise error
        return "ok"

    retry = Retry(on=Throttle, clock=clock, max_retry_after=30.0)
    assert retry.call(fn) == "ok"
    assert clock.sleeps == [30.0]


def test_a_hint_past_the_deadline_gives_up(clock: FakeClock) -> None:
    fn = Flaky(0)
    calls = []

    def throttled() -> None:
        calls.append(1)
        raise Throttle(10)

    with pytest.raises(Throttle):
        Retry(on=Throttle, deadline=5, clock=clock).call(throttled)
    assert calls == [1]
    assert fn.calls == 0


def test_throttling_errors_use_their_own_backoff(clock: FakeClock) -> None:
    class SlowDown(Exception):
        throttling = True

    errors = iter([SlowDown(), ConnectionError()])

    def fn() -> str:
        error = next(errors, None)
        if error is not None:
            raise error
        return "ok"

    retry = Retry(
        on=(SlowDown, ConnectionError),
        clock=clock,
        backoff=Backoff(base=0.05, jitter="none"),
        throttling_backoff=Backoff(base=1.0, jitter="none"),
    )
    assert retry.call(fn) == "ok"
    assert clock.sleeps == [1.0, 0.1]


# -- results ---------------------------------------------------------------------


def test_retry_on_result(clock: FakeClock) -> None:
    results = iter([None, None, 42])
    retry = Retry(on=ConnectionError, retry_on_result=lambda r: r is None, clock=clock)
    assert retry.call(lambda: next(results)) == 42
    assert len(clock.sleeps) == 2


def test_retry_on_result_returns_the_last_result_when_exhausted(clock: FakeClock) -> None:
    results = iter([{"status": 503, "n": 1}, {"status": 503, "n": 2}])
    retry = Retry(
        on=ConnectionError, attempts=2, clock=clock, retry_on_result=lambda r: r["status"] >= 500
    )
    assert retry.call(lambda: next(results)) == {"status": 503, "n": 2}


def test_result_hints_are_honoured(clock: FakeClock) -> None:
    class Response:
        def __init__(self, status: int, retry_after: float | None = None) -> None:
            self.status_code = status
            self.retry_after = retry_after

    responses = iter([Response(429, retry_after=7.0), Response(200)])
    retry = Retry(on=ConnectionError, clock=clock, retry_on_result=lambda r: r.status_code == 429)
    assert retry.call(lambda: next(responses)).status_code == 200
    assert clock.sleeps == [7.0]


# -- async -----------------------------------------------------------------------


def test_acall_and_async_decorator(clock: FakeClock) -> None:
    fn = Flaky(2)
    retry = Retry(on=ConnectionError, clock=clock, backoff=NO_JITTER)

    @retry
    async def decorated(x: int) -> object:
        return await fn.async_call(x)

    assert inspect.iscoroutinefunction(decorated)
    assert asyncio.run(decorated(1)) == "ok"
    assert clock.sleeps == pytest.approx([0.1, 0.2])

    fn2 = Flaky(1)
    assert asyncio.run(retry.acall(fn2.async_call, 1)) == "ok"
    assert fn2.calls == 2


def test_async_gives_up_with_the_callers_exception(clock: FakeClock) -> None:
    fn = Flaky(10)
    with pytest.raises(ConnectionError) as caught:
        asyncio.run(Retry(on=ConnectionError, clock=clock).acall(fn.async_call))
    assert caught.value is fn.raised[-1]
    assert fn.calls == 3


def test_cancellation_is_never_retried_or_swallowed(clock: FakeClock) -> None:
    calls = []

    async def cancelled() -> None:
        calls.append(1)
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(Retry(on=lambda e: True, clock=clock).acall(cancelled))
    assert calls == [1]


def test_cancelling_a_task_during_backoff(clock: FakeClock) -> None:
    gate: asyncio.Event

    class GatedClock(FakeClock):
        async def asleep(self, seconds: float, /) -> None:
            await gate.wait()

    gated = GatedClock()
    fn = Flaky(10)

    async def main() -> None:
        nonlocal gate
        gate = asyncio.Event()
        task = asyncio.create_task(Retry(on=ConnectionError, clock=gated).acall(fn.async_call))
        for _ in range(5):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert fn.calls == 1


# -- the block form --------------------------------------------------------------


def test_block_form(clock: FakeClock) -> None:
    fn = Flaky(2)
    numbers = []
    for attempt in Retry(on=ConnectionError, clock=clock, backoff=NO_JITTER):
        with attempt:
            numbers.append(attempt.number)
            result = fn()
    assert result == "ok"
    assert numbers == [1, 2, 3]
    assert clock.sleeps == pytest.approx([0.1, 0.2])


def test_block_form_gives_up_with_the_callers_exception(clock: FakeClock) -> None:
    fn = Flaky(10)
    with pytest.raises(ConnectionError) as caught:
        for attempt in Retry(on=ConnectionError, clock=clock):
            with attempt:
                fn()
    assert caught.value is fn.raised[-1]
    assert fn.calls == 3


def test_block_form_does_not_retry_unlisted_errors(clock: FakeClock) -> None:
    fn = Flaky(10, error=KeyError)
    with pytest.raises(KeyError):
        for attempt in Retry(on=ConnectionError, clock=clock):
            with attempt:
                fn()
    assert fn.calls == 1


def test_async_block_form(clock: FakeClock) -> None:
    fn = Flaky(2)
    fn_with = Flaky(1)

    async def main() -> tuple[object, object]:
        async for attempt in Retry(on=ConnectionError, clock=clock):
            async with attempt:
                first = await fn.async_call()
        async for attempt in Retry(on=ConnectionError, clock=clock):
            with attempt:
                second = await fn_with.async_call()
        return first, second

    assert asyncio.run(main()) == ("ok", "ok")
    assert (fn.calls, fn_with.calls) == (3, 2)
    assert len(clock.sleeps) == 3


def test_block_form_success_feeds_the_budget(clock: FakeClock) -> None:
    budget = TokenBucketBudget(capacity=100, retry_cost=10)
    fn = Flaky(1)
    for attempt in Retry(on=ConnectionError, clock=clock, budget=budget):
        with attempt:
            fn()
    assert budget.available == 100  # the retry's cost was refunded on success


# -- nesting ---------------------------------------------------------------------


def test_nested_retry_does_not_multiply_attempts(clock: FakeClock) -> None:
    fn = Flaky(100)
    inner = Retry(on=ConnectionError, attempts=3, clock=clock)
    outer = Retry(on=ConnectionError, attempts=3, clock=clock)

    @inner
    def call_dependency() -> object:
        return fn()

    with pytest.raises(ConnectionError):
        outer.call(call_dependency)
    assert fn.calls == 3  # not 9


def test_nested_retry_multiplies_only_when_asked(clock: FakeClock) -> None:
    fn = Flaky(100)
    inner = Retry(on=ConnectionError, attempts=3, clock=clock, retry_when_nested=True)
    outer = Retry(on=ConnectionError, attempts=3, clock=clock)
    with pytest.raises(ConnectionError):
        outer.call(inner.call, fn)
    assert fn.calls == 9


def test_nesting_is_detected_across_await_and_block_forms(clock: FakeClock) -> None:
    fn = Flaky(100)
    inner = Retry(on=ConnectionError, attempts=4, clock=clock)

    async def leaf() -> object:
        return await inner.acall(fn.async_call)

    async def main() -> None:
        async for attempt in Retry(on=ConnectionError, attempts=2, clock=clock):
            async with attempt:
                await leaf()

    with pytest.raises(ConnectionError):
        asyncio.run(main())
    assert fn.calls == 2

    fn2 = Flaky(100)

    def through_block() -> object:
        for attempt in inner:
            with attempt:
                return fn2()
        raise AssertionError("unreachable")

    with pytest.raises(ConnectionError):
        Retry(on=ConnectionError, attempts=2, clock=clock).call(through_block)
    assert fn2.calls == 2


def test_nesting_ends_with_the_outer_call(clock: FakeClock) -> None:
    outer = Retry(on=ConnectionError, clock=clock)
    outer.call(lambda: None)
    fn = Flaky(2)
    assert Retry(on=ConnectionError, clock=clock).call(fn) == "ok"
    assert fn.calls == 3


# -- per-call state and concurrency ---------------------------------------------


def test_per_call_state_lives_in_the_call() -> None:
    clock = FakeClock()
    retry = Retry(on=ConnectionError, attempts=3, clock=clock)
    results: list[object] = []
    errors: list[BaseException] = []

    def worker() -> None:
        local = threading.local()
        local.calls = 0

        def fn() -> str:
            local.calls += 1
            if local.calls <= 2:
                raise ConnectionError
            return "ok"

        try:
            for _ in range(200):
                local.calls = 0
                results.append(retry.call(fn))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results == ["ok"] * 1600


def test_concurrent_tasks_do_not_share_attempt_counts(clock: FakeClock) -> None:
    retry = Retry(on=ConnectionError, attempts=3, clock=clock)

    async def one() -> object:
        return await retry.acall(Flaky(2).async_call)

    async def main() -> list[object]:
        return await asyncio.gather(*(one() for _ in range(500)))

    assert asyncio.run(main()) == ["ok"] * 500


# -- budgets and throttles through Retry ----------------------------------------


def test_budget_stops_retries_and_reraises_the_callers_error(clock: FakeClock) -> None:
    budget = TokenBucketBudget(capacity=10, retry_cost=5)
    recorder = Recorder()
    retry = Retry(on=ConnectionError, attempts=5, clock=clock, budget=budget, listeners=[recorder])
    fn = Flaky(100)
    with pytest.raises(ConnectionError) as caught:
        retry.call(fn)
    assert caught.value is fn.raised[-1]
    assert fn.calls == 3  # two retries fit in the budget
    assert budget.available == 0
    assert [e.reason for e in recorder.of(RetryGaveUp)] == ["budget"]
    fn = Flaky(100)
    with pytest.raises(ConnectionError):
        retry.call(fn)
    assert fn.calls == 1


def test_timeouts_cost_more_than_other_errors(clock: FakeClock) -> None:
    budget = TokenBucketBudget(capacity=100, retry_cost=5, timeout_cost=10)
    retry = Retry(on=(TimeoutError, ConnectionError), attempts=2, clock=clock, budget=budget)
    with pytest.raises(TimeoutError):
        retry.call(Flaky(5, error=TimeoutError))
    assert budget.available == 90
    with pytest.raises(ConnectionError):
        retry.call(Flaky(5, error=ConnectionError))
    assert budget.available == 85


def test_custom_classifier_chooses_the_cost(clock: FakeClock) -> None:
    budget = TokenBucketBudget(capacity=100, retry_cost=5, throttling_cost=1)
    retry = Retry(
        on=ConnectionError,
        attempts=2,
        clock=clock,
        budget=budget,
        classify=lambda error: "throttling",
    )
    with pytest.raises(ConnectionError):
        retry.call(Flaky(5))
    assert budget.available == 99


def test_several_budgets_must_all_grant(clock: FakeClock) -> None:
    roomy = TokenBucketBudget(capacity=100, retry_cost=1)
    tight = TokenBucketBudget(capacity=1, retry_cost=1)
    retry = Retry(on=ConnectionError, attempts=5, clock=clock, budget=[roomy, tight])
    fn = Flaky(100)
    with pytest.raises(ConnectionError):
        retry.call(fn)
    assert fn.calls == 2
    assert (roomy.available, tight.available) == (99, 0)  # the refused grant was undone
    assert retry.budget is not None
    assert retry.budget.name == "token-bucket+token-bucket"


def test_throttled_first_attempt_raises_a_fresh_rejection(clock: FakeClock) -> None:
    from stormproof import AdaptiveThrottle

    throttle = AdaptiveThrottle(
        minimum_requests=1, clock=clock, random=lambda: 0.0, name="dynamodb"
    )
    retry = Retry(on=ConnectionError, attempts=1, clock=clock, budget=throttle)
    with pytest.raises(ConnectionError):
        retry.call(Flaky(1))
    rejections = []
    for _ in range(2):
        with pytest.raises(Throttled) as caught:
            retry.call(Flaky(0))
        rejections.append(caught.value)
    assert rejections[0] is not rejections[1]
    assert rejections[0].policy == "dynamodb"


# -- events ----------------------------------------------------------------------


def test_events_describe_each_decision(clock: FakeClock) -> None:
    recorder = Recorder()
    retry = Retry(
        on=ConnectionError,
        attempts=3,
        clock=clock,
        backoff=NO_JITTER,
        name="db",
        listeners=[recorder],
    )
    fn = Flaky(5)
    with pytest.raises(ConnectionError):
        retry.call(fn)
    scheduled = recorder.of(RetryScheduled)
    assert [(e.policy, e.attempt, e.delay, e.error_class) for e in scheduled] == [
        ("db", 1, pytest.approx(0.1), "transient"),
        ("db", 2, pytest.approx(0.2), "transient"),
    ]
    assert scheduled[0].error is fn.raised[0]
    (gave_up,) = recorder.of(RetryGaveUp)
    assert (gave_up.attempts, gave_up.reason, gave_up.error) == (3, "attempts", fn.raised[-1])


# -- the decorator ---------------------------------------------------------------


def test_decorator_keeps_the_signature_and_metadata(clock: FakeClock) -> None:
    retry = Retry(on=ConnectionError, clock=clock)

    def original(a: int, b: str = "x", *, c: float) -> str:
        """Docstring."""
        return f"{a}{b}{c}"

    decorated = retry(original)
    assert decorated.__name__ == "original"
    assert decorated.__doc__ == "Docstring."
    assert inspect.signature(decorated) == inspect.signature(original)
    assert decorated(1, c=2.0) == "1x2.0"


def test_decorated_methods_bind_self(clock: FakeClock) -> None:
    class Client:
        def __init__(self) -> None:
            self.fn = Flaky(1)

        @Retry(on=ConnectionError, clock=clock)
        def get(self, key: str) -> str:
            return f"{self.fn()}:{key}"

    assert Client().get("k") == "ok:k"


def test_objects_with_an_async_call_are_decorated_as_async(clock: FakeClock) -> None:
    class Handler:
        def __init__(self) -> None:
            self.fn = Flaky(2)

        async def __call__(self) -> object:
            return await self.fn.async_call()

    handler = Handler()
    retrying = Retry(on=ConnectionError, clock=clock)(handler)
    assert asyncio.run(retrying()) == "ok"  # type: ignore[arg-type]
    assert handler.fn.calls == 3


def test_generators_are_rejected() -> None:
    def gen() -> Any:
        yield 1

    async def agen() -> Any:
        yield 1

    retry = Retry(on=ConnectionError)
    with pytest.raises(ConfigError, match="not a generator"):
        retry(gen)
    with pytest.raises(ConfigError, match="not a generator"):
        retry(agen)
    with pytest.raises(ConfigError, match="fn must be a callable"):
        retry(42)  # type: ignore[call-overload]


def test_repr_and_introspection() -> None:
    budget = TokenBucketBudget()
    retry = Retry(
        on=(ConnectionError, TimeoutError), attempts=4, deadline=2.5, budget=budget, name="db"
    )
    assert (retry.name, retry.attempts, retry.deadline, retry.budget) == ("db", 4, 2.5, budget)
    assert retry.backoff == Backoff()
    assert repr(retry).startswith("Retry(on=(ConnectionError, TimeoutError), attempts=4, ")


# -- validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"on": BaseException}, "on must be an exception type (a subclass of Exception)"),
        ({"on": asyncio.CancelledError}, "on must be an exception type"),
        ({"on": KeyboardInterrupt}, "on must be an exception type"),
        ({"on": ()}, "on must be"),
        ({"on": [ConnectionError]}, "on must be"),
        ({"on": 42}, "on must be"),
        ({"on": (ConnectionError, "x")}, "on must be"),
        ({"attempts": 0}, "attempts must be an integer >= 1, got 0"),
        ({"attempts": -1}, "attempts must be an integer >= 1, got -1"),
        ({"attempts": 2.5}, "attempts must be an integer >= 1, got 2.5"),
        ({"attempts": True}, "attempts must be an integer >= 1, got True"),
        ({"deadline": 0}, "deadline must be > 0, got 0"),
        ({"deadline": -1.0}, "deadline must be > 0, got -1.0"),
        ({"deadline": math.inf}, "deadline must be a finite number > 0, got inf"),
        ({"deadline": "1s"}, "deadline must be a finite number > 0, got '1s'"),
        ({"backoff": 0.5}, "backoff must be a Backoff, got 0.5"),
        ({"throttling_backoff": 1}, "throttling_backoff must be a Backoff or None, got 1"),
        ({"budget": 500}, "budget must be a retry budget, a sequence of them, or None, got 500"),
        ({"budget": []}, "budget must be a retry budget"),
        (
            {"retry_on_result": True},
            "retry_on_result must be a predicate taking one argument (the result), got True",
        ),
        (
            {"classify": "transient"},
            "classify must be a function of one argument (the error or result), got 'transient'",
        ),
        ({"clock": object}, "clock must be a clock (an instance, not the class itself)"),
        ({"name": ""}, "name must be a non-empty string, got ''"),
        ({"name": 3}, "name must be a non-empty string, got 3"),
        ({"max_retry_after": -1}, "max_retry_after must be >= 0, got -1"),
        ({"retry_when_nested": "yes"}, "retry_when_nested must be True or False, got 'yes'"),
    ],
)
def test_bad_options(kwargs: dict[str, Any], message: str) -> None:
    options: dict[str, Any] = {"on": ConnectionError, **kwargs}
    with pytest.raises(ConfigError) as caught:
        Retry(**options)
    assert str(caught.value).startswith(message)
    assert isinstance(caught.value, ValueError)


def test_retry_rejected_retries_rejections_that_on_does_not_match() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("db", window=2, minimum_calls=2, open_for=5.0, clock=clock)
    calls = []

    def flaky() -> str:
        calls.append(clock.now())
        if len(calls) <= 2:
            raise ConnectionError("down")
        return "ok"

    retry = Retry(
        on=ConnectionError,
        attempts=4,
        retry_rejected=True,
        backoff=Backoff(base=0.1, jitter="none"),
        clock=clock,
    )
    # Attempts 1 and 2 fail and open the breaker at 0.1; attempt 3 (at 0.3) is rejected
    # (CircuitOpen is not a ConnectionError) and retried after its retry_after of 4.8 s;
    # attempt 4 is the half-open probe.
    assert Pipeline(retry, breaker).call(flaky) == "ok"
    assert calls == [0.0, 0.1, 5.1]
    assert clock.sleeps == pytest.approx([0.1, 0.2, 4.8])


def test_a_retried_rejection_costs_a_retry_but_is_no_failure_of_the_dependency() -> None:
    throttle = RetryThrottle(max_tokens=10, token_ratio=0.1)
    retry = Retry(
        on=ConnectionError, attempts=3, retry_rejected=True, budget=throttle, clock=FakeClock()
    )
    rejections = iter([BulkheadFull("pool"), BulkheadFull("pool")])

    def busy() -> str:
        error = next(rejections, None)
        if error is not None:
            raise error
        return "ok"

    assert retry.call(busy) == "ok"
    assert throttle.available == 10  # a failure would have taken a token each
