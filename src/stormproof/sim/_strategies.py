"""Client strategies: how each app instance calls its dependency.

A strategy is a ``StrategySpec``; for every app instance it builds a client whose
``handle(op, key, deadline)`` is a simulation process returning how the request ended
(answered, from a stale entry, with a fallback's degraded answer, or the error).
Composed strategies drive the real policy objects (``Retry``, the budgets,
``AdaptiveThrottle``, ``Hedge``, ``CircuitBreaker``, ``Cache``, ``Fallback``,
``Failover``, ``Bulkhead``) through their sans-I/O cores on the simulation's clock,
with the simulator's drivers (``_drivers``, held to the policies' own drivers by
``tests/parity``); every built-in one but ``seed-patterns`` is composed.
``seed-patterns`` reproduces the usual post-mortem snippets exactly, flaws included.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Generator, Hashable
from functools import partial
from typing import Any, Protocol

from stormproof import (
    AdaptiveThrottle,
    Bulkhead,
    Cache,
    CircuitBreaker,
    CircuitOpen,
    Failover,
    Fallback,
    Hedge,
    RatioBudget,
    Retry,
    RetryThrottle,
    TokenBucketBudget,
)
from stormproof.breaker import BreakerState
from stormproof.options import TokenBucketOptions

from ._drivers import (
    Outcomes,
    RetryCall,
    cached,
    failing_over,
    falling_back,
    guarded,
    hedging,
    retrying,
    throttling,
)
from ._engine import Signal, Simulation
from ._fleet_scope import FleetScoped, fleet_budget
from ._strategy_spec import FALLBACK, HedgeSpec, RetrySpec, StrategySpec, unused_region
from ._world import Instance, World

__all__ = [
    "FALLBACK",
    "STALE",
    "Client",
    "Outcome",
    "build_client",
    "build_hedge",
    "build_retry",
    "retrying",
]

Outcome = Exception | None
"""What a simulated call ends with: None (it succeeded) or the error a caller would get.
Failures are values in the simulator, not raised, which keeps failing runs fast."""

STALE: Any = "stale"
"""``handle`` returns it for a request answered from a stale cache entry."""


_new = object.__new__


class Client(Protocol):
    uses_keys: bool
    """Whether requests' keys matter to it (it caches); when no client's do, keys are
    not drawn."""

    def handle(self, op: str, key: int, deadline: float) -> Generator[Any, Any, Any]:
        """A simulation process: returns None (answered), STALE, FALLBACK (a degraded
        answer), or the error."""
        ...

    def handle_now(self, op: str, key: int) -> None:
        """Start the same request, arrived now, with the run's deadline (as a process,
        or as a chain of calls where the strategy allows): the outcomes' ``finish`` is
        called once, perhaps at once."""
        ...

    def breaker_open(self) -> bool: ...


def finishing(
    process: Generator[Any, Any, Any], arrived: float, done: Outcomes
) -> Generator[Any, Any, None]:
    """Run a request's process, then tell ``done`` its outcome."""
    outcome = yield from process
    done.finish(arrived, outcome)


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

    def _breaker(self, op: str) -> Generator[Any, Any, Outcome]:
        sim = self.sim
        if self.open and sim.now - self.last_failure < 30.0:
            return SeedCircuitOpen("circuit open")
        error = yield from self.route.attempt(None, op)
        if error is not None:
            self.failures += 1
            self.last_failure = sim.now
            if self.failures >= 3:
                self.open = True
            return error
        self.failures = 0
        self.open = False
        return None

    def _retry(self, op: str) -> Generator[Any, Any, Outcome]:
        uniform = self.sim.random.uniform
        for k in range(5):
            error = yield from self._breaker(op)
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
        error = yield from self._retry(op)
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
    """Reads through a fallback and a cache (if any); every request through an adaptive
    throttle (if any), a retry (if any), hedged attempts (if any), failover over the
    regions (if any, with a breaker each), a breaker and a bulkhead per region (if any),
    then an attempt. The real stormproof policy objects, one set per instance."""

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
            self.cache = Cache.from_options(spec.cache.replace(clock=clock))
        self.retry = None if spec.retry is None else build_retry(spec.retry, sim, deadline)
        self._judged = self.retry is not None and self.retry.options.retry_on_result is not None
        names = [region.name for region in world.regions]
        self.primary = names[0]
        self.routes = instance.routes
        self.route = instance.routes[self.primary]
        self.breakers: dict[str, CircuitBreaker] = {}
        self.failover = None
        breaker = None if spec.breaker is None else spec.breaker.replace(clock=clock)
        if spec.failover is not None and len(names) > 1:
            failover = spec.failover.replace(
                regions=tuple((name, unused_region) for name in names), clock=clock
            )
            if breaker is not None:
                failover = failover.replace(breaker=breaker)
            self.failover = Failover.from_options(failover)
            self.breakers = {name: self.failover.breaker(name) for name in names}
        elif breaker is not None:
            primary = breaker.replace(name=f"{breaker.name}:{self.primary}")
            self.breakers = {self.primary: CircuitBreaker.from_options(primary)}
        self.bulkheads = (
            {}
            if spec.bulkhead is None
            else {name: Bulkhead.from_options(spec.bulkhead.replace(clock=clock)) for name in names}
        )
        self.hedge = None if spec.hedge is None else build_hedge(spec.hedge, sim)
        self.fallback = None
        if spec.fallback is not None:
            self.fallback = Fallback.from_options(spec.fallback.replace(clock=clock))
        self.throttle = None
        self.throttle_on: Any = None
        if spec.throttle is not None:
            options = spec.throttle.options.replace(clock=clock, random=sim.random.random)
            self.throttle = AdaptiveThrottle.from_options(options)
            self.throttle_on = spec.throttle.on
        self._flights: dict[Hashable, Signal] = {}
        self.honours = spec.honours_deadline
        """Whether attempts end at the caller's deadline (see ``handle``)."""
        self._attempt_now = self.route.attempt_now_for(self.honours)
        # An attempt says whether it is a write only to services whose writes take their
        # own time: elsewhere requests start as before, at no cost.
        self._attempt_write_now = partial(self.route.attempt_now, op="write")
        # Nothing between the retry and the attempt: skip the per-region layer.
        self.bare = (
            self.failover is None and not self.breakers and not self.bulkheads and not self.hedge
        )
        self.immediate = (
            self.bare and self.cache is None and self.fallback is None and self.throttle is None
        )
        if self.immediate:  # requests run as chains of calls (see `handle_now`)
            by_op = any(region.service.by_op for region in world.regions)
            call_now = self._call_now_by_op if by_op else self._call_now
            self.handle_now = call_now  # type: ignore[method-assign]
        self.uses_keys = self.cache is not None

    def breaker_open(self) -> bool:
        breaker = self.breakers.get(self.primary)
        if breaker is None:
            return False
        state = breaker.state
        return state is BreakerState.OPEN or state is BreakerState.FORCED_OPEN

    # The methods below return the next generator instead of delegating to it, so a
    # request runs through as few generator frames as its strategy needs.

    def _attempt_in(
        self, deadline: float | None, op: str, region: str
    ) -> Generator[Any, Any, Outcome]:
        """One attempt at ``region`` (the failover driver's operation)."""
        return self.routes[region].attempt(deadline, op)

    def _call(self, deadline: float | None, op: str) -> Generator[Any, Any, Outcome]:
        """One attempt: through failover over the regions, or behind the primary's
        breaker and bulkhead (if any)."""
        if self.failover is not None:
            return failing_over(
                self.sim,
                self.failover,
                partial(self._attempt_in, deadline, op),
                deadline,
                self.bulkheads,
            )
        if self.bare:
            return self.route.attempt(deadline, op)
        return guarded(
            self.sim,
            self.breakers.get(self.primary),
            self.bulkheads.get(self.primary),
            partial(self.route.attempt, deadline, op),
        )

    def _hedged(self, deadline: float | None, op: str) -> Generator[Any, Any, Outcome]:
        """One attempt, hedged if the strategy says so: a hedge takes the same way."""
        if self.hedge is None:
            return self._call(deadline, op)
        return hedging(self.sim, self.hedge, partial(self._call, deadline, op))

    def _retried(self, deadline: float | None, op: str) -> Generator[Any, Any, Outcome]:
        if self.retry is None:
            return self._hedged(deadline, op)
        if self.bare:
            attempt = partial(self.route.attempt, deadline, op)
            return retrying(self.sim, self.retry, attempt)
        return retrying(self.sim, self.retry, partial(self._hedged, deadline, op))

    def _origin(self, deadline: float | None, op: str) -> Generator[Any, Any, Outcome]:
        if self.throttle is None:
            return self._retried(deadline, op)
        operation = partial(self._retried, deadline, op)
        return throttling(self.sim, self.throttle, self.throttle_on, operation)

    def _read(self, key: int, deadline: float | None) -> Generator[Any, Any, Any]:
        if self.cache is None:
            return self._origin(deadline, "read")
        return cached(
            self.sim,
            self.cache,
            key,
            partial(self._origin, deadline, "read"),
            self._flights,  # coalesced if the cache says so
            deadline,
            STALE,
        )

    def handle(self, op: str, key: int, deadline: float) -> Generator[Any, Any, Any]:
        """A request with the caller's ``deadline`` (an instant). A strategy that
        honours it (``deadline = true`` in its retry table) shortens each attempt's
        timeout to the time left, sends none once no time is left (the attempt ends
        with ``DeadlineExceeded``), tries no further region and waits for another
        request's origin call no longer; one that does not uses the full attempt
        timeout for every attempt (the recorder still judges goodput by the deadline)."""
        limit = deadline if self.honours else None
        if op != "read":
            return self._origin(limit, op)
        if self.fallback is not None:
            return falling_back(self.sim, self.fallback, partial(self._read, key, limit))
        return self._read(key, limit)

    def handle_now(self, op: str, key: int) -> None:
        """Start a request, arrived now: the outcomes' ``finish`` is called once, perhaps
        at once. Strategies with nothing between the retry and the attempt and no cache
        (``immediate``) run it as a chain of calls (``_call_now``, chosen when the client
        is made); the others as a process."""
        arrived = self.sim.now
        process = self.handle(op, key, arrived + self.deadline)
        self.sim.start(finishing(process, arrived, self.done))

    def _call_now(self, op: str, key: int) -> None:
        """``handle_now`` as a chain of calls (an ``immediate`` client's)."""
        sim = self.sim
        deadline = sim.now + self.deadline if self.honours else None
        call = _new(RetryCall)  # started without calling the class: see RetryCall
        call.start(sim, self.retry, self._attempt_now, deadline, self.done, self._judged)

    def _call_now_by_op(self, op: str, key: int) -> None:
        """``_call_now`` toward services whose service times depend on the operation
        (its own copy: this runs for every request)."""
        attempt = self._attempt_now if op == "read" else self._attempt_write_now
        sim = self.sim
        deadline = sim.now + self.deadline if self.honours else None
        call = _new(RetryCall)
        call.start(sim, self.retry, attempt, deadline, self.done, self._judged)


def _budgets(budget: str | TokenBucketOptions | FleetScoped | None, sim: Simulation) -> list[Any]:
    """A budget of its own, from a ``budget`` option: a preset's name, a token bucket's
    options (or the fleet's bucket, ``scope = "fleet"``), or none."""
    if isinstance(budget, TokenBucketOptions):
        return [TokenBucketBudget.from_options(budget)]
    if isinstance(budget, FleetScoped):
        return [fleet_budget(budget, sim)]
    if budget == "aws-standard":
        return [TokenBucketBudget.aws_standard()]
    if budget == "aws-2026":
        return [TokenBucketBudget.aws_2026()]
    if budget == "ratio":
        return [RatioBudget(clock=sim.clock)]
    if budget == "grpc":
        return [RetryThrottle()]
    return []


def build_hedge(spec: HedgeSpec, sim: Simulation) -> Hedge:
    """An app instance's ``Hedge``, from a strategy's ``hedge`` table: on the simulation's
    clock, with a budget of its own."""
    budgets = _budgets(spec.budget, sim)
    return Hedge.from_options(spec.options.replace(budget=budgets or None, clock=sim.clock))


def build_retry(spec: RetrySpec, sim: Simulation, deadline: float) -> Retry:
    """An app instance's ``Retry``, from a strategy's ``retry`` table: on the simulation's
    clock and random stream, with budgets of its own, ending at the caller's ``deadline``
    (seconds) if the strategy says so."""
    budgets = _budgets(spec.budget, sim)
    clock = sim.clock
    if spec.breaker is not None:
        breaker = CircuitBreaker.from_options(spec.breaker.replace(clock=clock))
        budgets.append(RetryBreaker(breaker, sim))
    if spec.throttle is not None:
        throttle = spec.throttle.replace(clock=clock, random=sim.random.random)
        budgets.append(AdaptiveThrottle.from_options(throttle))
    options = spec.options
    random = sim.random.random
    throttling = options.throttling_backoff
    return Retry.from_options(
        options.replace(
            backoff=options.backoff.replace(random=random),
            throttling_backoff=None if throttling is None else throttling.replace(random=random),
            budget=budgets or None,
            deadline=deadline if spec.caller_deadline else options.deadline,
            clock=clock,
        )
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


def build_client(
    world: World, instance: Instance, spec: StrategySpec, deadline: float, done: Outcomes
) -> Client:
    """The client of one app instance: its requests have ``deadline`` seconds, and end
    in ``done``."""
    if spec.kind == "seed-patterns":
        return SeedClient(world, instance, deadline, done)
    return ComposedClient(world, instance, spec, deadline, done)
