from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from stormproof import (
    Backoff,
    Bulkhead,
    CircuitBreaker,
    CircuitOpen,
    ConfigError,
    DeadlineExceeded,
    Fallback,
    Hedge,
    Pipeline,
    Retry,
    Timeout,
    remaining,
)
from stormproof.policy import Policy
from stormproof.testing import FakeClock

R = TypeVar("R")


class Down(Exception):
    pass


def test_outermost_first_and_rejections_are_not_retried(clock: FakeClock) -> None:
    calls = []

    def down() -> None:
        calls.append(1)
        raise Down

    breaker = CircuitBreaker("db", window=2, minimum_calls=2, clock=clock)
    pipeline = Pipeline(
        Fallback("served from fallback"),
        Retry(on=Exception, attempts=5, clock=clock),
        breaker,
    )
    # Two failures trip the breaker; the third attempt is rejected, which Retry does
    # not retry; Fallback answers.
    assert pipeline.call(down) == "served from fallback"
    assert len(calls) == 2
    assert breaker.state == "open"


def test_rejections_are_retried_only_when_asked(clock: FakeClock) -> None:
    breaker = CircuitBreaker("db", window=1, minimum_calls=1, open_for=1, clock=clock)
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise Down
        return "ok"

    retry = Retry(
        on=(Down, CircuitOpen),
        attempts=3,
        clock=clock,
        retry_rejected=True,
        backoff=Backoff(base=0.01, jitter="none"),
    )
    # attempt 1 fails and trips; attempt 2 is rejected (retry_after 1 s is honoured);
    # attempt 3 is the half-open probe and succeeds.
    assert Pipeline(retry, breaker).call(flaky) == "ok"
    assert len(calls) == 2
    assert clock.sleeps == pytest.approx([0.01, 0.99])


def test_decorator_call_and_acall(clock: FakeClock) -> None:
    pipeline = Pipeline(Retry(on=Down, clock=clock), Bulkhead(2))
    attempts = []

    def double(x: int) -> int:
        attempts.append(x)
        if len(attempts) % 2:
            raise Down
        return x * 2

    async def adouble(x: int) -> int:
        return double(x)

    decorated = pipeline(double)
    adecorated = pipeline(adouble)
    assert decorated(2) == 4
    assert inspect.signature(decorated) == inspect.signature(double)
    assert inspect.iscoroutinefunction(adecorated)
    assert pipeline.call(double, 3) == 6
    assert asyncio.run(adecorated(4)) == 8
    assert asyncio.run(pipeline.acall(adouble, 5)) == 10
    assert attempts == [2, 2, 3, 3, 4, 4, 5, 5]


def test_describe(clock: FakeClock) -> None:
    pipeline = Pipeline(
        Fallback(None),
        Timeout(2.0),
        Retry(on=Down, name="db-retry"),
        CircuitBreaker("db"),
        Bulkhead(10),
        name="checkout",
    )
    text = pipeline.describe()
    assert text.splitlines()[0] == "Pipeline 'checkout' (outermost first):"
    assert text.splitlines()[1].startswith("  1. Fallback(value=None")
    assert "  3. Retry(on=Down, attempts=3" in text
    assert "  4. CircuitBreaker('db'" in text
    assert text.splitlines()[-1].startswith("  5. Bulkhead(max_concurrent=10")


def test_a_retry_inside_a_retry_is_refused() -> None:
    with pytest.raises(ConfigError, match="Retry 'inner' at position 3 is inside Retry 'outer'"):
        Pipeline(Retry(on=Down, name="outer"), CircuitBreaker("db"), Retry(on=Down, name="inner"))
    Pipeline(Retry(on=Down), Retry(on=Down, retry_when_nested=True))  # opted in


def test_nested_pipelines_are_flattened_and_checked() -> None:
    inner = Pipeline(Retry(on=Down), Bulkhead(1))
    assert len(Pipeline(Fallback(0), inner).policies) == 3
    with pytest.raises(ConfigError, match="at most one Retry"):
        Pipeline(Retry(on=Down), inner)


def test_bad_compositions() -> None:
    with pytest.raises(ConfigError, match="policies must be at least one policy"):
        Pipeline()
    with pytest.raises(ConfigError, match="policies must be policies"):
        Pipeline(Retry(on=Down), print)  # type: ignore[arg-type]


def test_hedge_needs_async(clock: FakeClock) -> None:
    pipeline = Pipeline(Fallback("f"), Hedge(0.01, clock=clock))
    with pytest.raises(ConfigError, match="Hedge works on async calls"):
        pipeline(lambda: None)

    async def answer() -> str:
        return "a"

    assert asyncio.run(pipeline.acall(answer)) == "a"


def test_total_and_per_attempt_timeouts(clock: FakeClock) -> None:
    seen: list[float | None] = []

    def attempt() -> None:
        seen.append(remaining())
        clock.advance(1)
        raise Down

    pipeline = Pipeline(
        Timeout(5, clock=clock),
        Retry(on=Down, attempts=10, clock=clock, backoff=Backoff(base=0.5, jitter="none")),
        Timeout(2, clock=clock),
    )
    with pytest.raises(Down):
        pipeline.call(attempt)
    # Per attempt: 2 s, or less when the total deadline is nearer; no retry past 5 s.
    assert seen == [2, 2, 1.5]


def test_async_timeout_per_attempt_lets_retry_continue(clock: FakeClock) -> None:
    attempts = 0

    async def sometimes_hangs() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            await asyncio.Event().wait()
        return "ok"

    pipeline = Pipeline(Retry(on=DeadlineExceeded, clock=clock), Timeout(1, clock=clock))
    assert asyncio.run(pipeline.acall(sometimes_hangs)) == "ok"
    assert attempts == 2


def test_custom_policies_compose() -> None:
    log: list[str] = []

    class Tag(Policy):
        __slots__ = ("tag",)

        def __init__(self, tag: str) -> None:
            self.tag = tag

        def _run(self, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
            log.append(f"enter {self.tag}")
            try:
                return fn(*args, **kwargs)
            finally:
                log.append(f"exit {self.tag}")

        async def _arun(
            self, fn: Callable[..., Awaitable[R]], args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> R:
            log.append(f"enter {self.tag}")
            try:
                return await fn(*args, **kwargs)
            finally:
                log.append(f"exit {self.tag}")

    assert Pipeline(Tag("a"), Tag("b")).call(lambda: log.append("call") or "done") == "done"
    assert log == ["enter a", "enter b", "call", "exit b", "exit a"]


@pytest.mark.parametrize("deadline_s", [None, 3.0, 10.0])
def test_a_pipeline_on_a_fake_clock_sees_the_same_time_sync_and_async(
    deadline_s: float | None,
) -> None:
    def run(asynchronous: bool) -> tuple[int, float]:
        clock = FakeClock()
        attempts = 0

        def fail() -> None:
            nonlocal attempts
            attempts += 1
            raise ConnectionError("down")

        async def afail() -> None:
            fail()

        pipeline = Pipeline(
            Retry(
                on=ConnectionError,
                attempts=5,
                deadline=deadline_s,
                backoff=Backoff(base=0.5, jitter="none"),
                clock=clock,
            ),
            Timeout(2, clock=clock),
        )
        with pytest.raises(ConnectionError):
            if asynchronous:
                asyncio.run(pipeline.acall(afail))
            else:
                pipeline.call(fail)
        return attempts, clock.now()

    assert run(asynchronous=True) == run(asynchronous=False)
