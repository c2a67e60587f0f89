"""Client strategies: how each app instance calls its dependency.

A strategy is a ``StrategySpec``; for every app instance it builds a client whose
``handle(op, key, deadline)`` is a simulation process returning whether the answer
was stale. Composed strategies drive the real policy objects (``Retry``, the budgets,
``AdaptiveThrottle``, ``CircuitBreaker``, ``Cache``, ``Failover``, ``Bulkhead``)
through their sans-I/O cores on the simulation's clock; every built-in one but
``seed-patterns`` is composed. ``seed-patterns`` reproduces the usual post-mortem
snippets exactly, flaws included.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Generator
from dataclasses import asdict
from functools import partial
from typing import Any, Protocol

from stormproof import (
    AdaptiveThrottle,
    Backoff,
    Bulkhead,
    BulkheadFull,
    Cache,
    CircuitBreaker,
    CircuitOpen,
    Failover,
    RatioBudget,
    Retry,
    RetryThrottle,
    TokenBucketBudget,
)
from stormproof.breaker import BreakerState
from stormproof.classify import is_regional_failure

from ._engine import TIMED_OUT, Signal, Simulation, Within
from ._spec import BackoffSpec, BudgetSpec, RetrySpec, StrategySpec
from ._world import PENDING, Instance, Route, World

__all__ = ["BUILT_IN", "STALE", "Client", "Outcome", "build_client", "build_retry", "retrying"]

Outcome = Exception | None
"""What a simulated call ends with: None (it succeeded) or the error a caller would get.
Failures are values in the simulator, not raised, which keeps failing runs fast."""

Op = Callable[[], Generator[Any, Any, Outcome]]

STALE: Any = "stale"
"""``handle`` returns it for a request answered from a stale cache entry."""


class Client(Protocol):
    uses_keys: bool
    """Whether requests' keys matter to it (it caches); when no client's do, keys are
    not drawn."""

    def handle(self, op: str, key: int, deadline: float) -> Generator[Any, Any, Any]:
        """A simulation process: returns None (answered), STALE, or the error."""
        ...

    def handle_now(self, op: str, key: int) -> None:
        """Start the same request, arrived now, with the run's deadline (as a process,
        or as a chain of calls where the strategy allows): the outcomes' ``finish`` is
        called once, perhaps at once."""
        ...

    def breaker_open(self) -> bool: ...


class Outcomes(Protocol):
    """Where requests end: the run's recorder."""

    def finish(self, arrived: float, outcome: Any) -> None:
        """The request that arrived at ``arrived`` ended now with ``outcome``: None
        (answered), STALE, or the error."""
        ...


def finishing(
    process: Generator[Any, Any, Any], arrived: float, done: Outcomes
) -> Generator[Any, Any, None]:
    """Run a request's process, then tell ``done`` its outcome."""
    outcome = yield from process
    done.finish(arrived, outcome)


def _value(error: Exception) -> Exception:
    """An error a policy raised, made a plain value again. Errors may be shared values
    (a service's one throttling error): each raise would add frames to its traceback,
    keeping them alive for the rest of the run."""
    error.__traceback__ = None
    return error


def retrying(sim: Simulation, retry: Retry, operation: Op) -> Generator[Any, Any, Outcome]:
    """Run ``operation`` under ``retry``'s state machine (the simulator's Retry driver).
    Returns None, or the error that ended the call."""
    try:
        state = retry.begin(sim.now)
    except Exception as refused:  # Throttled: rejected locally, never sent
        return refused
    while True:
        error = yield from operation()
        if error is None:
            state.on_success()
            return None
        delay = state.on_exception(error, sim.now)
        if delay is None:
            return error
        if delay > 0:
            yield delay


class RetryCall:
    """A request as a chain of calls rather than a process: its attempts, driven by the
    outcomes ``Route.attempt_now`` reports (it is their receiver), through the retry
    loop if there is one (``state``, a ``RetryState``: the same decisions ``retrying``
    takes, at the same instants); ``done.finish(arrived, outcome)`` ends it."""

    __slots__ = ("arrived", "deadline", "done", "route", "sim", "state")

    def __init__(
        self, route: Route, arrived: float, deadline: float, state: Any, done: Outcomes
    ) -> None:
        self.route = route
        self.sim = route._sim
        self.arrived = arrived
        self.deadline = deadline
        self.state = state
        self.done = done

    def run(self, _: object = None) -> None:
        """Make the next attempt: the first, or the one after a backoff."""
        self.answer(self.route.attempt_now(self.deadline, self))

    def answer(self, outcome: Outcome) -> None:
        """Settle an attempt's outcome, and the next ones as long as they are known at
        once; a pending attempt's outcome comes back here."""
        state = self.state
        while outcome is not PENDING:
            if outcome is None:
                if state is not None:
                    state.on_success()
                self.done.finish(self.arrived, None)
                return
            delay = None if state is None else state.on_exception(outcome, self.sim.now)
            if delay is None:
                self.done.finish(self.arrived, outcome)
                return
            if delay > 0:
                self.sim.after(delay, self.run)
                return
            outcome = self.route.attempt_now(self.deadline, self)


# -- the seed patterns, exactly as the post-mortem blog writes them -------------------------


class SeedRetryError(Exception):
    """The snippet's generic error: the original one is dropped."""


class SeedCircuitOpen(Exception):
    pass


class SeedClient:
    """5 attempts on every exception, sleeping min(10, 0.5 * 2**k) plus up to 10% before
    each retry *and after the last failure*; a breaker opening after 3 consecutive
    failures, refusing calls until 30 s after the last failure, then letting everyone
    through; a 1000-entry, 300 s TTL cache on reads, with no stale serving."""

    def __init__(self, world: World, instance: Instance, deadline: float, done: Outcomes) -> None:
        self.route = instance.routes[world.primary.name]
        self.deadline = deadline
        self.done = done
        self.sim = world.sim
        self.failures = 0
        self.open = False
        self.last_failure = -1e18
        self.cache: OrderedDict[int, float] = OrderedDict()  # key -> expiry
        self.uses_keys = True

    def breaker_open(self) -> bool:
        return self.open and self.sim.now - self.last_failure < 30.0

    def handle_now(self, op: str, key: int) -> None:
        # The snippets sleep inside their loops: each request runs as a process.
        arrived = self.sim.now
        process = self.handle(op, key, arrived + self.deadline)
        self.sim.start(finishing(process, arrived, self.done))

    def _breaker(self) -> Generator[Any, Any, Outcome]:
        sim = self.sim
        if self.open and sim.now - self.last_failure < 30.0:
            return SeedCircuitOpen("circuit open")
        error = yield from self.route.attempt()
        if error is not None:
            self.failures += 1
            self.last_failure = sim.now
            if self.failures >= 3:
                self.open = True
            return error
        self.failures = 0
        self.open = False
        return None

    def _retry(self) -> Generator[Any, Any, Outcome]:
        uniform = self.sim.random.uniform
        for k in range(5):
            error = yield from self._breaker()
            if error is None:
                return None
            delay = min(10.0, 0.5 * 2**k)
            yield delay + uniform(0.0, 0.1 * delay)
        return SeedRetryError("max retries exceeded")

    def handle(self, op: str, key: int, deadline: float) -> Generator[Any, Any, Any]:
        now = self.sim.now
        cache = self.cache
        if op == "read":
            expires = cache.get(key)
            if expires is not None:
                if now < expires:
                    cache.move_to_end(key)
                    return None
                del cache[key]
        error = yield from self._retry()
        if error is not None:
            return error
        if op == "read":
            cache[key] = self.sim.now + 300.0
            cache.move_to_end(key)
            while len(cache) > 1000:
                cache.popitem(last=False)
        return None


# -- composed strategies: the policies a StrategySpec names, in the recommended order ------


class ComposedClient:
    """Reads through a cache (if any); every request through a retry (if any), failover
    over the regions (if any, with a breaker each), a breaker and a bulkhead per region
    (if any), then an attempt. The real stormproof policy objects, one set per instance."""

    def __init__(
        self,
        world: World,
        instance: Instance,
        spec: StrategySpec,
        deadline: float,
        done: Outcomes,
    ) -> None:
        sim = world.sim
        clock = sim.clock
        self.sim = sim
        self.deadline = deadline
        self.done = done
        self.cache = None
        if spec.cache is not None:
            self.cache = Cache(**asdict(spec.cache), clock=clock)
        self.coalesce = spec.cache is not None and spec.cache.coalesce
        self.retry = None if spec.retry is None else build_retry(spec.retry, sim, deadline)
        names = [region.name for region in world.regions]
        self.primary = names[0]
        self.routes = instance.routes
        self.route = instance.routes[self.primary]
        self.breakers: dict[str, CircuitBreaker] = {}
        self.failover = None
        if spec.breaker is not None:
            b = spec.breaker
            template = CircuitBreaker("dependency", **asdict(b), clock=clock)
        else:
            template = None
        if spec.failover is not None and len(names) > 1:
            self.failover = Failover(
                dict.fromkeys(names, _unused),
                breaker=template or CircuitBreaker("dependency", clock=clock),
                failback_after=spec.failover.failback_after,
                probe_interval=spec.failover.probe_interval,
                clock=clock,
            )
            self.breakers = {name: self.failover.breaker(name) for name in names}
        elif template is not None:
            self.breakers = {self.primary: template.clone(f"dependency:{self.primary}")}
        self.bulkheads = (
            {}
            if spec.bulkhead is None
            else {name: Bulkhead(spec.bulkhead, clock=clock) for name in names}
        )
        self._flights: dict[int, Signal] = {}
        # Nothing between the retry and the attempt: skip the per-region layer.
        self.bare = self.failover is None and not self.breakers and not self.bulkheads
        self.immediate = self.bare and self.cache is None
        self.uses_keys = self.cache is not None

    def breaker_open(self) -> bool:
        breaker = self.breakers.get(self.primary)
        if breaker is None:
            return False
        state = breaker.state
        return state is BreakerState.OPEN or state is BreakerState.FORCED_OPEN

    def _region(self, name: str, deadline: float) -> Generator[Any, Any, Outcome]:
        """One attempt at one region, behind its breaker and bulkhead (if any)."""
        breaker = self.breakers.get(name)
        permit = 0
        if breaker is not None:
            try:
                permit = breaker.acquire(self.sim.now)
            except CircuitOpen as refused:
                return refused
        bulkhead = self.bulkheads.get(name)
        if bulkhead is not None and not bulkhead.try_acquire():
            if breaker is not None:
                breaker.release(permit)
            return BulkheadFull(bulkhead.name)
        error = yield from self.routes[name].attempt(deadline)
        if bulkhead is not None:
            bulkhead.release()
        if breaker is not None:
            if error is not None and is_regional_failure(error):
                breaker.on_failure(permit, None, self.sim.now)
            else:
                breaker.on_success(permit, None, self.sim.now)
        return error

    def _failover(self, deadline: float) -> Generator[Any, Any, Outcome]:
        """The simulator's Failover driver: the same decisions (plan, admit, failed,
        succeeded) as Failover's own sync and async drivers."""
        failover = self.failover
        assert failover is not None
        sim = self.sim
        last: Exception | None = None
        for name in failover.plan(sim.now):
            if last is not None and sim.now >= deadline:
                break
            permit = failover.admit(name)
            if isinstance(permit, CircuitOpen):
                last = permit
                continue
            bulkhead = self.bulkheads.get(name)
            if bulkhead is not None and not bulkhead.try_acquire():
                failover.breaker(name).release(permit)
                last = BulkheadFull(bulkhead.name)
                continue
            error = yield from self.routes[name].attempt(deadline)
            if bulkhead is not None:
                bulkhead.release()
            if error is None:
                failover.succeeded(name, permit)
                return None
            try:
                failover.failed(name, permit, error)
            except Exception:  # not a regional failure (re-raised): the region answered
                return _value(error)
            last = error
        return last

    # The three methods below return the next generator instead of delegating to it,
    # so a request runs through as few generator frames as its strategy needs.

    def _call(self, deadline: float) -> Generator[Any, Any, Outcome]:
        if self.failover is not None:
            return self._failover(deadline)
        if self.bare:
            return self.route.attempt(deadline)
        return self._region(self.primary, deadline)

    def _origin(self, deadline: float) -> Generator[Any, Any, Outcome]:
        if self.retry is None:
            return self._call(deadline)
        if self.bare:
            attempt = partial(self.route.attempt, deadline)
            return retrying(self.sim, self.retry, attempt)
        return retrying(self.sim, self.retry, lambda: self._call(deadline))

    def handle(self, op: str, key: int, deadline: float) -> Generator[Any, Any, Any]:
        if self.cache is None or op != "read":
            return self._origin(deadline)
        return self._cached(key, deadline)

    def handle_now(self, op: str, key: int) -> None:
        """Start a request, arrived now: the outcomes' ``finish`` is called once, perhaps
        at once. Strategies with nothing between the retry and the attempt and no cache
        (``immediate``) run it as a chain of calls; the others as a process."""
        arrived = self.sim.now
        deadline = arrived + self.deadline
        done = self.done
        if not self.immediate:
            self.sim.start(finishing(self.handle(op, key, deadline), arrived, done))
            return
        state = None
        if self.retry is not None:
            try:
                state = self.retry.begin(arrived)
            except Exception as refused:  # Throttled: rejected locally, never sent
                done.finish(arrived, refused)
                return
        call = RetryCall(self.route, arrived, deadline, state, done)
        call.answer(self.route.attempt_now(deadline, call))

    def _cached(self, key: int, deadline: float) -> Generator[Any, Any, Any]:
        cache = self.cache
        assert cache is not None
        sim = self.sim
        entry, fresh = cache.lookup(key, sim.now)
        if fresh:
            return None
        flight = None
        if self.coalesce:
            flight = self._flights.get(key)
            if flight is not None:  # another request is fetching this key: wait for it
                outcome = yield Within(flight, max(0.0, deadline - sim.now))
                if outcome is TIMED_OUT:
                    if entry is None:
                        return TimeoutError("the deadline passed waiting for the origin")
                    return STALE
                return outcome
            flight = self._flights[key] = Signal(sim)
        error = yield from self._origin(deadline)
        if error is None:
            cache.fill(key, True, sim.now)
            outcome = None
        else:
            try:
                cache.fallback(key, entry, error, sim.now)  # the stale value, or raises
                outcome = STALE
            except Exception as failure:
                outcome = _value(failure)
        if flight is not None:
            del self._flights[key]
            flight.succeed(outcome)
        return outcome


def _backoff(spec: BackoffSpec, sim: Simulation) -> Backoff:
    return Backoff(**asdict(spec), random=sim.random.random)


def build_retry(spec: RetrySpec, sim: Simulation, deadline: float) -> Retry:
    budgets: list[Any] = []
    if isinstance(spec.budget, BudgetSpec):
        budgets.append(TokenBucketBudget(**asdict(spec.budget)))
    elif spec.budget == "aws-standard":
        budgets.append(TokenBucketBudget.aws_standard())
    elif spec.budget == "aws-2026":
        budgets.append(TokenBucketBudget.aws_2026())
    elif spec.budget == "ratio":
        budgets.append(RatioBudget(clock=sim.clock))
    elif spec.budget == "grpc":
        budgets.append(RetryThrottle())
    if spec.breaker is not None:
        breaker = CircuitBreaker("retries", **asdict(spec.breaker), clock=sim.clock)
        budgets.append(RetryBreaker(breaker, sim))
    if spec.throttle is not None:
        t = spec.throttle
        budgets.append(AdaptiveThrottle(**asdict(t), clock=sim.clock, random=sim.random.random))
    return Retry(
        on=is_regional_failure if spec.on == "regional" else Exception,
        attempts=spec.attempts,
        backoff=_backoff(spec.backoff, sim),
        throttling_backoff=None
        if spec.throttling_backoff is None
        else _backoff(spec.throttling_backoff, sim),
        budget=budgets or None,
        deadline=deadline if spec.deadline else None,
        clock=sim.clock,
    )


class RetryBreaker:
    """A circuit breaker that only stops retries (first attempts always go): every
    attempt's outcome is recorded in a real ``CircuitBreaker``, and a retry is allowed
    only while it is closed. Used as one of a Retry's budgets."""

    def __init__(self, breaker: CircuitBreaker, sim: Simulation) -> None:
        self.breaker = breaker
        self.sim = sim
        self.name = breaker.name

    def on_request(self) -> None:
        return None

    def try_retry(self, error_class: Any) -> object | None:
        return 0 if self.breaker.state is BreakerState.CLOSED else None

    def cancel_retry(self, receipt: object) -> None:
        return None

    def _record(self, failed: bool) -> None:
        try:
            permit = self.breaker.acquire(self.sim.now)
        except CircuitOpen:
            return  # open: outcomes wait for the half-open probes
        if failed:
            self.breaker.on_failure(permit, None, self.sim.now)
        else:
            self.breaker.on_success(permit, None, self.sim.now)

    def on_success(self, receipt: object | None) -> None:
        self._record(False)

    def on_failure(self, error_class: Any) -> None:
        self._record(error_class is not None)


def _unused(*args: Any, **kwargs: Any) -> Any:  # pragma: no cover - the simulator drives it
    raise RuntimeError("the simulator calls regions itself")


def build_client(
    world: World, instance: Instance, spec: StrategySpec, deadline: float, done: Outcomes
) -> Client:
    """The client of one app instance: its requests have ``deadline`` seconds, and end
    in ``done``."""
    if spec.kind == "seed-patterns":
        return SeedClient(world, instance, deadline, done)
    return ComposedClient(world, instance, spec, deadline, done)


_AWS_ON = "regional"

BUILT_IN: dict[str, dict[str, Any]] = {
    "naive": {
        "summary": "immediate retries, 5 attempts, on every error",
        "retry": {
            "attempts": 5,
            "on": "all",
            "backoff": {"base": 0.0, "cap": 0.0, "jitter": "none"},
        },
    },
    "seed-patterns": {
        "summary": "the usual post-mortem snippets, flaws included: 5 attempts from 0.5 s, "
        "a consecutive-failure breaker, a 5-minute TTL cache",
        "kind": "seed-patterns",
    },
    "aws-legacy": {
        "summary": "botocore legacy DynamoDB profile: 10 attempts, 50 ms doubling, no jitter",
        "retry": {
            "attempts": 10,
            "on": _AWS_ON,
            "backoff": {"base": 0.05, "cap": 3600.0, "jitter": "none"},
        },
    },
    "aws-standard": {
        "summary": "AWS SDK standard mode: 3 attempts, full jitter from 1 s, a 500-token quota "
        "(costs 5, timeouts 10)",
        "retry": {
            "attempts": 3,
            "on": _AWS_ON,
            "budget": "aws-standard",
            "backoff": {"base": 1.0, "cap": 20.0},
        },
    },
    "aws-2026": {
        "summary": "AWS SDK 2026 behaviour for DynamoDB: 4 attempts, 25 ms base (1 s for "
        "throttling), quota costs 14/5",
        "retry": {
            "attempts": 4,
            "on": _AWS_ON,
            "budget": "aws-2026",
            "backoff": {"base": 0.025, "cap": 20.0},
            "throttling_backoff": {"base": 1.0, "cap": 20.0},
        },
    },
    "stormproof": {
        "summary": "stale-serving cache, the caller's deadline, retry with a shared budget and "
        "adaptive throttling, failover with a breaker per region, a bulkhead per region",
        "cache": {"ttl": 300.0, "stale_ttl": 21600.0},
        "retry": {
            "attempts": 3,
            "on": "regional",
            "budget": "aws-2026",
            "deadline": True,
            "backoff": {"base": 0.05, "cap": 20.0},
            "throttle": {"window": 30.0},
        },
        "breaker": {
            "failure_rate": 0.5,
            "window": 20,
            "minimum_calls": 10,
            "open_for": 10.0,
            "open_for_max": 60.0,
        },
        "failover": {"failback_after": 30.0, "probe_interval": 5.0},
        "bulkhead": 64,
    },
}
