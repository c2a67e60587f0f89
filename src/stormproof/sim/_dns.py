"""Name resolution: the resolver apps ask, and each app instance's record cache.

During the us-east-1 incident the DynamoDB endpoint's record was empty: resolvers
answered "no address" (cached by clients for the negative TTL), and every client whose
cached address had expired could no longer open a connection.
"""

from __future__ import annotations

from enum import Enum
from typing import Final, Literal

from ._engine import Simulation
from ._errors import NameNotResolved
from ._series import Names, Series

__all__ = ["ASK", "HostCache", "Resolver", "error_for"]


class Ask(Enum):
    ASK = "ask"


ASK: Final = Ask.ASK
"""``HostCache.lookup`` returns it when the resolver must be asked."""

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
        self._queries = series.counter(Names.offered(Names.DNS))

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
    ``negative_ttl``. An answer is replaced only once it expired (``ask`` is for names
    whose ``lookup`` says ``ASK``). ``late`` holds names whose failure this instance's
    resolver still answers after the record was fixed, until when, and the failure
    (the resolvers' own caches of it expiring at different times)."""

    __slots__ = ("entries", "late", "negative_ttl", "resolver", "sim", "ttl")

    def __init__(
        self, sim: Simulation, resolver: Resolver, ttl: float, negative_ttl: float
    ) -> None:
        self.sim = sim
        self.resolver = resolver
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.entries: dict[str, tuple[float, str | None]] = {}
        self.late: dict[str, tuple[float, str]] = {}

    def lookup(self, name: str) -> NameNotResolved | Literal[Ask.ASK] | None:
        """The cached answer for ``name``: None (it resolves), the error, or
        ``ASK`` when the resolver must be asked (``ask``, after the resolver's latency)."""
        entry = self.entries.get(name)
        if entry is None or self.sim.now >= entry[0]:
            return ASK
        return error_for(name, entry[1])

    def ask(self, name: str) -> NameNotResolved | None:
        """Ask the resolver now and cache its answer."""
        failure = self.resolver.answer(name)
        if failure is None and self.late:
            held = self.late.get(name)
            if held is not None:
                if self.sim.now < held[0]:
                    failure = held[1]
                else:
                    del self.late[name]
        ttl = self.ttl if failure is None else self.negative_ttl
        self.entries[name] = (self.sim.now + ttl, failure)
        return error_for(name, failure)


def error_for(name: str, mode: str | None) -> NameNotResolved | None:
    """The error a client gets for ``name`` when the resolver answered ``mode``."""
    if mode is None:
        return None
    code, message = _MESSAGES[mode]
    return NameNotResolved(code, f"{name}: {message}")
