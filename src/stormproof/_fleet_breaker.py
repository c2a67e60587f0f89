"""FleetBreaker: a circuit breaker whose trips are decided by a whole fleet of processes.

Each process keeps a local ``CircuitBreaker`` (this class is one) and counts its calls'
outcomes locally; the backend's flusher sends the counts since the last exchange and
brings back the fleet's state, in one script call per breaker, at most once per
``flush_interval``. The fleet trips when, over its last ``fleet_window`` seconds, it has
seen at least ``fleet_minimum_calls`` calls, a failure rate of at least
``failure_rate``, and failures from at least ``min_processes`` distinct processes. A
process refuses a call when its local breaker is open OR the fleet is open; when the
fleet's open time is up, it admits exactly ``half_open_calls`` probes fleet-wide, each
on a lease taken in the script with the server's clock. While the backend is slow or
down, the local breaker decides alone.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from ._breaker import (
    BreakerOptions,
    BreakerRejected,
    BreakerState,
    CircuitBreaker,
    CircuitOpen,
    _CountWindow,
    _threshold,
)
from ._core import events
from ._core.clock import Clock
from ._core.errors import ConfigError
from ._core.events import Event, Listener
from ._core.validate import ExceptionFilter, check_int, check_number
from ._fleet import Args, FleetBackend, MemoryStore, Script, check_backend, check_key_part
from ._policy import FirstResult

__all__ = ["BREAKER_SCRIPT", "FleetBreaker", "FleetBreakerOptions", "FleetBreakerStateChanged"]

R = TypeVar("R")

_CLOSED = BreakerState.CLOSED
_OPEN = BreakerState.OPEN
_HALF_OPEN = BreakerState.HALF_OPEN
_FORCED_OPEN = BreakerState.FORCED_OPEN
_DISABLED = BreakerState.DISABLED
_METRICS_ONLY = BreakerState.METRICS_ONLY


@dataclass(frozen=True, slots=True)
class FleetBreakerStateChanged(Event):
    """This process learned, at an exchange, that the fleet's state changed."""

    kind: ClassVar[str] = "fleet.breaker_state_changed"
    previous: BreakerState
    state: BreakerState
    failure_rate: float | None
    processes: int
    open_for: float | None


# -- the exchange -----------------------------------------------------------------------

_LUA = """
-- KEYS[1] state, a hash: st (0 closed, 1 open: half-open once open_until has passed),
--   epoch (+1 on every change), open_until and span (ms, server time), trips, ok
--   (probes that succeeded in this half-open period)
-- KEYS[2] window, a hash: 'c<slice>' calls, 'f<slice>' failures (slices of window/10)
-- KEYS[3] failing, a sorted set: process id -> its last failure reported (ms)
-- KEYS[4] probes, a hash: process id -> probe leases it holds
-- KEYS[5] probe_until, a sorted set: process id -> when its leases lapse (ms)
-- ARGV: successes, failures, known epoch, want (probe leases), probe successes,
--   probe failures, held (leases the caller still holds), probe epoch, process id,
--   rate numerator, rate denominator, minimum calls, minimum processes, window (ms),
--   open_for (ms), open_for_max (ms, 0: none), half_open_calls, probe lease (ms),
--   the keys' ttl (ms)
local successes = tonumber(ARGV[1])
local failures = tonumber(ARGV[2])
local known = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
local probe_ok = tonumber(ARGV[5])
local probe_failed = tonumber(ARGV[6])
local held = tonumber(ARGV[7])
local probe_epoch = tonumber(ARGV[8])
local id = ARGV[9]
local numerator = tonumber(ARGV[10])
local denominator = tonumber(ARGV[11])
local minimum_calls = tonumber(ARGV[12])
local minimum_processes = tonumber(ARGV[13])
local window = tonumber(ARGV[14])
local open_for = tonumber(ARGV[15])
local open_for_max = tonumber(ARGV[16])
local probes = tonumber(ARGV[17])
local lease = tonumber(ARGV[18])
local ttl = tonumber(ARGV[19])
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local s = redis.call('HMGET', KEYS[1], 'st', 'epoch', 'open_until', 'span', 'trips', 'ok')
local st = tonumber(s[1]) or 0
local epoch = tonumber(s[2]) or 1
local open_until = tonumber(s[3]) or 0
local span = tonumber(s[4]) or 0
local trips = tonumber(s[5]) or 0
local ok = tonumber(s[6]) or 0
local function change(to)
  st = to
  epoch = epoch + 1
  ok = 0
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
  if to == 1 then
    span = open_for
    if open_for_max > 0 then
      span = math.min(open_for_max, open_for * 2 ^ math.min(trips, 64))
    end
    span = math.floor(span)
    open_until = now_ms + span
    trips = trips + 1
  else
    open_until = 0
    span = 0
    trips = 0
  end
end
-- probe leases of processes gone silent lapse
for _, other in ipairs(redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now_ms)) do
  redis.call('HDEL', KEYS[4], other)
  redis.call('ZREM', KEYS[5], other)
end
local half_open = st == 1 and now_ms >= open_until
-- the caller's probes: any failure reopens, k successes close
if half_open and probe_epoch == epoch then
  if probe_failed > 0 then
    change(1)
  else
    ok = ok + probe_ok
    local holding = math.min(held, tonumber(redis.call('HGET', KEYS[4], id)) or 0)
    if holding > 0 then
      redis.call('HSET', KEYS[4], id, holding)
    else
      redis.call('HDEL', KEYS[4], id)
      redis.call('ZREM', KEYS[5], id)
    end
    if ok >= probes then
      change(0)
    end
  end
end
-- the caller's counts, into the window of a closed fleet; then the rule
local calls, failed, processes = 0, 0, 0
if st == 0 then
  local slice = math.max(1, math.floor(window / 10))
  local current = math.floor(now_ms / slice)
  if (known == epoch or known == 0) and successes + failures > 0 then
    redis.call('HINCRBY', KEYS[2], 'c' .. current, successes + failures)
    if failures > 0 then
      redis.call('HINCRBY', KEYS[2], 'f' .. current, failures)
      redis.call('ZADD', KEYS[3], now_ms, id)
    end
  end
  local counts = redis.call('HGETALL', KEYS[2])
  for i = 1, #counts, 2 do
    local field = counts[i]
    if tonumber(string.sub(field, 2)) <= current - 10 then
      redis.call('HDEL', KEYS[2], field)
    elseif string.sub(field, 1, 1) == 'c' then
      calls = calls + tonumber(counts[i + 1])
    else
      failed = failed + tonumber(counts[i + 1])
    end
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now_ms - window)
  processes = redis.call('ZCARD', KEYS[3])
  if calls >= minimum_calls and failed * denominator >= numerator * calls
      and processes >= minimum_processes then
    change(1)
  end
end
-- a probe lease, while half-open and a slot is free
local granted = 0
if st == 1 and now_ms >= open_until and want > 0 then
  local taken = ok
  for _, n in ipairs(redis.call('HVALS', KEYS[4])) do
    taken = taken + tonumber(n)
  end
  granted = math.max(0, math.min(want, probes - taken))
  if granted > 0 then
    redis.call('HINCRBY', KEYS[4], id, granted)
    redis.call('ZADD', KEYS[5], now_ms + lease, id)
  end
end
redis.call('HSET', KEYS[1], 'st', st, 'epoch', epoch, 'open_until', open_until,
  'span', span, 'trips', trips, 'ok', ok)
for i = 1, 5 do
  redis.call('PEXPIRE', KEYS[i], ttl)
end
local left = 0
if st == 1 then
  left = open_until - now_ms
end
return {st, epoch, left, span, granted, calls, failed, processes}
"""


class _Fleet:
    """A fleet breaker's stored state, for the Python twin of the Lua script."""

    def __init__(self, store: MemoryStore, keys: Sequence[str], now_ms: int) -> None:
        state = store.get(keys[0], now_ms) or {}
        self.parts = [dict(store.get(key, now_ms) or {}) for key in keys[1:]]
        self.counts, self.failing, self.holders, self.until = self.parts
        self.st = state.get("st", 0)
        self.epoch = state.get("epoch", 1)
        self.open_until = state.get("open_until", 0)
        self.span = state.get("span", 0)
        self.trips = state.get("trips", 0)
        self.ok = state.get("ok", 0)
        self.now_ms = now_ms

    def change(self, to: int, open_for: int, open_for_max: int) -> None:
        self.st = to
        self.epoch += 1
        self.ok = 0
        for part in self.parts:
            part.clear()
        if to == 1:
            span = open_for
            if open_for_max > 0:
                span = min(open_for_max, open_for * 2 ** min(self.trips, 64))
            self.span = span
            self.open_until = self.now_ms + span
            self.trips += 1
        else:
            self.open_until = self.span = self.trips = 0

    def half_open(self) -> bool:
        return self.st == 1 and self.now_ms >= self.open_until

    def save(self, store: MemoryStore, keys: Sequence[str], ttl: int) -> None:
        fields = {
            "st": self.st,
            "epoch": self.epoch,
            "open_until": self.open_until,
            "span": self.span,
            "trips": self.trips,
            "ok": self.ok,
        }
        for key, part in zip(keys, (fields, *self.parts), strict=True):
            store.put(key, part, self.now_ms, ttl)


def _exchange(store: MemoryStore, keys: Sequence[str], args: Args, now_ms: int) -> list[int]:
    """The Lua script above, in Python, for ``MemoryBackend``."""
    successes, failures, known, want, probe_ok, probe_failed, held, probe_epoch = (
        int(arg) for arg in args[:8]
    )
    key = str(args[8])
    numerator, denominator, minimum_calls, minimum_processes, window = (
        int(arg) for arg in args[9:14]
    )
    open_for, open_for_max, probes, lease, ttl = (int(arg) for arg in args[14:19])
    fleet = _Fleet(store, keys, now_ms)
    for other in [other for other, lapse in fleet.until.items() if lapse <= now_ms]:
        fleet.holders.pop(other, None)
        del fleet.until[other]
    if fleet.half_open() and probe_epoch == fleet.epoch:
        if probe_failed > 0:
            fleet.change(1, open_for, open_for_max)
        else:
            fleet.ok += probe_ok
            holding = min(held, fleet.holders.get(key, 0))
            if holding > 0:
                fleet.holders[key] = holding
            else:
                fleet.holders.pop(key, None)
                fleet.until.pop(key, None)
            if fleet.ok >= probes:
                fleet.change(0, open_for, open_for_max)
    calls = failed = processes = 0
    if fleet.st == 0:
        counts = fleet.counts
        current = now_ms // max(1, window // 10)
        if known in (fleet.epoch, 0) and successes + failures > 0:
            counts[f"c{current}"] = counts.get(f"c{current}", 0) + successes + failures
            if failures > 0:
                counts[f"f{current}"] = counts.get(f"f{current}", 0) + failures
                fleet.failing[key] = now_ms
        for field, value in list(counts.items()):
            if int(field[1:]) <= current - 10:
                del counts[field]
            elif field[0] == "c":
                calls += value
            else:
                failed += value
        for other in [other for other, last in fleet.failing.items() if last <= now_ms - window]:
            del fleet.failing[other]
        processes = len(fleet.failing)
        if (
            calls >= minimum_calls
            and failed * denominator >= numerator * calls
            and processes >= minimum_processes
        ):
            fleet.change(1, open_for, open_for_max)
    granted = 0
    if fleet.half_open() and want > 0:
        granted = max(0, min(want, probes - fleet.ok - sum(fleet.holders.values())))
        if granted > 0:
            fleet.holders[key] = fleet.holders.get(key, 0) + granted
            fleet.until[key] = now_ms + lease
    fleet.save(store, keys, ttl)
    left = fleet.open_until - now_ms if fleet.st == 1 else 0
    return [fleet.st, fleet.epoch, left, fleet.span, granted, calls, failed, processes]


BREAKER_SCRIPT = Script(
    name="breaker",
    suffixes=("state", "window", "failing", "probes", "probe_until"),
    lua=_LUA,
    local=_exchange,
)
"""A fleet breaker's exchange. In: the caller's calls and failures since its last
exchange (counted only into a closed fleet, and only if the caller knew the current
epoch or none: a process that just started or reconnected), its probes' outcomes
and the leases it still holds, and whether it wants a probe lease. Out: ``[state
(0 closed, 1 open), epoch, ms left open (0 or less: half-open), ms of this trip's
open time, leases granted, calls, failures and failing processes in the window]``."""


# -- options ------------------------------------------------------------------------------

_B = BreakerOptions(name="defaults")


@dataclass(frozen=True, kw_only=True)
class FleetBreakerOptions(BreakerOptions):
    """FleetBreaker's options: a ``BreakerOptions`` (the local breaker's, whose
    ``failure_rate``, ``open_for``, ``open_for_max`` and ``half_open_calls`` the fleet
    uses too) and the fleet's own, validated when built; ``replace()`` copies."""

    backend: FleetBackend
    min_processes: int = 2
    fleet_minimum_calls: int = 50
    fleet_window: float = 10.0
    flush_interval: float = 1.0
    probe_lease: float = 10.0

    def _check(self) -> None:
        check_backend(self.backend)
        self._set("name", check_key_part("name", self.name, ""))
        super()._check()
        self._set(
            "min_processes", check_int("min_processes", self.min_processes, low=1, high=1_000_000)
        )
        self._set(
            "fleet_minimum_calls",
            check_int("fleet_minimum_calls", self.fleet_minimum_calls, low=1),
        )
        interval = check_number("flush_interval", self.flush_interval, low=0.01, high=3600.0)
        self._set("flush_interval", interval)
        self._set(
            "fleet_window",
            check_number("fleet_window", self.fleet_window, low=2 * interval, high=86_400.0),
        )
        self._set(
            "probe_lease",
            check_number("probe_lease", self.probe_lease, low=2 * interval, high=86_400.0),
        )


# -- the breaker ----------------------------------------------------------------------


class FleetBreaker(CircuitBreaker):
    """A ``CircuitBreaker`` whose trips are shared by a fleet of processes.

    Each process is a full local breaker: the same window, rules and states as a
    ``CircuitBreaker`` with these options. On top, its calls' outcomes are counted
    locally and sent to the fleet's state in ``backend`` by the flusher, at most once
    per ``flush_interval``; the fleet trips when its last ``fleet_window`` seconds hold
    at least ``fleet_minimum_calls`` calls, a failure rate of at least ``failure_rate``
    and failures from at least ``min_processes`` processes. A call is refused when the
    local breaker is open or the fleet is; once the fleet's open time is up, exactly
    ``half_open_calls`` probes are admitted fleet-wide, each by a lease the flusher
    took for its process. While the backend is unreachable, the local breaker alone
    decides (``FleetDegraded``).
    """

    options_type = FleetBreakerOptions  # type: ignore[assignment]  # a BreakerOptions too

    __slots__ = (
        "_backend",
        "_failures",
        "_fleet_closed",
        "_fleet_counts",
        "_fleet_epoch",
        "_fleet_interval",
        "_fleet_last",
        "_fleet_lock",
        "_fleet_news",
        "_fleet_open_until",
        "_fleet_span",
        "_id",
        "_ok",
        "_ok_sent",
        "_probe_failed",
        "_probe_ok",
        "_probe_until",
        "_probes_held",
        "_probes_out",
        "_request_static",
        "_want_probe",
    )

    def __init__(
        self,
        backend: FleetBackend,
        name: str,
        *,
        failure_rate: float = _B.failure_rate,
        window: int = _B.window,
        window_seconds: float | None = _B.window_seconds,
        minimum_calls: int = _B.minimum_calls,
        slow_call_duration: float | None = _B.slow_call_duration,
        slow_call_rate: float = _B.slow_call_rate,
        open_for: float = _B.open_for,
        open_for_max: float | None = _B.open_for_max,
        half_open_calls: int = _B.half_open_calls,
        on: ExceptionFilter = _B.on,
        ignore: ExceptionFilter = _B.ignore,
        clock: Clock = _B.clock,
        listeners: Iterable[Listener] = _B.listeners,
        min_processes: int = 2,
        fleet_minimum_calls: int = 50,
        fleet_window: float = 10.0,
        flush_interval: float = 1.0,
        probe_lease: float = 10.0,
    ) -> None:
        self._configure(
            FleetBreakerOptions(
                backend=backend,
                name=name,
                failure_rate=failure_rate,
                window=window,
                window_seconds=window_seconds,
                minimum_calls=minimum_calls,
                slow_call_duration=slow_call_duration,
                slow_call_rate=slow_call_rate,
                open_for=open_for,
                open_for_max=open_for_max,
                half_open_calls=half_open_calls,
                on=on,
                ignore=ignore,
                clock=clock,
                listeners=listeners,
                min_processes=min_processes,
                fleet_minimum_calls=fleet_minimum_calls,
                fleet_window=fleet_window,
                flush_interval=flush_interval,
                probe_lease=probe_lease,
            )
        )

    def _configure(self, options: BreakerOptions) -> None:
        if not isinstance(options, FleetBreakerOptions):
            raise ConfigError("options", "a FleetBreakerOptions", options)
        super()._configure(options)
        self._backend = options.backend
        numerator, denominator = _threshold(options.failure_rate)
        self._request_static = (
            numerator,
            denominator,
            options.fleet_minimum_calls,
            options.min_processes,
            round(1000 * options.fleet_window),
            round(1000 * options.open_for),
            0 if options.open_for_max is None else round(1000 * options.open_for_max),
            options.half_open_calls,
            round(1000 * options.probe_lease),
        )
        self._fleet_lock = threading.Lock()
        self._id = uuid.uuid4().hex  # this breaker in this process, for the fleet
        self._ok = itertools.count()  # successes ever: next() is atomic, no lock
        self._ok_sent = 0  # ... of which sent to the fleet
        self._failures = 0  # failures since the last exchange
        self._fleet_closed = True  # fleet closed, unknown yet, or the backend degraded
        self._fleet_epoch = 0  # 0: not known yet
        self._fleet_open_until = 0.0  # on this breaker's clock
        self._fleet_span = 0.0
        self._fleet_counts = (0, 0, 0)  # calls, failures, failing processes at the last exchange
        self._probes_held = 0  # leases granted, not used yet
        self._probes_out = 0  # probes running
        self._probe_ok = 0  # probe outcomes not sent yet
        self._probe_failed = 0
        self._probe_until = 0.0  # when the held leases lapse
        self._want_probe = False
        self._fleet_news = True  # the first exchange: learn the fleet's state at once
        self._fleet_last = -float("inf")
        self._fleet_interval = options.flush_interval
        self._backend._register(self)

    @property
    def options(self) -> FleetBreakerOptions:
        """The options this was built with."""
        options = self._options
        assert isinstance(options, FleetBreakerOptions)
        return options

    # -- reading it

    @property
    def state(self) -> BreakerState:
        """What a call meets: the local breaker's state, unless the fleet is open or
        half-open and the local breaker is closed or half-open."""
        local = super().state
        if self._fleet_closed or local is _OPEN or local in _MANUAL:
            return local
        return _OPEN if self._fleet_open_until > self._now() else _HALF_OPEN

    @property
    def local_state(self) -> BreakerState:
        """The local breaker's state alone."""
        return super().state

    @property
    def fleet_state(self) -> BreakerState:
        """The fleet's state as this process last learned it (``closed`` before the
        first exchange and while the backend is degraded)."""
        if self._fleet_closed:
            return _CLOSED
        return _OPEN if self._fleet_open_until > self._now() else _HALF_OPEN

    @property
    def backend(self) -> FleetBackend:
        return self._backend

    @property
    def fleet_calls(self) -> tuple[int, int, int]:
        """The fleet's window at the last exchange: calls, failures, failing processes."""
        return self._fleet_counts

    @property
    def probe_leases(self) -> int:
        """Probe leases this process holds and has not used yet."""
        return self._probes_held

    def __repr__(self) -> str:
        return (
            f"FleetBreaker({self._backend!r}, {self._name!r}, "
            f"min_processes={self.options.min_processes}, "
            f"fleet_window={self.options.fleet_window:g}; state={self.state.value}, "
            f"local={self.local_state.value}, fleet={self.fleet_state.value})"
        )

    def close(self) -> None:
        """Send what is counted, give unused probe leases back, stop being flushed."""
        self._backend._unregister(self)

    # -- permission and outcome

    def acquire(self, now: float | None = None) -> int:
        if self._fleet_closed and self._state is _CLOSED:
            return self._epoch
        return self._acquire_fleet(self._now() if now is None else now)

    def _acquire_fleet(self, now: float) -> int:
        """A permit when the fleet is not closed (or the local breaker not closed):
        a refusal while the fleet is open; a probe, on a lease, while half-open."""
        if self._fleet_closed or self._state in _MANUAL:
            return self._acquire_slow(now)
        retry_after: float | None = None
        nudge = False
        with self._fleet_lock:
            if self._fleet_closed:
                probe = False
            else:
                left = self._fleet_open_until - now
                if left > self._fleet_span:  # the clock stepped back: never longer
                    self._fleet_open_until = now + self._fleet_span
                    left = self._fleet_span
                if left > 0.0:
                    probe = None  # open: refused
                    retry_after = left
                else:
                    if self._probes_held and now >= self._probe_until:
                        self._probes_held = 0  # lapsed unused: the fleet took them back
                    if self._probes_held:
                        self._probes_held -= 1
                        self._probes_out += 1
                        probe = True
                    else:
                        probe = None  # half-open without a lease: refused
                        nudge = not self._want_probe
                        self._want_probe = True
                        self._fleet_news = True
        if nudge:
            self._backend._nudge()
        if probe is None:
            state = _OPEN if retry_after is not None else _HALF_OPEN
            if events.active(self._listeners):
                events.emit(BreakerRejected(self._name, now, state, retry_after), self._listeners)
            raise CircuitOpen(self._name, retry_after)
        if not probe:
            return self._acquire_slow(now)
        try:
            permit = self._epoch if self._state is _CLOSED else self._acquire_slow(now)
        except CircuitOpen:
            self._probe_done(None)  # refused locally: the lease goes back
            raise
        return -2 - permit  # a fleet probe, carrying the local permit

    def on_success(
        self, permit: int, duration: float | None = None, now: float | None = None
    ) -> None:
        if permit < -1:
            CircuitBreaker.on_success(self, -2 - permit, duration, now)
            self._probe_done(True)
            return
        CircuitBreaker.on_success(self, permit, duration, now)
        if self._state is not _DISABLED:
            next(self._ok)
            if not self._fleet_news:
                self._news()

    def on_failure(
        self, permit: int, duration: float | None = None, now: float | None = None
    ) -> None:
        if permit < -1:
            CircuitBreaker.on_failure(self, -2 - permit, duration, now)
            self._probe_done(False)
            return
        CircuitBreaker.on_failure(self, permit, duration, now)
        if self._state is not _DISABLED:
            with self._fleet_lock:
                self._failures += 1
                quiet = not self._fleet_news
                self._fleet_news = True
            if quiet:
                self._backend._nudge()

    def release(self, permit: int) -> None:
        if permit < -1:
            CircuitBreaker.release(self, -2 - permit)
            self._probe_done(None)
            return
        CircuitBreaker.release(self, permit)

    def _probe_done(self, succeeded: bool | None) -> None:
        """A probe ended: its outcome (None: none, the lease given back) goes out at
        the next exchange."""
        with self._fleet_lock:
            if self._probes_out <= 0:
                return  # from before the fleet's state changed: it no longer applies
            self._probes_out -= 1
            if succeeded is True:
                self._probe_ok += 1
            elif succeeded is False:
                self._probe_failed += 1
            self._fleet_news = True
        self._backend._nudge()

    def _polling(self) -> bool:
        """Whether to exchange every ``flush_interval`` with nothing to send (the lock
        is held): before the first exchange, while the fleet is not closed, and while
        its window held failures at the last exchange (it may trip)."""
        return not self._fleet_closed or self._fleet_epoch == 0 or self._fleet_counts[1] > 0

    def _news(self) -> None:
        with self._fleet_lock:
            quiet = not self._fleet_news
            self._fleet_news = True
        if quiet:
            self._backend._nudge()

    # -- what the backend asks (see _fleet.FleetPolicy)

    def _fleet_script(self) -> Script:
        return BREAKER_SCRIPT

    def _fleet_request(self, closing: bool) -> Args | None:
        """The counts since the last exchange, the probes' outcomes, the leases held
        and whether a lease is wanted (see ``BREAKER_SCRIPT``); None: nothing to send."""
        with self._fleet_lock:
            ok = _count(self._ok)
            successes = ok - self._ok_sent
            failures = self._failures
            if closing:
                self._probes_held = 0
                want = 0
                if not (successes or failures or self._probe_ok or self._probe_failed):
                    return None
            else:
                if not self._fleet_news:
                    return None
                want = 1 if self._want_probe and not self._probes_held else 0
                if not (
                    successes
                    or failures
                    or want
                    or self._probe_ok
                    or self._probe_failed
                    or self._polling()
                ):
                    self._fleet_news = False
                    return None
            self._ok_sent = ok
            self._failures = 0
            request: list[int | str] = [
                successes,
                failures,
                self._fleet_epoch,
                want,
                self._probe_ok,
                self._probe_failed,
                self._probes_held + self._probes_out,
                self._fleet_epoch,
                self._id,
                *self._request_static,
            ]
            self._probe_ok = self._probe_failed = 0
        return request

    def _fleet_reply(self, request: Args, reply: list[int]) -> None:
        st, epoch, left_ms, span_ms, granted, calls, failed, processes = reply
        now = self._now()
        with self._fleet_lock:
            previous = self.fleet_state
            if epoch != self._fleet_epoch:  # the fleet changed: earlier probes are moot
                self._probes_held = self._probes_out = 0
                self._probe_ok = self._probe_failed = 0
                self._want_probe = False
                self._fleet_epoch = epoch
            self._fleet_counts = (calls, failed, processes)
            if st == 0:
                self._fleet_closed = True
            else:
                self._fleet_span = span_ms / 1000
                self._fleet_open_until = now + left_ms / 1000
                self._fleet_closed = False
            if granted:  # (refused: it asks again at its next exchange)
                self._want_probe = False
                self._probes_held += granted
                self._probe_until = now + self.options.probe_lease
            self._fleet_news = (
                self._polling()
                or _count(self._ok) != self._ok_sent
                or self._failures > 0
                or self._probe_ok > 0
                or self._probe_failed > 0
            )
            state = self.fleet_state
        if state is not previous and events.active(self._listeners):
            event = FleetBreakerStateChanged(
                self._name,
                now,
                previous,
                state,
                failed / calls if calls else None,
                processes,
                span_ms / 1000 if state is _OPEN else None,
            )
            events.emit(event, self._listeners)

    def _fleet_lost(self, request: Args) -> None:
        """The exchange failed. It may still have been applied (a paused server runs it
        when it wakes up), so its counts are not sent again."""
        with self._fleet_lock:
            self._fleet_news = True

    def _fleet_degraded(self, degraded: bool) -> None:
        """Degraded: the local breaker alone decides, probe leases are dropped, and the
        fleet's state is unknown until an exchange succeeds again (the counts made
        meanwhile are not added to the fleet's window). Recovered: the next exchange
        resyncs."""
        with self._fleet_lock:
            self._fleet_news = True
            if degraded:
                self._fleet_closed = True
                self._fleet_epoch = 0
                self._fleet_counts = (0, 0, 0)
                self._probes_held = self._probes_out = 0
                self._probe_ok = self._probe_failed = 0
                self._want_probe = False

    def _fleet_forked(self) -> None:
        self._fleet_lock = threading.Lock()
        self._id = uuid.uuid4().hex
        self._ok_sent = _count(self._ok)
        self._failures = 0
        self._probes_held = self._probes_out = 0
        self._probe_ok = self._probe_failed = 0
        self._want_probe = False
        self._fleet_news = True
        self._fleet_last = -float("inf")

    # -- drivers: the local breaker's, plus the fleet's flag and the success count

    def _sync_decorator(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """A decorated sync function: while the local breaker and the fleet are closed
        and nothing asks for durations, permit, call and success are done here."""
        window = self._window
        if not isinstance(window, _CountWindow) or self._slow_call_duration is not None:
            return super(CircuitBreaker, self)._sync_decorator(fn)
        first = FirstResult(self, fn)
        breaker = self
        plain = FleetBreaker  # a metered breaker (another class) takes its own driver
        ok = self._ok

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if (
                breaker._state is not _CLOSED
                or not breaker._fleet_closed
                or type(breaker) is not plain
            ):
                result = breaker._run(fn, args, kwargs)
            else:
                permit = breaker._epoch
                try:
                    result = fn(*args, **kwargs)
                except BaseException as error:
                    breaker.on_error(permit, error)
                    raise
                if permit == breaker._epoch and breaker._state is _CLOSED and window.clean:
                    next(window.slots)  # a success in a clean ring: no lock
                    next(ok)
                    if not breaker._fleet_news:
                        breaker._news()
                else:
                    breaker.on_success(permit)
            return result if first.checked else first.check(result)

        return wrapper

    def _run(self, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        if self._fleet_closed and self._state is _CLOSED:
            permit = self._epoch
        else:
            permit = self._acquire_fleet(self._now())
        started = None if self._slow_call_duration is None else self._now()
        try:
            result = fn(*args, **kwargs)
        except BaseException as error:
            self.on_error(permit, error, None if started is None else self._now() - started)
            raise
        if started is None and permit == self._epoch and self._state is _CLOSED:
            fast = self._fast_success
            if fast is not None and fast():
                next(self._ok)
                if not self._fleet_news:
                    self._news()
                return result
        self.on_success(permit, None if started is None else self._now() - started)
        return result

    async def _arun(
        self, fn: Callable[..., Awaitable[R]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> R:
        if self._fleet_closed and self._state is _CLOSED:
            permit = self._epoch
        else:
            permit = self._acquire_fleet(self._now())
        started = None if self._slow_call_duration is None else self._now()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as error:
            self.on_error(permit, error, None if started is None else self._now() - started)
            raise
        self.on_success(permit, None if started is None else self._now() - started)
        return result


_MANUAL = frozenset({_FORCED_OPEN, _DISABLED, _METRICS_ONLY})
"""Local states set by hand: they decide alone, whatever the fleet's state."""


def _count(counter: itertools.count[int]) -> int:
    """How many times ``next()`` was called on ``counter`` (its repr is "count(N)")."""
    return int(repr(counter)[6:-1])
