"""RedisCacheStore against a real redis-server on loopback: the store contract (sync
and async), a Cache's hits, stale values, misses and "not found"s through it, processes
that disagree about the monotonic clock, one refresh for the fleet, and a Redis that
hangs or dies."""

from __future__ import annotations

import asyncio
import json
import math
import multiprocessing
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from stormproof import Cache, ConfigError
from stormproof.cache import CacheEntry, CacheStore, RedisCacheStore, SharedCacheStore
from stormproof.events import CacheStaleServed, CacheStoreFailed, Event
from stormproof.testing import FakeClock
from tests.redis_server import RedisServer

from . import _redis_fleet

redis = pytest.importorskip("redis")


class NotFound(LookupError):
    """The origin's "no such item", with an attribute of its own."""

    def __init__(self, sku: str) -> None:
        super().__init__(f"no item {sku}")
        self.sku = sku


class Origin:
    def __init__(self) -> None:
        self.calls = 0
        self.down: Exception | None = None

    def __call__(self, key: str) -> str:
        self.calls += 1
        if self.down is not None:
            raise self.down
        return f"{key}-{self.calls}"

    async def acall(self, key: str) -> str:
        return self(key)


@pytest.fixture
def raw(redis_url: str) -> Iterator[Any]:
    """A plain client, to look at what the store wrote."""
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    yield client
    client.close()


def bound(url: str, clock: FakeClock, name: str = "t", **options: Any) -> RedisCacheStore:
    """A store for a cache named ``name`` on ``clock``, the clock also standing for the
    wall clock (so times round-trip exactly)."""
    return RedisCacheStore(url, wall=clock.now, **options).for_cache(name, clock, ())


def cache_on(
    url: str, clock: FakeClock, events: list[Event] | None = None, **options: Any
) -> Cache:
    options.setdefault("stale_ttl", 100)
    store = RedisCacheStore(url, wall=clock.now)
    listeners = [] if events is None else [events.append]
    return Cache(10, clock=clock, store=store, key=lambda k: k, listeners=listeners, **options)


def close(cache: Cache) -> None:
    store = cache.store
    assert isinstance(store, RedisCacheStore)
    store.close()


# -- the store contract ---------------------------------------------------------------------


def test_the_store_contract_sync(redis_url: str, raw: Any, clock: FakeClock) -> None:
    store = bound(redis_url, clock, local_entries=0)
    assert isinstance(store, CacheStore)
    assert isinstance(store, SharedCacheStore)
    entry = CacheEntry({"price": 9.5, "tags": ["a", "é"]}, clock.now() + 10, clock.now() + 110)
    assert store.get("k") is None
    store.set("k", entry)
    assert store.get("k") == entry
    # One Redis string: a JSON header (wall-clock times), a newline, the value as JSON.
    header, _, value = raw.get('sp:cache:t:"k"').partition(b"\n")
    assert json.loads(header) == {"fresh_until": 10.0, "stale_until": 110.0, "error": None}
    assert json.loads(value) == {"price": 9.5, "tags": ["a", "é"]}
    assert 100_000 < raw.pttl('sp:cache:t:"k"') <= 110_000  # Redis drops it at stale_until
    store.delete("k")
    assert store.get("k") is None
    assert raw.keys("*") == []
    store.set("gone", CacheEntry("v", clock.now() - 2, clock.now() - 1))  # expired: not written
    assert raw.keys("*") == []
    store.set("forever", CacheEntry("v", clock.now() + 1, math.inf))
    assert raw.pttl('sp:cache:t:"forever"') == -1  # stale_ttl=inf: no expiry
    assert store.get("forever") == CacheEntry("v", clock.now() + 1, math.inf)
    store.close()


def test_the_store_contract_async(redis_url: str, raw: Any, clock: FakeClock) -> None:
    store = bound(redis_url, clock, local_entries=0)
    entry = CacheEntry([1, "two", None], clock.now() + 10, clock.now() + 20)

    async def main() -> list[Any]:
        seen = [await store.aget("k")]
        await store.aset("k", entry)
        seen.append(await store.aget("k"))
        token = await store.aclaim("k")
        seen += [bool(token), await store.aclaim("k")]
        assert token is not None
        await store.arelease("k", token)
        seen.append(bool(await store.aclaim("k")))
        await store.adelete("k")
        seen.append(await store.aget("k"))
        await store.aclose()
        return seen

    assert asyncio.run(main()) == [None, entry, True, None, True, None]
    assert store.get("k") is None  # sync and async clients see one Redis
    store.close()


def test_one_claim_at_a_time_released_only_by_its_holder(
    redis_url: str, raw: Any, clock: FakeClock
) -> None:
    store = bound(redis_url, clock, lock_ttl=5.0)
    token = store.claim("k")
    assert token
    assert store.claim("k") is None  # another process (or this one) cannot have it now
    assert 0 < raw.pttl('sp:cache:t:"k":refresh') <= 5000  # bounded: it expires by itself
    store.release("k", "somebody else's token")  # a late holder deletes nothing
    assert store.claim("k") is None
    store.release("k", token)
    assert raw.get('sp:cache:t:"k":refresh') is None
    assert store.claim("k")
    store.close()


def test_a_cached_not_found_is_rebuilt_from_its_type_arguments_and_attributes(
    redis_url: str, raw: Any, clock: FakeClock
) -> None:
    store = bound(redis_url, clock, local_entries=0)
    store.set("k", CacheEntry(None, clock.now() + 5, clock.now() + 5, NotFound("A-1")))
    entry = store.get("k")
    assert entry is not None
    assert type(entry.error) is NotFound
    assert entry.error.args == ("no item A-1",)
    assert entry.error.sku == "A-1"  # type: ignore[attr-defined]
    header = json.loads(raw.get('sp:cache:t:"k"').partition(b"\n")[0])
    assert header["error"]["type"] == f"{__name__}:NotFound"
    # A type this process has not imported is never imported for it: the entry is a miss.
    raw.set(
        'sp:cache:t:"k"',
        raw.get('sp:cache:t:"k"').replace(__name__.encode(), b"no_such_module"),
    )
    assert store.get("k") is None
    store.close()


@pytest.mark.parametrize(
    ("value", "kind"),
    [((1, 2), "tuple"), ({1: "a"}, "dict"), ({1, 2}, "set"), (object(), "object")],
)
def test_a_value_json_would_not_give_back_is_refused_at_set(
    redis_url: str, raw: Any, clock: FakeClock, value: Any, kind: str
) -> None:
    store = bound(redis_url, clock)
    with pytest.raises(TypeError, match=rf"t: key 'k': .*{kind}"):
        store.set("k", CacheEntry(value, clock.now() + 1, clock.now() + 2))
    assert raw.keys("*") == []
    store.close()


def test_a_value_json_cannot_hold_fails_the_call_that_would_cache_it(
    redis_url: str, clock: FakeClock
) -> None:
    cache = cache_on(redis_url, clock)
    with pytest.raises(TypeError, match="tuple"):
        cache.call(lambda k: (k, 1), "k")
    close(cache)


def test_keys_with_no_stable_string_form_are_refused(redis_url: str, clock: FakeClock) -> None:
    store = RedisCacheStore(redis_url, wall=clock.now)
    cache = Cache(10, clock=clock, store=store, name="prices")  # keys: (function, arguments)

    def price(sku: Any) -> str:
        return "9.99"

    assert cache.call(price, "A-1") == "9.99"
    assert cache.call(price, ("A-1", 2)) == "9.99"
    with pytest.raises(TypeError, match="prices: a cache key holding a object has no stable"):
        cache.call(price, object())
    with pytest.raises(TypeError, match="lambda"):
        cache.call(lambda sku: sku, "A-1")
    close(cache)


# -- through a Cache ------------------------------------------------------------------------


def test_hit_stale_and_miss_through_a_cache(redis_url: str, clock: FakeClock) -> None:
    events: list[Event] = []
    cache = cache_on(redis_url, clock, events)
    origin = Origin()
    assert cache.call(origin, "k") == "k-1"
    clock.advance(9)
    assert cache.call(origin, "k") == "k-1"  # fresh: from Redis
    assert origin.calls == 1
    clock.advance(2)
    origin.down = ConnectionError("origin down")
    assert cache.call(origin, "k") == "k-1"  # stale-if-error
    assert [type(e) for e in events] == [CacheStaleServed]
    origin.down = None
    assert cache.call(origin, "k") == "k-3"  # refreshed
    clock.advance(111)
    origin.down = ConnectionError("origin down")
    with pytest.raises(ConnectionError):  # past the stale window: a miss
        cache.call(origin, "k")
    close(cache)


def test_not_found_is_cached_through_a_cache(redis_url: str, clock: FakeClock) -> None:
    cache = cache_on(redis_url, clock, negative_on=NotFound, negative_ttl=5)
    calls = []

    def origin(sku: str) -> str:
        calls.append(sku)
        raise NotFound(sku)

    for _ in range(3):
        with pytest.raises(NotFound, match="no item A-1"):
            cache.call(origin, "A-1")
    assert calls == ["A-1"]
    clock.advance(6)
    with pytest.raises(NotFound):
        cache.call(origin, "A-1")
    assert calls == ["A-1", "A-1"]
    close(cache)


def test_hit_stale_and_miss_through_an_async_cache(redis_url: str, clock: FakeClock) -> None:
    cache = cache_on(redis_url, clock)
    origin = Origin()

    async def main() -> list[str]:
        seen = [await cache.acall(origin.acall, "k"), await cache.acall(origin.acall, "k")]
        clock.advance(11)
        origin.down = ConnectionError("origin down")
        seen.append(await cache.acall(origin.acall, "k"))
        origin.down = None
        seen.append(await cache.acall(origin.acall, "k"))
        store = cache.store
        assert isinstance(store, RedisCacheStore)
        await store.aclose()
        return seen

    assert asyncio.run(main()) == ["k-1", "k-1", "k-1", "k-3"]
    close(cache)


# -- processes whose monotonic clocks have different origins --------------------------------


def test_two_processes_with_different_monotonic_origins_agree_on_freshness(
    redis_url: str,
) -> None:
    wall = FakeClock(1_700_000_000.0)  # the wall clock both hosts agree on
    clock_a, clock_b = FakeClock(5.0), FakeClock(3_000_000.0)  # their monotonic clocks

    def advance(seconds: float) -> None:
        for clock in (wall, clock_a, clock_b):
            clock.advance(seconds)

    def host(clock: FakeClock) -> Cache:
        store = RedisCacheStore(redis_url, wall=wall.now)
        return Cache(10, stale_ttl=100, clock=clock, store=store, key=lambda k: k, name="p")

    a, b = host(clock_a), host(clock_b)
    origin_a, origin_b = Origin(), Origin()
    assert a.call(origin_a, "k") == "k-1"
    advance(4)
    entry, fresh = b.lookup("k")
    assert fresh
    assert entry is not None
    assert entry.fresh_until == pytest.approx(clock_b.now() + 6)  # on B's own clock
    assert b.call(origin_b, "k") == "k-1"
    assert origin_b.calls == 0
    advance(7)
    assert b.lookup("k")[1] is False  # stale for B as for A
    origin_b.down = ConnectionError("origin down")
    assert b.call(origin_b, "k") == "k-1"
    advance(100)
    assert b.lookup("k") == (None, False)
    close(a)
    close(b)


def spawn() -> Any:
    return multiprocessing.get_context("spawn")


def test_real_processes_with_shifted_monotonic_clocks_agree_on_freshness(
    redis_url: str,
) -> None:
    here = _redis_fleet.ShiftedClock(0.0)
    cache = _redis_fleet.prices(redis_url, here)
    store = cache.store
    now = here.now()
    store.set("fresh", CacheEntry("f", now + 300, now + 400))
    store.set("stale", CacheEntry("s", now - 300, now + 100))
    context = spawn()
    answers = context.Queue()
    child = context.Process(
        target=_redis_fleet.look,
        args=(redis_url, -1_000_000.0, ["fresh", "stale", "absent"], answers),
    )
    child.start()
    try:
        fresh, stale, absent = answers.get(timeout=60)
    finally:
        child.join(timeout=60)
    elapsed = here.now() - now  # the child's start: the time that passed meanwhile
    assert fresh[:2] == ("f", True)
    assert 300 - elapsed - 1 < fresh[2] < 301  # on the child's clock, a million s away
    assert stale[:2] == ("s", False)
    assert -300 - elapsed - 1 < stale[2] < -299
    assert absent is None
    close(cache)


# -- one refresh for the fleet --------------------------------------------------------------


def test_eight_processes_with_a_stale_entry_make_one_origin_call(redis_url: str, raw: Any) -> None:
    here = _redis_fleet.ShiftedClock(0.0)
    seed = _redis_fleet.prices(redis_url, here)
    now = here.now()
    seed.store.set("A-1", CacheEntry("A-1 old", now - 1, now + 3600))  # stale, servable
    context = spawn()
    calls, go, answers = context.Value("i", 0), context.Event(), context.Queue()
    processes = [
        context.Process(
            target=_redis_fleet.refresh,
            args=(redis_url, float(n) * 1_000_000.0, calls, go, answers),
        )
        for n in range(8)
    ]
    for process in processes:
        process.start()
    try:
        # Seven answer with the stale value while the eighth's origin call is held open.
        served = [answers.get(timeout=60) for _ in range(7)]
        go.set()
        served.append(answers.get(timeout=60))
    finally:
        go.set()
        for process in processes:
            process.join(timeout=60)
    assert served == ["A-1 old"] * 7 + ["A-1 new"]
    assert calls.value == 1  # fleet-wide
    assert all(process.exitcode == 0 for process in processes)
    entry, fresh = seed.lookup("A-1")
    assert fresh
    assert entry is not None
    assert entry.value == "A-1 new"
    assert raw.get('sp:cache:prices:"A-1":refresh') is None  # released
    close(seed)


def test_another_processs_refresh_serves_stale_or_calls_at_once(
    redis_url: str, clock: FakeClock
) -> None:
    a, b = cache_on(redis_url, clock, name="p"), cache_on(redis_url, clock, name="p")
    origin = Origin()
    assert a.call(origin, "k") == "k-1"
    clock.advance(11)  # stale
    entered, leave = threading.Event(), threading.Event()

    def slow(key: str) -> str:
        entered.set()
        assert leave.wait(30)
        return origin(key)

    refreshing = threading.Thread(target=a.call, args=(slow, "k"))
    refreshing.start()
    try:
        assert entered.wait(30)  # A holds the key's refresh
        other = Origin()
        assert b.call(other, "k") == "k-1"  # B serves the stale value...
        assert b.call(other, "absent") == "absent-1"  # ...and, with none, calls at once
        assert other.calls == 1
    finally:
        leave.set()
        refreshing.join(30)
    assert b.call(Origin(), "k") == "k-2"  # A's refresh landed for everyone
    close(a)
    close(b)


def test_a_claim_won_after_the_refresh_landed_calls_no_origin(
    redis_url: str, clock: FakeClock
) -> None:
    a, b = cache_on(redis_url, clock, name="p"), cache_on(redis_url, clock, name="p")
    origin = Origin()
    a.call(origin, "k")
    clock.advance(11)
    stale, _ = b.lookup("k")  # B read the stale entry...
    assert a.call(origin, "k") == "k-2"  # ...A refreshed it and let go...
    core = b._serve("k", stale, None)  # ...then B, with what it read, goes on
    from stormproof._core.drive import drive

    assert drive(core, origin, ("k",), {}, clock) == "k-2"
    assert origin.calls == 2
    close(a)
    close(b)


# -- Redis hanging, dying and coming back ---------------------------------------------------


def test_a_paused_redis_never_fails_a_call(own_redis_server: RedisServer, clock: FakeClock) -> None:
    events: list[Event] = []
    cache = cache_on(own_redis_server.url, clock, events)
    origin = Origin()
    assert cache.call(origin, "warm") == "warm-1"
    own_redis_server.pause()
    started = time.monotonic()
    try:
        answers = [cache.call(origin, f"k{n}") for n in range(20)]
        warm = cache.call(origin, "warm")
    finally:
        own_redis_server.resume()
    elapsed = time.monotonic() - started
    assert answers == [f"k{n}-{n + 2}" for n in range(20)]  # from the origin
    assert warm == "warm-1"  # from this process's copy
    failures = [e for e in events if isinstance(e, CacheStoreFailed)]
    # One Redis timeout (0.2 s), then Redis is left alone for retry_after: 21 calls
    # cost one timeout, not 21 (the bound on the time is only against a hang).
    assert [(e.operation, type(e.error)) for e in failures] == [
        ("get", redis.exceptions.TimeoutError)
    ]
    assert elapsed < 10
    clock.advance(1.5)  # retry_after: Redis is asked again
    assert cache.call(origin, "k0") == "k0-22"  # the write while paused was dropped
    assert cache.call(origin, "k0") == "k0-22"
    assert cache.store.get("k0") is not None
    close(cache)


def test_a_paused_redis_never_fails_an_async_call(
    own_redis_server: RedisServer, clock: FakeClock
) -> None:
    events: list[Event] = []
    cache = cache_on(own_redis_server.url, clock, events)
    origin = Origin()

    async def main() -> list[str]:
        seen = [await cache.acall(origin.acall, "warm")]
        own_redis_server.pause()
        try:
            seen += [await cache.acall(origin.acall, f"k{n}") for n in range(5)]
            seen.append(await cache.acall(origin.acall, "warm"))
        finally:
            own_redis_server.resume()
        store = cache.store
        assert isinstance(store, RedisCacheStore)
        await store.aclose()
        return seen

    assert asyncio.run(main()) == ["warm-1", "k0-2", "k1-3", "k2-4", "k3-5", "k4-6", "warm-1"]
    assert [e.operation for e in events if isinstance(e, CacheStoreFailed)] == ["get"]
    close(cache)


def test_a_killed_redis_fails_open_and_a_restarted_one_is_used_again(
    own_redis_server: RedisServer, clock: FakeClock
) -> None:
    events: list[Event] = []
    cache = cache_on(own_redis_server.url, clock, events)
    origin = Origin()
    assert cache.call(origin, "a") == "a-1"
    own_redis_server.kill()
    assert cache.call(origin, "b") == "b-2"
    assert cache.call(origin, "a") == "a-1"  # this process's copy
    clock.advance(1.5)
    assert cache.call(origin, "c") == "c-3"  # Redis asked again: still gone
    failures = [e for e in events if isinstance(e, CacheStoreFailed)]
    assert [e.operation for e in failures] == ["get", "get"]
    assert all(isinstance(e.error, redis.exceptions.ConnectionError) for e in failures)
    own_redis_server.restart()  # empty: nothing is saved
    written = False
    for _ in range(3):  # a pooled connection to the dead server may fail once more
        clock.advance(1.5)
        assert cache.call(origin, "d") == "d-4"
        written = cache.store.get("d") is not None
        if written:
            break
    assert written
    assert cache.call(origin, "d") == "d-4"
    close(cache)


def test_a_record_this_process_cannot_read_is_a_miss(
    redis_url: str, raw: Any, clock: FakeClock
) -> None:
    events: list[Event] = []
    cache = cache_on(redis_url, clock, events)
    raw.set('sp:cache:cache:"k"', b"not a record")
    assert cache.call(Origin(), "k") == "k-1"
    failures = [e for e in events if isinstance(e, CacheStoreFailed)]
    assert failures
    assert all(e.operation == "get" for e in failures)
    assert raw.get('sp:cache:cache:"k"').startswith(b"{")  # Redis is still used: not down
    assert cache.call(Origin(), "k") == "k-1"
    close(cache)


# -- clients --------------------------------------------------------------------------------


def test_clients_passed_in_need_short_timeouts_and_no_retries(redis_url: str) -> None:
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    slow = redis.Redis.from_url(redis_url)  # redis-py's defaults: 5 s, 10 retries
    with pytest.raises(ConfigError, match=r"client's socket_timeout must be set, at most 1 s"):
        RedisCacheStore(client=slow)
    no_connect_timeout = redis.Redis.from_url(redis_url, socket_timeout=0.5)
    with pytest.raises(ConfigError, match=r"client's socket_connect_timeout must be set"):
        RedisCacheStore(client=no_connect_timeout)
    short = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}
    retrying = redis.Redis(host="127.0.0.1", port=int(redis_url.split(":")[2][:-2]), **short)
    with pytest.raises(ConfigError, match=r"client's retry must be 0 retries"):
        RedisCacheStore(client=retrying)
    no_timeout = redis.Redis.from_url(redis_url, socket_timeout=None, retry=Retry(NoBackoff(), 0))
    with pytest.raises(ConfigError, match=r"client's socket_timeout"):
        RedisCacheStore(client=no_timeout)
    good = redis.Redis.from_url(redis_url, retry=Retry(NoBackoff(), 0), **short)
    store = RedisCacheStore(client=good)
    store.set("k", CacheEntry("v", time.monotonic() + 10, time.monotonic() + 20))
    entry = store.get("k")
    assert entry is not None
    assert entry.value == "v"
    with pytest.raises(TypeError, match="pass async_client="):
        asyncio.run(store.aget("k"))
    async_slow = redis.asyncio.Redis.from_url(redis_url)
    with pytest.raises(ConfigError, match=r"async_client's socket_timeout"):
        RedisCacheStore(async_client=async_slow)
    for client in (slow, no_connect_timeout, retrying, no_timeout, good):
        client.close()
    asyncio.run(async_slow.aclose())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "url must be a redis:// URL, or client= / async_client="),
        ({"url": "redis://127.0.0.1:1/0?socket_timeout=5"}, "url's socket_timeout must be set"),
        ({"url": "redis://", "lock_ttl": 0}, "lock_ttl must be"),
        ({"url": "redis://", "local_entries": -1}, "local_entries must be an integer >= 0"),
        ({"url": "redis://", "prefix": ""}, "prefix must be a non-empty str"),
        ({"url": "redis://", "serializer": "json"}, "serializer must be a Serializer"),
    ],
)
def test_bad_options(kwargs: dict[str, Any], message: str) -> None:
    url = kwargs.pop("url", None)
    with pytest.raises(ConfigError, match=message):
        RedisCacheStore(url, **kwargs)
