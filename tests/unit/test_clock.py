from __future__ import annotations

import asyncio
import threading
import time

import pytest

from stormproof import ConfigError
from stormproof.clock import MONOTONIC, Clock, MonotonicClock
from stormproof.testing import FakeClock


def test_fake_clock_sleeps_advance_time_instantly() -> None:
    clock = FakeClock(start=100.0)
    assert clock.now() == 100.0
    clock.sleep(2.5)
    clock.sleep(0.5)
    assert clock.now() == 103.0
    assert clock.sleeps == [2.5, 0.5]
    assert clock.slept == 3.0
    clock.advance(7)
    assert clock.now() == 110.0
    assert clock.sleeps == [2.5, 0.5]


def test_fake_clock_async_sleep_lets_other_tasks_run_first() -> None:
    clock = FakeClock()
    order: list[str] = []

    async def sleeper() -> None:
        order.append("sleep")
        await clock.asleep(10)
        order.append("woke")

    async def other() -> None:
        order.append("other")

    async def main() -> None:
        await asyncio.gather(sleeper(), other())

    asyncio.run(main())
    assert clock.now() == 10.0
    assert order == ["sleep", "other", "woke"]


def test_fake_clock_async_sleeps_are_virtual_time() -> None:
    clock = FakeClock()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.asleep(seconds)
        woke.append((name, clock.now()))

    async def main() -> None:
        await asyncio.gather(sleeper("c", 3), sleeper("a", 1), sleeper("b", 2), sleeper("a2", 1))

    asyncio.run(main())
    # Side by side, as on a real clock: in order of wake-up, and the time is the
    # latest wake-up, not the sum of the sleeps.
    assert woke == [("a", 1.0), ("a2", 1.0), ("b", 2.0), ("c", 3.0)]
    assert clock.now() == 3.0
    assert clock.sleeps == [3, 1, 2, 1]


def test_work_that_answers_at_once_moves_no_time_in_a_race_with_a_timer() -> None:
    clock = FakeClock()

    async def answer() -> str:
        await asyncio.sleep(0)
        return "ok"

    async def main() -> str:
        work = asyncio.ensure_future(answer())
        timer = asyncio.ensure_future(clock.asleep(5))
        done, _ = await asyncio.wait({work, timer}, return_when=asyncio.FIRST_COMPLETED)
        timer.cancel()
        assert done == {work}
        return work.result()

    assert asyncio.run(main()) == "ok"
    assert clock.now() == 0.0


def test_time_waits_for_busy_tasks_before_it_jumps() -> None:
    clock = FakeClock()
    steps: list[float] = []

    async def busy() -> None:
        for _ in range(20):  # many turns of the loop, no sleep on the clock
            steps.append(clock.now())
            await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(clock.asleep(1), busy())

    asyncio.run(main())
    assert steps == [0.0] * 20
    assert clock.now() == 1.0


def test_a_cancelled_sleep_moves_no_time() -> None:
    clock = FakeClock()

    async def main() -> None:
        sleeper = asyncio.ensure_future(clock.asleep(10))
        await asyncio.sleep(0)
        sleeper.cancel()
        await clock.asleep(1)

    asyncio.run(main())
    assert clock.now() == 1.0


def test_a_sync_sleep_inside_async_code_moves_time_at_once() -> None:
    clock = FakeClock()

    async def main() -> float:
        later = asyncio.ensure_future(clock.asleep(5))
        await asyncio.sleep(0)  # it is asleep, due at 5
        clock.sleep(7)  # blocks the loop: time has passed for everyone
        await later
        return clock.now()

    assert asyncio.run(main()) == 7.0


def test_event_loops_in_two_threads_share_one_fake_clock() -> None:
    clock = FakeClock()
    results: list[float] = []

    def run() -> None:
        async def main() -> None:
            await clock.asleep(2)
            results.append(clock.now())

        asyncio.run(main())

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2
    assert clock.now() <= 4.0


def test_fake_clock_rejects_bad_values() -> None:
    clock = FakeClock()
    with pytest.raises(ConfigError, match="seconds must be >= 0, got -1"):
        clock.sleep(-1)
    with pytest.raises(ConfigError, match="start"):
        FakeClock(start=float("nan"))


def test_fake_clock_is_thread_safe() -> None:
    clock = FakeClock()

    def work() -> None:
        for _ in range(1000):
            clock.sleep(1)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert clock.now() == 8000.0
    assert len(clock.sleeps) == 8000


def test_both_clocks_satisfy_the_protocol() -> None:
    assert isinstance(FakeClock(), Clock)
    assert isinstance(MONOTONIC, Clock)
    assert isinstance(MonotonicClock(), Clock)


def test_monotonic_clock_reads_time_monotonic() -> None:
    before = time.monotonic()
    now = MONOTONIC.now()
    assert before <= now <= time.monotonic()


def test_the_monotonic_clock_sleeps_lengths_past_what_time_sleep_takes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    MONOTONIC.sleep(1e10)  # time.sleep(1e10) raises OverflowError
    assert all(0 < chunk <= 86_400 for chunk in slept)
    assert sum(slept) == pytest.approx(1e10)
