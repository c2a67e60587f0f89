from __future__ import annotations

import asyncio
import math
import sys
import threading
import traceback
from typing import Any

import pytest

from stormproof import (
    Cache,
    ConfigError,
    DeadlineExceeded,
    Pipeline,
    Retry,
    Timeout,
    deadline,
    remaining,
)
from stormproof.cache import CacheEntry, CacheStore, JSONSerializer, MemoryStore
from stormproof.events import CacheStaleServed, Recorder
from stormproof.testing import FakeClock


class Origin:
    """Answers ``value-N`` for call N, or raises while ``down``."""

    def __init__(self) -> None:
        self.calls = 0
        self.down: BaseException | None = None

    def __call__(self, key: str) -> str:
        self.calls += 1
        if self.down is not None:
            raise self.down
        return f"{key}-{self.calls}"

    async def acall(self, key: str) -> str:
        await asyncio.sleep(0)
        return self(key)


# -- fresh, stale, expired ------------------------------------------------------------


def test_fresh_hits_never_call_the_origin(clock: FakeClock) -> None:
    origin = Origin()
    cache = Cache(60, clock=clock)
    assert cache.call(origin, "a") == "a-1"
    clock.advance(59.9)
    assert cache.call(origin, "a") == "a-1"
    assert origin.calls == 1
    assert cache.call(origin, "b") == "b-2"  # another key, another entry


def test_after_ttl_the_origin_is_asked_again(clock: FakeClock) -> None:
    origin = Origin()
    cache = Cache(60, clock=clock)
    cache.call(origin, "a")
    clock.advance(60)
    assert cache.call(origin, "a") == "a-2"


def test_stale_if_error_within_the_stale_window(clock: FakeClock) -> None:
    origin = Origin()
    recorder = Recorder()
    cache = Cache(300, stale_ttl=3 * 3600, clock=clock, listeners=[recorder], name="items")
    assert cache.call(origin, "a") == "a-1"
    origin.down = ConnectionError("DNS: no address")
    clock.advance(301)
    assert cache.call(origin, "a") == "a-1"  # stale, not an error
    clock.advance(2 * 3600)
    assert cache.call(origin, "a") == "a-1"
    (first, second) = recorder.of(CacheStaleServed)
    assert (first.policy, first.reason, first.age) == ("items", "error", 301)
    assert isinstance(first.error, ConnectionError)
    assert second.age == 301 + 7200


def test_past_the_stale_window_the_origins_error_propagates(clock: FakeClock) -> None:
    origin = Origin()
    cache = Cache(300, stale_ttl=600, clock=clock)
    cache.call(origin, "a")
    down = ConnectionError("down")
    origin.down = down
    clock.advance(900)
    with pytest.raises(ConnectionError) as caught:
        cache.call(origin, "a")
    assert caught.value is down


def test_a_recovered_origin_refreshes_the_entry(clock: FakeClock) -> None:
    origin = Origin()
    cache = Cache(10, stale_ttl=100, clock=clock)
    cache.call(origin, "a")
    origin.down = ConnectionError()
    clock.advance(11)
    assert cache.call(origin, "a") == "a-1"
    origin.down = None
    assert cache.call(origin, "a") == "a-3"
    clock.advance(5)
    assert cache.call(origin, "a") == "a-3"  # fresh again


def test_unlimited_stale_window(clock: FakeClock) -> None:
    origin = Origin()
    cache = Cache(1, stale_ttl=math.inf, clock=clock)
    cache.call(origin, "a")
    origin.down = ConnectionError()
    clock.advance(10**9)
    assert cache.call(origin, "a") == "a-1"


def test_a_plain_ttl_cache_fails_once_its_ttl_expires_inside_an_outage(clock: FakeClock) -> None:
    """The usual advice (a 5-minute TTL, no stale serving) during a 3-hour outage."""
    origin = Origin()
    cache = Cache(300, clock=clock)
    cache.call(origin, "a")
    origin.down = ConnectionError()
    clock.advance(299)
    assert cache.call(origin, "a") == "a-1"
    clock.advance(1)
    with pytest.raises(ConnectionError):
        cache.call(origin, "a")


# -- negative caching, LRU, keys ---------------------------------------------------------


def test_negative_caching_of_not_found(clock: FakeClock) -> None:
    calls = []

    def lookup(key: str) -> str:
        calls.append(key)
        raise KeyError(key)

    cache = Cache(60, negative_ttl=5, negative_on=KeyError, clock=clock)
    errors = []
    for _ in range(3):
        with pytest.raises(KeyError) as caught:
            cache.call(lookup, "missing")
        errors.append(caught.value)
    assert calls == ["missing"]
    assert errors[1] is not errors[2]  # a fresh copy each time: no growing traceback
    assert errors[1].args == ("missing",)
    clock.advance(5)
    with pytest.raises(KeyError):
        cache.call(lookup, "missing")
    assert len(calls) == 2


def test_negative_results(clock: FakeClock) -> None:
    origin = Origin()
    answers = iter([None, "found"])
    cache = Cache(60, negative_ttl=2, negative_if=lambda r: r is None, clock=clock)

    def lookup(key: str) -> str | None:
        origin.calls += 1
        return next(answers)

    assert cache.call(lookup, "k") is None
    assert cache.call(lookup, "k") is None
    clock.advance(2)
    assert cache.call(lookup, "k") == "found"
    assert origin.calls == 2


def test_lru_bound(clock: FakeClock) -> None:
    origin = Origin()
    cache = Cache(60, max_entries=2, clock=clock)
    cache.call(origin, "a")
    cache.call(origin, "b")
    cache.call(origin, "a")  # a is now the most recently used
    cache.call(origin, "c")  # evicts b
    store = cache.store
    assert isinstance(store, MemoryStore)
    assert len(store) == 2
    assert cache.call(origin, "a") == "a-1"
    assert cache.call(origin, "b") == "b-4"


def test_keys_include_the_function_and_all_arguments(clock: FakeClock) -> None:
    cache = Cache(60, clock=clock)

    def f(x: int, *, y: int = 0) -> tuple[str, int, int]:
        return ("f", x, y)

    def g(x: int, *, y: int = 0) -> tuple[str, int, int]:
        return ("g", x, y)

    assert cache.call(f, 1) == ("f", 1, 0)
    assert cache.call(g, 1) == ("g", 1, 0)
    assert cache.call(f, 1, y=2) == ("f", 1, 2)
    assert cache.key_for(f, (1,), {"y": 2}) == cache.key_for(f, (1,), {"y": 2})


def test_custom_key_and_unhashable_arguments(clock: FakeClock) -> None:
    origin = Origin()
    cache = Cache(60, key=lambda request: request["id"], clock=clock)
    assert cache.call(lambda request: origin(request["id"]), {"id": "x"}) == "x-1"
    assert cache.call(lambda request: origin(request["id"]), {"id": "x"}) == "x-1"
    with pytest.raises(TypeError, match="pass key="):
        Cache(60, clock=clock).call(lambda request: 1, {"id": "x"})


def test_cache_as_a_pipeline_stage_keys_on_the_callers_arguments(clock: FakeClock) -> None:
    origin = Origin()
    pipeline = Pipeline(Cache(60, clock=clock), Retry(on=ConnectionError, clock=clock))
    assert pipeline.call(origin, "a") == "a-1"
    assert pipeline.call(origin, "a") == "a-1"
    assert pipeline.call(origin, "b") == "b-2"


# -- coalescing ---------------------------------------------------------------------------


def test_two_hundred_threads_one_origin_call() -> None:
    cache = Cache(60)
    release = threading.Event()
    calls = 0
    arrived = threading.Barrier(201)

    def slow_origin(key: str) -> str:
        nonlocal calls
        calls += 1
        release.wait(30)
        return f"value for {key}"

    results: list[str] = []

    def reader() -> None:
        arrived.wait()
        results.append(cache.call(slow_origin, "hot"))

    threads = [threading.Thread(target=reader) for _ in range(200)]
    for thread in threads:
        thread.start()
    arrived.wait()
    while not cache._flights:  # the leader is inside the origin
        threading.Event().wait(0.001)
    release.set()
    for thread in threads:
        thread.join()
    assert calls == 1
    assert results == ["value for hot"] * 200


def test_a_thousand_tasks_one_origin_call() -> None:
    cache = Cache(60)
    calls = 0

    async def origin(key: str) -> str:
        nonlocal calls
        calls += 1
        for _ in range(5):
            await asyncio.sleep(0)
        return f"value for {key}"

    async def main() -> list[str]:
        return await asyncio.gather(*(cache.acall(origin, "hot") for _ in range(1000)))

    assert asyncio.run(main()) == ["value for hot"] * 1000
    assert calls == 1


def test_followers_share_the_leaders_failure() -> None:
    cache = Cache(60)
    calls = 0

    async def origin(key: str) -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        raise ConnectionError("down")

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(cache.acall(origin, "k") for _ in range(50)), return_exceptions=True
        )

    results = asyncio.run(main())
    assert calls == 1
    assert all(isinstance(r, ConnectionError) for r in results)


def test_a_cancelled_leader_hands_over_to_a_follower() -> None:
    cache = Cache(60)
    calls = 0
    gate = None

    async def origin(key: str) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            assert gate is not None
            await gate.wait()  # the first leader hangs, then is cancelled
        return "value"

    async def main() -> Any:
        nonlocal gate
        gate = asyncio.Event()
        leader = asyncio.create_task(cache.acall(origin, "k"))
        await asyncio.sleep(0)
        follower = asyncio.create_task(cache.acall(origin, "k"))
        await asyncio.sleep(0)
        leader.cancel()
        return await follower

    assert asyncio.run(main()) == "value"
    assert calls == 2


def test_one_cache_used_from_two_event_loops_never_leaves_a_waiter_hanging() -> None:
    cache = Cache(60)
    inside = threading.Event()
    release = threading.Event()
    calls = 0

    async def origin(key: str) -> str:
        nonlocal calls
        calls += 1
        inside.set()
        while not release.is_set():  # the leader's loop stays responsive meanwhile
            await asyncio.sleep(0)
        return f"value for {key}"

    results: dict[str, object] = {}

    def reader(name: str) -> None:
        try:
            results[name] = asyncio.run(cache.acall(origin, "k"))
        except BaseException as error:  # pragma: no cover - reported below
            results[name] = error

    leader = threading.Thread(target=reader, args=("leader",))
    leader.start()
    assert inside.wait(30)
    follower = threading.Thread(target=reader, args=("follower",))
    follower.start()
    while "k" not in {key[1][0] for key in cache._flights} or not any(
        flight.waiters for flight in cache._flights.values()
    ):
        if not follower.is_alive():
            break
        threading.Event().wait(0.001)
    release.set()
    leader.join(30)
    follower.join(30)
    assert not follower.is_alive()
    assert results == {"leader": "value for k", "follower": "value for k"}
    assert calls == 1


def test_sync_and_async_callers_of_one_key_share_one_origin_call() -> None:
    cache = Cache(60, key=lambda key: key)
    inside = threading.Event()
    release = threading.Event()
    calls = 0

    def origin(key: str) -> str:
        nonlocal calls
        calls += 1
        inside.set()
        release.wait(30)
        return f"value for {key}"

    async def aorigin(key: str) -> str:  # pragma: no cover - the sync leader answers
        raise AssertionError("the async caller waits for the sync call in progress")

    sync_result: list[str] = []
    leader = threading.Thread(target=lambda: sync_result.append(cache.call(origin, "k")))
    leader.start()
    assert inside.wait(30)

    async def main() -> str:
        waiting = asyncio.ensure_future(cache.acall(aorigin, "k"))
        while not any(flight.waiters for flight in cache._flights.values()):
            await asyncio.sleep(0)
        release.set()
        return await waiting

    assert asyncio.run(main()) == "value for k"
    leader.join(30)
    assert sync_result == ["value for k"]
    assert calls == 1


def test_a_blocking_caller_never_waits_for_a_call_its_own_thread_must_run() -> None:
    # An async call in progress on this thread's loop, and a sync call of the same key
    # made from inside that loop (blocking it): waiting would hang forever, so the sync
    # call calls the origin itself.
    cache = Cache(60, key=lambda key: key)
    calls: list[str] = []

    def origin(key: str) -> str:
        calls.append("sync")
        return "from the sync call"

    async def aorigin(key: str) -> str:
        calls.append("async")
        await asyncio.sleep(0)
        return "from the async call"

    async def main() -> list[Any]:
        leader = asyncio.ensure_future(cache.acall(aorigin, "k"))
        await asyncio.sleep(0)  # the async call is in progress
        blocking = cache.call(origin, "k")
        return [blocking, await leader]

    assert asyncio.run(main()) == ["from the sync call", "from the async call"]
    assert sorted(calls) == ["async", "sync"]


def test_each_waiter_gets_its_own_copy_of_the_leaders_failure() -> None:
    cache = Cache(60)
    inside = threading.Event()
    release = threading.Event()
    raised: list[BaseException] = []

    def origin(key: str) -> str:
        inside.set()
        release.wait(30)
        error = ConnectionError("down", key)
        raised.append(error)
        raise error

    caught: list[BaseException] = []
    lock = threading.Lock()

    def reader() -> None:
        try:
            cache.call(origin, "k")
        except ConnectionError as error:
            with lock:
                caught.append(error)

    threads = [threading.Thread(target=reader) for _ in range(32)]
    threads[0].start()
    assert inside.wait(30)
    for thread in threads[1:]:
        thread.start()
    while len(cache._flights) and _waiting_threads(threads) < 31:
        threading.Event().wait(0.001)
    release.set()
    for thread in threads:
        thread.join(30)
    assert len(caught) == 32
    assert len(raised) == 1
    assert len({id(error) for error in caught}) == 32  # every caller its own object
    assert sum(error is raised[0] for error in caught) == 1  # the leader's is the original
    for error in caught:
        assert error.args == ("down", "k")
        depth = len(traceback.extract_tb(error.__traceback__))
        assert depth < 12  # its own frames only, never other waiters'


_WAITS = {threading.Condition.wait.__code__, threading.Event.wait.__code__}


def _waiting_threads(threads: list[threading.Thread]) -> int:
    """How many of ``threads`` are blocked in a wait on a threading primitive."""
    frames = sys._current_frames()
    waiting = 0
    for thread in threads:
        frame = frames.get(thread.ident or -1)
        while frame is not None:
            if frame.f_code in _WAITS:
                waiting += 1
                break
            frame = frame.f_back
    return waiting


def test_async_waiters_each_get_their_own_copy_of_the_failure() -> None:
    cache = Cache(60)

    async def origin(key: str) -> str:
        await asyncio.sleep(0)
        raise ConnectionError("down")

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(cache.acall(origin, "k") for _ in range(20)), return_exceptions=True
        )

    results = asyncio.run(main())
    assert all(isinstance(r, ConnectionError) for r in results)
    assert len({id(r) for r in results}) == 20


@pytest.mark.parametrize("form", ["sync", "async"])
def test_negative_caching_hands_the_first_caller_the_origins_own_error(
    clock: FakeClock, form: str
) -> None:
    cache = Cache(60, negative_ttl=30, negative_on=KeyError, clock=clock)
    raised: list[BaseException] = []

    def lookup(key: str) -> str:
        error = KeyError(key)
        raised.append(error)
        raise error

    async def alookup(key: str) -> str:
        return lookup(key)

    def call() -> Any:
        if form == "sync":
            return cache.call(lookup, "missing")
        return asyncio.run(cache.acall(alookup, "missing"))

    with pytest.raises(KeyError) as first:
        call()
    assert first.value is raised[0]
    frames = [frame.name for frame in traceback.extract_tb(first.value.__traceback__)]
    assert frames[-1] == "lookup"  # the traceback still ends where the origin raised
    with pytest.raises(KeyError) as second:  # a cached "not found": a copy of it
        call()
    assert second.value is not raised[0]
    assert len(raised) == 1


def test_followers_honour_the_deadline(clock: FakeClock) -> None:
    cache = Cache(10, stale_ttl=100, clock=clock)

    async def main() -> tuple[Any, Any]:
        release = asyncio.Event()
        slow = False

        async def origin(key: str) -> str:
            if slow:
                await release.wait()
                return "fresh"
            return "first"

        await cache.acall(origin, "k")
        clock.advance(11)
        slow = True
        leader = asyncio.create_task(cache.acall(origin, "k"))
        other = asyncio.create_task(cache.acall(origin, "other"))
        await asyncio.sleep(0)
        with deadline(1, clock=clock):
            follower = await cache.acall(origin, "k")  # times out: serves stale
        with deadline(1, clock=clock), pytest.raises(DeadlineExceeded):
            await cache.acall(origin, "other")  # no stale value for this one
        release.set()
        await other
        return follower, await leader

    assert asyncio.run(main()) == ("first", "fresh")


def test_coalescing_can_be_turned_off() -> None:
    cache = Cache(60, coalesce=False)
    calls = 0

    async def origin(key: str) -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        return "v"

    async def main() -> None:
        await asyncio.gather(*(cache.acall(origin, "k") for _ in range(10)))

    asyncio.run(main())
    assert calls == 10


# -- stale-while-revalidate ---------------------------------------------------------------


def test_stale_while_revalidate_async_refreshes_in_the_background(clock: FakeClock) -> None:
    cache = Cache(10, stale_ttl=100, stale_while_revalidate=True, clock=clock)
    origin = Origin()

    async def main() -> list[str]:
        first = await cache.acall(origin.acall, "k")
        clock.advance(11)
        stale = await cache.acall(origin.acall, "k")  # served at once...
        for _ in range(5):
            await asyncio.sleep(0)  # ...while the refresh runs
        fresh = await cache.acall(origin.acall, "k")
        return [first, stale, fresh]

    assert asyncio.run(main()) == ["k-1", "k-1", "k-2"]
    assert origin.calls == 2


def test_stale_while_revalidate_sync_refreshes_in_a_thread_of_its_own(clock: FakeClock) -> None:
    cache = Cache(10, stale_ttl=100, stale_while_revalidate=True, clock=clock)
    inside = threading.Event()
    release = threading.Event()
    calls = 0

    def origin(key: str) -> str:
        nonlocal calls
        calls += 1
        if calls > 1:  # the refresh is slow
            inside.set()
            release.wait(30)
        return f"{key}-{calls}"

    assert cache.call(origin, "k") == "k-1"
    clock.advance(11)
    assert cache.call(origin, "k") == "k-1"  # stale at once; the refresh runs behind it
    assert inside.wait(30)
    assert cache.call(origin, "k") == "k-1"  # still stale; no second refresh
    release.set()
    assert cache.wait_refreshes(30)
    assert cache.call(origin, "k") == "k-2"
    assert calls == 2


def slow_origin_honouring_the_deadline(clock: FakeClock, calls: list[float]) -> Any:
    """An origin answering in 200 ms, that (like a well-behaved client) fails at once
    when the time left is shorter than that."""

    def origin(key: str) -> str:
        calls.append(clock.now())
        left = remaining()
        if left is not None and left < 0.2:
            raise TimeoutError("not enough time left")
        clock.sleep(0.2)
        return f"{key}@{clock.now():g}"

    return origin


def test_a_background_refresh_runs_free_of_the_callers_deadline_sync(clock: FakeClock) -> None:
    calls: list[float] = []
    origin = slow_origin_honouring_the_deadline(clock, calls)
    cache = Cache(0.5, stale_ttl=60, stale_while_revalidate=True, clock=clock)
    pipeline = Pipeline(cache, Timeout(1, clock=clock))
    assert pipeline.call(origin, "k") == "k@0.2"
    clock.advance(1.0)
    with deadline(0.05, clock=clock):  # the caller's deadline is far shorter than 200 ms
        assert pipeline.call(origin, "k") == "k@0.2"  # stale, at once
    assert cache.wait_refreshes(30)
    assert len(calls) == 2
    assert pipeline.call(origin, "k") == "k@1.4"  # the refresh completed under Timeout(1)


def test_a_background_refresh_runs_free_of_the_callers_deadline_async(clock: FakeClock) -> None:
    calls: list[float] = []
    cache = Cache(0.5, stale_ttl=60, stale_while_revalidate=True, clock=clock)
    pipeline = Pipeline(cache, Timeout(1, clock=clock))

    async def origin(key: str) -> str:
        calls.append(clock.now())
        left = remaining()
        if left is not None and left < 0.2:
            raise TimeoutError("not enough time left")
        await clock.asleep(0.2)
        return f"{key}@{clock.now():g}"

    async def main() -> list[str]:
        first = await pipeline.acall(origin, "k")
        clock.advance(1.0)
        with deadline(0.05, clock=clock):
            stale = await pipeline.acall(origin, "k")
        await cache.await_refreshes()
        return [first, stale, await pipeline.acall(origin, "k")]

    assert asyncio.run(main()) == ["k@0.2", "k@0.2", "k@1.4"]
    assert len(calls) == 2


def test_a_background_refresh_is_not_inside_the_callers_retry(clock: FakeClock) -> None:
    attempts = 0

    def origin(key: str) -> str:
        nonlocal attempts
        attempts += 1
        if attempts in (2, 3):  # the refresh fails twice, then answers
            raise ConnectionError("blip")
        return f"{key}-{attempts}"

    cache = Cache(10, stale_ttl=100, stale_while_revalidate=True, clock=clock)
    inner = Retry(on=ConnectionError, attempts=3, clock=clock)
    outer = Retry(on=ConnectionError, attempts=2, clock=clock)
    # Called inside the caller's Retry, the Retry inside the cache makes one attempt (it
    # is nested); the refresh belongs to the cache, so there it retries.
    refreshing = Pipeline(cache, inner)
    assert outer.call(refreshing.call, origin, "k") == "k-1"
    clock.advance(11)
    assert outer.call(refreshing.call, origin, "k") == "k-1"  # stale; refresh behind it
    assert cache.wait_refreshes(30)
    assert outer.call(refreshing.call, origin, "k") == "k-4"
    assert attempts == 4


# -- stores and validation -------------------------------------------------------------------


def test_memory_store_implements_the_protocol() -> None:
    store = MemoryStore(2)
    assert isinstance(store, CacheStore)
    entry = CacheEntry("v", 1.0, 2.0)

    async def main() -> Any:
        await store.aset("k", entry)
        found = await store.aget("k")
        await store.adelete("k")
        return found, await store.aget("k")

    assert asyncio.run(main()) == (entry, None)


def test_json_serializer_round_trips_and_refuses_what_json_cannot_hold() -> None:
    serializer = JSONSerializer()
    value = {"id": "k", "price": 9.5, "tags": ["a", "é"], "none": None}
    assert serializer.loads(serializer.dumps(value)) == value
    with pytest.raises(TypeError, match="cannot store a set as JSON"):
        serializer.dumps({1, 2})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ttl": -1}, "ttl must be >= 0, got -1"),
        ({"ttl": 1, "stale_ttl": -5}, "stale_ttl must be >= 0, got -5"),
        ({"ttl": 1, "max_entries": 0}, "max_entries must be an integer >= 1, got 0"),
        ({"ttl": 1, "negative_ttl": -1}, "negative_ttl must be >= 0, got -1"),
        ({"ttl": 1, "negative_on": KeyError}, "negative_ttl must be > 0 when negative_on"),
        ({"ttl": 1, "coalesce": "yes"}, "coalesce must be True or False, got 'yes'"),
        ({"ttl": 1, "key": "id"}, "key must be a function of the call's arguments, got 'id'"),
        ({"ttl": 1, "store": {}}, "store must be a CacheStore"),
        ({"ttl": 1, "stale_while_revalidate": True}, "stale_ttl must be > 0 when"),
    ],
)
def test_bad_options(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Cache(**kwargs)
    assert str(caught.value).startswith(message)
