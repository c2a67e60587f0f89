from __future__ import annotations

import asyncio

import pytest

from stormproof import Backoff, ConfigError, DeadlineExceeded, Retry, deadline, remaining
from stormproof.events import Recorder, RetryGaveUp
from stormproof.testing import FakeClock


def test_remaining_inside_and_outside(clock: FakeClock) -> None:
    assert remaining() is None
    with deadline(5, clock=clock) as active:
        assert remaining() == 5
        clock.advance(2)
        assert remaining() == 3
        assert active.expires_at == 5
        clock.advance(10)
        assert remaining() == 0.0
    assert remaining() is None


def test_nested_deadlines_only_shrink(clock: FakeClock) -> None:
    with deadline(10, clock=clock):
        with deadline(3, clock=clock):
            assert remaining() == 3
        with deadline(30, clock=clock):
            assert remaining() == 10
        assert remaining() == 10


def test_nested_deadlines_on_different_clocks(clock: FakeClock) -> None:
    other = FakeClock(start=1000.0)
    with deadline(4, clock=clock), deadline(60, clock=other):
        assert remaining() == 4


def test_deadline_propagates_through_nested_calls_and_tasks(clock: FakeClock) -> None:
    seen: list[float | None] = []

    def leaf() -> None:
        seen.append(remaining())

    def middle() -> None:
        clock.advance(1)
        leaf()

    async def aleaf() -> None:
        seen.append(remaining())

    async def amain() -> None:
        with deadline(8, clock=clock):
            await asyncio.gather(aleaf(), asyncio.create_task(aleaf()))

    with deadline(2, clock=clock):
        middle()
    asyncio.run(amain())
    assert seen == [1.0, 8.0, 8.0]


def test_retry_starts_no_sleep_that_cannot_finish_in_time(clock: FakeClock) -> None:
    recorder = Recorder()
    retry = Retry(
        on=ConnectionError,
        attempts=10,
        clock=clock,
        listeners=[recorder],
        backoff=Backoff(base=1, jitter="none"),
    )
    calls = []

    def down() -> None:
        calls.append(clock.now())
        raise ConnectionError

    with deadline(4, clock=clock), pytest.raises(ConnectionError):
        retry.call(down)
    # t=0 fail, sleep 1; t=1 fail, sleep 2; t=3 fail: a 4 s sleep would end past 4 s.
    assert calls == [0, 1, 3]
    assert recorder.of(RetryGaveUp)[0].reason == "deadline"


def test_retry_makes_no_attempt_once_the_deadline_has_passed(clock: FakeClock) -> None:
    calls = []
    retry = Retry(on=ConnectionError, clock=clock)
    with deadline(1, clock=clock):
        clock.advance(1)
        with pytest.raises(DeadlineExceeded):
            retry.call(calls.append, 1)
        with pytest.raises(DeadlineExceeded):
            for attempt in retry:
                with attempt:
                    calls.append(2)
    assert calls == []


def test_bad_seconds() -> None:
    with pytest.raises(ConfigError, match="seconds must be >= 0, got -1"):
        deadline(-1)
    with pytest.raises(ConfigError, match="seconds must be a finite number"):
        deadline(float("inf"))
