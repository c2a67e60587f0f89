"""A sync policy form handed an async function, or the async form handed a sync one,
is a TypeError that says what to use instead: never a coroutine returned unawaited,
a cached coroutine, a fallback value or an opened breaker."""

from __future__ import annotations

import asyncio
import functools
import warnings
from collections.abc import Callable
from typing import Any

import pytest

from stormproof import (
    Bulkhead,
    Cache,
    Chaos,
    CircuitBreaker,
    Fallback,
    Pipeline,
    Retry,
    Timeout,
)
from stormproof._policy import Policy
from stormproof.testing import FakeClock

SYNC_CAPABLE: dict[str, Callable[[], Policy]] = {
    "Retry": lambda: Retry(on=Exception, clock=FakeClock()),
    "CircuitBreaker": lambda: CircuitBreaker("db", window=5, minimum_calls=5),
    "Bulkhead": lambda: Bulkhead(1),
    "Timeout": lambda: Timeout(2, clock=FakeClock()),
    "Fallback": lambda: Fallback("fallback"),
    "Cache": lambda: Cache(60, clock=FakeClock()),
    "Chaos": lambda: Chaos.fault(rate=0.0),
    "Pipeline": lambda: Pipeline(Fallback("fallback"), Retry(on=Exception), Bulkhead(1)),
}


async def fetch(key: str = "k") -> str:
    return f"value of {key}"


def fetch_sync(key: str = "k") -> str:
    return f"value of {key}"


class AsyncCallable:
    async def __call__(self, key: str = "k") -> str:
        return f"value of {key}"


ASYNC_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "async def": fetch,
    "partial of async def": functools.partial(fetch, "k"),
    "object with async __call__": AsyncCallable(),
}


@pytest.mark.parametrize("kind", ASYNC_FUNCTIONS)
@pytest.mark.parametrize("policy", SYNC_CAPABLE)
def test_call_of_an_async_function_is_a_type_error_that_points_to_acall(
    policy: str, kind: str
) -> None:
    made = SYNC_CAPABLE[policy]()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # its coroutine is closed: no "never awaited"
        with pytest.raises(TypeError, match=r"async function.*acall"):
            made.call(ASYNC_FUNCTIONS[kind])


@pytest.mark.parametrize("policy", SYNC_CAPABLE)
def test_a_sync_call_whose_function_returns_a_coroutine_is_a_type_error(policy: str) -> None:
    made = SYNC_CAPABLE[policy]()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "coroutine was never awaited" either
        with pytest.raises(TypeError, match=r"returned a coroutine.*acall"):
            made.call(lambda: fetch())  # noqa: PLW0108  (a sync function making a coroutine)
        with pytest.raises(TypeError, match=r"returned a coroutine.*acall"):
            made(lambda: fetch())()  # noqa: PLW0108


@pytest.mark.parametrize("policy", SYNC_CAPABLE)
def test_acall_refuses_a_function_that_returns_no_awaitable(policy: str) -> None:
    made = SYNC_CAPABLE[policy]()
    with pytest.raises(TypeError, match=r"not an awaitable.*\.call"):
        asyncio.run(made.acall(fetch_sync))


@pytest.mark.parametrize("policy", SYNC_CAPABLE)
def test_acall_takes_any_callable_that_returns_an_awaitable(policy: str) -> None:
    made = SYNC_CAPABLE[policy]()
    assert asyncio.run(made.acall(lambda: fetch("x"))) == "value of x"


def test_cache_never_stores_a_coroutine() -> None:
    cache = Cache(60, clock=FakeClock())
    for _ in range(2):  # the second call is no fresh hit either: nothing was stored
        with pytest.raises(TypeError, match="acall"):
            cache.call(fetch, "k")
    assert len(cache.store) == 0  # type: ignore[arg-type]


def test_fallback_acall_of_a_sync_function_does_not_answer_with_the_fallback() -> None:
    with pytest.raises(TypeError):
        asyncio.run(Fallback("fallback").acall(fetch_sync))


def test_breaker_acall_of_a_sync_function_records_no_failure() -> None:
    breaker = CircuitBreaker("db", window=5, minimum_calls=5)

    async def main() -> None:
        for _ in range(5):
            with pytest.raises(TypeError):
                await breaker.acall(fetch_sync)

    asyncio.run(main())
    assert breaker.state == "closed"
    assert breaker.metrics().calls == 0


def test_bulkhead_acall_of_a_sync_function_gives_its_permit_back() -> None:
    bulkhead = Bulkhead(1)
    with pytest.raises(TypeError):
        asyncio.run(bulkhead.acall(fetch_sync))
    assert bulkhead.active == 0


def test_retry_acall_of_a_sync_function_makes_one_attempt() -> None:
    calls = []

    def counted() -> str:
        calls.append(1)
        return "x"

    with pytest.raises(TypeError):
        asyncio.run(Retry(on=Exception, clock=FakeClock()).acall(counted))
    assert calls == [1]


def test_cache_keys_a_sync_function_handed_to_acall_by_that_function() -> None:
    cache = Cache(60, clock=FakeClock())
    calls = []

    def lookup(key: str) -> Any:
        calls.append(key)
        return fetch(key)

    async def main() -> list[str]:
        return [await cache.acall(lookup, "a"), await cache.acall(lookup, "a")]

    assert asyncio.run(main()) == ["value of a", "value of a"]
    assert calls == ["a"]
    assert cache.key_for(lookup, ("a",), {}) == (lookup, ("a",))


def test_decorating_picks_the_form_from_the_function() -> None:
    retry = Retry(on=Exception, clock=FakeClock())
    assert asyncio.run(retry(fetch)("d")) == "value of d"
    assert retry(fetch_sync)("d") == "value of d"
