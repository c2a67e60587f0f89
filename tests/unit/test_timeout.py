from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

from stormproof import ConfigError, DeadlineExceeded, Timeout, deadline, remaining
from stormproof.events import Recorder, TimeoutExpired, TimeoutOverran
from stormproof.testing import FakeClock


async def hang() -> None:
    await asyncio.Event().wait()


def test_async_timeout_cancels_the_work_on_the_fake_clock(clock: FakeClock) -> None:
    cancelled = []
    recorder = Recorder()

    async def slow() -> None:
        try:
            await hang()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    timeout = Timeout(2.0, clock=clock, name="db", listeners=[recorder])
    with pytest.raises(DeadlineExceeded, match="db: timed out after 2s"):
        asyncio.run(timeout.acall(slow))
    assert cancelled == [True]
    assert clock.now() == 2.0
    assert recorder.of(TimeoutExpired)[0].seconds == 2.0


def test_async_timeout_returns_fast_results(clock: FakeClock) -> None:
    async def fast() -> str:
        await asyncio.sleep(0)
        return "ok"

    assert asyncio.run(Timeout(5, clock=clock).acall(fast)) == "ok"


def test_async_timeout_on_the_real_clock() -> None:
    """A real loop timer; the limit is tiny and nothing sleeps: the work never ends."""
    cancelled = []

    async def slow() -> None:
        try:
            await hang()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def main() -> None:
        with pytest.raises(DeadlineExceeded):
            await Timeout(0.001).acall(slow)
        # The task is usable afterwards: the timeout's cancellation was absorbed.
        assert await Timeout(5).acall(asyncio.sleep, 0, "after") == "after"

    asyncio.run(main())
    assert cancelled == [True]


def test_outer_cancellation_is_not_turned_into_a_timeout() -> None:
    async def main() -> None:
        task = asyncio.create_task(Timeout(30).acall(hang))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_errors_from_the_work_pass_through(clock: FakeClock) -> None:
    async def boom() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        asyncio.run(Timeout(1, clock=clock).acall(boom))


def test_timeout_sets_the_deadline_inside(clock: FakeClock) -> None:
    seen: list[Any] = []
    Timeout(3, clock=clock).call(lambda: seen.append(remaining()))

    async def inner() -> None:
        seen.append(remaining())

    asyncio.run(Timeout(4, clock=clock).acall(inner))
    assert seen == [3, 4]


def test_an_outer_deadline_wins_when_nearer(clock: FakeClock) -> None:
    seen: list[Any] = []
    with deadline(1, clock=clock):
        Timeout(3, clock=clock).call(lambda: seen.append(remaining()))
        clock.advance(1)
        with pytest.raises(DeadlineExceeded):
            Timeout(3, clock=clock).call(lambda: seen.append("never"))
    assert seen == [1]


def test_sync_timeout_is_cooperative_and_reports_overruns(clock: FakeClock) -> None:
    recorder = Recorder()

    def ignores_the_deadline() -> str:
        clock.advance(5)
        return "late"

    assert Timeout(2, clock=clock, listeners=[recorder]).call(ignores_the_deadline) == "late"
    (overran,) = recorder.of(TimeoutOverran)
    assert (overran.seconds, overran.elapsed) == (2, 5)


def test_bad_seconds() -> None:
    with pytest.raises(ConfigError, match="seconds must be > 0, got 0"):
        Timeout(0)


def timers_by_hand(loop: asyncio.AbstractEventLoop) -> list[Any]:
    """Timers the loop is asked for from now on never fire by themselves; their
    callbacks are collected, to be fired by the test exactly when it chooses."""
    timers: list[Any] = []
    real_call_at = loop.call_at

    def call_at(when: float, callback: Any, *args: Any, **kwargs: Any) -> Any:
        timers.append(callback)
        return real_call_at(when + 3600, callback, *args, **kwargs)

    loop.call_at = call_at  # type: ignore[method-assign]
    return timers


async def never() -> None:
    await asyncio.Event().wait()


@pytest.mark.skipif(sys.version_info < (3, 11), reason="3.10 does not count cancellations")
def test_a_cancellation_in_the_same_loop_turn_as_the_timer_stays_a_cancellation() -> None:
    seen: list[str] = []

    async def caller() -> None:
        try:
            await Timeout(5).acall(never)
        except DeadlineExceeded:
            seen.append("timed out")
            raise

    async def main() -> None:
        loop = asyncio.get_running_loop()
        timers = timers_by_hand(loop)
        task = asyncio.ensure_future(caller())
        await asyncio.sleep(0)
        (expire,) = timers

        def both() -> None:  # the timer and the caller's cancel, in one turn of the loop
            expire()
            task.cancel()

        loop.call_soon(both)
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()

    asyncio.run(main())
    assert seen == []


@pytest.mark.skipif(sys.version_info < (3, 11), reason="3.10 does not count cancellations")
def test_a_timeout_alone_leaves_no_cancellation_pending() -> None:
    async def runner() -> int:
        with pytest.raises(DeadlineExceeded):
            await Timeout(5).acall(never)
        task = asyncio.current_task()
        assert task is not None
        return task.cancelling()

    async def main() -> int:
        timers = timers_by_hand(asyncio.get_running_loop())
        task = asyncio.ensure_future(runner())
        await asyncio.sleep(0)
        (expire,) = timers
        expire()
        return await task

    assert asyncio.run(main()) == 0


def test_three_instant_async_timeouts_on_a_fake_clock_move_no_time() -> None:
    clock = FakeClock()

    async def fast() -> int:
        return 1

    async def main() -> None:
        for _ in range(3):
            assert await Timeout(2, clock=clock).acall(fast) == 1

    asyncio.run(main())
    for _ in range(3):
        assert Timeout(2, clock=clock).call(lambda: 1) == 1
    assert clock.now() == 0.0  # the same as sync calls
