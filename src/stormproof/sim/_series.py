"""Per-second counters and gauges over a run: the raw material of every metric."""

from __future__ import annotations

import math

__all__ = ["Names", "Series"]


class Names:
    """The names of the series a run records (``RunResult.series``), each counted per
    second: requests by the second they arrived (``REQUESTS``, and how they ended:
    ``SUCCESSES``, ``GOODPUT``, ``STALE``, ``ERRORS``), ``ATTEMPTS`` (toward every
    region; ``attempts_at(region)`` toward one), the share of instances whose breaker
    is open (``BREAKER_OPEN``), and at each dependency the requests ``offered`` (the
    resolver's queries: ``offered("dns")``), ``served`` and ``wasted`` (served after
    their client gave up); at each region its queue's length (``queued``, sampled in
    the middle of each second of traffic) and the seconds it was ``down`` (a
    ``random_outages`` trigger)."""

    REQUESTS = "requests"
    SUCCESSES = "successes"
    GOODPUT = "goodput"
    STALE = "stale"
    ERRORS = "errors"
    ATTEMPTS = "attempts"
    BREAKER_OPEN = "breaker_open"
    DNS = "dns"
    """The resolver, as a dependency."""

    @staticmethod
    def offered(dependency: str) -> str:
        return f"offered:{dependency}"

    @staticmethod
    def served(dependency: str) -> str:
        return f"served:{dependency}"

    @staticmethod
    def wasted(dependency: str) -> str:
        return f"wasted:{dependency}"

    @staticmethod
    def queued(dependency: str) -> str:
        return f"queued:{dependency}"

    @staticmethod
    def down(dependency: str) -> str:
        return f"down:{dependency}"

    @staticmethod
    def attempts_at(region: str) -> str:
        return f"attempts:{region}"


class Series:
    """Named per-second values, each a list with one number per second (counts stay
    integers while the run counts them: lists of ints are the fastest to count in).
    ``add(counter, now)`` counts an event in second ``int(now)``; events past the end
    are counted in the last second."""

    __slots__ = ("_last", "data", "seconds")

    def __init__(self, duration: float) -> None:
        self.seconds = math.ceil(duration) + 1
        self._last = self.seconds - 1
        self.data: dict[str, list[float]] = {}

    def counter(self, name: str) -> list[float]:
        found = self.data.get(name)
        if found is None:
            found = self.data[name] = [0] * self.seconds
        return found

    def add(self, counter: list[float], now: float, amount: float = 1) -> None:
        second = int(now)
        counter[second if second < self._last else self._last] += amount

    def total(self, name: str, start: float = 0.0, end: float | None = None) -> float:
        values = self.data.get(name)
        if values is None:
            return 0.0
        last = self.seconds if end is None else min(self.seconds, math.ceil(end))
        return float(sum(values[int(start) : last]))
