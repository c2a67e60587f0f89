"""Name resolution: the resolver apps ask, and each app instance's record cache.

During the us-east-1 incident the DynamoDB endpoint's record was empty: resolvers
answered "no address" (cached by clients for the negative TTL), and every client whose
cached address had expired could no longer open a connection.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from ._engine import Simulation
from ._errors import NameNotResolved
from ._series import Series

__all__ = ["HostCache", "Resolver"]

_MESSAGES = {
    "empty": (-5, "No address associated with hostname"),
    "nxdomain": (-2, "Name or service not known"),
    "servfail": (-3, "Temporary failure in name resolution"),
}


class Resolver:
    """Answers queries after ``latency``; above ``capacity`` queries per second it
    answers SERVFAIL (an overloaded resolver)."""

    def __init__(self, sim: Simulation, *, capacity: float, latency: float, series: Series) -> None:
        self.sim = sim
        self.capacity = capacity
        self.latency = latency
        self.broken: dict[str, str] = {}  # host name -> "empty" / "nxdomain" / "servfail"
        self._second = -1
        self._in_second = 0
        self._series = series
        self._queries = series.counter("offered:dns")

    def answer(self, name: str) -> str | None:
        """The failure mode for a query made now, or None when it resolves."""
        now = self.sim.now
        self._series.add(self._queries, now)
        second = int(now)
        if second != self._second:
            self._second = second
            self._in_second = 0
        self._in_second += 1
        if self._in_second > self.capacity:
            return "servfail"
        return self.broken.get(name)


class HostCache:
    """One app instance's cache of answers: addresses for ``ttl``, failures for
    ``negative_ttl``."""

    __slots__ = ("_entries", "negative_ttl", "resolver", "sim", "ttl")

    def __init__(
        self, sim: Simulation, resolver: Resolver, ttl: float, negative_ttl: float
    ) -> None:
        self.sim = sim
        self.resolver = resolver
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self._entries: dict[str, tuple[float, str | None]] = {}

    def resolve(self, name: str) -> Generator[Any, Any, None]:
        """Resolve ``name`` or raise ``NameNotResolved`` (a process step)."""
        entry = self._entries.get(name)
        sim = self.sim
        if entry is None or sim.now >= entry[0]:
            yield self.resolver.latency
            failure = self.resolver.answer(name)
            ttl = self.ttl if failure is None else self.negative_ttl
            entry = self._entries[name] = (sim.now + ttl, failure)
        failure = entry[1]
        if failure is not None:
            code, message = _MESSAGES[failure]
            raise NameNotResolved(code, f"{name}: {message}")
