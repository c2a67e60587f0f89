"""What a process of a fleet runs in the Redis cache tests (spawned: each child has its
own interpreter, its own clients and its own clock). Kept apart from the tests so a
child imports only what it needs."""

from __future__ import annotations

import time
from typing import Any

from stormproof import Cache
from stormproof.cache import RedisCacheStore


class ShiftedClock:
    """The monotonic clock with another origin, as on another host."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def now(self) -> float:
        return time.monotonic() + self.offset

    def sleep(self, seconds: float, /) -> None:
        raise AssertionError("the fleet's processes never sleep")

    async def asleep(self, seconds: float, /) -> None:
        raise AssertionError("the fleet's processes never sleep")


def prices(url: str, clock: Any) -> Cache:
    return Cache(
        60,
        stale_ttl=3600,
        key=lambda sku: sku,
        name="prices",
        clock=clock,
        store=RedisCacheStore(url),
    )


def refresh(url: str, offset: float, calls: Any, go: Any, answers: Any) -> None:
    """Ask for A-1 once. The origin counts its calls fleet-wide, then holds on until
    ``go`` is set (the test sets it once every other process has answered)."""
    cache = prices(url, ShiftedClock(offset))

    def origin(sku: str) -> str:
        with calls.get_lock():
            calls.value += 1
        go.wait(60)
        return f"{sku} new"

    try:
        answers.put(cache.call(origin, "A-1"))
    except BaseException as error:
        answers.put(f"error: {error!r}")
    finally:
        cache.store.close()  # type: ignore[attr-defined]


def look(url: str, offset: float, keys: list[str], answers: Any) -> None:
    """How fresh each key is, seen from a process whose monotonic origin is elsewhere:
    (value, fresh, seconds of freshness left), or None for a miss."""
    clock = ShiftedClock(offset)
    cache = prices(url, clock)
    try:
        seen: list[Any] = []
        for key in keys:
            now = clock.now()
            entry, fresh = cache.lookup(key, now)
            seen.append(None if entry is None else (entry.value, fresh, entry.fresh_until - now))
        answers.put(seen)
    except BaseException as error:
        answers.put(f"error: {error!r}")
    finally:
        cache.store.close()  # type: ignore[attr-defined]
