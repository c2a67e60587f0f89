"""The simulator's drivers: the real policy objects, driven through their sans-I/O cores
on the simulation's clock.

Each driver is a simulation process (a generator) taking the policy and an
``operation``: a callable returning the process of the work it protects, which yields
its waits (seconds, a ``Signal``, ``Within``) and returns an *outcome*. An outcome that
is an ``Exception`` is a failure; anything else is the work's value (the Outage Lab's
attempts answer None). Failures are values, not raised, which keeps failing runs fast.
A ``BaseException`` raised inside (an interrupted process) goes through unchanged,
never retried, recorded or swallowed, after every permit taken is given back.

They take the same decisions, at the same instants, as the policies' own sync and async
drivers; one behaviour suite per policy (``tests/parity``) runs through all of them.
The Outage Lab's clients (``_strategies``) are built from them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator, Hashable, Mapping
from typing import Any, Protocol

from stormproof import (
    AdaptiveThrottle,
    Bulkhead,
    BulkheadFull,
    Cache,
    CircuitBreaker,
    CircuitOpen,
    DeadlineExceeded,
    Failover,
    Fallback,
    Hedge,
    Rejected,
    Retry,
)
from stormproof.cache import copy_error  # the copy the policies' own drivers raise
from stormproof.classify import TRANSIENT, classify
from stormproof.retry import RetryState

from ._engine import TIMED_OUT, Process, Signal, Simulation, Within
from ._world import PENDING

__all__ = [
    "SERVED",
    "Outcomes",
    "RetryCall",
    "cached",
    "failing_over",
    "falling_back",
    "guarded",
    "hedging",
    "retrying",
    "throttling",
]

Operation = Callable[[], Generator[Any, Any, Any]]
"""Makes the process of one attempt at the work: it yields its waits and returns the
outcome (an ``Exception``: it failed; anything else: its value)."""


class _Served:
    __slots__ = ()

    def __repr__(self) -> str:
        return "SERVED"


SERVED: Any = _Served()
"""``cached``'s default ``stale``: a stale entry answers with its own value."""


class _Abandoned:
    __slots__ = ()


_ABANDONED: Any = _Abandoned()
"""What a coalesced flight's followers receive when its leader was interrupted: one
of them calls the origin itself."""


class Outcomes(Protocol):
    """Where requests end: the run's recorder."""

    def finish(self, arrived: float, outcome: Any) -> None:
        """The request that arrived at ``arrived`` ended now with ``outcome``."""
        ...


def _value(error: Exception) -> Exception:
    """An error a policy raised, made a plain value again. Errors may be shared values
    (a service's one throttling error): each raise would add frames to its traceback,
    keeping them alive for the rest of the run."""
    error.__traceback__ = None
    return error


# -- Retry ----------------------------------------------------------------------------------


def retrying(sim: Simulation, retry: Retry, operation: Operation) -> Generator[Any, Any, Any]:
    """Run ``operation`` under ``retry``'s state machine (the simulator's Retry driver, as
    a process). Returns the last outcome: a value, or the error that ended the call (a
    rejection by ``retry.begin``, such as ``Throttled`` or ``DeadlineExceeded``, included).

    Retries do not nest: when ``operation`` makes an attempt that is itself a call
    through a Retry (its process is ``retrying``'s), that inner Retry makes a single
    attempt and lets this one decide, unless it has ``retry_when_nested``."""
    try:
        state = retry.begin(sim.now)
    except Exception as refused:  # Throttled, DeadlineExceeded: rejected locally, never sent
        return refused
    judged = retry.options.retry_on_result is not None  # else a result is a plain success
    while True:
        attempt: Any = operation()  # a generator
        if attempt.gi_code is _RETRYING:
            attempt = _single_attempt(attempt)
        outcome = yield from attempt
        if outcome is None or not isinstance(outcome, Exception):
            if not judged:
                state.on_success()
                return outcome
            delay = state.on_result(outcome, sim.now)
        else:
            delay = state.on_exception(outcome, sim.now)
        if delay is None:
            return outcome
        if delay > 0:
            yield delay


_RETRYING = retrying.__code__


def _single_attempt(inner: Any) -> Any:
    """An attempt that is a call through another Retry (``inner``, not started yet): its
    Retry's single attempt instead, unless that Retry retries when nested."""
    while inner.gi_code is _RETRYING:
        arguments = inner.gi_frame.f_locals
        if arguments["retry"].retries_when_nested:
            break
        inner.close()
        inner = arguments["operation"]()
    return inner


class RetryCall:
    """The simulator's Retry driver as a chain of calls rather than a process: creating
    one starts a request, arrived now, whose attempts are made with ``attempt(deadline,
    receiver)`` (which returns the outcome when it is known at once, else ``PENDING``
    and later calls ``receiver.answer(outcome)``; this object is the receiver), through
    ``retry`` if there is one (its ``RetryState``: the same decisions ``retrying`` takes,
    at the same instants). ``done.finish(arrived, outcome)`` ends it, perhaps at once.
    ``judged``: whether ``retry`` has a ``retry_on_result`` (None: look it up; a
    caller making many calls through one Retry looks it up once).

    Retries do not nest: an attempt of another ``RetryCall`` that starts a call of its
    own for itself passes its receiver (that ``RetryCall``) as ``done``; the new call's
    Retry then makes a single attempt and lets the other decide, unless it has
    ``retry_when_nested``.

    ``start`` does what creating one does, on an object made without calling the
    class (``object.__new__(RetryCall)``): CPython (before 3.13) runs an ``__init__``
    in an evaluation loop of its own, which costs a caller that starts a call for
    every request more than the call's first steps."""

    __slots__ = ("arrived", "attempt", "deadline", "done", "judged", "sim", "state")

    state: RetryState | None

    def __init__(
        self,
        sim: Simulation,
        retry: Retry | None,
        attempt: Callable[[float | None, Any], Any],
        deadline: float | None,
        done: Outcomes,
        judged: bool | None = None,
    ) -> None:
        self.start(sim, retry, attempt, deadline, done, judged)

    def start(
        self,
        sim: Simulation,
        retry: Retry | None,
        attempt: Callable[[float | None, Any], Any],
        deadline: float | None,
        done: Outcomes,
        judged: bool | None,
    ) -> None:
        """Start the call (as creating it does)."""
        self.sim = sim
        self.attempt = attempt
        self.arrived = arrived = sim.now
        self.deadline = deadline
        self.done = done
        if retry is not None and (
            type(done) is not RetryCall or done.state is None or retry.retries_when_nested
        ):
            try:
                state = retry.begin(arrived)
            except Exception as refused:  # Throttled, DeadlineExceeded: rejected locally
                self.state = None
                self.judged = False
                done.finish(arrived, refused)
                return
            if judged is None:
                judged = retry.options.retry_on_result is not None
        else:
            state = None
            judged = False
        self.state = state
        self.judged = judged
        """Whether a result is judged (``retry_on_result``); else it is a success."""
        outcome = attempt(deadline, self)
        if outcome is not PENDING:  # else it comes back to `answer`
            self.answer(outcome)

    def run(self, _: object = None) -> None:
        """Make the next attempt, after a backoff."""
        self.answer(self.attempt(self.deadline, self))

    def finish(self, arrived: float, outcome: Any) -> None:
        """A call started for one of this call's attempts (a ``RetryCall`` with this
        one as its ``done``) ended with ``outcome``: the attempt's outcome."""
        self.answer(outcome)

    def answer(self, outcome: Any) -> None:
        """Settle an attempt's outcome, and the next ones as long as they are known at
        once; a pending attempt's outcome comes back here."""
        state = self.state
        while outcome is not PENDING:
            if state is None:
                delay = None
            elif outcome is None and not self.judged:
                state.on_success()
                delay = None
            elif isinstance(outcome, Exception):
                delay = state.on_exception(outcome, self.sim.now)
            else:  # a value: a success, unless retry_on_result says otherwise
                delay = state.on_result(outcome, self.sim.now)
            if delay is None:
                self.done.finish(self.arrived, outcome)
                return
            if delay > 0.0:
                self.sim.after(delay, self.run)
                return
            attempt = self.attempt
            outcome = attempt(self.deadline, self)


# -- CircuitBreaker and Bulkhead --------------------------------------------------------------


def guarded(
    sim: Simulation,
    breaker: CircuitBreaker | None,
    bulkhead: Bulkhead | None,
    operation: Operation,
) -> Generator[Any, Any, Any]:
    """Run ``operation`` behind ``breaker`` and then ``bulkhead`` (either may be None):
    the simulator's CircuitBreaker and Bulkhead driver. A refusal is the outcome
    (``CircuitOpen``, or ``BulkheadFull``: the bulkhead never queues here). The outcome
    is recorded by the breaker's own rules (``on_error``: its ``on`` and ``ignore``),
    with the call's duration on the simulation's clock."""
    permit = 0
    if breaker is not None:
        try:
            permit = breaker.acquire(sim.now)
        except CircuitOpen as refused:
            return refused
    if bulkhead is not None and not bulkhead.try_acquire():
        if breaker is not None:
            breaker.release(permit)
        return BulkheadFull(bulkhead.name)
    started = sim.now
    try:
        outcome = yield from operation()
    except BaseException:  # interrupted: no outcome, and every permit is given back
        if bulkhead is not None:
            bulkhead.release()
        if breaker is not None:
            breaker.release(permit)
        raise
    if bulkhead is not None:
        bulkhead.release()
    if breaker is not None:
        now = sim.now
        if outcome is None or not isinstance(outcome, Exception):
            breaker.on_success(permit, now - started, now)
        else:
            breaker.on_error(permit, outcome, now - started, now)
    return outcome


# -- Cache --------------------------------------------------------------------------------------


def cached(
    sim: Simulation,
    cache: Cache,
    key: Hashable,
    operation: Operation,
    flights: dict[Hashable, Signal] | None = None,
    deadline: float | None = None,
    stale: Any = SERVED,
) -> Generator[Any, Any, Any]:
    """Read ``key`` through ``cache``, calling the origin (``operation``) on a miss: the
    simulator's Cache driver. A fresh entry answers at once (a cached "not found" error
    as a copy of its own); past it the origin is called, its value stored, and its
    failure handed to ``cache.fallback`` (negative caching, the stale entry, or the
    error). ``stale``: what a stale entry answers with (by default its value).

    With ``flights`` (the requests that may share origin calls) and a cache that
    coalesces, concurrent misses for one key make one origin call: the others wait for
    its outcome (an error as a copy of their own) until ``deadline`` (an instant; None:
    no limit), then answer stale if they can, else ``DeadlineExceeded``. If the process
    calling the origin is interrupted, a waiting one calls it itself."""
    entry, fresh = cache.lookup(key, sim.now)
    if fresh:
        assert entry is not None
        error = entry.error
        if error is None:
            return entry.value
        return copy_error(error)  # a copy of its own, as the policy's drivers raise
    if flights is not None and not cache.options.coalesce:
        flights = None
    while True:
        flight = None
        if flights is not None:
            flight = flights.get(key)
            if flight is not None:  # another request is fetching this key: wait for it
                if deadline is None:
                    outcome = yield flight
                else:
                    outcome = yield Within(flight, max(0.0, deadline - sim.now))
                if outcome is TIMED_OUT:
                    if entry is not None and entry.error is None and sim.now < entry.stale_until:
                        return entry.value if stale is SERVED else stale
                    return DeadlineExceeded(
                        f"{cache.name}: the deadline passed while waiting for the origin"
                    )
                if outcome is _ABANDONED:
                    continue  # its caller was interrupted: call the origin ourselves
                if outcome is not None and isinstance(outcome, Exception):
                    return copy_error(outcome)  # a copy of its own
                return outcome
            flight = flights[key] = Signal(sim)
        try:
            outcome = yield from operation()
        except BaseException:
            if flights is not None and flight is not None:
                del flights[key]
                flight.succeed(_ABANDONED)
            raise
        if outcome is None or not isinstance(outcome, Exception):
            cache.fill(key, outcome, sim.now)
        else:
            try:
                value = cache.fallback(key, entry, outcome, sim.now)  # stale, or raises
                outcome = value if stale is SERVED else stale
            except Exception as failure:
                outcome = _value(failure)
        if flights is not None and flight is not None:
            del flights[key]
            flight.succeed(outcome)
        return outcome


# -- Failover -----------------------------------------------------------------------------------


def failing_over(
    sim: Simulation,
    failover: Failover,
    operation: Callable[[str], Generator[Any, Any, Any]],
    deadline: float | None = None,
    bulkheads: Mapping[str, Bulkhead] | None = None,
) -> Generator[Any, Any, Any]:
    """Do the work (``operation(region)``) in the first region of ``failover``'s plan
    that answers: the simulator's Failover driver, the same decisions (plan, admit,
    failed, succeeded) as Failover's own sync and async drivers. A region's bulkhead (in
    ``bulkheads``, if any) refuses without queueing. No further region is tried once
    ``deadline`` (an instant) has passed. Returns the value, or the last error."""
    last: Exception | None = None
    for name in failover.plan(sim.now):
        if last is not None and deadline is not None and sim.now >= deadline:
            break
        permit = failover.admit(name)
        if isinstance(permit, CircuitOpen):
            last = permit
            continue
        bulkhead = None if bulkheads is None else bulkheads.get(name)
        if bulkhead is not None and not bulkhead.try_acquire():
            failover.breaker(name).release(permit)
            last = BulkheadFull(bulkhead.name)
            continue
        try:
            outcome = yield from operation(name)
        except BaseException:  # interrupted: no outcome, and every permit is given back
            if bulkhead is not None:
                bulkhead.release()
            failover.breaker(name).release(permit)
            raise
        if bulkhead is not None:
            bulkhead.release()
        if outcome is None or not isinstance(outcome, Exception):
            failover.succeeded(name, permit)
            return outcome
        try:
            failover.failed(name, permit, outcome)
        except Exception:  # not a regional failure (re-raised): the region answered
            return _value(outcome)
        last = outcome
    return last


# -- Fallback -----------------------------------------------------------------------------------


def falling_back(
    sim: Simulation, fallback: Fallback, operation: Operation
) -> Generator[Any, Any, Any]:
    """Run ``operation``; a failure ``fallback``'s ``on`` matches gets its substitute
    (its ``value``, or ``handler(error)``, with a ``fallback.used`` event): the
    simulator's Fallback driver. Other failures are the outcome unchanged."""
    outcome = yield from operation()
    if outcome is None or not isinstance(outcome, Exception) or not fallback._matches(outcome):
        return outcome
    return fallback._substitute(outcome)


# -- AdaptiveThrottle, on its own -----------------------------------------------------------------


def throttling(
    sim: Simulation,
    throttle: AdaptiveThrottle,
    on: type[Exception] | Callable[[Exception], bool],
    operation: Operation,
) -> Generator[Any, Any, Any]:
    """Run ``operation`` behind ``throttle``: the decisions ``Retry(on=on, attempts=1,
    budget=throttle)`` takes (the library's way to use a throttle on its own). A request
    the throttle refuses ends with ``Throttled``, never attempted; a success, and a
    failure ``on`` does not match (the dependency answered), count as accepted; a
    failure ``on`` matches does not; a rejection by a policy inside teaches it nothing."""
    try:
        throttle.on_request()
    except Rejected as refused:  # Throttled: refused locally, never sent
        return refused
    outcome = yield from operation()
    if outcome is None or not isinstance(outcome, Exception):
        throttle.on_success(None)
    elif isinstance(outcome, Rejected):
        pass  # never executed: nothing was learned
    elif isinstance(outcome, on) if isinstance(on, type) else on(outcome):
        throttle.on_failure(TRANSIENT)
    else:
        throttle.on_failure(None)
    return outcome


# -- Hedge --------------------------------------------------------------------------------------


class _Cancelled(BaseException):
    """Thrown into a losing hedged attempt: it ends, giving back what it holds."""


class _Raised:
    """A hedged attempt that was interrupted: the interruption goes on through the call."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Race:
    """The hedged attempts of one call: each tells it when it ends (``ended``), waking
    the call if it waits (``waiting``)."""

    __slots__ = ("waiting",)

    def __init__(self) -> None:
        self.waiting: Signal | None = None

    def ended(self) -> None:
        waiting = self.waiting
        if waiting is not None:
            self.waiting = None
            waiting.succeed(None)

    def run(self, attempt: Generator[Any, Any, Any]) -> Generator[Any, Any, Any]:
        try:
            outcome = yield from attempt
        except _Cancelled:
            raise
        except BaseException as error:  # interrupted: handed to the call, which raises it
            outcome = _Raised(error)
        self.ended()
        return outcome


def _cancel(process: Process) -> None:
    """End a losing attempt still in flight, as a cancelled task ends: the drivers it
    runs through give back their permits. The request it sent stays at the server (which
    may still work on it); its later wake-ups find it ended."""
    with contextlib.suppress(_Cancelled, StopIteration):
        process._generator.throw(_Cancelled())
    process.fired = True


def hedging(sim: Simulation, hedge: Hedge, operation: Operation) -> Generator[Any, Any, Any]:
    """Run ``operation``, and after ``delay`` without an answer a hedged attempt beside
    it (up to ``max_hedges``), each granted by the hedge's budget (if any); an attempt
    that fails with an error ``on`` matches starts the next at once. The first success
    wins and the others are cancelled: the simulator's Hedge driver, the same decisions
    at the same instants as Hedge's own. Returns the winner's value, the error ``on``
    does not match, the budget's refusal of the request, or the last failure."""
    budget = hedge._budget
    if budget is not None:
        try:
            budget.on_request()
        except Rejected as refused:
            return refused
    race = _Race()
    start = sim.start
    pending = [start(race.run(operation()))]
    options = hedge.options
    max_hedges = options.max_hedges
    delay = options.delay
    hedges = 0
    last: Any = None
    try:
        while pending:
            done = [attempt for attempt in pending if attempt.fired]
            if not done:
                race.waiting = waiting = Signal(sim)
                yield Within(waiting, delay) if hedges < max_hedges else waiting
                race.waiting = None
                done = [attempt for attempt in pending if attempt.fired]
            failed: list[Any] = []
            for attempt in done:
                pending.remove(attempt)
                outcome = attempt.value
                if type(outcome) is _Raised:
                    raise outcome.error
                if outcome is None or not isinstance(outcome, Exception):
                    if budget is not None:
                        budget.on_success(None)  # a plain success: hedges are not refunded
                    return outcome
                if not hedge._matches(outcome):
                    return outcome
                error_class = classify(outcome)
                if budget is not None:
                    budget.on_failure(error_class)
                last = outcome
                failed.append(error_class)
            for error_class in failed or [TRANSIENT]:
                if hedges >= max_hedges:
                    break
                if budget is not None and budget.try_retry(error_class) is None:
                    hedges = max_hedges  # the budget said no: no more hedges
                    break
                hedges += 1
                pending.append(start(race.run(operation())))
                hedge.started(hedges + 1, "failure" if failed else "delay", sim.now)
        return last
    finally:
        for attempt in pending:
            if not attempt.fired:
                _cancel(attempt)
