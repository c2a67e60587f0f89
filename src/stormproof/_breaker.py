"""Circuit breaker: stop calling a dependency that is failing, and probe it gently.

The breaker is asked for permission (``acquire``) and told the outcome
(``on_success`` / ``on_failure`` / ``release``); it never wraps the user's call
while holding its lock, so concurrent calls run in parallel. It trips on a failure
*rate* (or slow-call rate) over a count or time window, stays open for
``open_for`` seconds (growing on consecutive trips), then admits at most
``half_open_calls`` probes: all succeeding close it, any failure reopens it.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, TypeVar

from . import _metering
from ._core import events
from ._core.clock import MONOTONIC, Clock
from ._core.errors import ConfigError, Rejected
from ._core.events import Event, Listener
from ._core.options import Configured, Options
from ._core.validate import (
    ExceptionFilter,
    check_exceptions,
    check_int,
    check_number,
    exact,
    now_function,
)
from ._core.window import SlidingWindow
from ._policy import FirstResult, Policy

__all__ = [
    "BreakerMetrics",
    "BreakerRejected",
    "BreakerState",
    "BreakerStateChanged",
    "CircuitBreaker",
    "CircuitOpen",
]

R = TypeVar("R")


class BreakerState(str, Enum):
    """Where a circuit breaker is. Compares equal to its value (``state == "open"``)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"
    DISABLED = "disabled"
    METRICS_ONLY = "metrics_only"

    def __str__(self) -> str:
        return self.value


_CLOSED = BreakerState.CLOSED
_OPEN = BreakerState.OPEN
_HALF_OPEN = BreakerState.HALF_OPEN
_FORCED_OPEN = BreakerState.FORCED_OPEN
_DISABLED = BreakerState.DISABLED
_METRICS_ONLY = BreakerState.METRICS_ONLY


class CircuitOpen(Rejected):
    """The circuit breaker refused the call; ``retry_after`` is the time left open."""

    _reason = "circuit open"


@dataclass(frozen=True, slots=True)
class BreakerStateChanged(Event):
    kind: ClassVar[str] = "breaker.state_changed"
    previous: BreakerState
    state: BreakerState
    failure_rate: float | None
    slow_call_rate: float | None
    open_for: float | None


@dataclass(frozen=True, slots=True)
class BreakerRejected(Event):
    kind: ClassVar[str] = "breaker.rejected"
    state: BreakerState
    retry_after: float | None


@dataclass(frozen=True, slots=True)
class BreakerMetrics:
    """What the breaker's window holds now."""

    state: BreakerState
    calls: int
    failures: int
    slow_calls: int

    @property
    def failure_rate(self) -> float | None:
        return self.failures / self.calls if self.calls else None

    @property
    def slow_call_rate(self) -> float | None:
        return self.slow_calls / self.calls if self.calls else None


_FAILED = 1
_SLOW = 2

_MAX_WINDOW = 1_000_000
"""The largest count window (one byte per call, allocated at construction)."""

_MIN_WINDOW_SECONDS = 0.001
"""The shortest time window: its slices must stay measurable on any clock."""


def _threshold(rate: float) -> tuple[int, int]:
    """A rate as the integers ``(n, d)`` of the fraction its decimal form says."""
    ratio = exact(rate)
    return ratio.numerator, ratio.denominator


class _CountWindow:
    """The last ``size`` outcomes, in a ring, with exact running counts.

    Every change to the ring and its counts happens under the breaker's lock. The
    exception is the common case, a success while the ring holds no failure and no
    slow call: every slot is already 0, so the success only takes a slot number
    (``next()`` on an ``itertools.count`` is atomic) and needs no lock.
    """

    __slots__ = ("clean", "failures", "ring", "size", "slots", "slow")

    timed = False

    def __init__(self, size: int) -> None:
        self.size = size
        self.clear()

    def success(self) -> bool:
        """Record a success without the lock if the ring is clean; False otherwise."""
        if self.clean:
            next(self.slots)
            return True
        return False

    def add(self, outcome: int, now: float) -> tuple[int, int, int]:
        """Record ``outcome``; returns the window's calls, failures and slow calls."""
        taken = next(self.slots)
        index = taken % self.size
        old = self.ring[index]
        if old:
            self.failures -= old & _FAILED
            self.slow -= old >> 1
        self.ring[index] = outcome
        if outcome:
            self.failures += outcome & _FAILED
            self.slow += outcome >> 1
        self.clean = not (self.failures or self.slow)
        return (taken + 1 if taken < self.size else self.size), self.failures, self.slow

    def counts(self, now: float) -> tuple[int, int, int]:
        recorded = int(repr(self.slots)[6:-1])  # "count(N)": N slots taken, calls so far
        return min(recorded, self.size), self.failures, self.slow

    def clear(self) -> None:
        self.ring = bytearray(self.size)
        self.slots = itertools.count()
        self.failures = self.slow = 0
        self.clean = True


class _TimeWindow:
    """Outcomes of the last ``seconds``, in slices. Guarded by the breaker's lock."""

    __slots__ = ("seconds", "slices", "window")

    timed = True

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.slices = min(120, max(10, math.ceil(seconds)))
        self.window = SlidingWindow(seconds, self.slices, 3)

    def add(self, outcome: int, now: float) -> tuple[int, int, int]:
        """Record ``outcome``; returns the window's calls, failures and slow calls."""
        window = self.window
        window.advance(now)
        window.add(0)
        if outcome & _FAILED:
            window.add(1)
        if outcome & _SLOW:
            window.add(2)
        return window.total(0), window.total(1), window.total(2)

    def counts(self, now: float) -> tuple[int, int, int]:
        window = self.window
        window.advance(now)
        return window.total(0), window.total(1), window.total(2)

    def clear(self) -> None:
        self.window = SlidingWindow(self.seconds, self.slices, 3)


@dataclass(frozen=True)
class BreakerOptions(Options):
    """CircuitBreaker's options (see ``CircuitBreaker``), validated when built;
    ``replace()`` copies. The field defaults are the breaker's defaults, for the library
    and the Outage Lab."""

    name: str
    failure_rate: float = 0.5
    window: int = 100
    window_seconds: float | None = None
    minimum_calls: int = 20
    slow_call_duration: float | None = None
    slow_call_rate: float = 1.0
    open_for: float = 30.0
    open_for_max: float | None = None
    half_open_calls: int = 1
    on: ExceptionFilter = Exception
    ignore: ExceptionFilter = ()
    clock: Clock = MONOTONIC
    listeners: Iterable[Listener] = ()

    def _check(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError("name", "a non-empty string", self.name)
        self._set(
            "failure_rate",
            check_number("failure_rate", self.failure_rate, low=0.0, high=1.0, low_open=True),
        )
        size = check_int("window", self.window, low=1, high=_MAX_WINDOW)
        minimum = check_int("minimum_calls", self.minimum_calls, low=1)
        if self.window_seconds is None:
            if minimum > size:
                raise ConfigError(
                    "minimum_calls",
                    f"<= window ({size}) or the breaker never trips",
                    self.minimum_calls,
                )
        else:
            self._set(
                "window_seconds",
                check_number("window_seconds", self.window_seconds, low=_MIN_WINDOW_SECONDS),
            )
        if self.slow_call_duration is not None:
            self._set(
                "slow_call_duration",
                check_number("slow_call_duration", self.slow_call_duration, low=0.0, low_open=True),
            )
        self._set(
            "slow_call_rate",
            check_number("slow_call_rate", self.slow_call_rate, low=0.0, high=1.0, low_open=True),
        )
        open_for = check_number("open_for", self.open_for, low=0.0, low_open=True)
        self._set("open_for", open_for)
        if self.open_for_max is not None:
            self._set("open_for_max", check_number("open_for_max", self.open_for_max, low=open_for))
        check_int("half_open_calls", self.half_open_calls, low=1)
        check_exceptions("on", self.on)
        check_exceptions("ignore", self.ignore, allow_empty=True)


_D = BreakerOptions(name="defaults")
"""The breaker's defaults, where its constructor reads them."""


class CircuitBreaker(Policy, Configured[BreakerOptions]):
    """Stop calling a failing dependency; let it recover; probe it with a few calls."""

    options_type = BreakerOptions

    __slots__ = (
        "_clock",
        "_epoch",
        "_failure_rate",
        "_failure_threshold",
        "_fast_success",
        "_half_open_calls",
        "_ignore",
        "_ignore_types",
        "_listeners",
        "_lock",
        "_minimum_calls",
        "_name",
        "_now",
        "_on",
        "_on_types",
        "_open_for",
        "_open_for_max",
        "_open_span",
        "_open_until",
        "_options",
        "_probe_successes",
        "_probes",
        "_slow_call_duration",
        "_slow_call_rate",
        "_slow_threshold",
        "_state",
        "_trips",
        "_window",
    )

    def __init__(
        self,
        name: str,
        *,
        failure_rate: float = _D.failure_rate,
        window: int = _D.window,
        window_seconds: float | None = _D.window_seconds,
        minimum_calls: int = _D.minimum_calls,
        slow_call_duration: float | None = _D.slow_call_duration,
        slow_call_rate: float = _D.slow_call_rate,
        open_for: float = _D.open_for,
        open_for_max: float | None = _D.open_for_max,
        half_open_calls: int = _D.half_open_calls,
        on: ExceptionFilter = _D.on,
        ignore: ExceptionFilter = _D.ignore,
        clock: Clock = _D.clock,
        listeners: Iterable[Listener] = _D.listeners,
    ) -> None:
        self._configure(
            BreakerOptions(
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
            )
        )

    def _configure(self, options: BreakerOptions) -> None:
        """Precompute what the hot path reads from the options; start closed."""
        self._options = options
        self._name = options.name
        self._failure_rate = options.failure_rate
        self._minimum_calls = options.minimum_calls
        self._window: _CountWindow | _TimeWindow = (
            _CountWindow(options.window)
            if options.window_seconds is None
            else _TimeWindow(options.window_seconds)
        )
        self._slow_call_duration = options.slow_call_duration
        self._slow_call_rate = options.slow_call_rate
        self._open_for = options.open_for
        self._open_for_max = options.open_for_max
        self._half_open_calls = options.half_open_calls
        # "At least this rate", decided in integers: failures * d >= n * calls.
        self._failure_threshold = _threshold(self._failure_rate)
        self._slow_threshold = (
            None if self._slow_call_duration is None else _threshold(self._slow_call_rate)
        )
        self._on_types, self._on = check_exceptions("on", options.on)
        self._ignore_types, self._ignore = check_exceptions(
            "ignore", options.ignore, allow_empty=True
        )
        self._clock = options.clock
        self._now = now_function(self._clock)
        self._listeners = events.check_listeners(options.listeners)
        self._lock = threading.Lock()
        # Successes on a count window skip the lock (see _CountWindow).
        self._fast_success = (
            self._window.success if isinstance(self._window, _CountWindow) else None
        )
        self._state = _CLOSED
        self._epoch = 0
        self._open_until = 0.0
        self._open_span = self._open_for  # how long the current trip keeps it open
        self._trips = 0  # consecutive trips since the last close
        self._probes = 0  # probes admitted in this half-open period
        self._probe_successes = 0

    # -- introspection ---------------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        """The current state; an open breaker whose time is up reports half_open."""
        state = self._state
        if state is _OPEN and self._left_open(self._now()) <= 0.0:
            return _HALF_OPEN
        return state

    def _left_open(self, now: float) -> float:
        """Seconds this open breaker stays open. Never more than the trip's open time,
        even after the clock stepped backwards."""
        left = self._open_until - now
        if left > self._open_span:
            self._open_until = now + self._open_span
            return self._open_span
        return left

    def metrics(self) -> BreakerMetrics:
        with self._lock:
            calls, failures, slow = self._window.counts(self._now())
            return BreakerMetrics(self._state, calls, failures, slow)

    def __repr__(self) -> str:
        window = (
            f"window={self._window.size}"
            if isinstance(self._window, _CountWindow)
            else f"window_seconds={self._window.seconds:g}"
        )
        return (
            f"CircuitBreaker({self._name!r}, failure_rate={self._failure_rate:g}, {window}, "
            f"minimum_calls={self._minimum_calls}, open_for={self._open_for:g}, "
            f"half_open_calls={self._half_open_calls}; state={self.state.value})"
        )

    def clone(self, name: str) -> CircuitBreaker:
        """A new breaker with this one's options and its own state, named ``name``."""
        return self.replace(name=name)

    # -- manual control --------------------------------------------------------------

    def reset(self) -> None:
        """Back to closed, with an empty window."""
        self._set_state(_CLOSED, self._now())

    def force_open(self) -> None:
        """Reject every call until ``reset()``."""
        self._set_state(_FORCED_OPEN, self._now())

    def disable(self) -> None:
        """Admit every call and record nothing, until ``reset()``."""
        self._set_state(_DISABLED, self._now())

    def metrics_only(self) -> None:
        """Admit every call and keep recording, but never trip, until ``reset()``."""
        self._set_state(_METRICS_ONLY, self._now())

    def _set_state(self, state: BreakerState, now: float) -> None:
        with self._lock:
            change = self._transition(state, now)
        self._announce(change)

    # -- the permission-and-outcome core ---------------------------------------------

    def acquire(self, now: float | None = None) -> int:
        """Ask to make a call. Returns a permit to report the outcome with, or raises
        ``CircuitOpen`` (a fresh instance each time)."""
        if self._state is _CLOSED:
            return self._epoch
        return self._acquire_slow(self._now() if now is None else now)

    def _acquire_slow(self, now: float) -> int:
        state = self._state
        if state is _DISABLED or state is _METRICS_ONLY:
            return self._epoch
        if not events.active(self._listeners):
            # Plainly refused: no need for the lock (a stale read only delays by a call).
            if state is _OPEN:
                left = self._left_open(now)
                if left > 0.0:
                    raise CircuitOpen(self._name, left)
            if state is _FORCED_OPEN:
                raise CircuitOpen(self._name, None)
        change = None
        retry_after: float | None = None
        with self._lock:
            state = self._state
            if state is _OPEN and self._left_open(now) <= 0.0:
                change = self._transition(_HALF_OPEN, now)
                state = _HALF_OPEN
            if state is _HALF_OPEN:
                if self._probes < self._half_open_calls:
                    self._probes += 1
                    permit = self._epoch
                else:
                    permit = -1
            elif state is _CLOSED or state is _DISABLED or state is _METRICS_ONLY:
                permit = self._epoch
            else:
                permit = -1
                retry_after = self._open_until - now if state is _OPEN else None
        self._announce(change)
        if permit < 0:
            if events.active(self._listeners):
                event = BreakerRejected(self._name, now, state, retry_after)
                events.emit(event, self._listeners)
            raise CircuitOpen(self._name, retry_after)
        return permit

    def on_success(
        self, permit: int, duration: float | None = None, now: float | None = None
    ) -> None:
        """The call made with ``permit`` succeeded (in ``duration`` seconds, if known)."""
        slow = self._slow_call_duration
        if slow is not None and duration is not None and duration >= slow:
            self._record(permit, _SLOW, now)
        elif not (
            self._fast_success is not None
            and permit == self._epoch
            and self._state is _CLOSED
            and self._fast_success()
        ):
            self._record(permit, 0, now)

    def on_failure(
        self, permit: int, duration: float | None = None, now: float | None = None
    ) -> None:
        """The call made with ``permit`` failed."""
        slow = self._slow_call_duration
        if slow is not None and duration is not None and duration >= slow:
            self._record(permit, _FAILED | _SLOW, now)
        else:
            self._record(permit, _FAILED, now)

    def release(self, permit: int) -> None:
        """The call made with ``permit`` ended without an outcome (cancelled, or an
        ignored exception): a half-open probe slot is given back."""
        if self._state is not _HALF_OPEN:
            return
        with self._lock:
            if self._state is _HALF_OPEN and permit == self._epoch and self._probes > 0:
                self._probes -= 1

    def _record(self, permit: int, outcome: int, now: float | None) -> None:
        if self._state is _DISABLED:
            return
        change = None
        with self._lock:
            if permit != self._epoch:
                return  # admitted under an earlier state: its outcome no longer applies
            state = self._state
            if state is _CLOSED or state is _METRICS_ONLY:
                window = self._window
                if now is None and window.timed:
                    now = self._now()
                # Every recorded outcome is evaluated, a success included: the rates
                # can reach their thresholds as the window fills or old outcomes leave.
                calls, failures, slow = window.add(outcome, 0.0 if now is None else now)
                if state is _CLOSED and calls >= self._minimum_calls:
                    numerator, denominator = self._failure_threshold
                    tripped = failures * denominator >= numerator * calls
                    if not tripped and self._slow_threshold is not None:
                        numerator, denominator = self._slow_threshold
                        tripped = slow * denominator >= numerator * calls
                    if tripped:
                        change = self._transition(_OPEN, now if now is not None else self._now())
            elif state is _HALF_OPEN:
                if now is None:
                    now = self._now()
                if outcome:
                    change = self._transition(_OPEN, now)
                else:
                    self._probe_successes += 1
                    if self._probe_successes >= self._half_open_calls:
                        change = self._transition(_CLOSED, now)
        self._announce(change)

    def _transition(self, state: BreakerState, now: float) -> BreakerStateChanged | None:
        """Move to ``state`` (the lock is held). Returns the event to announce."""
        previous = self._state
        calls, failures, slow = self._window.counts(now)
        open_for = None
        if state is _OPEN:
            open_for = self._open_for
            if self._open_for_max is not None:
                open_for = min(self._open_for_max, self._open_for * 2.0 ** min(self._trips, 64))
            self._trips += 1
            self._open_span = open_for
            self._open_until = now + open_for
        elif state is _CLOSED:
            self._trips = 0
        if state is _HALF_OPEN:
            self._probes = 0
            self._probe_successes = 0
        if state is not _HALF_OPEN:
            self._window.clear()
        self._state = state
        self._epoch += 1
        if previous is state and state is not _OPEN:
            return None
        if not events.active(self._listeners):
            return None
        return BreakerStateChanged(
            self._name,
            now,
            previous,
            state,
            failures / calls if calls else None,
            slow / calls if calls else None,
            open_for,
        )

    def _announce(self, change: BreakerStateChanged | None) -> None:
        if change is not None:
            events.emit(change, self._listeners)

    def on_error(
        self,
        permit: int,
        error: BaseException,
        duration: float | None = None,
        now: float | None = None,
    ) -> None:
        """The call made with ``permit`` raised ``error``: recorded by the breaker's own
        rules. A failure if ``on`` matches it; no outcome at all (the permit is given
        back) for a rejection by an inner policy, an error ``ignore`` matches, or a
        ``BaseException`` that is not an ``Exception`` (cancellation); otherwise a
        success, since the dependency answered."""
        if not isinstance(error, Exception) or isinstance(error, Rejected):
            self.release(permit)
            return
        if (
            isinstance(error, self._ignore_types)
            if self._ignore_types is not None
            else self._ignore(error)
        ):
            self.release(permit)
            return
        failed = (
            isinstance(error, self._on_types) if self._on_types is not None else self._on(error)
        )
        if failed:
            self.on_failure(permit, duration, now)
        else:
            self.on_success(permit, duration, now)

    # -- drivers ---------------------------------------------------------------------

    def _sync_decorator(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """A decorated sync function: while the breaker is closed and nothing asks for
        durations, permit, call and success are done here, without the frames of
        ``_run`` (the path every call of a healthy dependency takes)."""
        window = self._window
        if not isinstance(window, _CountWindow) or self._slow_call_duration is not None:
            return super()._sync_decorator(fn)
        first = FirstResult(self, fn)
        breaker = self
        closed = _CLOSED  # while metered, an object no state is: see _metering.gate

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if breaker._state is not closed:
                result = breaker._run(fn, args, kwargs)
            else:
                permit = breaker._epoch
                try:
                    result = fn(*args, **kwargs)
                except BaseException as error:
                    breaker.on_error(permit, error)
                    raise
                if permit == breaker._epoch and breaker._state is _CLOSED and window.clean:
                    next(window.slots)  # a success in a clean ring: no lock (see _CountWindow)
                else:
                    breaker.on_success(permit)
            return result if first.checked else first.check(result)

        _metering.gate(self, wrapper, "closed")
        return wrapper

    def _run(self, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        permit = self._epoch if self._state is _CLOSED else self._acquire_slow(self._now())
        started = None if self._slow_call_duration is None else self._now()
        try:
            result = fn(*args, **kwargs)
        except BaseException as error:
            self.on_error(permit, error, None if started is None else self._now() - started)
            raise
        if started is None and permit == self._epoch and self._state is _CLOSED:
            fast = self._fast_success
            if fast is not None and fast():
                return result
        self.on_success(permit, None if started is None else self._now() - started)
        return result

    async def _arun(
        self, fn: Callable[..., Awaitable[R]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> R:
        permit = self._epoch if self._state is _CLOSED else self._acquire_slow(self._now())
        started = None if self._slow_call_duration is None else self._now()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as error:
            self.on_error(permit, error, None if started is None else self._now() - started)
            raise
        self.on_success(permit, None if started is None else self._now() - started)
        return result
