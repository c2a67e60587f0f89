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


def test_fake_clock_async_sleep_advances_and_yields() -> None:
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
