"""RedisCacheStore: a Cache's entries in Redis, shared by every process of a fleet.

An entry is one Redis string under ``sp:cache:<cache name>:<key>``: a JSON header
(``fresh_until``, ``stale_until`` as wall-clock seconds, and a cached "not found"
error as its type, arguments and attributes), a newline, and the value as the
serializer writes it (JSON by default; never pickle). Redis expires the string at
``stale_until`` (PX). A Cache's times are on its own clock (monotonic by default,
whose origin differs from process to process), so the store converts them to the
wall clock when it writes and back when it reads.

One process refreshes a key for the fleet: it holds ``...:<key>:refresh`` (SET NX PX,
at most ``lock_ttl``), released by compare-and-delete. Redis slow or gone never
reaches the caller: a read is answered by this process's local copy (or is a miss), a
write is kept locally and dropped for Redis, and Redis is left alone for
``retry_after`` seconds before it is tried again; a ``cache.store_failed`` event (and
a warning on the ``stormproof`` log) says so.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import math
import secrets
import sys
import threading
import time
import types
import weakref
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

from ._cache import (
    CacheEntry,
    CacheStoreFailed,
    JSONSerializer,
    MemoryStore,
    Serializer,
    SharedCacheStore,
)
from ._core import events
from ._core.clock import MONOTONIC, Clock
from ._core.errors import ConfigError
from ._core.events import Listener
from ._core.validate import check_int, check_number

if TYPE_CHECKING:
    import redis
    import redis.asyncio

__all__ = ["RedisCacheStore", "key_text"]

_log = logging.getLogger("stormproof")

URL_TIMEOUT = 0.2
"""Socket and connect timeouts of the clients built from a URL (seconds)."""

MAX_TIMEOUT = 1.0
"""The longest socket timeout a client passed in may have (seconds)."""

_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)
"""Compare-and-delete: a process whose lock expired never deletes another's."""

_REFRESH = ":refresh"


class _Connection:
    """The clients one store and its per-cache views share: built from the URL (a sync
    client, and an async one per event loop: an asyncio client belongs to its loop),
    or the ones passed in."""

    __slots__ = ("async_client", "client", "lock", "loop_clients", "url")

    def __init__(
        self,
        url: str | None,
        client: redis.Redis | None,
        async_client: redis.asyncio.Redis | None,
    ) -> None:
        self.url = url
        self.client = client
        self.async_client = async_client
        self.lock = threading.Lock()
        self.loop_clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, redis.asyncio.Redis
        ] = weakref.WeakKeyDictionary()

    def sync(self) -> redis.Redis:
        client = self.client
        if client is not None:
            return client
        if self.url is None:
            raise TypeError(
                "RedisCacheStore was given async_client= only: pass client= (or a URL) "
                "to use it from sync code"
            )
        with self.lock:
            if self.client is None:
                redis = _redis()
                built = redis.Redis.from_url(self.url, **_url_options(redis.retry.Retry))
                self.client = _check_client("url", built)
            return self.client

    def asynchronous(self) -> redis.asyncio.Redis:
        client = self.async_client
        if client is not None:
            return client
        if self.url is None:
            raise TypeError(
                "RedisCacheStore was given client= only: pass async_client= (or a URL) "
                "to use it from async code"
            )
        loop = asyncio.get_running_loop()
        with self.lock:
            client = self.loop_clients.get(loop)
            if client is None:
                redis = _redis()
                built = redis.asyncio.Redis.from_url(
                    self.url, **_url_options(redis.asyncio.retry.Retry)
                )
                client = self.loop_clients[loop] = _check_client("url", built)
            return client

    def close(self) -> None:
        """Close the sync client built from the URL (clients passed in are the caller's)."""
        if self.url is None:
            return
        with self.lock:
            client, self.client = self.client, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close this event loop's client built from the URL."""
        if self.url is None:
            return
        with self.lock:
            client = self.loop_clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()


def _redis() -> Any:
    """redis-py (the ``redis`` extra), imported when a store first needs a client."""
    try:
        import redis  # noqa: PLC0415  (an optional dependency)
        import redis.asyncio  # noqa: PLC0415
        import redis.asyncio.retry  # noqa: PLC0415
        import redis.backoff  # noqa: PLC0415
        import redis.retry  # noqa: PLC0415
    except ImportError:
        raise ImportError(
            "RedisCacheStore needs redis-py: pip install 'stormproof[redis]'"
        ) from None
    return redis


def _url_options(retry: Callable[..., Any]) -> dict[str, Any]:
    return {
        "socket_timeout": URL_TIMEOUT,
        "socket_connect_timeout": URL_TIMEOUT,
        "retry": retry(_redis().backoff.NoBackoff(), 0),
    }


def _check_client(parameter: str, client: Any) -> Any:
    """``client``, if a slow or absent Redis cannot hold up a caller for long: socket
    and connect timeouts set and at most ``MAX_TIMEOUT``, and no retries."""
    try:
        timeout, connect, retries = _settings(client)
    except AttributeError:
        raise ConfigError(parameter, "a redis-py client (redis.Redis)", client) from None
    for setting, value in (("socket_timeout", timeout), ("socket_connect_timeout", connect)):
        if not isinstance(value, (int, float)) or not 0 < value <= MAX_TIMEOUT:
            raise ConfigError(
                f"{parameter}'s {setting}",
                f"set, at most {MAX_TIMEOUT:g} s (a slow Redis must not hold up the cache)",
                value,
            )
    if retries:
        raise ConfigError(
            f"{parameter}'s retry",
            "0 retries (the cache falls back at once; a retry only delays the caller)",
            retries,
        )
    return client


def _settings(client: Any) -> tuple[Any, Any, int]:
    """A client's socket timeout, connect timeout and retries, as its connections will
    have them (redis-py fills in defaults when it makes a connection: one is made here,
    never connected, to read them)."""
    pool = client.connection_pool
    options = pool.connection_kwargs
    try:
        probe = pool.connection_class(**options)
    except Exception:  # a pool of another kind: what its options say
        timeout = options.get("socket_timeout")
        retry = options.get("retry")
        retries = 0 if retry is None else retry.get_retries()
        return timeout, options.get("socket_connect_timeout", timeout), retries
    return probe.socket_timeout, probe.socket_connect_timeout, probe.retry.get_retries()


# -- keys ---------------------------------------------------------------------------------


def key_text(key: Hashable) -> str:
    """A cache key's stable string form: the same in every process and run, and
    different for different keys. ``None``, bools, ints, floats, str and bytes, tuples
    and frozensets of them, functions and classes (by module and qualified name) and
    enum members have one; anything else is a ``TypeError``."""
    kind = type(key)
    if kind is str:
        return json.dumps(key, ensure_ascii=False)
    if key is None or kind is bool:
        return json.dumps(key)
    if kind is int:
        return str(key)
    if kind is float:
        return repr(key)
    if kind is tuple:
        return "[" + ",".join(key_text(item) for item in key) + "]"  # type: ignore[attr-defined]
    if kind is frozenset:
        return "{" + ",".join(sorted(key_text(item) for item in key)) + "}"  # type: ignore[attr-defined]
    if kind is bytes:
        return "b" + json.dumps(key.decode("latin-1"))  # type: ignore[attr-defined]
    if isinstance(key, enum.Enum):
        return f"<{_qualified(type(key))}.{key.name}>"
    if isinstance(key, (type, types.FunctionType, types.BuiltinFunctionType)):
        return f"<{_qualified(key)}>"
    raise TypeError(
        f"a cache key holding a {kind.__name__} has no stable string form to name it in "
        "Redis; pass key= to the Cache (a function of the call's arguments returning str, "
        "int, or tuples of them)"
    )


def _qualified(thing: Any) -> str:
    name = f"{thing.__module__}.{thing.__qualname__}"
    if "<lambda>" in name:
        raise TypeError(
            f"a cache key holding a lambda ({name}) has no stable string form to name it in "
            "Redis (lambdas share one name); use a def, or pass key= to the Cache"
        )
    return name


def _short_key(key: Hashable) -> str:
    text = repr(key)
    return text if len(text) <= 200 else text[:197] + "..."


# -- entries ------------------------------------------------------------------------------


def _exactly_json(value: Any) -> bool:
    try:
        return bool(json.loads(json.dumps(value)) == value)
    except (TypeError, ValueError):
        return False


def _error_spec(error: BaseException) -> dict[str, Any]:
    """What rebuilds a cached "not found" error in another process: its type (by
    module and qualified name), its arguments and the attributes JSON holds exactly."""
    kind = type(error)
    args = list(error.args)
    if not _exactly_json(args):
        args = [str(error)]
    attributes = {name: value for name, value in vars(error).items() if _exactly_json(value)}
    return {"type": f"{kind.__module__}:{kind.__qualname__}", "args": args, "attrs": attributes}


def _rebuilt_error(spec: Any) -> BaseException:
    """The error ``_error_spec`` described. Its type is looked up among the modules
    this process has imported (data read from Redis never imports anything); a type
    not found is a ``LookupError``."""
    module_name, _, qualname = spec["type"].partition(":")
    found: Any = sys.modules.get(module_name)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if not (isinstance(found, type) and issubclass(found, Exception)):
        raise LookupError(f"no exception type {spec['type']} in this process")
    args = tuple(spec["args"])
    error = found.__new__(found, *args)
    error.args = args
    error.__dict__.update(spec["attrs"])
    return error


class RedisCacheStore:
    """A ``CacheStore`` in Redis, shared by every process of a fleet: pass it as a
    Cache's ``store=``. Give it a URL (clients with 0.2 s timeouts and no retries are
    built from it, the async one per event loop) or redis-py clients of your own
    (``client=`` for sync code, ``async_client=`` a ``redis.asyncio.Redis`` for async
    code; their timeouts must be set, at most 1 s, with no retries).

    Values are stored as JSON (``serializer=`` for another format; never pickle); a
    value JSON would not give back as it was (a tuple, a dict with int keys, a set) is
    a ``TypeError`` at ``set``. Times are stored as wall-clock seconds (``wall``,
    ``time.time``): hosts' clocks must agree (NTP) to well within ``ttl``. One process
    refreshes a key at a time (a lock of at most ``lock_ttl`` seconds). If Redis
    fails or is slow, the cache carries on with this process's last ``local_entries``
    entries and skips Redis for ``retry_after`` seconds (on the cache's clock)."""

    __slots__ = (
        "_clock",
        "_conn",
        "_down_until",
        "_exact_json",
        "_listeners",
        "_local",
        "_local_entries",
        "_lock_ms",
        "_lock_ttl",
        "_name",
        "_prefix",
        "_retry_after",
        "_serializer",
        "_wall",
    )

    def __init__(
        self,
        url: str | None = None,
        *,
        client: redis.Redis | None = None,
        async_client: redis.asyncio.Redis | None = None,
        serializer: Serializer | None = None,
        lock_ttl: float = 10.0,
        local_entries: int = 1000,
        retry_after: float = 1.0,
        prefix: str = "sp:cache",
        wall: Callable[[], float] = time.time,
    ) -> None:
        if url is None and client is None and async_client is None:
            raise ConfigError("url", "a redis:// URL, or client= / async_client=", url)
        if url is not None:
            if client is not None or async_client is not None:
                raise ConfigError("url", "None when client= or async_client= is given", url)
            if not isinstance(url, str):
                raise ConfigError("url", "a redis:// URL (a str)", url)
        if client is not None:
            _check_client("client", client)
        if async_client is not None:
            _check_client("async_client", async_client)
        if serializer is None:
            serializer = JSONSerializer()
        elif not (
            callable(getattr(serializer, "dumps", None))
            and callable(getattr(serializer, "loads", None))
        ):
            raise ConfigError("serializer", "a Serializer (dumps, loads)", serializer)
        if not isinstance(prefix, str) or not prefix:
            raise ConfigError("prefix", "a non-empty str", prefix)
        if not callable(wall):
            raise ConfigError("wall", "a function returning wall-clock seconds", wall)
        self._conn = _Connection(url, client, async_client)
        if url is not None:
            self._conn.sync()  # no connection yet: the URL's options are checked now
        self._serializer = serializer
        self._exact_json = type(serializer) is JSONSerializer
        self._lock_ttl = check_number("lock_ttl", lock_ttl, low=0.001, high=3600.0)
        self._lock_ms = math.ceil(self._lock_ttl * 1000)
        self._local_entries = check_int("local_entries", local_entries, low=0)
        self._retry_after = check_number("retry_after", retry_after, low=0.0, high=3600.0)
        self._prefix = prefix
        self._wall = wall
        self._bind("cache", MONOTONIC, ())

    def _bind(self, name: str, clock: Clock, listeners: tuple[Listener, ...]) -> None:
        self._name = name
        self._clock = clock
        self._listeners = listeners
        self._local = MemoryStore(self._local_entries) if self._local_entries else None
        self._down_until: float | None = None

    def for_cache(
        self, name: str, clock: Clock, listeners: tuple[Listener, ...]
    ) -> RedisCacheStore:
        """This store for one Cache: its keys under the cache's name, its times on the
        cache's clock, its failures told to the cache's listeners. Shares the clients."""
        view = object.__new__(RedisCacheStore)
        for slot in RedisCacheStore.__slots__:
            setattr(view, slot, getattr(self, slot))
        view._bind(name, clock, listeners)
        return view

    @property
    def name(self) -> str:
        return self._name

    def redis_key(self, key: Hashable) -> str:
        """The Redis key of a cache key: ``<prefix>:<cache name>:<key_text(key)>``."""
        try:
            text = key_text(key)
        except TypeError as error:
            raise TypeError(f"{self._name}: {error}") from None
        return f"{self._prefix}:{self._name}:{text}"

    def __repr__(self) -> str:
        where = self._conn.url if self._conn.url is not None else "clients"
        return f"RedisCacheStore({where!r}, name={self._name!r})"

    # -- entries <-> records ----------------------------------------------------------

    def _record(self, key: Hashable, entry: CacheEntry) -> tuple[bytes, int | None] | None:
        """The Redis string for ``entry`` and its time to live in ms (None: no expiry),
        or None if the entry has expired already."""
        now = self._clock.now()
        left = entry.stale_until - now
        if left <= 0:
            return None
        wall = self._wall()
        header: dict[str, Any] = {
            "fresh_until": _shift(entry.fresh_until, wall - now),
            "stale_until": _shift(entry.stale_until, wall - now),
            "error": None if entry.error is None else _error_spec(entry.error),
        }
        value = entry.value
        try:
            data = self._serializer.dumps(value)
        except TypeError as error:
            raise TypeError(f"{self._name}: key {_short_key(key)}: {error}") from None
        if self._exact_json and not _same_after(data, value):
            raise TypeError(
                f"{self._name}: key {_short_key(key)}: JSON would not give back the "
                f"{type(value).__name__} cached as it was (tuples come back as lists, dict "
                "keys as strings); cache JSON's own types, or pass a serializer"
            )
        record = json.dumps(header, separators=(",", ":")).encode() + b"\n" + data
        return record, None if math.isinf(left) else max(1, math.ceil(left * 1000))

    def _entry(self, record: bytes) -> CacheEntry:
        header_line, _, data = record.partition(b"\n")
        header = json.loads(header_line)
        offset = self._clock.now() - self._wall()
        error_spec = header["error"]
        error = None if error_spec is None else _rebuilt_error(error_spec)
        value = None if error is not None else self._serializer.loads(data)
        return CacheEntry(
            value,
            _shift(float(header["fresh_until"]), offset),
            _shift(float(header["stale_until"]), offset),
            error,
        )

    # -- failing open -----------------------------------------------------------------

    def _redis_up(self) -> bool:
        """Whether to ask Redis: not within ``retry_after`` of its last failure."""
        down_until = self._down_until
        if down_until is None:
            return True
        if self._clock.now() < down_until:
            return False
        self._down_until = None
        return True

    def _failed(self, operation: str, key: Hashable, error: Exception, down: bool = True) -> None:
        now = self._clock.now()
        if down:
            self._down_until = now + self._retry_after
        _log.warning(
            "stormproof: cache %r: Redis %s failed (%s: %s); carrying on without it",
            self._name,
            operation,
            type(error).__name__,
            error,
        )
        if events.active(self._listeners):
            event = CacheStoreFailed(self._name, now, operation, _short_key(key), error)
            events.emit(event, self._listeners)

    def _local_get(self, key: Hashable) -> CacheEntry | None:
        return None if self._local is None else self._local.get(key)

    def _received(self, key: Hashable, record: bytes | str | None) -> CacheEntry | None:
        local = self._local
        if isinstance(record, str):  # a client with decode_responses=True
            record = record.encode()
        if record is None:
            if local is not None:
                local.delete(key)
            return None
        try:
            entry = self._entry(record)
        except Exception as error:  # a record this process cannot read: a miss
            self._failed("get", key, error, down=False)
            return None
        if local is not None:
            local.set(key, entry)
        return entry

    # -- the CacheStore protocol: sync ------------------------------------------------

    def get(self, key: Hashable) -> CacheEntry | None:
        name = self.redis_key(key)
        if self._redis_up():
            client = self._conn.sync()
            try:
                record = client.get(name)
            except Exception as error:
                self._failed("get", key, error)
            else:
                return self._received(key, record)
        return self._local_get(key)

    def set(self, key: Hashable, entry: CacheEntry) -> None:
        name = self.redis_key(key)
        record = self._record(key, entry)
        if self._local is not None:
            self._local.set(key, entry)
        if record is None or not self._redis_up():
            return
        client = self._conn.sync()
        try:
            client.set(name, record[0], px=record[1])
        except Exception as error:
            self._failed("set", key, error)

    def delete(self, key: Hashable) -> None:
        name = self.redis_key(key)
        if self._local is not None:
            self._local.delete(key)
        if not self._redis_up():
            return
        client = self._conn.sync()
        try:
            client.delete(name)
        except Exception as error:
            self._failed("delete", key, error)

    def claim(self, key: Hashable) -> str | None:
        """Claim the refresh of ``key`` for the fleet: a token (release it when done),
        None if another process holds it, or ``""`` (go ahead: Redis is unavailable)."""
        name = self.redis_key(key) + _REFRESH
        if not self._redis_up():
            return ""
        client = self._conn.sync()
        token = secrets.token_hex(8)
        try:
            claimed = client.set(name, token, nx=True, px=self._lock_ms)
        except Exception as error:
            self._failed("claim", key, error)
            return ""
        return token if claimed else None

    def release(self, key: Hashable, token: str) -> None:
        """Release a claim, if it is still this one's (its lock may have expired)."""
        if not token:
            return
        name = self.redis_key(key) + _REFRESH
        if not self._redis_up():
            return  # the lock expires by itself
        client = self._conn.sync()
        try:
            client.eval(_RELEASE, 1, name, token)
        except Exception as error:
            self._failed("release", key, error)

    def close(self) -> None:
        """Close the sync client built from the URL (clients passed in are yours)."""
        self._conn.close()

    # -- the CacheStore protocol: async -----------------------------------------------

    async def aget(self, key: Hashable) -> CacheEntry | None:
        name = self.redis_key(key)
        if self._redis_up():
            client = self._conn.asynchronous()
            try:
                record = await client.get(name)
            except Exception as error:
                self._failed("get", key, error)
            else:
                return self._received(key, record)
        return self._local_get(key)

    async def aset(self, key: Hashable, entry: CacheEntry) -> None:
        name = self.redis_key(key)
        record = self._record(key, entry)
        if self._local is not None:
            self._local.set(key, entry)
        if record is None or not self._redis_up():
            return
        client = self._conn.asynchronous()
        try:
            await client.set(name, record[0], px=record[1])
        except Exception as error:
            self._failed("set", key, error)

    async def adelete(self, key: Hashable) -> None:
        name = self.redis_key(key)
        if self._local is not None:
            self._local.delete(key)
        if not self._redis_up():
            return
        client = self._conn.asynchronous()
        try:
            await client.delete(name)
        except Exception as error:
            self._failed("delete", key, error)

    async def aclaim(self, key: Hashable) -> str | None:
        name = self.redis_key(key) + _REFRESH
        if not self._redis_up():
            return ""
        client = self._conn.asynchronous()
        token = secrets.token_hex(8)
        try:
            claimed = await client.set(name, token, nx=True, px=self._lock_ms)
        except Exception as error:
            self._failed("claim", key, error)
            return ""
        return token if claimed else None

    async def arelease(self, key: Hashable, token: str) -> None:
        if not token:
            return
        name = self.redis_key(key) + _REFRESH
        if not self._redis_up():
            return
        client = self._conn.asynchronous()
        try:
            await client.eval(_RELEASE, 1, name, token)
        except Exception as error:
            self._failed("release", key, error)

    async def aclose(self) -> None:
        """Close this event loop's client built from the URL."""
        await self._conn.aclose()


def _shift(instant: float, offset: float) -> float:
    return instant if math.isinf(instant) else instant + offset


def _same_after(data: bytes, value: Any) -> bool:
    try:
        return bool(json.loads(data) == value)
    except Exception:
        return False


if TYPE_CHECKING:
    _store: SharedCacheStore = RedisCacheStore("redis://")
