"""Everything one run simulates, apart from the client strategy: dependencies in
regions, name resolution, app instances and their connections, and the one thing
every strategy does in the end, an attempt toward a region's endpoint."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, Protocol

from ._dns import HostCache, Resolver, error_for
from ._engine import TIMED_OUT, Signal, Simulation, Within
from ._errors import timed_out
from ._series import Series
from ._service import Job, Service

__all__ = ["PENDING", "Instance", "Receiver", "Region", "World"]


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
    comes first; the first tells ``receiver``."""

    __slots__ = ("hostname", "live", "receiver", "timeout")

    def __init__(
        self, receiver: Receiver, hostname: str, timeout: float, deadline: float, setup: bool
    ) -> None:
        self.receiver = receiver
        self.hostname = hostname
        self.timeout = timeout
        self.deadline = deadline
        self.setup = setup
        self.live = True

    def reply(self, answer: Any) -> None:
        if self.live:
            self.live = False
            self.receiver.answer(answer)


def _expire(attempt: _Attempt) -> None:
    if attempt.live:
        attempt.live = False
        attempt.receiver.answer(timed_out(attempt.hostname, attempt.timeout))


@dataclass
class Region:
    """A place that can do the work: a name, the endpoint's host name, its service."""

    name: str
    hostname: str
    service: Service
    attempts: Any = None  # the per-second counter of attempts toward it


@dataclass
class Instance:
    """One app instance: its own DNS cache and connection pools (and, built by the
    strategy, its own policy objects)."""

    number: int
    dns: HostCache
    connections: int
    setups_due: dict[str, int] = field(default_factory=dict)


class World:
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
        self._timeouts = sim.lane(attempt_timeout)
        self._attempts = series.counter("attempts")  # the regions' sum, made by `close`
        for region in regions:
            region.attempts = series.counter(f"attempts:{region.name}")

    def close(self) -> None:
        """The run is over: total the per-region counts of attempts."""
        total = self._attempts
        for region in self.regions:
            for second, count in enumerate(region.attempts):
                total[second] += count

    @property
    def primary(self) -> Region:
        return self.regions[0]

    def attempt(
        self, instance: Instance, region: Region, deadline: float | None = None
    ) -> Generator[Any, Any, Exception | None]:
        """One attempt toward ``region``: resolve its name (through the instance's DNS
        cache), open a connection if the pool was lost, send, and wait at most the
        attempt timeout (less if ``deadline``, an instant, comes first).

        Returns None when it succeeded, or the error a client would see
        (``NameNotResolved``, ``AttemptTimeout``, the service's error): failures are
        values in the simulator, not raised, which keeps a failing run fast.
        """
        sim = self.sim
        region.attempts[int(sim.now)] += 1
        dns = instance.dns
        cached = dns.entries.get(region.hostname)  # the instance's DNS cache, inlined
        if cached is not None and sim.now < cached[0]:
            failure = None if cached[1] is None else error_for(region.hostname, cached[1])
        else:
            yield dns.resolver.latency
            failure = dns.ask(region.hostname)
        if failure is not None:
            # No address: the pool's connections are gone; every one must be re-opened.
            instance.setups_due[region.name] = instance.connections
            return failure
        timeout = self.attempt_timeout
        now = sim.now
        if deadline is not None and deadline - now < timeout:
            timeout = max(0.0, deadline - now)
        due = instance.setups_due.get(region.name, 0)
        if due:
            instance.setups_due[region.name] = due - 1
        answer = region.service.submit(now + timeout, setup=due > 0)
        if type(answer) is not Signal:
            return answer  # type: ignore[return-value]  # refused at once (throttled)
        outcome = yield Within(answer, timeout)
        if outcome is TIMED_OUT:
            return timed_out(region.hostname, timeout)
        return outcome  # type: ignore[no-any-return]

    # -- the same attempt, for callers that take outcomes as calls ----------------------

    def attempt_now(
        self,
        instance: Instance,
        region: Region,
        deadline: float | None,
        receiver: Receiver,
        resolved: bool = False,
    ) -> Any:
        """``attempt`` without a process: returns the outcome when it is known at once
        (a name that does not resolve from the cache, a refusal), else ``PENDING``, and
        ``receiver.answer(outcome)`` is called when it is known. Same steps, same order
        of events as ``attempt``. (``resolved``: the attempt is counted and its name
        was just resolved; go on from there.)"""
        sim = self.sim
        now = sim.now
        if not resolved:
            region.attempts[sim.second] += 1
            cached = instance.dns.entries.get(region.hostname)
            if cached is None or now >= cached[0]:
                sim.after(
                    instance.dns.resolver.latency,
                    self._resolved,
                    (instance, region, deadline, receiver),
                )
                return PENDING
            if cached[1] is not None:
                instance.setups_due[region.name] = instance.connections
                return error_for(region.hostname, cached[1])
        due = instance.setups_due.get(region.name, 0)
        if due:
            instance.setups_due[region.name] = due - 1
        service = region.service
        refused = service.admit()
        if refused is not None:
            return refused
        timeout = self.attempt_timeout
        if deadline is not None and deadline - now < timeout:
            timeout = max(0.0, deadline - now)
        waiting = _Attempt(receiver, region.hostname, timeout, now + timeout, due > 0)
        service.accept(waiting)
        if timeout == self.attempt_timeout:
            self._timeouts.after(_expire, waiting)
        else:  # shortened by the deadline
            sim.after(timeout, _expire, waiting)
        return PENDING

    def _resolved(self, argument: tuple[Instance, Region, float | None, Receiver]) -> None:
        """The resolver answered an attempt that needed the name: go on from there."""
        instance, region, deadline, receiver = argument
        failure = instance.dns.ask(region.hostname)
        if failure is not None:
            instance.setups_due[region.name] = instance.connections
            receiver.answer(failure)
            return
        outcome = self.attempt_now(instance, region, deadline, receiver, resolved=True)
        if outcome is not PENDING:
            receiver.answer(outcome)
