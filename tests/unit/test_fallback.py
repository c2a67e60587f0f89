from __future__ import annotations

import asyncio

import pytest

from stormproof import CircuitBreaker, CircuitOpen, ConfigError, Fallback
from stormproof.events import FallbackUsed, Recorder
from stormproof.testing import FakeClock


def down() -> str:
    raise ConnectionError("down")


def test_value_on_any_exception() -> None:
    assert Fallback("cached").call(down) == "cached"
    assert Fallback("cached").call(lambda: "fresh") == "fresh"


def test_handler_gets_the_exception() -> None:
    fallback = Fallback(handler=lambda error: f"fallback for {type(error).__name__}")
    assert fallback.call(down) == "fallback for ConnectionError"


def test_only_chosen_exceptions() -> None:
    fallback = Fallback(None, on=CircuitOpen)
    with pytest.raises(ConnectionError):
        fallback.call(down)
    breaker = CircuitBreaker("db", window=1, minimum_calls=1, clock=FakeClock())
    with pytest.raises(ConnectionError):
        breaker.call(down)
    assert fallback.call(breaker.call, down) is None


def test_async_with_sync_or_async_handler() -> None:
    async def adown() -> str:
        raise ConnectionError

    async def ahandler(error: Exception) -> str:
        return "async substitute"

    async def main() -> tuple[str, str]:
        first = await Fallback(handler=lambda e: "sync substitute").acall(adown)
        second = await Fallback(handler=ahandler).acall(adown)
        return first, second

    assert asyncio.run(main()) == ("sync substitute", "async substitute")


def test_cancellation_is_never_caught() -> None:
    async def cancelled() -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(Fallback("x", on=lambda e: True).acall(cancelled))


def test_event() -> None:
    recorder = Recorder()
    Fallback(0, listeners=[recorder], name="prices").call(down)
    (event,) = recorder.of(FallbackUsed)
    assert event.policy == "prices"
    assert isinstance(event.error, ConnectionError)


def test_exactly_one_of_value_and_handler() -> None:
    with pytest.raises(ConfigError, match="value/handler must be exactly one of the two"):
        Fallback()
    with pytest.raises(ConfigError, match="value/handler"):
        Fallback(1, handler=lambda e: 2)
    with pytest.raises(ConfigError, match="handler must be a callable taking one argument"):
        Fallback(handler=3)  # type: ignore[arg-type]
