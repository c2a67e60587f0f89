from __future__ import annotations

import asyncio
import random
import threading
from typing import Any

import pytest

from stormproof import Bulkhead, BulkheadFull, ConfigError, deadline
from stormproof.events import BulkheadRejected, Recorder
from stormproof.testing import FakeClock


def test_limits_concurrency_and_rejects_beyond() -> None:
    bulkhead = Bulkhead(2, name="db")
    assert bulkhead.try_acquire()
    assert bulkhead.try_acquire()
    assert not bulkhead.try_acquire()
    with pytest.raises(BulkheadFull) as caught:
        bulkhead.call(lambda: None)
    assert caught.value.policy == "db"
    bulkhead.release()
    assert bulkhead.call(lambda: "ok") == "ok"
    assert bulkhead.active == 1


def test_permits_come_back_after_errors() -> None:
    bulkhead = Bulkhead(1)

    def boom() -> None:
        raise RuntimeError

    for _ in range(5):
        with pytest.raises(RuntimeError):
            bulkhead.call(boom)
    assert bulkhead.active == 0


def test_a_queued_thread_gets_the_released_permit() -> None:
    bulkhead = Bulkhead(1, max_queue=1, max_wait=30)
    inside = threading.Event()
    leave = threading.Event()
    order: list[str] = []

    def holder() -> None:
        inside.set()
        leave.wait(10)
        order.append("holder")

    first = threading.Thread(target=bulkhead.call, args=(holder,))
    first.start()
    inside.wait(10)
    second = threading.Thread(target=bulkhead.call, args=(lambda: order.append("waiter"),))
    second.start()
    while bulkhead.queued != 1:
        threading.Event().wait(0.001)
    with pytest.raises(BulkheadFull):  # the queue is full too
        bulkhead.call(lambda: None)
    leave.set()
    first.join()
    second.join()
    assert order == ["holder", "waiter"]
    assert (bulkhead.active, bulkhead.queued) == (0, 0)


def test_waiting_times_out_on_the_clock() -> None:
    clock = FakeClock()
    recorder = Recorder()
    bulkhead = Bulkhead(1, max_queue=5, max_wait=2.5, clock=clock, listeners=[recorder])
    assert bulkhead.try_acquire()
    with pytest.raises(BulkheadFull):
        bulkhead.call(lambda: None)
    assert clock.now() == 2.5  # it waited max_wait (on the fake clock: instantly)
    assert (bulkhead.active, bulkhead.queued) == (1, 0)
    (event,) = recorder.of(BulkheadRejected)
    assert event.waited


def test_waiting_never_outlasts_the_deadline() -> None:
    clock = FakeClock()
    bulkhead = Bulkhead(1, max_queue=5, max_wait=10, clock=clock)
    assert bulkhead.try_acquire()
    with deadline(1.5, clock=clock), pytest.raises(BulkheadFull):
        bulkhead.call(lambda: None)
    assert clock.now() == 1.5


def test_async_waiters_are_served_in_order() -> None:
    bulkhead = Bulkhead(1, max_queue=10, max_wait=30)
    order: list[int] = []

    async def work(n: int) -> None:
        order.append(n)
        await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(*(bulkhead.acall(work, n) for n in range(8)))

    asyncio.run(main())
    assert order == list(range(8))
    assert (bulkhead.active, bulkhead.queued) == (0, 0)


def test_async_wait_times_out_on_the_fake_clock() -> None:
    clock = FakeClock()
    bulkhead = Bulkhead(1, max_queue=1, max_wait=4, clock=clock)

    async def main() -> None:
        assert bulkhead.try_acquire()
        with pytest.raises(BulkheadFull):
            await bulkhead.acall(asyncio.sleep, 0)

    asyncio.run(main())
    assert clock.now() == 4
    assert (bulkhead.active, bulkhead.queued) == (1, 0)


def test_threads_and_tasks_share_one_bulkhead() -> None:
    bulkhead = Bulkhead(3, max_queue=1000, max_wait=30)
    peak = 0
    lock = threading.Lock()

    def enter() -> None:
        nonlocal peak
        with lock:
            peak = max(peak, bulkhead.active)

    async def aenter() -> None:
        enter()
        await asyncio.sleep(0)

    def threads() -> None:
        for _ in range(300):
            bulkhead.call(enter)

    async def tasks() -> None:
        await asyncio.gather(*(bulkhead.acall(aenter) for _ in range(300)))

    workers = [threading.Thread(target=threads) for _ in range(3)]
    for worker in workers:
        worker.start()
    asyncio.run(tasks())
    for worker in workers:
        worker.join()
    assert peak <= 3
    assert (bulkhead.active, bulkhead.queued) == (0, 0)


def test_cancellation_while_queued_or_running_never_leaks_a_permit() -> None:
    """Thousands of tasks, cancelled at random points: every permit comes back."""
    bulkhead = Bulkhead(4, max_queue=5000, max_wait=60)
    rng = random.Random(1234)
    peak = 0

    async def work() -> None:
        nonlocal peak
        peak = max(peak, bulkhead.active)
        for _ in range(rng.randrange(4)):
            await asyncio.sleep(0)

    async def main() -> None:
        tasks = [asyncio.create_task(bulkhead.acall(work)) for _ in range(3000)]
        for _ in range(200):
            for task in rng.sample(tasks, 20):
                task.cancel()
            await asyncio.sleep(0)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(r is None or isinstance(r, asyncio.CancelledError) for r in results)
        assert any(isinstance(r, asyncio.CancelledError) for r in results)
        assert any(r is None for r in results)

    asyncio.run(main())
    assert peak <= 4
    assert (bulkhead.active, bulkhead.queued) == (0, 0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_concurrent": 0}, "max_concurrent must be an integer >= 1, got 0"),
        ({"max_concurrent": 2.5}, "max_concurrent must be an integer >= 1, got 2.5"),
        ({"max_concurrent": 1, "max_queue": -1}, "max_queue must be an integer >= 0, got -1"),
        ({"max_concurrent": 1, "max_wait": -1}, "max_wait must be >= 0, got -1"),
        ({"max_concurrent": 1, "max_queue": 5}, "max_wait must be > 0 when max_queue is set"),
    ],
)
def test_bad_options(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Bulkhead(**kwargs)
    assert str(caught.value).startswith(message)
