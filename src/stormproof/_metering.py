"""Metering: the counts that exporters (OpenTelemetry, Prometheus) read, kept in process.

Policies know nothing of exporters. While at least one exporter is on (``start()``
returned a handle that is not yet closed), every policy object is *metered*: its class
is swapped for a subclass of it whose drivers time the call on the policy's clock and
count its outcome into the ``Meter`` of the policy's name and kind. The failure path's
counts (retries, rejections, breaker transitions, failover switches) come from events,
through one listener. Gauges (a breaker's state, a budget's level, a bulkhead's calls
in flight) are read from the live objects when an exporter collects. When no exporter
is on, policies run their own classes and nothing is added to any call.

Counting in process, not in the exporter's instruments, is what keeps a metered call
cheap: one OpenTelemetry SDK ``Counter.add`` costs about 10 us and a prometheus_client
child ``inc()`` about 0.7 us here, against well under 1 us for all of a call's counts
below. Exporters read a ``snapshot()`` when they collect.

Attribute values are bounded: the policy's name (given in code), its kind, an outcome,
an attempt bucket and ``error_type``'s classes; never a message or an argument.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import threading
import weakref
from bisect import bisect_right
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from itertools import count
from time import perf_counter
from typing import Any

from . import _metric_names as names
from ._classify import classify
from ._core import events
from ._core.context import DETACHED, RETRYING
from ._core.drive import CALL, Core, Failure
from ._core.errors import BudgetExhausted, DeadlineExceeded, Rejected, Throttled

__all__ = [
    "BOUNDS",
    "Handle",
    "Histogram",
    "Meter",
    "Point",
    "attempt_bucket",
    "error_type",
    "is_metered",
    "register",
    "snapshot",
    "start",
]

BOUNDS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
"""Upper bounds (seconds, inclusive) of the duration histograms' buckets; a last
bucket holds everything above 60 s. From half a millisecond (a cache or a local
service) to a minute (a call retried through an outage)."""

_SUCCESS = (("outcome", "success"),)


def attempt_bucket(number: int) -> str:
    """An attempt's number as an attribute value: ``1``, ``2``, ``3`` or ``4+``."""
    return str(number) if number < 4 else "4+"


def error_type(error: BaseException) -> str:
    """A failure's class, bounded: the rejection's reason for stormproof's own refusals
    (``breaker_open``, ``bulkhead_full``, ``throttled``, ``budget``, ``deadline``), else
    the error's class as ``classify`` sees it (``transient``, ``timeout``, ``throttling``).
    """
    if isinstance(error, Rejected):
        if isinstance(error, BudgetExhausted):
            return "budget"
        if isinstance(error, Throttled):
            return "throttled"
        reason = _REJECTION_REASONS.get(type(error).__name__)
        return reason if reason is not None else "rejected"
    if isinstance(error, DeadlineExceeded):
        return "deadline"
    return classify(error)


_REJECTION_REASONS = {"CircuitOpen": "breaker_open", "BulkheadFull": "bulkhead_full"}


_BUCKETS = tuple((("attempt", attempt_bucket(n)),) for n in range(5))
"""The ``attempt`` attribute of attempt 1, 2, 3 and 4 or more (index 0 unused)."""


FOLD = 1024
"""Durations wait in a list until this many, then are folded into their histogram."""


class Histogram:
    """Durations in ``BOUNDS``' buckets, with their count, sum, least and greatest.

    ``pending.append(value)`` is how a call records one: a list append is atomic, so
    recording takes no lock and does no arithmetic. ``fold()`` (by whoever finds the
    list long, and before every read) moves what waits into the buckets, in C-speed
    batches: slicing and deleting a prefix are atomic too, so values appended during a
    fold wait for the next one and none is lost or counted twice.
    """

    __slots__ = ("count", "counts", "lock", "max", "min", "pending", "sum")

    def __init__(self) -> None:
        self.pending: list[float] = []
        self.lock = threading.Lock()
        self.counts = [0] * (len(BOUNDS) + 1)
        self.count = 0
        self.sum = 0.0
        self.min = float("inf")
        self.max = float("-inf")

    def add(self, value: float) -> None:
        pending = self.pending
        pending.append(value)
        if len(pending) >= FOLD:
            self.fold()

    def fold(self) -> None:
        with self.lock:
            pending = self.pending
            batch = pending[:]
            if not batch:
                return
            del pending[: len(batch)]
            batch.sort()  # then each bucket's count is where its bound cuts the batch
            counts = self.counts
            below = 0
            for index, bound in enumerate(BOUNDS):
                at = bisect_right(batch, bound, below)
                counts[index] += at - below
                below = at
            counts[-1] += len(batch) - below
            self.count += len(batch)
            self.sum += sum(batch)
            self.min = min(self.min, batch[0])
            self.max = max(self.max, batch[-1])

    def copy(self) -> Histogram:
        """What it holds now, everything recorded so far folded in."""
        self.fold()
        other = Histogram()
        with self.lock:
            other.counts = list(self.counts)
            other.count, other.sum, other.min, other.max = self.count, self.sum, self.min, self.max
        return other

    def merged(self, other: Histogram) -> Histogram:
        """Both's counts (folded copies, as ``copy`` returns)."""
        total = Histogram()
        total.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        total.count = self.count + other.count
        total.sum = self.sum + other.sum
        total.min = min(self.min, other.min)
        total.max = max(self.max, other.max)
        return total


Attributes = tuple[tuple[str, str], ...]


def _value(counter: count[int]) -> int:
    """How far an ``itertools.count`` has counted (its next value, read without
    advancing it)."""
    return int(counter.__reduce__()[1][0])


class Meter:
    """The counts of every policy of one name and kind, since metering started.

    Keyed by instrument name and the attributes beyond ``policy`` and ``policy.kind``
    (which every point of this meter shares). Calls and attempts are kept as duration
    histograms, whose counts are the ``calls`` and ``attempts`` counters. The hot
    paths take no lock: a success appends its duration to a histogram held apart
    (``ok``; ``first``: a Retry's first attempt), a cache lookup advances an
    ``itertools.count`` (atomic in C).
    """

    __slots__ = ("counters", "durations", "first", "kind", "lock", "lookups", "name", "ok")

    def __init__(self, name: str, kind: str) -> None:
        self.name = name
        self.kind = kind
        self.lock = threading.Lock()
        self.counters: dict[tuple[str, Attributes], int] = {}
        self.ok = Histogram()
        self.first = Histogram()
        self.durations: dict[tuple[str, Attributes], Histogram] = {
            (names.CALLS, _SUCCESS): self.ok,
            (names.ATTEMPTS, _SUCCESS + _BUCKETS[1]): self.first,
        }
        self.lookups = {result: count() for result in ("hit", "negative", "miss")}

    def add(self, instrument: str, attributes: Attributes, amount: int = 1) -> None:
        key = (instrument, attributes)
        with self.lock:
            self.counters[key] = self.counters.get(key, 0) + amount

    def fold(self) -> None:
        """Fold the success path's waiting durations into their buckets."""
        self.ok.fold()
        self.first.fold()

    def ended(self, instrument: str, attributes: Attributes, duration: float) -> None:
        """A call or an attempt ended (``instrument``: ``CALLS`` or ``ATTEMPTS``)."""
        key = (instrument, attributes)
        histogram = self.durations.get(key)
        if histogram is None:
            with self.lock:
                histogram = self.durations.setdefault(key, Histogram())
        histogram.add(duration)

    def copy(
        self,
    ) -> tuple[dict[tuple[str, Attributes], int], dict[tuple[str, Attributes], Histogram]]:
        with self.lock:
            counters = dict(self.counters)
            histograms = list(self.durations.items())
        stale = counters.pop((names.CACHE_LOOKUPS, _LOOKUP["stale"]), 0)
        for result, counter in self.lookups.items():
            found = _value(counter) - (stale if result == "miss" else 0)
            if found:
                counters[(names.CACHE_LOOKUPS, _LOOKUP[result])] = found
        if stale:
            counters[(names.CACHE_LOOKUPS, _LOOKUP["stale"])] = stale
        durations = {key: h.copy() for key, h in histograms}
        return counters, {key: h for key, h in durations.items() if h.count}


def _failure(error: BaseException) -> Attributes:
    return (("outcome", "failure"), ("error.type", error_type(error)))


# -- which objects are metered -------------------------------------------------------


class _State:
    """The live objects, the meters, and whether any exporter is on."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.policies: weakref.WeakSet[Any] = weakref.WeakSet()
        self.budgets: weakref.WeakSet[Any] = weakref.WeakSet()
        self.meters: dict[tuple[str, str], Meter] = {}
        self.handles = 0
        self.unsubscribe: Callable[[], None] | None = None


_state = _State()

_KINDS = {
    "Retry": "retry",
    "CircuitBreaker": "breaker",
    "Bulkhead": "bulkhead",
    "Timeout": "timeout",
    "Fallback": "fallback",
    "Hedge": "hedge",
    "Cache": "cache",
    "Chaos": "chaos",
    "Pipeline": "pipeline",
    "Failover": "failover",
    "TokenBucketBudget": "token_bucket",
    "FleetBudget": "fleet_budget",
    "RetryThrottle": "retry_throttle",
    "AdaptiveThrottle": "adaptive_throttle",
    "RatioBudget": "ratio_budget",
}


def kind_of(obj: object) -> str:
    """The ``policy.kind`` of a policy or budget: ``retry``, ``breaker``, ..."""
    cls = _plain_class(type(obj))
    for klass in cls.__mro__:
        kind = _KINDS.get(klass.__name__)
        if kind is not None:
            return kind
    return cls.__name__.lower()


def meter_for(name: str, kind: str) -> Meter:
    meter = _state.meters.get((name, kind))
    if meter is None:
        with _state.lock:
            meter = _state.meters.setdefault((name, kind), Meter(name, kind))
    return meter


def register(obj: Any) -> None:
    """A policy was built: remembered (weakly), and metered at once if an exporter is on."""
    with _state.lock:
        _state.policies.add(obj)
        if _state.handles:
            _meter(obj)


def register_budget(budget: Any) -> None:
    """A budget was built: its level is a gauge."""
    with _state.lock:
        _state.budgets.add(budget)


_SHUT = object()
"""What a gated fast path's variable holds while its policy is metered: nothing is it."""

_gates: weakref.WeakKeyDictionary[Any, list[tuple[Any, object]]] = weakref.WeakKeyDictionary()


def gate(policy: Any, wrapper: Callable[..., Any], variable: str) -> None:
    """``wrapper`` (a fast path a policy built, such as a decorated function's) takes
    its fast branch while its free ``variable`` is what the policy's state is compared
    with. While the policy is metered the variable holds an object no state is, so
    calls take the policy's (metered) driver; with nothing metered the fast path costs
    exactly what it did, without a check of its own."""
    code = getattr(wrapper, "__code__", None)
    closure = getattr(wrapper, "__closure__", None)
    if code is None or closure is None or variable not in code.co_freevars:
        raise ValueError(f"{wrapper!r} has no free variable {variable!r}")
    cell = closure[code.co_freevars.index(variable)]
    with _state.lock:
        _gates.setdefault(policy, []).append((cell, cell.cell_contents))
        if is_metered(policy):
            cell.cell_contents = _SHUT


def is_metered(policy: object) -> bool:
    return getattr(type(policy), "_metered", False) is True


def _meter(policy: Any) -> None:
    cls = type(policy)
    if getattr(cls, "_metered", False):
        return
    policy.__class__ = _metered_class(cls)
    for cell, _ in _gates.get(policy, ()):
        cell.cell_contents = _SHUT


def _unmeter(policy: Any) -> None:
    cls = type(policy)
    if getattr(cls, "_metered", False):
        policy.__class__ = cls.__bases__[0]
        for cell, value in _gates.get(policy, ()):
            cell.cell_contents = value


def _plain_class(cls: type) -> type:
    return cls.__bases__[0] if getattr(cls, "_metered", False) else cls


_metered_classes: dict[type, type] = {}


def _metered_class(cls: type) -> type:
    """``cls`` with drivers that count; the same layout, so an object can change to it
    and back."""
    metered = _metered_classes.get(cls)
    if metered is None:
        namespace: dict[str, Any] = {
            "__slots__": (),
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
            "__doc__": cls.__doc__,
            "_metered": True,
        }
        namespace.update(_drivers(cls))
        metered = _metered_classes[cls] = type(cls)(cls.__name__, (cls,), namespace)
    return metered


# -- the metered drivers ------------------------------------------------------------------


Metered = tuple["Meter", Callable[[], float], list[float], list[float]]
"""What a metered policy holds (in its ``_meter`` slot): its meter, its clock, and the
lists its successes' durations and its first attempts' are appended to."""


def _meter_of(policy: Any) -> Metered:
    """The policy's meter and clock, found at its first metered call (its name is set
    by then). Durations are read from the policy's clock, so a ``FakeClock`` makes
    them exact in tests. The drivers append to the meter's lists themselves: a method
    call would cost more than everything else a success records."""
    now = getattr(policy, "_now", None)
    meter = meter_for(policy.name, kind_of(policy))
    found: Metered = (
        meter,
        now if callable(now) else perf_counter,
        meter.ok.pending,
        meter.first.pending,
    )
    policy._meter = found
    return found


def _drivers(cls: type) -> dict[str, Any]:
    run = cls._run  # type: ignore[attr-defined]
    arun = cls._arun  # type: ignore[attr-defined]
    kind = _KINDS.get(cls.__name__)
    if kind == "retry":
        return _attempt_drivers(cls, run, arun)
    if kind == "cache":
        return _cache_drivers(cls, run, arun)
    return _drivers_for(run, arun)


def _drivers_for(run: Any, arun: Any) -> dict[str, Any]:
    """A policy's: the call, timed and counted by outcome."""

    def _run(
        self: Any, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        try:
            meter, now, ok, _ = self._meter
        except AttributeError:
            meter, now, ok, _ = _meter_of(self)
        start = now()
        try:
            result = run(self, fn, args, kwargs)
        except Exception as error:
            meter.ended(names.CALLS, _failure(error), now() - start)
            raise
        ok.append(now() - start)
        if len(ok) >= FOLD:
            meter.fold()
        return result

    async def _arun(
        self: Any, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        try:
            meter, now, ok, _ = self._meter
        except AttributeError:
            meter, now, ok, _ = _meter_of(self)
        start = now()
        try:
            result = await arun(self, fn, args, kwargs)
        except Exception as error:
            meter.ended(names.CALLS, _failure(error), now() - start)
            raise
        ok.append(now() - start)
        if len(ok) >= FOLD:
            meter.fold()
        return result

    return {"_run": _run, "_arun": _arun}


def _attempt_drivers(cls: type, run: Any, arun: Any) -> dict[str, Any]:
    """Retry's: the call, and each attempt it makes.

    A call whose first attempt succeeds (the hot path) is timed like any call, and
    that one attempt's duration is the call's: nothing else is added to it. A call
    whose first attempt failed (or returned a value to retry) goes through the
    Retry's ``_after_first``, which the metered class extends: it notes when and how
    the first attempt ended (for the driver, in a context variable: set only on that
    path), and wraps the rest of the call's core so that each later attempt (each
    ``CALL`` it yields) is timed and counted as it is made.
    """
    after_first = cls._after_first  # type: ignore[attr-defined]

    def _after_first(self: Any, opened: Any, outcome: Any) -> Any:
        core = after_first(self, opened, outcome)
        failed = type(outcome) is Failure
        if core is None and not failed:
            return None  # a success after all: the driver counts it
        meter, now, _, _ = self._meter
        record = _FirstAttempt(self, now(), _failure(outcome.error) if failed else _SUCCESS)
        record.token = _FIRST_ATTEMPT.set(record)
        return None if core is None else _attempts(core, meter, now)

    return {
        "_run": _attempt_run(run),
        "_arun": _attempt_arun(arun),
        "_after_first": _after_first,
    }


class _FirstAttempt:
    """How a metered Retry's first attempt ended, when it did not simply succeed."""

    __slots__ = ("attributes", "ended", "policy", "token")

    def __init__(self, policy: object, ended: float, attributes: Attributes) -> None:
        self.policy = policy
        self.ended = ended
        self.attributes = attributes
        self.token: contextvars.Token[_FirstAttempt | None] | None = None


_FIRST_ATTEMPT: contextvars.ContextVar[_FirstAttempt | None] = contextvars.ContextVar(
    "stormproof_first_attempt", default=None
)


def _first_attempt(policy: object) -> _FirstAttempt | None:
    """The record of ``policy``'s call that just ended, taken (the variable restored)."""
    record = _FIRST_ATTEMPT.get()
    if record is None or record.policy is not policy:
        return None
    assert record.token is not None
    _FIRST_ATTEMPT.reset(record.token)
    return record


def _attempts(core: Core, meter: Meter, now: Callable[[], float]) -> Core:
    """``core`` (a Retry's retries), with each attempt it asks for timed and counted."""
    number = 1
    value: Any = None
    thrown: BaseException | None = None
    while True:
        try:
            instruction = core.send(value) if thrown is None else core.throw(thrown)
        except StopIteration as stop:
            return stop.value
        finally:
            thrown = None
        attempt = instruction is CALL
        if attempt:
            number += 1
            begun = now()
        try:
            value = yield instruction
        except BaseException as error:  # a cancellation: handed to the core
            thrown, value = error, None
            continue
        if attempt:
            bucket = _BUCKETS[number if number < 4 else 4]
            failed = type(value) is Failure
            attributes = _failure(value.error) if failed else _SUCCESS
            meter.ended(names.ATTEMPTS, attributes + bucket, now() - begun)


def _attempt_run(run: Any) -> Callable[..., Any]:
    """A metered Retry's sync driver (see ``_attempt_drivers``)."""

    def _run(
        self: Any, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        try:
            meter, now, ok, first = self._meter
        except AttributeError:
            meter, now, ok, first = _meter_of(self)
        start = now()
        try:
            result = run(self, fn, args, kwargs)
        except Exception as error:
            _failed_call(self, meter, start, now(), error)
            raise
        except BaseException:  # cancelled: the call is not counted, its attempts are
            _interrupted_call(self, meter, start)
            raise
        record = _FIRST_ATTEMPT.get()
        if record is None or record.policy is not self:
            duration = now() - start
            ok.append(duration)
            first.append(duration)
        else:
            _retried_call(self, meter, start)
            ok.append(now() - start)
        if len(ok) >= FOLD:
            meter.fold()
        return result

    return _run


def _attempt_arun(arun: Any) -> Callable[..., Any]:
    """A metered Retry's async driver (see ``_attempt_drivers``)."""

    async def _arun(
        self: Any, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        try:
            meter, now, ok, first = self._meter
        except AttributeError:
            meter, now, ok, first = _meter_of(self)
        start = now()
        try:
            result = await arun(self, fn, args, kwargs)
        except Exception as error:
            _failed_call(self, meter, start, now(), error)
            raise
        except BaseException:  # cancelled: the call is not counted, its attempts are
            _interrupted_call(self, meter, start)
            raise
        record = _FIRST_ATTEMPT.get()
        if record is None or record.policy is not self:
            duration = now() - start
            ok.append(duration)
            first.append(duration)
        else:
            _retried_call(self, meter, start)
            ok.append(now() - start)
        if len(ok) >= FOLD:
            meter.fold()
        return result

    return _arun


def _retried_call(policy: Any, meter: Meter, start: float) -> None:
    """A call that succeeded after its first attempt: that attempt, counted."""
    record = _first_attempt(policy)
    assert record is not None
    meter.ended(names.ATTEMPTS, record.attributes + _BUCKETS[1], record.ended - start)


def _interrupted_call(policy: Any, meter: Meter, start: float) -> None:
    """A call interrupted (cancelled) after its first attempt failed: that attempt."""
    record = _first_attempt(policy)
    if record is not None:
        meter.ended(names.ATTEMPTS, record.attributes + _BUCKETS[1], record.ended - start)


def _failed_call(policy: Any, meter: Meter, start: float, ended: float, error: Exception) -> None:
    """A call that failed: its first attempt (if one was made), and the call."""
    record = _first_attempt(policy)
    if record is not None:
        meter.ended(names.ATTEMPTS, record.attributes + _BUCKETS[1], record.ended - start)
    elif policy._defer_nested and RETRYING.get():
        # Nested in another Retry: its one attempt was the call.
        meter.ended(names.ATTEMPTS, _failure(error) + _BUCKETS[1], ended - start)
    # else: refused before any attempt (the deadline had passed, or a budget said no)
    meter.ended(names.CALLS, _failure(error), ended - start)


_LOOKUP = {result: ((names.RESULT, result),) for result in ("hit", "stale", "miss", "negative")}


def _cache_drivers(cls: type, run: Any, arun: Any) -> dict[str, Any]:
    """Cache's: the call, and what each lookup found: ``hit`` (a fresh value),
    ``negative`` (a fresh cached failure), or ``miss`` (nothing fresh: the origin is
    asked); a miss answered from an expired entry counts as ``stale`` instead (told by
    the ``CacheStaleServed`` event)."""
    usable = cls._usable  # type: ignore[attr-defined]  # what every lookup ends in

    def _usable(self: Any, entry: Any, now: float) -> Any:
        found = usable(entry, now)
        try:
            meter = self._meter[0]
        except AttributeError:
            meter = _meter_of(self)[0]
        entry, fresh = found
        next(meter.lookups[("hit" if entry.error is None else "negative") if fresh else "miss"])
        return found

    drivers = _drivers_for(run, arun)
    drivers["_usable"] = _usable
    return drivers


# -- the failure path, from events ------------------------------------------------------


def _on_event(event: events.Event) -> None:
    kind = event.kind
    if kind == "retry.scheduled":
        reason = str(getattr(event, "error_class", "transient"))
        meter_for(event.policy, "retry").add(names.RETRIES, ((names.REASON, reason),))
    elif kind == "retry.gave_up":
        reason = getattr(event, "reason", "")
        if reason in ("budget", "deadline"):
            meter_for(event.policy, "retry").add(names.REJECTIONS, ((names.REASON, reason),))
    elif kind == "breaker.rejected":
        meter_for(event.policy, "breaker").add(names.REJECTIONS, ((names.REASON, "breaker_open"),))
    elif kind == "breaker.state_changed":
        state = _state_name(getattr(event, "state", ""))
        meter_for(event.policy, "breaker").add(names.BREAKER_TRANSITIONS, ((names.STATE, state),))
    elif kind == "bulkhead.rejected":
        meter_for(event.policy, "bulkhead").add(
            names.REJECTIONS, ((names.REASON, "bulkhead_full"),)
        )
    elif kind == "throttle.rejected":
        meter_for(event.policy, "adaptive_throttle").add(
            names.REJECTIONS, ((names.REASON, "throttled"),)
        )
    elif kind == "failover.switched":
        meter_for(event.policy, "failover").add(names.FAILOVER_SWITCHES, ())
    elif kind == "cache.stale_served" and not DETACHED.get():
        # a miss answered after all (see _cache_drivers); a background refresh that
        # failed answers nobody: its caller was served (and counted) already
        meter_for(event.policy, "cache").add(names.CACHE_LOOKUPS, _LOOKUP["stale"])


# -- starting and stopping ---------------------------------------------------------------


class Handle:
    """An exporter's hold on metering: policies stay metered until every handle closed."""

    __slots__ = ("_closed",)

    def __init__(self) -> None:
        self._closed = False

    def close(self) -> None:
        with _state.lock:
            if self._closed:
                return
            self._closed = True
            _state.handles -= 1
            if _state.handles:
                return
            for policy in list(_state.policies):
                _unmeter(policy)
            _rebind_pipelines()
            if _state.unsubscribe is not None:
                _state.unsubscribe()
                _state.unsubscribe = None


def start() -> Handle:
    """Meter every policy, those built from now on included, until the handle closes."""
    with _state.lock:
        _state.handles += 1
        if _state.handles == 1:
            for policy in list(_state.policies):
                _meter(policy)
            _rebind_pipelines()
            _state.unsubscribe = events.subscribe(_on_event)
        return Handle()


def _rebind_pipelines() -> None:
    """Pipelines hold their stages' drivers, bound once: bind them again."""
    for policy in list(_state.policies):
        rebind = getattr(policy, "_bind_stages", None)
        if rebind is not None:
            rebind()


def reset() -> None:
    """Forget every count (for tests, and a process that wants fresh totals)."""
    with _state.lock:
        _state.meters.clear()
        for policy in list(_state.policies):
            with contextlib.suppress(AttributeError):
                del policy._meter  # found again, new, at its next call


# -- what exporters read --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Point:
    """One value of one instrument: a counter's total, a gauge's level, or a histogram."""

    instrument: str
    attributes: dict[str, str]
    value: float
    histogram: Histogram | None = None


def snapshot() -> list[Point]:
    """Every instrument's points now: counters and histograms since metering started,
    gauges read from the live objects."""
    points: list[Point] = []
    with _state.lock:
        meters = list(_state.meters.values())
        policies = list(_state.policies)
        budgets = list(_state.budgets)
    for meter in meters:
        base = {names.POLICY: meter.name, names.POLICY_KIND: meter.kind}
        counters, histograms = meter.copy()
        for (instrument, attributes), value in counters.items():
            points.append(Point(instrument, _attributes(instrument, base, attributes), value))
        for (instrument, kept), histogram in histograms.items():
            points.append(Point(instrument, {**base, **dict(kept)}, histogram.count))
            duration = names.CALL_DURATION if instrument == names.CALLS else names.ATTEMPT_DURATION
            kept_attributes = {**base, **{k: v for k, v in kept if k != names.ERROR_TYPE}}
            points.append(Point(duration, kept_attributes, histogram.count, histogram))
    points = _merge_histograms(points)
    points.extend(_gauges(policies, budgets))
    return points


def _attributes(instrument: str, base: dict[str, str], attributes: Attributes) -> dict[str, str]:
    if instrument in _BY_POLICY_ONLY:
        return {names.POLICY: base[names.POLICY], **dict(attributes)}
    return {**base, **dict(attributes)}


_BY_POLICY_ONLY = {
    names.FLEET_DEGRADED,
    names.BREAKER_TRANSITIONS,
    names.CACHE_LOOKUPS,
    names.FAILOVER_SWITCHES,
    names.BREAKER_STATE,
    names.BULKHEAD_IN_FLIGHT,
}


def _merge_histograms(points: list[Point]) -> list[Point]:
    """Durations are kept per error type and reported per outcome: merge the former."""
    merged: dict[tuple[str, tuple[tuple[str, str], ...]], Point] = {}
    others: list[Point] = []
    for point in points:
        if point.histogram is None:
            others.append(point)
            continue
        key = (point.instrument, tuple(sorted(point.attributes.items())))
        seen = merged.get(key)
        if seen is None:
            merged[key] = point
            continue
        histogram = seen.histogram.merged(point.histogram)  # type: ignore[union-attr]
        merged[key] = Point(point.instrument, point.attributes, histogram.count, histogram)
    return others + list(merged.values())


_STATES = ("closed", "open", "half_open", "forced_open", "disabled", "metrics_only")
"""Every ``BreakerState``'s value: the breaker's state gauge has a point for each."""


def _state_name(state: object) -> str:
    return str(getattr(state, "value", state))


def _gauges(policies: list[Any], budgets: list[Any]) -> Iterator[Point]:
    states: dict[str, set[str]] = {}
    in_flight: dict[str, int] = {}
    for policy in policies:
        kind = kind_of(policy)
        if kind == "breaker":
            state = _state_name(policy.state)
            states.setdefault(policy.name, set()).add(state)
        elif kind == "bulkhead":
            in_flight[policy.name] = in_flight.get(policy.name, 0) + int(policy.active)
    for name, current in states.items():
        for state in _STATES:
            yield Point(
                names.BREAKER_STATE,
                {names.POLICY: name, names.STATE: state},
                1.0 if state in current else 0.0,
            )
    for name, active in in_flight.items():
        yield Point(names.BULKHEAD_IN_FLIGHT, {names.POLICY: name}, float(active))
    levels: dict[tuple[str, str], float] = {}
    for budget in budgets:
        available = getattr(budget, "available", None)
        if available is None:
            continue
        key = (budget.name, kind_of(budget))
        levels[key] = levels.get(key, 0.0) + float(available)
    for (name, kind), level in levels.items():
        yield Point(names.BUDGET_AVAILABLE, {names.POLICY: name, names.POLICY_KIND: kind}, level)
    fleet = sys.modules.get("stormproof._fleet")  # no backend exists before it is imported
    if fleet is not None:
        degraded: dict[str, bool] = {}
        for backend in list(fleet._BACKENDS):
            degraded[backend.name] = degraded.get(backend.name, False) or backend.degraded
        for name, down in degraded.items():
            yield Point(names.FLEET_DEGRADED, {names.POLICY: name}, 1.0 if down else 0.0)
