"""Everything one run simulates, apart from the client strategy: dependencies in
regions, name resolution, app instances and their connections, and the one thing
every strategy does in the end, an attempt toward a region's endpoint."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from ._dns import HostCache, Resolver, error_for
from ._engine import TIMED_OUT, Signal, Simulation, Within
from ._errors import AttemptTimeout
from ._series import Series
from ._service import Service

__all__ = ["Instance", "Region", "World"]


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
        self._attempts = series.counter("attempts")
        for region in regions:
            region.attempts = series.counter(f"attempts:{region.name}")

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
        second = int(sim.now)
        self._attempts[second] += 1
        region.attempts[second] += 1
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
            return AttemptTimeout(f"{region.hostname}: no answer in {timeout:.3g}s")
        return outcome  # type: ignore[no-any-return]
