"""Everything one run simulates, apart from the client strategy: dependencies in
regions, name resolution, app instances and their connections, and the one thing
every strategy does in the end, an attempt toward a region's endpoint."""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Protocol

from ._dns import HostCache, Resolver, error_for
from ._engine import TIMED_OUT, Signal, Simulation, Within
from ._errors import AttemptTimeout, timed_out
from ._series import Names, Series
from ._service import Job, Service

__all__ = ["PENDING", "Instance", "Receiver", "Region", "Route", "World"]


class _Pending:
    __slots__ = ()

    def __repr__(self) -> str:
        return "PENDING"


PENDING: Any = _Pending()
"""What ``World.attempt_now`` returns when the outcome will come through its callback."""


class Receiver(Protocol):
    def answer(self, outcome: Any) -> None:
        """An attempt's outcome: None (it succeeded) or the error."""
        ...


class _Attempt(Job):
    """An attempt at the service, waiting for its answer or its timeout, whichever
    comes first (it is a job for the service and a timer for the engine); the first
    tells ``receiver``."""

    __slots__ = ("live", "receiver", "route", "timeout")

    def __init__(
        self,
        receiver: Receiver,
        route: Route,
        timeout: float,
        deadline: float,
        setup: bool,
        op: str = "read",
    ) -> None:
        self.receiver = receiver
        self.route = route
        self.timeout = timeout
        self.deadline = deadline
        self.setup = setup
        self.op = op
        self.live = True

    def reply(self, answer: Any) -> None:
        if self.live:
            self.live = False
            self.receiver.answer(answer)

    def expire(self) -> None:
        if self.live:
            self.live = False
            self.receiver.answer(self.route.timed_out(self.timeout))


class _FarAttempt(_Attempt):
    """An attempt over a network with a round-trip time: its answer reaches the client
    ``back`` seconds after the service gave it (if the client still waits then)."""

    __slots__ = ("back",)

    back: float

    def reply(self, answer: Any) -> None:
        if self.live:
            sim = self.route._sim
            sim.schedule(sim.now + self.back, self._arrived, answer)

    def _arrived(self, answer: Any) -> None:
        if self.live:
            self.live = False
            self.receiver.answer(answer)


class _FarJob(Job):
    """A process's attempt over a network with a round-trip time: the answer fires
    ``done`` ``back`` seconds after the service gave it."""

    __slots__ = ("back", "done", "sim")

    def __init__(
        self, sim: Simulation, done: Signal, deadline: float, setup: bool, op: str, back: float
    ) -> None:
        self.sim = sim
        self.done = done
        self.deadline = deadline
        self.setup = setup
        self.op = op
        self.back = back

    def reply(self, answer: Any) -> None:
        sim = self.sim
        sim.schedule(sim.now + self.back, self.done.succeed, answer)


def _deliver(argument: tuple[Service, Job]) -> None:
    """A request crossed the network to its service: it arrives there (a refusal
    travels back as an answer would)."""
    service, job = argument
    refused = service.admit()
    if refused is None:
        service.accept(job)
    else:
        job.reply(refused)


@dataclass
class Region:
    """A place that can do the work: a name, the endpoint's host name, its service,
    and the network's round-trip time to it (``rtt``: a sampler of seconds, or None
    for none)."""

    name: str
    hostname: str
    service: Service
    attempts: Any = None  # the per-second counter of attempts toward it
    rtt: Callable[[], float] | None = None


@dataclass
class Instance:
    """One app instance: its own DNS cache, and its way to each region (``routes``,
    by region name, made by the world); the strategy builds its policy objects."""

    number: int
    dns: HostCache
    connections: int
    routes: dict[str, Route] = field(default_factory=dict)

    def reconnect(self, region: str) -> None:
        """Every connection of the pool to ``region`` is lost: each must be re-opened."""
        self.routes[region].setups_due = self.connections


class Route:
    """One app instance's way to one region: the name it resolves (through the
    instance's DNS cache), its connection pool (``setups_due``: connections lost and
    not yet re-opened, each paying the service's set-up time on its next request),
    and the attempts it makes there."""

    __slots__ = (
        "_address_until",
        "_entries",
        "_full",
        "_full_timed_out",
        "_rtt",
        "_schedule",
        "_sim",
        "_timeouts",
        "attempts",
        "dns",
        "hostname",
        "instance",
        "service",
        "setups_due",
    )

    def __init__(self, world: World, instance: Instance, region: Region) -> None:
        self._sim = world.sim
        self.instance = instance
        self.hostname = region.hostname
        self.service = region.service
        self.attempts: list[float] = region.attempts
        self.dns = instance.dns
        self._entries = instance.dns.entries
        # Until when the address last found in the DNS cache is good (an answer is only
        # replaced once it expired): until then, no need to look again.
        self._address_until = -math.inf
        self._full = world.attempt_timeout
        # Failures are values that nothing changes: one error serves every attempt that
        # waited the full timeout.
        self._full_timed_out = timed_out(self.hostname, self._full)
        self._timeouts = world._timeouts
        self._rtt = region.rtt
        self._schedule = world.sim.schedule
        self.setups_due = 0

    def _lost(self) -> None:
        """No address: the pool's connections are gone; every one must be re-opened."""
        self.setups_due = self.instance.connections

    def timed_out(self, timeout: float) -> AttemptTimeout:
        """The error of an attempt here that got no answer in ``timeout``."""
        if timeout == self._full:
            return self._full_timed_out
        return timed_out(self.hostname, timeout)

    def _setup(self) -> bool:
        """Whether this request opens a connection (one of those lost)."""
        due = self.setups_due
        if due:
            self.setups_due = due - 1
        return due > 0

    def attempt(
        self, deadline: float | None = None, op: str = "read"
    ) -> Generator[Any, Any, Exception | None]:
        """One attempt (of operation ``op``): resolve the name (through the instance's
        DNS cache), open a connection if the pool was lost, send, and wait at most the
        attempt timeout (less if ``deadline``, an instant, comes first). Over a network
        with a round-trip time (``Region.rtt``), half of each attempt's trip is spent
        before the request reaches the service, half after its answer left it.

        Returns None when it succeeded, or the error a client would see
        (``NameNotResolved``, ``AttemptTimeout``, the service's error): failures are
        values in the simulator, not raised, which keeps a failing run fast.
        """
        sim = self._sim
        self.attempts[int(sim.now)] += 1
        if sim.now >= self._address_until:
            cached = self._entries.get(self.hostname)  # the instance's DNS cache, inlined
            if cached is not None and sim.now < cached[0]:
                failure = None if cached[1] is None else error_for(self.hostname, cached[1])
                if failure is None:
                    self._address_until = cached[0]
            else:
                yield self.dns.resolver.latency
                failure = self.dns.ask(self.hostname)
            if failure is not None:
                self._lost()
                return failure
        timeout = self._full
        now = sim.now
        if deadline is not None and deadline - now < timeout:
            timeout = max(0.0, deadline - now)
        if self._rtt is not None:
            return (yield from self._far(timeout, op, self._rtt()))
        answer = self.service.submit(now + timeout, setup=self._setup(), op=op)
        if type(answer) is not Signal:
            return answer  # type: ignore[return-value]  # refused at once (throttled)
        outcome = yield Within(answer, timeout)
        if outcome is TIMED_OUT:
            return self.timed_out(timeout)
        return outcome  # type: ignore[no-any-return]

    def _far(self, timeout: float, op: str, trip: float) -> Generator[Any, Any, Exception | None]:
        """The rest of ``attempt`` over a network with a round trip of ``trip`` seconds:
        the request reaches the service half a trip from now; its answer (or refusal)
        reaches the client half a trip after the service gave it, if the client still
        waits then (``timeout`` from now), else the attempt timed out."""
        sim = self._sim
        now = sim.now
        back = trip / 2.0
        done = Signal(sim)
        # The last instant the service's answer is of use: after it, work is wasted.
        job = _FarJob(sim, done, now + timeout - back, self._setup(), op, back)
        self._schedule(now + (trip - back), _deliver, (self.service, job))
        outcome = yield Within(done, timeout)
        if outcome is TIMED_OUT:
            return self.timed_out(timeout)
        return outcome  # type: ignore[no-any-return]

    # -- the same attempt, for callers that take outcomes as calls ----------------------

    def attempt_now(
        self, deadline: float | None, receiver: Receiver, resolved: bool = False, op: str = "read"
    ) -> Any:
        """``attempt`` without a process: returns the outcome when it is known at once
        (a name that does not resolve from the cache, a refusal), else ``PENDING``, and
        ``receiver.answer(outcome)`` is called when it is known. Same steps, same order
        of events as ``attempt``. (``resolved``: the attempt is counted and its name
        was just resolved; go on from there.)"""
        sim = self._sim
        now = sim.now
        if not resolved:
            self.attempts[sim.second] += 1
            if now >= self._address_until:
                cached = self._entries.get(self.hostname)
                if cached is None or now >= cached[0]:
                    sim.after(self.dns.resolver.latency, self._resolved, (deadline, receiver, op))
                    return PENDING
                if cached[1] is not None:
                    self._lost()
                    return error_for(self.hostname, cached[1])
                self._address_until = cached[0]
        due = self.setups_due
        if due:
            self.setups_due = due - 1
        service = self.service
        if self._rtt is not None:
            return self._far_now(deadline, receiver, op, due > 0, self._rtt())
        refused = service.admit()
        if refused is not None:
            return refused
        timeout = full = self._full
        if deadline is not None and deadline - now < timeout:
            timeout = max(0.0, deadline - now)
        waiting = _Attempt(receiver, self, timeout, now + timeout, due > 0, op)
        service.accept(waiting)
        if timeout == full:
            self._timeouts.add(waiting)
        else:  # shortened by the deadline
            sim.after(timeout, _Attempt.expire, waiting)
        return PENDING

    def _far_now(
        self, deadline: float | None, receiver: Receiver, op: str, setup: bool, trip: float
    ) -> Any:
        """The rest of ``attempt_now`` over a network with a round trip of ``trip``
        seconds (as ``_far``): always ``PENDING``."""
        sim = self._sim
        now = sim.now
        timeout = full = self._full
        if deadline is not None and deadline - now < timeout:
            timeout = max(0.0, deadline - now)
        back = trip / 2.0
        waiting = _FarAttempt(receiver, self, timeout, now + timeout - back, setup, op)
        waiting.back = back
        self._schedule(now + (trip - back), _deliver, (self.service, waiting))
        if timeout == full:
            self._timeouts.add(waiting)
        else:  # shortened by the deadline
            sim.after(timeout, _Attempt.expire, waiting)
        return PENDING

    def _resolved(self, argument: tuple[float | None, Receiver, str]) -> None:
        """The resolver answered an attempt that needed the name: go on from there."""
        deadline, receiver, op = argument
        failure = self.dns.ask(self.hostname)
        if failure is not None:
            self._lost()
            receiver.answer(failure)
            return
        outcome = self.attempt_now(deadline, receiver, resolved=True, op=op)
        if outcome is not PENDING:
            receiver.answer(outcome)


class World:
    """Everything one run simulates apart from the client strategy, on one simulation
    (``sim``): the ``regions`` (each with its ``service``; ``service(name)`` finds
    one), the DNS ``resolver`` (its ``broken`` names, its ``latency``), the app
    ``instances`` and their routes, through which the strategy's clients make their
    attempts, the traffic (``load``: its ``factor`` scales the rate) and the run's
    per-second ``series``. Triggers act on it."""

    def __init__(
        self,
        sim: Simulation,
        series: Series,
        resolver: Resolver,
        regions: list[Region],
        instances: list[Instance],
        attempt_timeout: float,
    ) -> None:
        self.sim = sim
        self.series = series
        self.resolver = resolver
        self.regions = regions
        self.by_name = {region.name: region for region in regions}
        self.instances = instances
        self.attempt_timeout = attempt_timeout
        self.load: Any = None
        """The traffic (``OpenLoop`` or ``ClosedLoop``), once the run made it."""
        self._timeouts = sim.lane(attempt_timeout)
        self._attempts = series.counter(Names.ATTEMPTS)  # the regions' sum, made by `close`
        for region in regions:
            region.attempts = series.counter(Names.attempts_at(region.name))
        for instance in instances:
            instance.routes = {region.name: Route(self, instance, region) for region in regions}

    def close(self) -> None:
        """The run is over: total the per-region counts of attempts."""
        total = self._attempts
        for region in self.regions:
            for second, count in enumerate(region.attempts):
                total[second] += count

    @property
    def primary(self) -> Region:
        return self.regions[0]

    def service(self, region: str) -> Service:
        """The service of the region named ``region``."""
        return self.by_name[region].service
