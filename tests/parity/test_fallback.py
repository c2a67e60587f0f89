"""Fallback behaves the same through every driver: ``call``, ``acall``, the
decorators and the simulator's ``falling_back``."""

from __future__ import annotations

from typing import Any

import pytest

from stormproof import CircuitOpen, DeadlineExceeded, Fallback
from stormproof.events import FallbackUsed, Recorder

from .drivers import FALLBACK, Driver, driving, fail, interrupt, ok

drive = driving(FALLBACK)
async_drive = driving(tuple(kind for kind in FALLBACK if kind.kind == "async"))


def test_a_success_passes_through(drive: Driver) -> None:
    seen: list[Exception] = []
    fallback = Fallback(handler=seen.append)
    assert drive.call(fallback, drive.script(ok("value")), "k") == "value"
    assert seen == []


def test_a_matching_error_gets_the_value(drive: Driver) -> None:
    fallback = Fallback("default", on=ConnectionError)
    assert drive.call(fallback, drive.script(fail(ConnectionError()))) == "default"


def test_the_handler_gets_the_error_itself(drive: Driver) -> None:
    seen: list[Exception] = []

    def handler(error: Exception) -> str:
        seen.append(error)
        return "substitute"

    error = ConnectionError("reset")
    assert drive.call(Fallback(handler=handler), drive.script(fail(error))) == "substitute"
    assert seen == [error]
    assert seen[0] is error


def test_an_error_on_does_not_match_propagates_unchanged(drive: Driver) -> None:
    error = KeyError("k")
    with pytest.raises(KeyError) as raised:
        drive.call(Fallback("default", on=ConnectionError), drive.script(fail(error)))
    assert raised.value is error


def test_rejections_and_deadlines_are_covered_by_default(drive: Driver) -> None:
    fallback = Fallback("default")
    assert drive.call(fallback, drive.script(fail(CircuitOpen("breaker", 1.0)))) == "default"
    assert drive.call(fallback, drive.script(fail(DeadlineExceeded("late")))) == "default"


def test_an_interruption_is_never_caught(drive: Driver) -> None:
    seen: list[Exception] = []
    with pytest.raises(drive.interrupted):
        drive.call(Fallback(handler=seen.append), drive.script(interrupt()))
    assert seen == []


def test_an_event_names_the_error(drive: Driver) -> None:
    recorder = Recorder()
    error = ConnectionError()
    fallback = Fallback("default", name="prices", clock=drive.clock, listeners=[recorder])
    drive.call(fallback, drive.script(fail(error, after=2.0)))
    (used,) = recorder.of(FallbackUsed)
    assert (used.policy, used.time, used.error) == ("prices", 2.0, error)


def test_async_a_handler_may_return_an_awaitable(async_drive: Driver) -> None:
    async def handler(error: Exception) -> Any:
        return f"async substitute for {type(error).__name__}"

    fallback = Fallback(handler=handler)
    result = async_drive.call(fallback, async_drive.script(fail(ConnectionError())))
    assert result == "async substitute for ConnectionError"
