"""Fleet-wide state: the backend protocol, its flusher, and the in-memory backend.

A fleet policy (``FleetBudget``) never talks to its backend on a call: every call
reads and changes local state only. A flusher (one daemon thread per backend,
shared by its policies, never on an event loop) exchanges each policy's news with
the backend in one script call: what changed locally goes out, the fleet's view
comes back. A policy is flushed only when it has something to send, at most once per
``flush_interval`` seconds, and at once when news follows a quiet period.

When the backend fails, policies carry on with local state (``FleetDegraded``), and
the flusher tries again on a ``Backoff`` schedule until an exchange succeeds
(``FleetRecovered``).
"""

from __future__ import annotations

import math
import os
import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from ._backoff import Backoff, check_backoff
from ._core import events
from ._core.clock import Clock
from ._core.errors import ConfigError
from ._core.events import Event, Listener
from ._core.validate import check_bool, check_clock, check_name, check_number

__all__ = [
    "FleetBackend",
    "FleetDegraded",
    "FleetRecovered",
    "MemoryBackend",
    "Script",
    "check_backend",
    "check_key_part",
]

RECONNECT = Backoff(base=0.5, cap=30.0)
"""How long the flusher waits before trying a backend again after a failure."""

KEY_TTL = 86_400.0
"""Seconds a policy's keys outlive its fleet's last exchange (then they are made
afresh from the configuration of the next process to flush)."""

_JOIN_TIMEOUT = 5.0  # seconds close() waits for the flusher (one exchange at most)


# -- events -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FleetDegraded(Event):
    """An exchange with the backend failed: its policies run on local state."""

    kind: ClassVar[str] = "fleet.degraded"
    reason: str
    error: BaseException | None


@dataclass(frozen=True, slots=True)
class FleetRecovered(Event):
    """An exchange succeeded again after ``FleetDegraded``."""

    kind: ClassVar[str] = "fleet.recovered"
    down_for: float
    attempts: int


# -- scripts: one exchange, run by Redis in Lua or by MemoryBackend in Python --------------

Store = dict[str, tuple[float, dict[str, int]]]
"""MemoryBackend's keys: key -> (expiry in ms on its clock, hash fields)."""

Args = Sequence[int | str]
"""A script's arguments: integers, and strings (an identity)."""

LocalScript = Callable[["MemoryStore", Sequence[str], Args, int], list[int]]


@dataclass(frozen=True)
class Script:
    """One exchange, written twice with the same meaning: ``lua`` for Redis (keys are
    ``{<namespace>:<policy name>}:<suffix>``, the arguments integers, the reply a list
    of integers; time comes from ``redis.call('TIME')``) and ``local`` for
    ``MemoryBackend`` (the same keys, arguments and reply; the time in ms)."""

    name: str
    suffixes: tuple[str, ...]
    lua: str
    local: LocalScript


class MemoryStore:
    """The hashes of a ``MemoryBackend``, with expiry on its clock."""

    __slots__ = ("_data",)

    def __init__(self) -> None:
        self._data: Store = {}

    def get(self, key: str, now_ms: int) -> dict[str, int] | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[0] <= now_ms:
            del self._data[key]
            return None
        return entry[1]

    def put(self, key: str, fields: dict[str, int], now_ms: int, ttl_ms: int) -> None:
        self._data[key] = (now_ms + ttl_ms, fields)

    def clear(self) -> None:
        self._data.clear()


# -- what a backend asks of a policy -------------------------------------------------------


class FleetPolicy(Protocol):
    """A policy with state shared by a fleet (``FleetBudget``). The backend reads
    ``_fleet_news`` and ``_fleet_last`` without a lock (they are hints); everything else
    goes through the methods, which take the policy's own lock."""

    _fleet_news: bool
    _fleet_last: float
    _fleet_interval: float

    @property
    def name(self) -> str: ...

    def _fleet_script(self) -> Script: ...

    def _fleet_request(self, closing: bool) -> Args | None: ...

    def _fleet_reply(self, request: Args, reply: list[int]) -> None: ...

    def _fleet_lost(self, request: Args) -> None: ...

    def _fleet_degraded(self, degraded: bool) -> None: ...

    def _fleet_forked(self) -> None: ...


# -- the backend: registration, the flusher, degradation -----------------------------------

_BACKENDS: weakref.WeakSet[FleetBackend] = weakref.WeakSet()


def check_backend(value: object) -> None:
    """A fleet policy's ``backend``: one of the fleet backends, or a ConfigError."""
    if not isinstance(value, FleetBackend):
        raise ConfigError(
            "backend", "a fleet backend (stormproof.fleet.MemoryBackend or RedisBackend)", value
        )


def check_key_part(parameter: str, value: object, default: str) -> str:
    """A name that goes into a Redis key's hash tag: no braces (they end the tag)."""
    name = check_name(parameter, value, default)
    if "{" in name or "}" in name:
        raise ConfigError(parameter, "a non-empty string without '{' or '}'", value)
    return name


class FleetBackend(ABC):
    """Where fleet policies keep what they share: ``MemoryBackend`` (one process) or
    ``RedisBackend`` (a fleet). Policies register when built; the backend's flusher
    exchanges their news. ``flush()`` exchanges now (tests call it instead of waiting),
    ``close()`` stops the flusher and gives leased tokens back."""

    def __init__(
        self,
        *,
        name: str,
        clock: Clock | None,
        listeners: Iterable[Listener] | None,
        backoff: Backoff,
        flusher: bool,
        key_ttl: float,
    ) -> None:
        self._name = check_name("name", name, name)
        self._key_ttl_ms = round(1000 * check_number("key_ttl", key_ttl, low=1.0, high=1e9))
        self._clock = check_clock(clock)
        self._listeners = events.check_listeners(listeners)
        self._backoff = check_backoff("backoff", backoff, "a Backoff for reconnecting")
        self._background = check_bool("flusher", flusher)
        self._policies: weakref.WeakSet[FleetPolicy] = weakref.WeakSet()
        self._closed = False
        self._degraded = False
        self._down_since = 0.0
        self._attempts = 0
        self._next_try = -math.inf
        self._reset_threading()
        _BACKENDS.add(self)

    def _reset_threading(self) -> None:
        self._lock = threading.Lock()  # guards the registry and the degradation state
        self._round_lock = threading.Lock()  # one round of exchanges at a time
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def degraded(self) -> bool:
        """Whether the last exchange failed (policies run on local state)."""
        return self._degraded

    @property
    def clock(self) -> Clock:
        return self._clock

    # -- what the backend does; Redis and memory differ only here

    @abstractmethod
    def _run(self, script: Script, policy: str, args: Args) -> list[int]:
        """Run one exchange for ``policy`` (one round trip); raise if it failed. The
        script's arguments are ``args`` followed by the keys' time to live in ms."""

    @abstractmethod
    def _key(self, policy: str, suffix: str) -> str:
        """The key a policy's state lives under."""

    # -- policies

    def _register(self, policy: FleetPolicy) -> None:
        if self._closed:
            raise ConfigError("backend", "an open backend (this one was closed)", self)
        with self._lock:
            self._policies.add(policy)
            degraded = self._degraded
        if degraded:
            policy._fleet_degraded(True)
        self._nudge()

    def _unregister(self, policy: FleetPolicy) -> None:
        """Give the policy's leased tokens back (one exchange) and forget it."""
        with self._round_lock:
            self._exchange(policy, self._clock.now(), closing=True)
        with self._lock:
            self._policies.discard(policy)

    def _nudge(self) -> None:
        """A policy has news after a quiet period: the flusher looks at once."""
        if self._background and not self._closed:
            if self._thread is None:
                self._start()
            self._wake.set()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._closed:
                return
            thread = threading.Thread(
                target=_flusher,
                args=(weakref.ref(self), self._wake),
                name=f"stormproof-fleet-{self._name}",
                daemon=True,
            )
            self._thread = thread
        thread.start()

    # -- rounds of exchanges

    def flush(self, *, only_due: bool = False) -> int:
        """Exchange now every policy's news (with ``only_due``, only the news of
        policies whose ``flush_interval`` has passed since their last exchange, and
        nothing while a reconnect waits for its backoff: what the flusher does).
        Returns the number of round trips made. Never raises for the backend's
        failures: they are reported as ``FleetDegraded``."""
        with self._round_lock:
            return self._round(self._clock.now(), only_due)

    def _round(self, now: float, only_due: bool) -> int:
        if only_due and self._degraded and now < self._next_try:
            return 0
        with self._lock:
            policies = list(self._policies)
        trips = 0
        for policy in policies:
            if not policy._fleet_news or (
                only_due and now - policy._fleet_last < policy._fleet_interval
            ):
                continue
            outcome = self._exchange(policy, now, closing=False)
            if outcome is None:
                continue
            trips += 1
            if not outcome:
                break  # the backend failed: the others wait for the next try
        return trips

    def _exchange(self, policy: FleetPolicy, now: float, *, closing: bool) -> bool | None:
        """One policy's exchange: None if it had nothing to send, else whether it
        succeeded."""
        request = policy._fleet_request(closing)
        if request is None:
            return None
        policy._fleet_last = now
        script = policy._fleet_script()
        try:
            reply = self._run(script, policy.name, request)
        except Exception as error:
            policy._fleet_lost(request)
            self._failed(now, error)
            return False
        policy._fleet_reply(request, reply)
        if self._degraded:
            self._recovered(now)
        return True

    def _failed(self, now: float, error: Exception) -> None:
        with self._lock:
            first = not self._degraded
            if first:
                self._degraded = True
                self._down_since = now
                self._attempts = 0
            self._attempts += 1
            self._next_try = now + self._backoff.delay(self._attempts)
            policies = list(self._policies)
        if not first:
            return
        for policy in policies:
            policy._fleet_degraded(True)
        if events.active(self._listeners):
            events.emit(FleetDegraded(self._name, now, _reason(error), error), self._listeners)

    def _recovered(self, now: float) -> None:
        with self._lock:
            if not self._degraded:
                return
            self._degraded = False
            down_for = now - self._down_since
            attempts = self._attempts
            self._next_try = -math.inf
            policies = list(self._policies)
        for policy in policies:
            policy._fleet_degraded(False)
        if events.active(self._listeners):
            events.emit(FleetRecovered(self._name, now, down_for, attempts), self._listeners)

    def _next_wait(self, now: float) -> float | None:
        """Seconds until the flusher has something to do; None: until nudged."""
        with self._lock:
            policies = list(self._policies)
        soonest: float | None = None
        for policy in policies:
            if policy._fleet_news:
                due = policy._fleet_last + policy._fleet_interval
                soonest = due if soonest is None else min(soonest, due)
        if soonest is None:
            return None
        if self._degraded:
            soonest = max(soonest, self._next_try)
        return max(0.0, soonest - now)

    # -- the end

    def close(self) -> None:
        """Stop the flusher and give every policy's leased tokens back to the fleet
        (one exchange each; a failure is ignored: the tokens are then lost to the
        fleet, which errs towards fewer retries). Policies keep working on what they
        hold locally. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(_JOIN_TIMEOUT)
        with self._lock:
            policies = list(self._policies)
        with self._round_lock:
            now = self._clock.now()
            for policy in policies:
                if self._exchange(policy, now, closing=True) is False:
                    break
        self._closed_hook()

    def _closed_hook(self) -> None:
        return None

    def __enter__(self) -> FleetBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _forked(self) -> None:
        """In a child process after ``fork``: no flusher yet, fresh locks, and policies
        that hold no tokens (the parent still holds what was leased)."""
        self._reset_threading()
        for policy in list(self._policies):
            policy._fleet_forked()


def _reason(error: Exception) -> str:
    """``"timeout"``, ``"connection"`` or ``"error"``: what went wrong, by its kind."""
    names = {klass.__name__ for klass in type(error).__mro__}
    if "TimeoutError" in names:
        return "timeout"
    if "ConnectionError" in names or isinstance(error, OSError):
        return "connection"
    return "error"


def _flusher(backend_ref: weakref.ref[FleetBackend], wake: threading.Event) -> None:
    """The flusher thread: a round of due exchanges, then a wait until the next one is
    due or a policy has news. Ends when the backend is closed or collected."""
    while True:
        backend = backend_ref()
        if backend is None or backend._closed:
            return
        wake.clear()  # a nudge from now on makes the wait below return at once
        try:
            with backend._round_lock:
                backend._round(backend._clock.now(), only_due=True)
            wait = backend._next_wait(backend._clock.now())
        except Exception:  # a bug must not kill the flusher: retry after a while
            wait = backend._backoff.delay(1)
        del backend
        wake.wait(wait)


def _after_fork_in_child() -> None:
    for backend in list(_BACKENDS):
        backend._forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# -- MemoryBackend ---------------------------------------------------------------------


class MemoryBackend(FleetBackend):
    """A backend in this process: the fleet is the policies built on it. For tests
    and single-process use; the same exchanges as ``RedisBackend`` (each script's
    Python twin), with time read from ``clock``.

    ``unreachable = True`` makes every exchange fail as a lost connection would, to
    show what policies do while a real backend is down.
    """

    def __init__(
        self,
        *,
        name: str = "fleet-memory",
        namespace: str = "sp",
        clock: Clock | None = None,
        listeners: Iterable[Listener] | None = None,
        backoff: Backoff = RECONNECT,
        flusher: bool = True,
        key_ttl: float = KEY_TTL,
    ) -> None:
        self._namespace = check_key_part("namespace", namespace, "sp")
        super().__init__(
            name=check_name("name", name, "fleet-memory"),
            clock=clock,
            listeners=listeners,
            backoff=backoff,
            flusher=flusher,
            key_ttl=key_ttl,
        )
        self._store = MemoryStore()
        self._store_lock = threading.Lock()
        self.unreachable = False

    def _key(self, policy: str, suffix: str) -> str:
        return f"{{{self._namespace}:{policy}}}:{suffix}"

    def _run(self, script: Script, policy: str, args: Args) -> list[int]:
        if self.unreachable:
            raise ConnectionError("MemoryBackend.unreachable is set")
        keys = [self._key(policy, suffix) for suffix in script.suffixes]
        now_ms = int(self._clock.now() * 1000)
        with self._store_lock:
            return script.local(self._store, keys, [*args, self._key_ttl_ms], now_ms)

    def _forked(self) -> None:
        super()._forked()
        self._store_lock = threading.Lock()

    def _read(self, policy: str, suffix: str) -> dict[str, int] | None:
        """A policy's stored hash (for tests and inspection), or None."""
        with self._store_lock:
            return self._store.get(self._key(policy, suffix), int(self._clock.now() * 1000))

    def __repr__(self) -> str:
        return f"MemoryBackend(name={self._name!r}, namespace={self._namespace!r})"
