"""Everything one run simulates, apart from the client strategy: dependencies in
regions, name resolution, app instances and their connections, and the one thing
every strategy does in the end, an attempt toward a region's endpoint."""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Protocol

from stormproof import DeadlineExceeded

from ._dns import ASK, HostCache, Resolver, error_for
from ._engine import TIMED_OUT, Signal, Simulation, Within
from ._errors import AttemptTimeout, timed_out
from ._series import Names, Series
from ._service import Job, Service

__all__ = ["PENDING", "Instance", "Receiver", "Region", "Route", "World"]


_new = object.__new__


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
    tells ``receiver``. (``Route._attempt_direct`` makes its own without calling the
    class: a field added here is set there too.)"""

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


def _time_up(answer: Signal) -> None:
    """An attempt shortened by the caller's deadline got no answer by then."""
    answer.succeed(TIMED_OUT)  # nothing, if the answer came first


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
    connection_lifetime: float | None = None
    """The mean life of a connection, in seconds, when connections are kept open
    (``PooledRoute``); None: each attempt needs the address once the cached one
    expired (``Route``)."""

    def reconnect(self, region: str) -> None:
        """Every connection of the pool to ``region`` is lost: each must be re-opened."""
        self.routes[region].lose_connections()


class Route:
    """One app instance's way to one region: the name it resolves (through the
    instance's DNS cache), its connection pool (``setups_due``: connections lost and
    not yet re-opened, each paying the service's set-up time on its next request),
    and the attempts it makes there."""

    __slots__ = (
        "_address_until",
        "_entries",
        "_expired",
        "_full",
        "_full_timed_out",
        "_opening",
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
        self._opening = False  # a kept connection is being opened (``PooledRoute``)
        self._schedule = world.sim.schedule
        # What an attempt with no time left before the caller's deadline ends with (it
        # is not sent): the library's error, as a deadline's check raises it.
        self._expired = DeadlineExceeded(f"{self.hostname}: the deadline has passed")
        self.setups_due = 0

    def _lost(self) -> None:
        """No address: the pool's connections are gone; every one must be re-opened."""
        self.setups_due = self.instance.connections

    def lose_connections(self) -> None:
        """Every connection is lost (a partition healed): each must be re-opened."""
        self._lost()

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
        attempt timeout (less if ``deadline``, an instant, comes first: the caller's
        deadline, for a strategy that honours it; None for one that does not). Over a
        network with a round-trip time (``Region.rtt``), half of each attempt's trip is
        spent before the request reaches the service, half after its answer left it.

        Returns None when it succeeded, or the error a client would see
        (``NameNotResolved``, ``AttemptTimeout``, the service's error), or
        ``DeadlineExceeded`` when no time is left before ``deadline``: such an attempt
        is not sent (nor counted, unless the name had to be resolved first). Failures
        are values in the simulator, not raised, which keeps a failing run fast.
        """
        sim = self._sim
        if deadline is not None and sim.now >= deadline:
            return self._expired
        self.attempts[int(sim.now)] += 1
        if sim.now >= self._address_until:
            failure = yield from self._connect()
            if failure is not None:
                return failure
        timeout = self._full
        now = sim.now
        if deadline is not None and deadline - now < timeout:
            if now >= deadline:  # the name's resolution took the time that was left
                return self._expired
            if self._rtt is not None:
                return (yield from self._far(deadline - now, op, self._rtt()))
            # Shortened: it times out at the deadline itself (not now + what is left,
            # which rounding may put a hair before it, leaving time for one more try).
            answer = self.service.submit(deadline, setup=self._setup(), op=op)
            if type(answer) is not Signal:
                return answer  # type: ignore[return-value]  # refused at once (throttled)
            sim.schedule(deadline, _time_up, answer)
            outcome = yield answer
            if outcome is TIMED_OUT:
                return self.timed_out(deadline - now)
            return outcome  # type: ignore[no-any-return]
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

    def _connect(self) -> Generator[Any, Any, Exception | None]:
        """The cached address expired: look the name up again (through the instance's
        DNS cache, asking the resolver if need be). None, or the error of a name that
        does not resolve (the pool's connections are then lost)."""
        sim = self._sim
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
        if deadline is not None and now >= deadline:
            return self._expired  # no time left: not sent
        if not resolved:
            self.attempts[sim.second] += 1
            if now >= self._address_until:
                outcome = self._connect_now(deadline, receiver, op)
                if outcome is not None:
                    return outcome
        due = self.setups_due  # `_setup`, inlined: this runs for every attempt
        if due:
            self.setups_due = due - 1
        setup = due > 0 or self._opening
        service = self.service
        if self._rtt is not None:
            return self._far_now(deadline, receiver, op, setup, self._rtt())
        refused = service.admit()
        if refused is not None:
            return refused
        timeout = self._full
        if deadline is None or deadline - now >= timeout:
            waiting = _Attempt(receiver, self, timeout, now + timeout, setup, op)
            service.accept(waiting)
            self._timeouts.add(waiting)
        else:  # shortened by the deadline: it times out at the deadline itself
            waiting = _Attempt(receiver, self, deadline - now, deadline, setup, op)
            service.accept(waiting)
            sim.schedule(deadline, _Attempt.expire, waiting)
        return PENDING

    def attempt_now_for(self, deadlines: bool) -> Callable[[float | None, Receiver], Any]:
        """``attempt_now`` for a client that calls it as ``attempt(deadline, receiver)``
        for reads (``deadlines``: whether it ever gives a deadline). A client that never
        does, on a route without a round-trip time, gets ``_attempt_direct``: the same
        steps without the checks of what is off for it, chosen once."""
        if deadlines or self._rtt is not None:
            return self.attempt_now
        return self._attempt_direct

    def _attempt_direct(self, deadline: float | None, receiver: Receiver) -> Any:
        """``attempt_now(None, receiver)`` on a route without a round-trip time, for a
        client that never gives a deadline (``deadline`` is None: see
        ``attempt_now_for``). This runs for every attempt."""
        sim = self._sim
        now = sim.now
        self.attempts[sim.second] += 1
        if now >= self._address_until:
            outcome = self._connect_now(None, receiver, "read")
            if outcome is not None:
                return outcome
        setup = False
        due = self.setups_due  # `_setup`, inlined
        if due:
            self.setups_due = due - 1
            setup = True
        service = self.service
        refused = service.admit()
        if refused is not None:
            return refused
        timeout = self._full
        # `_Attempt(receiver, self, timeout, now + timeout, setup)`, made without calling
        # the class: CPython (before 3.13) runs an `__init__` in an evaluation loop of
        # its own, at a cost close to that of the rest of this method.
        waiting = _new(_Attempt)
        waiting.receiver = receiver
        waiting.route = self
        waiting.timeout = timeout
        waiting.deadline = now + timeout
        waiting.setup = setup
        waiting.op = "read"
        waiting.live = True
        service.accept(waiting)
        self._timeouts.add(waiting)
        return PENDING

    def _far_now(
        self, deadline: float | None, receiver: Receiver, op: str, setup: bool, trip: float
    ) -> Any:
        """The rest of ``attempt_now`` over a network with a round trip of ``trip``
        seconds (as ``_far``): always ``PENDING``."""
        sim = self._sim
        now = sim.now
        back = trip / 2.0
        timeout = self._full
        if deadline is None or deadline - now >= timeout:
            waiting = _FarAttempt(receiver, self, timeout, now + timeout - back, setup, op)
            self._timeouts.add(waiting)
        else:  # shortened by the deadline: it times out at the deadline itself
            waiting = _FarAttempt(receiver, self, deadline - now, deadline - back, setup, op)
            sim.schedule(deadline, _Attempt.expire, waiting)
        waiting.back = back
        self._schedule(now + (trip - back), _deliver, (self.service, waiting))
        return PENDING

    def _connect_now(self, deadline: float | None, receiver: Receiver, op: str) -> Any:
        """``_connect`` for ``attempt_now``: None (go on: the address is cached), the
        error of a name that does not resolve, or ``PENDING`` (the resolver is asked;
        the attempt goes on from ``_resolved``)."""
        cached = self._entries.get(self.hostname)
        if cached is None or self._sim.now >= cached[0]:
            self._sim.after(self.dns.resolver.latency, self._resolved, (deadline, receiver, op))
            return PENDING
        if cached[1] is not None:
            self._lost()
            return error_for(self.hostname, cached[1])
        self._address_until = cached[0]
        return None

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


class PooledRoute(Route):
    """A route whose connections stay open: an attempt goes out on the next connection
    of the instance's pool (round robin); an open one needs no name lookup, so during a
    DNS outage attempts on connections opened before it keep working. A connection
    lives an exponentially distributed time (mean ``connection_lifetime`` seconds:
    closed by the server, an idle timeout, or the pool recycling it); then the next
    attempt on it must resolve the name (through the instance's DNS cache) and open a
    new one, paying the service's set-up time; if the name does not resolve, that
    attempt fails and the connection stays closed. Connections to the first region are
    open when the run starts, with their remaining lives drawn afresh (memoryless: the
    same law); connections to the others open on first use."""

    __slots__ = ("_expires", "_lifetime", "_slot")

    def __init__(self, world: World, instance: Instance, region: Region, primary: bool) -> None:
        super().__init__(world, instance, region)
        mean = instance.connection_lifetime
        assert mean is not None
        draw = world.sim.stream(f"connections:{instance.number}:{region.name}").expovariate
        rate = 1.0 / mean
        self._lifetime: Callable[[], float] = lambda: draw(rate)
        self._expires = [
            self._lifetime() if primary else -math.inf for _ in range(instance.connections)
        ]
        self._slot = 0
        self._address_until = math.inf  # never "expired": each attempt looks at its slot

    def lose_connections(self) -> None:
        self._expires = [-math.inf] * len(self._expires)

    def _setup(self) -> bool:
        opening = self._opening
        self._opening = False
        return opening

    def _next_closed(self) -> int | None:
        """Move the round robin on: the slot of the attempt's connection if it must be
        opened, else None (it is open)."""
        slot = self._slot
        expires = self._expires
        self._slot = slot + 1 if slot + 1 < len(expires) else 0
        return slot if expires[slot] <= self._sim.now else None

    def _open(self, slot: int) -> None:
        self._expires[slot] = self._sim.now + self._lifetime()
        self._opening = True

    def attempt(
        self, deadline: float | None = None, op: str = "read"
    ) -> Generator[Any, Any, Exception | None]:
        slot = self._next_closed()
        if slot is None:
            return (yield from super().attempt(deadline, op))
        sim = self._sim
        if deadline is not None and sim.now >= deadline:
            return self._expired
        failure = self.dns.lookup(self.hostname)
        if failure is ASK:
            yield self.dns.resolver.latency
            failure = self.dns.ask(self.hostname)
        if failure is not None:
            self.attempts[int(sim.now)] += 1
            return failure
        self._open(slot)
        outcome = yield from super().attempt(deadline, op)
        self._opening = False  # if no time was left to send it: not opened after all
        return outcome

    def attempt_now(
        self, deadline: float | None, receiver: Receiver, resolved: bool = False, op: str = "read"
    ) -> Any:
        if not resolved:
            slot = self._next_closed()
            if slot is not None:
                sim = self._sim
                if deadline is not None and sim.now >= deadline:
                    return self._expired
                failure = self.dns.lookup(self.hostname)
                if failure is ASK:
                    self.attempts[sim.second] += 1
                    sim.after(
                        self.dns.resolver.latency, self._resolved_on, (slot, deadline, receiver, op)
                    )
                    return PENDING
                if failure is not None:
                    self.attempts[sim.second] += 1
                    return failure
                self._open(slot)
        outcome = super().attempt_now(deadline, receiver, resolved, op)
        self._opening = False  # if it was not sent after all
        return outcome

    def attempt_now_for(self, deadlines: bool) -> Callable[[float | None, Receiver], Any]:
        return self.attempt_now  # each attempt looks at its connection first

    def _resolved_on(self, argument: tuple[int, float | None, Receiver, str]) -> None:
        """The resolver answered an attempt whose connection must be opened."""
        slot, deadline, receiver, op = argument
        failure = self.dns.ask(self.hostname)
        if failure is not None:
            receiver.answer(failure)
            return
        self._open(slot)
        outcome = super().attempt_now(deadline, receiver, resolved=True, op=op)
        self._opening = False
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
            if instance.connection_lifetime is None:
                instance.routes = {r.name: Route(self, instance, r) for r in regions}
            else:
                instance.routes = {
                    r.name: PooledRoute(self, instance, r, r is regions[0]) for r in regions
                }

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
