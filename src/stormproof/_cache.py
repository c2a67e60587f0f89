"""Cache: a pull-through cache that keeps answering while the origin is down.

A fresh entry (younger than ``ttl``) is served without calling the origin. Past
``ttl`` the origin is called; if it fails and the entry is within ``ttl +
stale_ttl``, the stale value is served instead (stale-if-error), so a multi-hour
outage of the origin costs freshness, not availability. Concurrent misses for one
key make one origin call (request coalescing), so a returning origin is not
stampeded. Optionally stale values are served at once while one caller (or a
background task) refreshes them, and "not found" outcomes are cached briefly.
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from ._core import events
from ._core.clock import Clock
from ._core.deadline import current as current_deadline
from ._core.errors import ConfigError, DeadlineExceeded
from ._core.events import Event, Listener
from ._core.validate import (
    check_callable,
    check_clock,
    check_exceptions,
    check_int,
    check_name,
    check_number,
    now_function,
)
from ._core.waiting import wait_event, wait_future
from ._policy import Policy, original_call

__all__ = [
    "Cache",
    "CacheEntry",
    "CacheStaleServed",
    "CacheStore",
    "JSONSerializer",
    "MemoryStore",
    "Serializer",
]

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """A cached outcome. Times are instants on the cache's clock."""

    value: Any
    fresh_until: float
    stale_until: float
    error: BaseException | None = None
    """A cached "not found" error, re-raised (as a fresh copy) while the entry is fresh."""


@runtime_checkable
class CacheStore(Protocol):
    """Where a Cache keeps its entries. Implement it to plug in your own."""

    def get(self, key: Hashable) -> CacheEntry | None: ...

    def set(self, key: Hashable, entry: CacheEntry) -> None: ...

    def delete(self, key: Hashable) -> None: ...

    async def aget(self, key: Hashable) -> CacheEntry | None: ...

    async def aset(self, key: Hashable, entry: CacheEntry) -> None: ...

    async def adelete(self, key: Hashable) -> None: ...


class MemoryStore:
    """The in-process store: at most ``max_entries``, least recently used evicted first.

    Values are kept as the objects the origin returned (nothing is serialized), so
    callers must not mutate what the cache hands them. Thread-safe.
    """

    __slots__ = ("_entries", "_lock", "_max")

    def __init__(self, max_entries: int = 10_000) -> None:
        self._max = check_int("max_entries", max_entries, low=1)
        self._entries: OrderedDict[Hashable, CacheEntry] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def max_entries(self) -> int:
        return self._max

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> CacheEntry | None:
        entry = self._entries.get(key)
        if entry is not None:
            try:  # noqa: SIM105  (contextlib.suppress costs more than the lookup)
                self._entries.move_to_end(key)  # atomic; a concurrent delete is harmless
            except KeyError:
                pass
        return entry

    def set(self, key: Hashable, entry: CacheEntry) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def delete(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    async def aget(self, key: Hashable) -> CacheEntry | None:
        return self.get(key)

    async def aset(self, key: Hashable, entry: CacheEntry) -> None:
        self.set(key, entry)

    async def adelete(self, key: Hashable) -> None:
        self.delete(key)

    def __repr__(self) -> str:
        return f"MemoryStore(max_entries={self._max}; {len(self._entries)} entries)"


class Serializer(Protocol):
    """How a shared store turns values into bytes and back. Never pickle: a shared
    store is read by other processes, and unpickling runs code."""

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class JSONSerializer:
    """The default serializer for shared stores: JSON, UTF-8."""

    __slots__ = ()

    def dumps(self, value: Any) -> bytes:
        try:
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"cannot store a {type(value).__name__} as JSON ({error}); pass a "
                "serializer that handles it"
            ) from None

    def loads(self, data: bytes) -> Any:
        return json.loads(data)


@dataclass(frozen=True, slots=True)
class CacheStaleServed(Event):
    """A stale value was served: the origin failed (``reason="error"``), or it is being
    refreshed (``reason="revalidating"``), or the deadline ran out while waiting."""

    kind: ClassVar[str] = "cache.stale_served"
    key: str
    age: float
    reason: str
    error: BaseException | None


class _Flight:
    """One origin call in progress for a key (sync callers wait on ``done``)."""

    __slots__ = ("abandoned", "done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        self.abandoned = False


class _AsyncFlight:
    __slots__ = ("future",)

    def __init__(self) -> None:
        self.future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()


_ABANDONED = object()


class Cache(Policy):
    """A pull-through cache: fresh hits skip the origin, and stale values keep
    answering (within ``stale_ttl``) when the origin fails."""

    __slots__ = (
        "_afflights",
        "_async_store",
        "_background",
        "_clock",
        "_coalesce",
        "_flights",
        "_key",
        "_listeners",
        "_lock",
        "_name",
        "_negative_if",
        "_negative_on",
        "_negative_ttl",
        "_negative_types",
        "_now",
        "_stale_ttl",
        "_store",
        "_swr",
        "_ttl",
    )

    def __init__(
        self,
        ttl: float,
        *,
        stale_ttl: float = 0.0,
        max_entries: int = 10_000,
        negative_ttl: float = 0.0,
        coalesce: bool = True,
        key: Callable[..., Hashable] | None = None,
        store: CacheStore | None = None,
        clock: Clock | None = None,
        stale_while_revalidate: bool = False,
        negative_on: type[Exception]
        | tuple[type[Exception], ...]
        | Callable[[Exception], bool] = (),
        negative_if: Callable[[Any], bool] | None = None,
        name: str | None = None,
        listeners: Iterable[Listener] | None = None,
    ) -> None:
        self._ttl = check_number("ttl", ttl, low=0.0)
        self._stale_ttl = (
            math.inf if stale_ttl == math.inf else check_number("stale_ttl", stale_ttl, low=0.0)
        )
        check_int("max_entries", max_entries, low=1)
        self._negative_ttl = check_number("negative_ttl", negative_ttl, low=0.0)
        self._negative_types, self._negative_on = check_exceptions(
            "negative_on", negative_on, allow_empty=True
        )
        self._negative_if = check_callable(
            "negative_if",
            negative_if,
            optional=True,
            arguments=1,
            requirement="a predicate taking one argument (the result)",
        )
        wants_negative = self._negative_types != () or self._negative_if is not None
        if wants_negative and not self._negative_ttl:
            raise ConfigError(
                "negative_ttl", "> 0 when negative_on or negative_if is set", negative_ttl
            )
        if not isinstance(coalesce, bool):
            raise ConfigError("coalesce", "True or False", coalesce)
        self._coalesce = coalesce
        if not isinstance(stale_while_revalidate, bool):
            raise ConfigError("stale_while_revalidate", "True or False", stale_while_revalidate)
        if stale_while_revalidate and not self._stale_ttl:
            raise ConfigError("stale_ttl", "> 0 when stale_while_revalidate is set", stale_ttl)
        self._swr = stale_while_revalidate
        if key is not None and not callable(key):
            raise ConfigError("key", "a function of the call's arguments", key)
        self._key = key
        if store is None:
            store = MemoryStore(max_entries)
        elif isinstance(store, type) or not isinstance(store, CacheStore):
            raise ConfigError("store", "a CacheStore (get/set/delete, aget/aset/adelete)", store)
        self._store = store
        self._async_store = not isinstance(store, MemoryStore)
        self._clock = check_clock(clock)
        self._now = now_function(self._clock)
        self._name = check_name("name", name, "cache")
        self._listeners = events.check_listeners(listeners)
        self._lock = threading.Lock()
        self._flights: dict[Hashable, _Flight] = {}
        self._afflights: dict[Hashable, _AsyncFlight] = {}
        self._background: set[asyncio.Task[Any]] = set()

    @property
    def name(self) -> str:
        return self._name

    @property
    def store(self) -> CacheStore:
        return self._store

    def __repr__(self) -> str:
        return (
            f"Cache(ttl={self._ttl:g}, stale_ttl={self._stale_ttl:g}, "
            f"negative_ttl={self._negative_ttl:g}, coalesce={self._coalesce}, "
            f"stale_while_revalidate={self._swr}, store={self._store!r}, name={self._name!r})"
        )

    # -- the pure parts: keys, entries, decisions -----------------------------------

    def key_for(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Hashable:
        """The key under which a call of ``fn(*args, **kwargs)`` is cached."""
        fn, args, kwargs = original_call(fn, args, kwargs)
        if self._key is not None:
            key: Hashable = self._key(*args, **kwargs)
        else:
            key = (fn, args, frozenset(kwargs.items())) if kwargs else (fn, args)
        try:
            hash(key)
        except TypeError:
            raise TypeError(
                f"{self._name}: the call's arguments are not hashable, so they cannot be a "
                "cache key; pass key= (a function of the arguments returning a hashable key)"
            ) from None
        return key

    def lookup(self, key: Hashable, now: float | None = None) -> tuple[CacheEntry | None, bool]:
        """The entry for ``key`` that can still be used (fresh, or within its stale
        window), and whether it is fresh. ``(None, False)`` is a miss."""
        entry = self._store.get(key)
        if entry is None:
            return None, False
        if now is None:
            now = self._now()
        if now < entry.fresh_until:
            return entry, True
        if now >= entry.stale_until:
            return None, False
        return entry, False

    def fill(self, key: Hashable, value: Any, now: float | None = None) -> None:
        """The origin answered ``value``: store it."""
        self._store.set(key, self._entry_for(value, self._now() if now is None else now))

    def fallback(
        self, key: Hashable, entry: CacheEntry | None, error: Exception, now: float | None = None
    ) -> Any:
        """The origin failed with ``error``: cache it if it means "not found", serve
        ``entry`` if it is still within its stale window, or re-raise ``error``."""
        if now is None:
            now = self._now()
        negative = self._negative_entry(error, now)
        if negative is not None:
            self._store.set(key, negative)
            raise error
        return self._stale_or_raise(key, entry, error, now)

    def _entry_for(self, value: Any, now: float) -> CacheEntry:
        if self._negative_if is not None and self._negative_if(value):
            until = now + self._negative_ttl
            return CacheEntry(value, until, until)
        fresh = now + self._ttl
        return CacheEntry(value, fresh, fresh + self._stale_ttl)

    def _negative_entry(self, error: Exception, now: float) -> CacheEntry | None:
        types = self._negative_types
        if types == () or not (
            isinstance(error, types) if types is not None else self._negative_on(error)
        ):
            return None
        until = now + self._negative_ttl
        return CacheEntry(None, until, until, error.with_traceback(None))

    def _stale_or_raise(
        self, key: Hashable, entry: CacheEntry | None, error: Exception, now: float
    ) -> Any:
        """The origin failed: serve ``entry`` if it is still within its stale window,
        else let the caller's own error propagate."""
        if entry is None or entry.error is not None or now >= entry.stale_until:
            raise error
        self._stale_served(key, entry, now, "error", error)
        return entry.value

    def _stale_served(
        self, key: Hashable, entry: CacheEntry, now: float, reason: str, error: BaseException | None
    ) -> None:
        if events.active(self._listeners):
            age = now - (entry.fresh_until - self._ttl)
            event = CacheStaleServed(self._name, now, _short_key(key), age, reason, error)
            events.emit(event, self._listeners)

    # -- sync driver ------------------------------------------------------------------

    def _run(self, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        key = self.key_for(fn, args, kwargs)
        entry, fresh = self.lookup(key)
        if fresh:
            return _served(entry)  # type: ignore[no-any-return, arg-type]
        while True:
            result = self._load(key, fn, args, kwargs, entry)
            if result is not _ABANDONED:
                return result  # type: ignore[no-any-return]

    def _fetch(
        self,
        key: Hashable,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        entry: CacheEntry | None,
    ) -> Any:
        """One origin call; stores its outcome; serves stale if it fails."""
        try:
            value = fn(*args, **kwargs)
        except Exception as error:
            return self.fallback(key, entry, error)
        self.fill(key, value)
        return value

    def _load(
        self,
        key: Hashable,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        entry: CacheEntry | None,
    ) -> Any:
        if not self._coalesce:
            return self._fetch(key, fn, args, kwargs, entry)
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            if entry is not None and self._swr:
                self._stale_served(key, entry, self._now(), "revalidating", None)
                return entry.value  # another caller is refreshing it
            return self._follow(key, flight, entry)
        try:
            value = self._fetch(key, fn, args, kwargs, entry)
        except Exception as error:
            flight.error = error
            raise
        except BaseException:
            flight.abandoned = True  # interrupted: the followers try again themselves
            raise
        else:
            flight.value = value
            return value
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()

    def _follow(self, key: Hashable, flight: _Flight, entry: CacheEntry | None) -> Any:
        active = current_deadline()
        if active is None:
            flight.done.wait()
        elif not wait_event(self._clock, flight.done, active.remaining()):
            return self._deadline_passed(key, entry)
        if flight.abandoned:
            return _ABANDONED
        if flight.error is not None:
            raise flight.error
        return flight.value

    def _deadline_passed(self, key: Hashable, entry: CacheEntry | None) -> Any:
        now = self._now()
        if entry is not None and entry.error is None and now < entry.stale_until:
            self._stale_served(key, entry, now, "deadline", None)
            return entry.value
        raise DeadlineExceeded(f"{self._name}: the deadline passed while waiting for the origin")

    # -- async driver -------------------------------------------------------------------

    async def _arun(
        self, fn: Callable[..., Awaitable[R]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> R:
        key = self.key_for(fn, args, kwargs)
        now = self._now()
        store = self._store
        entry = await store.aget(key) if self._async_store else store.get(key)
        if entry is not None:
            if now < entry.fresh_until:
                return _served(entry)  # type: ignore[no-any-return]
            if now >= entry.stale_until:
                entry = None
        while True:
            result = await self._aload(key, fn, args, kwargs, entry)
            if result is not _ABANDONED:
                return result  # type: ignore[no-any-return]

    async def _afetch(
        self,
        key: Hashable,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        entry: CacheEntry | None,
    ) -> Any:
        try:
            value = await fn(*args, **kwargs)
        except Exception as error:
            now = self._now()
            negative = self._negative_entry(error, now)
            if negative is not None:
                await self._aset(key, negative)
                raise
            return self._stale_or_raise(key, entry, error, now)
        await self._aset(key, self._entry_for(value, self._now()))
        return value

    async def _aset(self, key: Hashable, entry: CacheEntry) -> None:
        if self._async_store:
            await self._store.aset(key, entry)
        else:
            self._store.set(key, entry)

    async def _aload(
        self,
        key: Hashable,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        entry: CacheEntry | None,
    ) -> Any:
        if not self._coalesce:
            return await self._afetch(key, fn, args, kwargs, entry)
        flight = self._afflights.get(key)  # one event loop: no lock needed
        if flight is not None:
            if entry is not None and self._swr:
                self._stale_served(key, entry, self._now(), "revalidating", None)
                return entry.value
            return await self._afollow(key, flight, entry)
        flight = self._afflights[key] = _AsyncFlight()
        if entry is not None and self._swr:
            # Serve stale now; refresh in the background (the flight coalesces it).
            task = asyncio.ensure_future(self._alead(key, flight, fn, args, kwargs, entry))
            self._background.add(task)
            task.add_done_callback(self._background_done)
            self._stale_served(key, entry, self._now(), "revalidating", None)
            return entry.value
        return await self._alead(key, flight, fn, args, kwargs, entry)

    async def _alead(
        self,
        key: Hashable,
        flight: _AsyncFlight,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        entry: CacheEntry | None,
    ) -> Any:
        future = flight.future
        try:
            value = await self._afetch(key, fn, args, kwargs, entry)
        except Exception as error:
            future.set_exception(error)
            raise
        except BaseException:
            future.set_result(_ABANDONED)
            raise
        else:
            future.set_result(value)
            return value
        finally:
            if self._afflights.get(key) is flight:
                del self._afflights[key]
            future.exception()  # retrieved, so a failed flight nobody followed logs nothing

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled():
            task.exception()  # a failed refresh is not news: the stale value was served

    async def _afollow(self, key: Hashable, flight: _AsyncFlight, entry: CacheEntry | None) -> Any:
        active = current_deadline()
        timeout = None if active is None else active.remaining()
        if not await wait_future(self._clock, flight.future, timeout):
            return self._deadline_passed(key, entry)
        return flight.future.result()


def _served(entry: CacheEntry) -> Any:
    """A fresh hit: the value, or a fresh copy of a cached "not found" error."""
    if entry.error is None:
        return entry.value
    try:
        error = copy.copy(entry.error)
    except Exception:
        error = entry.error
    raise error.with_traceback(None)


def _short_key(key: Hashable) -> str:
    text = repr(key)
    return text if len(text) <= 200 else text[:197] + "..."
