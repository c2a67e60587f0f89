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
import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from types import CoroutineType
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from ._core import events
from ._core.clock import MONOTONIC, Clock
from ._core.deadline import current as current_deadline
from ._core.drive import CALL, Background, Core, Failure, Io, Wait, Waiter, adrive, drive
from ._core.errors import ConfigError, DeadlineExceeded, fresh_copy
from ._core.events import Event, Listener
from ._core.options import Configured, Options
from ._core.validate import (
    ExceptionFilter,
    check_bool,
    check_callable,
    check_exceptions,
    check_int,
    check_number,
    now_function,
)
from ._policy import Policy, original_call

__all__ = [
    "Cache",
    "CacheEntry",
    "CacheStaleServed",
    "CacheStore",
    "CacheStoreFailed",
    "JSONSerializer",
    "MemoryStore",
    "Serializer",
    "SharedCacheStore",
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


@runtime_checkable
class SharedCacheStore(CacheStore, Protocol):
    """A store that the processes of a fleet share (Redis). A Cache given one hands it
    its name, clock and listeners (``for_cache``) and uses the store it returns; before
    calling the origin for a key it ``claim``s the key's refresh for the fleet: a token
    means "go ahead" (``""``: go ahead, nothing to release), None "another process is
    refreshing it". A token is ``release``d after the origin call."""

    def for_cache(
        self, name: str, clock: Clock, listeners: tuple[Listener, ...]
    ) -> SharedCacheStore: ...

    def claim(self, key: Hashable) -> str | None: ...

    async def aclaim(self, key: Hashable) -> str | None: ...

    def release(self, key: Hashable, token: str) -> None: ...

    async def arelease(self, key: Hashable, token: str) -> None: ...


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


@dataclass(frozen=True, slots=True)
class CacheStoreFailed(Event):
    """A shared store (Redis) failed or was too slow: the cache carried on without it
    (a read was a miss, or the local copy; a write was dropped)."""

    kind: ClassVar[str] = "cache.store_failed"
    operation: str
    key: str
    error: BaseException


class _Flight:
    """One origin call in progress for a key, and who waits for its outcome (threads
    and tasks of any event loop alike, each with a ``Waiter`` of its own). ``thread``
    is the thread the call blocks (None for a refresh in a thread of its own);
    ``in_task`` whether it runs as a task of that thread's event loop."""

    __slots__ = ("abandoned", "done", "error", "in_task", "refresh", "thread", "value", "waiters")

    def __init__(self, thread: int | None, in_task: bool, refresh: bool) -> None:
        self.thread = thread
        self.in_task = in_task
        self.refresh = refresh
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        """A copy of the call's error, without its traceback: each waiter raises a copy
        of its own, and the leader, the original."""
        self.abandoned = False
        self.waiters: list[Waiter] = []

    def can_wait(self, me: int, in_task: bool) -> bool:
        """May a caller on thread ``me`` (waiting in a task, or blocking its thread)
        wait for this call? Not where the wait would block the very thread the call
        needs: a blocking wait on its own thread, or a task under a sync call of it."""
        if self.thread != me:
            return True
        return in_task and self.in_task


_ABANDONED = object()

_MAX_REFRESHES = 8
"""Background refreshes (stale-while-revalidate) one cache runs at a time; beyond them,
stale values are served and the refresh is left to a later caller."""


@dataclass(frozen=True)
class CacheOptions(Options):
    """Cache's options (see ``Cache``), validated when built; ``replace()`` copies.
    ``store=None`` gives each cache built from them a ``MemoryStore`` of its own."""

    ttl: float
    stale_ttl: float = 0.0
    max_entries: int = 10_000
    negative_ttl: float = 0.0
    coalesce: bool = True
    key: Callable[..., Hashable] | None = None
    store: CacheStore | None = None
    clock: Clock = MONOTONIC
    stale_while_revalidate: bool = False
    negative_on: ExceptionFilter = ()
    negative_if: Callable[[Any], bool] | None = None
    name: str = "cache"
    listeners: Iterable[Listener] = ()

    def _check(self) -> None:
        self._set("ttl", check_number("ttl", self.ttl, low=0.0))
        stale_ttl = self.stale_ttl
        if stale_ttl != math.inf:
            stale_ttl = check_number("stale_ttl", stale_ttl, low=0.0)
        self._set("stale_ttl", float(stale_ttl))
        check_int("max_entries", self.max_entries, low=1)
        negative_ttl = check_number("negative_ttl", self.negative_ttl, low=0.0)
        self._set("negative_ttl", negative_ttl)
        negative_types, _ = check_exceptions("negative_on", self.negative_on, allow_empty=True)
        check_callable(
            "negative_if",
            self.negative_if,
            optional=True,
            arguments=1,
            requirement="a predicate taking one argument (the result)",
        )
        if (negative_types != () or self.negative_if is not None) and not negative_ttl:
            raise ConfigError(
                "negative_ttl", "> 0 when negative_on or negative_if is set", self.negative_ttl
            )
        check_bool("coalesce", self.coalesce)
        check_bool("stale_while_revalidate", self.stale_while_revalidate)
        if self.stale_while_revalidate and not self.stale_ttl:
            raise ConfigError("stale_ttl", "> 0 when stale_while_revalidate is set", self.stale_ttl)
        if self.key is not None and not callable(self.key):
            raise ConfigError("key", "a function of the call's arguments", self.key)
        store = self.store
        if store is not None and (isinstance(store, type) or not isinstance(store, CacheStore)):
            raise ConfigError("store", "a CacheStore (get/set/delete, aget/aset/adelete)", store)


_D = CacheOptions(ttl=0.0)
"""Cache's defaults, where its constructor reads them."""


class Cache(Policy, Configured[CacheOptions]):
    """A pull-through cache: fresh hits skip the origin, and stale values keep
    answering (within ``stale_ttl``) when the origin fails."""

    options_type = CacheOptions

    __slots__ = (
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
        "_options",
        "_refreshing",
        "_shared",
        "_stale_ttl",
        "_store",
        "_swr",
        "_ttl",
    )

    def __init__(
        self,
        ttl: float,
        *,
        stale_ttl: float = _D.stale_ttl,
        max_entries: int = _D.max_entries,
        negative_ttl: float = _D.negative_ttl,
        coalesce: bool = _D.coalesce,
        key: Callable[..., Hashable] | None = _D.key,
        store: CacheStore | None = _D.store,
        clock: Clock = _D.clock,
        stale_while_revalidate: bool = _D.stale_while_revalidate,
        negative_on: ExceptionFilter = _D.negative_on,
        negative_if: Callable[[Any], bool] | None = _D.negative_if,
        name: str = _D.name,
        listeners: Iterable[Listener] = _D.listeners,
    ) -> None:
        self._configure(
            CacheOptions(
                ttl=ttl,
                stale_ttl=stale_ttl,
                max_entries=max_entries,
                negative_ttl=negative_ttl,
                coalesce=coalesce,
                key=key,
                store=store,
                clock=clock,
                stale_while_revalidate=stale_while_revalidate,
                negative_on=negative_on,
                negative_if=negative_if,
                name=name,
                listeners=listeners,
            )
        )

    def _configure(self, options: CacheOptions) -> None:
        """Precompute what every call reads from the options; an empty cache (a new
        ``MemoryStore`` unless the options name a store of their own)."""
        self._options = options
        self._ttl = options.ttl
        self._stale_ttl = options.stale_ttl
        self._negative_ttl = options.negative_ttl
        self._negative_types, self._negative_on = check_exceptions(
            "negative_on", options.negative_on, allow_empty=True
        )
        self._negative_if = options.negative_if
        self._coalesce = options.coalesce
        self._swr = options.stale_while_revalidate
        self._key = options.key
        self._clock = options.clock
        self._now = now_function(self._clock)
        self._name = options.name
        self._listeners = events.check_listeners(options.listeners)
        store = MemoryStore(options.max_entries) if options.store is None else options.store
        self._shared: SharedCacheStore | None = None
        if isinstance(store, SharedCacheStore):  # the fleet's store, for this cache
            store = self._shared = store.for_cache(self._name, self._clock, self._listeners)
        self._store = store
        self._async_store = not isinstance(store, MemoryStore)
        self._lock = threading.Lock()
        self._flights: dict[Hashable, _Flight] = {}
        self._refreshing = 0
        self._background: set[asyncio.Future[Any]] = set()

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
        return self._usable(self._store.get(key), self._now() if now is None else now)

    @staticmethod
    def _usable(entry: CacheEntry | None, now: float) -> tuple[CacheEntry | None, bool]:
        if entry is None or now >= entry.stale_until:
            return None, False
        return entry, now < entry.fresh_until

    def fill(self, key: Hashable, value: Any, now: float | None = None) -> None:
        """The origin answered ``value``: store it."""
        self._store.set(key, self._entry_for(value, self._now() if now is None else now))

    def fallback(
        self, key: Hashable, entry: CacheEntry | None, error: Exception, now: float | None = None
    ) -> Any:
        """The origin failed with ``error``: cache it if it means "not found", serve
        ``entry`` if it is still within its stale window, or re-raise ``error``."""
        stale = self._after_error(key, entry, error, self._now() if now is None else now)
        if stale is not None:
            return stale.value
        try:
            raise error
        finally:
            del error  # no cycle: its traceback holds this frame

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
        # A copy: the caller gets the origin's own error, its traceback untouched.
        return CacheEntry(None, until, until, fresh_copy(error).with_traceback(None))

    def _after_error(
        self, key: Hashable, entry: CacheEntry | None, error: Exception, now: float
    ) -> CacheEntry | None:
        """The origin failed with ``error``: store it if it means "not found" (sync
        stores; async ones through ``_aafter_error``). Returns ``entry`` if it may be
        served stale (and tells the listeners), or None: the error propagates."""
        negative = self._negative_entry(error, now)
        if negative is not None:
            self._store.set(key, negative)
            return None
        return self._stale_for(key, entry, error, now)

    def _stale_for(
        self, key: Hashable, entry: CacheEntry | None, error: Exception, now: float
    ) -> CacheEntry | None:
        """``entry``, if it may be served now that the origin failed."""
        if entry is None or entry.error is not None or now >= entry.stale_until:
            return None
        self._stale_served(key, entry, now, "error", error)
        return entry

    def _stale_served(
        self, key: Hashable, entry: CacheEntry, now: float, reason: str, error: BaseException | None
    ) -> None:
        if events.active(self._listeners):
            age = now - (entry.fresh_until - self._ttl)
            event = CacheStaleServed(self._name, now, _short_key(key), age, reason, error)
            events.emit(event, self._listeners)

    # -- coalescing: one origin call per key, for threads and tasks of any loop -----

    def _join(self, key: Hashable, in_task: bool, refresh: bool) -> tuple[_Flight | None, bool]:
        """The call in progress for ``key`` and whether this caller leads it (makes
        the origin call). ``(None, False)``: no coalescing here: the caller cannot wait
        for the call in progress without blocking it, or (``refresh``) the cache
        already runs as many background refreshes as it may."""
        me = threading.get_ident()
        with self._lock:
            flight = self._flights.get(key)
            if flight is not None:
                return (flight, False) if flight.can_wait(me, in_task) else (None, False)
            if refresh:
                if self._refreshing >= _MAX_REFRESHES:
                    return None, False
                self._refreshing += 1
            owner = None if refresh and not in_task else me
            flight = self._flights[key] = _Flight(owner, in_task, refresh)
            return flight, True

    def _land(
        self,
        key: Hashable,
        flight: _Flight,
        value: Any = None,
        error: BaseException | None = None,
        abandoned: bool = False,
    ) -> None:
        """The call ended: hand its outcome to every waiter, on their own loops."""
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]
            if flight.refresh:
                self._refreshing -= 1
            flight.value = value
            flight.error = None if error is None else fresh_copy(error).with_traceback(None)
            flight.abandoned = abandoned
            waiters, flight.waiters = flight.waiters, []
            flight.done.set()
        for waiter in waiters:
            waiter.wake()

    def _waiter(self, flight: _Flight, loop: asyncio.AbstractEventLoop | None) -> Waiter | None:
        """A waiter for ``flight``'s outcome (on ``loop``, for a task), or None if the
        outcome is already there."""
        with self._lock:
            if flight.done.is_set():
                return None
            waiter = Waiter(loop)
            flight.waiters.append(waiter)
            return waiter

    def _outcome(self, flight: _Flight) -> Any:
        """What a waiter gets: the value, a copy of the error of its own, or
        ``_ABANDONED`` (the leader was interrupted: try again)."""
        if flight.abandoned:
            return _ABANDONED
        if flight.error is not None:
            error = fresh_copy(flight.error)
            try:
                raise error
            finally:
                del error
        return flight.value

    def _deadline_passed(self, key: Hashable, entry: CacheEntry | None) -> Any:
        now = self._now()
        if entry is not None and entry.error is None and now < entry.stale_until:
            self._stale_served(key, entry, now, "deadline", None)
            return entry.value
        raise DeadlineExceeded(f"{self._name}: the deadline passed while waiting for the origin")

    def _serve_stale(self, key: Hashable, entry: CacheEntry) -> Any:
        """Stale-while-revalidate: ``entry`` at once, while it is being refreshed."""
        self._stale_served(key, entry, self._now(), "revalidating", None)
        return entry.value

    # -- the decisions of a call past its fresh hit ---------------------------------

    def _serve(
        self, key: Hashable, entry: CacheEntry | None, loop: asyncio.AbstractEventLoop | None
    ) -> Core:
        """A call that found no fresh entry (``entry``: a stale one, or None), made by a
        task of ``loop``, or by a thread (``loop`` None): coalesced with the call in
        progress for its key, or the origin's call, or a stale value while a refresh
        runs behind it."""
        in_task = loop is not None
        while True:
            if not self._coalesce:
                return (yield from self._origin(key, entry))
            revalidate = entry is not None and self._swr
            flight, leader = self._join(key, in_task, revalidate)
            if revalidate:
                assert entry is not None
                if leader:
                    assert flight is not None
                    yield Background(self._lead(key, flight, entry), self._background_started)
                return self._serve_stale(key, entry)
            if flight is None:
                return (yield from self._origin(key, entry))
            if leader:
                return (yield from self._lead(key, flight, entry))
            waiter = self._waiter(flight, loop)
            if waiter is not None:
                active = current_deadline()
                woken = yield Wait(waiter, None if active is None else active.remaining())
                if not woken:
                    return self._deadline_passed(key, entry)
            outcome = self._outcome(flight)
            if outcome is not _ABANDONED:
                return outcome
            # The caller making the call was interrupted: this one makes it instead.

    def _origin(self, key: Hashable, entry: CacheEntry | None, refresh: bool = False) -> Core:
        """One origin call (see ``_call_origin``); with a shared store, one for the
        fleet: the process that claims the key's refresh calls the origin, the others
        serve ``entry`` stale, or (nothing to serve) call the origin at once. A
        background ``refresh`` that finds the key claimed just ends (its caller was
        served already)."""
        shared = self._shared
        if shared is None:
            return (yield from self._call_origin(key, entry))
        token = yield Io(shared.claim, shared.aclaim, (key,))
        if token is None:  # another process is refreshing the key
            if entry is not None and entry.error is None:
                return entry.value if refresh else self._serve_stale(key, entry)
            return (yield from self._call_origin(key, entry))
        if token:  # claimed: the refresh of the process that held it may have landed
            latest = yield Io(shared.get, shared.aget, (key,))
            latest, fresh = self._usable(latest, self._now())
            if fresh:
                assert latest is not None
                yield Io(shared.release, shared.arelease, (key, token))
                if latest.error is None:
                    return latest.value
                return Failure(fresh_copy(latest.error))  # type: ignore[arg-type]
            if latest is not None:
                entry = latest
        outcome = yield from self._call_origin(key, entry)
        if token:
            yield Io(shared.release, shared.arelease, (key, token))
        return outcome

    def _call_origin(self, key: Hashable, entry: CacheEntry | None) -> Core:
        """One origin call: its value is stored; a failure is cached if it means "not
        found", answered by ``entry`` if it may be served stale, or the call's outcome."""
        outcome = yield CALL
        now = self._now()
        if type(outcome) is Failure:
            error = outcome.error
            negative = self._negative_entry(error, now)
            if negative is not None:
                yield from self._store_entry(key, negative)
                return outcome
            stale = self._stale_for(key, entry, error, now)
            return outcome if stale is None else stale.value
        if type(outcome) is CoroutineType:  # never cache a coroutine: it can be awaited once
            return outcome  # (the sync driver refuses it: an async function's result)
        yield from self._store_entry(key, self._entry_for(outcome, now))
        return outcome

    def _store_entry(self, key: Hashable, entry: CacheEntry) -> Core:
        if self._async_store:
            yield Io(self._store.set, self._store.aset, (key, entry))
        else:
            self._store.set(key, entry)

    def _lead(self, key: Hashable, flight: _Flight, entry: CacheEntry | None) -> Core:
        """The origin call that the callers of ``flight`` share."""
        try:
            outcome = yield from self._origin(key, entry, flight.refresh)
        except BaseException:
            self._land(key, flight, abandoned=True)  # interrupted: a waiter takes over
            raise
        if type(outcome) is Failure:
            self._land(key, flight, error=outcome.error)
        else:
            self._land(key, flight, value=outcome)
        return outcome

    def _background_started(self, task: asyncio.Future[Any]) -> None:
        self._background.add(task)  # held until done: a task nobody holds may vanish
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Future[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled():
            task.exception()  # a failed refresh is not news: the stale value was served

    # -- drivers ---------------------------------------------------------------------------

    def _run(self, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        key = self.key_for(fn, args, kwargs)
        entry, fresh = self.lookup(key)
        if fresh:
            return _served(entry)  # type: ignore[no-any-return, arg-type]
        return drive(self._serve(key, entry, None), fn, args, kwargs, self._clock)  # type: ignore[no-any-return]

    async def _arun(
        self, fn: Callable[..., Awaitable[R]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> R:
        key = self.key_for(fn, args, kwargs)
        store = self._store
        entry = await store.aget(key) if self._async_store else store.get(key)
        entry, fresh = self._usable(entry, self._now())
        if fresh:
            return _served(entry)  # type: ignore[no-any-return, arg-type]
        core = self._serve(key, entry, asyncio.get_running_loop())
        return await adrive(core, fn, args, kwargs, self._clock)  # type: ignore[no-any-return]

    # -- background refreshes -------------------------------------------------------------

    def wait_refreshes(self, timeout: float | None = None) -> bool:
        """Block until the background refreshes running now have ended (at most
        ``timeout`` real seconds); True if they have. For tests and shutdown."""
        with self._lock:
            refreshes = [flight for flight in self._flights.values() if flight.refresh]
        deadline_at = None if timeout is None else time.monotonic() + timeout
        for flight in refreshes:
            left = None if deadline_at is None else max(0.0, deadline_at - time.monotonic())
            if not flight.done.wait(left):
                return False
        return True

    async def await_refreshes(self) -> None:
        """Wait until the background refreshes running now have ended (async code)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            refreshes = [flight for flight in self._flights.values() if flight.refresh]
        futures = []
        for flight in refreshes:
            waiter = self._waiter(flight, loop)
            if waiter is not None:
                assert waiter.future is not None
                futures.append(waiter.future)
        if futures:
            await asyncio.wait(futures)


def _served(entry: CacheEntry) -> Any:
    """A fresh hit: the value, or a fresh copy of a cached "not found" error."""
    if entry.error is None:
        return entry.value
    error = fresh_copy(entry.error)
    try:
        raise error
    finally:
        del error


def _short_key(key: Hashable) -> str:
    text = repr(key)
    return text if len(text) <= 200 else text[:197] + "..."
